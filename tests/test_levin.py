"""Levin, Lischinski and Weiss 2004: propagation of hints by luminance-affine least squares."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab

from pixcolor.color import gray_uint8
from pixcolor.hints import Hint, HintError, render_hints
from pixcolor.levin import agreed_cast, levin_ab, levin_colorize, levin_shape, spread_residuals

# Two flat regions split by a luminance edge: a dark red left half and a light blue right half.
RED = (150, 40, 40)
BLUE = (110, 170, 230)


def two_regions(height: int, width: int) -> np.ndarray:
    img = np.empty((height, width, 3), np.uint8)
    img[:, : width // 2] = RED
    img[:, width // 2 :] = BLUE
    return img


def reference_ab(rgb: tuple[int, int, int]) -> np.ndarray:
    """a, b of one colour by scikit-image (independent of pixcolor.color)."""
    return rgb2lab(np.array([[rgb]], np.uint8))[0, 0, 1:]


def test_shape_scales_long_side_and_never_enlarges():
    assert levin_shape(512, 384) == (256, 192)
    assert levin_shape(300, 1200) == (64, 256)
    assert levin_shape(100, 50) == (100, 50)
    with pytest.raises(ValueError):
        levin_shape(0, 10)


@pytest.mark.parametrize("hw", [(40, 60), (200, 520)])  # solved at full size / at 256 px
def test_one_hint_per_region_colours_each_region(hw):
    height, width = hw
    truth = two_regions(height, width)
    hints = [Hint(width // 4, height // 3, RED), Hint(3 * width // 4, 2 * height // 3, BLUE)]
    out = levin_colorize(gray_uint8(truth), hints)
    assert out.shape == truth.shape and out.dtype == np.uint8
    lab = rgb2lab(out)
    margin = max(3, width // 20)  # the bicubic upsampling blurs a few pixels at the edge
    left, right = lab[:, : width // 2 - margin], lab[:, width // 2 + margin :]
    for region, colour in ((left, RED), (right, BLUE)):
        ab = region[..., 1:].reshape(-1, 2)
        assert np.abs(ab - reference_ab(colour)).max() < 1.5, colour
    # Same lightness as the input, so the region is the true colour again.
    np.testing.assert_allclose(out[:, :5].reshape(-1, 3).mean(0), RED, atol=2)
    np.testing.assert_allclose(out[:, -5:].reshape(-1, 3).mean(0), BLUE, atol=2)


def test_solve_meets_hints_exactly_and_stops_at_the_edge():
    h, w = 30, 40
    L = np.where(np.arange(w) < w // 2, 35.0, 75.0)[None].repeat(h, 0)
    hints = [Hint(5, 5, RED, radius=0), Hint(35, 25, BLUE, radius=0)]
    hint_map = render_hints(hints, (h, w), (h, w))
    ab = levin_ab(L, hint_map)
    assert ab.shape == (2, h, w) and ab.dtype == np.float32
    a_red, a_blue = hint_map[0, :2, 5, 5].numpy() * 110, hint_map[0, :2, 25, 35].numpy() * 110
    np.testing.assert_allclose(ab[:, 5, 5], a_red, atol=1e-4)  # hard constraints
    np.testing.assert_allclose(ab[:, 25, 35], a_blue, atol=1e-4)
    # Each flat region holds its own hint; across the edge leaks under 2 of the ~55 ab units
    # between the two colours (from one-pixel hints; 3x3 ones leak less).
    left, right = ab[:, :, : w // 2].reshape(2, -1).T, ab[:, :, w // 2 :].reshape(2, -1).T
    assert np.linalg.norm(a_red - a_blue) > 50
    np.testing.assert_allclose(left, np.broadcast_to(a_red, left.shape), atol=2)
    np.testing.assert_allclose(right, np.broadcast_to(a_blue, right.shape), atol=2)


def test_without_luminance_edge_colours_blend():
    h, w = 10, 41
    L = np.full((h, w), 50.0)
    hints = [Hint(0, 5, RED, radius=0), Hint(40, 5, BLUE, radius=0)]
    ab = levin_ab(L, render_hints(hints, (h, w), (h, w)))
    middle = ab[:, :, 20].mean(1)
    ends = (ab[:, :, 0].mean(1) + ab[:, :, 40].mean(1)) / 2
    np.testing.assert_allclose(middle, ends, atol=3)  # no edge: halfway between the two


def test_zero_hints_give_gray():
    truth = two_regions(40, 60)
    gray = gray_uint8(truth)
    for hints in (None, []):
        out = levin_colorize(gray, hints)
        assert np.abs(out.astype(int) - gray).max() <= 1
    assert not levin_ab(np.full((4, 5), 50.0), np.zeros((3, 4, 5))).any()


def test_colour_input_uses_only_its_luminance():
    truth = two_regions(40, 60)
    hints = [Hint(10, 10, RED), Hint(50, 30, BLUE)]
    from_colour = levin_colorize(truth, hints).astype(int)
    from_gray = levin_colorize(gray_uint8(truth), hints)  # L rounded to 8-bit gray
    assert np.abs(from_colour - from_gray).max() <= 1


def test_hint_outside_is_an_error_naming_the_source():
    with pytest.raises(HintError, match=r"photo\.json: point 2 \(60, 3\) is outside the 60x40"):
        levin_colorize(two_regions(40, 60), [(1, 1, RED), (60, 3, BLUE)], source="photo.json")


def test_mismatched_hint_map_is_refused():
    with pytest.raises(ValueError, match="hint map"):
        levin_ab(np.zeros((4, 5)), np.zeros((3, 5, 4)))


def test_one_pixel_image():
    out = levin_colorize(np.full((1, 1, 3), 120, np.uint8), [(0, 0, (200, 50, 50))])
    assert out.shape == (1, 1, 3) and out[0, 0, 0] > out[0, 0, 2]


def _two_hint_map(first: tuple[int, int, int], second: tuple[int, int, int]) -> np.ndarray:
    """Hints at the two ends of a flat 32x64 photo, none near its middle column."""
    hints = [Hint(4, 16, first, 0), Hint(59, 16, second, 0)]
    return render_hints(hints, (32, 64), (32, 64))[0].numpy()


def test_agreed_cast_moves_the_whole_photo_only_when_hints_agree():
    ab = np.zeros((2, 32, 64), np.float32)
    mask = np.zeros((32, 64), bool)
    mask[16, 4] = True
    correction = np.full((2, 32, 64), 30.0, np.float32)
    assert agreed_cast(correction, mask).tolist() == [0.0, 0.0]  # one hint: never global
    agree = _two_hint_map((200, 60, 50), (200, 60, 50))
    both = agree[2] > 0
    cast = agreed_cast(agree[:2] * 110 - ab, both)
    assert np.allclose(cast, agree[:2, 16, 4] * 110, atol=1e-4)  # both say the same: all of it
    opposed = _two_hint_map((200, 60, 50), (40, 160, 170))  # red and cyan cancel out
    assert np.abs(agreed_cast(opposed[:2] * 110 - ab, opposed[2] > 0)).max() == 0.0


def test_spread_residuals_carry_an_agreed_cast_beyond_the_fading():
    L = np.full((32, 64), 50.0)
    ab = np.zeros((2, 32, 64), np.float32)
    agree = _two_hint_map((200, 60, 50), (200, 60, 50))
    far = spread_residuals(ab, L, agree, reach=0.05)[:, 16, 32]  # fading alone leaves ~0 here
    assert np.allclose(far, agree[:2, 16, 4] * 110, atol=0.5)
    opposed = _two_hint_map((200, 60, 50), (40, 160, 170))
    assert np.abs(spread_residuals(ab, L, opposed, reach=0.05)[:, 16, 32]).max() < 0.5
