"""``pixcolor data``: download the COCO sample, split, preview and cache training images."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path

from pixcolor.errors import PixcolorError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` subcommand and its ``coco-sample``/``split``/``preview``/``prepare``."""
    p = sub.add_parser("data", help="download, split, preview and cache training images")
    actions = p.add_subparsers(dest="data_command", metavar="ACTION")
    p.set_defaults(func=lambda _args: _help(p))

    coco = actions.add_parser("coco-sample", help="download + extract the fastai COCO sample")
    coco.add_argument("--root", type=Path, default=Path("data"), help="folder (default: data)")
    coco.add_argument("--no-progress", action="store_true", help="no progress bar")
    coco.set_defaults(func=run_coco_sample)

    split = actions.add_parser("split", help="the tutorial's seeded train/val selection")
    split.add_argument("source", help="folder of images or .txt list of paths")
    split.add_argument("--n", type=int, default=5000, help="images chosen in all (5000)")
    split.add_argument("--val", type=int, default=1000, help="of which validation (1000)")
    split.add_argument("--seed", type=int, default=1, help="RandomState seed (1)")
    split.add_argument("--out", type=Path, required=True, help="folder for train.txt/val.txt")
    split.set_defaults(func=run_split)

    preview = actions.add_parser("preview", help="grid of samples: L (gray) | colour")
    preview.add_argument("source", help="folder, .txt list, or prepared cache")
    preview.add_argument(
        "-o", "--out", type=Path, required=True, help="output image, e.g. grid.png"
    )
    preview.add_argument("--n", type=int, default=8, help="number of samples (8)")
    preview.add_argument("--size", type=int, default=128, help="tile side in pixels (128)")
    preview.add_argument("--seed", type=int, default=0, help="seed of the sample choice (0)")
    preview.set_defaults(func=run_preview)

    prepare = actions.add_parser(
        "prepare", help="decode once into a memory-mapped uint8 cache (one or more sources)"
    )
    prepare.add_argument(
        "source", nargs="+", help="folders of images or .txt lists of paths (joined in order)"
    )
    prepare.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="SOURCE",
        help="leave out these images (a folder or .txt list, e.g. held-out photos); repeatable",
    )
    prepare.add_argument(
        "--shuffle",
        type=int,
        default=None,
        metavar="SEED",
        help="shuffle the joined list with this seed, so train --limit N takes a random subset",
    )
    prepare.add_argument("--out", type=Path, required=True, help="cache folder")
    prepare.add_argument("--size", type=int, default=256, help="square side in pixels (256)")
    prepare.add_argument("--workers", type=int, default=None, help="decoding threads")
    prepare.add_argument("--no-progress", action="store_true", help="no progress bar")
    prepare.set_defaults(func=run_prepare)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_coco_sample(args: argparse.Namespace) -> int:
    """Download and extract the COCO sample; print the image folder."""
    from pixcolor.datasets.download import coco_sample

    images = coco_sample(args.root, progress=not args.no_progress)
    count = sum(1 for _ in images.glob("*.jpg"))
    print(f"{count} images in {images}")
    return 0


def run_split(args: argparse.Namespace) -> int:
    """Write ``train.txt`` and ``val.txt``; print their paths and sizes."""
    from pixcolor.datasets.split import resolve_files, seed_split, write_split

    files = resolve_files(args.source)
    try:
        train, val = seed_split(files, n=args.n, n_val=args.val, seed=args.seed)
    except ValueError as exc:
        raise PixcolorError(f"{args.source}: {exc}") from exc
    train_path, val_path = write_split(train, val, args.out)
    print(f"wrote {train_path} ({len(train)} images) and {val_path} ({len(val)} images)")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    """Write the preview grid; print its path."""
    from pixcolor.datasets.preview import preview_grid

    out = preview_grid(args.source, args.out, n=args.n, size=args.size, seed=args.seed)
    print(f"wrote {out}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    """Build (or reuse) the cache; print what it holds and what was skipped."""
    from pixcolor.data import CACHE_IMAGES, UnreadableImageWarning, load_cache_info, prepare_cache

    with warnings.catch_warnings():  # each skipped file gets its one line below instead
        warnings.simplefilter("ignore", UnreadableImageWarning)
        out = prepare_cache(
            joined_sources(args.source, exclude=args.exclude, shuffle=args.shuffle),
            args.out,
            args.size,
            num_workers=args.workers,
            progress=not args.no_progress,
        )
    info = load_cache_info(out)
    print(f"wrote {out / CACHE_IMAGES} ({info['count']} images, {info['size']}px)")
    for item in info["skipped"]:
        print(f"skipped {item['path']}: {item['reason']}")
    return 1 if info["skipped"] else 0


def joined_sources(
    sources: Sequence[str], *, exclude: Sequence[str] = (), shuffle: int | None = None
) -> list[Path]:
    """The images of several sources in order, each once, less ``exclude``, optionally shuffled.

    Args:
        sources: folders or ``.txt`` lists of image paths.
        exclude: folders or lists whose images are left out (compared by resolved path).
        shuffle: seed of a ``random.Random`` shuffle of the joined list; None keeps the order.

    Raises:
        PixcolorError: a source is missing or empty, or nothing is left after ``exclude``.
    """
    import os
    import random

    from pixcolor.datasets.split import resolve_files

    left_out = {os.path.realpath(p) for src in exclude for p in resolve_files(src)}
    seen: set[str] = set()
    files: list[Path] = []
    for src in sources:
        for path in resolve_files(src):
            key = os.path.realpath(path)  # no stat: a broken link is reported later
            if key not in seen and key not in left_out:
                seen.add(key)
                files.append(path)
    if not files:
        raise PixcolorError(f"{', '.join(sources)}: no images left after --exclude")
    if shuffle is not None:
        random.Random(shuffle).shuffle(files)
    return files
