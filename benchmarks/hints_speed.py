"""Hint editing speed: from a changed hint to an updated 1024-px preview, and the full download.

The web page keeps a 1024-px copy of the photo while the user edits hints. Each edit runs the
hint model at its working size on that copy and recolours it (``Colorizer.colorize`` with
``hints``), then encodes a JPEG for the browser. The download runs the same on the 12-megapixel
original and encodes a PNG. Both are timed with 10 hints, beside the same work without hints
(the shipped default ensemble), and print wall and CPU seconds (user + system of all threads of
this process) measured in this one run.

    python benchmarks/hints_speed.py [--model default] [--hints 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from first_photo import make_photo  # benchmarks/ is on sys.path when run as a script
from PIL import Image

from pixcolor.hints import simulate_hints
from pixcolor.imageio import read_image
from pixcolor.pipeline import load_model


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()`` over ``repeat`` runs (after one warm-up)."""
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def encode(image: Image.Image, fmt: str) -> int:
    buf = io.BytesIO()
    image.save(buf, format=fmt, quality=90) if fmt == "JPEG" else image.save(buf, format=fmt)
    return buf.tell()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--hints", type=int, default=10)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    model = load_model(args.model, device="cpu")
    hinted = model.hint_colorizer()
    with tempfile.TemporaryDirectory() as tmp:
        original = np.asarray(read_image(make_photo(Path(tmp) / "photo.jpg", 4000, 3000)))
    preview = np.asarray(Image.fromarray(original).resize((1024, 768), Image.BICUBIC))
    truth_like = np.asarray(Image.fromarray(preview).convert("HSV"))  # any colours will do
    points = simulate_hints(truth_like, args.hints, seed=0)
    scale = original.shape[1] / preview.shape[1]
    full_points = [(h.x * scale, h.y * scale, h.rgb) for h in points]

    rows = [
        ("1024-px preview, no hints", lambda: encode(model.colorize(preview), "JPEG")),
        (f"1024-px preview, {args.hints} hints",
         lambda: encode(model.colorize(preview, hints=points), "JPEG")),
        ("12 MP download, no hints", lambda: encode(model.colorize(original), "PNG")),
        (f"12 MP download, {args.hints} hints",
         lambda: encode(model.colorize(original, hints=full_points), "PNG")),
    ]  # fmt: skip
    print(f"model {args.model} (hints: {hinted.config.get('arch')} "
          f"{'itself' if hinted is model else model.config.get('hints_model')}), "
          f"working size {model.size} without hints, {hinted.size} with, CPU threads {__import__('torch').get_num_threads()}")  # fmt: skip
    results = {}
    for name, fn in rows:
        repeat = args.repeat if "preview" in name else max(1, args.repeat // 2)
        results[name] = timed(fn, repeat)
        wall, cpu = results[name]
        print(f"{name:34s} wall {wall:6.3f} s   CPU {cpu:6.3f} s")
    base = results["1024-px preview, no hints"]
    hint = results[f"1024-px preview, {args.hints} hints"]
    print(
        f"preview with hints / without: wall {hint[0] / base[0]:.2f}x, CPU {hint[1] / base[1]:.2f}x"
    )


if __name__ == "__main__":
    main()
