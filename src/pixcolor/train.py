"""The Pix2Pix training loop: G forward, D step on (fake, real), G step on GAN + lambda * L1.

:class:`Trainer` owns the networks, optimisers, schedulers and data order of one run; the run
folder, the epoch loop, checkpoints and resuming come from :class:`~pixcolor.epoch_run.EpochRun`.
Everything it does is a function of its :class:`~pixcolor.config.TrainConfig` and the data, so
``--resume`` continues bit for bit (fp32, CPU, fixed seed).
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from pixcolor.augment import resize
from pixcolor.color import rgb_to_lab_normalized
from pixcolor.config import TrainConfig
from pixcolor.device import resolve_device
from pixcolor.distributed import DistContext
from pixcolor.epoch_run import EpochRun, LogWindow, scheduler_order_warning_ignored
from pixcolor.errors import CheckpointError, PixcolorError
from pixcolor.losses import GANLoss, cast_loss, spread_loss
from pixcolor.run_folder import RunFolder, Writers
from pixcolor.train_checkpoint import checkpoint_files, load_checkpoint
from pixcolor.train_setup import (
    BinLogits,
    EpochSampler,
    ValidationScores,
    build_datasets,
    build_models,
    checkpoint_megabytes,
    class_weights_for,
    encoder_of,
    load_init_weights,
    load_teacher,
    make_train_loader,
    no_sync,
    prepare_batch,
    resolve_precision,
    simulated_hints,
)
from pixcolor.visualize import save_png

log = logging.getLogger(__name__)


class Trainer(EpochRun):
    """Train a colorizer as described by ``config``; see ``pixcolor train --help``."""

    def __init__(self, config: TrainConfig, *, dist: DistContext | None = None) -> None:
        self.config = config
        dist = dist or DistContext.single()
        self.device = dist.device or resolve_device(config.device)
        self.folder = RunFolder(config.out)
        self.out = self.folder.root
        self._init_run(dist)
        self.amp_dtype = resolve_precision(config.precision, self.device)
        self.train_set, self.val_set = build_datasets(config)
        if len(self.train_set) < self.dist.world_size:
            raise PixcolorError(
                f"{len(self.train_set)} training image(s) cannot feed "
                f"{self.dist.world_size} processes; give at least one per process"
            )
        with self.rng.active():  # initial weights come from the run's seed
            self._build_networks()
        if config.init_from:
            load_init_weights(self.G_raw, config)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.G_raw.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D_raw.parameters(), lr=config.lr_d, betas=betas)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, self._lr_factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, self._lr_factor)
        fp16 = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.gan_loss = GANLoss(config.gan_mode) if config.gan_mode != "none" else None
        self.bins_weights: Tensor | None = None
        if getattr(self.G_raw, "output_kind", "tanh") == "bins":
            self.bins_weights = class_weights_for(self.G_raw, self.train_set, config)
        self.teacher = (
            load_teacher(config.teacher, self.G_raw, self.device) if config.teacher else None
        )
        self.best_val_l1 = math.inf
        self.last_val: dict[str, Any] = {}

    def _build_networks(self) -> None:
        """G and D, their DDP wrappers and compiled forms; ``*_raw`` are the modules saved."""
        self.G, self.D = build_models(self.config, self.device)
        self.G_raw, self.D_raw = self.G, self.D
        # Under DDP, G's forward must yield what the loss uses (the bin logits for head="bins").
        self._g_logits = self.dist.enabled and getattr(self.G, "output_kind", "tanh") == "bins"
        if self._g_logits:
            self.G = BinLogits(self.G)
        self.G, self.D = self.dist.wrap(self.G), self.dist.wrap(self.D)
        self._ddp_g = self.G if isinstance(self.G, DistributedDataParallel) else None
        self._ddp_d = self.D if isinstance(self.D, DistributedDataParallel) else None
        if self.config.compile:
            self.G, self.D = torch.compile(self.G), torch.compile(self.D)

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
        return prepare_batch(rgb_u8, self.config, self.device, self.dist, epoch, step)

    def _autocast(self):
        on = self.amp_dtype is not None
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if on else nullcontext()

    def _hints(self, ab: Tensor, epoch: int, step: int) -> Tensor | None:
        return simulated_hints(self.G_raw, ab, self.config.seed, epoch, step, self.dist.rank)

    def _generate(
        self, L: Tensor, *, train: bool = True, hints: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Return (ab prediction, bin logits or None); ``hints`` for a hint-conditioned G.

        Validation under DDP (``train=False``) runs the unwrapped G: ranks may hold different
        numbers of validation batches, and every DDP forward starts a buffer broadcast.
        """
        G = self.G if train or not self.dist.enabled else self.G_raw
        args = (L,) if hints is None else (L, hints)
        if self.bins_weights is None:
            return G(*args), None
        through_ddp = G is self.G and self._g_logits
        logits = self.G(*args) if through_ddp else self.G_raw.forward_logits(*args)  # (B,Q,h,w)
        ab = self.G_raw.quantizer.decode(logits.float(), temperature=1.0)
        if ab.shape[-2:] != L.shape[-2:]:
            ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return ab, logits

    def train_step(
        self, L: Tensor, ab: Tensor, gan: bool, hints: Tensor | None = None
    ) -> dict[str, Tensor]:
        """One update: D on (fake.detach(), real), then G on GAN + lambda_L1 * L1.

        With ``grad_accum = k`` the gradients of k consecutive calls are summed (each loss
        scaled by 1/k) and the optimisers step on the k-th call.
        """
        accum = self.config.grad_accum
        first = self.global_step % accum == 0
        last = (self.global_step + 1) % accum == 0
        losses: dict[str, Tensor] = {}
        with self._grad_sync(last):
            with self._autocast():
                fake, logits = self._generate(L, hints=hints)
            if gan:
                losses["loss_d"] = self._d_step(L, fake, ab, first, last)
            with self._autocast():
                loss_g, terms = self._g_loss(L, fake, logits, ab, gan)
            if first:
                self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(loss_g / accum).backward()
            if last:
                self.scaler.step(self.opt_g)
                self.scaler.update()
        return losses | terms | {"loss_g": loss_g.detach()}

    def _d_step(self, L: Tensor, fake: Tensor, ab: Tensor, first: bool, last: bool) -> Tensor:
        """D's half of the step on (fake.detach(), real); returns its detached loss."""
        self.D.requires_grad_(True)
        with self._autocast():
            pred_fake = self.D(torch.cat([L, fake.detach()], 1))
            pred_real = self.D(torch.cat([L, ab], 1))
            loss_d = 0.5 * (self.gan_loss(pred_fake, False) + self.gan_loss(pred_real, True))
        if first:
            self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d / self.config.grad_accum).backward()
        if last:
            self.scaler.step(self.opt_d)
        self.D.requires_grad_(False)
        return loss_d.detach()

    def _g_loss(
        self, L: Tensor, fake: Tensor, logits: Tensor | None, ab: Tensor, gan: bool
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """G's loss (lambda_L1 * L1 + GAN + bins + spread + cast terms) and its detached terms."""
        cfg = self.config
        terms: dict[str, Tensor] = {}
        loss_l1 = F.l1_loss(fake.float(), ab)
        loss_g = cfg.lambda_l1 * loss_l1
        if gan:
            with self._d_frozen():
                pred = self.D(torch.cat([L, fake], 1))
            loss_gan = self.gan_loss(pred, True)
            loss_g = loss_g + cfg.lambda_gan * loss_gan
            terms["loss_g_gan"] = loss_gan.detach()
        if logits is not None:
            if self.teacher is not None:  # distillation: the teacher's distribution
                with torch.no_grad():
                    target = self.teacher.member_probs(L)
            else:  # the truth's bins, from ab at the logits' resolution
                target_ab = F.interpolate(ab, size=logits.shape[-2:], mode="area")
                target = self.G_raw.quantizer.encode(target_ab)
            loss_bins = F.cross_entropy(logits.float(), target, weight=self.bins_weights)
            loss_g = loss_g + cfg.lambda_bins * loss_bins
            terms["loss_bins"] = loss_bins.detach()
        if cfg.lambda_spread > 0:
            loss_spread = spread_loss(L, fake, ab)
            loss_g = loss_g + cfg.lambda_spread * loss_spread
            terms["loss_spread"] = loss_spread.detach()
        if cfg.lambda_cast > 0:
            terms["loss_cast"] = (loss_cast := cast_loss(fake, ab)).detach()
            loss_g = loss_g + cfg.lambda_cast * loss_cast
        terms["loss_l1"] = loss_l1.detach()
        return loss_g, terms

    def _grad_sync(self, sync: bool):
        """DDP all-reduces gradients on the final micro-step only (``no_sync`` on the others)."""
        return nullcontext() if sync else no_sync(self._ddp_g, self._ddp_d)

    def _d_frozen(self):
        """Context for D's forward in the generator step, where D takes no gradient.

        Without ``no_sync`` that forward would leave DDP expecting D's gradients, and the next
        micro-step's D backward would all-reduce even inside ``no_sync``.
        """
        return no_sync(self._ddp_d)

    # --- the loop ------------------------------------------------------------------------
    def fit(self, *, stop_at_step: int | None = None) -> dict[str, Any]:
        """Train until ``config.epochs`` (or ``stop_at_step`` global steps, for tests).

        The first Ctrl-C or SIGTERM saves ``checkpoints/last`` and returns early.

        Returns:
            The last validation metrics (empty without a validation set).
        """
        self.fit_epochs(stop_at_step)
        return self.last_val

    def _run_epoch(self, stop_at_step: int | None) -> bool:
        cfg, epoch = self.config, self.epoch
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
        bar = self.progress_bar(sampler.num_batches, f"epoch {epoch + 1}/{cfg.epochs}", leave=True)
        window = LogWindow()
        with bar:
            for batch in loader:
                if self.dist.enabled:  # own dropout noise per rank, from (seed, epoch, step, rank)
                    self.rng.reseed(
                        hash((cfg.seed, epoch, self.step_in_epoch, self.dist.rank)) % 2**63
                    )
                L, ab = self._prepare(batch["rgb"], epoch, self.step_in_epoch)
                hints = self._hints(ab, epoch, self.step_in_epoch)
                window.add(self.train_step(L, ab, gan, hints), L.shape[0] * self.dist.world_size)
                self.step_in_epoch += 1
                self.global_step += 1
                bar.update(1)
                if window.count == cfg.log_every or self.step_in_epoch == sampler.num_batches:
                    means, rate = window.close(self.diverged_where())
                    bar.set_postfix(
                        {k: f"{v:.3f}" for k, v in means.items()} | {"img/s": f"{rate:.1f}"}
                    )
                    lr = self.opt_g.param_groups[0]["lr"]
                    self.log_row({"kind": "train", "epoch": epoch + 1, "step": self.global_step,
                                  "lr_g": lr, "img_per_s": rate, **means})  # fmt: skip
                if self.should_stop(stop_at_step):
                    return False
        return True

    def _end_epoch(self) -> None:
        self.dist.broadcast_buffers(self.G_raw, self.D_raw)
        with scheduler_order_warning_ignored():
            self.sched_g.step()
            self.sched_d.step()

    def _validate_now(self) -> bool:
        cfg = self.config
        if self.val_set is None or (self.epoch % cfg.val_every and self.epoch != cfg.epochs):
            return False
        self.last_val = self.validate()
        is_best = self.last_val["val_l1"] < self.best_val_l1
        self.best_val_l1 = min(self.best_val_l1, self.last_val["val_l1"])
        return is_best

    # --- validation ----------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """Score the whole val set (see :class:`~pixcolor.train_setup.ValidationScores`),
        log the scores and save the comparison grid."""
        self.G.eval()
        cfg = self.config
        scores = ValidationScores(cfg.grid_images)
        hinted = ValidationScores(0) if getattr(self.G_raw, "takes_hints", False) else None
        sampler = EpochSampler(
            len(self.val_set), cfg.seed, 0, cfg.batch_size, shuffle=False, dist=self.dist
        )
        for batch in make_train_loader(self.val_set, sampler, cfg, self.device):
            rgb = batch["rgb"].to(self.device).float().div_(255.0)
            rgb = resize(rgb, cfg.size, cfg.size).clamp_(0, 1)
            L, ab = rgb_to_lab_normalized(rgb)
            with self._autocast():
                pred, _ = self._generate(L, train=False)
            scores.add(L, ab, pred.float(), rgb)
            if hinted is not None:  # the same simulated hints at every validation
                hints = self._hints(ab, epoch=-1, step=int(hinted.sums[4].item()))
                with self._autocast():
                    pred, _ = self._generate(L, train=False, hints=hints)
                hinted.add(L, ab, pred.float(), rgb)
        metrics = scores.result(self.dist)
        if hinted is not None:
            metrics |= {f"{k}_hints": v for k, v in hinted.result(self.dist).items()}
        self.log_row({"kind": "val", "epoch": self.epoch, "step": self.global_step, **metrics})
        grid = scores.grid()
        if self.dist.is_main and grid is not None:
            save_png(grid, self.out / "grids" / f"epoch_{self.epoch:04d}.png")
            self.log_image("val/grid", grid)
        log.info("epoch %d: val L1 %.3f (ab units), PSNR %.2f dB, colour spread %.2f of the "
                 "truth's", self.epoch, metrics["val_l1"], metrics["val_psnr"],
                 metrics["val_spread"])  # fmt: skip
        self._train_mode()
        return metrics

    def _log_start(self) -> None:
        if not self.dist.is_main:
            return
        cfg, world = self.config, self.dist.world_size
        prec = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]
        n_g = sum(p.numel() for p in self.G_raw.parameters()) / 1e6
        val = len(self.val_set) if self.val_set is not None else "no"
        log.info(
            f"pixcolor train: {len(self.train_set)} images, {val} val, device {self.device}, "
            f"{prec}, G {cfg.generator} ({n_g:.1f}M params), batch {cfg.batch_size} x {world} "
            f"process(es) x {cfg.grad_accum} accum = global batch "
            f"{cfg.batch_size * world * cfg.grad_accum}"
        )
        gan = self.gan_loss is not None
        full, generator = checkpoint_megabytes(self.G_raw, self.D_raw, gan=gan)
        log.info(
            f"each checkpoint writes: last {full:.0f} MB (full training state, for --resume); "
            f"best and epoch_N {generator:.0f} MB (generator only), the newest "
            f"{cfg.keep_last} epoch_N kept"
        )

    # --- checkpoints ---------------------------------------------------------------------
    def _checkpoint_files(self, full: bool) -> Writers:
        progress = self.progress_state()
        if not full:
            return checkpoint_files(self.config, self.G_raw, progress)
        state = {
            **progress,
            "best_val_l1": self.best_val_l1,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "bins_weights": self.bins_weights.cpu() if self.bins_weights is not None else None,
        }
        D = self.D_raw
        return checkpoint_files(self.config, self.G_raw, progress, discriminator=D, state=state)

    def _restore(self, folder: Path) -> None:
        state = load_checkpoint(folder, self.G_raw, self.D_raw)
        try:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.sched_g.load_state_dict(state["sched_g"])
            self.sched_d.load_state_dict(state["sched_d"])
            self.scaler.load_state_dict(state["scaler"])
            self.best_val_l1 = float(state["best_val_l1"])
            self.restore_progress(state)
            if state.get("bins_weights") is not None:
                self.bins_weights = state["bins_weights"].to(self.device)
        except (KeyError, ValueError, RuntimeError, TypeError, AttributeError, IndexError) as exc:
            raise CheckpointError(
                f"{folder}: training state does not fit this run ({exc})"
            ) from None
