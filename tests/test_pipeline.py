"""Full-resolution colorization: sizes, orientation, luminance kept, inputs, CLI batch behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import pixcolor
from pixcolor.checkpoint import save_model
from pixcolor.cli import main
from pixcolor.color import rgb_to_lab
from pixcolor.errors import ConfigError, ImageReadError
from pixcolor.models import create_generator
from pixcolor.models.hub import load_network
from pixcolor.pipeline import Colorizer, load_model
from pixcolor.working_size import working_shape


class ConstantAB(nn.Module):
    """A stand-in generator: predicts the same strong ab everywhere."""

    stride = 32

    def __init__(self, value: float = 0.3) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, L):
        return self.value.expand(L.shape[0], 2, *L.shape[-2:])


@pytest.fixture
def model():
    return Colorizer(ConstantAB(), {"arch": "constant", "size": 64}, device="cpu")


@pytest.fixture
def tiny_model_dir(tmp_path):
    g = create_generator("unet", base_channels=8, num_downs=5)
    return save_model(
        g, tmp_path / "tiny", "unet", {"base_channels": 8, "num_downs": 5}, extra={"size": 64}
    )


def _gray(h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    return np.clip(x * 200 / w + y * 40 / h + rng.normal(0, 5, (h, w)), 0, 255).astype(np.uint8)


def _L(rgb: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(torch.from_numpy(np.array(rgb)).permute(2, 0, 1).double() / 255)[0]


@pytest.mark.parametrize("h, w", [(37, 53), (64, 64), (301, 97), (1, 5), (700, 20)])
def test_output_size_equals_input_size(model, h, w):
    out = model.colorize(_gray(h, w))
    assert out.size == (w, h) and out.mode == "RGB"


def test_exif_rotated_input_keeps_displayed_orientation(model, tmp_path):
    img = Image.fromarray(_gray(40, 70)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert model.colorize(tmp_path / "rot.jpg").size == (40, 70)


def test_luminance_kept_within_8bit_rounding(model):
    gray = _gray(45, 61)
    out = np.asarray(model.colorize(gray))
    src = np.repeat(gray[..., None], 3, axis=2)
    assert (_L(out) - _L(src)).abs().max() < 0.6  # one 8-bit step moves L by < ~0.5
    assert np.abs(out[..., 0].astype(int) - out[..., 2]).mean() > 5  # and it is in colour


def test_colour_input_is_colorized_from_its_luminance(model):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    out = np.asarray(model.colorize(rgb))
    assert (_L(out) - _L(rgb)).abs().max() < 0.6


@pytest.mark.parametrize("kind", ["path", "pil", "uint8", "uint8_rgb", "tensor_float", "tensor_u8"])
def test_api_accepts_every_input_type(model, tmp_path, kind):
    gray = _gray(33, 47)
    Image.fromarray(gray).save(tmp_path / "g.png")
    image = {
        "path": tmp_path / "g.png",
        "pil": Image.fromarray(gray),
        "uint8": gray,
        "uint8_rgb": np.repeat(gray[..., None], 3, axis=2),
        "tensor_float": torch.from_numpy(gray)[None].float() / 255,
        "tensor_u8": torch.from_numpy(gray)[None],
    }[kind]
    out = pixcolor.colorize(image, model=model)
    assert isinstance(out, Image.Image) and out.size == (47, 33)


def test_bad_inputs_raise_clear_errors(model):
    with pytest.raises(TypeError, match="expected a path, PIL image, uint8 array or tensor"):
        model.colorize(3.0)
    with pytest.raises(ValueError, match="uint8"):
        model.colorize(np.zeros((4, 4), dtype=np.float32))


@pytest.mark.parametrize(
    "image", [np.zeros((0, 5), np.uint8), np.zeros((5, 0, 3), np.uint8), torch.zeros(3, 4, 0)]
)
def test_zero_size_image_is_a_clear_error(model, image):
    with pytest.raises(ImageReadError, match=r"<memory>: zero-size image \(\d+x\d+\)"):
        model.colorize(image)


def test_pixel_limit_applies_to_arrays_and_tensors(model):
    for image in (np.zeros((100, 100), np.uint8), torch.zeros(1, 100, 100)):
        with pytest.raises(ImageReadError, match="too large: 100x100 = 10000 pixels > limit"):
            model.colorize(image, max_pixels=9999)
    assert model.colorize(np.zeros((100, 100), np.uint8), max_pixels=10000).size == (100, 100)


@pytest.mark.parametrize("size", [0, -5, 31, 2049, 64.0, True, "big"])
def test_working_size_out_of_range_or_not_whole_is_refused(model, size):
    with pytest.raises(ConfigError, match=r"^size must be (a whole number|in \[32, 2048\])"):
        model.colorize(_gray(8, 8), size=size)


def test_batch_matches_single_and_is_deterministic(tiny_model_dir):
    m = load_model(tiny_model_dir, device="cpu")
    images = [_gray(50, 70, s) for s in range(3)]
    batch = m.colorize_batch(images)
    for img, out in zip(images, batch, strict=True):
        single = np.asarray(m.colorize(img))
        assert np.abs(single.astype(int) - np.asarray(out)).max() <= 1
    assert np.array_equal(np.asarray(m.colorize(images[0])), np.asarray(m.colorize(images[0])))


def test_stochastic_mode_differs(tmp_path):
    kwargs = {"base_channels": 8, "num_downs": 5, "variant": "seed"}  # dropout in every decoder
    m = load_model(save_model(create_generator("unet", **kwargs), tmp_path / "s", "unet", kwargs))
    L = torch.rand(1, 1, 64, 64) * 100
    a, b = m.predict_ab(L, stochastic=True), m.predict_ab(L, stochastic=True)
    assert not torch.equal(a, b)
    assert torch.equal(m.predict_ab(L), m.predict_ab(L))  # eval mode is deterministic


def test_working_shape_keeps_aspect():
    assert working_shape(3000, 4000, 256, 32) == (224, 288)
    assert working_shape(10, 10, 256, 32) == (256, 256)
    h, w = working_shape(1, 5000, 256, 32)
    assert h == 32 and w % 32 == 0 and w > 32


def test_default_model_loads_offline_and_colorizes():
    if "default" not in pixcolor.available_models():
        pytest.skip("no shipped default model in this checkout")
    m = pixcolor.load_model(device="cpu")
    out = np.asarray(m.colorize(_gray(96, 128)))
    assert out.shape == (96, 128, 3)


def test_fast_model_is_one_decoder_on_the_defaults_encoder():
    if not {"default", "fast"} <= set(pixcolor.available_models()):
        pytest.skip("no shipped default and fast models in this checkout")
    ensemble, _ = load_network("default")
    fast, _ = load_network("fast")
    assert len(ensemble.decoders()) == 6 and not fast.more
    for k, v in fast.encoder.state_dict().items():  # the one frozen ImageNet encoder
        assert torch.equal(v, ensemble.encoder.state_dict()[k]), k
    assert not torch.equal(fast.head.weight, ensemble.head.weight)  # its own decoder
    out = np.asarray(pixcolor.load_model("fast", device="cpu").colorize(_gray(64, 80)))
    assert out.shape == (64, 80, 3)


def test_cli_colorize_mirrors_folders_and_reports_failures(tiny_model_dir, tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(_gray(40, 60)).save(src / "a.png")
    Image.fromarray(_gray(31, 17)).save(src / "sub" / "b.png")
    (src / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    code = main(["colorize", str(src), "-o", str(out), "--model", str(tiny_model_dir)])
    captured = capsys.readouterr()
    assert code == 1
    assert Image.open(out / "a.png").size == (60, 40)
    assert Image.open(out / "sub" / "b.png").size == (17, 31)
    assert not (out / "sub" / "broken.png").exists()
    assert "broken.png" in captured.err and "Traceback" not in captured.err
    assert "colorized 2, skipped 0, failed 1" in captured.out
    # A second run skips existing outputs; --format jpg writes new ones.
    assert (
        main(["colorize", str(src / "a.png"), "-o", str(out), "--model", str(tiny_model_dir)]) == 0
    )
    assert "skipped 1" in capsys.readouterr().out
    assert (
        main(
            [
                "colorize",
                str(src / "a.png"),
                "-o",
                str(out),
                "--model",
                str(tiny_model_dir),
                "--format",
                "jpg",
            ]
        )
        == 0
    )
    assert (out / "a.jpg").exists()


def test_cli_never_overwrites_an_input(tiny_model_dir, tmp_path, capsys):
    Image.fromarray(_gray(20, 20)).save(tmp_path / "x.png")
    before = (tmp_path / "x.png").read_bytes()
    code = main(
        [
            "colorize",
            str(tmp_path / "x.png"),
            "-o",
            str(tmp_path),
            "--model",
            str(tiny_model_dir),
            "--overwrite",
        ]
    )
    assert code == 1 and "overwrite the input" in capsys.readouterr().err
    assert (tmp_path / "x.png").read_bytes() == before
