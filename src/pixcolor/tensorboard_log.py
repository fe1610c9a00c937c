"""TensorBoard event files beside ``metrics.jsonl``, when the ``tensorboard`` extra is installed.

Every metrics row becomes scalars (``train/loss_l1``, ``val/val_psnr``, ``speed/img_per_s``,
``lr/lr_g``, ...) at the row's global step, and the validation grid an image, so
``tensorboard --logdir runs`` shows every run. Without the package nothing is written and
training goes on as before; ``metrics.jsonl`` stays the record either way.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Row keys that are not series, and where the other keys go in TensorBoard.
_NOT_SCALARS = {"kind", "epoch", "step"}
_SPEED = ("img_per_s", "patches_per_s")


def scalar_tag(kind: str, key: str) -> str:
    """The TensorBoard tag of a metrics row's ``key`` (``kind`` is "train" or "val")."""
    if key in _SPEED:
        return f"speed/{key}"
    if key == "lr" or key.startswith("lr_"):
        return f"lr/{key}"
    return f"{kind}/{key}"


class TensorBoardLog:
    """Writes a run's scalars and images as TensorBoard events in ``folder`` (rank 0 only).

    Args:
        folder: the run folder (events go beside ``metrics.jsonl``).
        enabled: False writes nothing (other ranks, or ``tensorboard`` not installed).
    """

    def __init__(self, folder: Path, *, enabled: bool = True) -> None:
        self.folder = folder
        self._writer: Any = None
        self.enabled = enabled and available()

    def _open(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.folder))
        return self._writer

    def row(self, row: Mapping[str, Any]) -> None:
        """Write a metrics row's numbers as scalars at its ``step``."""
        if not self.enabled:
            return
        kind, step = str(row.get("kind", "train")), int(row.get("step", 0))
        writer = self._open()
        for key, value in row.items():
            if key not in _NOT_SCALARS and isinstance(value, (int, float)):
                writer.add_scalar(scalar_tag(kind, key), float(value), step)

    def image(self, tag: str, image: Image.Image, step: int) -> None:
        """Write an RGB image (e.g. the validation grid) at ``step``."""
        if self.enabled:
            pixels = np.asarray(image.convert("RGB"))  # (H, W, 3) uint8
            self._open().add_image(tag, pixels, step, dataformats="HWC")

    def close(self) -> None:
        """Flush and close the event file (a later row opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def available() -> bool:
    """Whether the ``tensorboard`` package is installed (checked without importing it)."""
    return importlib.util.find_spec("tensorboard") is not None
