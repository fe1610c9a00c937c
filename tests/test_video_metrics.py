"""Temporal-consistency scores, cut detection and the temporal filter, on hand-made clips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("cv2")

from skimage import data

from pixcolor.color import gray_uint8, lab_to_rgb, rgb_to_lab
from pixcolor.video.consistency import (
    ClipScorer,
    ab_histograms,
    js_divergence,
    mean_chroma,
)
from pixcolor.video.synth import synthetic_clip
from pixcolor.video.temporal import TemporalFilter, TemporalOptions, is_cut

SIZE = (128, 80)  # (width, height) of the test clips


def pan(frames: int = 10, cut_at: int | None = None) -> list[np.ndarray]:
    return list(
        synthetic_clip([data.astronaut(), data.coffee()], frames, SIZE, "pan", cut_at=cut_at)
    )


def lab(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).double() / 255).numpy()


def with_ab_shift(rgb: np.ndarray, da: float, db: float) -> np.ndarray:
    """The frame with its a and b moved by (da, db): a colour-cast flicker."""
    t = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).double() / 255)
    t[1] += da
    t[2] += db
    return (lab_to_rgb(t) * 255).round().byte().permute(1, 2, 0).numpy()


def score(truth: list[np.ndarray], outputs: dict[str, list[np.ndarray]]):
    scorer = ClipScorer(list(outputs))
    for i, frame in enumerate(truth):
        scorer.add(frame, {n: o[i] for n, o in outputs.items()})
    return scorer, scorer.result()


def test_js_divergence_hand_values():
    p = np.array([0.5, 0.5, 0.0, 0.0])
    q = np.array([0.0, 0.0, 0.5, 0.5])
    assert js_divergence(p, p) == 0.0
    assert js_divergence(p, q) == pytest.approx(math.log(2))  # disjoint: the maximum
    r = np.array([0.5, 0.0, 0.5, 0.0])  # half the mass shared
    m = (p + r) / 2
    expected = 0.5 * sum(x * math.log(x / y) for x, y in zip(p, m, strict=True) if x) * 2
    assert js_divergence(p, r) == pytest.approx(expected)


def test_ab_histograms_and_chroma():
    ab = np.zeros((2, 4, 4))
    ab[0, :2] = 10.2  # half the pixels at a = 10
    h = ab_histograms(ab)
    assert h.shape == (2, 256) and np.allclose(h.sum(1), 1.0)
    assert h[0, 128] == 0.5 and h[0, 138] == 0.5 and h[1, 128] == 1.0
    assert mean_chroma(np.stack([np.full((2, 2), 3.0), np.full((2, 2), 4.0)])) == 5.0


def test_truth_scores_one_and_a_flickering_output_far_more():
    truth = pan()
    flicker = [with_ab_shift(f, 8.0 * (-1) ** i, -6.0 * (-1) ** i) for i, f in enumerate(truth)]
    gray = [gray_uint8(f) for f in truth]
    _, r = score(truth, {"same": truth, "flicker": flicker, "gray": gray})
    assert r["same"]["warp_ratio"] == pytest.approx(1.0)
    assert r["same"]["cdc"] == pytest.approx(r["truth"]["cdc"])
    assert r["truth"]["cdc"] < 0.02  # a pan over one photo: colours barely change
    assert r["flicker"]["warp_ratio"] > 3.0
    assert r["flicker"]["cdc"] > 5 * r["truth"]["cdc"]
    assert r["gray"]["ab"] < 1.0 and r["gray"]["warp_ratio"] < 0.2
    assert r["truth"]["ab"] == pytest.approx(r["same"]["ab"])
    assert r["same"]["psnr"] == 100.0  # identical: capped


def test_static_clip_has_zero_cdc():
    frame = pan(1)[0]
    _, r = score([frame] * 4, {"out": [frame] * 4})
    assert r["out"]["cdc"] == 0.0 and r["out"]["warp"] == 0.0


def test_cut_is_found_and_its_pairs_left_out():
    truth = pan(12, cut_at=7)
    cuts = [i for i in range(1, 12) if is_cut(lab(truth[i - 1])[0], lab(truth[i])[0])]
    assert cuts == [7]
    scorer, _ = score(truth, {"out": truth})
    assert scorer.cuts == 1
    sums = scorer._sums["out"]
    assert len(sums["warp"]) == 11 - 1  # 11 pairs, one across the cut
    assert len(sums["cdc2"]) == 10 - 2  # 10 pairs two apart, two span the cut


def small(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [lab(f[::2, ::2]).astype(np.float32) for f in frames]


def test_filter_steadies_a_flickering_prediction_without_washing_out():
    labs = small(pan(12))
    rng = np.random.default_rng(0)
    filt = TemporalFilter()
    raw_err, out_err, raw_jump, out_jump, prev_raw, prev_out = [], [], [], [], None, None
    chroma_raw, chroma_out = [], []
    for i, x in enumerate(labs):
        pred = x[1:] + rng.normal(0, 6, size=2)[:, None, None].astype(np.float32)  # cast flicker
        out = filt(x[0], pred)
        assert filt.last_cut == (i == 0)
        if i == 0:
            np.testing.assert_array_equal(out, pred)  # the first frame starts afresh
        else:
            raw_jump.append(np.abs(pred.mean((1, 2)) - prev_raw.mean((1, 2))).sum())
            out_jump.append(np.abs(out.mean((1, 2)) - prev_out.mean((1, 2))).sum())
            assert filt.last_trusted > 0.5
        raw_err.append(np.abs(pred - x[1:]).mean())
        out_err.append(np.abs(out - x[1:]).mean())
        chroma_raw.append(mean_chroma(pred))
        chroma_out.append(mean_chroma(out))
        prev_raw, prev_out = pred, out
    assert np.mean(out_jump) < 0.6 * np.mean(raw_jump)  # the untrusted borders keep theirs
    assert np.mean(out_err) < np.mean(raw_err)  # averaging along the motion helps
    assert np.mean(chroma_out) > 0.9 * np.mean(chroma_raw)


def test_filter_starts_afresh_at_a_cut():
    labs = small(pan(10, cut_at=6))
    filt = TemporalFilter(TemporalOptions(blend=0.9))
    for i, x in enumerate(labs):
        pred = x[1:] + 5.0
        out = filt(x[0], pred)
        assert filt.last_cut == (i in (0, 6))
        if i == 6:
            np.testing.assert_array_equal(out, pred)


def test_filter_checks_shapes_and_options():
    with pytest.raises(ValueError, match="blend"):
        TemporalOptions(blend=1.0)
    with pytest.raises(ValueError, match=r"\(2, h, w\)"):
        TemporalFilter()(np.zeros((4, 4), np.float32), np.zeros((3, 4, 4), np.float32))
