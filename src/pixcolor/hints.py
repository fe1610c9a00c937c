"""User colour hints: the JSON format, its checks, and the hint map a model sees.

The format (others' tools write it too)::

    {"points": [{"x": 120, "y": 45, "rgb": [200, 30, 40], "radius": 3}, ...]}

- ``x``, ``y``: pixels of the input image as displayed (after EXIF rotation), origin top-left;
- ``rgb``: the wanted colour, 0-255; only its chroma (Lab a, b) is used, the photo keeps its
  own lightness;
- ``radius``: optional, default 3: the hint covers the square of side ``2 * radius + 1`` input
  pixels around the point, mapped to the working size (at least one working-size pixel).

:func:`parse_hints` also takes a list of ``(x, y, (r, g, b))`` tuples. :func:`render_hints`
turns hints into the ``(1, 3, h, w)`` map of :mod:`pixcolor.models.hint_layers`;
:func:`simulate_hints` draws the hints evaluation uses, :func:`random_hint_maps` those of
training.

Example:
    >>> hints = parse_hints({"points": [{"x": 10, "y": 20, "rgb": [200, 30, 40]}]})
    >>> render_hints(hints, (64, 64), (32, 32))[0, 2].sum().item()  # 7x7 pixels -> 4x4 cells
    16.0
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pixcolor.color import normalize_ab, rgb_to_lab
from pixcolor.errors import PixcolorError

__all__ = [
    "DEFAULT_RADIUS",
    "Hint",
    "HintError",
    "check_inside",
    "hints_to_json",
    "load_hints",
    "parse_hints",
    "pool_hints",
    "random_hint_maps",
    "read_hints",
    "read_json_file",
    "render_hints",
    "simulate_hints",
]

DEFAULT_RADIUS = 3
MAX_RADIUS = 256
MAX_POINTS = 1000  # bounds the work of one request
MAX_FILE_BYTES = 1 << 20
_POINT_KEYS = {"x", "y", "rgb", "radius"}


class HintError(PixcolorError, ValueError):
    """A hints file or value that cannot be used; the message is one line naming its source."""


@dataclass(frozen=True)
class Hint:
    """One hint: a point ``(x, y)`` in input pixels, its colour and half-side in pixels."""

    x: float
    y: float
    rgb: tuple[int, int, int]
    radius: int = DEFAULT_RADIUS


def _number(value: object, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HintError(f"{where}: {what} must be a number, got {value!r}")
    return float(value)


def _colour(value: object, where: str) -> tuple[int, int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise HintError(f"{where}: rgb must be three numbers 0-255, got {value!r}")
    channels = [_number(c, "rgb", where) for c in value]
    if any(not 0 <= c <= 255 for c in channels):
        raise HintError(f"{where}: rgb must be three numbers 0-255, got {list(value)!r}")
    return tuple(round(c) for c in channels)  # type: ignore[return-value]


def _point(item: object, where: str) -> Hint:
    if isinstance(item, Hint):
        return item
    if isinstance(item, Mapping):
        unknown = sorted(set(item) - _POINT_KEYS)
        if unknown:
            raise HintError(f"{where}: unknown key {unknown[0]!r} (a point has x, y, rgb, radius)")
        missing = [k for k in ("x", "y", "rgb") if k not in item]
        if missing:
            raise HintError(f"{where}: missing {missing[0]!r}")
        x, y, rgb, radius = item["x"], item["y"], item["rgb"], item.get("radius", DEFAULT_RADIUS)
    elif isinstance(item, (list, tuple)) and len(item) in (3, 4):
        x, y, rgb = item[:3]
        radius = item[3] if len(item) == 4 else DEFAULT_RADIUS
    else:
        raise HintError(f"{where}: a point is {{'x', 'y', 'rgb'[, 'radius']}} or (x, y, (r, g, b))")
    r = _number(radius, "radius", where)
    if r != int(r) or not 0 <= r <= MAX_RADIUS:
        raise HintError(f"{where}: radius must be a whole number 0-{MAX_RADIUS}, got {radius!r}")
    return Hint(_number(x, "x", where), _number(y, "y", where), _colour(rgb, where), int(r))


def parse_hints(data: object, source: str = "hints") -> list[Hint]:
    """Checked hints from the JSON dict, a list of ``(x, y, (r, g, b)[, radius])`` or ``Hint``s.

    Args:
        data: ``{"points": [...]}``, a list of points, or ``None`` (no hints).
        source: what error messages name (the file).

    Raises:
        HintError: a malformed point, colour or radius, or more than 1,000 points.
    """
    if data is None:
        return []
    points = data.get("points") if isinstance(data, Mapping) else data
    if isinstance(data, Mapping) and "points" not in data:
        raise HintError(f"{source}: no 'points' list (expected {{\"points\": [...]}})")
    if not isinstance(points, (list, tuple)):
        raise HintError(f"{source}: 'points' must be a list, got {type(points).__name__}")
    if len(points) > MAX_POINTS:
        raise HintError(f"{source}: {len(points)} points, at most {MAX_POINTS}")
    return [_point(p, f"{source}: point {i + 1}") for i, p in enumerate(points)]


def read_json_file(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """The parsed JSON of a hints file (photo or video), at most ``max_bytes`` long.

    Raises:
        HintError: unreadable, too large or not JSON; one line naming the file.
    """
    path = Path(path)
    try:
        if path.stat().st_size > max_bytes:
            raise HintError(f"{path}: hints file over {max_bytes >> 20} MiB")
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HintError(f"{path}: cannot read hints ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise HintError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None


def load_hints(path: str | Path) -> list[Hint]:
    """Read and check a hints JSON file.

    Raises:
        HintError: unreadable, too large (over 1 MiB), not JSON, or a bad point; one line
            naming the file.
    """
    return parse_hints(read_json_file(path), str(path))


def read_hints(
    hints: Mapping[str, Any] | Sequence[Any] | str | Path | None,
) -> tuple[list[Hint], str]:
    """Checked hints from the ``{"points": [...]}`` dict, a list of ``(x, y, (r, g, b))``
    tuples or :class:`Hint`\\ s, the path of a hints JSON file, or ``None`` (no hints); and
    what later errors about them name: the file, or ``"hints"``.

    Raises:
        HintError: a malformed hint or file, in one line naming the file (or "hints").
    """
    if isinstance(hints, (str, Path)):
        return load_hints(hints), str(hints)
    return parse_hints(hints), "hints"


def hints_to_json(hints: Sequence[Hint]) -> dict[str, Any]:
    """The JSON dict of ``hints`` (whole pixel coordinates are written as integers)."""

    def num(v: float) -> float | int:
        return int(v) if float(v).is_integer() else v

    return {
        "points": [
            {"x": num(h.x), "y": num(h.y), "rgb": list(h.rgb), "radius": h.radius} for h in hints
        ]
    }


def check_inside(
    hints: Sequence[Hint], image_hw: tuple[int, ...], source: str = "hints", what: str = "image"
) -> None:
    """Raise :class:`HintError` (naming ``source``) for the first point outside an image of
    ``image_hw`` (height, width) pixels, which the message calls ``what``."""
    height, width = image_hw[0], image_hw[1]
    for i, h in enumerate(hints):
        if not (0 <= h.x < width and 0 <= h.y < height):
            raise HintError(
                f"{source}: point {i + 1} ({h.x:g}, {h.y:g}) is outside the {width}x{height} {what}"
            )


def hint_ab(hints: Sequence[Hint]) -> Tensor:
    """``(N, 2)`` ab_norm of the hints' colours (their Lab a and b over 110)."""
    if not hints:
        return torch.zeros(0, 2)
    rgb = torch.tensor([h.rgb for h in hints], dtype=torch.float32).div_(255.0)
    lab = rgb_to_lab(rgb.T[:, :, None])  # (3, N, 1)
    return normalize_ab(lab[1:, :, 0]).T.contiguous()


def render_hints(
    hints: Sequence[Hint],
    image_hw: tuple[int, int],
    work_hw: tuple[int, int],
    source: str = "hints",
) -> Tensor:
    """The ``(1, 3, h, w)`` hint map of ``hints`` on an image of ``image_hw`` seen at ``work_hw``.

    Each hint's square of side ``2 * radius + 1`` input pixels is mapped to the working grid
    (at least one cell); later hints overwrite earlier ones where they overlap.

    Returns:
        ab_norm times mask (channels 0-1) and the mask in {0, 1} (channel 2), float32.

    Raises:
        HintError: a point outside the image (naming ``source``).
    """
    height, width = image_hw
    h, w = work_hw
    check_inside(hints, image_hw, source)
    out = torch.zeros(1, 3, h, w)
    for hint, ab in zip(hints, hint_ab(hints), strict=True):
        x0, x1 = _span(hint.x, hint.radius, width, w)
        y0, y1 = _span(hint.y, hint.radius, height, h)
        out[0, :2, y0:y1, x0:x1] = ab[:, None, None]
        out[0, 2, y0:y1, x0:x1] = 1.0
    return out


def _span(centre: float, radius: int, size: int, work: int) -> tuple[int, int]:
    """Working-grid cells ``[lo, hi)`` covering input pixels ``centre +- radius`` (clipped)."""
    scale = work / size
    lo = max(0, math.floor((math.floor(centre) - radius) * scale))
    hi = min(work, math.ceil((math.floor(centre) + radius + 1) * scale))
    lo = min(lo, work - 1)
    return lo, max(hi, lo + 1)


def pool_hints(hints: Tensor, size: tuple[int, int]) -> Tensor:
    """A hint map pooled to ``size``: mean ab over each cell's hinted pixels, and a 0/1 mask.

    Args:
        hints: ``(B, 3, H, W)``: ab_norm times mask, then the mask in {0, 1}.
        size: ``(h, w)`` of the grid.

    Returns:
        ``(B, 3, h, w)``: ab_norm (0 where no hint) and 1 where the cell holds a hinted pixel.
    """
    pooled = F.adaptive_avg_pool2d(hints.float(), size)
    mass = pooled[:, 2:3]
    has = (mass > 0).to(pooled.dtype)
    ab = pooled[:, :2] / mass.clamp_min(1e-8) * has
    return torch.cat([ab, has], dim=1)


def simulate_hints(
    rgb: np.ndarray, count: int, seed: int, radius: int = DEFAULT_RADIUS
) -> list[Hint]:
    """Hints drawn from the truth, as ``pixcolor evaluate --hints`` does.

    Points are uniform over the positions whose square lies inside the image; each colour is
    the truth's mean RGB over its square. The first ``k`` hints of a draw do not depend on
    ``count``, so the hints for N = 1, 2, 5, ... of one seed are nested.

    Args:
        rgb: ``(H, W, 3)`` uint8 true colours.
        count: number of hints.
        seed: seeds the draw (with the image's size).
        radius: half-side of each square, in input pixels.
    """
    height, width = rgb.shape[:2]
    r = min(radius, (min(height, width) - 1) // 2)
    rng = np.random.default_rng([seed, height, width])
    hints = []
    for _ in range(count):  # one point at a time, so draws are nested
        x, y = int(rng.integers(r, width - r)), int(rng.integers(r, height - r))
        patch = rgb[y - r : y + r + 1, x - r : x + r + 1].reshape(-1, 3).astype(np.float64)
        colour = tuple(int(c) for c in np.rint(patch.mean(0)))
        hints.append(Hint(float(x), float(y), colour, r))  # type: ignore[arg-type]
    return hints


def random_hint_maps(
    ab: Tensor, generator: torch.Generator, *, none_share: float = 0.15, mean_count: float = 8.0
) -> Tensor:
    """Training hints drawn from the truth: ``ab (B, 2, H, W)`` ab_norm -> ``(B, 3, H, W)``.

    Per image: no hints with probability ``none_share`` (so the model still colours on its own),
    else a geometric number of points with mean ``mean_count``, at most 50, each a square of
    side 1-9 px placed uniformly inside the image, coloured with the truth's mean over it
    (Zhang et al. 2017). The draws come from ``generator`` on the CPU.
    """
    b, _, height, width = ab.shape
    out = torch.zeros(b, 3, height, width, dtype=ab.dtype, device=ab.device)
    p = 1.0 / mean_count
    for i in range(b):
        if torch.rand(1, generator=generator).item() < none_share:
            continue
        u = torch.rand(1, generator=generator).item()
        count = min(50, 1 + int(math.log(max(u, 1e-12)) / math.log(1 - p)))
        for _ in range(count):
            side = int(torch.randint(1, 10, (1,), generator=generator))
            y = int(torch.randint(0, height - side + 1, (1,), generator=generator))
            x = int(torch.randint(0, width - side + 1, (1,), generator=generator))
            patch = ab[i, :, y : y + side, x : x + side]
            out[i, :2, y : y + side, x : x + side] = patch.mean((1, 2), keepdim=True)
            out[i, 2, y : y + side, x : x + side] = 1.0
    return out
