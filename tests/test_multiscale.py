"""Several working sizes averaged (``extra_sizes`` in a model's config.json)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixcolor.checkpoint import save_model
from pixcolor.errors import ConfigError
from pixcolor.models import create_generator
from pixcolor.multiscale import average_sizes, extra_sizes
from pixcolor.pipeline import load_model
from pixcolor.video.frames import colorize_frames

KWARGS = {"base_channels": 8, "num_downs": 5}


def _model_dir(tmp_path, extra):
    torch.manual_seed(0)
    g = create_generator("unet", **KWARGS)
    return save_model(g, tmp_path / "m", "unet", KWARGS, extra={"size": 64, **extra})


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    gray = np.clip(x * 200 / w + y * 40 / h + rng.normal(0, 20, (h, w)), 0, 255)
    return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.parametrize(
    "value, problem",
    [
        (352, "must be a list"),
        ([352, 384, 416, 448, 480], "must be a list of at most 4"),
        ([True], "must be a whole number"),
        ([352.0], "must be a whole number"),
        ([16], r"must be in \[32, 2048\]"),
        ([4096], r"must be in \[32, 2048\]"),
    ],
)
def test_bad_extra_sizes_are_one_clear_error(tmp_path, value, problem):
    with pytest.raises(ConfigError, match=rf"^model config: extra_sizes {problem}"):
        extra_sizes({"extra_sizes": value})
    folder = _model_dir(tmp_path, {"extra_sizes": value})
    with pytest.raises(ConfigError, match="extra_sizes"):
        load_model(folder, device="cpu")


def test_no_extra_sizes_keeps_the_prediction(tmp_path):
    assert extra_sizes({"size": 224}) == ()
    m = load_model(_model_dir(tmp_path, {}), device="cpu")
    ab = torch.randn(2, 64, 96)
    (out,) = average_sizes(m, [_photo(50, 70)], [ab])
    assert torch.equal(out, ab)


def test_colours_are_the_mean_of_the_sizes_predictions(tmp_path):
    m = load_model(_model_dir(tmp_path, {"extra_sizes": [96, 128]}), device="cpu")
    rgb = _photo(50, 70)
    ab = m.predict_ab(m.working_l(rgb, 64))  # (1, 2, 64, 96)
    for size in (96, 128):
        more = m.predict_ab(m.working_l(rgb, size))
        assert more.shape[-2:] != ab.shape[-2:]  # a look at another size, resampled to 64's
        ab = ab + F.interpolate(more, size=ab.shape[-2:], mode="bilinear", align_corners=False)
    expected = m.compose(rgb, ab[0] / 3)
    assert np.array_equal(np.asarray(m.colorize(rgb)), expected)
    single = np.asarray(m.colorize(rgb, size=64))  # a size given: one look at it
    assert np.array_equal(single, m.compose(rgb, m.predict_ab(m.working_l(rgb, 64))[0]))
    assert np.abs(single.astype(int) - expected).max() > 2


def test_average_sizes_batches_photos_of_any_shape(tmp_path):
    m = load_model(_model_dir(tmp_path, {"extra_sizes": [96]}), device="cpu")
    photos = [_photo(50, 70, 0), _photo(70, 50, 1), _photo(50, 70, 2), _photo(33, 90, 3)]
    batch = m.colorize_batch(photos)
    for rgb, out in zip(photos, batch, strict=True):
        assert np.abs(np.asarray(m.colorize(rgb)).astype(int) - np.asarray(out)).max() <= 1
    with pytest.raises(ValueError, match="2 photos for 1 predictions"):
        average_sizes(m, photos[:2], [torch.zeros(2, 64, 96)])


def test_video_frames_average_the_sizes_as_photos_do(tmp_path):
    m = load_model(_model_dir(tmp_path, {"extra_sizes": [96]}), device="cpu")
    frames = [_photo(48, 80, s) for s in range(3)]
    for frame, out in zip(frames, colorize_frames(m, frames, consistent=False), strict=True):
        assert np.array_equal(out, np.asarray(m.colorize(frame)))
