"""Data-loading speed: the memory-mapped uint8 cache versus decoding JPEGs every epoch.

Method: prepare the cache (timed, once; a second call shows the idempotent no-op), then time
one full pass over the cached dataset and one over the folder dataset with the same loader
settings (batch 32, ``split="train"``, shuffled, ``drop_last=False``) for each output kind
(``rgb``: uint8 for the trainer's batched on-device Lab; ``lab``: Lab per item on the CPU) and
worker count. Worker start-up is inside the timing; items/s is images per wall-clock second.
The main process uses one torch thread by default, like DataLoader workers: on a small shared
machine, intra-op threads contending with other processes make the per-item Lab conversion
several times slower and the ``num_workers=0`` figures meaningless.

Usage::

    python benchmarks/data_speed.py [FOLDER] [--size 256] [--limit N] [--cache DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from pixcolor.data import ColorizationDataset, make_loader, prepare_cache, resolve_files

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FOLDER = REPO.parent / "shared" / "data" / "photos" / "train"


def one_pass(dataset: ColorizationDataset, num_workers: int, batch_size: int) -> tuple[float, int]:
    """Seconds for one epoch over ``dataset``, and the number of items seen."""
    start = time.perf_counter()
    loader = make_loader(dataset, batch_size, shuffle=True, seed=0, num_workers=num_workers)
    seen = sum(len(batch[next(iter(batch))]) for batch in loader)
    return time.perf_counter() - start, seen


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="cache dir (default: temp)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--output", choices=["rgb", "lab"], nargs="+", default=["rgb", "lab"])
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads in the main process (workers use 1)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="pixcolor-cache-") as tmp:
        cache_dir = args.cache or Path(tmp) / "cache"
        files = resolve_files(args.folder)[: args.limit]
        start = time.perf_counter()
        prepare_cache(files, cache_dir, args.size, progress=False)
        prepared = time.perf_counter() - start
        start = time.perf_counter()
        prepare_cache(files, cache_dir, args.size, progress=False)
        again = time.perf_counter() - start
        nbytes = (cache_dir / "images.npy").stat().st_size
        print(
            f"folder {args.folder}: {len(files)} files, size {args.size}, batch {args.batch_size}"
        )
        print(f"prepare cache: {prepared:.1f} s ({nbytes / 2**20:.0f} MiB); re-run: {again:.2f} s")
        print(
            f"{'output':>6} {'workers':>7} {'source':>6} {'items':>6} {'seconds':>8} {'items/s':>8}"
        )
        for output in args.output:
            for workers in args.workers:
                rates = {}
                for name, source in (("cache", cache_dir), ("folder", files)):
                    ds = ColorizationDataset(source, "train", args.size, output=output)
                    seconds, seen = one_pass(ds, workers, args.batch_size)
                    rates[name] = seen / seconds
                    row = f"{seen:>6} {seconds:>8.2f} {rates[name]:>8.1f}"
                    print(f"{output:>6} {workers:>7} {name:>6} {row}")
                ratio = rates["cache"] / rates["folder"]
                print(f"{output:>6} {workers:>7} {'ratio':>6} cache/folder = {ratio:.2f}x")


if __name__ == "__main__":
    main()
