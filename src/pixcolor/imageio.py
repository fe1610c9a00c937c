"""Reading images safely, and PIL <-> tensor/array glue (writing them: :mod:`pixcolor.imagewrite`).

:func:`read_image` turns whatever a user holds (a path, bytes, a file object or a PIL image)
into an 8-bit RGB PIL image with its EXIF orientation applied, or raises
:class:`~pixcolor.errors.ImageReadError` with a one-line reason. It never changes Pillow's global
state (``Image.MAX_IMAGE_PIXELS``, ``ImageFile.LOAD_TRUNCATED_IMAGES``).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import stat
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps

from pixcolor.color import float_to_uint8, uint8_to_float
from pixcolor.errors import ImageReadError

logger = logging.getLogger(__name__)

# Largest width * height read_image accepts by default: 2x Pillow's DecompressionBombWarning
# threshold (Image.MAX_IMAGE_PIXELS = 89,478,485), so a 12000x9000 (108 MP) photo still loads.
# It equals Pillow's own hard limit (2 * MAX_IMAGE_PIXELS, DecompressionBombError), which
# Image.open enforces regardless, so a larger max_pixels (or None) cannot go past it.
DEFAULT_MAX_PIXELS = 178_956_970

# What a bad, truncated or hostile file can make Pillow's decoders raise.
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
)
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_WIDE_GRAY_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}
ORIENTATION_TAG = 0x0112  # EXIF "Orientation"; 1 = upright
_ARRAY_STRIP_PIXELS = 1 << 20  # pixels per strip in to_array (a few MB of temporaries)
ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | Image.Image
# What colorize and upscale accept: a path, a PIL image, a uint8 array or a tensor.
ImageInput = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor


def read_image(source: ImageSource, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read an image as 8-bit RGB, EXIF orientation applied, refusing bad or huge files.

    Handles every format Pillow reads (JPEG, PNG 8/16-bit, WebP, TIFF, BMP, GIF (first frame),
    CMYK JPEG, ...). 16-bit greys are scaled to 8 bits (``round(v / 257)``); transparent pixels
    are composited on white.

    Args:
        source: A file path, the encoded bytes, a binary file object, or a PIL image.
        max_pixels: Largest ``width * height`` accepted, checked from the header before any
            pixel is decoded. ``None`` leaves only Pillow's own hard limit (see
            :data:`DEFAULT_MAX_PIXELS`), which no value here can raise.

    Returns:
        A new PIL image in mode ``"RGB"``.

    Raises:
        ImageReadError: missing, unreadable, empty, truncated, corrupt, not an image, zero-size
            or too large; ``reason`` says which.
        TypeError: ``source`` is none of the accepted types.
        ValueError: ``max_pixels`` is not a positive int or ``None``.
    """
    if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels <= 0):
        raise ValueError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
    if isinstance(source, Image.Image):
        return _decode(source, getattr(source, "filename", None) or None, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageReadError(None, "empty file")
        return _open_and_decode(io.BytesIO(source), None, max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        with _open_path(path) as fp:
            return _open_and_decode(fp, path, max_pixels)
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        path = Path(name) if isinstance(name, str) else None
        return _open_and_decode(_rewindable(source, path), path, max_pixels)
    raise TypeError(
        "source must be a path, bytes, a binary file object or a PIL image, "
        f"got {type(source).__name__}"
    )


def _open_path(path: Path) -> BinaryIO:
    """Open a regular, non-empty file for reading, or raise ImageReadError."""
    try:
        info = os.stat(path)  # before open(): opening a FIFO would block
        if stat.S_ISDIR(info.st_mode):
            raise ImageReadError(path, "is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise ImageReadError(path, "not a regular file")
        if info.st_size == 0:
            raise ImageReadError(path, "empty file")
        return open(path, "rb")  # the caller closes it
    except FileNotFoundError:
        reason = "broken symbolic link" if os.path.islink(path) else "no such file"
        raise ImageReadError(path, reason) from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(path, "symbolic link loop") from None
        raise ImageReadError(path, f"cannot open: {exc.strerror or exc}") from None
    except ValueError as exc:  # e.g. a NUL in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ImageReadError(path, f"cannot open: {reason}") from None


def _rewindable(fp: BinaryIO, path: Path | None) -> BinaryIO:
    """Return a seekable stream over ``fp``'s remaining bytes; refuse an empty one."""
    try:
        if fp.seekable():
            start = fp.tell()
            empty = not fp.read(1)
            fp.seek(start)
        else:
            fp = io.BytesIO(fp.read())
            empty = fp.getbuffer().nbytes == 0
    except (OSError, ValueError) as exc:
        raise ImageReadError(path, f"cannot read: {exc}") from None
    if empty:
        raise ImageReadError(path, "empty file")
    return fp


def _open_and_decode(fp: BinaryIO, path: Path | None, max_pixels: int | None) -> Image.Image:
    """Identify the image in ``fp`` (header only), then hand it to :func:`_decode`."""
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check replaces Pillow's warning between 1x and 2x its limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, _bomb_reason(exc, max_pixels)) from None
    except Image.UnidentifiedImageError:
        raise ImageReadError(path, "not an image file") from None
    except _DECODE_ERRORS as exc:
        raise ImageReadError(path, _decode_reason(exc)) from None
    result = None
    try:
        result = _decode(img, path, max_pixels, owned=True)
        return result
    finally:
        if result is not img:  # the image itself is returned when nothing needed changing
            img.close()


def _decode(
    img: Image.Image, path: str | Path | None, max_pixels: int | None, *, owned: bool = False
) -> Image.Image:
    """Check the size, decode every pixel, apply EXIF orientation and convert to RGB.

    ``owned``: ``img`` was opened here, so it may be returned as is (an upright RGB image)
    instead of copied; a photo of 100 megapixels then costs one decoded copy, not two.
    """
    width, height = img.size
    _check_pixels(height, width, max_pixels, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()  # decode everything now, so truncation is caught here
            oriented = _apply_exif_orientation(img, path, owned)  # a new image unless owned
            return _to_rgb(oriented)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, _bomb_reason(exc, max_pixels)) from None
    except _DECODE_ERRORS as exc:
        raise ImageReadError(path, _decode_reason(exc)) from None


def _apply_exif_orientation(img: Image.Image, path: str | Path | None, owned: bool) -> Image.Image:
    """A rotated/flipped copy of ``img`` as its EXIF says (a plain copy if the EXIF is broken).

    With ``owned``, an image that needs no turning is returned itself rather than copied.
    """
    try:
        single = getattr(img, "n_frames", 1) == 1  # never hand out a seekable multi-frame file
        if owned and single and img.getexif().get(ORIENTATION_TAG, 1) == 1:
            return img
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS as exc:
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", path or "<memory>", exc)
        return img.copy()


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (alpha composited on white); RGB is returned as is."""
    if img.mode in _WIDE_GRAY_MODES:
        # 16-bit grey: rescale 0..65535 to 0..255 with rounding (v / 257), not clipping.
        # Mode "I" (32-bit) is read as 16-bit data; values outside 0..65535 saturate.
        wide = np.clip(np.asarray(img), 0, 65535).astype(np.int32)
        gray = ((wide + 128) // 257).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def _bomb_reason(exc: Exception, max_pixels: int | None) -> str:
    """The reason for Pillow's DecompressionBombError, in read_image's wording."""
    found = re.search(r"\((\d+) pixels\).*?limit of (\d+)", str(exc))
    if not found:
        return f"image too large ({exc})"
    pixels, limit = int(found.group(1)), int(found.group(2))
    if max_pixels is not None:
        limit = min(limit, max_pixels)
    return f"image too large: {pixels} pixels > limit {limit}"


def _decode_reason(exc: BaseException) -> str:
    """A short reason for a decoder exception."""
    text = str(exc)
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return "truncated image data"
    return f"corrupt or unsupported image data: {text or type(exc).__name__}"


def to_array(img: Image.Image) -> np.ndarray:
    """Copy a PIL image's pixels into an ``(H, W, 3)`` uint8 RGB array, in strips.

    ``np.asarray(img)`` goes through ``img.tobytes()``, which briefly holds two more copies of
    the pixels (about 10 bytes per pixel in all for RGB); in strips, the peak is the image plus
    the array (7 bytes per pixel), which matters for 100-megapixel photos. Non-RGB modes are
    converted the way :func:`read_image` does.
    """
    if not isinstance(img, Image.Image):
        raise TypeError(f"img must be a PIL image, got {type(img).__name__}")
    if img.mode != "RGB":
        img = _to_rgb(img)
    width, height = img.size
    out = np.empty((height, width, 3), np.uint8)
    rows = max(1, _ARRAY_STRIP_PIXELS // max(1, width))
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        out[y0:y1] = np.asarray(img.crop((0, y0, width, y1)))
    return out


def as_uint8_rgb(image: ImageInput, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Any image a user holds -> ``(H, W, 3)`` uint8 RGB array, the input of colorize and upscale.

    Args:
        image: a path or PIL image (read with :func:`read_image`: EXIF orientation, any mode),
            a uint8 array ``(H, W)`` or ``(H, W, 1|3|4)`` (alpha dropped), or a tensor
            ``([1,] 1|3, H, W)``, uint8 or float in [0, 1] (rounded).
        max_pixels: refuse images with more pixels (decompression bombs; ``None``: no limit
            for arrays and tensors, Pillow's own for files).

    Returns:
        A new (or, for a contiguous RGB uint8 array, the same) ``(H, W, 3)`` uint8 array.

    Raises:
        ImageReadError: an unreadable file, or an image of zero size or over ``max_pixels``.
        TypeError: another type; ValueError: an array or tensor of the wrong shape or dtype.
    """
    if isinstance(image, (str, os.PathLike, Image.Image)):
        return to_array(read_image(image, max_pixels=max_pixels))
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        t = t[0] if t.ndim == 4 and t.shape[0] == 1 else t
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise ValueError(f"tensor images must be ([1,] 1|3, H, W), got {tuple(image.shape)}")
        _check_pixels(t.shape[1], t.shape[2], max_pixels)
        if t.dtype != torch.uint8:
            t = float_to_uint8(t.float().clamp(0, 1))
        return np.ascontiguousarray(t.expand(3, -1, -1).permute(1, 2, 0).numpy())
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"numpy images must be uint8, got {image.dtype}")
        arr = image[..., None] if image.ndim == 2 else image
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
            raise ValueError(f"numpy images must be (H, W[, 1|3|4]), got {image.shape}")
        _check_pixels(arr.shape[0], arr.shape[1], max_pixels)
        return np.ascontiguousarray(
            np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[..., :3]
        )
    raise TypeError(
        f"expected a path, PIL image, uint8 array or tensor, got {type(image).__name__}"
    )


def _check_pixels(
    height: int, width: int, max_pixels: int | None, path: str | Path | None = None
) -> None:
    """Refuse an image of zero size or over ``max_pixels`` (``path``: ``None`` in memory)."""
    if height <= 0 or width <= 0:
        raise ImageReadError(path, f"zero-size image ({width}x{height})")
    if max_pixels is not None and height * width > max_pixels:
        raise ImageReadError(
            path,
            f"image too large: {width}x{height} = {width * height} pixels > limit {max_pixels}",
        )


def to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert a PIL image to a float32 tensor ``(3, H, W)`` in [0, 1].

    Non-RGB modes are converted the way :func:`read_image` does.
    """
    if not isinstance(img, Image.Image):
        raise TypeError(f"img must be a PIL image, got {type(img).__name__}")
    if img.mode != "RGB":
        img = _to_rgb(img)
    pixels = torch.from_numpy(np.array(img, dtype=np.uint8))  # (H, W, 3)
    return uint8_to_float(pixels.permute(2, 0, 1)).contiguous()


def to_pil(t: torch.Tensor) -> Image.Image:
    """Convert ``(3, H, W)`` or ``(1, H, W)`` pixels to an RGB or L PIL image.

    Args:
        t: Float in [0, 1] (rounded and clamped) or uint8, on any device.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"t must have shape (3, H, W) or (1, H, W), got {tuple(t.shape)}")
    t = t.detach()
    if t.is_floating_point():
        t = float_to_uint8(t)
    elif t.dtype != torch.uint8:
        raise TypeError(f"t must be a float or uint8 tensor, got {t.dtype}")
    pixels = t.cpu().permute(1, 2, 0).numpy()  # (H, W, C)
    return Image.fromarray(np.ascontiguousarray(pixels[..., 0] if t.shape[0] == 1 else pixels))


def output_metadata(source: str | os.PathLike | bytes) -> dict[str, bytes]:
    """The metadata of a photo (a file or its bytes) that its output keeps: EXIF (date taken,
    camera, description, ...) without the orientation, which reading applied to the pixels,
    and without the thumbnail; and an RGB ICC profile (a gray one does not fit a colour
    output).

    Returns:
        ``{"exif": ..., "icc_profile": ...}``, each only if present; empty if unreadable.
    """
    found: dict[str, bytes] = {}
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            exif = img.getexif()
            icc = img.info.get("icc_profile")
            exif.pop(ORIENTATION_TAG, None)
            if len(exif):
                found["exif"] = exif.tobytes()  # IFD0 with its Exif and GPS IFDs; no IFD1
    except (OSError, ValueError, Image.UnidentifiedImageError, SyntaxError):
        return {}
    if isinstance(icc, bytes) and icc[16:20] == b"RGB ":  # the profile's colour space
        found["icc_profile"] = icc
    return found
