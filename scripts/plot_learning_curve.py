"""Plot a learning curve from ``pixcolor evaluate`` runs: PSNR over gray and spread vs photos.

    python scripts/plot_learning_curve.py OUT.png PHOTOS:METRICS_JSON:METHOD ...

Each point is the method's mean PSNR minus the gray baseline's (same run) and its colour
spread as a fraction of the truth's, read from the run's ``metrics.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(argv: list[str]) -> None:
    out, specs = Path(argv[0]), argv[1:]
    points = []
    for spec in specs:
        photos, metrics, method = spec.split(":")
        summary = json.loads(Path(metrics).read_text())["summary"]["all"]
        gain = summary[method]["psnr"] - summary["gray baseline"]["psnr"]
        points.append((int(photos), gain, summary[method]["spread_ratio"]))
    points.sort()
    xs = [p[0] for p in points]
    fig, left = plt.subplots(figsize=(5.5, 3.4), dpi=120)
    left.plot(xs, [p[1] for p in points], "o-", color="tab:blue", label="PSNR over gray (dB)")
    left.set_xscale("log")
    left.set_xticks(xs, [f"{x:,}" for x in xs])
    left.minorticks_off()
    left.set_xlabel("training photos (same number of steps)")
    left.set_ylabel("PSNR over gray, dB", color="tab:blue")
    right = left.twinx()
    right.plot(xs, [p[2] for p in points], "s--", color="tab:orange", label="spread / truth")
    right.set_ylabel("colour spread / truth's", color="tab:orange")
    left.set_title("Learning curve on photos/val (one decoder, ~1,333 steps)")
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
