"""``pixcolor colorize INPUT... -o OUTDIR``: colorize photos at their own resolution."""

from __future__ import annotations

import argparse
from pathlib import Path

from pixcolor.batch import FORMATS, notice_if_slow, run_batch


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``colorize`` subcommand."""
    p = sub.add_parser("colorize", help="colorize photos (files, folders, globs)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or glob patterns")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--model", default=None, help="shipped name (default, fast) or a model folder or file"
    )
    p.add_argument("--size", type=int, default=None, help="working size (default: the model's)")
    p.add_argument("--device", default=None, help="cpu / cuda / mps (default: best)")
    p.add_argument("--format", choices=sorted(FORMATS), default="png", help="output format")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--stochastic", action="store_true", help="dropout on (pix2pix-style)")
    p.add_argument(
        "--upscale",
        type=int,
        choices=(2, 3, 4),
        default=None,
        help="then enlarge with SRCNN by this factor",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Colorize every input; exit 1 when any file failed."""
    if args.size is not None:
        from pixcolor.working_size import check_size

        check_size(args.size, "--size")
    with notice_if_slow(f"loading the colorizer ({args.model or 'default'}) ..."):
        from pixcolor.pipeline import load_model

        model = load_model(args.model, device=args.device)
    upscaler = None
    if args.upscale:
        from pixcolor.sr import load_upscaler

        upscaler = load_upscaler(None, scale=args.upscale, device=args.device)

    def job(path: Path):
        image = model.colorize(path, size=args.size, stochastic=args.stochastic)
        return upscaler.upscale(image, args.upscale) if upscaler is not None else image

    result = run_batch(
        args.inputs, args.out, job, fmt=args.format, overwrite=args.overwrite, verb="colorized"
    )
    return result.exit_code
