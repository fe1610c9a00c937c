"""SRCNN training data: 33x33 Y sub-images of image pairs, made as the paper's ``generate_train.m``.

Each image's Y (8-bit, BT.601) is mod-cropped, shrunk with MATLAB bicubic ``imresize`` and
enlarged back to make the network input; sub-images of ``patch`` pixels are taken every
``stride`` pixels. All images live in two flat float32 tensors on the training device; a batch
is one gather whose index arithmetic also applies the random flips / 90-degree rotations, so
data cost next to nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pixcolor.color import rgb_to_y
from pixcolor.errors import PixcolorError
from pixcolor.files import collect_inputs
from pixcolor.imageio import read_image
from pixcolor.matlab import imresize, modcrop, quantize


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
