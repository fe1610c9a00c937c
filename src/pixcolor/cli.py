"""The ``pixcolor`` command line: builds the parser and dispatches to ``pixcolor.commands``.

Each subcommand lives in its own module under :mod:`pixcolor.commands` and exposes
``register(subparsers)``; the handler it sets returns an exit code. Argparse stops here:
handlers turn flags into keyword arguments for plain library functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pixcolor import __version__
from pixcolor.errors import PixcolorError

# Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "info",
    "data",
    "train",
    "colorize",
    "evaluate",
    "video",
    "evaluate_video",
    "sr",
    "serve",
    "demo",
    "export",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="pixcolor",
        description="Colorize black-and-white photos with a Pix2Pix GAN, and train your own.",
    )
    parser.add_argument("--version", action="version", version=f"pixcolor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"pixcolor.commands.{name}")
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name != f"pixcolor.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (0 ok, 1 some inputs failed, 2 error)."""
    parser = build_parser()
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
