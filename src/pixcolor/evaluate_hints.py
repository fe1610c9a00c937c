"""Evaluation with simulated colour hints: the model and Levin et al. 2004 at N hints per photo.

For each photo, ``max(N)`` hints are drawn from the truth with
:func:`pixcolor.hints.simulate_hints` (uniform points with the square inside the photo, colour =
the truth's mean over the square); the run at N uses the first N of them, so the hint sets
of one photo are nested and a curve over N is not blurred by new draws. The gray photo is
colorized by every model with those hints (N = 0: the model on its own) and by the classical
propagation of :mod:`pixcolor.levin`, and each output is scored like any other method of
:mod:`pixcolor.evaluate`, under the name ``"<method>, <N> hints"``.

:func:`hint_curve` collects the mean PSNR, SSIM and colour spread per N for every method and
the gray baseline; ``pixcolor evaluate --hints`` prints it (:func:`format_curve`), stores it in
``metrics.json`` and ``hints.csv`` (:func:`write_curve_csv`) and plots it in ``report.html``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixcolor.atomic import atomic_write_bytes
from pixcolor.evaluate import BASELINE
from pixcolor.hints import DEFAULT_RADIUS, Hint, simulate_hints
from pixcolor.levin import levin_colorize
from pixcolor.pipeline import Colorizer

__all__ = [
    "CURVE_METRICS",
    "DEFAULT_COUNTS",
    "LEVIN",
    "HintPlan",
    "format_curve",
    "hint_curve",
    "hinted_outputs",
    "mark_hints",
    "method_name",
    "shown_count",
    "shown_methods",
    "write_curve_csv",
]

LEVIN = "Levin et al."
DEFAULT_COUNTS = (0, 1, 2, 5, 10, 20, 50)  # the list: at least these
CURVE_METRICS = ("psnr", "ssim", "spread")
SHOWN_MAX = 10  # the report's pictures use the most hints up to this (the target N)


@dataclass(frozen=True)
class HintPlan:
    """Which simulated hints to evaluate with."""

    counts: tuple[int, ...] = DEFAULT_COUNTS  # numbers of hints per photo, ascending, >= 0
    seed: int = 0  # seeds simulate_hints (with each photo's size)
    radius: int = DEFAULT_RADIUS  # half-side of each hint's square, input pixels

    def __post_init__(self) -> None:
        counts = tuple(self.counts)
        if not counts or any(c < 0 for c in counts) or list(counts) != sorted(set(counts)):
            raise ValueError(f"hint counts must be distinct, ascending and >= 0, got {counts}")


def method_name(method: str, count: int) -> str:
    """The scores' name of ``method`` run with ``count`` hints, e.g. ``"pixcolor, 5 hints"``."""
    return f"{method}, {count} hint{'' if count == 1 else 's'}"


def hinted_outputs(
    gray: np.ndarray,
    truth: np.ndarray,
    models: Mapping[str, Colorizer],
    plan: HintPlan,
    *,
    size: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Colorize ``gray`` with the first N simulated hints, for every N, model and Levin.

    Args:
        gray: ``(H, W, 3)`` uint8, the photo's own L as gray (the input).
        truth: ``(H, W, 3)`` uint8, the photo (the hints' colours come from it).
        models: name -> colorizer; each must take hints when ``max(plan.counts) > 0``.
        plan: the hint counts, seed and radius.
        size: the models' working size (default: each model's own).

    Returns:
        (method name -> ``(H, W, 3)`` uint8 output, ordered by N then method;
        the pictures for the report: the input with the hints shown and
        :func:`shown_methods`' outputs).
    """
    drawn = simulate_hints(truth, max(plan.counts), plan.seed, plan.radius)
    outputs: dict[str, np.ndarray] = {}
    for count in plan.counts:
        hints = drawn[:count]
        for name, model in models.items():
            out = model.colorize(gray, size=size, hints=hints or None)
            outputs[method_name(name, count)] = np.asarray(out)
        outputs[method_name(LEVIN, count)] = levin_colorize(gray, hints)
    k = shown_count(plan)
    shots = {f"input, {k} hints": mark_hints(gray, drawn[:k])}
    shots.update({m: outputs[m] for m in shown_methods(list(models), plan)})
    return outputs, shots


def mark_hints(rgb: np.ndarray, hints: Sequence[Hint]) -> np.ndarray:
    """A copy of ``rgb (H, W, 3) uint8`` with each hint drawn as a square of its colour.

    Squares are at least 1/50 of the short side, so they stay visible in a thumbnail, and
    have a black outline.
    """
    out = rgb.copy()
    height, width = rgb.shape[:2]
    for h in hints:
        r = max(h.radius, min(height, width) // 100)
        x, y = int(h.x), int(h.y)
        y0, y1, x0, x1 = max(0, y - r), min(height, y + r + 1), max(0, x - r), min(width, x + r + 1)
        out[max(0, y0 - 1) : y1 + 1, max(0, x0 - 1) : x1 + 1] = 0
        out[y0:y1, x0:x1] = h.rgb
    return out


def shown_count(plan: HintPlan) -> int:
    """The N whose outputs the report shows: the largest up to 10 (the issue's target N)."""
    return max((n for n in plan.counts if n <= SHOWN_MAX), default=plan.counts[0])


def shown_methods(models: Sequence[str], plan: HintPlan) -> list[str]:
    """Methods whose outputs the report shows: each model with the fewest hints and with
    :func:`shown_count` hints, and Levin et al. with as many."""
    k, first = shown_count(plan), plan.counts[0]
    names = [method_name(m, n) for m in models for n in dict.fromkeys((first, k))]
    return [*names, method_name(LEVIN, k)]


def hint_curve(
    means: Mapping[str, Mapping[str, float]], models: Sequence[str], plan: HintPlan
) -> dict[str, Any]:
    """Mean PSNR, SSIM and spread against N, per method, from one group of a summary table.

    Args:
        means: method name -> metric -> mean (one group of :func:`pixcolor.evaluate.summarize`).
        models: the model names (Levin and the gray baseline are added).
        plan: the plan the scores were made with.

    Returns:
        ``{"counts": [N...], "seed": S, "radius": R, "images": n,
        "methods": {method: {"psnr": [...], "ssim": [...], "spread": [...]}}}``, one value per
        N; the gray baseline's values repeat (it takes no hints).
    """
    methods: dict[str, dict[str, list[float]]] = {}
    for method in [*models, LEVIN]:
        rows = [means[method_name(method, n)] for n in plan.counts]
        methods[method] = {k: [float(r[k]) for r in rows] for k in CURVE_METRICS}
    gray = means[BASELINE]
    methods[BASELINE] = {k: [float(gray[k])] * len(plan.counts) for k in CURVE_METRICS}
    return {
        "counts": list(plan.counts),
        "seed": plan.seed,
        "radius": plan.radius,
        "images": int(gray.get("n", 0)),
        "methods": methods,
    }


def format_curve(curve: Mapping[str, Any]) -> str:
    """The curve as a plain-text table: one row per N, PSNR / SSIM / spread per method."""
    methods = list(curve["methods"])
    widths = [max(23, len(m)) for m in methods]
    lines = [
        f"PSNR dB, SSIM and colour spread against simulated hints per photo "
        f"({curve['images']} images, seed {curve['seed']}, radius {curve['radius']})",
        f"{'hints':>5}" + "".join(f"  {m:>{w}}" for m, w in zip(methods, widths, strict=True)),
        f"{'':>5}" + "".join(f"  {'PSNR':>{w - 16}} {'SSIM':>7} {'spread':>7}" for w in widths),
    ]
    for i, n in enumerate(curve["counts"]):
        cells = []
        for m, w in zip(methods, widths, strict=True):
            v = curve["methods"][m]
            cells.append(f"  {v['psnr'][i]:>{w - 16}.2f} {v['ssim'][i]:7.4f} {v['spread'][i]:7.2f}")
        lines.append(f"{n:>5}" + "".join(cells))
    return "\n".join(lines) + "\n"


def write_curve_csv(path: Path, curve: Mapping[str, Any]) -> Path:
    """The curve as CSV, one row per (N, method): ``hints,method,psnr,ssim,spread,images``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["hints", "method", *CURVE_METRICS, "images"])
    for i, n in enumerate(curve["counts"]):
        for method, values in curve["methods"].items():
            cells = [f"{values[k][i]:.4f}" for k in CURVE_METRICS]
            writer.writerow([n, method, *cells, curve["images"]])
    atomic_write_bytes(path, buf.getvalue().encode())
    return path
