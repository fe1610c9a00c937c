"""The colorizer's working size: one default, one range, one rounding rule.

A colorizer sees each photo at about ``size x size`` pixels (aspect kept, each side a multiple
of the network's stride) and paints the full-resolution photo from that. Every caller asks
this module: :class:`pixcolor.pipeline.Colorizer` (its model's ``size`` and each call's),
``pixcolor colorize --size``, the web page, model ``config.json`` files and ONNX export.
It imports nothing heavy, so command-line parsing can use it.

Example:
    >>> check_size(224)
    224
    >>> working_shape(480, 640, 224, 32)
    (192, 256)
"""

from __future__ import annotations

import math

from pixcolor.errors import ConfigError

DEFAULT_SIZE = 256  # the seed's and pix2pix's 256 x 256
# Smallest and largest working size: below 32 an EfficientNet's stride-32 features are one
# pixel; at 2048 a 6-member ensemble already needs about 10 GB for one photo.
MIN_SIZE = 32
MAX_SIZE = 2048


def check_size(size: object, what: str = "size") -> int:
    """``size`` as an int if it is a whole number in [MIN_SIZE, MAX_SIZE].

    Args:
        size: the value to check (an int; a bool, float or string is refused).
        what: how error messages name it (``"--size"``, ``"config.json: size"``).

    Raises:
        ConfigError: not an int, or out of range (one line naming ``what``).
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise ConfigError(f"{what} must be a whole number, got {size!r}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ConfigError(f"{what} must be in [{MIN_SIZE}, {MAX_SIZE}], got {size}")
    return size


def working_shape(height: int, width: int, size: int, stride: int) -> tuple[int, int]:
    """Model input shape for a photo: about ``size**2`` pixels, aspect kept, multiples of ``stride``.

    Args:
        height: photo height in pixels, >= 1.
        width: photo width in pixels, >= 1.
        size: working size (see :func:`check_size`).
        stride: the network's stride (32 for EfficientNet, ``2 ** num_downs`` for U-Nets).

    Returns:
        ``(h, w)``, each a positive multiple of ``stride``.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image must be at least 1x1, got {width}x{height}")
    scale = size / math.sqrt(height * width)
    h = max(stride, round(height * scale / stride) * stride)
    w = max(stride, round(width * scale / stride) * stride)
    # A side raised to the ``stride`` minimum would leave the other one far too long (1x5000 at
    # size 256: 32 x 18112); cap it so that the model still sees about size**2 pixels.
    longest = max(stride, size * size // stride // stride * stride)
    if h == stride:
        w = min(w, longest)
    if w == stride:
        h = min(h, longest)
    return h, w
