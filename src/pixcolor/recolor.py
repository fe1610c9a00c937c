"""The full-resolution recolour: an 8-bit photo's own L joined with new ab, back to 8-bit sRGB.

This is the part of colorizing that touches every pixel of the full-size photo, so it is
written to be fast in plain numpy, with no compiler: the model's ab (at working size) is
upsampled bicubically and converted with the photo's luminance in tiles of
:data:`TILE_PIXELS` pixels, so that every temporary stays in the CPU cache, on one thread per
core (numpy releases the GIL in its loops). The per-pixel powers are table lookups: Y and
f(Y) per 8-bit gray value (photos colorized from gray have r = g = b), linear light per
channel value otherwise, and linear light -> 8-bit sRGB through a 65536-entry table. The
only per-pixel powers left are the cubes of f^-1 (two multiplications) and, for tiles that
are not gray, one cube root.

Out-of-gamut colours are pulled towards the gray of the same luminance in linear light (the
largest fraction of the chroma that keeps every channel in [0, 1]), so the output's L is the
input's L exactly before 8-bit rounding.

Measured with ``benchmarks/colorize_speed.py`` (a 4000x3000 photo, "compose") on this
project's 2-core CPU while another job used one core: 0.49 CPU-s per photo, against 3.55 for
the ``torch.compile``-d torch recolour it replaced, which also spent about 20 CPU-s compiling
in every new process (``benchmarks/first_photo.py``: 40.5 -> 5.7 CPU-s for a first photo).

Example:
    >>> rgb = np.full((2, 3, 3), 128, np.uint8)
    >>> ab_small = np.zeros((2, 1, 1), np.float32)  # a = b = 0: gray
    >>> recolor_image(rgb, ab_small)[0, 0].tolist()
    [128, 128, 128]
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from pixcolor.color import (
    D65_WHITE,
    LAB_EPSILON,
    LAB_INVERSE_THRESHOLD,
    LAB_OFFSET,
    LAB_SLOPE,
    RGB_FROM_XYZ,
    SRGB_ENCODED_THRESHOLD,
    SRGB_LINEAR_THRESHOLD,
    XYZ_FROM_RGB,
)

# Pixels per tile: about 20 float32 planes of 128 KB, which stay in a 1-2 MB L2 cache.
TILE_PIXELS = 1 << 15
# Resolution of the linear-light -> 8-bit sRGB table: fine enough that its error (< 2e-4 of
# full scale) never changes an 8-bit value except at ties.
LINEAR_LUT_SIZE = 65536
CUBIC_A = -0.75  # PyTorch's bicubic kernel parameter (upsample_bicubic2d)
MAX_SATURATION = 2.0  # the strongest colour-strength factor offered (2: twice the model's ab)

# Fills (a, b) planes for rows y0:y1, columns x0:x1 of the image: fill(y0, y1, x0, x1, a, b).
AbSource = Callable[[int, int, int, int, np.ndarray, np.ndarray], None]


class Tables:
    """The lookup tables of the recolour (float64 maths, stored as float32 / uint8).

    Attributes:
        y_gray: ``(256,)`` luminance Y (white = 1) of the gray value ``v`` (r = g = b = v).
        fy_gray: ``(256,)`` the Lab companding f(Y) of that gray.
        y_channel: ``(3, 256)`` each channel value's share of Y: ``Y = sum_c y_channel[c, v_c]``.
        srgb8: ``(LINEAR_LUT_SIZE,)`` uint8 sRGB of linear light ``i / (LINEAR_LUT_SIZE - 1)``.
    """

    def __init__(self) -> None:
        v = np.arange(256) / 255.0
        t = SRGB_ENCODED_THRESHOLD
        linear = np.where(v > t, ((np.maximum(v, t) + 0.055) / 1.055) ** 2.4, v / 12.92)
        wy = np.array(XYZ_FROM_RGB[1])
        self.y_channel = (wy[:, None] * linear[None, :]).astype(np.float32)
        y = linear * wy.sum()
        self.y_gray = y.astype(np.float32)
        self.fy_gray = _companding(y).astype(np.float32)
        grid = np.arange(LINEAR_LUT_SIZE) / (LINEAR_LUT_SIZE - 1)
        t = SRGB_LINEAR_THRESHOLD
        srgb = np.where(grid > t, 1.055 * np.maximum(grid, t) ** (1 / 2.4) - 0.055, grid * 12.92)
        self.srgb8 = np.round(srgb * 255.0).astype(np.uint8)


def _companding(y: np.ndarray) -> np.ndarray:
    """Lab's f(t): cube root above (6/29)^3, linear below (skimage's constants)."""
    return np.where(
        y > LAB_EPSILON, np.cbrt(np.maximum(y, LAB_EPSILON)), LAB_SLOPE * y + LAB_OFFSET
    )


@functools.lru_cache(maxsize=1)
def tables() -> Tables:
    """The recolour's tables, built once per process (constants, about 70 KB)."""
    return Tables()


def cubic_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Taps of a bicubic resize from ``n_in`` to ``n_out`` samples along one axis.

    The same kernel as ``F.interpolate(..., mode="bicubic", align_corners=False)``: A = -0.75,
    half-pixel centres, borders clamped.

    Returns:
        ``(index, weight)``: ``(n_out, 4)`` int64 source indices and float32 weights; output
        sample ``i`` is ``sum_k weight[i, k] * x[index[i, k]]``.
    """
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    left = np.floor(pos)
    t = (pos - left)[:, None]  # (n_out, 1) in [0, 1)
    a = CUBIC_A

    def inner(d: np.ndarray) -> np.ndarray:  # weight of a tap at distance d <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def outer(d: np.ndarray) -> np.ndarray:  # weight of a tap at distance 1 < d < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    weight = np.concatenate([outer(t + 1), inner(t), inner(1 - t), outer(2 - t)], 1)
    index = np.clip(left.astype(np.int64)[:, None] + np.arange(-1, 3), 0, n_in - 1)
    return index, weight.astype(np.float32)


def upsampled_ab(ab_small: np.ndarray, height: int, width: int) -> AbSource:
    """An :data:`AbSource` for ``ab_small (2, h, w)`` resized bicubically to ``height x width``.

    The resize along x is done once for the whole image (``(2, h, width)``, small); each tile
    then takes four rows of it per output row, so no full-size ab is ever held.
    """
    ab_small = np.asarray(ab_small, dtype=np.float32)
    ix, wx = cubic_taps(ab_small.shape[2], width)
    ab_x = ab_small[:, :, ix[:, 0]] * wx[:, 0]  # (2, h, W)
    for k in range(1, 4):
        ab_x += ab_small[:, :, ix[:, k]] * wx[:, k]
    ab_x = np.ascontiguousarray(ab_x)  # rows copied whole by each tile below
    iy, wy = cubic_taps(ab_small.shape[1], height)

    def fill(y0: int, y1: int, x0: int, x1: int, a: np.ndarray, b: np.ndarray) -> None:
        for plane, out in ((ab_x[0], a), (ab_x[1], b)):
            rows = out.reshape(y1 - y0, x1 - x0)
            tap = np.empty_like(rows)
            for k in range(4):
                np.take(plane[:, x0:x1], iy[y0:y1, k], axis=0, out=tap, mode="clip")
                tap *= wy[y0:y1, k, None]
                if k == 0:
                    rows[...] = tap
                else:
                    rows += tap

    return fill


def full_ab(ab: np.ndarray) -> AbSource:
    """An :data:`AbSource` for ``ab (2, H, W)`` already at full size (Lab units)."""

    def fill(y0: int, y1: int, x0: int, x1: int, a: np.ndarray, b: np.ndarray) -> None:
        a.reshape(y1 - y0, x1 - x0)[...] = ab[0, y0:y1, x0:x1]
        b.reshape(y1 - y0, x1 - x0)[...] = ab[1, y0:y1, x0:x1]

    return fill


def recolor_image(
    rgb: np.ndarray,
    ab_small: np.ndarray,
    *,
    saturation: float = 1.0,
    threads: int | None = None,
) -> np.ndarray:
    """Join the L of ``rgb`` with ``ab_small`` upsampled bicubically to its size.

    Args:
        rgb: ``(H, W, 3)`` uint8 sRGB; only its luminance is used.
        ab_small: ``(2, h, w)`` a and b in Lab units (about [-110, 110]), at any size.
        saturation: factor on ab before the conversion (1 = as given, 0 = gray).
        threads: worker threads (default: the usable cores).

    Returns:
        ``(H, W, 3)`` uint8 sRGB whose L equals the input's L to 8-bit rounding.
    """
    ab_small = np.asarray(ab_small, dtype=np.float32)
    if ab_small.ndim != 3 or ab_small.shape[0] != 2:
        raise ValueError(f"ab_small must be (2, h, w), got {ab_small.shape}")
    if not 0.0 <= saturation <= MAX_SATURATION:
        raise ValueError(f"saturation must be in [0, {MAX_SATURATION:g}], got {saturation:g}")
    if saturation != 1.0:
        ab_small = ab_small * np.float32(saturation)
    height, width = rgb.shape[:2]
    return recolor(rgb, upsampled_ab(ab_small, height, width), threads=threads)


def recolor(rgb: np.ndarray, ab: AbSource, *, threads: int | None = None) -> np.ndarray:
    """``(L of rgb, ab) -> sRGB``, tile by tile on ``threads`` threads.

    Args:
        rgb: ``(H, W, 3)`` uint8 sRGB.
        ab: where a and b come from (:func:`upsampled_ab`, :func:`full_ab`).
        threads: worker threads (default: the usable cores).

    Returns:
        ``(H, W, 3)`` uint8 sRGB.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    out = np.empty((height, width, 3), np.uint8)
    cols = min(width, TILE_PIXELS)
    rows = max(1, TILE_PIXELS // cols)
    tiles = [
        (y0, min(height, y0 + rows), x0, min(width, x0 + cols))
        for y0 in range(0, height, rows)
        for x0 in range(0, width, cols)
    ]
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    threads = max(1, min(threads, len(tiles)))

    def work(part: int) -> None:
        tile = _Tile(tables(), rows * cols)
        for y0, y1, x0, x1 in tiles[part::threads]:
            ab(y0, y1, x0, x1, tile.a[: (y1 - y0) * (x1 - x0)], tile.b[: (y1 - y0) * (x1 - x0)])
            tile.run(rgb[y0:y1, x0:x1], out[y0:y1, x0:x1])

    if threads == 1:
        work(0)
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="pixcolor-recolor") as pool:
            for done in [pool.submit(work, part) for part in range(threads)]:
                done.result()
    return out


# The Y row of XYZ_FROM_RGB sums to 1, so gray of luminance Y is r = g = b = Y in linear light.
# Linear RGB - Y, as a function of (X / Xn, Y, Z / Zn): the white point folded into the matrix.
_CHROMA_MATRIX = tuple((m[0] * D65_WHITE[0], m[1] - 1.0, m[2] * D65_WHITE[2]) for m in RGB_FROM_XYZ)


class _Tile:
    """Scratch planes for one thread, and the per-tile conversion."""

    def __init__(self, tables: Tables, size: int) -> None:
        self.t = tables
        self.a, self.b = np.empty(size, np.float32), np.empty(size, np.float32)
        self.y, self.fy = np.empty(size, np.float32), np.empty(size, np.float32)
        self.d = np.empty((3, size), np.float32)  # linear RGB minus Y, per channel
        self.s, self.u = np.empty(size, np.float32), np.empty(size, np.float32)
        self.index = np.empty((size, 3), np.int32)
        self.value = np.empty(size, np.intp)

    def luminance(self, rgb: np.ndarray, n: int) -> None:
        """Y and f(Y) of the tile ``rgb (r, c, 3) uint8`` into ``self.y[:n]``, ``self.fy[:n]``."""
        y, fy, value = self.y[:n], self.fy[:n], self.value[:n]
        red = rgb[..., 0]
        if np.array_equal(red, rgb[..., 1]) and np.array_equal(red, rgb[..., 2]):
            value.reshape(red.shape)[...] = red
            np.take(self.t.y_gray, value, out=y, mode="clip")
            np.take(self.t.fy_gray, value, out=fy, mode="clip")
            return
        u = self.u[:n]
        for c in range(3):
            value.reshape(red.shape)[...] = rgb[..., c]
            np.take(self.t.y_channel[c], value, out=fy if c == 0 else u, mode="clip")
            if c == 0:
                y[...] = fy
            else:
                y += u
        np.cbrt(y, out=fy)
        dark = y <= LAB_EPSILON
        if dark.any():
            np.multiply(y, LAB_SLOPE, out=u)
            u += LAB_OFFSET
            np.copyto(fy, u, where=dark)

    def inverse_companding(self, f: np.ndarray) -> None:
        """Replace ``f`` by f^-1(f) in place (cube above the threshold, linear below)."""
        u = self.u[: f.size]
        dark = f <= LAB_INVERSE_THRESHOLD
        any_dark = dark.any()
        if any_dark:
            np.subtract(f, LAB_OFFSET, out=u)
            u *= 1.0 / LAB_SLOPE
        np.multiply(f, f, out=self.s[: f.size])
        f *= self.s[: f.size]
        if any_dark:
            np.copyto(f, u, where=dark)

    def run(self, rgb: np.ndarray, out: np.ndarray) -> None:
        """Recolour the tile ``rgb (r, c, 3)`` with ``self.a``, ``self.b`` into ``out``."""
        n = rgb.shape[0] * rgb.shape[1]
        self.luminance(rgb, n)
        y, a, b, d, s, u = self.y[:n], self.a[:n], self.b[:n], self.d[:, :n], self.s[:n], self.u[:n]
        a *= 1.0 / 500.0  # fx = f(Y) + a / 500, then X / Xn = f^-1(fx)
        a += self.fy[:n]
        self.inverse_companding(a)
        b *= -1.0 / 200.0  # fz = f(Y) - b / 200, then Z / Zn = f^-1(fz)
        b += self.fy[:n]
        self.inverse_companding(b)
        for c, (mx, my, mz) in enumerate(_CHROMA_MATRIX):  # d_c = linear_c - Y
            np.multiply(a, mx, out=d[c])
            np.multiply(y, my, out=s)
            d[c] += s
            np.multiply(b, mz, out=s)
            d[c] += s
        # The gamut rule: out = Y + k * d with the largest k <= 1 keeping all channels in [0, 1].
        np.maximum(d[0], d[1], out=a)
        np.maximum(a, d[2], out=a)  # the largest d: k <= (1 - Y) / d_max
        np.subtract(1.0, y, out=u)
        np.maximum(a, u, out=a)
        np.maximum(a, 1e-12, out=a)
        np.divide(u, a, out=s)
        np.minimum(d[0], d[1], out=b)
        np.minimum(b, d[2], out=b)  # the smallest d: k <= Y / -d_min
        np.negative(b, out=b)
        np.maximum(b, y, out=b)
        np.maximum(b, 1e-12, out=b)
        np.divide(y, b, out=u)
        np.minimum(s, u, out=s)  # k
        scale = LINEAR_LUT_SIZE - 1
        for c in range(3):
            np.multiply(d[c], s, out=u)
            u += y
            np.clip(u, 0.0, 1.0, out=u)
            u *= scale
            u += 0.5
            self.index[:n, c] = u  # truncation of a value >= 0.5: rounding
        # Tiles are whole rows, or part of one row: always contiguous, so this writes in place.
        np.take(self.t.srgb8, self.index[:n], out=out.reshape(n, 3), mode="clip")


def recolor_uint8(rgb: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Give an 8-bit image new chroma while keeping its luminance: ``(L of rgb, ab) -> sRGB``.

    The tensor form of :func:`recolor` (table
    driven, in cache-sized tiles on every core, no compiler). It equals
    ``lab_to_rgb(cat(rgb_to_lab(rgb)[:1], ab))`` for in-gamut colours (to 8-bit rounding) and
    treats out-of-gamut colours by pulling them towards the gray of the same luminance in
    linear light, so the output's L is the input's L exactly before 8-bit rounding.

    Args:
        rgb: ``(3, H, W)`` uint8 sRGB; only its luminance is used.
        ab: ``(2, H, W)`` float a and b in Lab units (about [-110, 110]).

    Returns:
        ``(3, H, W)`` uint8 sRGB, on the CPU.
    """
    if rgb.dtype != torch.uint8 or rgb.ndim != 3 or rgb.shape[0] != 3:
        raise ValueError(f"rgb must be (3, H, W) uint8, got {tuple(rgb.shape)} {rgb.dtype}")
    if ab.ndim != 3 or ab.shape[0] != 2 or ab.shape[1:] != rgb.shape[1:]:
        raise ValueError(f"ab must be (2, {rgb.shape[1]}, {rgb.shape[2]}), got {tuple(ab.shape)}")
    pixels = rgb.detach().cpu().permute(1, 2, 0).contiguous().numpy()  # (H, W, 3)
    out = recolor(pixels, full_ab(ab.detach().float().cpu().numpy()))
    return torch.from_numpy(out).permute(2, 0, 1)
