"""Score colorizers against the gray baseline on colour photos, at full resolution.

Each photo's grayscale input is made from its own L channel (ab = 0); that gray image is also
the baseline. Models colorize it through the same pipeline as ``pixcolor colorize``, and every
output is scored against the original with :mod:`pixcolor.metrics`. With a
:class:`pixcolor.evaluate_hints.HintPlan`, models and Levin et al. 2004 also run with simulated
colour hints (:mod:`pixcolor.evaluate_hints`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from pixcolor import metrics
from pixcolor.color import gray_uint8, rgb_to_lab
from pixcolor.errors import ImageReadError, PixcolorError
from pixcolor.files import InputFile
from pixcolor.imageio import read_image
from pixcolor.pipeline import Colorizer

if TYPE_CHECKING:
    from pixcolor.evaluate_hints import HintPlan

BASELINE = "gray baseline"
TRUTH = "truth"
METRIC_KEYS = ("psnr", "ssim", "colourfulness", "spread", "ab_l1")
THUMB_HEIGHT = 200  # pixels; thumbnails kept for the report


@dataclass
class ImageScores:
    """Scores of one photo: method name -> metric name -> value."""

    path: str  # the photo
    group: str  # its sub-folder ("." for top level)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)


def thumbnail(rgb: np.ndarray, height: int = THUMB_HEIGHT) -> np.ndarray:
    """A bicubic thumbnail ``(height, W', 3)`` uint8 with the aspect ratio kept."""
    img = Image.fromarray(rgb)
    width = max(1, round(img.width * height / img.height))
    return np.asarray(img.resize((width, height), Image.BICUBIC))


def score(output: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """All metrics of one output ``(H, W, 3)`` uint8 against its truth."""
    o, t = (  # np.require: torch wants writable memory (arrays from PIL are read-only)
        torch.from_numpy(np.require(output, requirements="W")).permute(2, 0, 1)[None],
        torch.from_numpy(np.require(truth, requirements="W")).permute(2, 0, 1)[None],
    )
    ab_o = rgb_to_lab(o.double() / 255)[:, 1:]
    ab_t = rgb_to_lab(t.double() / 255)[:, 1:]
    has_ssim = min(output.shape[:2]) >= 11
    return {
        "psnr": float(metrics.psnr(o, t)[0]),
        "ssim": float(metrics.ssim(o, t)[0]) if has_ssim else math.nan,
        "colourfulness": float(metrics.colourfulness(o)[0]),
        "spread": float(metrics.colour_spread(o)[0]),
        "ab_l1": float(metrics.ab_l1(ab_o, ab_t)[0]),
    }


def evaluate(
    files: Sequence[InputFile],
    models: dict[str, Colorizer],
    *,
    size: int | None = None,
    keep_images: bool = True,
    hints: HintPlan | None = None,
) -> tuple[list[ImageScores], dict[str, dict[str, np.ndarray]], list[tuple[str, str]]]:
    """Score every model and the gray baseline on every photo.

    With ``hints``, every model (and Levin et al.'s propagation) runs once per hint count of
    the plan, under the names of :func:`pixcolor.evaluate_hints.method_name`.

    Returns:
        (per-image scores, images kept for the report {path: {method: array}}, failures).
    """
    results, kept, failures = [], {}, []
    for item in tqdm(files, desc="evaluate", unit="img", disable=None):
        try:
            truth = np.asarray(read_image(item.path))
        except ImageReadError as exc:
            failures.append((str(item.path), exc.reason))
            continue
        gray = gray_uint8(truth)
        group = str(item.relative.parent)
        entry = ImageScores(str(item.path), group)
        outputs = {BASELINE: gray}
        if hints is None:
            for name, model in models.items():
                outputs[name] = np.asarray(model.colorize(gray, size=size))
            shots = {"input": gray, **{n: outputs[n] for n in models}}
        else:
            from pixcolor.evaluate_hints import hinted_outputs

            hinted, shots = hinted_outputs(gray, truth, models, hints, size=size)
            outputs.update(hinted)
        for name, out in outputs.items():
            entry.scores[name] = score(out, truth)
        entry.scores[TRUTH] = {
            k: v for k, v in score(truth, truth).items() if k in ("colourfulness", "spread")
        }
        results.append(entry)
        if keep_images:  # thumbnails only, so memory stays small on big sets
            shots["truth"] = truth
            kept[entry.path] = {k: thumbnail(v) for k, v in shots.items()}
    if not results:
        raise PixcolorError("no image could be evaluated")
    return results, kept, failures


def summarize(results: Sequence[ImageScores]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean of each metric per group and overall: group -> method -> metric -> mean.

    Also adds ``dCF`` = |mean CF(method) - mean CF(truth)| and ``spread_ratio`` = mean spread of
    the method over that of the truths.
    """
    groups: dict[str, list[ImageScores]] = {"all": list(results)}
    for r in results:
        groups.setdefault(r.group, []).append(r)
    if len(groups) == 2:  # one sub-folder only: "all" says it
        groups = {"all": groups["all"]}
    table = {}
    for group, rows in groups.items():
        methods = list(rows[0].scores)
        means: dict[str, dict[str, float]] = {}
        for m in methods:
            keys = rows[0].scores[m].keys()
            means[m] = {k: float(np.nanmean([r.scores[m][k] for r in rows])) for k in keys}
            means[m]["n"] = len(rows)
        truth = means[TRUTH]
        for m in methods:
            if m == TRUTH:
                continue
            means[m]["dCF"] = abs(means[m]["colourfulness"] - truth["colourfulness"])
            means[m]["spread_ratio"] = means[m]["spread"] / max(truth["spread"], 1e-9)
        table[group] = means
    return table


def format_table(table: dict[str, dict[str, dict[str, float]]]) -> str:
    """Plain-text tables, one per group."""
    cols = ("psnr", "ssim", "colourfulness", "spread", "spread_ratio", "dCF", "ab_l1")
    heads = ("PSNR dB", "SSIM", "CF", "spread", "spread/truth", "dCF", "ab L1")
    lines = []
    for group, means in table.items():
        n = int(next(iter(means.values()))["n"])
        lines.append(f"[{group}] {n} images")
        width = max(16, *(len(m) for m in means))
        lines.append(f"{'method':<{width}} " + " ".join(f"{h:>12}" for h in heads))
        for method, row in means.items():
            cells = [
                f"{row[c]:12.4f}"
                if c == "ssim" and c in row
                else f"{row[c]:12.2f}"
                if c in row
                else f"{'-':>12}"
                for c in cols
            ]
            lines.append(f"{method:<{width}} " + " ".join(cells))
        lines.append("")
    return "\n".join(lines)


def default_output_dir(path: str | Path) -> Path:
    """``reports/<name>`` for a data folder."""
    return Path("reports") / Path(path).name
