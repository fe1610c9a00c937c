"""Video colorization speed: per-frame ``colorize`` against the temporally consistent path.

Run: ``python benchmarks/video_speed.py [--model fast] [--frames 8]``. For 640x360 and
1280x720 frames of a generated pan, prints frames per second of

- ``per-frame``: ``Colorizer.colorize`` on each frame (the photo path);
- ``consistent``: ``pixcolor.video.colorize_frames`` (model, DIS flow both ways, blend);

and the ratio of their times per frame (target: consistent <= 1.5x per-frame). The two run
in alternation, twice each, and the faster round of each counts, so load from other
processes touches both alike. Decoding and encoding are not timed.

``--memory`` instead runs ``pixcolor video`` on generated MP4 clips of 300 and 3,000 frames
(160x96, ``--size 32``) in fresh processes and prints each one's peak RSS: streaming means
the two are about the same.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from skimage import data

import pixcolor
from pixcolor.video import colorize_frames
from pixcolor.video.synth import synthetic_clip, write_video

SIZES = ((640, 360), (1280, 720))
MEMORY_FRAMES = (300, 3000)
PEAK_RSS = (
    "import resource, sys; from pixcolor.cli import main; rc = main(sys.argv[1:]); "
    "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def speed(model: pixcolor.Colorizer, frames: list[np.ndarray]) -> dict[str, float]:
    """Seconds per frame of both paths (best of two alternating rounds)."""
    runs = {
        "per-frame": lambda: [model.colorize(f) for f in frames],
        "consistent": lambda: list(colorize_frames(model, frames)),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(2):
        for name, fn in runs.items():
            best[name] = min(best[name], timed(fn) / len(frames))
    return best


def memory(tmp: Path) -> None:
    """Peak RSS of ``pixcolor video`` on short and long generated clips."""
    photos = [data.astronaut(), data.coffee()]
    for n in MEMORY_FRAMES:
        src = tmp / f"clip{n}.mp4"
        write_video(synthetic_clip(photos, n, (160, 96), "orbit"), src, fps=25)
        args = ["video", str(src), "-o", str(tmp / "out"), "--model", "fast", "--size", "32"]
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, *args], capture_output=True, text=True, check=True
        )
        peak = int(result.stdout.split("peak_rss_kb")[1].split()[0])
        print(f"{n:5d} frames: peak RSS {peak / 1024:.0f} MiB, {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fast")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip and round")
    parser.add_argument("--memory", action="store_true", help="peak RSS over 300 / 3,000 frames")
    args = parser.parse_args()
    if args.memory:
        with tempfile.TemporaryDirectory() as tmp:
            memory(Path(tmp))
        return
    model = pixcolor.load_model(args.model, device="cpu")
    model.colorize(data.astronaut()[:64, :64])  # warm-up
    print(f"model {args.model}, {args.frames} frames per round, CPU threads "
          f"{__import__('torch').get_num_threads()}")  # fmt: skip
    print(f"{'frames':>10} {'per-frame fps':>14} {'consistent fps':>15} {'ratio':>6}")
    for size in SIZES:
        frames = list(synthetic_clip([data.astronaut(), data.coffee()], args.frames, size, "pan"))
        s = speed(model, frames)
        ratio = s["consistent"] / s["per-frame"]
        print(f"{size[0]:>5}x{size[1]:<4} {1 / s['per-frame']:>14.2f} "
              f"{1 / s['consistent']:>15.2f} {ratio:>6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
