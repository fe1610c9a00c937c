"""Colour-quality metrics on 8-bit RGB: PSNR, SSIM, colourfulness, colour spread, ab L1.

Each takes torch tensors ``(B, 3, H, W)`` (uint8, or float in [0, 1] which is rounded to 8-bit
first) or numpy arrays ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8, and returns one value per image as
a float64 tensor ``(B,)``. A set's figure is the mean of its images' values. Training validation
and ``pixcolor evaluate`` both use this module.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pixcolor.color import rgb_to_opponent

# PSNR of identical images is infinite; report this cap instead so that means stay finite.
PSNR_CAP_DB = 100.0
# Hasler & Suesstrunk (2003): colourfulness = sigma_rgyb + 0.3 * mu_rgyb.
HASLER_MU_WEIGHT = 0.3


def as_uint8_batch(images: Tensor | np.ndarray) -> Tensor:
    """Return ``(B, 3, H, W)`` float64 tensor of 8-bit values (0..255).

    Accepts ``(3,H,W)``/``(B,3,H,W)`` tensors (uint8, or float in [0, 1]) and ``(H,W,3)``/
    ``(B,H,W,3)`` uint8 numpy arrays.
    """
    if isinstance(images, np.ndarray):
        t = torch.from_numpy(np.array(images))  # a writable copy (PIL arrays are read-only)
        t = t.unsqueeze(0) if t.ndim == 3 else t
        if t.shape[-1] != 3:
            raise ValueError(f"numpy images must be (..., H, W, 3), got {tuple(images.shape)}")
        t = t.permute(0, 3, 1, 2)
    elif isinstance(images, Tensor):
        t = images.unsqueeze(0) if images.ndim == 3 else images
    else:
        raise TypeError(f"expected a tensor or ndarray, got {type(images).__name__}")
    if t.ndim != 4 or t.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) images, got {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.to(torch.float64)
    return (t.detach().to(torch.float64).clamp(0, 1) * 255.0).round()


def psnr(pred: Tensor | np.ndarray, target: Tensor | np.ndarray) -> Tensor:
    """Per-image PSNR in dB on 8-bit RGB, capped at :data:`PSNR_CAP_DB`. Shape ``(B,)``."""
    p, t = as_uint8_batch(pred), as_uint8_batch(target)
    if p.shape != t.shape:
        raise ValueError(f"shape mismatch: {tuple(p.shape)} vs {tuple(t.shape)}")
    mse = (p - t).pow(2).flatten(1).mean(1)
    value = 10.0 * torch.log10(255.0**2 / mse.clamp_min(1e-12))
    return value.clamp(max=PSNR_CAP_DB)


def _rgyb(images: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """The opponent axes rg and yb of 8-bit images, each ``(B, H*W)`` float64."""
    rg, yb = rgb_to_opponent(as_uint8_batch(images)).flatten(2).unbind(1)
    return rg, yb


def colour_spread(images: Tensor | np.ndarray) -> Tensor:
    """Per-image sigma_rgyb = sqrt(std(rg)^2 + std(yb)^2) on 8-bit RGB. Shape ``(B,)``."""
    rg, yb = _rgyb(images)
    return torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))


def colourfulness(images: Tensor | np.ndarray) -> Tensor:
    """Per-image Hasler-Suesstrunk colourfulness sigma_rgyb + 0.3 mu_rgyb. Shape ``(B,)``.

    A gray image scores 0; a uniform tint scores only through its mean term.
    """
    rg, yb = _rgyb(images)
    sigma = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mu = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return sigma + HASLER_MU_WEIGHT * mu


def _gaussian_window(sigma: float = 1.5, truncate: float = 3.5) -> Tensor:
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def ssim(pred: Tensor | np.ndarray, target: Tensor | np.ndarray, *, sigma: float = 1.5) -> Tensor:
    """Per-image SSIM on 8-bit RGB, averaged over channels. Shape ``(B,)``.

    Matches ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``: a separable Gaussian
    window truncated at 3.5 sigma, K1=0.01, K2=0.03, and the mean over the valid region
    (skimage crops ``(win_size - 1) // 2`` pixels from each border).
    """
    p, t = as_uint8_batch(pred), as_uint8_batch(target)
    if p.shape != t.shape:
        raise ValueError(f"shape mismatch: {tuple(p.shape)} vs {tuple(t.shape)}")
    w1 = _gaussian_window(sigma)
    k = w1.numel()
    if min(p.shape[-2:]) < k:
        raise ValueError(f"images must be at least {k}x{k} for SSIM, got {tuple(p.shape[-2:])}")
    c = p.shape[1]
    wx = w1.view(1, 1, 1, k).repeat(c, 1, 1, 1)
    wy = w1.view(1, 1, k, 1).repeat(c, 1, 1, 1)

    def blur(x: Tensor) -> Tensor:  # valid convolution: (B,C,H-k+1,W-k+1)
        return F.conv2d(F.conv2d(x, wx, groups=c), wy, groups=c)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_p, mu_t = blur(p), blur(t)
    var_p = blur(p * p) - mu_p**2
    var_t = blur(t * t) - mu_t**2
    cov = blur(p * t) - mu_p * mu_t
    num = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
    den = (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    return (num / den).flatten(1).mean(1)


def ab_l1(pred_ab: Tensor, true_ab: Tensor) -> Tensor:
    """Per-image mean absolute ab error in Lab units, from ab in Lab units ``(B, 2, H, W)``."""
    if pred_ab.shape != true_ab.shape:
        raise ValueError(f"shape mismatch: {tuple(pred_ab.shape)} vs {tuple(true_ab.shape)}")
    return (pred_ab.double() - true_ab.double()).abs().flatten(1).mean(1)
