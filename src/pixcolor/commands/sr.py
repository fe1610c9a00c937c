"""``pixcolor upscale``, ``train-sr`` and ``evaluate-sr``: SRCNN super-resolution.

``train-sr`` flags map one to one onto :class:`~pixcolor.sr_train.SRTrainConfig` fields;
precedence: defaults < the run's saved config (on ``--resume``) < flags given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pixcolor.batch import output_dir_arg
from pixcolor.errors import PixcolorError

ENSEMBLE_HELP = "average SRCNN over 8 flips/rotations (8x slower; +0.17 dB on Set5 x3)"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``upscale``, ``train-sr`` and ``evaluate-sr`` subcommands."""
    up = sub.add_parser("upscale", help="enlarge images 2-4x with SRCNN (Y) + bicubic (colour)")
    up.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    up.add_argument(
        "-o", "--out", type=output_dir_arg, required=True, help="output folder (mirrors inputs)"
    )
    up.add_argument("--scale", type=int, choices=(2, 3, 4), default=2, help="factor (2)")
    up.add_argument("--model", type=Path, help="weights folder or .safetensors (default: shipped)")
    up.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    up.add_argument("--format", choices=("png", "jpg"), default="png", help="output format (png)")
    up.add_argument("--device", default=None, help="cuda / mps / cpu (default: best available)")
    up.add_argument("--self-ensemble", action="store_true", help=ENSEMBLE_HELP)
    up.set_defaults(func=run_upscale)

    ev = sub.add_parser("evaluate-sr", help="Set5-style PSNR table: bicubic vs SRCNN (paper)")
    ev.add_argument("data", help="folder (or glob) of high-resolution test images")
    ev.add_argument("--scale", type=int, default=3, help="factor (3)")
    ev.add_argument("--model", type=Path, help="weights (default: shipped; else bicubic only)")
    ev.add_argument("--device", default=None, help="cuda / mps / cpu (default: best available)")
    ev.add_argument("--self-ensemble", action="store_true", help=ENSEMBLE_HELP)
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    ev.set_defaults(func=run_evaluate)

    _register_train(sub)


# --- upscale ---------------------------------------------------------------------------------


def run_upscale(args: argparse.Namespace) -> int:
    """Upscale every input into ``--out``; 1 when any input failed, else 0."""
    from pixcolor.batch import check_folders, notice_if_slow, run_batch

    check_folders(args.inputs, args.out)
    with notice_if_slow(f"loading the SRCNN x{args.scale} upscaler ..."):
        from pixcolor.sr import load_upscaler

        upscaler = load_upscaler(args.model, scale=args.scale, device=args.device)
    result = run_batch(
        args.inputs,
        args.out,
        lambda item: upscaler.upscale(item.path, args.scale, self_ensemble=args.self_ensemble),
        fmt=args.format,
        overwrite=args.overwrite,
        verb="upscaled",
        skipped_note="already there",
    )
    return result.exit_code


# --- evaluate-sr -----------------------------------------------------------------------------


def run_evaluate(args: argparse.Namespace) -> int:
    """Print the paper-protocol table (per image and mean)."""
    from pixcolor.files import collect_inputs
    from pixcolor.models import hub
    from pixcolor.sr import load_upscaler
    from pixcolor.sr_eval import evaluate_sr

    files, problems = collect_inputs([args.data])
    if not files:
        raise PixcolorError(f"{args.data}: {problems[0][1] if problems else 'no images'}")
    model = None
    if args.model is not None or f"srcnn-x{args.scale}" in hub.shipped("upscaler"):
        model = load_upscaler(args.model, scale=args.scale, device=args.device).model
    else:
        print(
            f"note: no shipped SRCNN x{args.scale} weights and no --model: bicubic only",
            file=sys.stderr,
        )
    paths = [f.path for f in files]
    result = evaluate_sr(paths, args.scale, model, self_ensemble=args.self_ensemble)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.data} x{args.scale}: PSNR (dB) on Y, 8-bit, {args.scale}-pixel border shaved")
    width = max(12, *(len(r["name"]) for r in result["images"]))

    def cell(value: float | None) -> str:
        return f"{value:>8.2f}" if value is not None else f"{'-':>8}"

    label = "SRCNN x8" if args.self_ensemble else "SRCNN"  # x8: the self-ensemble
    print(f"{'image':<{width}} {'bicubic':>8} {label:>8}")
    for row in result["images"]:
        print(f"{row['name']:<{width}} {cell(row['bicubic'])} {cell(row['srcnn'])}")
    print(f"{'mean':<{width}} {cell(result['bicubic'])} {cell(result['srcnn'])}")
    return 0


# --- train-sr --------------------------------------------------------------------------------


def _register_train(sub: argparse._SubParsersAction) -> None:
    from pixcolor.commands._flags import add_dataclass_flags
    from pixcolor.sr_config import SRTrainConfig

    p = sub.add_parser(
        "train-sr",
        help="train SRCNN on T91-style images (Set5 validation)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    add_dataclass_flags(p, SRTrainConfig)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Train (or resume) an SRCNN run and export its weights."""
    from pixcolor.commands._flags import given_fields
    from pixcolor.sr_config import SRTrainConfig
    from pixcolor.sr_train import SRTrainer

    flags = given_fields(args, SRTrainConfig)
    config = SRTrainConfig()
    saved = Path(flags.get("out", config.out)) / "train_config.json"
    if args.resume and saved.exists():
        config = SRTrainConfig.load(saved)
    config = config.replace(**flags)
    if not config.data:
        raise PixcolorError("no training data: give --data DIR (e.g. the T91 folder)")
    trainer = SRTrainer(config)
    if args.resume:
        trainer.resume()
    metrics = trainer.fit()
    if trainer.epoch < config.epochs:  # Ctrl-C: checkpoints/last holds the run
        print(f"stopped in epoch {trainer.epoch + 1}; continue with --resume --out {config.out}")
        return 0
    if metrics:
        print(
            f"x{config.scale}: val PSNR {metrics['val_psnr']:.3f} dB "
            f"(bicubic {metrics['val_psnr_bicubic']:.3f})"
        )
    print(f"run folder: {config.out}; weights: {config.export or Path(config.out) / 'export'}")
    return 0
