"""Pictures of training and results: comparison grids and metric curves."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from pixcolor.checkpoint import atomic_write_bytes


def comparison_grid(columns: Sequence[Tensor], labels: Sequence[str] | None = None) -> Image.Image:
    """Tile images into rows of ``[col0 | col1 | ...]``.

    Args:
        columns: tensors ``(B, 3, H, W)`` in [0, 1] (or ``(B, 1, H, W)`` gray), equal sizes.
        labels: optional column titles drawn on a header strip.

    Returns:
        An RGB image of ``B`` rows and ``len(columns)`` columns.
    """
    cols = [c.detach().float().cpu().clamp(0, 1) for c in columns]
    cols = [c.expand(-1, 3, -1, -1) if c.shape[1] == 1 else c for c in cols]
    b, _, h, w = cols[0].shape
    header = 16 if labels else 0
    grid = Image.new("RGB", (w * len(cols), h * b + header), "white")
    for j, col in enumerate(cols):
        for i in range(b):
            arr = (col[i].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
            grid.paste(Image.fromarray(arr), (j * w, header + i * h))
    if labels:
        draw = ImageDraw.Draw(grid)
        for j, text in enumerate(labels):
            draw.text((j * w + 4, 2), text, fill="black")
    return grid


def save_png(image: Image.Image, path: Path) -> Path:
    """Encode ``image`` as PNG and write it atomically."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path


# Series with at most this many points are drawn with a marker at each point.
FEW_POINTS = 30


def plot_curves(jsonl: Path, out: Path) -> Path | None:
    """Plot every numeric series of a metrics JSONL file against ``step`` into a PNG.

    Returns the PNG path, or ``None`` when there is nothing to plot.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = []
    for line in jsonl.read_text().splitlines():
        with contextlib.suppress(ValueError):  # a half-written line of a killed run
            rows.append(json.loads(line))
    rows = [r for r in rows if isinstance(r, dict)]
    train = [r for r in rows if r.get("kind") == "train"]
    val = [r for r in rows if r.get("kind") == "val"]
    if not train and not val:
        return None
    keys_t = sorted({k for r in train for k, v in r.items() if k.startswith("loss")})
    keys_v = sorted({k for r in val for k, v in r.items() if k.startswith("val_")})
    n = max(1, len(keys_t) + len(keys_v))
    ncol = min(3, n)
    nrow = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.5 * ncol, 3 * nrow), squeeze=False)
    for ax, key in zip(axes.flat, keys_t + keys_v, strict=False):
        src = train if key in keys_t else val
        pts = [(r["step"], r[key]) for r in src if isinstance(r.get(key), (int, float))]
        if pts:  # markers when there are few points: a short run still shows something
            marker = "o" if len(pts) <= FEW_POINTS else ("." if src is val else None)
            ax.plot(*zip(*pts, strict=True), marker=marker, markersize=4)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return save_figure(fig, out)


def save_figure(fig, out: Path) -> Path:
    """Lay out a matplotlib figure, write it as PNG atomically, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return out
