"""The work behind one request, run on a worker thread: colorize a photo, change its colour
strength, encode it. Every colour conversion is :mod:`pixcolor.color`'s. The hint calls' work
is :mod:`pixcolor.web.hinting`'s."""

from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from pixcolor.color import rgb_to_lab
from pixcolor.errors import ImageReadError, PixcolorError
from pixcolor.hints import HintError
from pixcolor.imageio import read_image
from pixcolor.png import write_png
from pixcolor.web.errors import ApiError
from pixcolor.web.fields import FORMATS, ColorizeOptions, RenderOptions
from pixcolor.web.models import ModelSet

if TYPE_CHECKING:
    from pixcolor.pipeline import Colorizer

# zlib level of PNG results, written by pixcolor.png's parallel writer: a 12 MP photo in
# 1.1 s against Pillow's 3.7 s at level 3, for a file 11% larger (a gray 12 MP photo from
# benchmarks/first_photo.py, 2-core Xeon). The server is local, so speed wins; JPEG is smaller.
PNG_LEVEL = 1
# JPEG results: quality 92 keeps film grain and faces clean at about a third of the PNG size.
JPEG_QUALITY = 92
# Previews (while the colour-strength slider moves or hints change): long side in pixels (a
# screen's worth), JPEG quality.
PREVIEW_SIDE = 1024
PREVIEW_QUALITY = 85


def colorize_photo(
    models: ModelSet,
    data: bytes,
    options: ColorizeOptions,
    *,
    max_pixels: int,
    metadata: dict[str, bytes] | None = None,
) -> KeptResult:
    """Decode an upload, colorize it (with ``options.hints``, if any) and optionally upscale it.

    Returns:
        The result, ``(H, W, 3)`` uint8 RGB: the photo's size times ``options.upscale``, kept
        with a screen-size copy of the photo for later hint previews.

    Raises:
        ApiError: 400 for an unreadable file, unknown model, failed upscale, a hint outside the
            photo or a model that takes no hints; 413 for a photo (or an upscaled result) over
            ``max_pixels``.
    """
    from pixcolor.web.hinting import hint_model

    colorizer = models.colorizer(options.model)
    try:
        image = read_image(data, max_pixels=max_pixels)
    except ImageReadError as exc:
        if exc.reason.startswith("image too large"):
            reason = exc.reason.removeprefix("image too large: ")
            raise ApiError(413, f"photo too large: {reason}") from None
        raise ApiError(400, f"cannot read the upload as an image ({exc.reason})") from None
    scale = options.upscale
    if scale > 1 and image.width * image.height * scale**2 > max_pixels:
        raise ApiError(
            413,
            f"upscaling {image.width}x{image.height} by {scale} would give more "
            f"than the limit of {max_pixels} pixels; choose a smaller factor",
        )
    if options.hints:
        hint_model(colorizer)  # a model that takes no hints is a 400, not a failure
    source = shrink(image)
    try:
        result = colorizer.colorize(
            image, size=options.size, max_pixels=max_pixels, hints=list(options.hints) or None
        )
    except HintError as exc:
        raise ApiError(400, str(exc)) from None
    if scale > 1:
        try:
            result = models.upscaler(scale).upscale(result, scale)
        except PixcolorError as exc:
            raise ApiError(400, f"upscaling failed: {exc}") from None
    return KeptResult(
        np.asarray(result.convert("RGB")),
        metadata,
        source=source,
        source_size=image.size,
        model=options.model,
        size=options.size,
    )


def _preview_size(width: int, height: int) -> tuple[int, int] | None:
    """``(w, h)`` with the long side :data:`PREVIEW_SIDE`, or ``None`` if already that small."""
    factor = PREVIEW_SIDE / max(height, width)
    if factor >= 1:
        return None
    return max(1, round(width * factor)), max(1, round(height * factor))


def shrink(image: Image.Image) -> np.ndarray:
    """``(h, w, 3)`` uint8: an RGB image with its long side at most :data:`PREVIEW_SIDE`."""
    size = _preview_size(*image.size)
    if size is not None:
        image = image.resize(size, Image.BICUBIC, reducing_gap=3.0)
    return np.asarray(image.convert("RGB"))


def preview_of(rgb: np.ndarray) -> np.ndarray:
    """A copy of ``rgb (H, W, 3) uint8`` whose long side is at most :data:`PREVIEW_SIDE`."""
    size = _preview_size(rgb.shape[1], rgb.shape[0])
    if size is None:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC, reducing_gap=3.0))


def chroma_of(rgb: np.ndarray) -> torch.Tensor:
    """Lab a and b ``(2, H, W)`` of ``rgb (H, W, 3) uint8`` (keep it small: a preview)."""
    return rgb_to_lab(torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div_(255.0))[1:]


def resaturate(
    colorizer: Colorizer, rgb: np.ndarray, chroma: torch.Tensor, factor: float
) -> np.ndarray:
    """A result at another colour strength: its own L, with ``chroma`` times ``factor``.

    The full-size recolour is the colorizer's own (:meth:`Colorizer.compose`): ``chroma``
    (Lab a and b of the result at preview size, ``(2, h, w)``) is upsampled bicubically, as
    the model's working-size ab is, and joined with the L of ``rgb``; colours that leave the
    sRGB gamut are pulled towards gray.

    Args:
        colorizer: any loaded colorizer (its network is not run).
        rgb: ``(H, W, 3)`` uint8, the result at the model's own colour strength.
        chroma: ``(2, h, w)`` Lab a and b of that result at any smaller size.
        factor: 0 gives the photo's own gray, 1 returns ``rgb`` itself, 2 doubles the chroma.

    Returns:
        ``(H, W, 3)`` uint8 sRGB with the L of ``rgb`` (to 8-bit rounding).
    """
    if factor == 1.0:
        return rgb
    return colorizer.compose(rgb, chroma * factor)


def encode(
    pixels: np.ndarray, options: RenderOptions, metadata: dict[str, bytes] | None = None
) -> tuple[bytes, str]:
    """``pixels (H, W, 3) uint8`` as file bytes and their media type (previews as JPEG).

    ``metadata`` (the upload's EXIF and ICC profile, :func:`pixcolor.imageio.output_metadata`)
    goes into downloads, not into previews.
    """
    meta = {} if options.preview else dict(metadata or {})
    buffer = io.BytesIO()
    if options.preview or options.format == "jpeg":
        quality = PREVIEW_QUALITY if options.preview else JPEG_QUALITY
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, **meta)
        return buffer.getvalue(), FORMATS["jpeg"]
    write_png(pixels, buffer, level=PNG_LEVEL, **meta)
    return buffer.getvalue(), FORMATS["png"]


def render(colorizer: Colorizer, kept: KeptResult, options: RenderOptions) -> tuple[bytes, str]:
    """A kept result (or its preview) at the asked colour strength, encoded."""
    pixels = kept.preview if options.preview else kept.full
    pixels = resaturate(colorizer, pixels, kept.chroma, options.saturation)
    return encode(pixels, options, kept.metadata)


class KeptResult:
    """A finished result at the model's own colour strength, ready to re-render.

    Its preview and the preview's chroma are made on first use (a slider move), not while the
    user waits for the result. It also keeps what hint previews need: a screen-size copy of the
    photo, the photo's size, and the model and working size it was colorized with.
    """

    def __init__(
        self,
        rgb: np.ndarray,
        metadata: dict[str, bytes] | None = None,
        *,
        source: np.ndarray | None = None,
        source_size: tuple[int, int] | None = None,
        model: str | None = None,
        size: int | None = None,
    ) -> None:
        self.full = rgb  # (H, W, 3) uint8
        self.metadata = dict(metadata or {})  # the upload's EXIF and ICC profile
        self._source = source  # (h, w, 3) uint8, long side <= PREVIEW_SIDE; None: the result's
        # (width, height) of the photo as uploaded (after EXIF rotation), before any upscale
        self.source_size = source_size or (rgb.shape[1], rgb.shape[0])
        self.model = model  # the model's name on the server (None: the default)
        self.size = size  # working size (None: the model's own)

    @property
    def source(self) -> np.ndarray:
        """``(h, w, 3)`` uint8: the photo with its long side at most :data:`PREVIEW_SIDE`."""
        return self.preview if self._source is None else self._source

    @property
    def pixels(self) -> int:
        """Pixels held: the result and the photo's copy (what the result store budgets)."""
        source = 0 if self._source is None else self._source.shape[0] * self._source.shape[1]
        return self.full.shape[0] * self.full.shape[1] + source

    @functools.cached_property
    def preview(self) -> np.ndarray:
        """The result with its long side at most :data:`PREVIEW_SIDE`."""
        return preview_of(self.full)

    @functools.cached_property
    def chroma(self) -> torch.Tensor:
        """``(2, h, w)`` Lab a and b of the preview."""
        return chroma_of(self.preview)
