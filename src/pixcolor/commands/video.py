"""``pixcolor video INPUT... -o OUT``: colorize video files or frame folders without flicker."""

from __future__ import annotations

import argparse
from pathlib import Path

from pixcolor.commands._flags import add_size_flag
from pixcolor.errors import PixcolorError
from pixcolor.working_size import check_size

VIDEO_EXTRA = "this command needs PyAV and OpenCV: pip install 'pixcolor[video]'"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``video`` subcommand."""
    p = sub.add_parser(
        "video",
        help="colorize videos (mp4, mov, mkv, avi, webm) or folders of frames",
        description="Each INPUT is one clip: a video file gives OUT/<name>.mp4 (same frame rate, "
        "size, duration, audio copied); a folder of frames gives OUT/<folder name>/ (PNG, same "
        "file names). Colours are kept steady along the motion unless --no-temporal.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files or frame folders")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--model", default=None, help="shipped name (default, fast) or a model folder or file"
    )
    add_size_flag(p)
    p.add_argument(
        "--saturation",
        type=float,
        default=1.0,
        help="factor on the colours: 1 = the model's own, 0 = gray, up to 2",
    )
    p.add_argument("--device", default=None, help="cpu / cuda / mps (default: best)")
    p.add_argument(
        "--no-temporal",
        dest="temporal",
        action="store_false",
        help="colorize each frame on its own (no temporal consistency)",
    )
    p.add_argument(
        "--hints",
        type=Path,
        default=None,
        metavar="PATH",
        help="colour hints on keyframes, carried along the motion until a cut: a JSON file "
        '{"frames": [{"frame": 0, "points": [{"x", "y", "rgb", "radius"}]}, ...]} for one '
        "INPUT, or a folder of <clip name>.json (video stem or folder name) for several",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Colorize every clip; exit 1 when any failed."""
    if args.size is not None:
        check_size(args.size, "--size")
    if not 0.0 <= args.saturation <= 2.0:
        raise PixcolorError(f"--saturation must be in [0, 2], got {args.saturation:g}")
    if args.hints is not None and not args.hints.is_dir():
        if not args.hints.is_file():
            raise PixcolorError(f"--hints {args.hints}: no such hints file or folder")
        if len(args.inputs) > 1:
            raise PixcolorError(
                f"--hints {args.hints}: one hints file for {len(args.inputs)} clips; give a "
                "folder of <clip name>.json"
            )
    try:
        from pixcolor.video.clips import VideoSettings, run_clips
    except ModuleNotFoundError as exc:
        if exc.name in ("av", "cv2"):
            raise PixcolorError(VIDEO_EXTRA) from None
        raise
    from pixcolor.pipeline import load_model

    settings = VideoSettings(
        size=args.size,
        consistent=args.temporal,
        overwrite=args.overwrite,
        saturation=args.saturation,
        hints=args.hints,
    )
    from pixcolor.batch import sigterm_as_interrupt

    with sigterm_as_interrupt():  # a clip's temporary output is removed on SIGTERM too
        return run_clips(
            lambda: load_model(args.model, device=args.device), args.inputs, args.out, settings
        )
