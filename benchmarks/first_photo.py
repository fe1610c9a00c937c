"""The first photo, as a new user meets it: fresh processes, an empty TorchInductor cache.

Generates a 4000x3000 (12 MP) grayscale JPEG, then runs each command below in a fresh process
(``sys.executable -m pixcolor ...``) with ``TORCHINDUCTOR_CACHE_DIR`` pointing at a new empty
folder, and prints its wall time and CPU time (user + system, from ``getrusage(RUSAGE_CHILDREN)``
before and after, so the CPU figure is that child's alone and does not depend on other load):

- ``pixcolor --help``;
- ``pixcolor colorize photo.jpg -o OUT`` (PNG) and ``--format jpg``;
- the I/O floor, for reference: a fresh process that only decodes the JPEG with Pillow and
  writes it as an RGB PNG with Pillow's defaults (zlib level 6); and, beside it, the same at
  zlib level 1, as pixcolor writes its PNGs (a stricter floor: the same kind of file, fastest).

It ends with ``ratio X`` = the colorize-to-PNG CPU seconds over the I/O floor's (Pillow's
defaults), and the same ratio over the level-1 floor.

    python benchmarks/first_photo.py [--model NAME_OR_PATH] [--device cpu] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 4000, 3000

FLOOR = r"""
import sys
from PIL import Image
Image.open(sys.argv[1]).convert("RGB").save(sys.argv[2], compress_level=int(sys.argv[3]))
"""


def make_photo(path: Path, width: int = WIDTH, height: int = HEIGHT, seed: int = 0) -> Path:
    """A grayscale photo-like JPEG (mode L): gradients, blobs and grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = 100 + 60 * np.sin(x / 300) * np.cos(y / 200) + 40 * (x / width)
    small = rng.normal(0, 25, (height // 50 + 1, width // 50 + 1)).astype(np.float32)
    img += np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC))
    img += rng.normal(0, 6, (height, width)).astype(np.float32)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def child_cpu() -> float:
    """CPU seconds (user + system) of all waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(label: str, cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd`` in a fresh process; print and return its (wall, CPU) seconds."""
    cpu0, t0 = child_cpu(), time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, child_cpu() - cpu0
    status = "" if done.returncode == 0 else f"  (exit {done.returncode})"
    print(f"{label:28s} wall {wall:6.2f} s   CPU {cpu:6.2f} s{status}", flush=True)
    if done.returncode != 0:
        print((done.stderr or done.stdout).strip()[-2000:], file=sys.stderr)
    return wall, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="shipped name or folder (default: the default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=1, help="runs of each command (each printed)")
    args = p.parse_args()
    extra = ["--device", args.device] + (["--model", args.model] if args.model else [])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = make_photo(tmp / "photo.jpg")
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp / "inductor-cache")}
        pix = [sys.executable, "-m", "pixcolor"]
        print(
            f"{WIDTH}x{HEIGHT} grayscale JPEG ({photo.stat().st_size / 1e6:.1f} MB), "
            f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}, fresh process each, "
            "empty TorchInductor cache"
        )
        png_cpu, floor_cpu, default_cpu = [], [], []
        for i in range(args.repeat):
            run("pixcolor --help", [*pix, "--help"], env)
            out = tmp / f"out{i}"
            _, cpu = run("colorize -> PNG", [*pix, "colorize", str(photo), "-o", str(out / "png"),
                                             *extra], env)  # fmt: skip
            png_cpu.append(cpu)
            run("colorize -> JPG", [*pix, "colorize", str(photo), "-o", str(out / "jpg"),
                                    "--format", "jpg", *extra], env)  # fmt: skip
            for level, cpus in ((6, default_cpu), (1, floor_cpu)):
                _, cpu = run(
                    f"I/O floor, PNG level {level}",
                    [
                        sys.executable,
                        "-c",
                        FLOOR,
                        str(photo),
                        str(tmp / f"floor{i}.png"),
                        str(level),
                    ],
                    env,
                )
                cpus.append(cpu)
        best = min(png_cpu)
        print(f"ratio {best / min(default_cpu):.2f}  (colorize -> PNG CPU / I/O floor CPU)")
        print(f"ratio over the level-1 floor: {best / min(floor_cpu):.2f}")


if __name__ == "__main__":
    main()
