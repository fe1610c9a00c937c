"""The full-resolution recolour (pixcolor.recolor): values against the float reference, L kept,
the gamut rule, bicubic upsampling against PyTorch's, tiling and threads, saturation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixcolor import recolor as rc
from pixcolor.color import lab_to_rgb, rgb_to_lab


def _lab(rgb: np.ndarray) -> torch.Tensor:
    """Lab ``(3, H, W)`` float64 of an ``(H, W, 3)`` uint8 image (the reference conversion)."""
    return rgb_to_lab(torch.from_numpy(np.array(rgb)).permute(2, 0, 1).double() / 255)


def _image(h: int, w: int, gray: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if gray:
        return np.repeat(rng.integers(0, 256, (h, w, 1), dtype=np.uint8), 3, axis=2)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("gray", [True, False])
@pytest.mark.parametrize("threads", [1, 3])
def test_matches_reference_in_gamut_and_keeps_L_everywhere(monkeypatch, gray, threads):
    monkeypatch.setattr(rc, "TILE_PIXELS", 500)  # many tiles, partial last tile
    rgb = _image(45, 70, gray)
    ab = ((np.random.default_rng(1).random((2, 45, 70)) - 0.5) * 160).astype(np.float32)
    out = rc.recolor(rgb, rc.full_ab(ab), threads=threads)
    lab = _lab(rgb)
    ref = lab_to_rgb(torch.cat([lab[:1], torch.from_numpy(ab).double()]), clip=False)
    in_gamut = ((ref >= 0) & (ref <= 1)).all(0)
    assert 0.1 < in_gamut.double().mean() < 0.9  # both branches of the gamut rule are exercised
    ref8 = (ref.clamp(0, 1) * 255).round()
    got = torch.from_numpy(out).permute(2, 0, 1).double()
    assert (got - ref8).abs()[:, in_gamut].max() <= 1  # ties of the 8-bit rounding
    assert (_lab(out)[0] - lab[0]).abs().max() < 0.6  # L kept everywhere, to 8-bit rounding


def test_out_of_gamut_is_pulled_towards_gray_of_the_same_luminance():
    rgb = np.full((1, 3, 3), 128, np.uint8)
    ab = np.array([100.0, -100.0], np.float32).reshape(2, 1, 1).repeat(3, 2)  # far outside sRGB
    out = rc.recolor(rgb, rc.full_ab(ab))
    lab_out = _lab(out)
    assert abs(lab_out[0, 0, 0].item() - _lab(rgb)[0, 0, 0].item()) < 0.6
    # Same hue direction, less chroma: a > 0 and b < 0, both smaller than asked.
    assert 0 < lab_out[1, 0, 0].item() < 100 and -100 < lab_out[2, 0, 0].item() < 0
    assert out.min() == 0 or out.max() == 255  # on the gamut's edge, not inside it


def test_one_very_long_row_is_split_into_column_tiles(monkeypatch):
    monkeypatch.setattr(rc, "TILE_PIXELS", 64)
    rgb = _image(1, 1000, gray=False, seed=2)
    ab = np.random.default_rng(3).normal(0, 20, (2, 1, 1000)).astype(np.float32)
    whole = rc.recolor(rgb, rc.full_ab(ab), threads=1)
    monkeypatch.setattr(rc, "TILE_PIXELS", 1 << 15)
    assert np.array_equal(rc.recolor(rgb, rc.full_ab(ab), threads=2), whole)


@pytest.mark.parametrize("size", [(301, 97), (1, 50), (40, 1), (8, 8)])
def test_upsampling_equals_pytorch_bicubic(size):
    ab_small = torch.randn(2, 7, 5, generator=torch.Generator().manual_seed(0)) * 30
    ref = F.interpolate(ab_small[None], size=size, mode="bicubic", align_corners=False)[0]
    h, w = size
    a, b = np.empty(h * w, np.float32), np.empty(h * w, np.float32)
    rc.upsampled_ab(ab_small.numpy(), h, w)(0, h, 0, w, a, b)
    assert np.abs(a.reshape(h, w) - ref[0].numpy()).max() < 1e-3
    assert np.abs(b.reshape(h, w) - ref[1].numpy()).max() < 1e-3


def test_recolor_image_saturation():
    rgb = np.repeat(np.random.default_rng(4).integers(90, 170, (30, 40, 1), np.uint8), 3, axis=2)
    ab_small = np.random.default_rng(5).normal(0, 8, (2, 6, 8)).astype(np.float32)  # in gamut
    base = rc.recolor_image(rgb, ab_small)
    assert np.array_equal(rc.recolor_image(rgb, ab_small, saturation=1.0), base)
    gray = _lab(rc.recolor_image(rgb, ab_small, saturation=0.0))
    assert gray[1:].abs().max() < 1.0  # a = b = 0 up to 8-bit rounding
    strong = _lab(rc.recolor_image(rgb, ab_small, saturation=2.0))
    chroma = _lab(base)[1:].norm(dim=0).mean()
    assert abs(strong[1:].norm(dim=0).mean() / chroma - 2) < 0.1  # twice the colour


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="uint8"):
        rc.recolor(np.zeros((4, 4, 3), np.float32), rc.full_ab(np.zeros((2, 4, 4), np.float32)))
    with pytest.raises(ValueError, match="ab_small"):
        rc.recolor_image(np.zeros((4, 4, 3), np.uint8), np.zeros((3, 4, 4), np.float32))
