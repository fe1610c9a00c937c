"""Colour hints on the page: a photo re-run with hints at screen size, and suggested colours.

Both work on the kept result's screen-size copy of the photo (its long side at most
:data:`pixcolor.web.photo.PREVIEW_SIDE`), so an edit costs one model run at the working size
and a 1024-px recolour, not the whole photo again. Hints arrive in the photo's own pixels, as
in the hints JSON format (:mod:`pixcolor.hints`), and are scaled here. The model work is the
public API's: :meth:`Colorizer.colorize` with ``hints`` and :meth:`Colorizer.suggest_colors`,
both through :meth:`Colorizer.hint_colorizer`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pixcolor.errors import PixcolorError
from pixcolor.hints import Hint, HintError, check_inside
from pixcolor.web.errors import ApiError
from pixcolor.web.fields import RenderOptions

if TYPE_CHECKING:
    from pixcolor.pipeline import Colorizer
    from pixcolor.web.models import ModelSet
    from pixcolor.web.photo import KeptResult

# Suggested colours per point: Zhang et al. 2017's palette shows about this many.
SUGGESTIONS = 8
MAX_SUGGESTIONS = 16


def accepts_hints(colorizer: Any) -> bool:
    """Whether a model follows hints: its network takes them, or its config names a hint model."""
    config = getattr(colorizer, "config", None) or {}
    return bool(getattr(colorizer, "takes_hints", False) or config.get("hints_model"))


def hint_model(colorizer: Any) -> Colorizer:
    """The colorizer that follows hints for ``colorizer``.

    Raises:
        ApiError: 400 with the model's own message when it takes no hints.
    """
    find = getattr(colorizer, "hint_colorizer", None)
    if find is None:
        raise ApiError(400, "this model takes no colour hints")
    try:
        return find()
    except PixcolorError as exc:
        raise ApiError(400, str(exc)) from None


def scale_hints(
    hints: Sequence[Hint], photo_size: tuple[int, int], copy_size: tuple[int, int]
) -> list[Hint]:
    """Hints on a photo of ``photo_size`` (width, height) moved onto a copy of ``copy_size``.

    Each square keeps about its size in the photo: side ``2 * radius + 1`` times the scale,
    rounded, at least one pixel (the working grid gets at least one cell either way).

    Raises:
        ApiError: 400 for a point outside the photo.
    """
    (width, height), (w, h) = photo_size, copy_size
    try:
        check_inside(hints, (height, width), "hints", "photo")
    except HintError as exc:
        raise ApiError(400, str(exc)) from None
    sx, sy = w / width, h / height
    scaled = []
    for hint in hints:
        radius = max(0, round(((2 * hint.radius + 1) * min(sx, sy) - 1) / 2))
        x, y = min(w - 1.0, hint.x * sx), min(h - 1.0, hint.y * sy)
        scaled.append(Hint(x, y, hint.rgb, min(radius, hint.radius)))
    return scaled


def preview(
    models: ModelSet, kept: KeptResult, hints: Sequence[Hint], options: RenderOptions
) -> tuple[bytes, str, tuple[int, int]]:
    """The photo colorized with ``hints`` at screen size, encoded as a JPEG preview.

    Returns:
        The file's bytes, its media type and the preview's (width, height).

    Raises:
        ApiError: 400 for a model that takes no hints or a point outside the photo.
    """
    from pixcolor.web.photo import encode

    colorizer = models.colorizer(kept.model)
    if hints:
        hint_model(colorizer)
    source = kept.source
    scaled = scale_hints(hints, kept.source_size, (source.shape[1], source.shape[0]))
    try:
        image = colorizer.colorize(
            source, size=kept.size, saturation=options.saturation, hints=scaled or None
        )
    except HintError as exc:
        raise ApiError(400, str(exc)) from None
    data, media_type = encode(np.asarray(image), RenderOptions(options.saturation, "jpeg", True))
    return data, media_type, image.size


def suggestions(
    models: ModelSet,
    kept: KeptResult,
    point: tuple[float, float],
    hints: Sequence[Hint],
    k: int = SUGGESTIONS,
) -> list[list[int]]:
    """The ``k`` most likely colours at ``point`` (x, y in the photo's pixels), most likely
    first, given the other ``hints``: ``[[r, g, b], ...]`` in 0-255.

    Raises:
        ApiError: 400 for a point outside the photo or a model that cannot suggest colours.
    """
    colorizer = hint_model(models.colorizer(kept.model))
    width, height = kept.source_size
    if not (0 <= point[0] < width and 0 <= point[1] < height):
        raise ApiError(400, f"the point ({point[0]:g}, {point[1]:g}) is outside the "
                       f"{width}x{height} photo")  # fmt: skip
    source = kept.source
    copy_size = (source.shape[1], source.shape[0])
    target, *others = scale_hints([Hint(*point, (0, 0, 0)), *hints], kept.source_size, copy_size)
    try:
        colours = colorizer.suggest_colors(
            source, target.x, target.y, k=k, hints=others or None, size=kept.size
        )
    except PixcolorError as exc:  # HintError, or a model without an ab distribution
        raise ApiError(400, str(exc)) from None
    return [list(c) for c in colours]


def point_field(body: dict[str, object]) -> tuple[float, float]:
    """``x`` and ``y`` of a suggestions request: finite numbers (photo pixels)."""
    values = []
    for key in ("x", "y"):
        value = body.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value):  # type: ignore[arg-type]
            raise ApiError(400, f"{key} must be a number (photo pixels), got {value!r:.40}")
        values.append(float(value))  # type: ignore[arg-type]
    return values[0], values[1]


def count_field(body: dict[str, object]) -> int:
    """``k`` of a suggestions request: 1 to :data:`MAX_SUGGESTIONS` (default 8)."""
    value = body.get("k", SUGGESTIONS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SUGGESTIONS:
        raise ApiError(400, f"k must be a whole number from 1 to {MAX_SUGGESTIONS}")
    return value
