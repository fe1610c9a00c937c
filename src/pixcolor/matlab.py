"""MATLAB's ``imresize(..., 'bicubic')``, ``uint8()`` rounding and ``modcrop``, in numpy.

SRCNN's published numbers (Dong et al., TPAMI 2016) come from MATLAB code, so the paper's
protocol (:mod:`pixcolor.sr_eval`) and the SRCNN training data need MATLAB's resize exactly:
Keys' cubic kernel with ``a = -0.5``, widened by ``1/scale`` when shrinking (antialiasing),
symmetric (mirror) border handling, the dimension shrunk most resized first. The vectorised
form follows the well-known Python ports (e.g. fatheral/matlab_imresize).

Example:
    >>> imresize(np.array([[0.0, 1.0]]), 2)[0].tolist()
    [-0.09375, 0.203125, 0.796875, 1.09375]
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["imresize", "modcrop", "quantize"]

# Keys' cubic convolution kernel: a = -0.5 (MATLAB's "bicubic"), support [-2, 2].
CUBIC_WIDTH = 4.0


def quantize(x: np.ndarray) -> np.ndarray:
    """MATLAB ``uint8(x)``: round half away from zero, saturate to 0..255 (as float64)."""
    return np.clip(np.floor(np.asarray(x, np.float64) + 0.5), 0.0, 255.0)


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``contributions``: weights and 0-based source indices, each ``(out_len, P)``."""
    width = CUBIC_WIDTH / scale if scale < 1 else CUBIC_WIDTH
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # their 1-based positions in the input
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    index = left[:, None] + np.arange(taps)[None, :]  # 1-based, may fall outside
    dist = u[:, None] - index
    weights = scale * _cubic(scale * dist) if scale < 1 else _cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    index = mirror[np.mod(index.astype(np.int64) - 1, mirror.size)]
    used = np.any(weights != 0, axis=0)
    return weights[:, used], index[:, used]


def _resize_axis(img: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    weights, index = _contributions(img.shape[axis], out_len, scale)
    src = np.moveaxis(img, axis, 0)  # (in_len, ...)
    shape = (out_len,) + (1,) * (src.ndim - 1)
    out = np.zeros((out_len, *src.shape[1:]), dtype=np.float64)
    for tap in range(weights.shape[1]):  # a few taps; each is one vectorised gather
        out += weights[:, tap].reshape(shape) * src[index[:, tap]]
    return np.moveaxis(out, 0, axis)


def imresize(
    img: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """MATLAB ``imresize(img, scale, 'bicubic')`` (antialiased when shrinking), in float64.

    Give exactly one of ``scale`` (output size ``ceil(scale * size)``, as MATLAB) or
    ``output_shape`` (per-axis scales ``out / in``). The dimension shrunk most is resized
    first, as MATLAB does. Values are not clipped.

    Args:
        img: ``(H, W)`` or ``(H, W, C)`` array, any real dtype (computed in float64).
        scale: resize factor, e.g. ``1 / 3`` or ``3``.
        output_shape: ``(out_H, out_W)``.

    Returns:
        ``(out_H, out_W[, C])`` float64.

    Example:
        >>> imresize(np.array([[0.0, 1.0]]), 2)[0].tolist()
        [-0.09375, 0.203125, 0.796875, 1.09375]
    """
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"img must be (H, W) or (H, W, C), got shape {arr.shape}")
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale and output_shape")
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        scales = (float(scale), float(scale))
        shape = tuple(math.ceil(scale * n) for n in arr.shape[:2])
    else:
        shape = tuple(int(n) for n in output_shape)  # type: ignore[union-attr]
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"output_shape must be two positive ints, got {output_shape}")
        scales = (shape[0] / arr.shape[0], shape[1] / arr.shape[1])
    for axis in sorted((0, 1), key=lambda a: scales[a]):  # stable: height first on ties
        if shape[axis] != arr.shape[axis] or scales[axis] != 1.0:
            arr = _resize_axis(arr, axis, shape[axis], scales[axis])
    return arr


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale``."""
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    return img[:h, :w]
