"""``pixcolor serve``: a local web page that colorizes photos (``pip install 'pixcolor[web]'``)."""

from __future__ import annotations

import argparse
import logging

from pixcolor.errors import ConfigError, PixcolorError

logger = logging.getLogger(__name__)

# Modules of the ``web`` extra; a missing one means the extra is not installed.
WEB_MODULES = {"fastapi", "starlette", "uvicorn", "python_multipart", "h11"}
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
        action="append",
        default=None,
        help="shipped model name or weights folder/.safetensors; repeat to offer several, "
        "the first is the default (default: every shipped colorizer, 'default' first)",
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
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this host name (besides --host and the loopback "
        "names; others are refused, against DNS rebinding); repeatable",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the port, load and warm the models, then serve the page until Ctrl+C."""
    try:
        from pixcolor.web.app import create_app
        from pixcolor.web.models import load_models
        from pixcolor.web.options import WebOptions
        from pixcolor.web.security import allowed_hosts
        from pixcolor.web.server import bind, build_server
    except ModuleNotFoundError as exc:
        if exc.name not in WEB_MODULES:
            raise
        raise PixcolorError(
            f"pixcolor serve needs {exc.name}, which is not installed: pip install 'pixcolor[web]'"
        ) from None

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
    options = WebOptions(
        max_upload_bytes=max_upload_bytes,
        max_pixels=args.max_pixels,
        max_queue=args.queue,
        allowed_hosts=allowed_hosts(args.host, args.allow_host),
    )
    from pixcolor.device import resolve_device

    sock = bind(args.host, args.port)  # before the models load: a taken port fails at once
    try:
        resolve_device(args.device)  # an unusable --device: one line, before any loading
        models = load_models(_model_names(args.model), device=args.device, log=logger.info)
        # uvicorn's own start-up lines and access log only with -v: "ready" below is the news.
        log_level = "info" if getattr(args, "verbose", False) else "warning"
        server = build_server(create_app(models, options), options, log_level=log_level)
        if args.host not in LOOPBACK_HOSTS:
            logger.warning(
                "listening on %s: anyone who can reach this address can use the "
                "colorizer (there is no login)",
                args.host,
            )
        host = f"[{args.host}]" if ":" in args.host else args.host
        port = sock.getsockname()[1]
        described = ", ".join(f"{m['name']} ({m['device']})" for m in models.describe())
        logger.info(
            "pixcolor: ready at http://%s:%d/ with %s (Ctrl+C stops)", host, port, described
        )
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


def _model_names(asked: list[str] | None) -> list[str]:
    """The models to offer: those asked for, else every shipped colorizer, 'default' first."""
    if asked:
        return list(dict.fromkeys(asked))
    from pixcolor.pipeline import DEFAULT_MODEL, available_models

    shipped = available_models()
    return sorted(shipped, key=lambda name: name != DEFAULT_MODEL) or [DEFAULT_MODEL]
