"""The SRCNN paper's evaluation protocol (``demo_SR.m``): Y PSNR against bicubic, Set5-style.

Per image: Y (BT.601, :func:`pixcolor.color.rgb_to_y`, rounded to 8 bits), mod-crop to the
scale, LR = ``imresize(Y, 1/scale)``, bicubic = ``imresize(LR, scale)``, SRCNN =
``model(bicubic / 255) * 255``; PSNR on 8-bit values with ``scale`` border pixels shaved.

Example:
    >>> evaluate_sr(["Set5/baby.png"], 3)["bicubic"]  # doctest: +SKIP
    33.91
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from pixcolor.color import rgb_to_y
from pixcolor.imageio import read_image
from pixcolor.matlab import imresize, modcrop, quantize
from pixcolor.sr import run_srcnn, run_srcnn_x8

__all__ = ["EvalImage", "evaluate_prepared", "evaluate_sr", "prepare_eval", "psnr_y"]


def psnr_y(a: np.ndarray, b: np.ndarray, shave: int) -> float:
    """PSNR (dB) of two Y images on the 0..255 scale, quantised to 8 bits, border shaved."""
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    mse = float(np.mean((quantize(a) - quantize(b)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


@dataclass(frozen=True)
class EvalImage:
    """One test image, prepared as the paper's ``demo_SR.m`` does.

    Attributes:
        name: file name.
        hr: ``(H, W)`` float64 ground-truth Y, 8-bit values in [16, 235], H and W mod-cropped.
        bicubic: ``(H, W)`` float64 bicubic baseline (down then up), 0..255 scale, unclipped.
    """

    name: str
    hr: np.ndarray
    bicubic: np.ndarray


def prepare_eval(hr_paths: Sequence[str | Path], scale: int) -> list[EvalImage]:
    """Read HR images and build the Y ground truth and bicubic input of the protocol.

    The Y is rounded to 8 bits, as MATLAB's ``rgb2ycbcr`` does for the uint8 images the
    paper's code reads; then ``imresize(Y, 1/scale)`` and ``imresize(LR, scale)``.
    """
    images = []
    for path in hr_paths:
        rgb = np.asarray(read_image(path))
        hr = modcrop(quantize(rgb_to_y(rgb)), scale)
        lr = imresize(hr, 1.0 / scale)
        images.append(EvalImage(Path(path).name, hr, imresize(lr, output_shape=hr.shape)))
    return images


def evaluate_prepared(
    images: Sequence[EvalImage],
    scale: int,
    model: nn.Module | None = None,
    *,
    self_ensemble: bool = False,
) -> dict[str, Any]:
    """PSNR (Y, 8-bit, ``scale`` pixels shaved) of bicubic and, with ``model``, SRCNN
    (with ``self_ensemble``, averaged over 8 flips / rotations, :func:`run_srcnn_x8`).

    Returns:
        ``{"scale", "images": [{"name", "bicubic", "srcnn"}], "bicubic", "srcnn"}`` with the
        means last; the ``srcnn`` entries are ``None`` without a model.
    """
    rows = []
    for im in images:
        row = {"name": im.name, "bicubic": psnr_y(im.hr, im.bicubic, scale), "srcnn": None}
        if model is not None:
            run = run_srcnn_x8 if self_ensemble else run_srcnn
            row["srcnn"] = psnr_y(im.hr, run(model, im.bicubic / 255.0) * 255.0, scale)
        rows.append(row)

    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return float(np.mean(values)) if values else None

    return {"scale": scale, "images": rows, "bicubic": mean("bicubic"), "srcnn": mean("srcnn")}


def evaluate_sr(
    hr_paths: Sequence[str | Path],
    scale: int,
    model: nn.Module | None = None,
    *,
    self_ensemble: bool = False,
) -> dict[str, Any]:
    """The SRCNN paper's protocol on HR images (e.g. Set5); see :func:`evaluate_prepared`.

    Per image: Y (BT.601, 8-bit), mod-crop to ``scale``, LR = ``imresize(Y, 1/scale)``,
    bicubic = ``imresize(LR, scale)``, SRCNN = ``model(bicubic / 255) * 255``; PSNR on 8-bit
    values with ``scale`` border pixels shaved.
    """
    return evaluate_prepared(
        prepare_eval(hr_paths, scale), scale, model, self_ensemble=self_ensemble
    )
