"""Training losses: the adversarial ``GANLoss`` (vanilla or LSGAN), ``spread_loss``, which
matches each output's amount of colour to its truth's, and ``cast_loss``, which matches its mean
colour (the L1 term is ``F.l1_loss``)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixcolor.color import lab_normalized_to_rgb, rgb_to_opponent

GANMode = Literal["vanilla", "lsgan"]

REAL_LABEL = 1.0
FAKE_LABEL = 0.0


class GANLoss(nn.Module):
    """Adversarial loss on raw discriminator logits against a constant real/fake target.

    ``"vanilla"`` is binary cross-entropy on logits (the original GAN); ``"lsgan"`` is the mean
    squared error of LSGAN (Mao et al. 2017). The target is built with ``torch.full_like``, so
    the module holds no buffers and works on any device and dtype without being moved.

    Args:
        mode: ``"vanilla"`` or ``"lsgan"``.

    Example:
        >>> loss = GANLoss("vanilla")
        >>> round(float(loss(torch.zeros(1, 1, 30, 30), target_is_real=True)), 4)
        0.6931
    """

    def __init__(self, mode: GANMode = "vanilla") -> None:
        super().__init__()
        if mode not in ("vanilla", "lsgan"):
            raise ValueError(f"mode must be 'vanilla' or 'lsgan', got {mode!r}")
        self.mode = mode

    def forward(self, logits: Tensor, target_is_real: bool) -> Tensor:
        """Loss of ``logits`` against all-real (1) or all-fake (0) labels.

        Args:
            logits: discriminator output of any shape, e.g. ``(B, 1, 30, 30)``, before sigmoid.
            target_is_real: whether the patches should be judged real.

        Returns:
            Scalar mean loss.
        """
        target = torch.full_like(logits, REAL_LABEL if target_is_real else FAKE_LABEL)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)


def colour_spread_rgb(rgb: Tensor, eps: float = 1e-6) -> Tensor:
    """Differentiable per-image colour spread sqrt(var(R - G) + var((R + G) / 2 - B)).

    The first term of Hasler and Suesstrunk's colourfulness, as :func:`pixcolor.metrics.
    colour_spread` computes it on 8-bit images, but on floats in [0, 1] (so 1/255 of it).

    Args:
        rgb: ``(B, 3, H, W)`` sRGB in [0, 1].
        eps: added under the square root, so the gradient of a gray image is finite.

    Returns:
        ``(B,)`` spreads, about 0.14 for a typical photo and 0 for a gray one.
    """
    rg, yb = rgb_to_opponent(rgb.float()).flatten(2).unbind(1)
    return torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False) + eps)


def spread_loss(L_norm: Tensor, pred_ab: Tensor, true_ab: Tensor) -> Tensor:
    """Mean over images of |spread(prediction) - spread(truth)|, both joined with the same L.

    A colour-amount term in the spirit of DDColor's colourfulness loss, but two-sided: it asks
    for as much colour as the truth has, so it pushes washed-out outputs towards colour and
    keeps near-gray scenes near gray, instead of rewarding colour everywhere.

    Args:
        L_norm: ``(B, 1, H, W)`` in [-1, 1].
        pred_ab: ``(B, 2, H, W)`` predicted ab_norm (differentiable).
        true_ab: ``(B, 2, H, W)`` true ab_norm.

    Returns:
        Scalar loss in [0, 1] sRGB units (a typical photo's spread is about 0.14).
    """
    pred = colour_spread_rgb(lab_normalized_to_rgb(L_norm.float(), pred_ab.float()))
    with torch.no_grad():
        true = colour_spread_rgb(lab_normalized_to_rgb(L_norm.float(), true_ab.float()))
    return (pred - true).abs().mean()


def cast_loss(pred_ab: Tensor, true_ab: Tensor) -> Tensor:
    """Mean over images of the distance between the prediction's mean ab and the truth's.

    The cast (an image's mean ab) is where most of a colorizer's error lies: a warm tint laid
    over a neutral scene costs every pixel. The per-pixel L1 and bin terms reach the cast only
    through many uncertain pixels; this term asks for it directly. On the default's recipe it
    did not help: the term stayed flat through an epoch and the output landed on the frontier
    of a post-hoc gain (MODEL_CARD.md, "Training on more photos").

    Args:
        pred_ab: ``(B, 2, H, W)`` predicted ab_norm (differentiable).
        true_ab: ``(B, 2, H, W)`` true ab_norm, any ``(H', W')`` (only its mean is used).

    Returns:
        Scalar loss in ab_norm units (0 when every image's mean ab matches; 0.1 is 11 ab units).
    """
    pred = pred_ab.float().mean(dim=(-2, -1))
    true = true_ab.float().mean(dim=(-2, -1))
    return torch.sqrt(((pred - true) ** 2).sum(1) + 1e-12).mean()
