"""Weights and checkpoints: safetensors + JSON for weights, ``weights_only`` torch files for state.

A released model is a folder (or a ``.safetensors`` file with a ``.json`` beside it) holding
``model.safetensors`` and ``config.json`` (``{"arch": name, "kwargs": {...}, ...}``), as timm
and whisper keep the architecture with the weights; :mod:`pixcolor.models.hub` reads them. A
training checkpoint is a folder with the generator in that form, ``manifest.json`` listing
every file's size and SHA-256 and, in ``checkpoints/last``, ``discriminator.safetensors`` and
``state.pt`` (optimisers, schedulers, scaler, random stream, epoch, step).
Every file is written atomically; a checkpoint folder appears under its final name only once
complete, so a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from pixcolor import atomic
from pixcolor.errors import CheckpointError

MANIFEST = "manifest.json"
MODEL_FILE = "model.safetensors"
MODEL_CONFIG = "config.json"
# Permissions of checkpoint folders (mkdtemp's default is owner-only); files: pixcolor.atomic.
DIR_MODE = atomic.DIR_MODE


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`pixcolor.atomic.atomic_write_bytes`).

    Raises:
        PixcolorError: the write failed (disk full, no permission); ``path`` is unchanged and
            no temp file is left.
    """
    atomic.atomic_write_bytes(path, data)


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _state_dict_for_save(model: nn.Module, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """CPU copies of the state dict; ``dtype`` applies to floating parameters only, as buffers
    (ab-bin centres, BatchNorm statistics) are small and rounding them would shift outputs."""
    params = {key for key, _ in model.named_parameters()}
    out = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point() and key in params:
            value = value.to(dtype)
        out[key] = value.contiguous()
    return out


def save_model(
    model: nn.Module,
    folder: str | Path,
    arch: str,
    kwargs: Mapping[str, Any],
    *,
    dtype: torch.dtype | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save a generator as ``model.safetensors`` + ``config.json`` in ``folder``.

    Args:
        model: the network (any device; saved from CPU copies).
        folder: destination folder, created if needed.
        arch: registered generator name, so loading rebuilds the same class.
        kwargs: constructor arguments of that generator.
        dtype: store floating parameters as this dtype (e.g. ``torch.float16`` for release);
            buffers keep theirs.
        extra: more JSON fields for ``config.json`` (working size, metrics, ...).
    """
    folder = Path(folder)
    tensors = _state_dict_for_save(model, dtype)

    # Serialised here and written by pixcolor.atomic (safetensors' own save_file would
    # recreate the file owner-only, 0600).
    atomic.atomic_write_bytes(folder / MODEL_FILE, safetensors_bytes(tensors, {"arch": arch}))
    config = {"arch": arch, "kwargs": dict(kwargs), **dict(extra or {})}
    atomic_write_bytes(folder / MODEL_CONFIG, json.dumps(config, indent=2).encode())
    return folder


# --- training checkpoints -------------------------------------------------------------------


def write_checkpoint_dir(final: Path, files: Mapping[str, Any]) -> Path:
    """Write a checkpoint folder atomically.

    Args:
        final: destination folder (replaced if it exists).
        files: file name -> writer callable ``fn(path)`` that writes that file.

    The files go to a hidden temp folder beside ``final`` with a manifest of sizes and
    SHA-256s; only then is the folder renamed into place (the old one is removed after).
    Temp folders that a killed earlier write of ``final`` left behind are removed first.

    Raises:
        CheckpointError: a file could not be written (disk full, no permission); the previous
            ``final`` is kept and the temp folder removed.
    """
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    except OSError as exc:
        raise CheckpointError(f"{final}: cannot write checkpoint: {exc.strerror or exc}") from exc
    try:
        os.chmod(tmp, DIR_MODE)
        manifest = {}
        for name, writer in files.items():
            writer(tmp / name)
            os.chmod(tmp / name, atomic.FILE_MODE)  # safetensors' save_file makes files 0600
            manifest[name] = {
                "size": (tmp / name).stat().st_size,
                "sha256": sha256_file(tmp / name),
            }
        with open(tmp / MANIFEST, "w") as fh:
            json.dump(manifest, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        old = final.parent / f".{final.name}.old"
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
            raise CheckpointError(f"{final}: cannot write checkpoint: {reason}") from exc
        raise
    return final


def remove_partial_checkpoints(root: Path) -> list[Path]:
    """Delete the hidden ``.*.tmp`` folders that killed checkpoint writes left in ``root``.

    They are never loaded (checkpoints are found by their final names), only tidied away.
    Returns the folders removed.
    """
    removed = sorted(p for p in root.glob(".*.tmp") if p.is_dir()) if root.is_dir() else []
    for tmp in removed:
        shutil.rmtree(tmp, ignore_errors=True)
    return removed


def verify_checkpoint_dir(folder: Path) -> None:
    """Check every file of a checkpoint folder against its manifest, or raise CheckpointError."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder}: missing or unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or not manifest:
        raise CheckpointError(f"{folder / MANIFEST}: malformed manifest (no files listed)")
    for name, entry in manifest.items():
        path = folder / name
        if not isinstance(entry, dict) or not {"size", "sha256"} <= entry.keys():
            raise CheckpointError(f"{folder / MANIFEST}: malformed manifest entry for {name!r}")
        if not path.is_file():
            raise CheckpointError(f"{path}: listed in the manifest but missing")
        if path.stat().st_size != entry["size"]:
            raise CheckpointError(
                f"{path}: truncated ({path.stat().st_size} != {entry['size']} bytes)"
            )
        try:
            digest = sha256_file(path)
        except OSError as exc:
            raise CheckpointError(f"{path}: unreadable ({exc.strerror or exc})") from None
        if digest != entry["sha256"]:
            raise CheckpointError(f"{path}: checksum mismatch (corrupt file)")


def save_torch_state(state: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` training state (tensors and plain Python values only)."""
    torch.save(dict(state), path)


def load_torch_state(path: Path) -> dict[str, Any]:
    """Load training state with ``weights_only=True``: no code from the file is ever run."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # names code to run, or not a pickle at all
        found = re.search(
            r"(unsupported GLOBAL [^\s]+|Unsupported global: GLOBAL [^\s]+)", str(exc)
        )
        detail = found[1] if found else _first_sentence(exc)
        raise CheckpointError(
            f"{path}: refused training state ({detail}): only tensors and plain values are loaded"
        ) from None
    except Exception as exc:  # RuntimeError (truncated zip), EOFError, OSError ...
        raise CheckpointError(f"{path}: corrupt training state ({_first_sentence(exc)})") from None


def _first_sentence(exc: BaseException) -> str:
    """The first sentence of an error's message, without PyTorch's advice that follows."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.split(". ")[0].rstrip(".")[:200]
