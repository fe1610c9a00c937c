"""``pixcolor evaluate-video DIR``: per-frame vs temporally consistent colorization of clips."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pixcolor.atomic import atomic_write_bytes
from pixcolor.commands._flags import add_size_flag
from pixcolor.commands.video import VIDEO_EXTRA
from pixcolor.errors import PixcolorError
from pixcolor.working_size import check_size


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate-video`` subcommand."""
    p = sub.add_parser(
        "evaluate-video",
        help="score video colorization: per-frame vs consistent",
        description="DIR holds one sub-folder of colour frames per clip. Both video paths "
        "colorize each clip's lightness and are scored against its colours: PSNR and SSIM "
        "(with the gray baseline), the warping-error ratio (1.0 = as steady as the truth), "
        "CDC (colour-histogram flicker) and mean |ab| (colour amount). Pairs of frames across "
        "a scene cut are left out.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="folder of clip folders")
    p.add_argument(
        "--model", default=None, help="shipped name (default, fast) or a model folder or file"
    )
    add_size_flag(p)
    p.add_argument("--device", default=None, help="cpu / cuda / mps (default: best)")
    p.add_argument(
        "--hints",
        type=int,
        default=0,
        metavar="N",
        help="also score the consistent path with N hints simulated on each clip's first frame "
        "from its colours and carried along the motion (row 'hinted'; needs a hint model)",
    )
    p.add_argument("--hints-seed", type=int, default=0, help="seed of the simulated hints")
    p.add_argument("--json", type=Path, default=None, help="also write the scores here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the table."""
    if args.size is not None:
        check_size(args.size, "--size")
    if not 0 <= args.hints <= 1000:
        raise PixcolorError(f"--hints must be in [0, 1000], got {args.hints}")
    try:
        from pixcolor.video.evaluate import (
            OVERALL,
            compare,
            evaluate_video,
            format_table,
            list_clips,
        )
    except ModuleNotFoundError as exc:
        if exc.name in ("av", "cv2"):
            raise PixcolorError(VIDEO_EXTRA) from None
        raise
    from pixcolor.pipeline import load_model

    list_clips(args.dir)  # a bad DIR fails before the model loads
    model = load_model(args.model, device=args.device)
    if args.hints:
        model.hint_colorizer()  # no hint model: one line before any work
    results = evaluate_video(
        model, args.dir, size=args.size, hints=args.hints, hints_seed=args.hints_seed
    )
    print(format_table(results))
    print(compare(results[OVERALL]["scores"]))
    if args.json is not None:
        text = json.dumps(results, indent=1, allow_nan=True) + "\n"
        atomic_write_bytes(args.json, text.encode("utf-8"))
    return 0
