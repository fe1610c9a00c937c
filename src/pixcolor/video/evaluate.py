"""``pixcolor evaluate-video``: score the per-frame and the consistent video paths on true clips.

Each clip is a folder of colour frames. Both paths colorize the clip's own lightness from one
model prediction per frame (so they differ only by the temporal filter) and are scored with
:class:`~pixcolor.video.consistency.ClipScorer` beside the gray baseline (ab = 0) and the truth.
With ``hints=N``, a ``hinted`` row adds the consistent path with N hints simulated on each
clip's first frame from its truth (:func:`pixcolor.hints.simulate_hints`) and carried along
the motion (:mod:`pixcolor.video.hints`), so it can be set against the unhinted ``consistent``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pixcolor.color import gray_uint8
from pixcolor.errors import PixcolorError
from pixcolor.files import is_image_name
from pixcolor.hints import simulate_hints
from pixcolor.pipeline import Colorizer
from pixcolor.video.consistency import ClipScorer
from pixcolor.video.frames import predictions
from pixcolor.video.hints import HintTracker, VideoHints, predict_with_hints
from pixcolor.video.io import list_frames, read_frames
from pixcolor.video.temporal import MotionEstimator, TemporalFilter, TemporalOptions

METHODS = ("gray", "per-frame", "consistent")
HINTED = "hinted"  # the consistent path with simulated hints (``hints=N``)
ROWS = (*METHODS, "truth")  # rows of each clip's table (with hints, HINTED before truth)
OVERALL = "overall"
# (key, column title, format) of the table
COLUMNS = (
    ("psnr", "PSNR", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("warp_ratio", "warp ratio", "{:.3f}"),
    ("cdc", "CDC", "{:.5f}"),
    ("ab", "mean |ab|", "{:.2f}"),
)

Scores = dict[str, dict[str, float]]  # row -> metric -> value


def list_clips(root: str | Path) -> list[Path]:
    """The clip folders under ``root``: its sub-folders that hold images, or ``root`` itself.

    Raises:
        PixcolorError: ``root`` is not a folder, or holds no frames at all.
    """
    root = Path(root)
    if not root.is_dir():
        raise PixcolorError(f"{root}: not a folder of clips")
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    clips = [p for p in subs if any(is_image_name(f.name) for f in p.iterdir())]
    if clips:
        return clips
    if any(is_image_name(f.name) for f in root.iterdir()):
        return [root]
    raise PixcolorError(f"{root}: no clips (sub-folders of frames) found")


def evaluate_clip(
    model: Colorizer,
    folder: Path,
    *,
    size: int | None = None,
    temporal: TemporalOptions | None = None,
    progress: tqdm | None = None,
    hints: int = 0,
    hints_seed: int = 0,
) -> tuple[Scores, int, int]:
    """Scores of one clip folder.

    Args:
        hints: simulate this many hints on the first frame (0: no ``hinted`` row).
        hints_seed: seeds their draw (:func:`pixcolor.hints.simulate_hints`).

    Returns:
        The scores of each row of :data:`ROWS` (and ``hinted``), the frame count and the
        number of scene cuts found in the truth.
    """
    scorer = ClipScorer((*METHODS, HINTED) if hints else METHODS)
    motion_of = MotionEstimator(temporal)  # one flow per frame for both filters and the hints
    filt, filt_hinted = TemporalFilter(temporal), TemporalFilter(temporal)
    tracker: HintTracker | None = None
    for rgb, L, ab in predictions(model, read_frames(list_frames(folder)), size=size):
        motion = motion_of(L)
        consistent = torch.from_numpy(filt(L, ab.numpy(), motion))
        outputs = {
            "gray": gray_uint8(rgb),
            "per-frame": model.compose(rgb, ab),
            "consistent": model.compose(rgb, consistent),
        }
        if hints:
            if tracker is None:
                first = tuple(simulate_hints(rgb, hints, hints_seed))
                tracker = HintTracker(VideoHints({0: first}, f"{folder} (simulated hints)"))
            points = tracker(motion, rgb.shape[:2])
            hinted = ab  # no points: the per-frame colours
            if points:
                light = torch.from_numpy(L)[None, None]
                hinted = predict_with_hints(model, light, points, rgb.shape[:2])
            if tracker.last_keyframe:
                filt_hinted.reset()
            hinted = torch.from_numpy(filt_hinted(L, hinted.numpy(), motion))
            outputs[HINTED] = model.compose(rgb, hinted)
        scorer.add(rgb, outputs)
        if progress is not None:
            progress.update()
    return scorer.result(), scorer.frames, scorer.cuts


def evaluate_video(
    model: Colorizer,
    root: str | Path,
    *,
    size: int | None = None,
    temporal: TemporalOptions | None = None,
    hints: int = 0,
    hints_seed: int = 0,
) -> dict[str, dict]:
    """Score every clip under ``root`` (see :func:`list_clips`); ``hints``, ``hints_seed``
    as for :func:`evaluate_clip`.

    Returns:
        ``{clip name: {"frames": n, "cuts": k, "scores": Scores}}`` plus :data:`OVERALL`, whose
        scores are the means over the clips (each clip weighs the same).
    """
    clips = list_clips(root)
    total = sum(len(list_frames(c)) for c in clips)
    results: dict[str, dict] = {}
    with tqdm(total=total, unit="frame", desc="evaluate-video", disable=None) as bar:
        for clip in clips:
            scores, frames, cuts = evaluate_clip(
                model, clip, size=size, temporal=temporal, progress=bar, hints=hints,
                hints_seed=hints_seed,
            )  # fmt: skip
            results[clip.name] = {"frames": frames, "cuts": cuts, "scores": scores}
    rows = list(next(iter(results.values()))["scores"])
    results[OVERALL] = {
        "frames": sum(r["frames"] for r in results.values()),
        "cuts": sum(r["cuts"] for r in results.values()),
        "scores": {
            row: {
                key: _nanmean([r["scores"][row][key] for r in results.values()])
                for key in next(iter(results.values()))["scores"][row]
            }
            for row in rows
        },
    }
    return results


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def format_table(results: dict[str, dict]) -> str:
    """A plain-text table: one block of rows per clip, then the overall means."""
    head = f"{'clip':<24} {'frames':>6} {'cuts':>4} {'output':<11}" + "".join(
        f" {title:>10}" for _, title, _ in COLUMNS
    )
    lines = [head, "-" * len(head)]
    for clip, r in results.items():
        for i, row in enumerate(r["scores"]):
            name, frames, cuts = (
                (clip[:24], str(r["frames"]), str(r["cuts"])) if i == 0 else ("", "", "")
            )
            cells = "".join(
                f" {_cell(fmt, r['scores'][row][key], row, key):>10}" for key, _, fmt in COLUMNS
            )
            lines.append(f"{name:<24} {frames:>6} {cuts:>4} {row:<11}{cells}")
    return "\n".join(lines)


def _cell(fmt: str, value: float, row: str, key: str) -> str:
    if row == "truth" and key in ("psnr", "ssim"):
        return "-"
    return "nan" if math.isnan(value) else fmt.format(value)


def compare(scores: Scores) -> str:
    """One line: the consistent path against the per-frame one (the issue's four targets)."""
    p, c = scores["per-frame"], scores["consistent"]
    cdc = 100.0 * (1.0 - c["cdc"] / p["cdc"]) if p["cdc"] > 0 else math.nan
    ab = 100.0 * c["ab"] / p["ab"] if p["ab"] > 0 else math.nan
    line = (
        f"consistent vs per-frame: CDC {cdc:.0f}% lower, warp ratio {p['warp_ratio']:.3f} -> "
        f"{c['warp_ratio']:.3f}, PSNR {c['psnr'] - p['psnr']:+.2f} dB, mean |ab| {ab:.0f}%"
    )
    if HINTED in scores:
        h = scores[HINTED]
        line += (
            f"\nhinted vs consistent: PSNR {h['psnr']:.2f} against {c['psnr']:.2f} dB "
            f"({h['psnr'] - c['psnr']:+.2f}), warp ratio {h['warp_ratio']:.3f}"
        )
    return line
