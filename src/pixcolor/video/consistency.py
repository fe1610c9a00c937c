"""Temporal-consistency scores of colorized clips against their true colours.

- **Warping-error ratio**: the output's ab at frame t+1 against its ab at frame t warped along
  the *true* clip's optical flow (DIS on the truth's L), over the pixels whose flow passes the
  forward-backward check (Lai et al. 2018, on ab); divided by the same error of the truth
  itself, so 1.0 is as steady as reality (flow errors and real changes count in both).
- **CDC** (colour distribution consistency, Liu et al. 2021): the Jensen-Shannon divergence
  between the histograms of frames t and t+1, and t and t+2, averaged; Liu et al. use the
  R, G and B channels, here the a and b channels (1 Lab unit per bin), which flicker shows in.
- **Mean |ab|** (mean chroma): a gray output never flickers, so this shows it does not win.

Frame pairs across a scene cut (:func:`pixcolor.video.temporal.is_cut` on the truth's L) are
left out. :class:`ClipScorer` streams: it keeps only the last two frames.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np
import torch

from pixcolor import metrics
from pixcolor.color import rgb_to_lab
from pixcolor.video.temporal import create_flow, is_cut, sample, to_gray8, trusted_flow

AB_RANGE = (-128.0, 128.0)  # histogram range of a and b (Lab units), one bin per unit
AB_BINS = 256


def lab_of(rgb: np.ndarray) -> np.ndarray:
    """Lab ``(3, H, W)`` float32 of an ``(H, W, 3)`` uint8 RGB image (:mod:`pixcolor.color`)."""
    t = torch.from_numpy(np.require(rgb, requirements=("C", "W"))).permute(2, 0, 1).float() / 255.0
    return rgb_to_lab(t).numpy()


def ab_histograms(ab: np.ndarray) -> np.ndarray:
    """Normalised histograms ``(2, AB_BINS)`` of a and b from ``ab (2, H, W)`` in Lab units."""
    return np.stack([np.histogram(c, bins=AB_BINS, range=AB_RANGE)[0] / max(1, c.size) for c in ab])


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (natural log, in [0, ln 2]) of two normalised histograms."""
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float((x[nz] * np.log(x[nz] / m[nz])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


def mean_chroma(ab: np.ndarray) -> float:
    """Mean |ab| = mean sqrt(a^2 + b^2) of ``ab (2, H, W)`` in Lab units."""
    return float(np.sqrt((ab.astype(np.float64) ** 2).sum(0)).mean())


def warp_error(ab0: np.ndarray, ab1: np.ndarray, coords: np.ndarray, mask: np.ndarray) -> float:
    """Mean ``|ab1 - ab0 warped by coords|`` (Lab units) over ``mask``.

    Args:
        ab0: frame t's ab ``(2, H, W)``.
        ab1: frame t+1's ab ``(2, H, W)``.
        coords: where each pixel of frame t+1 was in frame t, ``(H, W, 2)`` (x, y).
        mask: bool ``(H, W)``, the pixels to score.
    """
    if not mask.any():
        return math.nan
    warped = sample(np.ascontiguousarray(np.moveaxis(ab0, 0, -1), np.float32), coords)
    diff = np.moveaxis(ab1, 0, -1) - warped
    return float(np.sqrt((diff**2).sum(-1))[mask].mean())


class ClipScorer:
    """Scores of several outputs of one clip, fed frame by frame (see the module doc).

    Example:
        >>> scorer = ClipScorer(["per-frame", "consistent"])
        >>> for truth, outs in frames:  # (H, W, 3) uint8 each; outs maps name -> output
        ...     scorer.add(truth, outs)
        >>> scorer.result()["consistent"]["cdc"]
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._flow = create_flow()
        # the last two frames: (truth L, {name: ab}, {name: histograms})
        self._recent: deque = deque(maxlen=2)
        self._cut_before: deque = deque(maxlen=2)  # whether a cut came before each recent frame
        self._sums: dict[str, dict[str, list[float]]] = {
            n: {k: [] for k in ("psnr", "ssim", "ab", "warp", "cdc1", "cdc2")}
            for n in [*self.names, "truth"]
        }
        self.frames = 0
        self.cuts = 0

    def add(self, truth: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        """Score one frame: ``truth`` and each output ``(H, W, 3)`` uint8 RGB."""
        lab_t = lab_of(truth)
        abs_ = {"truth": lab_t[1:]}
        t = torch.from_numpy(np.require(truth, requirements=("C", "W"))).permute(2, 0, 1)[None]
        for name in self.names:
            out = outputs[name]
            if out.shape != truth.shape:
                raise ValueError(f"{name}: output {out.shape} differs from truth {truth.shape}")
            abs_[name] = lab_of(out)[1:]
            o = torch.from_numpy(np.require(out, requirements=("C", "W"))).permute(2, 0, 1)[None]
            self._sums[name]["psnr"].append(float(metrics.psnr(o, t)[0]))
            if min(truth.shape[:2]) >= 11:
                self._sums[name]["ssim"].append(float(metrics.ssim(o, t)[0]))
        hists = {n: ab_histograms(ab) for n, ab in abs_.items()}
        cut = bool(self._recent) and is_cut(self._recent[-1][0], lab_t[0])
        self.cuts += cut
        for n, ab in abs_.items():
            self._sums[n]["ab"].append(mean_chroma(ab))
        if self._recent and not cut:
            prev_l, prev_abs, prev_hists = self._recent[-1]
            coords, mask = trusted_flow(self._flow, to_gray8(prev_l), to_gray8(lab_t[0]))
            for n, ab in abs_.items():
                self._sums[n]["warp"].append(warp_error(prev_abs[n], ab, coords, mask))
                self._sums[n]["cdc1"].append(_hist_js(prev_hists[n], hists[n]))
            if len(self._recent) == 2 and not self._cut_before[-1]:
                for n in abs_:
                    self._sums[n]["cdc2"].append(_hist_js(self._recent[0][2][n], hists[n]))
        self._recent.append((lab_t[0], abs_, hists))
        self._cut_before.append(cut)
        self.frames += 1

    def result(self) -> dict[str, dict[str, float]]:
        """Per output (and ``truth``): psnr, ssim, mean |ab|, warp error, warp ratio, cdc."""
        out: dict[str, dict[str, float]] = {}
        truth_warp = _mean(self._sums["truth"]["warp"])
        for n, s in self._sums.items():
            warp = _mean(s["warp"])
            out[n] = {
                "psnr": _mean(s["psnr"]) if n != "truth" else math.nan,
                "ssim": _mean(s["ssim"]) if n != "truth" else math.nan,
                "ab": _mean(s["ab"]),
                "warp": warp,
                "warp_ratio": warp / truth_warp if truth_warp > 0 else math.nan,
                "cdc": (_mean(s["cdc1"]) + _mean(s["cdc2"])) / 2 if s["cdc2"] else math.nan,
            }
        return out


def _hist_js(h0: np.ndarray, h1: np.ndarray) -> float:
    """Mean JS divergence over the a and b histograms ``(2, bins)``."""
    return 0.5 * (js_divergence(h0[0], h1[0]) + js_divergence(h0[1], h1[1]))


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan
