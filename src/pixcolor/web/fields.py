"""The page's form fields and query parameters, checked: one clear 400 for each bad value."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from pixcolor.hints import Hint, HintError, parse_hints
from pixcolor.web.errors import ApiError
from pixcolor.working_size import MAX_SIZE, MIN_SIZE, check_size

# Upscale factors the API accepts besides "none" (0 and 1 also mean none).
UPSCALE_FACTORS = (2, 3, 4)
# Colour strength: 0 gray, 1 the model's own colours, 2 twice as strong.
MAX_SATURATION = 2.0
# Result file formats, by the name the page sends, with their media types.
FORMATS = {"png": "image/png", "jpeg": "image/jpeg"}
# Largest hints JSON a request may carry: pixcolor.hints' 1,000 points at about 60 bytes each.
MAX_HINTS_BYTES = 64 * 1024


@dataclass(frozen=True)
class ColorizeOptions:
    """How to colorize one photo."""

    model: str | None  # a name from /api/health, None for the server's default
    size: int | None  # working size, None for the model's own
    upscale: int  # 1 for none, else a factor of UPSCALE_FACTORS
    hints: tuple[Hint, ...] = ()  # colour hints in the photo's pixels (pixcolor.hints)


@dataclass(frozen=True)
class RenderOptions:
    """How to hand a result back."""

    saturation: float  # colour strength in [0, MAX_SATURATION]
    format: str  # a key of FORMATS
    preview: bool  # a small copy for the page's preview, not the full-size file


def colorize_options(fields: Mapping[str, str]) -> ColorizeOptions:
    """The ``model``, ``size``, ``upscale`` and ``hints`` fields of a colorize request."""
    return ColorizeOptions(
        model=fields.get("model") or None,
        size=_size(fields.get("size")),
        upscale=_upscale(fields.get("upscale")),
        hints=tuple(hints_field(fields.get("hints"))),
    )


def hints_field(value: object) -> list[Hint]:
    """Hints from a form field (JSON text) or a parsed JSON body value; none when absent.

    The format is :mod:`pixcolor.hints`' ``{"points": [{"x", "y", "rgb", "radius"}]}``; whether
    each point lies inside the photo is checked with the photo, later.

    Raises:
        ApiError: 400 naming the problem (not JSON, a bad point, colour or radius).
    """
    if value in (None, ""):
        return []
    if isinstance(value, str):
        if len(value) > MAX_HINTS_BYTES:
            raise ApiError(400, f"hints: more than {MAX_HINTS_BYTES // 1024} KiB of JSON")
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ApiError(400, f"hints: not valid JSON ({str(exc).splitlines()[0]})") from None
    try:
        return parse_hints(value, "hints")
    except HintError as exc:
        raise ApiError(400, str(exc)) from None


def render_options(fields: Mapping[str, str]) -> RenderOptions:
    """The ``saturation``, ``format`` and ``preview`` fields (form or query)."""
    fmt = (fields.get("format") or "png").lower().replace("jpg", "jpeg")
    if fmt not in FORMATS:
        raise ApiError(400, f"format must be png or jpeg, got {fmt[:40]!r}")
    preview = (fields.get("preview") or "").lower() in ("1", "true", "yes")
    return RenderOptions(_saturation(fields.get("saturation")), fmt, preview)


def _size(value: str | None) -> int | None:
    """``None`` (the model's default) or a working size the colorizer accepts."""
    if value in (None, "", "default"):
        return None
    try:
        return check_size(int(value), "size")
    except ValueError:  # not a number, or out of the colorizer's range (ConfigError)
        raise ApiError(
            400, f"size must be a whole number from {MIN_SIZE} to {MAX_SIZE}, got {value[:40]!r}"
        ) from None


def _upscale(value: str | None) -> int:
    """1 for none, else one of :data:`UPSCALE_FACTORS`."""
    text = (value or "").lower()
    if text in ("", "none", "0", "1"):
        return 1
    if text.isdigit() and int(text) in UPSCALE_FACTORS:
        return int(text)
    choices = ", ".join(str(f) for f in UPSCALE_FACTORS)
    raise ApiError(400, f"upscale must be none, {choices}; got {value[:40]!r}")


def _saturation(value: str | None) -> float:
    """1.0 when absent, else a number in [0, MAX_SATURATION]."""
    if value in (None, ""):
        return 1.0
    try:
        saturation = float(value)
    except ValueError:
        saturation = math.nan
    if not 0.0 <= saturation <= MAX_SATURATION:
        raise ApiError(
            400, f"saturation must be a number from 0 to {MAX_SATURATION:g}, got {value[:40]!r}"
        )
    return saturation
