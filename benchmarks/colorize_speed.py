"""Colorize speed, read to written: a 12-megapixel JPEG, and 256x256 images in a batch.

Generates a 4000x3000 JPEG (smooth gradients plus texture, like a scan), then times the whole
pipeline with a breakdown: decode, colour conversion (L at working size), model, upsampling and
Lab->RGB at full resolution (compose), and encode. Then times batched 256x256 images.

Each stage prints its wall time and its CPU time (user + system of every thread of this
process, ``time.process_time``): on a shared machine the wall figures move with the load, the
CPU figures much less.

    python benchmarks/colorize_speed.py [--model PATH] [--device cpu] [--repeat 3] [--format png]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from first_photo import make_photo  # benchmarks/ is on sys.path when run as a script
from PIL import Image

from pixcolor.imageio import read_image
from pixcolor.imagewrite import save_image_atomic
from pixcolor.multiscale import average_sizes
from pixcolor.pipeline import load_model


def timed(fn):
    """Run ``fn()``; return its result and ``(wall, cpu)`` seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - t0, time.process_time() - c0)


def one_image(model, path: Path, out: Path, fmt: str) -> dict[str, tuple[float, float]]:
    """Run the pipeline's stages on one file and time each."""
    rgb, t_decode = timed(lambda: np.asarray(read_image(path)))
    small, t_colour = timed(lambda: model.working_l(rgb, model.size))
    ab, t_model = timed(  # at the model's size, averaged with its extra sizes
        lambda: average_sizes(model, [rgb], [model.predict_ab(small)[0]])[0]
    )
    result, t_compose = timed(lambda: model.compose(rgb, ab))
    _, t_encode = timed(
        lambda: save_image_atomic(
            Image.fromarray(result), out, overwrite=True, format=fmt.upper().replace("JPG", "JPEG")
        )
    )
    return {
        "decode": t_decode,
        "colour": t_colour,
        "model": t_model,
        "compose": t_compose,
        "encode": t_encode,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--format", choices=("png", "jpg"), default="png")
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    model = load_model(args.model, device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = make_photo(tmp / "photo12mp.jpg", 4000, 3000)
        one_image(model, photo, tmp / f"out.{args.format}", args.format)  # warm-up
        runs = [
            one_image(model, photo, tmp / f"out.{args.format}", args.format)
            for _ in range(args.repeat)
        ]
        med = {k: statistics.median(r[k][0] for r in runs) for k in runs[0]}
        cpu = {k: statistics.median(r[k][1] for r in runs) for k in runs[0]}
        total, total_cpu = sum(med.values()), sum(cpu.values())
        print(
            f"model {model.name}, device {model.device}, {torch.get_num_threads()} threads, "
            f"working size {model.size} (extra: {list(model.extra_sizes)}), output {args.format}"
        )
        print(
            f"12 MP (4000x3000) read to written: {total:.2f} s/image, {total_cpu:.2f} CPU-s/image "
            f"(median of {args.repeat})"
        )
        for k, v in med.items():
            print(f"  {k:8s} {v:6.3f} s  ({100 * v / total:4.1f}%)   CPU {cpu[k]:6.3f} s")
        # Batched 256x256 images, read to written.
        paths = [make_photo(tmp / f"s{i}.jpg", 256, 256, seed=i) for i in range(args.batch)]
        model.colorize_batch(paths[:2])

        def batch():
            outs = model.colorize_batch(paths)
            for im in outs:
                buf = io.BytesIO()
                im.save(buf, format="PNG")

        _, (t_batch, c_batch) = timed(batch)
        print(
            f"256x256, batch of {args.batch}: {args.batch / t_batch:.1f} images/s, "
            f"{c_batch / args.batch:.3f} CPU-s/image"
        )


if __name__ == "__main__":
    main()
