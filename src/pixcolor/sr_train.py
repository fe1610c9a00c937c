"""Training SRCNN on 33x33 Y sub-images (T91), validated on Set5 by the paper's protocol.

Data follow the paper's ``generate_train.m``: each image's Y (8-bit, BT.601) is mod-cropped,
shrunk with MATLAB bicubic ``imresize`` and enlarged back to make the network input; sub-images
of ``patch`` pixels are taken every ``stride`` pixels. All images live in two flat float32
tensors on the training device; a batch is one gather whose index arithmetic also applies the
random flips / 90-degree rotations, so data cost next to nothing.

Differences from the paper, for short runs: Adam (lr 6e-4, last layer lr/10, cosine decay to 0
per step) instead of SGD at 1e-4 / 1e-5 for 10^8 steps, "same"-padded convs (the loss covers the
whole patch, not its 21x21 centre) and Kaiming init (see ``models/srcnn.py``). On an H200, x3 for
92 epochs gave Set5 32.22 / 32.32 / 32.28 dB at lr 3e-4 / 6e-4 / 1e-3; 130 epochs at 6e-4 gave
36.31 / 32.44 / 30.09 dB for x2 / x3 / x4 (paper, 9-1-5 on T91: 36.34 / 32.39 / 30.09).
``loss_margin`` leaves the sub-image border out of the loss, as the paper's unpadded network
did; on an H200, margin 8 at batch 512 for about 230 epochs (9.6k steps) gave 35.95 / 32.18 /
29.94 dB, below the whole-patch loss at batch 128 (32.42 dB at x3, 23k steps), so it is off.

A run folder mirrors the colorization trainer's: ``train_config.json``, ``metrics.jsonl``,
``curves.png`` and ``checkpoints/{last,best,epoch_XXXX}`` (model + ``state.pt`` + manifest, each
written atomically); ``--resume`` continues bit for bit. The exported weights
(``model.safetensors`` + ``config.json``) load with :func:`pixcolor.sr.load_upscaler`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor
from tqdm import tqdm

from pixcolor import checkpoint as ckpt
from pixcolor.augment import batch_generator
from pixcolor.device import resolve_device
from pixcolor.errors import CheckpointError, ConfigError, PixcolorError
from pixcolor.files import collect_inputs
from pixcolor.imageio import read_image
from pixcolor.interrupt import GracefulInterrupt
from pixcolor.models.srcnn import SRCNN
from pixcolor.pipeline import model_path
from pixcolor.sr import (
    EvalImage,
    evaluate_prepared,
    imresize,
    modcrop,
    prepare_eval,
    quantize,
    rgb_to_y,
)
from pixcolor.train_checkpoint import prune_epoch_checkpoints, restore_first_good
from pixcolor.train_setup import EpochSampler
from pixcolor.visualize import plot_curves

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SRTrainConfig:
    """Everything an SRCNN run depends on; saved as ``train_config.json`` in the run folder."""

    data: str = ""  # training images folder (the paper: T91)
    val: str | None = None  # validation HR images (Set5), paper protocol each epoch
    extra: str | None = None  # optional folder of more photos, cut into sub-images too
    extra_limit: int | None = None  # use at most N extra photos
    out: str = "runs/srcnn-x3"  # run folder: checkpoints, metrics.jsonl, curves.png
    export: str | None = None  # exported weights folder at the end (None: <out>/export)
    export_from: Literal["last", "best"] = "last"  # which checkpoint is exported
    init: str | None = None  # start from these weights (folder or srcnn-xN; fine-tuning)
    scale: int = 3  # upscaling factor (2, 3, 4)
    patch: int = 33  # sub-image side (paper: 33)
    stride: int = 14  # sub-image stride (paper: 14)
    variant: Literal["955", "915"] = "955"  # SRCNN kernel sizes
    f1: int = 64  # filters of the first layer (paper: 64)
    f2: int = 32  # filters of the second layer (paper: 32)
    augment: bool = True  # random flips and 90-degree rotations of each sub-image
    loss_margin: int = 0  # border of each sub-image left out of the loss (paper-like: 8)
    epochs: int = 20  # passes over the ~22k T91 sub-images (CPU ~2 min each, GPU ~0.5 s)
    batch_size: int = 128  # sub-images per step (paper: 128)
    lr: float = 6e-4  # Adam base lr, last layer lr / 10 (paper: SGD 1e-4); 6e-4 best of 3e-4..1e-3
    schedule: Literal["cosine", "constant"] = "cosine"  # per-step lr decay to 0, or none
    seed: int = 0  # seeds weights, data order and augmentation
    device: str | None = None  # cuda / mps / cpu; None = best available
    channels_last: bool = True  # NHWC convolutions (about 2x faster on CPU)
    log_every: int = 20  # steps between metrics.jsonl rows
    keep_last: int = 2  # keep checkpoints of the last N epochs (plus last and best)

    def __post_init__(self) -> None:
        checks = [
            (self.scale >= 2, "scale must be >= 2"),
            (self.patch >= 8 and self.stride >= 1, "patch must be >= 8 and stride >= 1"),
            (self.f1 >= 1 and self.f2 >= 1, "f1 and f2 must be >= 1"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (0 < self.lr < 1, "lr must be in (0, 1)"),
            (self.log_every >= 1 and self.keep_last >= 0, "log_every >= 1, keep_last >= 0"),
            (self.extra_limit is None or self.extra_limit > 0, "extra_limit must be positive"),
            (
                0 <= 2 * self.loss_margin < self.patch,
                "loss_margin must leave part of the patch (0 <= 2 x margin < patch)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid SR config: {message}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> SRTrainConfig:
        """Return a copy with ``changes``, refusing unknown keys."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown SR config key(s) {unknown}")
        return dataclasses.replace(self, **changes)

    def save(self, path: Path) -> None:
        """Write the config as JSON, atomically."""
        ckpt.atomic_write_bytes(path, json.dumps(self.to_dict(), indent=2).encode())

    @classmethod
    def load(cls, path: Path) -> SRTrainConfig:
        """Read a config saved by :meth:`save`."""
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read SR config ({exc})") from None
        return cls().replace(**values)


# --- data ------------------------------------------------------------------------------------


def image_files(folder: str, limit: int | None = None) -> list[Path]:
    """Image files under ``folder`` (sorted, recursive), at most ``limit``."""
    found, problems = collect_inputs([folder])
    if not found:
        reason = problems[0][1] if problems else "no images"
        raise PixcolorError(f"{folder}: {reason}")
    return [item.path for item in found][:limit]


def training_pair(path: Path, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bicubic input, HR target)``: ``(H, W)`` float64 Y on 0..255, mod-cropped to ``scale``."""
    hr = modcrop(quantize(rgb_to_y(np.asarray(read_image(path)))), scale)
    lr = imresize(hr, 1.0 / scale)
    return imresize(lr, output_shape=hr.shape), hr


# The 8 symmetries of a square as (swap axes, flip rows, flip columns).
_DIHEDRAL = [(s, fr, fc) for s in (False, True) for fr in (False, True) for fc in (False, True)]


class PatchSet:
    """All ``patch x patch`` sub-images of a set of image pairs, gathered on demand.

    Pixels of every image are stored once, flattened into ``inputs`` and ``targets`` (float32 in
    [0, 1]); a sub-image is its top-left flat index plus its image's row width.
    """

    def __init__(
        self,
        pairs: list[tuple[np.ndarray, np.ndarray]],
        patch: int,
        stride: int,
        device: torch.device,
    ) -> None:
        origins, widths, offset = [], [], 0
        for inp, _ in pairs:
            h, w = inp.shape
            ys, xs = np.arange(0, h - patch + 1, stride), np.arange(0, w - patch + 1, stride)
            starts = (ys[:, None] * w + xs[None, :]).ravel() + offset
            origins.append(starts)
            widths.append(np.full(starts.size, w))
            offset += h * w
        if not pairs or offset == 0 or sum(o.size for o in origins) == 0:
            raise PixcolorError(f"no {patch}x{patch} sub-images: images too small or missing")

        def flat(k: int) -> Tensor:
            arr = np.concatenate([p[k].ravel() for p in pairs]) / 255.0
            return torch.from_numpy(arr.astype(np.float32)).to(device)

        self.inputs, self.targets = flat(0), flat(1)
        self.origins = torch.from_numpy(np.concatenate(origins)).to(device)
        self.widths = torch.from_numpy(np.concatenate(widths)).to(device)
        r = torch.arange(patch, device=device)
        grids = []  # (8, 2, P, P): row and column offsets of each symmetry
        for swap, flip_r, flip_c in _DIHEDRAL:
            rows, cols = torch.meshgrid(r, r, indexing="ij")
            rows, cols = (cols, rows) if swap else (rows, cols)
            rows = patch - 1 - rows if flip_r else rows
            cols = patch - 1 - cols if flip_c else cols
            grids.append(torch.stack([rows, cols]))
        self.grids = torch.stack(grids)

    def __len__(self) -> int:
        return int(self.origins.numel())

    def batch(self, index: Tensor, transform: Tensor) -> tuple[Tensor, Tensor]:
        """Sub-images ``index`` (B,) under symmetries ``transform`` (B,) in 0..7.

        Returns:
            ``(input, target)``, each ``(B, 1, P, P)`` float32 in [0, 1].
        """
        grid = self.grids[transform]  # (B, 2, P, P)
        flat = (
            self.origins[index, None, None]
            + grid[:, 0] * self.widths[index, None, None]
            + grid[:, 1]
        )  # (B, P, P)
        return self.inputs[flat].unsqueeze(1), self.targets[flat].unsqueeze(1)


# --- the trainer -----------------------------------------------------------------------------


class SRTrainer:
    """Train SRCNN as ``config`` says; ``fit()``, ``resume()``, ``export()``."""

    def __init__(self, config: SRTrainConfig) -> None:
        self.config = cfg = config
        self.out = Path(cfg.out)
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed patch size: autotuning pays off
        torch.manual_seed(cfg.seed)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model = SRCNN(**self.model_kwargs())
        if cfg.init:
            self._load_init(model_path(cfg.init))
        self.model.to(self.device, memory_format=fmt)
        self.loss_margin = cfg.loss_margin
        self.opt = torch.optim.Adam(self.model.param_groups(cfg.lr))
        self.base_lrs = [g["lr"] for g in self.opt.param_groups]
        files = image_files(cfg.data)
        if cfg.extra:
            files += image_files(cfg.extra, cfg.extra_limit)
        pairs = [training_pair(p, cfg.scale) for p in tqdm(files, desc="sub-images", leave=False)]
        self.patches = PatchSet(pairs, cfg.patch, cfg.stride, self.device)
        self.val_images: list[EvalImage] = []
        if cfg.val:
            self.val_images = prepare_eval(image_files(cfg.val), cfg.scale)
        self.steps_per_epoch = EpochSampler(
            len(self.patches), cfg.seed, 0, cfg.batch_size
        ).num_batches
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0  # completed steps of the current epoch
        self.global_step = 0
        self.best_val_psnr = -math.inf
        self.last_val: dict[str, Any] = {}
        self._interrupt = GracefulInterrupt()  # first Ctrl-C: checkpoint and return

    def _load_init(self, path: Path) -> None:
        """Copy the weights of an SRCNN model folder or file into the fresh network."""
        weights, config = ckpt.read_model_config(path)
        if config.get("arch") != "srcnn" or config.get("kwargs", {}) != self.model_kwargs():
            raise ConfigError(
                f"{path}: --init needs SRCNN weights with {self.model_kwargs()}, "
                f"not {config.get('arch')} {config.get('kwargs')}"
            )
        ckpt.load_into(self.model, weights)

    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the network (stored with its weights)."""
        cfg = self.config
        return {"variant": cfg.variant, "channels": 1, "f1": cfg.f1, "f2": cfg.f2}

    def lr_factor(self, step: int) -> float:
        """Multiplier of the base lrs at ``step`` (cosine from 1 to 0 over the run)."""
        if self.config.schedule == "constant":
            return 1.0
        total = max(1, self.config.epochs * self.steps_per_epoch)
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    def train_step(self, index: Tensor, transform: Tensor) -> Tensor:
        """One Adam step of MSE on sub-images ``index``; returns the detached loss."""
        factor = self.lr_factor(self.global_step)
        for group, base in zip(self.opt.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor
        x, y = self.patches.batch(index, transform)
        pred, m = self.model(x), self.loss_margin
        if m:  # only pixels whose whole receptive field lies inside the sub-image
            pred, y = pred[..., m:-m, m:-m], y[..., m:-m, m:-m]
        loss = F.mse_loss(pred, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def fit(self, *, stop_at_step: int | None = None) -> dict[str, Any]:
        """Train up to ``config.epochs`` (or ``stop_at_step`` global steps), export at the end.

        Returns the last validation metrics (empty without ``val``).
        """
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        cfg.save(self.out / "train_config.json")
        log.info(
            "pixcolor train-sr: x%d, %d sub-images, %d steps/epoch, device %s",
            cfg.scale,
            len(self.patches),
            self.steps_per_epoch,
            self.device,
        )
        with self._interrupt:
            while self.epoch < cfg.epochs:
                if not self._run_epoch(stop_at_step):
                    self.save_checkpoint("last")
                    reason = "interrupted" if self._interrupt.requested else "stopped"
                    log.info("%s at step %d; resume with --resume", reason, self.global_step)
                    return self.last_val
                self.epoch += 1
                self.step_in_epoch = 0
                is_best = False
                if self.val_images:
                    self.last_val = self.validate()
                    is_best = self.last_val["val_psnr"] > self.best_val_psnr
                    self.best_val_psnr = max(self.best_val_psnr, self.last_val["val_psnr"])
                self.save_checkpoint("last")
                if is_best:
                    self.save_checkpoint("best")
                if cfg.keep_last:
                    self.save_checkpoint(f"epoch_{self.epoch:04d}")
                    prune_epoch_checkpoints(self.out / "checkpoints", cfg.keep_last)
        plot_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        self.export()
        return self.last_val

    def _run_epoch(self, stop_at_step: int | None) -> bool:
        cfg = self.config
        sampler = EpochSampler(
            len(self.patches), cfg.seed, self.epoch, cfg.batch_size, start_batch=self.step_in_epoch
        )
        self.model.train()
        bar = tqdm(
            total=sampler.num_batches,
            initial=self.step_in_epoch,
            dynamic_ncols=True,
            leave=False,
            desc=f"x{cfg.scale} epoch {self.epoch + 1}/{cfg.epochs}",
        )
        loss_sum, count, t0 = torch.zeros((), device=self.device), 0, time.perf_counter()
        for batch in sampler:
            gen = batch_generator(cfg.seed, self.epoch, self.step_in_epoch)
            transform = (
                torch.randint(0, 8, (len(batch),), generator=gen)
                if cfg.augment
                else torch.zeros(len(batch), dtype=torch.long)
            )
            index = torch.tensor(batch, dtype=torch.long)
            loss_sum += self.train_step(index.to(self.device), transform.to(self.device))
            count += 1
            self.step_in_epoch += 1
            self.global_step += 1
            bar.update(1)
            end_of_epoch = self.step_in_epoch == sampler.num_batches
            if self.global_step % cfg.log_every == 0 or end_of_epoch:
                loss = float(loss_sum) / count  # one device sync per log row
                if not math.isfinite(loss):
                    raise PixcolorError(
                        f"non-finite loss at step {self.global_step}; the last "
                        f"good checkpoint is {self.out / 'checkpoints' / 'last'}"
                    )
                rate = count * len(batch) / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{loss:.2e}", psnr=f"{-10 * math.log10(loss):.2f}")
                self._log(
                    {
                        "kind": "train",
                        "epoch": self.epoch + 1,
                        "step": self.global_step,
                        "lr": self.opt.param_groups[0]["lr"],
                        "loss_mse": loss,
                        "patches_per_s": rate,
                    }
                )
                loss_sum, count, t0 = torch.zeros_like(loss_sum), 0, time.perf_counter()
            if self._interrupt.requested or (
                stop_at_step is not None and self.global_step >= stop_at_step
            ):
                bar.close()
                return False
        bar.close()
        return True

    def validate(self) -> dict[str, Any]:
        """Paper-protocol PSNR on the validation images; logs and returns it."""
        result = evaluate_prepared(self.val_images, self.config.scale, self.model)
        metrics = {"val_psnr": result["srcnn"], "val_psnr_bicubic": result["bicubic"]}
        self._log({"kind": "val", "epoch": self.epoch, "step": self.global_step, **metrics})
        log.info(
            "epoch %d: val PSNR %.3f dB (bicubic %.3f)",
            self.epoch,
            metrics["val_psnr"],
            metrics["val_psnr_bicubic"],
        )
        return metrics

    def _log(self, row: dict[str, Any]) -> None:
        with open(self.out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")

    # --- checkpoints -------------------------------------------------------------------------
    def _model_config(self) -> dict[str, Any]:
        return {
            "arch": "srcnn",
            "kwargs": self.model_kwargs(),
            "scale": self.config.scale,
            "epoch": self.epoch,
            "step": self.global_step,
        }

    def save_checkpoint(self, name: str) -> Path:
        """Write ``checkpoints/<name>`` atomically: model, ``state.pt``, configs, manifest."""
        state = {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best_val_psnr": self.best_val_psnr,
            "last_val": dict(self.last_val),
            "opt": self.opt.state_dict(),
            "rng_cpu": torch.get_rng_state(),
        }
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        files = {
            ckpt.MODEL_FILE: lambda p: save_file(tensors, str(p), metadata={"arch": "srcnn"}),
            ckpt.MODEL_CONFIG: lambda p: p.write_text(json.dumps(self._model_config(), indent=2)),
            "state.pt": lambda p: ckpt.save_torch_state(state, p),
            "train_config.json": lambda p: p.write_text(
                json.dumps(self.config.to_dict(), indent=2)
            ),
        }
        return ckpt.write_checkpoint_dir(self.out / "checkpoints" / name, files)

    def resume(self, folder: str | Path | None = None) -> Path:
        """Restore from ``folder`` or the newest checkpoint that verifies (corrupt ones skipped)."""
        cand = restore_first_good(
            self.out / "checkpoints", None if folder is None else Path(folder), self._restore
        )
        log.info("resumed from %s at step %d", cand, self.global_step)
        self._truncate_metrics()
        return cand

    def _restore(self, folder: Path) -> None:
        ckpt.load_into(self.model, folder / ckpt.MODEL_FILE)
        state = ckpt.load_torch_state(folder / "state.pt")
        try:
            self.opt.load_state_dict(state["opt"])
            self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
            self.step_in_epoch = int(state["step_in_epoch"])
            self.best_val_psnr = float(state["best_val_psnr"])
            self.last_val = dict(state["last_val"])
            torch.set_rng_state(state["rng_cpu"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{folder}: training state does not fit this run ({exc})"
            ) from None

    def _truncate_metrics(self) -> None:
        """Drop log rows written after the checkpoint we resumed from."""
        path = self.out / "metrics.jsonl"
        if path.exists():
            keep = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= self.global_step
            ]
            ckpt.atomic_write_bytes(path, "".join(line + "\n" for line in keep).encode())

    def export(self, folder: str | Path | None = None) -> Path:
        """Save release weights (fp32 safetensors + config.json with scale and Set5 PSNRs)."""
        cfg = self.config
        folder = Path(folder or cfg.export or self.out / "export")
        model, metrics = self.model, self.last_val
        best = self.out / "checkpoints" / "best"
        if cfg.export_from == "best" and best.is_dir():
            model = SRCNN(**self.model_kwargs())
            ckpt.load_into(model, best / ckpt.MODEL_FILE)
            metrics = dict(ckpt.load_torch_state(best / "state.pt")["last_val"])
        extra = {
            "scale": cfg.scale,
            "set5_psnr": metrics.get("val_psnr"),
            "set5_bicubic": metrics.get("val_psnr_bicubic"),
            "epochs": self.epoch,
            "steps": self.global_step,
        }
        ckpt.save_model(
            model,
            folder,
            arch="srcnn",
            kwargs=self.model_kwargs(),
            dtype=torch.float32,
            extra=extra,
        )
        log.info("exported %s", folder)
        return folder
