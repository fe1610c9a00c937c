"""The ``pixcolor`` command line: builds the parser and dispatches to ``pixcolor.commands``.

Each subcommand lives in its own module under :mod:`pixcolor.commands` and exposes
``register(subparsers)``; the handler it sets returns an exit code. Argparse stops here:
handlers turn flags into keyword arguments for plain library functions.

Start-up is kept light: only the module of the subcommand given on the command line is
imported, and command modules import torch and the models inside their handlers, so
``pixcolor --help``, ``pixcolor COMMAND --help`` and argument errors never load torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pixcolor._version import __version__
from pixcolor.errors import PixcolorError

DESCRIPTION = (
    "Colorize black-and-white photos at their own resolution, enlarge them, and train your own "
    "colorizer. Shipped models: colour decoders on a frozen ImageNet EfficientNet-Lite0 encoder "
    "(predicting Lab colour from the photo's lightness; 'default' averages six decoders, "
    "'fast' is one) and SRCNN upscalers (2x, 3x, 4x)."
)

# Every subcommand, in the order ``pixcolor --help`` lists them: its module under
# pixcolor.commands, and the one-line help of that listing (the same text the module passes to
# add_parser; tests/test_startup.py checks that they agree).
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "show torch, device, GPU, RAM and bf16 support"),
    "data": ("data", "download, split, preview and cache training images"),
    "train": (
        "train",
        "train a colorizer (presets: default, the shipped recipe; seed, the Pix2Pix GAN)",
    ),
    "colorize": ("colorize", "colorize photos (files, folders, globs)"),
    "evaluate": ("evaluate", "score a colorizer against the gray baseline"),
    "video": ("video", "colorize videos (mp4, mov, mkv, avi, webm) or folders of frames"),
    "evaluate-video": ("evaluate_video", "score video colorization: per-frame vs consistent"),
    "upscale": ("sr", "enlarge images 2-4x with SRCNN (Y) + bicubic (colour)"),
    "evaluate-sr": ("sr", "Set5-style PSNR table: bicubic vs SRCNN (paper)"),
    "train-sr": ("sr", "train SRCNN on T91-style images (Set5 validation)"),
    "serve": ("serve", "local web page to colorize photos in a browser"),
    "demo": ("demo", "colorize scikit-image's sample photos with the default model"),
    "export": ("export", "turn a checkpoint into a release model folder"),
}


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option (top-level
    options take no values), or ``None``."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Return the top-level parser.

    Args:
        argv: the arguments that will be parsed; the module of the subcommand they name
            registers its full parser, every other subcommand is only listed. ``None``
            registers every subcommand in full (for documentation and tests).
    """
    parser = argparse.ArgumentParser(prog="pixcolor", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"pixcolor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if argv is None:
        modules = list(dict.fromkeys(module for module, _ in COMMANDS.values()))
    else:
        name = chosen_command(argv)
        modules = [COMMANDS[name][0]] if name in COMMANDS else []
    for module in modules:
        importlib.import_module(f"pixcolor.commands.{module}").register(sub)
    for name, (_, help_text) in COMMANDS.items():
        if name not in sub.choices:  # listed only; never parsed, as another command was named
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (0 ok, 1 some inputs failed, 2 error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PixcolorError as exc:
        print(f"pixcolor: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:  # bad values or files the commands did not foresee
        if args.verbose:
            raise
        print(f"pixcolor: error: {exc} (run with -v for details)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pixcolor: interrupted", file=sys.stderr)
        return 130
