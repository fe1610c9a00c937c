"""sRGB <-> CIE Lab (D65 white, 2° observer) on batched tensors, and the model's Lab scaling.

Every colour conversion in pixcolor goes through this module: Lab and the model's scaling,
the gray of a photo's own L, the opponent axes of the colourfulness metric and the spread
loss, the post-hoc ab gains, and MATLAB's BT.601 YCbCr for SRCNN: one home for the colour
maths, not copies beside each user. The Lab maths follows scikit-image's
``skimage.color.rgb2lab`` / ``lab2rgb`` (``skimage/color/colorconv.py``) constant for
constant, so results match it to float32 precision. All functions take ``(*, 3, H, W)``
tensors on any device and in any float dtype; they compute in float32 (float64 stays float64)
and return the input dtype.

Example:
    >>> rgb = torch.rand(2, 3, 4, 5)
    >>> L_norm, ab_norm = rgb_to_lab_normalized(rgb)  # (2, 1, 4, 5), (2, 2, 4, 5), in [-1, 1]
    >>> back = lab_normalized_to_rgb(L_norm, ab_norm)  # (2, 3, 4, 5) in [0, 1]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# sRGB transfer function (IEC 61966-2-1), with skimage's thresholds: linear below 0.04045 on the
# encoded side, below 0.0031308 on the linear side.
SRGB_ENCODED_THRESHOLD = 0.04045
SRGB_LINEAR_THRESHOLD = 0.0031308

# Linear sRGB -> XYZ, exactly skimage's ``xyz_from_rgb`` ("From sRGB specification"); the inverse
# is computed in float64, as skimage does with ``linalg.inv``.
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
RGB_FROM_XYZ: tuple[tuple[float, ...], ...] = tuple(
    tuple(row) for row in torch.linalg.inv(torch.tensor(XYZ_FROM_RGB, dtype=torch.float64)).tolist()
)

# D65 reference white for the 2° observer, skimage's ``_illuminants["D65"]["2"]``.
D65_WHITE = (0.95047, 1.0, 1.08883)

# The Lab companding function f(t): cube root above (6/29)^3, linear below. skimage writes the
# constants rounded: 0.008856 ~ (6/29)^3, 7.787 ~ (29/6)^2 / 3, 0.2068966 ~ 6/29 for the inverse.
LAB_EPSILON = 0.008856
LAB_SLOPE = 7.787
LAB_OFFSET = 16.0 / 116.0
LAB_INVERSE_THRESHOLD = 0.2068966

# The model's scaling, taken over from the seed (the pix2pix colorization dataset,
# junyanz/pytorch-CycleGAN-and-pix2pix ``data/colorization_dataset.py``):
# L in [0, 100] -> L/50 - 1 in [-1, 1]; a, b in about [-110, 110] -> ab/110 in about [-1, 1].
L_SCALE = 50.0
L_SHIFT = 1.0
AB_SCALE = 110.0


def _check_image(x: object, name: str, channels: int = 3) -> Tensor:
    """Validate a float ``(*, channels, H, W)`` tensor at the public boundary."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 3 or x.shape[-3] != channels:
        raise ValueError(
            f"{name} must have shape (*, {channels}, H, W) with {channels} channels at dim -3, "
            f"got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got {x.dtype} (use uint8_to_float first)"
        )
    return x


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other float dtype is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _mix(matrix: tuple[tuple[float, ...], ...], x: Tensor) -> Tensor:
    """Apply a 3x3 colour matrix along dim -3 of ``x`` ``(*, 3, H, W)``."""
    c0, c1, c2 = x.unbind(-3)  # each (*, H, W)
    rows = [m0 * c0 + m1 * c1 + m2 * c2 for m0, m1, m2 in matrix]
    return torch.stack(rows, dim=-3)


def _rgb_to_lab(rgb: Tensor) -> Tensor:
    """rgb_to_lab without validation; returns the compute dtype."""
    x = rgb.to(_compute_dtype(rgb.dtype))
    # Clamping inside each branch keeps pow() off negative bases, so gradients stay finite.
    t = SRGB_ENCODED_THRESHOLD
    linear = torch.where(x > t, ((x.clamp(min=t) + 0.055) / 1.055) ** 2.4, x / 12.92)
    xyz = _mix(XYZ_FROM_RGB, linear)  # (*, 3, H, W)
    white = torch.tensor(D65_WHITE, dtype=xyz.dtype, device=xyz.device).view(3, 1, 1)
    xyz = xyz / white
    f = torch.where(
        xyz > LAB_EPSILON,
        xyz.clamp(min=LAB_EPSILON) ** (1.0 / 3.0),
        LAB_SLOPE * xyz + LAB_OFFSET,
    )
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def _lab_to_rgb(lab: Tensor, clip: bool) -> Tensor:
    """lab_to_rgb without validation; ``lab`` is already in the compute dtype."""
    lightness, a, b = lab.unbind(-3)
    fy = (lightness + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp(min=0.0)  # skimage clips negative z (out of gamut) to 0
    f = torch.stack([fx, fy, fz], dim=-3)
    xyz = torch.where(f > LAB_INVERSE_THRESHOLD, f**3, (f - LAB_OFFSET) / LAB_SLOPE)
    white = torch.tensor(D65_WHITE, dtype=xyz.dtype, device=xyz.device).view(3, 1, 1)
    linear = _mix(RGB_FROM_XYZ, xyz * white)
    t = SRGB_LINEAR_THRESHOLD
    rgb = torch.where(
        linear > t, 1.055 * linear.clamp(min=t) ** (1.0 / 2.4) - 0.055, linear * 12.92
    )
    return rgb.clamp(0.0, 1.0) if clip else rgb


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """Convert sRGB to CIE Lab (D65, 2° observer), matching ``skimage.color.rgb2lab``.

    Args:
        rgb: sRGB image(s) ``(*, 3, H, W)``, float in [0, 1].

    Returns:
        Lab ``(*, 3, H, W)`` in the input dtype: L in [0, 100], a and b in about [-128, 127].

    Raises:
        TypeError: ``rgb`` is not a floating-point tensor.
        ValueError: dim -3 of ``rgb`` is not 3.

    Example:
        >>> round(rgb_to_lab(torch.ones(3, 1, 1))[0, 0, 0].item(), 2)  # white: L = 100
        100.0
    """
    _check_image(rgb, "rgb")
    return _rgb_to_lab(rgb).to(rgb.dtype)


def lab_to_rgb(lab: Tensor, *, clip: bool = True) -> Tensor:
    """Convert CIE Lab (D65, 2° observer) to sRGB, matching ``skimage.color.lab2rgb``.

    Args:
        lab: Lab image(s) ``(*, 3, H, W)``: L in [0, 100], a and b in about [-128, 127].
        clip: Clamp the result to [0, 1] (out-of-gamut colours otherwise fall outside it).

    Returns:
        sRGB ``(*, 3, H, W)`` in the input dtype, in [0, 1] when ``clip``.

    Raises:
        TypeError: ``lab`` is not a floating-point tensor.
        ValueError: dim -3 of ``lab`` is not 3.

    Example:
        >>> lab = torch.tensor([100.0, 0.0, 0.0]).view(3, 1, 1)
        >>> lab_to_rgb(lab).flatten().round(decimals=3).tolist()
        [1.0, 1.0, 1.0]
    """
    _check_image(lab, "lab")
    return _lab_to_rgb(lab.to(_compute_dtype(lab.dtype)), clip).to(lab.dtype)


def normalize_l(L: Tensor) -> Tensor:
    """Scale lightness L in [0, 100] to the model input range [-1, 1] (``L/50 - 1``)."""
    return L / L_SCALE - L_SHIFT


def denormalize_l(L_norm: Tensor) -> Tensor:
    """Inverse of :func:`normalize_l`: [-1, 1] -> L in [0, 100]."""
    return (L_norm + L_SHIFT) * L_SCALE


def normalize_ab(ab: Tensor) -> Tensor:
    """Scale a, b (about [-110, 110]) to the model output range (``ab/110``, about [-1, 1])."""
    return ab / AB_SCALE


def denormalize_ab(ab_norm: Tensor) -> Tensor:
    """Inverse of :func:`normalize_ab`: ``ab_norm * 110``."""
    return ab_norm * AB_SCALE


def rgb_to_lab_normalized(rgb: Tensor) -> tuple[Tensor, Tensor]:
    """Convert sRGB to the model's scaled Lab: the generator's input and its target.

    Args:
        rgb: sRGB image(s) ``(*, 3, H, W)``, float in [0, 1].

    Returns:
        ``(L_norm, ab_norm)``: ``(*, 1, H, W)`` in [-1, 1] and ``(*, 2, H, W)`` in about
        [-1, 1], both in the input dtype.
    """
    _check_image(rgb, "rgb")
    lab = _rgb_to_lab(rgb)  # scaled in the compute dtype, then cast
    l_norm = normalize_l(lab[..., :1, :, :])  # (*, 1, H, W)
    ab_norm = normalize_ab(lab[..., 1:, :, :])  # (*, 2, H, W)
    return l_norm.to(rgb.dtype), ab_norm.to(rgb.dtype)


def lab_normalized_to_rgb(
    L_norm: Tensor,
    ab_norm: Tensor,
    *,
    clip: bool = True,
) -> Tensor:
    """Join scaled L and ab (e.g. the generator's input and output) back into sRGB.

    Args:
        L_norm: ``(*, 1, H, W)``, ``L/50 - 1`` in [-1, 1].
        ab_norm: ``(*, 2, H, W)``, ``ab/110``, same leading dims and size as ``L_norm``.
        clip: Clamp the result to [0, 1].

    Returns:
        sRGB ``(*, 3, H, W)`` in the promoted dtype of the inputs.

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: wrong channel counts, or the shapes of the two inputs disagree.
    """
    _check_image(L_norm, "L_norm", channels=1)
    _check_image(ab_norm, "ab_norm", channels=2)
    if L_norm.shape[:-3] != ab_norm.shape[:-3] or L_norm.shape[-2:] != ab_norm.shape[-2:]:
        raise ValueError(
            f"L_norm {tuple(L_norm.shape)} and ab_norm {tuple(ab_norm.shape)} must agree "
            "in every dim except dim -3"
        )
    out_dtype = torch.promote_types(L_norm.dtype, ab_norm.dtype)
    compute = _compute_dtype(out_dtype)
    lab = torch.cat(
        [denormalize_l(L_norm.to(compute)), denormalize_ab(ab_norm.to(compute))], dim=-3
    )
    return _lab_to_rgb(lab, clip).to(out_dtype)


def uint8_to_float(x: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Convert uint8 pixels (e.g. ``(*, 3, H, W)``) in [0, 255] to floats in [0, 1]."""
    if not isinstance(x, Tensor) or x.dtype != torch.uint8:
        got = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"expected a torch.uint8 tensor, got {got}")
    return x.to(dtype) / 255.0


def float_to_uint8(x: Tensor) -> Tensor:
    """Convert floats in [0, 1] (e.g. ``(*, 3, H, W)``) to uint8: round, clamp, NaN -> 0."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"expected a floating-point tensor, got {got}")
    scaled = torch.nan_to_num(x.to(_compute_dtype(x.dtype)), nan=0.0) * 255.0
    return scaled.round().clamp(0, 255).to(torch.uint8)


GRAY_STRIP_ROWS = 512  # rows converted at once by gray_uint8, so memory stays bounded


def gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """The photo's own CIE L as a gray image: Lab with a = b = 0, back to 8-bit sRGB.

    This is the grayscale input of ``pixcolor demo`` and ``pixcolor evaluate`` (and their gray
    baseline): colorizing it and comparing with the original scores only the colour.

    Args:
        rgb: ``(H, W, 3)`` uint8 sRGB.

    Returns:
        ``(H, W, 3)`` uint8 gray sRGB, three equal channels.

    Example:
        >>> gray_uint8(np.array([[[255, 0, 0]]], np.uint8)).tolist()
        [[[127, 127, 127]]]
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    out = np.empty_like(rgb)
    for y0 in range(0, rgb.shape[0], GRAY_STRIP_ROWS):
        rows = rgb[y0 : y0 + GRAY_STRIP_ROWS]
        lab = _rgb_to_lab(torch.from_numpy(np.array(rows)).permute(2, 0, 1).float() / 255)
        lab[1:] = 0.0
        gray = _lab_to_rgb(lab, True).mul(255).round().to(torch.uint8)  # (3, h, W)
        out[y0 : y0 + GRAY_STRIP_ROWS] = gray.permute(1, 2, 0).numpy()
    return out


def rgb_to_opponent(rgb: Tensor) -> Tensor:
    """Opponent colour axes of Hasler & Suesstrunk (2003): ``rg = R - G``, ``yb = (R + G)/2 - B``.

    Args:
        rgb: ``(*, 3, H, W)`` RGB on any scale (0..255 for the colourfulness metric, [0, 1]
            for the spread loss).

    Returns:
        ``(*, 2, H, W)``: rg and yb on the input's scale, 0 for gray.
    """
    _check_image(rgb, "rgb")
    r, g, b = rgb.unbind(-3)
    return torch.stack([r - g, 0.5 * (r + g) - b], dim=-3)


def apply_gains(ab: Tensor, chroma_gain: float, cast_gain: float | None = None) -> Tensor:
    """Scale predicted ab: each image's mean ab (its colour cast) by ``cast_gain`` and the
    variation around it by ``chroma_gain`` (``cast_gain`` ``None``: one gain on all of ab).

    The post-hoc saturation of effunet colorizers, chosen on held-out photos after training.

    Args:
        ab: ``(B, 2, H, W)`` ab, in Lab units or normalised (the gains are scale-free).
        chroma_gain: factor on the variation around each image's mean ab.
        cast_gain: factor on each image's mean ab.

    Returns:
        ``(B, 2, H, W)`` scaled ab, in the units of ``ab``.
    """
    if cast_gain is None or cast_gain == chroma_gain:
        return ab * chroma_gain
    cast = ab.mean(dim=(-2, -1), keepdim=True)  # (B, 2, 1, 1)
    return (ab - cast) * chroma_gain + cast * cast_gain


# MATLAB rgb2ycbcr (ITU-R BT.601, "studio swing") for R, G, B in [0, 1]; outputs on the 0..255
# scale: Y in [16, 235], Cb and Cr in [16, 240]. SRCNN's published numbers use it.
YCBCR_FROM_RGB = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]
)
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])
RGB_FROM_YCBCR = np.linalg.inv(YCBCR_FROM_RGB)


def _as_unit_float(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float64) / 255.0
    if not np.issubdtype(rgb.dtype, np.floating):
        raise TypeError(f"expected uint8 or float RGB, got {rgb.dtype}")
    return rgb.astype(np.float64)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` (BT.601) without its final rounding.

    Args:
        rgb: ``(H, W, 3)`` uint8 (0..255) or float in [0, 1].

    Returns:
        ``(H, W, 3)`` float64 YCbCr on the 0..255 scale: Y in [16, 235], Cb, Cr in [16, 240].

    Example:
        >>> rgb_to_ycbcr(np.array([[[255, 0, 0]]], np.uint8))[0, 0, 0].round(3)
        81.481
    """
    return _as_unit_float(rgb) @ YCBCR_FROM_RGB.T + YCBCR_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """MATLAB ``ycbcr2rgb``: ``(H, W, 3)`` YCbCr on the 0..255 scale -> float64 RGB in [0, 1].

    Values outside the RGB cube are clipped to [0, 1].
    """
    if ycbcr.ndim != 3 or ycbcr.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {ycbcr.shape}")
    rgb = (ycbcr.astype(np.float64) - YCBCR_OFFSET) @ RGB_FROM_YCBCR.T
    return np.clip(rgb, 0.0, 1.0)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """Luma Y of MATLAB ``rgb2ycbcr``: ``(H, W, 3)`` -> ``(H, W)`` float64 in [16, 235]."""
    return _as_unit_float(rgb) @ YCBCR_FROM_RGB[0] + YCBCR_OFFSET[0]
