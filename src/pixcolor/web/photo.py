"""The work behind one request, run on a worker thread: colorize a photo, change its colour
strength, encode it. Every colour conversion is :mod:`pixcolor.color`'s."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from pixcolor.color import recolor_uint8, rgb_to_lab
from pixcolor.errors import ImageReadError, PixcolorError
from pixcolor.imageio import read_image
from pixcolor.web.errors import ApiError
from pixcolor.web.fields import FORMATS, ColorizeOptions, RenderOptions
from pixcolor.web.models import ModelSet

# zlib level of PNG results: levels 1-3 encode large photos several times faster than
# Pillow's default 6 for files a few percent larger; the server is local, so speed wins.
PNG_COMPRESS_LEVEL = 3
# JPEG results: quality 92 keeps film grain and faces clean at about a third of the PNG size.
JPEG_QUALITY = 92
# Previews (while the colour-strength slider moves): long side in pixels, JPEG quality.
PREVIEW_SIDE = 1024
PREVIEW_QUALITY = 85
# Pixels re-coloured at once by resaturate, so its float temporaries stay near 50 MB.
RESATURATE_TILE_PIXELS = 1 << 19


def colorize_photo(
    models: ModelSet, data: bytes, options: ColorizeOptions, *, max_pixels: int
) -> np.ndarray:
    """Decode an upload, colorize it and optionally upscale it.

    Returns:
        ``(H, W, 3)`` uint8 RGB: the photo's size times ``options.upscale``.

    Raises:
        ApiError: 400 for an unreadable file, unknown model or failed upscale; 413 for a photo
            (or an upscaled result) over ``max_pixels``.
    """
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
    result = colorizer.colorize(image, size=options.size, max_pixels=max_pixels)
    if scale > 1:
        try:
            result = models.upscaler(scale).upscale(result, scale)
        except PixcolorError as exc:
            raise ApiError(400, f"upscaling failed: {exc}") from None
    return np.asarray(result.convert("RGB"))


def preview_of(rgb: np.ndarray) -> np.ndarray:
    """A copy of ``rgb (H, W, 3) uint8`` whose long side is at most :data:`PREVIEW_SIDE`."""
    height, width = rgb.shape[:2]
    factor = PREVIEW_SIDE / max(height, width)
    if factor >= 1:
        return rgb
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC, reducing_gap=3.0))


def resaturate(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Change a colour photo's colour strength: its Lab a and b times ``factor``, L kept.

    Args:
        rgb: ``(H, W, 3)`` uint8 sRGB.
        factor: 0 gives the photo's own gray, 1 returns ``rgb`` itself, 2 doubles the chroma
            (colours that leave the sRGB gamut are pulled towards gray, as the colorizer does).

    Returns:
        ``(H, W, 3)`` uint8 sRGB with the luminance of ``rgb`` (to 8-bit rounding).
    """
    if factor == 1.0:
        return rgb
    height, width = rgb.shape[:2]
    out = np.empty_like(rgb)
    rows = max(1, RESATURATE_TILE_PIXELS // max(1, width))
    for y0 in range(0, height, rows):
        tile = torch.from_numpy(np.array(rgb[y0 : y0 + rows])).permute(2, 0, 1)  # (3, h, W)
        ab = rgb_to_lab(tile.float().div_(255.0))[1:] * factor  # (2, h, W) Lab units
        out[y0 : y0 + rows] = recolor_uint8(tile, ab).permute(1, 2, 0).numpy()
    return out


def encode(rgb: np.ndarray, options: RenderOptions) -> tuple[bytes, str]:
    """``rgb (H, W, 3) uint8`` at the asked colour strength, as file bytes and media type."""
    pixels = resaturate(rgb, options.saturation)
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    if options.preview:
        image.save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
        return buffer.getvalue(), FORMATS["jpeg"]
    if options.format == "jpeg":
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue(), FORMATS[options.format]
