"""Metrics against scikit-image and hand-computed cases; evaluate CLI and HTML report."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pixcolor import metrics
from pixcolor.checkpoint import save_model
from pixcolor.cli import main
from pixcolor.models import create_generator


def _pair(rng, h=37, w=50):
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_psnr_matches_skimage(rng):
    a, b = _pair(rng)
    ref = peak_signal_noise_ratio(a, b, data_range=255)
    assert metrics.psnr(a, b).item() == pytest.approx(ref, abs=1e-9)


def test_psnr_identical_is_capped_and_accepts_float_tensors(rng):
    a, _ = _pair(rng)
    assert metrics.psnr(a, a).item() == metrics.PSNR_CAP_DB
    t = torch.from_numpy(a).permute(2, 0, 1).float() / 255
    assert metrics.psnr(t, t).item() == metrics.PSNR_CAP_DB


@pytest.mark.parametrize("shape", [(37, 50), (64, 64), (11, 200)])
def test_ssim_matches_skimage(rng, shape):
    a, b = _pair(rng, *shape)
    ref = structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )
    assert metrics.ssim(a, b).item() == pytest.approx(ref, abs=1e-4)


def test_colourfulness_hand_cases():
    gray = np.full((8, 8, 3), 120, dtype=np.uint8)
    assert metrics.colourfulness(gray).item() == 0.0
    tint = np.zeros((8, 8, 3), dtype=np.uint8)
    tint[...] = (200, 150, 100)  # rg = 50, yb = 75: only the mean term
    assert metrics.colour_spread(tint).item() == 0.0
    assert metrics.colourfulness(tint).item() == pytest.approx(0.3 * np.hypot(50, 75))
    half = np.zeros((2, 1, 3), dtype=np.uint8)
    half[0] = (255, 0, 0)  # rg = 255, yb = 127.5; the other pixel is black
    sigma = np.hypot(127.5, 63.75)
    mu = np.hypot(127.5, 63.75)
    assert metrics.colourfulness(half).item() == pytest.approx(sigma + 0.3 * mu)


def test_ab_l1_and_errors():
    a = torch.zeros(1, 2, 4, 4)
    assert metrics.ab_l1(a + 3, a).item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(TypeError):
        metrics.psnr([1, 2], [1, 2])


class _Checker(HTMLParser):
    """Counts tags and checks that every opened non-void tag is closed."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self):
        super().__init__()
        self.stack, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()


def test_evaluate_cli_scores_baseline_and_writes_report(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "photos"
    for sub in ("a", "b"):
        (data / sub).mkdir(parents=True)
        for i in range(2):
            y, x = np.mgrid[0:48, 0:64]
            img = np.stack([x * 4, y * 5, 255 - x * 3], -1) + rng.integers(0, 20, (48, 64, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(data / sub / f"{i}.png")
    kwargs = {"base_channels": 8, "num_downs": 5}
    model = save_model(
        create_generator("unet", **kwargs), tmp_path / "m", "unet", kwargs, extra={"size": 64}
    )
    out = tmp_path / "report"
    code = main(["evaluate", str(data), "--model", str(model), "-o", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "gray baseline" in text and "[all] 4 images" in text and "[a] 2 images" in text
    doc = json.loads((out / "metrics.json").read_text())
    base = doc["summary"]["all"]["gray baseline"]
    assert base["colourfulness"] < 1.0 and base["spread_ratio"] < 0.05
    assert doc["summary"]["all"]["truth"]["spread"] > 10
    # The gray baseline's PSNR equals a direct computation on the first image.
    first = doc["images"][0]
    truth = np.asarray(Image.open(first["path"]).convert("RGB"))
    from pixcolor.color import gray_uint8

    direct = metrics.psnr(gray_uint8(truth), truth).item()
    assert first["scores"]["gray baseline"]["psnr"] == pytest.approx(direct)
    checker = _Checker()
    checker.feed((out / "report.html").read_text())
    assert checker.stack == ["html"] or checker.stack == []
    imgs = [a for t, a in checker.tags if t == "img"]
    assert len(imgs) >= 10 and all(a["src"].startswith("data:image/png;base64,") for a in imgs)
    assert (out / "distributions.png").stat().st_size > 1000
