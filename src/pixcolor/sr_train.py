"""Training SRCNN on 33x33 Y sub-images (T91), validated on Set5 by the paper's protocol.

The data follow the paper's ``generate_train.m`` (see :mod:`pixcolor.sr_data`). Differences from
the paper, for short runs: Adam (lr 6e-4, last layer lr/10, cosine decay to 0 per step) instead
of SGD at 1e-4 / 1e-5 for 10^8 steps, "same"-padded convs (the loss covers the whole patch, not
its 21x21 centre) and Kaiming init (see ``models/srcnn.py``). On an H200, x3 for 92 epochs gave
Set5 32.22 / 32.32 / 32.28 dB at lr 3e-4 / 6e-4 / 1e-3; 130 epochs at 6e-4 gave 36.31 / 32.44 /
30.09 dB for x2 / x3 / x4 (paper, 9-1-5 on T91: 36.34 / 32.39 / 30.09). ``loss_margin`` leaves
the sub-image border out of the loss, as the paper's unpadded network did; on an H200, margin 8
at batch 512 for about 230 epochs (9.6k steps) gave 35.95 / 32.18 / 29.94 dB, below the
whole-patch loss at batch 128 (32.42 dB at x3, 23k steps), so it is off.

The run folder is the colorization trainer's (:mod:`pixcolor.run_folder`): ``train_config.json``,
``metrics.jsonl``, ``curves.png`` and ``checkpoints/{last,best,epoch_XXXX}``; ``--resume``
continues bit for bit. The exported weights (``model.safetensors`` + ``config.json``) load with
:func:`pixcolor.sr.load_upscaler`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor
from tqdm import tqdm

from pixcolor import checkpoint as ckpt
from pixcolor.augment import batch_generator
from pixcolor.device import resolve_device
from pixcolor.epoch_run import EpochRun, LogWindow
from pixcolor.errors import CheckpointError, ConfigError
from pixcolor.models import hub
from pixcolor.models.srcnn import SRCNN
from pixcolor.run_folder import RunFolder, Writers
from pixcolor.sr_config import SRTrainConfig
from pixcolor.sr_data import PatchSet, image_files, training_pair
from pixcolor.sr_eval import EvalImage, evaluate_prepared, prepare_eval
from pixcolor.train_setup import EpochSampler

__all__ = ["PatchSet", "SRTrainConfig", "SRTrainer"]

log = logging.getLogger(__name__)


@contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """Set ``torch.backends.cudnn.benchmark`` for the block only."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class SRTrainer(EpochRun):
    """Train SRCNN as ``config`` says; ``fit()``, ``resume()``, ``export()``."""

    full_state_everywhere = True  # a few hundred KB: a corrupt last falls back to an epoch

    def __init__(self, config: SRTrainConfig) -> None:
        self.config = cfg = config
        self.device = resolve_device(cfg.device)
        self.folder = RunFolder(cfg.out, "train_config.json")
        self.out = self.folder.root
        self._init_run()
        with self.rng.active():  # initial weights come from the run's seed
            self.model = SRCNN(**self.model_kwargs())
        if cfg.init:
            self._load_init(cfg.init)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=fmt)
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
        self.best_val_psnr = -math.inf
        self.last_val: dict[str, Any] = {}

    def _load_init(self, name_or_path: str | Path) -> None:
        """Copy the weights of an SRCNN (a shipped name, folder or file) into the fresh network."""
        path = hub.resolve(name_or_path, "upscaler")
        weights, config = hub.read_config(path)
        if config["arch"] != "srcnn" or config["kwargs"] != self.model_kwargs():
            raise ConfigError(
                f"{path}: --init needs SRCNN weights with {self.model_kwargs()}, "
                f"not {config.get('arch')} {config.get('kwargs')}"
            )
        hub.load_weights(self.model, weights)

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
        pred, m = self.model(x), self.config.loss_margin
        if m:  # only pixels whose whole receptive field lies inside the sub-image
            pred, y = pred[..., m:-m, m:-m], y[..., m:-m, m:-m]
        loss = F.mse_loss(pred, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def fit(self, *, stop_at_step: int | None = None) -> dict[str, Any]:
        """Train up to ``config.epochs`` (or ``stop_at_step`` global steps), export at the end.

        The first Ctrl-C or SIGTERM saves ``checkpoints/last`` and returns without exporting.

        Returns:
            The last validation metrics (empty without ``val``).
        """
        with cudnn_benchmark(self.config.cudnn_benchmark and self.device.type == "cuda"):
            finished = self.fit_epochs(stop_at_step)
        if finished:
            self.export()
        return self.last_val

    def _log_start(self) -> None:
        log.info(
            "pixcolor train-sr: x%d, %d sub-images, %d steps/epoch, device %s",
            self.config.scale,
            len(self.patches),
            self.steps_per_epoch,
            self.device,
        )

    def _run_epoch(self, stop_at_step: int | None) -> bool:
        cfg = self.config
        sampler = EpochSampler(
            len(self.patches), cfg.seed, self.epoch, cfg.batch_size, start_batch=self.step_in_epoch
        )
        self.model.train()
        desc = f"x{cfg.scale} epoch {self.epoch + 1}/{cfg.epochs}"
        window = LogWindow()
        with self.progress_bar(sampler.num_batches, desc, leave=False) as bar:
            for batch in sampler:
                gen = batch_generator(cfg.seed, self.epoch, self.step_in_epoch)
                transform = (
                    torch.randint(0, 8, (len(batch),), generator=gen)
                    if cfg.augment
                    else torch.zeros(len(batch), dtype=torch.long)
                )
                index = torch.tensor(batch, dtype=torch.long)
                loss = self.train_step(index.to(self.device), transform.to(self.device))
                window.add({"loss_mse": loss}, len(batch))
                self.step_in_epoch += 1
                self.global_step += 1
                bar.update(1)
                end_of_epoch = self.step_in_epoch == sampler.num_batches
                if self.global_step % cfg.log_every == 0 or end_of_epoch:
                    self._log_train(window, bar)
                if self.should_stop(stop_at_step):
                    return False
        return True

    def _log_train(self, window: LogWindow, bar: tqdm) -> None:
        means, rate = window.close(self.diverged_where())
        loss = means["loss_mse"]
        bar.set_postfix(loss=f"{loss:.2e}", psnr=f"{-10 * math.log10(max(loss, 1e-30)):.2f}")
        self.log_row(
            {
                "kind": "train",
                "epoch": self.epoch + 1,
                "step": self.global_step,
                "lr": self.opt.param_groups[0]["lr"],
                "loss_mse": loss,
                "patches_per_s": rate,
            }
        )

    def _validate_now(self) -> bool:
        if not self.val_images:
            return False
        self.last_val = self.validate()
        is_best = self.last_val["val_psnr"] > self.best_val_psnr
        self.best_val_psnr = max(self.best_val_psnr, self.last_val["val_psnr"])
        return is_best

    def validate(self) -> dict[str, Any]:
        """Paper-protocol PSNR on the validation images; logs and returns it."""
        result = evaluate_prepared(self.val_images, self.config.scale, self.model)
        metrics = {"val_psnr": result["srcnn"], "val_psnr_bicubic": result["bicubic"]}
        self.log_row({"kind": "val", "epoch": self.epoch, "step": self.global_step, **metrics})
        log.info(
            "epoch %d: val PSNR %.3f dB (bicubic %.3f)",
            self.epoch,
            metrics["val_psnr"],
            metrics["val_psnr_bicubic"],
        )
        return metrics

    # --- checkpoints -------------------------------------------------------------------------
    def _checkpoint_files(self, full: bool) -> Writers:
        model_config = {
            "arch": "srcnn",
            "kwargs": self.model_kwargs(),
            "scale": self.config.scale,
            "epoch": self.epoch,
            "step": self.global_step,
            "metrics": dict(self.last_val),
        }
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        files: dict[str, Any] = {
            ckpt.MODEL_FILE: lambda p: save_file(tensors, str(p), metadata={"arch": "srcnn"}),
            ckpt.MODEL_CONFIG: lambda p: p.write_text(json.dumps(model_config, indent=2)),
            "train_config.json": lambda p: p.write_text(
                json.dumps(self.config.to_dict(), indent=2)
            ),
        }
        if full:
            state = {
                **self.progress_state(),
                "best_val_psnr": self.best_val_psnr,
                "last_val": dict(self.last_val),
                "opt": self.opt.state_dict(),
            }
            files["state.pt"] = lambda p: ckpt.save_torch_state(state, p)
        return files

    def _restore(self, folder: Path) -> None:
        if not (folder / "state.pt").is_file():
            raise CheckpointError(f"{folder}: holds the network only, not the state to resume")
        hub.load_weights(self.model, folder / ckpt.MODEL_FILE)
        state = ckpt.load_torch_state(folder / "state.pt")
        try:
            self.opt.load_state_dict(state["opt"])
            self.best_val_psnr = float(state["best_val_psnr"])
            self.last_val = dict(state["last_val"])
            self.restore_progress(state)
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(
                f"{folder}: training state does not fit this run ({exc})"
            ) from None

    @staticmethod
    def _checkpoint_metrics(folder: Path) -> dict[str, Any]:
        """The validation metrics saved with a checkpoint (older run folders: in state.pt)."""
        _, model_config = hub.read_config(folder)
        if "metrics" in model_config:
            return dict(model_config["metrics"])
        return dict(ckpt.load_torch_state(folder / "state.pt").get("last_val", {}))

    def export(self, folder: str | Path | None = None) -> Path:
        """Save release weights (fp32 safetensors + config.json with scale and Set5 PSNRs)."""
        cfg = self.config
        folder = Path(folder or cfg.export or self.out / "export")
        model, metrics = self.model, self.last_val
        best = self.folder.checkpoints / "best"
        if cfg.export_from == "best" and best.is_dir():
            model = SRCNN(**self.model_kwargs())
            hub.load_weights(model, best / ckpt.MODEL_FILE)
            metrics = self._checkpoint_metrics(best)
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
