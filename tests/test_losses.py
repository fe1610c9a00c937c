"""Tests for GANLoss, the colour-spread loss and the pix2pix weight init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pixcolor import metrics
from pixcolor.color import lab_normalized_to_rgb
from pixcolor.losses import GANLoss, cast_loss, colour_spread_rgb, spread_loss
from pixcolor.models.blocks import init_weights

LOGITS = [0.0, 2.0, -1.0, 0.5]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


@pytest.mark.parametrize(
    ("mode", "real", "expected"),
    [
        # BCE with logits: -log(sigmoid(x)) = log(1 + e^-x) for real, log(1 + e^x) for fake.
        ("vanilla", True, _mean(math.log1p(math.exp(-x)) for x in LOGITS)),
        ("vanilla", False, _mean(math.log1p(math.exp(x)) for x in LOGITS)),
        # LSGAN: mean squared distance to 1 (real) or 0 (fake).
        ("lsgan", True, _mean((x - 1) ** 2 for x in LOGITS)),
        ("lsgan", False, _mean(x**2 for x in LOGITS)),
    ],
)
def test_gan_loss_matches_hand_computation(mode, real, expected) -> None:
    logits = torch.tensor(LOGITS, dtype=torch.float64).view(1, 1, 2, 2)
    loss = GANLoss(mode)(logits, target_is_real=real)
    assert loss.ndim == 0 and loss.dtype == torch.float64
    assert float(loss) == pytest.approx(expected, rel=1e-12)


def test_gan_loss_zero_logits_vanilla_is_log2() -> None:
    loss = GANLoss()(torch.zeros(2, 1, 30, 30), target_is_real=False)
    assert float(loss) == pytest.approx(math.log(2))


def test_gan_loss_has_no_buffers_and_passes_gradients() -> None:
    crit = GANLoss("lsgan")
    assert list(crit.buffers()) == [] and list(crit.parameters()) == []
    logits = torch.zeros(1, 1, 3, 3, requires_grad=True)
    crit(logits, target_is_real=True).backward()
    # d/dx mean((x - 1)^2) at 0 = -2 / N
    assert torch.allclose(logits.grad, torch.full_like(logits, -2 / 9))


def test_gan_loss_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        GANLoss("wgan")  # type: ignore[arg-type]


def test_init_weight_statistics() -> None:
    model = nn.Sequential(
        nn.Conv2d(256, 256, 4),  # 1,048,576 weights
        nn.BatchNorm2d(4096),
        nn.ConvTranspose2d(64, 64, 4),
        nn.InstanceNorm2d(8),  # non-affine: nothing to initialise, must not fail
    )
    assert init_weights(model) is model
    conv, bn, convt = (m.requires_grad_(False) for m in model[:3])
    assert abs(float(conv.weight.mean())) < 5e-4
    assert float(conv.weight.std()) == pytest.approx(0.02, rel=0.01)
    assert float(convt.weight.std()) == pytest.approx(0.02, rel=0.05)
    assert float(bn.weight.mean()) == pytest.approx(1.0, abs=2e-3)
    assert float(bn.weight.std()) == pytest.approx(0.02, rel=0.1)
    for bias in (conv.bias, bn.bias, convt.bias):
        assert torch.count_nonzero(bias) == 0


def test_init_weights_std_argument() -> None:
    conv = init_weights(nn.Conv2d(64, 64, 4, bias=False), std=0.1).requires_grad_(False)
    assert conv.bias is None
    assert float(conv.weight.std()) == pytest.approx(0.1, rel=0.05)


def _lab_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """L_norm (2,1,24,24) and ab_norm (2,2,24,24): a colourful image and a faintly tinted one."""
    L = torch.rand(2, 1, 24, 24) * 1.2 - 0.6
    ab = (torch.rand(2, 2, 24, 24) - 0.5) * torch.tensor([0.6, 0.02]).view(2, 1, 1, 1)
    return L, ab


def test_colour_spread_rgb_matches_the_8bit_metric() -> None:
    L, ab = _lab_batch()
    rgb = lab_normalized_to_rgb(L, ab)
    ours = colour_spread_rgb(rgb) * 255
    ref = metrics.colour_spread((rgb * 255).round().to(torch.uint8)).float()
    assert torch.allclose(ours, ref, atol=0.2), (ours, ref)
    assert ours[0] > 10 * ours[1]  # the tinted image has far less spread


def test_spread_loss_is_zero_at_the_truth_and_two_sided() -> None:
    L, ab = _lab_batch()
    assert float(spread_loss(L, ab, ab)) < 1e-6
    truth = colour_spread_rgb(lab_normalized_to_rgb(L, ab))
    for scale in (0.3, 2.0):  # washed out, then too colourful
        pred = (ab * scale).requires_grad_(True)
        opt = torch.optim.Adam([pred], lr=0.01)
        before = float(spread_loss(L, pred, ab).detach())
        for _ in range(40):
            opt.zero_grad()
            spread_loss(L, pred, ab).backward()
            opt.step()
        after = float(spread_loss(L, pred, ab).detach())
        assert after < 0.5 * before, (scale, before, after)
        moved = colour_spread_rgb(lab_normalized_to_rgb(L, pred.detach()))
        if scale < 1:
            assert (moved > colour_spread_rgb(lab_normalized_to_rgb(L, ab * scale))).all()
        assert torch.allclose(moved, truth, atol=0.5 * before)


def test_cast_loss_is_the_distance_between_mean_colours() -> None:
    _, ab = _lab_batch()
    assert float(cast_loss(ab, ab)) < 1e-5
    shift = torch.tensor([0.3, -0.4]).view(1, 2, 1, 1)  # a cast 0.5 away, the variation kept
    assert abs(float(cast_loss(ab + shift, ab)) - 0.5) < 1e-5
    swirl = ab.flip(-1)  # the same colours elsewhere: same mean, so no cast error
    assert float(cast_loss(swirl, ab)) < 1e-5
    pred = torch.zeros_like(ab).requires_grad_(True)  # gray: the loss pulls every pixel alike
    cast_loss(pred, ab).backward()
    grad = pred.grad.flatten(2)
    assert torch.allclose(grad, grad[..., :1].expand_as(grad))
    assert float(grad.abs().sum()) > 0
