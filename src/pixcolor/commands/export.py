"""``pixcolor export CHECKPOINT -o DIR``: a release folder (model.safetensors + config.json).

Takes a training checkpoint folder (or any model folder), optionally stores the weights in
fp16 (half the size; inference casts back to fp32), and sets the default working size and,
for ab-bin models, the annealed-mean temperature (and for effunet colorizers a chroma gain, and
a gain on each image's mean colour, its cast).

``pixcolor export CK1 CK2 ... -o DIR`` joins effunet colorizers trained on one frozen encoder
(``--freeze-encoder``) into one ensemble model that averages their ab (``members=N``).

``pixcolor export MODEL --onnx -o FILE.onnx`` writes an ONNX file instead (colorizers and
SRCNN; needs the ``onnx`` extra), checked against PyTorch with onnxruntime before it is written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = sub.add_parser("export", help="turn a checkpoint into a release model folder")
    p.add_argument(
        "checkpoint",
        nargs="+",
        help="checkpoint or model folder, or a shipped model name; several effunet colorizers "
        "on one frozen encoder are joined into an ensemble",
    )
    p.add_argument("-o", "--out", type=Path, required=True, help="release folder")
    p.add_argument("--fp16", action="store_true", help="store weights as float16")
    p.add_argument("--size", type=int, default=None, help="default working size")
    p.add_argument(
        "--extra-sizes",
        type=int,
        nargs="*",
        default=None,
        metavar="N",
        help="further working sizes whose colours are averaged with --size's where the size is "
        "left to the model (config.json extra_sizes; bare: none)",
    )
    p.add_argument("--temperature", type=float, default=None, help="annealed-mean T (bins)")
    p.add_argument(
        "--chroma-gain", type=float, default=None, help="factor on predicted ab (effunet)"
    )
    p.add_argument(
        "--cast-gain",
        type=float,
        default=None,
        help="factor on each image's mean predicted ab; --chroma-gain then scales the "
        "variation around it (effunet)",
    )
    p.add_argument("--note", default=None, help="free text stored in config.json")
    p.add_argument(
        "--hints-model",
        default=None,
        metavar="NAME",
        help="the shipped model that takes over when colour hints are given (config.json "
        "hints_model), e.g. hints",
    )
    p.add_argument(
        "--onnx",
        action="store_true",
        help="write an ONNX file (-o FILE.onnx) with dynamic batch and size; needs pixcolor[onnx]",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load, adjust and save the model."""
    if args.onnx:
        return _run_onnx(args)
    import torch

    from pixcolor.checkpoint import save_model
    from pixcolor.models.hub import load_network

    loaded = [
        load_network(
            c,
            temperature=args.temperature,
            chroma_gain=args.chroma_gain,
            cast_gain=args.cast_gain,
        )
        for c in args.checkpoint
    ]
    model, config = loaded[0]
    if len(loaded) > 1:
        model, config = _ensemble(args.checkpoint, loaded)
    kwargs = config["kwargs"]
    extra = {k: v for k, v in config.items() if k not in ("arch", "kwargs")}
    if args.size is not None:
        from pixcolor.working_size import check_size

        extra["size"] = check_size(args.size, "--size")
    if args.extra_sizes is not None:
        from pixcolor.models.model_config import check_extra_sizes

        extra["extra_sizes"] = check_extra_sizes(args.extra_sizes, "--extra-sizes")
    if args.note:
        extra["note"] = args.note
    if args.hints_model is not None:
        extra["hints_model"] = _hints_model(args.hints_model)
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


def _hints_model(name: str) -> str:
    """``name`` if it is a shipped colorizer that takes hints, else PixcolorError."""
    from pixcolor.errors import PixcolorError
    from pixcolor.models.hub import read_config, resolve, shipped

    if name not in shipped():
        raise PixcolorError(f"--hints-model {name!r}: no shipped colorizer of that name")
    if not read_config(resolve(name))[1]["kwargs"].get("hints"):
        raise PixcolorError(f"--hints-model {name!r}: that model takes no colour hints")
    return name


def _ensemble(
    names: list[str], loaded: list[tuple[torch.nn.Module, dict]]
) -> tuple[torch.nn.Module, dict]:
    """Join single effunet colorizers with equal configs into one ``members=N`` model."""
    from pixcolor.errors import PixcolorError
    from pixcolor.models.ensemble import assemble

    first = loaded[0][1]
    for name, (_, config) in zip(names, loaded, strict=True):
        if config["arch"] != "effunet":
            raise PixcolorError(f"{name}: only effunet colorizers can be joined")
        if config["kwargs"] != first["kwargs"]:
            raise PixcolorError(f"{name}: its model config differs from {names[0]}'s")
    model = assemble([m for m, _ in loaded], first["kwargs"], names=names)
    kwargs = {**first["kwargs"], "members": len(loaded)}
    return model, {**first, "kwargs": kwargs}


def _run_onnx(args: argparse.Namespace) -> int:
    """``--onnx``: export, check against PyTorch, report."""
    from pixcolor.errors import PixcolorError
    from pixcolor.onnx_export import export_onnx

    if len(args.checkpoint) > 1:
        raise PixcolorError("--onnx takes one model: join an ensemble into a folder first")
    args.checkpoint = args.checkpoint[0]

    if args.fp16 or args.note or args.hints_model:
        raise PixcolorError(
            "--fp16, --note and --hints-model apply to release folders, not to --onnx"
        )
    if args.out.suffix != ".onnx":
        raise PixcolorError(f"{args.out}: with --onnx, -o names the .onnx file to write")
    result = export_onnx(
        args.checkpoint,
        args.out,
        size=args.size,
        temperature=args.temperature,
        chroma_gain=args.chroma_gain,
        cast_gain=args.cast_gain,
    )
    size_mb = result.path.stat().st_size / 1e6
    print(
        f"wrote {result.path} ({size_mb:.1f} MB, {result.kind}): input {result.input_name} "
        f"(B,1,H,W), output {result.output_name}; H, W multiples of {result.stride}; "
        f"onnxruntime matches PyTorch to {result.max_abs_diff:.1e}"
    )
    return 0
