"""Evaluation reports: ``metrics.json``, a distribution plot, and one self-contained HTML page.

The HTML embeds every picture as a base64 PNG, so it opens from disk without a server.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from pixcolor.atomic import atomic_write_bytes
from pixcolor.evaluate import BASELINE, TRUTH, ImageScores, format_table
from pixcolor.visualize import save_figure

THUMB = 200  # height of the report's thumbnails, in pixels


def write_metrics_json(
    path: Path,
    table: dict,
    results: Sequence[ImageScores],
    failures: Sequence[tuple[str, str]],
    meta: dict,
    *,
    hints: dict | None = None,
) -> Path:
    """Summary table, per-image scores and failures as JSON (and the ``hints`` curve, if any)."""
    doc = {
        "meta": meta,
        "summary": table,
        **({"hints": hints} if hints is not None else {}),
        "images": [{"path": r.path, "group": r.group, "scores": r.scores} for r in results],
        "failures": [{"path": p, "reason": why} for p, why in failures],
    }
    atomic_write_bytes(path, json.dumps(doc, indent=2, allow_nan=True).encode())
    return path


def plot_distributions(results: Sequence[ImageScores], out: Path) -> Path:
    """Histograms of per-image PSNR and colourfulness for every method (and truth CF)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    methods = [m for m in results[0].scores if m != TRUTH]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for m in methods:
        axes[0].hist([r.scores[m]["psnr"] for r in results], bins=30, alpha=0.5, label=m)
    for m in [*methods, TRUTH]:
        axes[1].hist([r.scores[m]["colourfulness"] for r in results], bins=30, alpha=0.45, label=m)
    axes[0].set_title("PSNR per image (dB)")
    axes[1].set_title("colourfulness per image (Hasler-Suesstrunk)")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return save_figure(fig, out)


def plot_hint_curve(curve: dict, out: Path) -> Path:
    """Mean PSNR against the number of hints per photo, one line per method
    (:func:`pixcolor.evaluate_hints.hint_curve`), as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    counts = curve["counts"]
    xs = [max(n, 0.5) for n in counts]  # log axis: N = 0 drawn at 0.5
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method, values in curve["methods"].items():
        style = "--" if method == BASELINE else "-"
        ax.plot(xs, values["psnr"], style, marker="o", label=method)
    if len(counts) > 1 and max(counts) >= 5:
        ax.set_xscale("log")
    ax.set_xticks(xs, [str(n) for n in counts])
    ax.set_xlabel("simulated hints per photo")
    ax.set_ylabel("mean PSNR (dB)")
    ax.set_title(f"PSNR against hints ({curve['images']} images)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, out)


def _hint_section(curve: dict, plot_png: Path) -> list[str]:
    """The hints table (PSNR / SSIM / spread per N and method) and its plot."""
    methods = list(curve["methods"])
    parts = [
        "<h2>Simulated hints</h2>",
        f"<p>{curve['images']} images; hints drawn from the truth with seed {curve['seed']}, "
        f"radius {curve['radius']}, nested over N.</p><table><tr><th>hints</th>",
        *(f"<th colspan='3'>{html.escape(m)}</th>" for m in methods),
        "</tr><tr><th></th>",
        *("<th>PSNR dB</th><th>SSIM</th><th>spread</th>" for _ in methods),
        "</tr>",
    ]
    for i, n in enumerate(curve["counts"]):
        parts.append(f"<tr><td>{n}</td>")
        for m in methods:
            v = curve["methods"][m]
            parts.append(
                f"<td>{v['psnr'][i]:.2f}</td><td>{v['ssim'][i]:.4f}</td><td>{v['spread'][i]:.2f}</td>"
            )
        parts.append("</tr>")
    plot = base64.b64encode(plot_png.read_bytes()).decode()
    parts.append(f"</table><img alt='PSNR against hints' src='data:image/png;base64,{plot}'>")
    return parts


def _png_b64(array: np.ndarray, height: int = THUMB) -> str:
    img = Image.fromarray(array)
    img = img.resize((max(1, round(img.width * height / img.height)), height), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def picks(results: Sequence[ImageScores], method: str) -> list[tuple[str, ImageScores]]:
    """Best, median and worst image by the method's PSNR."""
    ranked = sorted(results, key=lambda r: r.scores[method]["psnr"], reverse=True)
    return [("best", ranked[0]), ("median", ranked[len(ranked) // 2]), ("worst", ranked[-1])]


# Columns of the report's tables: (metric key, heading, decimals).
HTML_COLUMNS = (
    ("psnr", "PSNR dB", 2),
    ("ssim", "SSIM", 4),
    ("colourfulness", "CF", 2),
    ("spread", "spread", 2),
    ("spread_ratio", "spread / truth", 2),
    ("dCF", "dCF", 2),
    ("ab_l1", "ab L1", 2),
)


def _html_tables(table: dict) -> list[str]:
    """One HTML table of method x metric means per group."""
    parts = []
    for group, means in table.items():
        n = int(next(iter(means.values()))["n"])
        parts.append(f"<h2>{html.escape(group)} ({n} images)</h2><table><tr><th>method</th>")
        parts += [f"<th>{h}</th>" for _, h, _ in HTML_COLUMNS] + ["</tr>"]
        for method, row in means.items():
            parts.append(f"<tr><td>{html.escape(method)}</td>")
            parts += [
                f"<td>{row[k]:.{d}f}</td>" if k in row else "<td>-</td>" for k, _, d in HTML_COLUMNS
            ]
            parts.append("</tr>")
        parts.append("</table>")
    return parts


def write_html(
    path: Path,
    table: dict,
    results: Sequence[ImageScores],
    images: dict[str, dict[str, np.ndarray]],
    plot_png: Path,
    meta: dict,
    *,
    hints: dict | None = None,
    hints_png: Path | None = None,
) -> Path:
    """One self-contained HTML report: tables, best/median/worst grids and the plot.

    With ``hints`` (a :func:`pixcolor.evaluate_hints.hint_curve`) and its plot ``hints_png``,
    the page starts with the hints table and the plot of PSNR against N.
    """
    model = next((m for m in results[0].scores if m not in (BASELINE, TRUTH)), BASELINE)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>pixcolor evaluation</title><style>",
        "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}",
        "table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{padding:.25rem .6rem;"
        "border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}",
        "figure{display:inline-block;margin:.3rem}figcaption{font-size:.8rem;color:#555}",
        ".row{margin-bottom:1rem}img{max-width:100%;height:auto}</style></head><body>",
        "<h1>pixcolor evaluation</h1>",
        f"<p>{html.escape(json.dumps(meta))}</p>",
    ]
    if hints is not None and hints_png is not None:
        parts += _hint_section(hints, hints_png)
    parts += _html_tables(table)
    parts.append(f"<h2>Best, median and worst by {html.escape(model)} PSNR</h2>")
    for label, r in picks(results, model):
        shots = images.get(r.path)
        if not shots:
            continue
        parts.append(
            f"<div class='row'><h3>{label}: {html.escape(Path(r.path).name)} "
            f"({r.scores[model]['psnr']:.2f} dB)</h3>"
        )
        for name, arr in shots.items():
            parts.append(
                f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,"
                f"{_png_b64(arr)}'><figcaption>{html.escape(name)}</figcaption></figure>"
            )
        parts.append("</div>")
    plot = base64.b64encode(plot_png.read_bytes()).decode()
    parts.append(
        f"<h2>Distributions</h2><img alt='distributions' src='data:image/png;base64,{plot}'>"
    )
    parts.append(f"<h2>Tables (text)</h2><pre>{html.escape(format_table(table))}</pre>")
    parts.append("</body></html>")
    atomic_write_bytes(path, "\n".join(parts).encode())
    return path
