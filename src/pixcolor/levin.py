"""The classical baseline for colour hints: Levin, Lischinski and Weiss 2004.

"Colorization using Optimization" (SIGGRAPH 2004) spreads the hinted colours by least squares:
each pixel's a (and b) should equal the weighted mean of its 3x3 neighbours', with weights
that fall with the difference in luminance, so colour flows along regions of similar
lightness and stops at edges. Hinted pixels are hard constraints. The weights follow the
authors' Matlab code (``getColorExploit.m``): with ``Y`` = L/100 in [0, 1],
``w_rs ~ exp(-(Y_r - Y_s)^2 / (2 sigma_r^2))`` normalised over the window, where
``2 sigma_r^2`` is 0.6 times the variance of ``Y`` over the 3x3 window, floored so that the
closest neighbour keeps at least 1% weight and at ``2e-6``.

The system is solved with scipy's sparse LU at about 256 px (one factorisation for a and b);
the ab is then upsampled bicubically and joined with the photo's full-resolution L, as
:meth:`pixcolor.pipeline.Colorizer.compose` does for the model.

Example:
    >>> import numpy as np
    >>> photo = np.full((40, 60, 3), 128, np.uint8)
    >>> out = levin_colorize(photo, [(30, 20, (200, 60, 50))])
    >>> bool(out[..., 0].mean() > out[..., 2].mean())   # the whole flat photo turned red
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixcolor.color import AB_SCALE, rgb_to_lab
from pixcolor.hints import parse_hints, pool_hints, render_hints
from pixcolor.imageio import ImageInput, as_uint8_rgb
from pixcolor.recolor import recolor_image

__all__ = [
    "HINT_REACH",
    "LEVIN_SIZE",
    "agreed_cast",
    "levin_ab",
    "levin_colorize",
    "levin_shape",
    "spread_residuals",
]

LEVIN_SIZE = 256  # long side of the solve, in pixels; the "about 256 px"
# From the authors' code: csig = 0.6 * window variance, at least -min(dY^2) / log(0.01)
# (the closest neighbour keeps >= 1% weight) and at least 2e-6 (flat windows).
_VARIANCE_FACTOR = 0.6
_CLOSEST_WEIGHT = 0.01
_SIGMA_FLOOR = 2e-6
# How far spread_residuals carries a hint's correction through a flat region before it has
# faded to 1/e: this fraction of the image's long side. Chosen on 12 held-out training photos
# (hint model, 1-20 simulated hints): no fading scored best by PSNR but moves the whole photo
# with one hint; 0.45 kept most of that gain and keeps a hint to its surroundings.
HINT_REACH = 0.45
SPREAD_SIDE = 112  # long side of spread_residuals' solve (half the default working size)
# The 8 neighbours of a 3x3 window, as (dy, dx).
_OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))


def levin_shape(height: int, width: int, size: int = LEVIN_SIZE) -> tuple[int, int]:
    """Solve shape ``(h, w)``: the long side scaled to ``size``, never enlarged, aspect kept.

    Example:
        >>> levin_shape(512, 384), levin_shape(100, 50)
        ((256, 192), (100, 50))
    """
    if height < 1 or width < 1 or size < 1:
        raise ValueError(f"need a positive image and size, got {width}x{height}, size {size}")
    scale = min(1.0, size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _neighbour_weights(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Affinities of ``y (h, w)`` to its 8 neighbours: weights and flat indices, ``(8, h, w)``.

    Missing neighbours (outside the image) get weight 0 and index -1; each pixel's weights
    sum to 1 (or to 0 for a 1x1 image).
    """
    h, w = y.shape
    padded = np.pad(y, 1, constant_values=np.nan)
    index = np.pad(np.arange(h * w).reshape(h, w), 1, constant_values=-1)
    nb = np.stack([padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _OFFSETS])
    cols = np.stack([index[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _OFFSETS])
    valid = cols >= 0
    count = valid.sum(0) + 1  # neighbours and the pixel itself
    mean = (np.where(valid, nb, 0.0).sum(0) + y) / count
    var = (np.where(valid, (nb - mean) ** 2, 0.0).sum(0) + (y - mean) ** 2) / count
    d2 = np.where(valid, (nb - y) ** 2, np.inf)  # (8, h, w)
    closest = np.where(valid.any(0), d2.min(0), 0.0)
    csig = np.maximum(_VARIANCE_FACTOR * var, closest / -math.log(_CLOSEST_WEIGHT))
    csig = np.maximum(csig, _SIGMA_FLOOR)
    weights = np.where(valid, np.exp(-np.where(valid, d2, 0.0) / csig), 0.0)
    total = weights.sum(0)
    weights /= np.where(total > 0, total, 1.0)
    return weights, cols


def levin_ab(
    L: np.ndarray, hint_map: np.ndarray | torch.Tensor, *, decay: float = 0.0
) -> np.ndarray:
    """Propagate hinted ab over ``L`` by Levin et al.'s least squares, at ``L``'s size.

    Args:
        L: ``(h, w)`` CIE L in [0, 100].
        hint_map: ``(3, h, w)`` or ``(1, 3, h, w)`` as :func:`pixcolor.hints.render_hints`
            makes: ab/110 times the mask (channels 0-1) and the mask in {0, 1} (channel 2).
        decay: >= 0; each free pixel's equation becomes ``(1 + decay) a_r = sum_s w_rs a_s``,
            so what is spread fades with distance (0: Levin et al.'s own, no fading).

    Returns:
        ``(2, h, w)`` float32 a and b in Lab units (about [-110, 110]); equal to the hints
        at hinted pixels, all zeros (gray) when nothing is hinted.

    Raises:
        ValueError: shapes that do not match.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    hm = np.asarray(hint_map.cpu() if isinstance(hint_map, torch.Tensor) else hint_map)
    hm = hm[0] if hm.ndim == 4 and hm.shape[0] == 1 else hm
    L = np.asarray(L, dtype=np.float64)
    if L.ndim != 2 or hm.shape != (3, *L.shape):
        raise ValueError(f"need L (h, w) and hint map (3, h, w), got {L.shape} and {hm.shape}")
    h, w = L.shape
    fixed = (hm[2] > 0).reshape(-1)
    if not fixed.any():
        return np.zeros((2, h, w), np.float32)
    weights, cols = _neighbour_weights(L / 100.0)
    n = h * w
    rows = np.broadcast_to(np.arange(n).reshape(1, h, w), cols.shape)
    # Free pixels: a_r - sum_s w_rs a_s = 0. Hinted pixels: a_r = hint (identity row).
    keep = (cols >= 0) & (weights > 0) & ~fixed.reshape(1, h, w)
    matrix = coo_matrix(
        (
            np.concatenate([np.where(fixed, 1.0, 1.0 + decay), -weights[keep]]),
            (
                np.concatenate([np.arange(n), rows[keep]]),
                np.concatenate([np.arange(n), cols[keep]]),
            ),
        ),
        shape=(n, n),
    ).tocsc()
    rhs = (hm[:2].reshape(2, n).astype(np.float64) * AB_SCALE).T  # (n, 2), zero where free
    ab = splu(matrix).solve(np.ascontiguousarray(rhs))  # (n, 2)
    return ab.T.reshape(2, h, w).astype(np.float32)


def levin_colorize(
    image: ImageInput,
    hints: Sequence[Any] | Mapping[str, Any] | None,
    *,
    size: int = LEVIN_SIZE,
    source: str = "hints",
) -> np.ndarray:
    """Colorize ``image`` from ``hints`` alone by Levin et al. 2004, at its own resolution.

    The photo's luminance is taken at a long side of ``size`` (bicubic, never enlarged), the
    hints are placed there as the model sees them (:func:`pixcolor.hints.render_hints`), a and
    b are solved for, upsampled bicubically and joined with the full-resolution L.

    Args:
        image: a path, PIL image, uint8 array ``(H, W[, C])`` or tensor (as for
            :meth:`pixcolor.pipeline.Colorizer.colorize`); colour inputs use their luminance.
        hints: the ``{"points": [...]}`` dict, a list of ``(x, y, (r, g, b))`` tuples or
            :class:`pixcolor.hints.Hint`\\ s, in input pixels; ``None`` or empty: gray.
        size: long side of the solve, in pixels (>= 1).
        source: what hint errors name (the file).

    Returns:
        ``(H, W, 3)`` uint8 RGB with the input's luminance.

    Raises:
        HintError: a malformed hint or a point outside the image.
    """
    parsed = parse_hints(hints, source)
    rgb = as_uint8_rgb(image, max_pixels=None)
    height, width = rgb.shape[:2]
    h, w = levin_shape(height, width, size)
    hint_map = render_hints(parsed, (height, width), (h, w), source)
    if not parsed:
        ab = np.zeros((2, h, w), np.float32)
    else:
        small = np.array(Image.fromarray(rgb).resize((w, h), Image.BICUBIC, reducing_gap=3.0))
        t = torch.from_numpy(small).permute(2, 0, 1).double().div_(255.0)
        ab = levin_ab(rgb_to_lab(t)[0].numpy(), hint_map)
    return recolor_image(rgb, ab, threads=torch.get_num_threads())


def spread_residuals(
    ab: np.ndarray,
    L: np.ndarray,
    hint_map: np.ndarray | torch.Tensor,
    reach: float = HINT_REACH,
    max_side: int = SPREAD_SIDE,
) -> np.ndarray:
    """Make a model's ab meet the hints exactly, spreading each correction along luminance.

    First the part of the corrections (hint minus model) that the hints agree on moves the
    whole photo (:func:`agreed_cast`: none for a single hint). What is left at each hinted
    pixel is propagated by :func:`levin_ab` with a fading of ``1 / (reach * long side)^2`` and
    added: hinted pixels take their hint's colour, nearby pixels of similar lightness follow,
    edges stop it.

    Args:
        ab: ``(2, h, w)`` the model's a and b in Lab units.
        L: ``(h, w)`` CIE L in [0, 100] at the same size.
        hint_map: ``(3, h, w)`` or ``(1, 3, h, w)`` (:func:`pixcolor.hints.render_hints`).
        reach: fade length as a fraction of the long side (> 0).
        max_side: the correction is solved with the long side at most this (area-averaged L,
            pooled hints), upsampled bilinearly, and hinted pixels then set to their hints: the
            sparse solve grows faster than the pixel count, and the correction is smooth.

    Returns:
        ``(2, h, w)`` float32 ab in Lab units; ``ab`` itself when nothing is hinted.
    """
    hm = np.asarray(hint_map.cpu() if isinstance(hint_map, torch.Tensor) else hint_map)
    hm = hm[0] if hm.ndim == 4 else hm
    ab = np.asarray(ab, dtype=np.float32)
    mask = hm[2] > 0
    if not mask.any():
        return ab
    correction = hm[:2] * AB_SCALE - ab  # hint minus model, Lab units (read where hinted)
    cast = agreed_cast(correction, mask)[:, None, None]
    ab = ab + cast
    residual = np.zeros_like(hm, dtype=np.float32)
    residual[:2] = np.where(mask, (correction - cast) / AB_SCALE, 0.0)
    residual[2] = mask
    h, w = L.shape
    sh, sw = levin_shape(h, w, max_side)
    decay = 1.0 / (reach * max(sh, sw)) ** 2
    if (sh, sw) == (h, w):
        return ab + levin_ab(L, residual, decay=decay)
    small_L = F.adaptive_avg_pool2d(torch.from_numpy(np.asarray(L, np.float32))[None], (sh, sw))
    small_hints = pool_hints(torch.from_numpy(residual)[None], (sh, sw))[0].numpy()
    spread = levin_ab(small_L[0].numpy(), small_hints, decay=decay)
    up = F.interpolate(torch.from_numpy(spread)[None], size=(h, w), mode="bilinear")[0].numpy()
    out = ab + up
    return np.where(mask, hm[:2] * AB_SCALE, out).astype(np.float32)


def agreed_cast(correction: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The shift of the whole photo's ab that the hints agree on: their shrunk mean correction.

    Each hint (a connected hinted patch) gives its mean correction ``c_i`` (hint minus model).
    Their mean ``m`` over ``n`` hints is shrunk by the positive-part James-Stein factor
    ``max(0, 1 - s^2 / (n |m|^2))``, ``s^2`` the hints' spread around ``m``: hints that agree
    (the model's colours are all too warm, or all too pale) move the whole photo, hints that
    disagree (a red coat and green grass) move nothing, and a single hint never does.

    Args:
        correction: ``(2, h, w)`` hint minus model ab, Lab units (read only where ``mask``).
        mask: ``(h, w)`` bool, the hinted pixels.

    Returns:
        ``(2,)`` float32 ab shift in Lab units (zeros with fewer than two hints).

    Example:
        >>> mask = np.zeros((8, 8), bool); mask[1, 1] = mask[6, 6] = True
        >>> agreed_cast(np.full((2, 8, 8), 10.0), mask).tolist()   # two hints, same correction
        [10.0, 10.0]
    """
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n < 2:
        return np.zeros(2, np.float32)
    index = np.arange(1, n + 1)
    per_hint = np.stack([np.asarray(ndimage.mean(c, labels, index)) for c in correction], 1)
    mean = per_hint.mean(0)
    spread = ((per_hint - mean) ** 2).sum() / (n - 1)
    weight = max(0.0, 1.0 - spread / (n * max(float((mean**2).sum()), 1e-12)))
    return (mean * weight).astype(np.float32)
