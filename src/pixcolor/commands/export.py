"""``pixcolor export CHECKPOINT -o DIR``: a release folder (model.safetensors + config.json).

Takes a training checkpoint folder (or any model folder), optionally stores the weights in
fp16 (half the size; inference casts back to fp32), and sets the default working size and,
for ab-bin models, the annealed-mean temperature.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = sub.add_parser("export", help="turn a checkpoint into a release model folder")
    p.add_argument("checkpoint", type=Path, help="checkpoint or model folder")
    p.add_argument("-o", "--out", type=Path, required=True, help="release folder")
    p.add_argument("--fp16", action="store_true", help="store weights as float16")
    p.add_argument("--size", type=int, default=None, help="default working size")
    p.add_argument("--temperature", type=float, default=None, help="annealed-mean T (bins)")
    p.add_argument("--note", default=None, help="free text stored in config.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load, adjust and save the model."""
    from pixcolor.checkpoint import load_into, read_model_config, save_model
    from pixcolor.errors import PixcolorError
    from pixcolor.models import create_generator

    weights, config = read_model_config(args.checkpoint)
    kwargs = dict(config.get("kwargs", {}))
    if args.temperature is not None:
        if kwargs.get("head") != "bins":
            raise PixcolorError("--temperature applies to ab-bin models only (head='bins')")
        if not 0.01 <= args.temperature <= 1.0:
            raise PixcolorError("--temperature must be in [0.01, 1]")
        kwargs["temperature"] = args.temperature
    model = load_into(create_generator(config["arch"], **kwargs), weights)
    extra = {k: v for k, v in config.items() if k not in ("arch", "kwargs")}
    if args.size is not None:
        extra["size"] = args.size
    if args.note:
        extra["note"] = args.note
    save_model(
        model,
        args.out,
        config["arch"],
        kwargs,
        dtype=torch.float16 if args.fp16 else None,
        extra=extra,
    )
    size_mb = (args.out / "model.safetensors").stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.1f} MB): {json.dumps({'arch': config['arch'], **kwargs})}")
    return 0
