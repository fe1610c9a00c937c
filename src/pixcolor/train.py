"""The Pix2Pix training loop: G forward, D step on (fake, real), G step on GAN + lambda * L1.

:class:`Trainer` owns the networks, optimisers, schedulers, data order and checkpoints of one
run folder. Everything it does is a function of its :class:`~pixcolor.config.TrainConfig` and
the data, so ``--resume`` continues bit for bit (fp32, CPU, fixed seed).
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pixcolor.augment import batch_generator, random_flip, random_resized_crop, resize
from pixcolor.color import denormalize_ab, lab_normalized_to_rgb, rgb_to_lab_normalized
from pixcolor.config import TrainConfig
from pixcolor.device import fast_bf16, resolve_device
from pixcolor.distributed import DistContext
from pixcolor.errors import CheckpointError, PixcolorError
from pixcolor.interrupt import GracefulInterrupt
from pixcolor.losses import GANLoss, spread_loss
from pixcolor.metrics import ab_l1, psnr
from pixcolor.train_checkpoint import (
    candidate_checkpoints,
    load_trainer,
    prune_epoch_checkpoints,
    save_trainer,
    truncate_metrics,
)
from pixcolor.train_setup import (
    EpochSampler,
    build_datasets,
    build_models,
    class_weights_for,
    encoder_of,
    load_teacher,
    make_train_loader,
)
from pixcolor.visualize import comparison_grid, plot_curves, save_png

log = logging.getLogger(__name__)


class TrainingDiverged(PixcolorError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Map ``auto|bf16|fp16|fp32`` to an autocast dtype (``None`` = fp32) for ``device``."""
    if precision == "fp32" or device.type == "mps":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if fast_bf16(device) else None


class _BinLogits(nn.Module):
    """Forward = ``generator.forward_logits``: DDP all-reduces only what runs through forward."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, L: Tensor) -> Tensor:
        return self.generator.forward_logits(L)


class Trainer:
    """Train a colorizer as described by ``config``; see ``pixcolor train --help``."""

    def __init__(self, config: TrainConfig, *, dist: DistContext | None = None) -> None:
        self.config = config
        self.dist = dist or DistContext.single()
        self.device = self.dist.device or resolve_device(config.device)
        self.out = Path(config.out)
        self.amp_dtype = resolve_precision(config.precision, self.device)
        torch.manual_seed(config.seed)
        self.train_set, self.val_set = build_datasets(config)
        if len(self.train_set) < self.dist.world_size:
            raise PixcolorError(
                f"{len(self.train_set)} training image(s) cannot feed "
                f"{self.dist.world_size} processes; give at least one per process"
            )
        self.G, self.D = build_models(config, self.device)
        self.G_raw, self.D_raw = self.G, self.D  # unwrapped modules, for saving
        # Under DDP, G's forward must yield what the loss uses (the bin logits for head="bins").
        self._g_logits = self.dist.enabled and getattr(self.G, "output_kind", "tanh") == "bins"
        if self._g_logits:
            self.G = _BinLogits(self.G)
        self.G, self.D = self.dist.wrap(self.G), self.dist.wrap(self.D)
        self._ddp_g = self.G if isinstance(self.G, DistributedDataParallel) else None
        self._ddp_d = self.D if isinstance(self.D, DistributedDataParallel) else None
        if config.compile:
            self.G, self.D = torch.compile(self.G), torch.compile(self.D)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.G_raw.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D_raw.parameters(), lr=config.lr_d, betas=betas)
        lam = self._lr_factor
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, lam)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, lam)
        fp16 = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.gan_loss = GANLoss(config.gan_mode) if config.gan_mode != "none" else None
        self.bins_weights: Tensor | None = None
        if getattr(self.G_raw, "output_kind", "tanh") == "bins":
            self.bins_weights = class_weights_for(self.G_raw, self.train_set, config)
        self.teacher = (
            load_teacher(config.teacher, self.G_raw, self.device) if config.teacher else None
        )
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0  # completed steps of the current epoch
        self.global_step = 0
        self.best_val_l1 = math.inf
        # Under torchrun, Ctrl-C reaches the agent, which stops every worker: no graceful save.
        self._interrupt = GracefulInterrupt(enabled=not self.dist.enabled)

    # --- schedule ------------------------------------------------------------------------
    def _lr_factor(self, epoch: int) -> float:
        """pix2pix 'linear' policy: 1 for the first epochs, then linearly to 0."""
        start = self.config.epochs - self.config.decay_epochs
        return 1.0 - max(0, epoch - start + 1) / float(self.config.decay_epochs + 1)

    def _train_mode(self) -> None:
        """G in training mode, except a frozen encoder, whose BatchNorm keeps its statistics."""
        self.G.train()
        if self.config.freeze_encoder:
            encoder_of(self.G_raw).eval()

    def _gan_active(self, epoch: int) -> bool:
        return self.gan_loss is not None and epoch >= self.config.pretrain_epochs

    # --- one step ------------------------------------------------------------------------
    def _prepare(self, rgb_u8: Tensor, epoch: int, step: int) -> tuple[Tensor, Tensor]:
        """uint8 ``(B,3,h,w)`` -> augmented, normalised ``L (B,1,S,S)`` and ``ab (B,2,S,S)``."""
        cfg = self.config
        gen = batch_generator(cfg.seed, epoch, step)
        rank, world = self.dist.rank, self.dist.world_size  # draws cover the global batch
        rgb = rgb_u8.to(self.device, non_blocking=True).float().div_(255.0)
        if cfg.augment == "crop":
            rgb = random_resized_crop(
                rgb, cfg.size, gen, min_scale=cfg.crop_min_scale, rank=rank, world_size=world
            )
        else:
            rgb = resize(rgb, cfg.size, cfg.size).clamp_(0, 1)
        rgb = random_flip(rgb, gen, rank=rank, world_size=world)
        if cfg.channels_last:
            rgb = rgb.contiguous(memory_format=torch.channels_last)
        return rgb_to_lab_normalized(rgb)

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _generate(self, L: Tensor, *, train: bool = True) -> tuple[Tensor, Tensor | None]:
        """Return (ab prediction, bin logits or None).

        Validation under DDP (``train=False``) runs the unwrapped G: ranks may hold different
        numbers of validation batches, and every DDP forward starts a buffer broadcast.
        """
        G = self.G if train or not self.dist.enabled else self.G_raw
        if self.bins_weights is None:
            return G(L), None
        through_ddp = G is self.G and self._g_logits
        logits = self.G(L) if through_ddp else self.G_raw.forward_logits(L)  # (B, Q, h, w)
        ab = self.G_raw.quantizer.decode(logits.float(), temperature=1.0)
        if ab.shape[-2:] != L.shape[-2:]:
            ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return ab, logits

    def train_step(self, L: Tensor, ab: Tensor, gan: bool) -> dict[str, Tensor]:
        """One update: D on (fake.detach(), real), then G on GAN + lambda_L1 * L1.

        With ``grad_accum = k`` the gradients of k consecutive calls are summed (each loss
        scaled by 1/k) and the optimisers step on the k-th call.
        """
        cfg = self.config
        accum = cfg.grad_accum
        first = self.global_step % accum == 0
        last = (self.global_step + 1) % accum == 0
        losses: dict[str, Tensor] = {}
        with self._grad_sync(last):
            with self._autocast():
                fake, logits = self._generate(L)
            if gan:
                self.D.requires_grad_(True)
                with self._autocast():
                    pred_fake = self.D(torch.cat([L, fake.detach()], 1))
                    pred_real = self.D(torch.cat([L, ab], 1))
                    loss_d = 0.5 * (
                        self.gan_loss(pred_fake, False) + self.gan_loss(pred_real, True)
                    )
                if first:
                    self.opt_d.zero_grad(set_to_none=True)
                self.scaler.scale(loss_d / accum).backward()
                if last:
                    self.scaler.step(self.opt_d)
                self.D.requires_grad_(False)
                losses["loss_d"] = loss_d.detach()
            with self._autocast():
                loss_l1 = F.l1_loss(fake.float(), ab)
                loss_g = cfg.lambda_l1 * loss_l1
                if gan:
                    with self._d_frozen():
                        pred = self.D(torch.cat([L, fake], 1))
                    loss_gan = self.gan_loss(pred, True)
                    loss_g = loss_g + cfg.lambda_gan * loss_gan
                    losses["loss_g_gan"] = loss_gan.detach()
                if logits is not None:
                    if self.teacher is not None:  # distillation: the teacher's distribution
                        with torch.no_grad():
                            target = self.teacher.member_probs(L)
                    else:  # the truth's bins, from ab at the logits' resolution
                        target_ab = F.interpolate(ab, size=logits.shape[-2:], mode="area")
                        target = self.G_raw.quantizer.encode(target_ab)
                    loss_bins = F.cross_entropy(logits.float(), target, weight=self.bins_weights)
                    loss_g = loss_g + cfg.lambda_bins * loss_bins
                    losses["loss_bins"] = loss_bins.detach()
                if cfg.lambda_spread > 0:
                    loss_spread = spread_loss(L, fake, ab)
                    loss_g = loss_g + cfg.lambda_spread * loss_spread
                    losses["loss_spread"] = loss_spread.detach()
            if first:
                self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(loss_g / accum).backward()
            if last:
                self.scaler.step(self.opt_g)
                self.scaler.update()
            losses["loss_l1"] = loss_l1.detach()
            losses["loss_g"] = loss_g.detach()
        return losses

    def _grad_sync(self, sync: bool):
        """DDP all-reduces gradients on the final micro-step only (``no_sync`` on the others)."""
        if sync or (self._ddp_g is None and self._ddp_d is None):
            return nullcontext()
        stack = ExitStack()
        for ddp in (self._ddp_g, self._ddp_d):
            if ddp is not None:
                stack.enter_context(ddp.no_sync())
        return stack

    def _d_frozen(self):
        """Context for D's forward in the generator step, where D takes no gradient.

        Without ``no_sync`` that forward would leave DDP expecting D's gradients, and the next
        micro-step's D backward would all-reduce even inside ``no_sync``.
        """
        return self._ddp_d.no_sync() if self._ddp_d is not None else nullcontext()

    # --- the loop ------------------------------------------------------------------------
    def fit(self, *, stop_at_step: int | None = None) -> dict[str, Any]:
        """Train until ``config.epochs`` (or ``stop_at_step`` global steps, for tests).

        Returns the last validation metrics (empty without a validation set).
        """
        cfg = self.config
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            cfg.save(self.out / "config.json")
        self._log_start()
        last_val: dict[str, Any] = {}
        with self._interrupt:
            while self.epoch < cfg.epochs:
                finished = self._run_epoch(stop_at_step)
                if not finished:
                    self.save_checkpoint("last")
                    self.dist.barrier()  # no rank leaves before rank 0 has written it
                    reason = "interrupted" if self._interrupt.requested else "stopped"
                    log.info(
                        "%s at epoch %d step %d; saved checkpoints/last (resume with --resume)",
                        reason,
                        self.epoch + 1,
                        self.step_in_epoch,
                    )
                    return last_val
                self.epoch += 1
                self.step_in_epoch = 0
                self.dist.broadcast_buffers(self.G_raw, self.D_raw)
                with warnings.catch_warnings():
                    # Resumed at an epoch's end, no optimizer step precedes this one; the
                    # schedule's position comes from the checkpoint, so the order warning is moot.
                    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler")
                    self.sched_g.step()
                    self.sched_d.step()
                is_best = False
                if self.val_set is not None and (
                    self.epoch % cfg.val_every == 0 or self.epoch == cfg.epochs
                ):
                    last_val = self.validate()
                    is_best = last_val["val_l1"] < self.best_val_l1
                    self.best_val_l1 = min(self.best_val_l1, last_val["val_l1"])
                self.save_checkpoint("last")
                if is_best:
                    self.save_checkpoint("best")
                if cfg.keep_last:
                    self.save_checkpoint(f"epoch_{self.epoch:04d}")
                    self._prune_epochs()
                self.dist.barrier()  # no rank runs ahead of (or exits before) a checkpoint
        if self.dist.is_main:
            plot_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        return last_val

    def _run_epoch(self, stop_at_step: int | None) -> bool:
        cfg = self.config
        epoch = self.epoch
        sampler = EpochSampler(
            len(self.train_set),
            cfg.seed,
            epoch,
            cfg.batch_size,
            start_batch=self.step_in_epoch,
            dist=self.dist,
        )
        loader = make_train_loader(self.train_set, sampler, cfg, self.device)
        gan = self._gan_active(epoch)
        self._train_mode()
        self.D.train()
        total = sampler.num_batches
        bar = tqdm(
            total=total,
            initial=self.step_in_epoch,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not self.dist.is_main,
            dynamic_ncols=True,
            leave=True,
        )
        sums: dict[str, Tensor] = {}
        count, t0 = 0, time.perf_counter()
        for batch in loader:
            if self.dist.enabled:  # own dropout noise per rank, from (seed, epoch, step, rank)
                key = (cfg.seed, epoch, self.step_in_epoch, self.dist.rank)
                torch.manual_seed(hash(key) % 2**63)
            L, ab = self._prepare(batch["rgb"], epoch, self.step_in_epoch)
            losses = self.train_step(L, ab, gan)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            self.step_in_epoch += 1
            self.global_step += 1
            bar.update(1)
            end_of_epoch = self.step_in_epoch == total
            if count == cfg.log_every or end_of_epoch:
                means = {k: float(v) / count for k, v in sums.items()}  # one sync per log
                rate = count * L.shape[0] * self.dist.world_size / (time.perf_counter() - t0)
                if not all(math.isfinite(v) for v in means.values()):
                    raise TrainingDiverged(
                        f"non-finite loss at epoch {epoch + 1} step {self.step_in_epoch} ({means}); "
                        f"the last good checkpoint is {self.out / 'checkpoints' / 'last'}"
                    )
                bar.set_postfix(
                    {k: f"{v:.3f}" for k, v in means.items()} | {"img/s": f"{rate:.1f}"}
                )
                self._log(
                    {
                        "kind": "train",
                        "epoch": epoch + 1,
                        "step": self.global_step,
                        "lr_g": self.opt_g.param_groups[0]["lr"],
                        "img_per_s": rate,
                        **means,
                    }
                )
                sums, count, t0 = {}, 0, time.perf_counter()
            if self._interrupt.requested or (
                stop_at_step is not None and self.global_step >= stop_at_step
            ):
                bar.close()
                return False
        bar.close()
        return True

    # --- validation ----------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """Validation L1 (ab, Lab units) and PSNR (8-bit RGB) over the whole val set; grid PNG."""
        self.G.eval()
        cfg = self.config
        l1_sum = psnr_sum = 0.0
        n = 0
        grid_cols: list[list[Tensor]] = [[], [], []]
        loader = make_train_loader(
            self.val_set,
            EpochSampler(
                len(self.val_set), cfg.seed, 0, cfg.batch_size, shuffle=False, dist=self.dist
            ),
            cfg,
            self.device,
        )
        for batch in loader:
            rgb = batch["rgb"].to(self.device).float().div_(255.0)
            rgb = resize(rgb, cfg.size, cfg.size).clamp_(0, 1)
            L, ab = rgb_to_lab_normalized(rgb)
            with self._autocast():
                pred, _ = self._generate(L, train=False)
            pred = pred.float()
            out = lab_normalized_to_rgb(L, pred)
            l1_sum += ab_l1(denormalize_ab(pred), denormalize_ab(ab)).sum().item()
            psnr_sum += psnr(out, rgb).sum().item()
            n += rgb.shape[0]
            have = sum(t.shape[0] for t in grid_cols[0])
            if have < cfg.grid_images:
                take = cfg.grid_images - have
                gray = lab_normalized_to_rgb(L[:take], torch.zeros_like(ab[:take]))
                for col, t in zip(grid_cols, (gray, out[:take], rgb[:take]), strict=True):
                    col.append(t.cpu())
        totals = self.dist.all_reduce_sum(torch.tensor([l1_sum, psnr_sum, float(n)]))
        l1_sum, psnr_sum, n = totals.tolist()
        metrics = {"val_l1": l1_sum / max(n, 1), "val_psnr": psnr_sum / max(n, 1)}
        self._log({"kind": "val", "epoch": self.epoch, "step": self.global_step, **metrics})
        if self.dist.is_main and grid_cols[0]:
            grid = comparison_grid([torch.cat(c) for c in grid_cols], ["gray", "pixcolor", "truth"])
            save_png(grid, self.out / "grids" / f"epoch_{self.epoch:04d}.png")
        log.info(
            "epoch %d: val L1 %.3f (ab units), val PSNR %.2f dB",
            self.epoch,
            metrics["val_l1"],
            metrics["val_psnr"],
        )
        self._train_mode()
        return metrics

    # --- logging -------------------------------------------------------------------------
    def _log(self, row: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        path = self.out / "metrics.jsonl"
        try:
            with open(path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
        except OSError as exc:  # disk full, folder removed: a clear message, not a traceback
            raise PixcolorError(f"{path}: cannot write the training log ({exc})") from None

    def _log_start(self) -> None:
        if not self.dist.is_main:
            return
        cfg = self.config
        prec = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]
        n_g = sum(p.numel() for p in self.G_raw.parameters())
        log.info(
            "pixcolor train: %d images, %s val, device %s, %s, G %s (%.1fM params), "
            "batch %d x %d process(es) x %d accum = global batch %d",
            len(self.train_set),
            len(self.val_set) if self.val_set is not None else "no",
            self.device,
            prec,
            cfg.generator,
            n_g / 1e6,
            cfg.batch_size,
            self.dist.world_size,
            cfg.grad_accum,
            cfg.batch_size * self.dist.world_size * cfg.grad_accum,
        )

    # --- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self, name: str) -> Path | None:
        """Write ``checkpoints/<name>`` atomically (rank 0 only); returns its folder."""
        if not self.dist.is_main:
            return None
        return save_trainer(self, self.out / "checkpoints" / name)

    def resume(self, folder: str | Path | None = None, *, missing_ok: bool = False) -> Path | None:
        """Restore everything from ``folder`` (default: the newest good checkpoint of the run).

        Under DDP, rank 0 picks the checkpoint and every rank loads that same one. With
        ``missing_ok`` (a torchrun restart before the first checkpoint), a run that has none
        starts afresh and None is returned.
        """
        root = self.out / "checkpoints"
        chosen, error = None, None
        if self.dist.is_main:
            if missing_ok and folder is None and not candidate_checkpoints(root):
                log.info("no checkpoint in %s yet: starting afresh", root)
                truncate_metrics(self.out / "metrics.jsonl", 0)  # rows of the failed attempt
            else:
                try:
                    chosen = load_trainer(self, None if folder is None else Path(folder))
                except CheckpointError as exc:
                    if not self.dist.enabled:
                        raise
                    error = str(exc)
        if self.dist.enabled:
            chosen, error = self.dist.broadcast_object((chosen, error))
            if error is not None:
                raise CheckpointError(f"rank 0 could not resume: {error}")
            failed: CheckpointError | None = None
            if chosen is not None and not self.dist.is_main:
                try:
                    load_trainer(self, chosen)
                except CheckpointError as exc:
                    failed = exc
            bad = self.dist.all_reduce_sum(torch.tensor([float(failed is not None)]))
            if failed is not None:
                raise failed
            if bad.item():
                raise CheckpointError(
                    f"another rank could not load {chosen}; is the run folder on a file "
                    "system that every node shares?"
                )
        return chosen

    def _prune_epochs(self) -> None:
        if self.dist.is_main:
            prune_epoch_checkpoints(self.out / "checkpoints", self.config.keep_last)
