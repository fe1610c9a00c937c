"""Tests for pixcolor.color, after kornia's tests/color/test_lab.py, with skimage as reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from pixcolor.color import (
    denormalize_ab,
    denormalize_l,
    float_to_uint8,
    lab_normalized_to_rgb,
    lab_to_rgb,
    normalize_ab,
    normalize_l,
    rgb_to_lab,
    rgb_to_lab_normalized,
    uint8_to_float,
)

# Colours that sit on the edges of the maths: black, white, primaries and secondaries, greys,
# the sRGB companding threshold 0.04045 (and just either side), and tiny values that land in
# the linear part of the Lab f function.
EDGE_COLOURS = [
    (0.0, 0.0, 0.0),
    (1.0, 1.0, 1.0),
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
    (0.0, 1.0, 1.0),
    (1.0, 0.0, 1.0),
    (1.0, 1.0, 0.0),
    (0.5, 0.5, 0.5),
    (0.04045, 0.04045, 0.04045),
    (0.04044, 0.04046, 0.04045),
    (1e-6, 1e-6, 1e-6),
    (1e-4, 0.0, 1e-3),
    (0.01, 0.02, 0.03),
    (0.999, 0.001, 0.5),
]

# skimage.color.rgb2lab (0.26, float64) of a few colours, written down so that the test pins the
# values even without skimage: (rgb, Lab).
SKIMAGE_REFERENCE = [
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 1.0, 1.0), (100.0, -0.0025, 0.0047)),
    ((1.0, 0.0, 0.0), (53.2406, 80.0923, 67.2028)),
    ((0.0, 1.0, 0.0), (87.7351, -86.1830, 83.1797)),
    ((0.0, 0.0, 1.0), (32.2957, 79.1856, -107.8573)),
    ((0.5, 0.5, 0.5), (53.3890, -0.0015, 0.0028)),
    ((0.04045, 0.2, 0.9), (34.2249, 56.7994, -90.2096)),
]


def as_image(colours: list[tuple[float, ...]], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A list of N colours as a (3, 1, N) image."""
    return torch.tensor(colours, dtype=dtype).T.unsqueeze(1)


def to_hwc(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) tensor -> (H, W, 3) float64 array, skimage's layout."""
    return t.permute(1, 2, 0).double().numpy()


def from_hwc(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(H, W, 3) array -> (3, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).to(dtype)


def test_smoke() -> None:
    rgb = torch.rand(1, 3, 4, 5)
    lab = rgb_to_lab(rgb)
    assert lab.shape == rgb.shape and lab.dtype == torch.float32
    assert lab[:, 0].min() >= 0 and lab[:, 0].max() <= 100
    back = lab_to_rgb(lab)
    assert back.shape == rgb.shape and back.dtype == torch.float32


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5), (2, 2, 3, 1, 6)])
def test_shapes(shape: tuple[int, ...]) -> None:
    rgb = torch.rand(shape)
    lead = shape[:-3]
    assert rgb_to_lab(rgb).shape == shape
    assert lab_to_rgb(rgb_to_lab(rgb)).shape == shape
    L_norm, ab_norm = rgb_to_lab_normalized(rgb)
    assert L_norm.shape == (*lead, 1, *shape[-2:])
    assert ab_norm.shape == (*lead, 2, *shape[-2:])
    assert lab_normalized_to_rgb(L_norm, ab_norm).shape == shape


def test_empty_batch() -> None:
    assert rgb_to_lab(torch.rand(0, 3, 4, 4)).shape == (0, 3, 4, 4)


@pytest.mark.parametrize("fn", [rgb_to_lab, lab_to_rgb])
def test_type_errors(fn) -> None:
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        fn(np.zeros((3, 2, 2)))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        fn([[[0.0]]] * 3)
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.zeros(3, 2, 2, dtype=torch.uint8))


@pytest.mark.parametrize("shape", [(4, 2, 2), (1, 2, 2), (2, 4, 3, 3), (3, 3), (3,), ()])
@pytest.mark.parametrize("fn", [rgb_to_lab, lab_to_rgb, rgb_to_lab_normalized])
def test_value_errors(fn, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
        fn(torch.zeros(shape))


def test_normalized_to_rgb_errors() -> None:
    with pytest.raises(ValueError, match="L_norm"):
        lab_normalized_to_rgb(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="ab_norm"):
        lab_normalized_to_rgb(torch.zeros(1, 1, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="must agree"):
        lab_normalized_to_rgb(torch.zeros(2, 1, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="must agree"):
        lab_normalized_to_rgb(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage(rng: np.random.Generator, dtype: torch.dtype) -> None:
    random = rng.random((16, 16, 3))
    edges = np.array(EDGE_COLOURS)[None]  # (1, N, 3)
    for rgb in (random, edges):
        expected = skcolor.rgb2lab(rgb)
        got = to_hwc(rgb_to_lab(from_hwc(rgb, dtype)))
        np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lab_to_rgb_matches_skimage(rng: np.random.Generator, dtype: torch.dtype) -> None:
    # Lab well beyond the sRGB gamut too: exercises the clip and skimage's negative-z clip.
    lab = np.stack(
        [
            rng.uniform(0, 100, (16, 16)),
            rng.uniform(-110, 110, (16, 16)),
            rng.uniform(-110, 110, (16, 16)),
        ],
        axis=-1,
    )
    edges = skcolor.rgb2lab(np.array(EDGE_COLOURS)[None])
    for sample in (lab, edges):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skimage warns about the negative z it clips
            expected = skcolor.lab2rgb(sample)
        got = to_hwc(lab_to_rgb(from_hwc(sample, dtype)))
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_written_reference_values() -> None:
    rgb = as_image([c for c, _ in SKIMAGE_REFERENCE], torch.float32)
    expected = as_image([lab for _, lab in SKIMAGE_REFERENCE], torch.float32)
    torch.testing.assert_close(rgb_to_lab(rgb), expected, atol=1e-3, rtol=0)
    torch.testing.assert_close(lab_to_rgb(expected), rgb, atol=1e-4, rtol=0)


def test_round_trip(rng: np.random.Generator) -> None:
    rgb = torch.cat(
        [
            torch.from_numpy(rng.random((3, 8, 32))).float(),
            as_image(EDGE_COLOURS, torch.float32).expand(3, 8, -1),
        ],
        dim=-1,
    )
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4, rtol=0)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb), clip=False), rgb, atol=1e-4, rtol=0)


def test_clip() -> None:
    out_of_gamut = torch.tensor([50.0, 120.0, -120.0]).view(3, 1, 1)
    raw = lab_to_rgb(out_of_gamut, clip=False)
    assert raw.min() < 0 or raw.max() > 1
    clipped = lab_to_rgb(out_of_gamut)
    assert clipped.min() >= 0 and clipped.max() <= 1
    torch.testing.assert_close(clipped, raw.clamp(0, 1))


def test_gradcheck_rgb_to_lab() -> None:
    # Away from the kinks: rgb >= 0.1 is above 0.04045 and keeps X, Y, Z/white above 0.008856.
    rgb = (0.1 + 0.8 * torch.rand(1, 3, 2, 3, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (rgb,), raise_exception=True)


def test_gradcheck_lab_to_rgb() -> None:
    lab = rgb_to_lab(0.2 + 0.6 * torch.rand(1, 3, 2, 3, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: lab_to_rgb(x, clip=False), (lab,), raise_exception=True
    )


def test_gradients_finite_at_kinks() -> None:
    rgb = as_image(EDGE_COLOURS, torch.float32).requires_grad_()
    rgb_to_lab(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
    lab = torch.tensor([[0.0, 0.0, 0.0], [50.0, 120.0, -120.0], [100.0, 0.0, 0.0]]).T.unsqueeze(1)
    lab.requires_grad_()
    lab_to_rgb(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_normalisation_constants_and_round_trips() -> None:
    L = torch.tensor([0.0, 50.0, 100.0])
    torch.testing.assert_close(normalize_l(L), torch.tensor([-1.0, 0.0, 1.0]))
    ab = torch.tensor([-110.0, 0.0, 55.0])
    torch.testing.assert_close(normalize_ab(ab), torch.tensor([-1.0, 0.0, 0.5]))
    x = torch.randn(100)
    torch.testing.assert_close(denormalize_l(normalize_l(x)), x)
    torch.testing.assert_close(denormalize_ab(normalize_ab(x)), x)


def test_normalized_pair_matches_lab_and_round_trips() -> None:
    rgb = torch.rand(2, 3, 8, 8)
    L_norm, ab_norm = rgb_to_lab_normalized(rgb)
    lab = rgb_to_lab(rgb)
    torch.testing.assert_close(L_norm, lab[:, :1] / 50 - 1)
    torch.testing.assert_close(ab_norm, lab[:, 1:] / 110)
    assert L_norm.min() >= -1 and L_norm.max() <= 1 and ab_norm.abs().max() <= 1
    torch.testing.assert_close(lab_normalized_to_rgb(L_norm, ab_norm), rgb, atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dtypes(dtype: torch.dtype) -> None:
    rgb = torch.rand(1, 3, 4, 4)
    lab = rgb_to_lab(rgb.to(dtype))
    assert lab.dtype == dtype
    torch.testing.assert_close(lab.float(), rgb_to_lab(rgb), atol=1.0, rtol=0.02)
    assert lab_to_rgb(lab).dtype == dtype
    L_norm, ab_norm = rgb_to_lab_normalized(rgb.to(dtype))
    assert L_norm.dtype == ab_norm.dtype == dtype
    back = lab_normalized_to_rgb(L_norm, ab_norm)
    assert back.dtype == dtype
    torch.testing.assert_close(back.float(), rgb, atol=0.05, rtol=0)
    mixed = lab_normalized_to_rgb(L_norm.float(), ab_norm)
    assert mixed.dtype == torch.float32


def test_uint8_helpers() -> None:
    every = torch.arange(256, dtype=torch.uint8).view(1, 1, 256).expand(3, 1, 256)
    as_float = uint8_to_float(every)
    assert as_float.dtype == torch.float32 and as_float.min() == 0 and as_float.max() == 1
    assert torch.equal(float_to_uint8(as_float), every)
    assert torch.equal(float_to_uint8(as_float.half()), every)
    assert uint8_to_float(every, torch.float64).dtype == torch.float64
    odd = torch.tensor([-0.5, 1.5, 0.4 / 255, 0.6 / 255, float("nan")])
    assert float_to_uint8(odd).tolist() == [0, 255, 0, 1, 0]
    with pytest.raises(TypeError, match="uint8"):
        uint8_to_float(as_float)
    with pytest.raises(TypeError, match="floating-point"):
        float_to_uint8(every)


def test_recolor_uint8_matches_lab_round_trip_and_keeps_luminance():
    from pixcolor.recolor import recolor_uint8

    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (3, 60, 70), dtype=torch.uint8, generator=g)
    ab = (torch.rand(2, 60, 70, generator=g) - 0.5) * 160  # many out-of-gamut colours
    out = recolor_uint8(rgb, ab)
    lab = rgb_to_lab(rgb.double() / 255)
    ref = lab_to_rgb(torch.cat([lab[:1], ab.double()]), clip=False)
    in_gamut = ((ref >= 0) & (ref <= 1)).all(0)
    assert 0.1 < in_gamut.double().mean() < 0.9
    ref8 = (ref.clamp(0, 1) * 255).round()
    assert (out.double() - ref8).abs()[:, in_gamut].max() <= 1  # ties of the 8-bit rounding
    out_L = rgb_to_lab(out.double() / 255)[0]
    assert (out_L - lab[0]).abs().max() < 0.6  # L kept everywhere, to 8-bit rounding
    gray = recolor_uint8(rgb, torch.zeros(2, 60, 70))
    assert (gray.double().std(0)).max() <= 1.0  # ab = 0 gives gray


def test_recolor_uint8_rejects_bad_shapes():
    from pixcolor.recolor import recolor_uint8

    with pytest.raises(ValueError, match="uint8"):
        recolor_uint8(torch.zeros(3, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="ab must be"):
        recolor_uint8(torch.zeros(3, 4, 4, dtype=torch.uint8), torch.zeros(2, 4, 5))
