"""Colour hints: the JSON format, the hint map, the hint layers, the API, the CLI and training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hint_helpers import TINY_KWARGS, save_tiny_hint_model, tiny_hint_network
from PIL import Image

import pixcolor
from pixcolor.checkpoint import save_model
from pixcolor.cli import main
from pixcolor.color import rgb_to_lab
from pixcolor.errors import PixcolorError
from pixcolor.hints import (
    Hint,
    HintError,
    hints_to_json,
    load_hints,
    parse_hints,
    pool_hints,
    random_hint_maps,
    render_hints,
    simulate_hints,
)
from pixcolor.models.effunet import EffUNet
from pixcolor.models.hint_layers import HintPropagation, widen_for_hints
from pixcolor.working_size import working_shape

GOOD = {
    "points": [
        {"x": 120, "y": 45, "rgb": [200, 30, 40], "radius": 3},
        {"x": 5, "y": 6, "rgb": [0, 0, 255]},
    ]
}


def _gray(h: int = 96, w: int = 128) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    g = (60 + 120 * (x > w // 2) + 20 * np.sin(y / 5)).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def _ab(image) -> np.ndarray:
    rgb = torch.from_numpy(np.array(image)).permute(2, 0, 1).double() / 255
    return rgb_to_lab(rgb)[1:].numpy()


# --- format -------------------------------------------------------------------------------
def test_format_round_trip_and_defaults(tmp_path):
    hints = parse_hints(GOOD, "h.json")
    assert hints == [Hint(120, 45, (200, 30, 40), 3), Hint(5, 6, (0, 0, 255), 3)]
    assert parse_hints(hints_to_json(hints)) == hints
    assert parse_hints([(120, 45, (200, 30, 40))]) == hints[:1]  # the tuple form
    path = tmp_path / "h.json"
    path.write_text(json.dumps(GOOD))
    assert load_hints(path) == hints
    assert parse_hints(None) == [] and parse_hints({"points": []}) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"pts": []}, "no 'points' list"),
        ({"points": 3}, "'points' must be a list"),
        ({"points": [{"x": 1, "y": 2}]}, "point 1: missing 'rgb'"),
        ({"points": [{"x": 1, "y": 2, "rgb": [300, 0, 0]}]}, "rgb must be three numbers 0-255"),
        ({"points": [{"x": 1, "y": 2, "rgb": [1, 2]}]}, "rgb must be three numbers"),
        ({"points": [{"x": "a", "y": 2, "rgb": [1, 2, 3]}]}, "x must be a number"),
        ({"points": [{"x": 1, "y": 2, "rgb": [1, 2, 3], "radius": -1}]}, "radius must be"),
        ({"points": [{"x": 1, "y": 2, "rgb": [1, 2, 3], "colour": 1}]}, "unknown key 'colour'"),
        ({"points": [{"x": 1, "y": 2, "rgb": [1, 2, 3]}] * 1001}, "at most 1000"),
    ],
)
def test_bad_hints_are_one_line_errors_naming_the_source(data, message):
    with pytest.raises(HintError, match=message) as info:
        parse_hints(data, "photo.json")
    assert str(info.value).startswith("photo.json") and "\n" not in str(info.value)


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(HintError, match=r"bad.json: not valid JSON"):
        load_hints(bad)
    with pytest.raises(HintError, match=r"missing.json: cannot read hints"):
        load_hints(tmp_path / "missing.json")


def test_render_maps_the_square_to_the_working_grid():
    hint = Hint(50, 20, (200, 30, 40), 3)  # 7x7 input pixels at 100x200 -> 50x100 cells
    m = render_hints([hint], (100, 200), (50, 100))
    mask = m[0, 2]
    ys, xs = torch.nonzero(mask, as_tuple=True)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (8, 11, 23, 26)
    lab = rgb_to_lab(torch.tensor([200, 30, 40.0]).div(255)[:, None, None])[:, 0, 0]
    assert torch.allclose(m[0, :2, 10, 25], lab[1:] / 110, atol=1e-5)
    tiny = render_hints([Hint(3, 3, (0, 0, 255), 0)], (1000, 1000), (10, 10))
    assert tiny[0, 2].sum() == 1  # at least one working-size cell
    with pytest.raises(HintError, match=r"p.json: point 1 \(200, 20\) is outside the 200x100"):
        render_hints([Hint(200, 20, (0, 0, 0))], (100, 200), (50, 100), "p.json")


def test_simulated_hints_are_nested_and_take_the_truths_colour():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    ten, two = simulate_hints(rgb, 10, seed=3), simulate_hints(rgb, 2, seed=3)
    assert ten[:2] == two and simulate_hints(rgb, 10, seed=4) != ten
    h = ten[0]
    x, y = int(h.x), int(h.y)
    assert 3 <= x < 57 and 3 <= y < 37
    patch = rgb[y - 3 : y + 4, x - 3 : x + 4].reshape(-1, 3).mean(0)
    assert np.abs(np.array(h.rgb) - patch).max() <= 0.5


def test_training_hint_maps_hold_the_truth_and_some_images_none():
    ab = torch.rand(64, 2, 32, 32) * 2 - 1
    maps = random_hint_maps(ab, torch.Generator().manual_seed(0))
    mask = maps[:, 2] > 0
    assert 0 < (mask.sum((1, 2)) == 0).sum() < 32  # some images without hints, most with
    assert ((maps[:, :2] != 0) <= mask[:, None]).all()  # ab only where the mask is
    again = random_hint_maps(ab, torch.Generator().manual_seed(0))
    assert torch.equal(maps, again)


# --- layers -------------------------------------------------------------------------------
def test_propagation_reaches_look_alike_cells_only():
    layer = HintPropagation(4, dim=4)
    with torch.no_grad():
        layer.query.weight.copy_(torch.eye(4)[:, :, None, None] * 4)
        layer.key.weight.copy_(torch.eye(4)[:, :, None, None] * 4)
        layer.query.bias.zero_()
        layer.key.bias.zero_()
        layer.no_hint.fill_(3.0)  # a match must beat this logit
    features = torch.zeros(1, 4, 2, 2)
    features[0, 0, 0, :] = 1.0  # top row alike
    features[0, 1, 1, :] = 1.0  # bottom row alike
    hints = torch.zeros(1, 3, 2, 2)
    hints[0, :, 0, 0] = torch.tensor([0.5, -0.3, 1.0])
    out = layer(features, pool_hints(hints, (2, 2)))
    assert out[0, 2, 0, 1] > 0.9 and out[0, 2, 1, 1] < 0.2  # weight on the hint
    assert torch.allclose(out[0, :2, 0, 1], torch.tensor([0.5, -0.3]), atol=0.05)
    assert torch.equal(layer(features, torch.zeros(1, 3, 2, 2)), torch.zeros(1, 3, 2, 2))


def test_widened_model_colours_as_before_until_trained():
    torch.manual_seed(0)
    kwargs = {"head": "bins", "decoder_channels": (8, 8, 8, 8, 8)}
    plain = EffUNet(**kwargs).eval()
    hinted = EffUNet(**kwargs, hints=True).eval()
    hinted.load_state_dict(widen_for_hints(hinted, plain.state_dict()))
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    maps = render_hints([Hint(10, 10, (200, 30, 40))], (64, 64), (64, 64))
    with torch.no_grad():
        before, after, hinted_now = plain(x), hinted(x), hinted(x, maps)
    assert torch.allclose(before, after, atol=1e-6)  # no hints: as before
    want = maps[0, :2, 10, 10]  # with a hint, the hinted cell moves to its colour at once
    assert (hinted_now[0, :, 10, 10] - want).abs().sum() < (before[0, :, 10, 10] - want).abs().sum()
    with pytest.raises(ValueError, match="takes no hints"):
        plain(x, maps)


# --- API ----------------------------------------------------------------------------------
@pytest.fixture
def local_model(tmp_path):
    return pixcolor.load_model(save_tiny_hint_model(tmp_path / "m", spread=False), device="cpu")


def test_a_hint_changes_the_colour_near_it_and_not_far_away(local_model):
    gray = _gray()
    plain = _ab(local_model.colorize(gray))
    green = _ab(local_model.colorize(gray, hints=[(20, 30, (0, 200, 0))]))
    same = _ab(
        local_model.colorize(gray, hints={"points": [{"x": 20, "y": 30, "rgb": [0, 200, 0]}]})
    )
    assert np.array_equal(green, same)
    change = np.abs(green - plain).sum(0)
    assert change[30, 20] > 5.0 and change[85, 120] < 0.05


def test_shipped_name_supplies_hints_and_plain_models_refuse(tmp_path, local_model, monkeypatch):
    plain = save_model(EffUNet(head="bins", decoder_channels=(8,) * 5), tmp_path / "plain",
                       "effunet", {"head": "bins", "decoder_channels": [8] * 5},
                       extra={"size": 64})  # fmt: skip
    model = pixcolor.load_model(plain, device="cpu")
    with pytest.raises(PixcolorError, match="takes no colour hints"):
        model.colorize(_gray(), hints=[(1, 1, (0, 0, 0))])
    assert np.asarray(model.colorize(_gray(), hints=None)).shape == (96, 128, 3)
    assert 1 <= len(model.suggest_colors(_gray(), 10, 10, k=3)) <= 3  # no hints: its own
    model.config["hints_model"] = "hints"
    monkeypatch.setattr(pixcolor.pipeline, "load_model", lambda name, device: local_model)
    out = model.colorize(_gray(), hints=[(20, 30, (0, 200, 0))])
    assert np.array_equal(np.asarray(out), np.asarray(local_model.colorize(
        _gray(), hints=[(20, 30, (0, 200, 0))])))  # fmt: skip


def test_a_shared_hint_model_is_used_and_must_take_hints(tmp_path, local_model, monkeypatch):
    plain = save_model(EffUNet(head="bins", decoder_channels=(8,) * 5), tmp_path / "plain",
                       "effunet", {"head": "bins", "decoder_channels": [8] * 5},
                       extra={"size": 64, "hints_model": "hints"})  # fmt: skip
    model = pixcolor.load_model(plain, device="cpu")
    with pytest.raises(PixcolorError, match="takes no colour hints"):
        model.share_hint_colorizer(pixcolor.load_model(plain, device="cpu"))
    model.share_hint_colorizer(local_model)
    monkeypatch.setattr(pixcolor.pipeline, "load_model", lambda *a, **k: pytest.fail("loaded"))
    assert model.hint_colorizer() is local_model


def test_batches_mix_hinted_and_plain_images(local_model):
    gray = _gray()
    outs = local_model.colorize_batch([gray, gray], hints=[None, [(20, 30, (0, 200, 0))]])
    assert np.array_equal(np.asarray(outs[0]), np.asarray(local_model.colorize(gray)))
    assert not np.array_equal(np.asarray(outs[0]), np.asarray(outs[1]))


def test_suggested_colours_are_distinct_and_keep_the_lightness(local_model):
    gray = _gray()
    colours = local_model.suggest_colors(gray, 20, 30, k=5)
    assert 1 <= len(colours) <= 5 and len(set(colours)) == len(colours)
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colours)
    L = [rgb_to_lab(torch.tensor(c).double().div(255)[:, None, None])[0].item() for c in colours]
    L_here = rgb_to_lab(torch.from_numpy(gray[30, 20]).double().div(255)[:, None, None])[0]
    assert np.allclose(L, min(max(L_here.item(), 35.0), 85.0), atol=3.0)
    with pytest.raises(HintError, match="outside"):
        local_model.suggest_colors(gray, 500, 30)


# --- CLI ----------------------------------------------------------------------------------
def test_cli_single_file_and_mirrored_folder(tmp_path, capsys):
    model = save_tiny_hint_model(tmp_path / "m", spread=False)
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png", "sub/c.png"):
        Image.fromarray(_gray()).save(src / name)
    hints = tmp_path / "hints"
    (hints / "sub").mkdir(parents=True)
    (hints / "sub" / "b.json").write_text(
        json.dumps({"points": [{"x": 20, "y": 30, "rgb": [0, 200, 0]}]})
    )
    (hints / "sub" / "c.json").write_text('{"points": [{"x": 999, "y": 1, "rgb": [0, 0, 0]}]}')
    rc = main(["colorize", str(src), "-o", str(tmp_path / "out"), "--model", str(model),
               "--hints", str(hints)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "c.png: " in err and "c.json: point 1 (999, 1) is outside" in err
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a.png", "sub/b.png"]  # fmt: skip
    a, b = _ab(Image.open(out / "a.png")), _ab(Image.open(out / "sub" / "b.png"))
    assert np.abs(a - b).sum(0)[30, 20] > 5.0  # b followed its hint, a had none
    one = tmp_path / "one"
    rc = main(["colorize", str(src / "a.png"), "-o", str(one), "--model", str(model),
               "--hints", str(hints / "sub" / "b.json")])  # fmt: skip
    assert rc == 0 and np.array_equal(np.asarray(Image.open(one / "a.png")),
                                      np.asarray(Image.open(out / "sub" / "b.png")))  # fmt: skip
    assert main(["colorize", str(src), "-o", str(tmp_path / "x"), "--model", str(model),
                 "--hints", str(hints / "sub" / "b.json")]) == 2  # fmt: skip
    assert "not a folder" in capsys.readouterr().err


# --- training -----------------------------------------------------------------------------
def test_training_with_hints_widens_an_unhinted_model(tmp_path):
    from train_helpers import tiny_train_config

    from pixcolor.train import Trainer

    photos = tmp_path / "data"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    plain_kwargs = {"head": "bins", "decoder_channels": [8] * 5}
    plain = save_model(EffUNet(**plain_kwargs), tmp_path / "plain", "effunet", plain_kwargs,
                       extra={"size": 32})  # fmt: skip
    cfg = tiny_train_config(data=str(photos), val=str(photos), out=str(tmp_path / "run"),
                            generator="effunet", generator_kwargs=dict(TINY_KWARGS),
                            gan_mode="none", epochs=1, init_from=str(plain))  # fmt: skip
    trainer = Trainer(cfg)
    metrics = trainer.fit()
    assert trainer.global_step == 2 and "val_l1_hints" in metrics
    assert any(up.block[0].weight[:, -6:].abs().sum() > 0 for up in trainer.G_raw.ups)
    tiny_hint_network()  # the helper builds


def test_hints_model_must_be_a_shipped_name(tmp_path):
    from pixcolor.errors import ConfigError
    from pixcolor.models.model_config import validate

    config = {"arch": "effunet", "kwargs": {"head": "bins"}, "hints_model": "hints"}
    assert validate(config, "c.json")["hints_model"] == "hints"
    for bad in ("../evil", "/abs/path", "", 3):
        with pytest.raises(ConfigError, match=r"c\.json: hints_model must be a shipped model name"):
            validate({**config, "hints_model": bad}, "c.json")


def test_spread_residuals_meet_the_hint_and_fade_with_distance():
    from pixcolor.levin import spread_residuals

    L = np.full((32, 64), 50.0)
    L[:, 40:] = 80.0  # an edge at x = 40
    ab = np.zeros((2, 32, 64), np.float32)
    maps = render_hints([Hint(10, 16, (200, 30, 40), 0)], (32, 64), (32, 64))[0].numpy()
    out = spread_residuals(ab, L, maps, reach=0.2)
    assert np.allclose(out[:, 16, 10], maps[:2, 16, 10] * 110, atol=1e-3)  # exact at the hint
    a = out[0, 16]
    assert a[10] > a[20] > a[35] > 0  # fading with distance in the flat region
    assert a[45] < 0.05 * a[35]  # and stopped by the edge
    assert np.array_equal(spread_residuals(ab, L, np.zeros((3, 32, 64))), ab)


def test_hints_may_be_a_file_path_and_its_errors_name_it(local_model, tmp_path):
    path = tmp_path / "photo.json"
    path.write_text(json.dumps({"points": [{"x": 20, "y": 30, "rgb": [0, 200, 0]}]}))
    by_path = np.asarray(local_model.colorize(_gray(), hints=path))
    assert np.array_equal(
        by_path, np.asarray(local_model.colorize(_gray(), hints=[(20, 30, (0, 200, 0))]))
    )
    path.write_text(json.dumps({"points": [{"x": 500, "y": 30, "rgb": [0, 200, 0]}]}))
    with pytest.raises(HintError, match=r"photo\.json: point 1 \(500, 30\) is outside"):
        local_model.colorize(_gray(), hints=str(path))


def test_hinted_photos_run_at_the_hint_models_working_size(tmp_path, monkeypatch):
    plain = save_model(EffUNet(head="bins", decoder_channels=(8,) * 5), tmp_path / "plain",
                       "effunet", {"head": "bins", "decoder_channels": [8] * 5},
                       extra={"size": 64, "hints_model": "hints"})  # fmt: skip
    model = pixcolor.load_model(plain, device="cpu")
    hinter = pixcolor.load_model(save_tiny_hint_model(tmp_path / "h", size=128), device="cpu")
    monkeypatch.setattr(pixcolor.pipeline, "load_model", lambda name, device: hinter)
    seen, predict = [], hinter.predict_ab
    monkeypatch.setattr(
        hinter, "predict_ab", lambda L, **kw: seen.append(tuple(L.shape[-2:])) or predict(L, **kw)
    )
    hints = [(20, 30, (0, 200, 0))]
    model.colorize(_gray(), hints=hints)  # the hint model's size 128, not the plain 64
    model.colorize(_gray(), hints=hints, size=64)  # a size given is used for both
    expected = [working_shape(96, 128, size, hinter.stride) for size in (128, 64)]
    assert seen == expected and expected[0] != expected[1]
