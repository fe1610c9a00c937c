"""Data speed of the path training uses: the memory-mapped uint8 cache versus decoding every epoch.

Method: prepare the cache (timed, once; a second call shows the idempotent no-op), then time
one epoch of what :class:`pixcolor.train.Trainer` does before the networks, once over the
cached data set and once over the folder: :class:`~pixcolor.data.ColorizationDataset` at
``--load-size``, batches in :class:`~pixcolor.train_setup.EpochSampler` order through
:func:`~pixcolor.train_setup.make_train_loader`, then the batched augmentation and Lab
conversion on the device (:func:`~pixcolor.train_setup.prepare_batch`, ``--augment``). Worker
start-up is inside the timing; images/s is images per wall-clock second. The main process uses
``--threads`` torch threads (default 1, as loader workers do): on a small shared machine,
intra-op threads contending with other processes make the figures meaningless.

Usage::

    PIXCOLOR_DATA=../shared/data python benchmarks/data_speed.py [FOLDER] [--load-size 160]
        [--size 128] [--augment crop] [--limit N] [--workers 0 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from pixcolor.config import TrainConfig
from pixcolor.data import ColorizationDataset, prepare_cache
from pixcolor.datasets.split import resolve_files
from pixcolor.distributed import DistContext
from pixcolor.train_setup import EpochSampler, make_train_loader, prepare_batch

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("PIXCOLOR_DATA") or REPO.parent / "shared" / "data")


def one_epoch(dataset: ColorizationDataset, config: TrainConfig, device: torch.device) -> float:
    """Seconds for one epoch of loading and preparing batches, as the trainer does."""
    start = time.perf_counter()
    sampler = EpochSampler(len(dataset), config.seed, 0, config.batch_size)
    single = DistContext.single()
    for step, batch in enumerate(make_train_loader(dataset, sampler, config, device)):
        prepare_batch(batch["rgb"], config, device, single, 0, step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a small table with the cache/folder ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DATA / "photos" / "train")
    parser.add_argument("--load-size", type=int, default=160)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--augment", choices=["flip", "crop"], default="crop")
    parser.add_argument("--limit", type=int, default=512)
    parser.add_argument("--cache", type=Path, default=None, help="cache dir (default: temp)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, main process")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory(prefix="pixcolor-cache-") as tmp:
        cache_dir = args.cache or Path(tmp) / "cache"
        files = resolve_files(args.folder)[: args.limit]
        start = time.perf_counter()
        prepare_cache(files, cache_dir, args.load_size, progress=False)
        prepared = time.perf_counter() - start
        start = time.perf_counter()
        prepare_cache(files, cache_dir, args.load_size, progress=False)
        again = time.perf_counter() - start
        nbytes = (cache_dir / "images.npy").stat().st_size
        print(
            f"{args.folder}: {len(files)} files, load {args.load_size} -> {args.size} "
            f"({args.augment}), batch {args.batch_size}, device {device}"
        )
        print(f"prepare cache: {prepared:.1f} s ({nbytes / 2**20:.0f} MiB); re-run: {again:.2f} s")
        print(f"{'workers':>7} {'source':>6} {'images':>6} {'seconds':>8} {'images/s':>9}")
        for workers in args.workers:
            config = TrainConfig(
                data=str(args.folder),
                size=args.size,
                augment=args.augment,
                batch_size=args.batch_size,
                num_workers=workers,
            )
            rates = {}
            for name, source in (("cache", cache_dir), ("folder", files)):
                dataset = ColorizationDataset(source, args.load_size)
                seconds = one_epoch(dataset, config, device)
                seen = EpochSampler(len(dataset), 0, 0, args.batch_size).num_batches
                rates[name] = seen * args.batch_size / seconds
                print(
                    f"{workers:>7} {name:>6} {len(dataset):>6} {seconds:>8.2f} {rates[name]:>9.1f}"
                )
            print(
                f"{workers:>7} {'ratio':>6} cache/folder = {rates['cache'] / rates['folder']:.2f}x"
            )


if __name__ == "__main__":
    main()
