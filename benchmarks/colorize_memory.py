"""Peak memory (RSS) of colorizing one very large photo, read to written.

Generates a WIDTHxHEIGHT colour JPEG in one child process, then colorizes it in a fresh child
(``pixcolor colorize``'s path: read, colorize at full resolution, save PNG atomically) and
reports that child's ``ru_maxrss``, beside its RSS just before colorizing (imports + model).
The two processes are separate so that the generator's own arrays do not count.

    python benchmarks/colorize_memory.py [--width 12000] [--height 9000] [--model PATH]

Without ``--model`` a tiny untrained U-Net is used (memory hardly depends on the model: it
runs at the working size; the full-resolution work is reading, composing and writing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# Runs in a child: peak RSS in bytes of this process so far (Linux reports KiB, macOS bytes).
CHILD_MEASURE = r"""
import json, resource, sys
from pixcolor.imagewrite import save_image_atomic
from pixcolor.pipeline import load_model

def peak():
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib if sys.platform == "darwin" else kib * 1024

src, model, out = sys.argv[1:4]
colorizer = load_model(model, device="cpu")
before = peak()
image = colorizer.colorize(src)
save_image_atomic(image, out, overwrite=True)
print(json.dumps({"size": list(image.size), "before": before, "peak": peak()}))
"""

CHILD_GENERATE = r"""
import sys
import numpy as np
from PIL import Image
path, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
small = rng.integers(0, 256, (height // 64 + 2, width // 64 + 2, 3), dtype=np.uint8)
Image.fromarray(small).resize((width, height), Image.BICUBIC).save(path, quality=90)
"""


def generate(path: Path, width: int, height: int) -> Path:
    """Write a smooth random colour JPEG of ``width`` x ``height`` (in a child process)."""
    cmd = [sys.executable, "-c", CHILD_GENERATE, str(path), str(width), str(height)]
    subprocess.run(cmd, check=True)
    return path


def measure(src: Path, model: Path, out: Path) -> dict:
    """Colorize ``src`` in a fresh process; returns ``{"size", "before", "peak"}`` (bytes)."""
    cmd = [sys.executable, "-c", CHILD_MEASURE, str(src), str(model), str(out)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def tiny_model(folder: Path) -> Path:
    """Save an untrained U-Net (base_channels 8) to ``folder``."""
    from pixcolor.checkpoint import save_model
    from pixcolor.models import create_generator

    kwargs = {"base_channels": 8, "num_downs": 5}
    return save_model(
        create_generator("unet", **kwargs), folder, "unet", kwargs, extra={"size": 64}
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=12_000)
    p.add_argument("--height", type=int, default=9_000)
    p.add_argument("--model", type=Path, default=None, help="default: a tiny untrained U-Net")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or tiny_model(tmp / "tiny")
        src = generate(tmp / "big.jpg", args.width, args.height)
        result = measure(src, model, tmp / "out.png")
    mp = args.width * args.height / 1e6
    gib = 1024**3
    print(
        f"{args.width}x{args.height} ({mp:.0f} MP) -> {tuple(result['size'])}: "
        f"RSS before colorizing {result['before'] / gib:.2f} GiB, "
        f"peak {result['peak'] / gib:.2f} GiB "
        f"({result['peak'] / (args.width * args.height):.1f} bytes/pixel)"
    )


if __name__ == "__main__":
    main()
