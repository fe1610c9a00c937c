"""``pixcolor serve``: a local web page that colorizes photos (``pip install 'pixcolor[web]'``)."""

from __future__ import annotations

import argparse
import logging

from pixcolor.errors import ConfigError, PixcolorError

logger = logging.getLogger(__name__)

# Modules of the ``web`` extra; a missing one means the extra is not installed.
WEB_MODULES = {"fastapi", "starlette", "uvicorn", "python_multipart"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    p = sub.add_parser("serve", help="local web page to colorize photos in a browser")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this computer only)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument(
        "--model",
        default=None,
        help="shipped model name or weights folder/.safetensors (default: shipped)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, mps, ... (default: best available)")
    p.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="largest accepted photo file in MiB (20)"
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=50_000_000,
        help="largest photo (and upscaled result) in pixels (50000000)",
    )
    p.add_argument(
        "--queue",
        type=int,
        default=4,
        help="photos waiting or running at once; more get 'busy' (4)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the model once, then serve the page until Ctrl+C."""
    try:
        import uvicorn

        from pixcolor.web.app import create_app
    except ModuleNotFoundError as exc:
        if exc.name not in WEB_MODULES:
            raise
        raise PixcolorError(
            f"pixcolor serve needs {exc.name}, which is not installed: pip install 'pixcolor[web]'"
        ) from None
    from pixcolor.pipeline import load_model

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    max_upload_bytes = round(args.max_upload_mb * 2**20)
    for flag, value in (
        ("--max-upload-mb", max_upload_bytes),
        ("--max-pixels", args.max_pixels),
        ("--queue", args.queue),
    ):
        if value < 1:
            raise ConfigError(f"{flag} must be positive")

    colorizer = load_model(args.model, device=args.device)
    app = create_app(
        colorizer,
        max_upload_bytes=max_upload_bytes,
        max_pixels=args.max_pixels,
        max_queue=args.queue,
    )
    if args.host not in LOOPBACK_HOSTS:
        logger.warning(
            "listening on %s: anyone who can reach this address can use the "
            "colorizer (there is no login)",
            args.host,
        )
    host = f"[{args.host}]" if ":" in args.host else args.host
    logger.info(
        "pixcolor: %s on %s; open http://%s:%d/ (Ctrl+C stops)",
        colorizer.name,
        colorizer.device,
        host,
        args.port,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
