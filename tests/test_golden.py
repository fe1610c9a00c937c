"""Golden values: the shipped default's colours on scikit-image photos.

Each photo's own L (``gray_uint8``) is colorized by the shipped ``default`` model; the output's
mean a and b (CIE Lab) and its PSNR against the original photo were measured once (CPU) and
are written here; they were measured again, on purpose, when the default was retrained on all
7,111 training photos (the default before: astronaut 2.824 / 9.428 / 20.260, chelsea
5.204 / 20.196 / 26.900) and when it began to average working sizes 224 and 352 (before:
astronaut 2.608 / 7.873 / 20.114, chelsea 2.726 / 12.643 / 23.933). A change that moves the shipped colours (weights, gains,
working size, pre- or post-processing) fails this test; floating-point differences between
machines stay well inside the tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixcolor.color import gray_uint8, rgb_to_lab
from pixcolor.commands.demo import load_samples
from pixcolor.metrics import psnr
from pixcolor.pipeline import load_model

# photo -> (mean a, mean b, PSNR dB vs the photo); the gray input alone scores 17.80 dB on
# astronaut and 19.40 dB on chelsea.
GOLDEN = {
    "astronaut": (2.487, 7.736, 19.667),
    "chelsea": (2.700, 13.570, 24.370),
}
AB_TOLERANCE = 0.1  # Lab units
PSNR_TOLERANCE = 0.02  # dB


@pytest.fixture(scope="module")
def outputs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    model = load_model("default", device="cpu")
    samples = load_samples()
    return {
        name: (np.asarray(model.colorize(gray_uint8(samples[name]))), samples[name])
        for name in GOLDEN
    }


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_default_model_colours_on_skimage_photo(outputs, name):
    out, photo = outputs[name]
    mean_a, mean_b, db = GOLDEN[name]
    lab = rgb_to_lab(torch.from_numpy(np.array(out)).permute(2, 0, 1).double() / 255)
    assert lab[1].mean().item() == pytest.approx(mean_a, abs=AB_TOLERANCE)
    assert lab[2].mean().item() == pytest.approx(mean_b, abs=AB_TOLERANCE)
    assert psnr(out, photo).item() == pytest.approx(db, abs=PSNR_TOLERANCE)
