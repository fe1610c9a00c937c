"""Tests for ``pixcolor export``: release folders (fp16, size, temperature) and ONNX files.

The ONNX files are checked here independently of the exporter's own check: onnxruntime runs
them at shapes the export never saw and is compared with the PyTorch network.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pixcolor.checkpoint import save_model
from pixcolor.cli import main
from pixcolor.models import create_generator, create_srcnn
from pixcolor.pipeline import load_model
from pixcolor.sr import load_upscaler

TINY_UNET = {"base_channels": 8, "num_downs": 5}
TINY_SR = {"variant": "955", "channels": 1, "f1": 8, "f2": 4}
HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="needs the onnx extra")


@pytest.fixture
def tiny_unet(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    g = create_generator("unet", **TINY_UNET)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode matters
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return save_model(g, tmp_path / "unet", "unet", TINY_UNET, extra={"size": 64})


@pytest.fixture
def tiny_sr(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(
        create_srcnn(**TINY_SR), tmp_path / "sr", "srcnn", TINY_SR, extra={"scale": 3}
    )


def test_release_folder_fp16_size_and_temperature(tmp_path: Path, capsys) -> None:
    out = tmp_path / "release"
    assert main(["export", "default", "-o", str(out), "--fp16", "--size", "160",
                 "--temperature", "0.5"]) == 0  # fmt: skip
    assert "wrote" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["size"] == 160 and config["kwargs"]["temperature"] == 0.5
    shipped, exported = load_model(device="cpu"), load_model(out, device="cpu")
    assert exported.size == 160 and exported.model.temperature == 0.5
    exported.model.temperature = shipped.model.temperature  # same weights otherwise
    L = torch.rand(1, 1, 64, 96) * 100
    torch.testing.assert_close(exported.predict_ab(L), shipped.predict_ab(L), rtol=0, atol=1e-4)


def test_release_folder_chroma_gain_scales_the_predicted_ab(tmp_path: Path, capsys) -> None:
    out, plain = tmp_path / "release", tmp_path / "plain"
    assert (
        main(["export", "default", "-o", str(plain), "--chroma-gain", "1", "--cast-gain", "1"]) == 0
    )
    assert main(["export", "default", "-o", str(out), "--chroma-gain", "1.25"]) == 0
    assert json.loads((out / "config.json").read_text())["kwargs"]["chroma_gain"] == 1.25
    shipped, exported = load_model(device="cpu"), load_model(out, device="cpu")
    L = torch.rand(1, 1, 64, 96) * 100
    ref = load_model(plain, device="cpu").predict_ab(L)  # no gains
    assert float(ref.abs().mean()) > 0.3  # not all zero: the gain has something to scale
    cast = ref.mean(dim=(-2, -1), keepdim=True)  # the shipped cast gain is kept
    want = (ref - cast) * 1.25 + cast * shipped.model.cast_gain
    torch.testing.assert_close(exported.predict_ab(L), want, rtol=0, atol=1e-4)
    for bad in ("0.2", "3"):
        assert main(["export", "default", "-o", str(out), "--chroma-gain", bad]) == 2
        assert "--chroma-gain must be in [0.5, 2]" in capsys.readouterr().err


def test_release_folder_cast_gain_is_stored_and_checked(tmp_path: Path, capsys) -> None:
    out = tmp_path / "release"
    assert main(["export", "default", "-o", str(out), "--cast-gain", "0.8"]) == 0
    assert json.loads((out / "config.json").read_text())["kwargs"]["cast_gain"] == 0.8
    assert load_model(out, device="cpu").model.cast_gain == 0.8
    assert main(["export", "default", "-o", str(out), "--cast-gain", "2.5"]) == 2
    assert "--cast-gain must be in [0, 2]" in capsys.readouterr().err


def test_release_folder_extra_sizes_are_stored_and_checked(tmp_path: Path, capsys) -> None:
    out = tmp_path / "release"
    assert main(["export", "default", "-o", str(out), "--extra-sizes", "288", "320"]) == 0
    assert json.loads((out / "config.json").read_text())["extra_sizes"] == [288, 320]
    assert load_model(out, device="cpu").extra_sizes == (288, 320)
    assert main(["export", str(out), "-o", str(tmp_path / "b"), "--extra-sizes"]) == 0  # none
    assert load_model(tmp_path / "b", device="cpu").extra_sizes == ()
    assert main(["export", "default", "-o", str(out), "--extra-sizes", "8"]) == 2
    assert "--extra-sizes must be in [32, 2048], got 8" in capsys.readouterr().err


def test_release_folder_names_its_hints_model(tmp_path: Path, capsys) -> None:
    out = tmp_path / "release"
    assert main(["export", "fast", "-o", str(out), "--hints-model", "hints"]) == 0
    assert json.loads((out / "config.json").read_text())["hints_model"] == "hints"
    assert load_model(out, device="cpu").hint_colorizer().takes_hints
    for bad, why in (("fast", "takes no colour hints"), ("../hints", "no shipped colorizer")):
        assert main(["export", "fast", "-o", str(tmp_path / "x"), "--hints-model", bad]) == 2
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_fp16_release_keeps_buffers_in_fp32(tmp_path: Path) -> None:
    from safetensors import safe_open

    out = tmp_path / "release"
    assert main(["export", "default", "-o", str(out), "--fp16"]) == 0
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        dtypes = {key: f.get_tensor(key).dtype for key in f.keys()}  # noqa: SIM118
    assert dtypes["bin_centers"] == torch.float32
    assert dtypes["head.weight"] == torch.float16
    assert any(k.endswith("running_var") and v == torch.float32 for k, v in dtypes.items())


def test_release_folder_refuses_temperature_on_tanh_models(tiny_unet: Path, capsys) -> None:
    assert main(["export", str(tiny_unet), "-o", str(tiny_unet.parent / "x"),
                 "--temperature", "0.5"]) == 2  # fmt: skip
    assert "ab-bin models only" in capsys.readouterr().err
    assert main(["export", str(tiny_unet), "-o", str(tiny_unet.parent / "x"),
                 "--chroma-gain", "1.2"]) == 2  # fmt: skip
    assert "effunet colorizers only" in capsys.readouterr().err
    assert main(["export", str(tiny_unet), "-o", str(tiny_unet.parent / "x"),
                 "--cast-gain", "1.0"]) == 2  # fmt: skip
    assert "effunet colorizers only" in capsys.readouterr().err


def test_release_folder_of_an_srcnn(tiny_sr: Path, capsys) -> None:
    out = tiny_sr.parent / "release"
    assert main(["export", str(tiny_sr), "-o", str(out), "--fp16"]) == 0
    assert json.loads((out / "config.json").read_text())["scale"] == 3
    a = load_upscaler(tiny_sr, device="cpu").model
    b = load_upscaler(out, device="cpu").model
    x = torch.rand(1, 1, 20, 24)
    with torch.inference_mode():
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-2)  # fp16 storage


def _ort_run(path: Path, name: str, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {name: x.numpy()})[0]


@needs_onnx
def test_onnx_colorizer_dynamic_shapes_match_pytorch(tiny_unet: Path, capsys) -> None:
    import onnx

    out = tiny_unet.parent / "unet.onnx"
    assert main(["export", str(tiny_unet), "--onnx", "-o", str(out)]) == 0
    assert "onnxruntime matches PyTorch" in capsys.readouterr().out
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["pixcolor.kind"] == "colorizer" and meta["pixcolor.stride"] == "32"
    assert meta["pixcolor.size"] == "64" and json.loads(meta["pixcolor.kwargs"]) == TINY_UNET
    assert meta["pixcolor.extra_sizes"] == "[]"
    net = load_model(tiny_unet, device="cpu").model.float().eval()
    for shape in [(1, 1, 32, 32), (3, 1, 96, 160)]:  # shapes the export did not see
        x = torch.rand(shape) * 2 - 1
        with torch.inference_mode():
            ref = net(x).numpy()
        got = _ort_run(out, "l_norm", x)
        assert got.shape == (shape[0], 2, *shape[2:])
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


@needs_onnx
def test_onnx_shipped_default_bins_head(tmp_path: Path) -> None:
    """The shipped model (EfficientNet encoder with SAME padding, ab-bin head) exports with
    dynamic sizes and keeps its temperature, chroma gain and cast gain."""
    import onnx

    from pixcolor.models.hub import load_network
    from pixcolor.onnx_export import export_onnx

    out = tmp_path / "default.onnx"
    gains = {"temperature": 1.0, "chroma_gain": 1.2, "cast_gain": 0.9}
    result = export_onnx("default", out, **gains)
    assert result.kind == "colorizer" and result.max_abs_diff < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["pixcolor.extra_sizes"]) == list(load_model(device="cpu").extra_sizes)
    net, _ = load_network("default", **gains)
    assert (net.temperature, net.chroma_gain, net.cast_gain) == (1.0, 1.2, 0.9)
    x = torch.rand(1, 1, 96, 128) * 2 - 1
    with torch.inference_mode():
        ref = net(x).numpy()
    np.testing.assert_allclose(_ort_run(result.path, "l_norm", x), ref, rtol=0, atol=1e-4)


@needs_onnx
def test_onnx_srcnn_any_size(tiny_sr: Path) -> None:
    from pixcolor.onnx_export import export_onnx

    result = export_onnx(tiny_sr, tiny_sr.parent / "sub" / "sr.onnx")
    assert result.path.is_file() and result.stride == 1
    net = load_upscaler(tiny_sr, device="cpu").model.float().eval()
    x = torch.rand(2, 1, 37, 23)
    with torch.inference_mode():
        ref = net(x).numpy()
    np.testing.assert_allclose(_ort_run(result.path, "y", x), ref, rtol=0, atol=1e-5)


def test_onnx_errors_are_one_line(tiny_unet: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    bad_name = tmp_path / "model.onx"
    assert main(["export", str(tiny_unet), "--onnx", "-o", str(bad_name)]) == 2
    assert "names the .onnx file" in capsys.readouterr().err
    assert main(["export", str(tiny_unet), "--onnx", "--fp16", "-o", str(tmp_path / "a.onnx")]) == 2
    assert "--fp16" in capsys.readouterr().err
    if HAVE_ONNX:

        def broken(*args, **kwargs):
            raise RuntimeError("unsupported operator aten::frobnicate\n(pages of detail)")

        with monkeypatch.context() as m:
            m.setattr(torch.onnx, "export", broken)
            assert main(["export", str(tiny_unet), "--onnx", "-o", str(tmp_path / "a.onnx")]) == 2
        err = capsys.readouterr().err
        assert "ONNX export failed (RuntimeError: unsupported operator" in err
        assert "pages of detail" not in err
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name)
    )
    assert main(["export", str(tiny_unet), "--onnx", "-o", str(tmp_path / "a.onnx")]) == 2
    assert "pip install 'pixcolor[onnx]'" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*.tmp"))
