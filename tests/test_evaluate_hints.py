"""``pixcolor evaluate --hints``: the model and Levin et al. at N simulated hints per photo."""

from __future__ import annotations

import base64
import csv
import json
import re

import numpy as np
import pytest
from hint_helpers import save_tiny_hint_model
from PIL import Image

from pixcolor.checkpoint import save_model
from pixcolor.cli import main
from pixcolor.evaluate import BASELINE, evaluate
from pixcolor.evaluate_hints import LEVIN, HintPlan, method_name
from pixcolor.files import collect_inputs
from pixcolor.models import create_generator
from pixcolor.pipeline import load_model


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three tiny colour photos: smooth gradients of different hues, with noise."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    for i in range(3):
        img = np.stack([x * 4, y * 5, 255 - x * 3], -1)[..., np.roll([0, 1, 2], i)]
        img = img + rng.integers(0, 20, (48, 64, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def hint_model(tmp_path_factory):
    return save_tiny_hint_model(tmp_path_factory.mktemp("hint_model") / "m")


def test_cli_writes_rows_for_each_count_and_the_plot(photos, hint_model, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["evaluate", str(photos), "--model", str(hint_model), "--device", "cpu"]
    code = main([*args, "--hints", "2,0,1", "--hints-seed", "7", "-o", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    for n in (0, 1, 2):  # the general table and the curve table have a row per N
        assert f"m, {n} hint" in text and f"{LEVIN}, {n} hint" in text
        assert re.search(rf"^\s+{n}\s+\d+\.\d\d\s", text, re.MULTILINE)
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["meta"]["hints"] == [0, 1, 2] and doc["meta"]["hints_seed"] == 7
    curve = doc["hints"]
    assert curve["counts"] == [0, 1, 2] and curve["images"] == 3
    assert list(curve["methods"]) == ["m", LEVIN, BASELINE]
    summary = doc["summary"]["all"]
    for method in ("m", LEVIN):
        for i, n in enumerate((0, 1, 2)):
            for key in ("psnr", "ssim", "spread"):
                value = curve["methods"][method][key][i]
                assert value == pytest.approx(summary[method_name(method, n)][key])
    gray = curve["methods"][BASELINE]
    assert gray["psnr"] == [summary[BASELINE]["psnr"]] * 3
    # Levin without hints is gray: same PSNR as the baseline to 8-bit rounding.
    assert curve["methods"][LEVIN]["psnr"][0] == pytest.approx(gray["psnr"][0], abs=0.05)
    assert curve["methods"][LEVIN]["spread"][2] > curve["methods"][LEVIN]["spread"][0] + 1
    rows = list(csv.DictReader((out / "hints.csv").read_text().splitlines()))
    assert len(rows) == 9 and {r["hints"] for r in rows} == {"0", "1", "2"}
    assert {r["method"] for r in rows} == {"m", LEVIN, BASELINE}
    page = (out / "report.html").read_text()
    plot = re.search(r"<img alt='PSNR against hints' src='data:image/png;base64,([^']+)'", page)
    assert plot and base64.b64decode(plot.group(1)).startswith(b"\x89PNG")
    assert "<figcaption>input, 2 hints</figcaption>" in page
    assert f"<figcaption>{LEVIN}, 2 hints</figcaption>" in page


def test_counts_are_nested_and_zero_hints_is_the_model_alone(photos, hint_model):
    files, _ = collect_inputs([str(photos)])
    model = {"m": load_model(str(hint_model), device="cpu")}
    plain, _, _ = evaluate(files, model, keep_images=False)
    hinted, _, _ = evaluate(files, model, keep_images=False, hints=HintPlan((0, 1, 3), seed=1))
    again, _, _ = evaluate(files, model, keep_images=False, hints=HintPlan((1,), seed=1))
    for p, h, a in zip(plain, hinted, again, strict=True):
        assert h.scores["m, 0 hints"] == pytest.approx(p.scores["m"], nan_ok=True)
        # The 1-hint run draws the same first hint whatever the largest N is.
        assert a.scores["m, 1 hint"] == pytest.approx(h.scores["m, 1 hint"], nan_ok=True)
        assert a.scores[f"{LEVIN}, 1 hint"] == pytest.approx(h.scores[f"{LEVIN}, 1 hint"])
        assert h.scores["m, 3 hints"] != pytest.approx(h.scores["m, 0 hints"])


def test_bare_flag_uses_the_default_counts():
    from pixcolor.cli import build_parser

    argv = ["evaluate", "photos", "--hints"]
    args = build_parser(argv).parse_args(argv)
    assert args.hints == (0, 1, 2, 5, 10, 20, 50) and args.hints_seed == 0


@pytest.mark.parametrize("value", ["1,x", "-1", "5,2000", ","])
def test_bad_counts_are_one_line_errors(value, photos, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(photos), f"--hints={value}"])
    assert exc.value.code == 2
    assert "hint counts" in capsys.readouterr().err


def test_model_without_hints_fails_before_any_work(photos, tmp_path, capsys):
    kwargs = {"base_channels": 8, "num_downs": 5}
    plain = save_model(
        create_generator("unet", **kwargs), tmp_path / "u", "unet", kwargs, extra={"size": 64}
    )
    out = tmp_path / "report"
    code = main(["evaluate", str(photos), "--model", str(plain), "--hints", "0,1", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "takes no colour hints" in err and "Traceback" not in err
    assert not out.exists()


def test_unreadable_photo_fails_alone(photos, hint_model, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for p in photos.iterdir():
        (data / p.name).write_bytes(p.read_bytes())
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    out = tmp_path / "report"
    code = main(
        ["evaluate", str(data), "--model", str(hint_model), "--hints", "0,1", "-o", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 1 and "broken.png" in captured.err
    assert json.loads((out / "metrics.json").read_text())["hints"]["images"] == 3
