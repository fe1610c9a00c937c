"""The files of a colorization checkpoint, and reading them back.

A checkpoint folder holds ``model.safetensors`` + ``config.json`` (the generator, loadable by
``pixcolor.load_model``) and ``train_config.json``; a full one also ``discriminator.safetensors``
and ``state.pt`` (optimisers, schedulers, scaler, random stream, epoch and step; read with
``weights_only=True``). :class:`~pixcolor.run_folder.RunFolder` adds ``manifest.json`` (sizes
and SHA-256) and writes the folder atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from pixcolor import checkpoint as ckpt
from pixcolor.config import TrainConfig
from pixcolor.errors import CheckpointError
from pixcolor.models import hub
from pixcolor.run_folder import Writers
from pixcolor.train_setup import generator_kwargs

DISCRIMINATOR_FILE = "discriminator.safetensors"
STATE_FILE = "state.pt"


def _tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def checkpoint_files(
    config: TrainConfig,
    generator: nn.Module,
    progress: Mapping[str, Any],
    *,
    discriminator: nn.Module | None = None,
    state: Mapping[str, Any] | None = None,
) -> Writers:
    """Writers of a checkpoint's files: the generator always; D and ``state`` when given.

    Args:
        config: the run's config (saved as ``train_config.json``).
        generator: G, saved with ``config.json`` naming its architecture and working size.
        progress: ``epoch`` and ``global_step`` (and, for a generator-only checkpoint, any
            small JSON values such as validation metrics), stored in ``config.json``.
        discriminator: D, for a full checkpoint.
        state: the training state, for a full checkpoint.
    """
    model_config = {
        "arch": config.generator,
        "kwargs": generator_kwargs(config),
        "size": config.size,
        "epoch": progress["epoch"],
        "step": progress["global_step"],
    }
    files: dict[str, Any] = {
        ckpt.MODEL_FILE: lambda p: save_file(
            _tensors(generator), str(p), metadata={"arch": config.generator}
        ),
        ckpt.MODEL_CONFIG: lambda p: p.write_text(json.dumps(model_config, indent=2)),
        "train_config.json": lambda p: p.write_text(json.dumps(config.to_dict(), indent=2)),
    }
    if discriminator is not None:
        files[DISCRIMINATOR_FILE] = lambda p: save_file(_tensors(discriminator), str(p))
    if state is not None:
        files[STATE_FILE] = lambda p: ckpt.save_torch_state(state, p)
    return files


def load_checkpoint(
    folder: Path, generator: nn.Module, discriminator: nn.Module | None
) -> dict[str, Any]:
    """Load G (and D, when the folder has it) from ``folder``; return its training state.

    Raises:
        CheckpointError: weights that do not fit, or a missing, refused or corrupt
            ``state.pt`` (a generator-only checkpoint cannot be resumed).
    """
    if not (folder / STATE_FILE).is_file():
        raise CheckpointError(
            f"{folder}: holds the generator only, not the training state to resume; "
            f"start a new run from it with --init-from {folder}"
        )
    hub.load_weights(generator, folder / ckpt.MODEL_FILE)
    if discriminator is not None:
        hub.load_weights(discriminator, folder / DISCRIMINATOR_FILE)
    return ckpt.load_torch_state(folder / STATE_FILE)
