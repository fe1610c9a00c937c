"""Saving and restoring a :class:`~pixcolor.train.Trainer` (checkpoint folders, fallback, pruning).

A checkpoint folder holds ``model.safetensors`` + ``config.json`` (the generator, loadable by
``pixcolor.load_model``), ``discriminator.safetensors``, ``state.pt`` (everything else, read
with ``weights_only=True``), ``train_config.json`` and ``manifest.json`` (sizes and SHA-256).
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save_file

from pixcolor import checkpoint as ckpt
from pixcolor.errors import CheckpointError

if TYPE_CHECKING:
    from pixcolor.train import Trainer

log = logging.getLogger(__name__)
EPOCH_DIR = re.compile(r"^epoch_(\d{4,})$")


def _tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_trainer(trainer: Trainer, folder: Path) -> Path:
    """Write ``trainer``'s complete state to ``folder`` atomically."""
    from pixcolor.train_setup import generator_kwargs

    cfg = trainer.config
    model_config = {
        "arch": cfg.generator,
        "kwargs": generator_kwargs(cfg),
        "size": cfg.size,
        "epoch": trainer.epoch,
        "step": trainer.global_step,
    }
    state: dict[str, Any] = {
        "epoch": trainer.epoch,
        "step_in_epoch": trainer.step_in_epoch,
        "global_step": trainer.global_step,
        "world_size": trainer.dist.world_size,
        "best_val_l1": trainer.best_val_l1,
        "opt_g": trainer.opt_g.state_dict(),
        "opt_d": trainer.opt_d.state_dict(),
        "sched_g": trainer.sched_g.state_dict(),
        "sched_d": trainer.sched_d.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "bins_weights": trainer.bins_weights.cpu() if trainer.bins_weights is not None else None,
    }
    files = {
        ckpt.MODEL_FILE: lambda p: save_file(
            _tensors(trainer.G_raw), str(p), metadata={"arch": cfg.generator}
        ),
        ckpt.MODEL_CONFIG: lambda p: p.write_text(json.dumps(model_config, indent=2)),
        "discriminator.safetensors": lambda p: save_file(_tensors(trainer.D_raw), str(p)),
        "state.pt": lambda p: ckpt.save_torch_state(state, p),
        "train_config.json": lambda p: p.write_text(json.dumps(cfg.to_dict(), indent=2)),
    }
    return ckpt.write_checkpoint_dir(folder, files)


def candidate_checkpoints(root: Path) -> list[Path]:
    """Checkpoint folders of a run, best first to try: last, then epochs newest first, best.

    A kill between the two renames of :func:`~pixcolor.checkpoint.write_checkpoint_dir`
    leaves ``last`` (or ``best``) only as the complete ``.last.old``, which stands in for it.
    """
    epochs = sorted((p for p in root.glob("epoch_*") if EPOCH_DIR.match(p.name)), reverse=True)
    last, best = (root / n if (root / n).is_dir() else root / f".{n}.old" for n in ("last", "best"))
    return [p for p in [last, *epochs, best] if p.is_dir()]


def restore_first_good(
    root: Path, folder: Path | None, restore: Callable[[Path], None], *, clean: bool = True
) -> Path:
    """Restore from ``folder``, or from the newest checkpoint under ``root`` that verifies.

    Each candidate is checked against its manifest and handed to ``restore``; a corrupt or
    truncated one (any :class:`CheckpointError`) is refused with a warning and the next one is
    tried. With ``clean``, folders left by interrupted checkpoint writes are removed first.
    Shared by the colorization and SRCNN trainers.

    Returns:
        The folder restored from.
    """
    if clean:
        for partial in ckpt.remove_partial_checkpoints(root):
            log.info("removed %s, left by an interrupted checkpoint write", partial)
    candidates = [folder] if folder is not None else candidate_checkpoints(root)
    if not candidates:
        raise CheckpointError(f"{root}: no checkpoint to resume from")
    errors = []
    for cand in candidates:
        try:
            ckpt.verify_checkpoint_dir(cand)
            restore(cand)
        except CheckpointError as exc:
            errors.append(str(exc))
            log.warning("refusing checkpoint %s: %s", cand, exc)
            continue
        return cand
    raise CheckpointError("no usable checkpoint: " + "; ".join(errors))


def load_trainer(trainer: Trainer, folder: Path | None) -> Path:
    """Restore ``trainer`` from ``folder`` or from the newest checkpoint that verifies."""
    cand = restore_first_good(
        trainer.out / "checkpoints",
        folder,
        lambda f: _restore(trainer, f),
        clean=trainer.dist.is_main,
    )
    log.info("resumed from %s: epoch %d, step %d", cand, trainer.epoch + 1, trainer.step_in_epoch)
    if trainer.dist.is_main:  # rank 0 alone writes the run folder
        truncate_metrics(trainer.out / "metrics.jsonl", trainer.global_step)
    return cand


def _restore(trainer: Trainer, folder: Path) -> None:
    ckpt.load_into(trainer.G_raw, folder / ckpt.MODEL_FILE)
    ckpt.load_into(trainer.D_raw, folder / "discriminator.safetensors")
    state = ckpt.load_torch_state(folder / "state.pt")
    try:
        trainer.opt_g.load_state_dict(state["opt_g"])
        trainer.opt_d.load_state_dict(state["opt_d"])
        trainer.sched_g.load_state_dict(state["sched_g"])
        trainer.sched_d.load_state_dict(state["sched_d"])
        trainer.scaler.load_state_dict(state["scaler"])
        trainer.epoch = int(state["epoch"])
        trainer.global_step = int(state["global_step"])
        trainer.best_val_l1 = float(state["best_val_l1"])
        steps = int(state["step_in_epoch"])
        old_world = int(state.get("world_size", 1))
        if old_world != trainer.dist.world_size and steps:
            # Same images seen, expressed in batches of the new world size.
            steps = steps * old_world // trainer.dist.world_size
        trainer.step_in_epoch = steps
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"][: torch.cuda.device_count()])
        if state.get("bins_weights") is not None:
            trainer.bins_weights = state["bins_weights"].to(trainer.device)
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{folder}: training state does not fit this run ({exc})") from None


def truncate_metrics(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint we resumed from."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if _row_step(line) <= step]
    ckpt.atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def _row_step(line: str) -> float:
    """The ``step`` of a metrics.jsonl row; infinity for a blank or broken one (e.g. the
    half-written last line of a killed run), so that it is dropped."""
    try:
        row = json.loads(line)
        return float(row.get("step", 0)) if isinstance(row, dict) else math.inf
    except (ValueError, TypeError):
        return math.inf


def prune_epoch_checkpoints(root: Path, keep: int) -> None:
    """Delete ``epoch_*`` folders beyond the newest ``keep``."""
    epochs = sorted((p for p in root.glob("epoch_*") if EPOCH_DIR.match(p.name)), reverse=True)
    for old in epochs[keep:]:
        shutil.rmtree(old, ignore_errors=True)
