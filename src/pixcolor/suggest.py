"""Suggested colours at a point: the peaks of a model's ab distribution there.

Zhang et al. 2017 show the user a palette of the colours the network finds likely at the
clicked point. Neighbouring ab bins (10 units apart) look alike, so the palette keeps the most
likely bins at least ``min_distance`` ab units apart. Each is shown at the photo's own
lightness there, kept within ``SWATCH_LIGHTNESS`` so that swatches for a dark coat or a white
wall stay tellable apart (a hint's lightness is not used: the photo keeps its own).

Example:
    >>> centers = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.52, 0.0]])
    >>> palette(torch.tensor([0.2, 0.5, 0.3]), centers, np.array([128, 128, 128]), 3)
    [(211, 82, 130), (128, 128, 128)]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from pixcolor.color import AB_SCALE, lab_to_rgb, rgb_to_lab
from pixcolor.recolor import recolor_image

__all__ = ["SWATCH_LIGHTNESS", "palette", "palette_at"]

SWATCH_LIGHTNESS = (35.0, 85.0)  # CIE L range of the swatches


def palette(
    probs: Tensor, centers: Tensor, pixel: np.ndarray, k: int, min_distance: float = 20.0
) -> list[tuple[int, int, int]]:
    """Up to ``k`` distinct likely colours, most likely first.

    Args:
        probs: ``(Q,)`` probabilities of the ab bins at the point.
        centers: ``(Q, 2)`` bin centres in ab_norm (ab / 110).
        pixel: ``(3,)`` uint8 RGB of the photo at the point; its L is kept (within
            :data:`SWATCH_LIGHTNESS`).
        k: how many colours at most.
        min_distance: smallest ab distance (Lab units) between two colours of the palette.

    Returns:
        ``(r, g, b)`` tuples of ints in 0-255.
    """
    ab = centers.float() * AB_SCALE
    chosen: list[Tensor] = []
    for q in torch.argsort(probs.float(), descending=True).tolist():
        if len(chosen) == k:
            break
        if all(float(torch.dist(ab[q], c)) >= min_distance for c in chosen):
            chosen.append(ab[q])
    if not chosen:
        return []
    # A gray of the pixel's lightness (within SWATCH_LIGHTNESS), recoloured as outputs are:
    # out-of-gamut colours pulled towards the gray of that L (pixcolor.recolor).
    rgb = torch.from_numpy(np.asarray(pixel, dtype=np.float32).reshape(3, 1, 1) / 255.0)
    L = rgb_to_lab(rgb)[0].clamp(*SWATCH_LIGHTNESS)
    gray = lab_to_rgb(torch.cat([L[None], torch.zeros(2, 1, 1)]))
    gray_u8 = gray.mul(255.0).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    row = np.repeat(gray_u8, len(chosen), axis=1)
    ab_row = torch.stack(chosen).T[:, None, :].numpy()  # (2, 1, n)
    colours = recolor_image(row, ab_row, threads=1)[0]
    return [tuple(int(v) for v in c) for c in colours]  # type: ignore[misc]


def palette_at(
    net: nn.Module,
    x_in: Tensor,
    hint_map: Tensor | None,
    rgb: np.ndarray,
    x: float,
    y: float,
    k: int,
) -> list[tuple[int, int, int]]:
    """:func:`palette` at input pixel ``(x, y)`` of ``rgb (H, W, 3)`` uint8, from the mean bin
    distribution of ``net`` (an ab-bin EffUNet) on ``x_in (1, 1, h, w)`` L_norm and its hint map
    ``(1, 3, h, w)`` (or ``None``)."""
    probs = net.member_probs(x_in, hint_map)[0].cpu()  # (Q, h/4, w/4)
    gy = min(probs.shape[1] - 1, int(y * probs.shape[1] / rgb.shape[0]))
    gx = min(probs.shape[2] - 1, int(x * probs.shape[2] / rgb.shape[1]))
    return palette(probs[:, gy, gx], net.bin_centers.float().cpu(), rgb[int(y), int(x)], k)
