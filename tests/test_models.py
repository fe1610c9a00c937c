"""Tests for the U-Net generators, the PatchGAN discriminator and SRCNN.

Big models are only built on the meta device (parameter counting allocates no memory); forward
and backward passes use small variants (base_channels=8, num_downs=5 at 32x32), except one
forward each through the full seed U-Net and the full PatchGAN at 256x256.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch
from torch import nn

from pixcolor.models import create_discriminator, create_generator, create_srcnn
from pixcolor.models.patchgan import PatchDiscriminator, receptive_field
from pixcolor.models.srcnn import SRCNN
from pixcolor.models.unet import UNetGenerator, pix2pix_unet, seed_unet

SMALL = {"base_channels": 8, "num_downs": 5}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_on_meta(builder, **kwargs) -> int:
    with torch.device("meta"):
        return n_params(builder(**kwargs))


def count_layers(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize(
    ("builder", "kwargs", "expected"),
    [
        (seed_unet, {}, 54_410_242),
        (pix2pix_unet, {}, 54_409_858),
        (PatchDiscriminator, {}, 2_765_633),
        (SRCNN, {}, 57_281),
        (SRCNN, {"variant": "915"}, 8_129),
    ],
    ids=["seed", "pix2pix", "patchgan", "srcnn955", "srcnn915"],
)
def test_exact_parameter_counts(builder, kwargs, expected) -> None:
    assert count_on_meta(builder, **kwargs) == expected


def test_registry_builds_the_seed_and_patchgan(monkeypatch) -> None:
    if importlib.util.find_spec("pixcolor.models.effunet") is None:
        # The registry imports effunet (written separately); stand in for it until it exists.
        stub = types.ModuleType("pixcolor.models.effunet")
        stub.EffUNet = nn.Identity  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "pixcolor.models.effunet", stub)
    with torch.device("meta"):
        assert n_params(create_generator("seed")) == 54_410_242
        assert n_params(create_discriminator()) == 2_765_633


def test_create_srcnn() -> None:
    with torch.device("meta"):
        net = create_srcnn("915", channels=3)
    assert isinstance(net, SRCNN) and net.variant == "915"


@pytest.mark.parametrize("variant", ["seed", "pix2pix"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_small_generator_forward_backward(variant, norm) -> None:
    net = UNetGenerator(variant=variant, norm=norm, **SMALL)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    y = net(x)
    assert y.shape == (2, 2, 32, 32)
    assert torch.isfinite(y).all()
    assert y.abs().max() <= 1.0  # Tanh range
    y.square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_seed_full_size_forward_once() -> None:
    net = seed_unet().eval()
    with torch.no_grad():
        y = net(torch.rand(1, 1, 256, 256) * 2 - 1)
    assert y.shape == (1, 2, 256, 256)
    assert torch.isfinite(y).all() and y.abs().max() <= 1.0


def test_variant_structure() -> None:
    with torch.device("meta"):
        seed, p2p = seed_unet(), pix2pix_unet()
        no_drop = pix2pix_unet(dropout=0.0)
        small_p2p = pix2pix_unet(**SMALL)
    # pix2pix: dropout in the 3 innermost non-innermost decoders; seed: all 6 decoders.
    assert count_layers(p2p, nn.Dropout) == 3
    assert all(isinstance(up[-1], nn.Dropout) for up in p2p.ups[:3])
    assert count_layers(seed, nn.Dropout) == 6
    assert count_layers(no_drop, nn.Dropout) == 0
    assert count_layers(small_p2p, nn.Dropout) == 0  # num_downs - 5
    # Only pix2pix concatenates the input layer's output before the output layer.
    assert p2p.out[1].in_channels == 128 and seed.out[1].in_channels == 64
    assert p2p.out[1].bias is not None and seed.out[1].bias is not None
    assert seed.mid[1].bias is None and seed.mid[3].bias is None
    assert seed.downs[0][0].bias is None and seed.downs[1][1].bias is not None
    assert p2p.downs[1][1].bias is None
    assert len(p2p.downs) == 7 and len(p2p.ups) == 6


def test_width_and_depth_arguments() -> None:
    with torch.device("meta"):
        net = UNetGenerator(base_channels=16, num_downs=9)
    channels = [down[-1].num_features for down in net.downs[1:]]
    assert channels == [32, 64, 128, 128, 128, 128, 128]  # capped at 8x base
    assert len(net.ups) == 7 and count_layers(net, nn.Dropout) == 4


def test_instance_norm_uses_biases_and_no_batchnorm() -> None:
    net = UNetGenerator(norm="instance", **SMALL)
    assert count_layers(net, nn.BatchNorm2d) == 0
    assert count_layers(net, nn.InstanceNorm2d) > 0
    for m in net.modules():
        if isinstance(m, nn.InstanceNorm2d):
            assert not m.affine and not m.track_running_stats
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            assert m.bias is not None
    batch = UNetGenerator(norm="batch", **SMALL)
    assert count_layers(batch, nn.BatchNorm2d) > 0
    assert n_params(net) != n_params(batch)


def test_input_validation() -> None:
    net = UNetGenerator(**SMALL)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*num_downs = 32"):
        net(torch.zeros(1, 1, 48, 32))
    with pytest.raises(ValueError, match="expected input"):
        net(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="num_downs"):
        UNetGenerator(num_downs=4)
    with pytest.raises(ValueError, match="norm"):
        UNetGenerator(norm="group", **SMALL)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="variant"):
        UNetGenerator(variant="resnet", **SMALL)  # type: ignore[arg-type]


def test_eval_mode_is_deterministic() -> None:
    net = seed_unet(**SMALL)  # dropout in every decoder
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))  # train mode: dropout differs per call
        net.eval()
        assert torch.equal(net(x), net(x))


def test_patchgan_shapes() -> None:
    small = PatchDiscriminator(base_channels=8)
    assert small(torch.rand(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    full = PatchDiscriminator()
    with torch.no_grad():
        out = full(torch.rand(1, 3, 256, 256))
    assert out.shape == (1, 1, 30, 30) and torch.isfinite(out).all()
    assert full.model[0].bias is not None  # no norm after the first conv
    assert all(
        m.bias is None for m in full.modules() if isinstance(m, nn.Conv2d) and m.out_channels > 64
    )


def test_patchgan_instance_norm_has_biases() -> None:
    d = PatchDiscriminator(base_channels=8, norm="instance")
    assert count_layers(d, nn.BatchNorm2d) == 0
    assert all(m.bias is not None for m in d.modules() if isinstance(m, nn.Conv2d))


def test_receptive_field_arithmetic() -> None:
    assert receptive_field() == 70
    assert receptive_field(1) == 16
    assert receptive_field(4) == 142


def test_receptive_field_empirical() -> None:
    """The input pixels reaching one logit span exactly 70x70."""
    d = PatchDiscriminator(base_channels=4).double().eval()  # BatchNorm: identity-like, fixed
    for m in d.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 0.05)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        if isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    x = torch.rand(1, 3, 128, 128, dtype=torch.float64, requires_grad=True)
    out = d(x)
    assert out.shape == (1, 1, 14, 14)
    out[0, 0, 7, 7].backward()
    hit = x.grad[0].abs().sum(0) > 0  # (H, W)
    rows = hit.any(1).nonzero().flatten()
    cols = hit.any(0).nonzero().flatten()
    assert rows.min() > 0 and rows.max() < 127  # region not clipped by the border
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70
    assert int(hit.sum()) == 70 * 70


@pytest.mark.parametrize("variant", ["955", "915"])
def test_srcnn_keeps_size(variant) -> None:
    net = SRCNN(channels=1, variant=variant)
    x = torch.rand(2, 1, 33, 20)
    y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert all(m.padding_mode == "replicate" for m in net.modules() if isinstance(m, nn.Conv2d))


def test_srcnn_param_groups() -> None:
    net = SRCNN()
    groups = net.param_groups(1e-4)
    assert [g["lr"] for g in groups] == pytest.approx([1e-4, 1e-5])
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == len(list(net.parameters())) == 6
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in net.reconstruct.parameters()}
    torch.optim.Adam(groups)  # accepted as-is
    with pytest.raises(ValueError, match="variant"):
        SRCNN(variant="999")  # type: ignore[arg-type]
