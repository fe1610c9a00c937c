"""The one loader (pixcolor.models.hub): names, kinds, checked configs, one-line weight errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pixcolor.checkpoint import save_model
from pixcolor.errors import CheckpointError, ConfigError, PixcolorError
from pixcolor.models import create_generator, create_srcnn, hub
from pixcolor.models.model_config import MAX_MEMBERS, validate

TINY_UNET = {"base_channels": 8, "num_downs": 5}
TINY_SR = {"variant": "915", "channels": 1, "f1": 8, "f2": 4}


@pytest.fixture
def unet_dir(tmp_path: Path) -> Path:
    g = create_generator("unet", **TINY_UNET)
    return save_model(g, tmp_path / "unet", "unet", TINY_UNET, extra={"size": 64})


@pytest.fixture
def sr_dir(tmp_path: Path) -> Path:
    net = create_srcnn(**TINY_SR)
    return save_model(net, tmp_path / "sr", "srcnn", TINY_SR, extra={"scale": 3})


def rewrite_config(folder: Path, **changes) -> Path:
    file = folder / "config.json"
    config = json.loads(file.read_text())
    for key, value in changes.items():
        if key.startswith("kwargs."):
            config["kwargs"][key[len("kwargs.") :]] = value
        else:
            config[key] = value
    file.write_text(json.dumps(config))
    return file


def test_shipped_names_by_kind():
    assert {"default", "fast"} <= set(hub.shipped("colorizer"))
    assert hub.shipped("upscaler") == ["srcnn-x2", "srcnn-x3", "srcnn-x4"]


def test_resolve_defaults_names_and_paths(unet_dir: Path):
    assert hub.resolve(None) == hub.WEIGHTS_DIR / "default"
    assert hub.resolve(None, "upscaler", scale=3) == hub.WEIGHTS_DIR / "srcnn-x3"
    assert hub.resolve("fast") == hub.WEIGHTS_DIR / "fast"
    assert hub.resolve(str(unet_dir)) == unet_dir
    with pytest.raises(PixcolorError, match=r"nope: no such model .*shipped: default, fast"):
        hub.resolve("nope")
    with pytest.raises(PixcolorError, match=r"shipped: srcnn-x2, srcnn-x3, srcnn-x4"):
        hub.resolve(None, "upscaler", scale=5)


def test_load_network_of_either_kind(unet_dir: Path, sr_dir: Path):
    net, config = hub.load_network(unet_dir)
    assert config["arch"] == "unet" and config["size"] == 64 and not net.training
    sr, config = hub.load_network(sr_dir, "upscaler")
    assert config["scale"] == 3 and isinstance(sr, torch.nn.Module)
    saved = load_file(sr_dir / "model.safetensors")
    assert all(torch.equal(saved[k], v) for k, v in sr.state_dict().items())
    with pytest.raises(PixcolorError, match=r"sr: an upscaler \(srcnn\), not a colorizer"):
        hub.load_network(sr_dir, "colorizer")
    with pytest.raises(PixcolorError, match=r"unet: a colorizer \(unet\), not an upscaler"):
        hub.load_network(unet_dir, "upscaler")


def test_weights_that_do_not_fit_give_one_line(unet_dir: Path):
    rewrite_config(unet_dir, **{"kwargs.base_channels": 16})
    with pytest.raises(CheckpointError) as info:
        hub.load_network(unet_dir)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    assert str(unet_dir / "model.safetensors") in message
    small = create_generator("unet", **TINY_UNET).state_dict()
    wide = create_generator("unet", **{**TINY_UNET, "base_channels": 16}).state_dict()
    misshaped = sum(small[k].shape != wide[k].shape for k in small)
    assert misshaped > 10
    assert f"0 missing, 0 unexpected, {misshaped} mis-shaped keys" in message
    assert "first: downs.0.0.weight: (8, 1, 4, 4) in the file, (16, 1, 4, 4) here" in message
    rewrite_config(unet_dir, **{"kwargs.base_channels": 8, "kwargs.num_downs": 6})
    with pytest.raises(CheckpointError, match=r"\d+ missing, 0 unexpected, \d+ mis-shaped"):
        hub.load_network(unet_dir)


def test_only_safetensors_and_readable_configs(tmp_path: Path, unet_dir: Path):
    pickle = tmp_path / "model.pt"
    torch.save({"x": torch.zeros(1)}, pickle)
    with pytest.raises(CheckpointError, match=r"only \.safetensors weights are loaded"):
        hub.load_network(pickle)
    (unet_dir / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: cannot read model config"):
        hub.load_network(unet_dir)
    (unet_dir / "model.safetensors").write_bytes(b"garbage")
    (unet_dir / "config.json").write_text(json.dumps({"arch": "unet", "kwargs": TINY_UNET}))
    with pytest.raises(CheckpointError, match="corrupt or unreadable weights") as info:
        hub.load_network(unet_dir)
    assert "\n" not in str(info.value)


# ---- config fuzz: every field, wrong types and out-of-range values ---------------------------

EFFUNET = {
    "arch": "effunet",
    "kwargs": {"head": "bins", "temperature": 0.7, "chroma_gain": 1.38, "cast_gain": 1.15,
               "members": 6},
    "size": 224,
}  # fmt: skip
BAD_VALUES = {  # field -> values that must be refused
    "size": [-5, 0, 31, 2049, 40000, "big", 224.0, True, None, [224]],
    "extra_sizes": [352, [16], [352.0], [True], [32] * 5, "352", None, {"352": 1}],
    "scale": [1, 9, "3", 3.0],
    "epoch": [-1, "14", 1.5],
    "kwargs.members": [0, 17, 100000, "6", 6.0, True],
    "kwargs.temperature": [0, -1, 1.5, "0.7", None, [0.7]],
    "kwargs.chroma_gain": [0.4, 2.1, "1.3", False],
    "kwargs.cast_gain": [-0.1, 2.5, "1"],
    "kwargs.head": ["softmax", 1, None],
    "kwargs.encoder": ["lite9", 0],
    "kwargs.num_bins": [-1, 5000, "529"],
    "kwargs.decoder_channels": [[192, 96], [0, 1, 1, 1, 1], "wide", [1, 1, 1, 1, 2000]],
    "kwargs.dropout": [1.0, -0.1, "0"],
    "kwargs.norm": ["layer", None],
    "kwargs.in_channels": [2, "1"],
    "kwargs.pretrained": ["yes", 1],
    "kwargs.unknown_argument": [1],
}


def fuzz_cases() -> list[tuple[str, object]]:
    return [(field, value) for field, values in BAD_VALUES.items() for value in values]


@pytest.mark.parametrize(("field", "value"), fuzz_cases())
def test_config_fuzz_each_bad_field_is_named_with_its_file(field: str, value: object):
    config = json.loads(json.dumps(EFFUNET))
    if field.startswith("kwargs."):
        config["kwargs"][field[len("kwargs.") :]] = value
    else:
        config[field] = value
    with pytest.raises(ConfigError) as info:
        validate(config, "some/model/config.json")
    message = str(info.value)
    assert message.startswith(f"some/model/config.json: {field}") and "\n" not in message


@pytest.mark.parametrize(
    "config",
    [None, [], "effunet", {"kwargs": {}}, {"arch": "resnet"}, {"arch": "unet", "kwargs": []}],
)
def test_config_fuzz_malformed_documents(config: object):
    with pytest.raises(ConfigError, match=r"^m/config\.json: "):
        validate(config, "m/config.json")


def test_config_accepts_every_value_in_range():
    for members in (1, MAX_MEMBERS):
        assert validate({**EFFUNET, "kwargs": {"members": members}}, "c")["kwargs"]["members"] > 0
    for size in (32, 2048):
        assert validate({**EFFUNET, "size": size}, "c")["size"] == size
    sizes = [32, 2048, 352, 352]
    assert validate({**EFFUNET, "extra_sizes": sizes}, "c")["extra_sizes"] == sizes
    out = validate({**EFFUNET, "note": "kept", "metrics": {"psnr": 1.0}}, "c")
    assert out["note"] == "kept" and out["metrics"] == {"psnr": 1.0}
    assert (
        "pretrained"
        not in validate({"arch": "effunet", "kwargs": {"pretrained": True}}, "c")["kwargs"]
    )


def test_a_huge_ensemble_is_refused_before_anything_is_built(unet_dir: Path):
    file = rewrite_config(unet_dir, arch="effunet", kwargs={"members": 100000})
    with pytest.raises(ConfigError, match=rf"{file}: kwargs\.members must be in \[1, 16\]"):
        hub.load_network(unet_dir)


def test_bad_config_through_the_cli_is_one_line(unet_dir: Path, tmp_path: Path, capsys):
    from pixcolor.cli import main

    file = rewrite_config(unet_dir, size="big")
    (tmp_path / "in").mkdir()
    code = main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--model",
                 str(unet_dir)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"pixcolor: error: {file}: size must be a whole number, got 'big'"


def test_gain_overrides_are_checked(unet_dir: Path):
    with pytest.raises(PixcolorError, match="--chroma-gain applies to effunet colorizers only"):
        hub.load_network(unet_dir, chroma_gain=1.2)
    with pytest.raises(PixcolorError, match=r"--cast-gain must be in \[0, 2\], got 3"):
        hub.load_network("fast", cast_gain=3.0)


@pytest.mark.parametrize("command", ["colorize", "evaluate", "export", "video", "evaluate-video"])
def test_size_flags_ask_the_one_range_rule(command: str, unet_dir: Path, tmp_path: Path, capsys):
    from pixcolor.cli import main

    argv = {
        "colorize": ["colorize", str(tmp_path), "-o", str(tmp_path / "o")],
        "evaluate": ["evaluate", str(tmp_path)],
        "export": ["export", str(unet_dir), "-o", str(tmp_path / "x")],
        "video": ["video", str(tmp_path), "-o", str(tmp_path / "v")],
        "evaluate-video": ["evaluate-video", str(tmp_path)],
    }[command]
    assert main([*argv, "--size", "5000"]) == 2
    assert capsys.readouterr().err.strip() == (
        "pixcolor: error: --size must be in [32, 2048], got 5000"
    )
