"""``pixcolor colorize INPUT... -o OUTDIR``: colorize photos at their own resolution."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pixcolor.batch import FORMATS, check_folders, notice_if_slow, output_dir_arg, run_batch
from pixcolor.commands._flags import add_size_flag

if TYPE_CHECKING:
    from pixcolor.files import InputFile


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``colorize`` subcommand."""
    p = sub.add_parser("colorize", help="colorize photos (files, folders, globs)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or glob patterns")
    p.add_argument("-o", "--out", type=output_dir_arg, required=True, help="output folder")
    p.add_argument(
        "--model", default=None, help="shipped name (default, fast) or a model folder or file"
    )
    add_size_flag(p)
    p.add_argument("--device", default=None, help="cpu / cuda / mps (default: best)")
    p.add_argument("--format", choices=sorted(FORMATS), default="png", help="output format")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--saturation",
        type=float,
        default=1.0,
        help="colour strength, 0-2: 1 = the model's own (default), 0 = gray, 2 = twice as strong",
    )
    p.add_argument(
        "--stochastic",
        action="store_true",
        help="dropout on, for different colours per run (models with dropout only; the shipped "
        "ones have none)",
    )
    p.add_argument(
        "--hints",
        type=Path,
        default=None,
        metavar="PATH",
        help='colour hints: for one input file a JSON file ({"points": [{"x", "y", '
        '"rgb", "radius"}]}); otherwise a folder mirroring the inputs (hints of '
        "INPUT/a/b.png in PATH/a/b.json; images without one get none)",
    )
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
    if not 0.0 <= args.saturation <= 2.0:
        from pixcolor.errors import PixcolorError

        raise PixcolorError(f"--saturation must be in [0, 2], got {args.saturation:g}")
    check_folders(args.inputs, args.out)
    with notice_if_slow(f"loading the colorizer ({args.model or 'default'}) ..."):
        from pixcolor.pipeline import load_model

        model = load_model(args.model, device=args.device)
    if args.stochastic:
        model.check_stochastic()
    hints_for = _hints_lookup(args.inputs, args.hints)
    if hints_for is not None:
        with notice_if_slow("loading the hint model ..."):
            model.hint_colorizer()
    upscaler = None
    if args.upscale:
        from pixcolor.sr import load_upscaler

        upscaler = load_upscaler(None, scale=args.upscale, device=args.device)

    def job(item: InputFile):
        hints = hints_for(item) if hints_for is not None else None
        image = model.colorize(
            item.path,
            size=args.size,
            stochastic=args.stochastic,
            saturation=args.saturation,
            hints=hints,
        )
        return upscaler.upscale(image, args.upscale) if upscaler is not None else image

    result = run_batch(
        args.inputs, args.out, job, fmt=args.format, overwrite=args.overwrite, verb="colorized"
    )
    return result.exit_code


def _hints_lookup(
    inputs: list[str], hints: Path | None
) -> Callable[[InputFile], Path | None] | None:
    """``item -> its hints file`` for ``--hints PATH`` (``None`` without the flag).

    One input file: PATH is its JSON file. Anything else: PATH is a folder mirroring the
    inputs; an image without a hints file gets none. Files are read when their image is, so a
    bad one fails that image only, with a line naming the file.

    Raises:
        PixcolorError: PATH missing, or a file where a folder is needed (and the reverse).
    """
    if hints is None:
        return None
    from pixcolor.errors import PixcolorError

    single = len(inputs) == 1 and Path(inputs[0]).is_file()
    if single and not hints.is_file():
        raise PixcolorError(f"--hints {hints}: no such hints file (one input: a JSON file)")
    if not single and not hints.is_dir():
        raise PixcolorError(
            f"--hints {hints}: not a folder (for folders, globs or several files --hints is a "
            "folder mirroring the inputs: INPUT/a/b.png -> PATH/a/b.json)"
        )
    if single:
        return lambda item: hints

    def lookup(item: InputFile) -> Path | None:
        path = hints / item.relative.with_suffix(".json")
        return path if path.is_file() else None

    return lookup
