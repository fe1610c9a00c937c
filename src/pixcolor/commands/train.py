"""``pixcolor train``: flags map one to one onto :class:`~pixcolor.config.TrainConfig` fields.

Precedence: built-in defaults < ``--preset NAME`` (``src/pixcolor/configs/NAME.toml``; ``default`` unless
``--config`` is given) < ``--config FILE.toml`` < the run's saved config (on ``--resume``) <
flags given on the command line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pixcolor.commands._flags import add_dataclass_flags, given_fields
from pixcolor.config import PRESET_DEFAULT, TrainConfig, list_presets, load_preset, read_values
from pixcolor.errors import ConfigError

DESCRIPTION = """\
Train a colorizer. Every option below is a field of the run's config, saved as config.json
in the run folder.

Presets are named recipes, versioned TOML files in src/pixcolor/configs/:
  default  the recipe of the shipped default colorizer: a frozen ImageNet EfficientNet-Lite0
           encoder (needs the 'pretrained' extra) and a decoder that classifies ab bins, no
           GAN, 128 px crops. It is the preset used when none is named, because it colours
           best of the recipes on the model card and trains in minutes on a CPU.
  seed     the write-up's Pix2Pix: a 54M-parameter U-Net against a PatchGAN, 256 px. Much
           slower, and it colours worse; kept to reproduce the write-up.

Precedence: built-in defaults < --preset (default, unless --config is given) < --config
FILE.toml < the run's saved config (with --resume) < flags given on the command line. The
defaults shown below are the default preset's.

Checkpoints: checkpoints/last holds the full training state (to --resume); best and epoch_N
hold the generator only (to export, or to start a new run from with --init-from).
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand, one flag per config field."""
    p = sub.add_parser(
        "train",
        help="train a colorizer (presets: default, the shipped recipe; seed, the Pix2Pix GAN)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--preset",
        choices=list_presets(),
        help=f"named recipe, pixcolor/configs/NAME.toml (default: {PRESET_DEFAULT}, unless --config)",
    )
    p.add_argument(
        "--config", type=Path, help="TOML (or JSON) recipe file, over the preset if one is named"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in an --out folder that holds a run: the old run is moved aside "
        "to OUT.old-<date-time>, never deleted",
    )
    add_dataclass_flags(p, TrainConfig, defaults=load_preset(PRESET_DEFAULT).to_dict())
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Resolve the run's config from defaults, preset, file and flags."""
    flags = given_fields(args, TrainConfig)
    preset = args.preset or (None if args.config else PRESET_DEFAULT)
    config = load_preset(preset) if preset else TrainConfig()
    if args.config:
        config = config.with_values(read_values(args.config), source=str(args.config))
    out = Path(flags.get("out", config.out))
    saved = out / "config.json"
    if args.resume and saved.exists():
        config = TrainConfig.load(saved)
    config = config.replace(source="command line", **flags)
    if not config.data:
        raise ConfigError("no training data: give --data DIR (a folder, list file or cache)")
    return config


def _fresh_run_folder(config: TrainConfig, *, overwrite: bool, is_main: bool) -> None:
    """Refuse to start a new run over an existing one, or (``--overwrite``) move it aside.

    Raises:
        ConfigError: ``--out`` holds a run and neither ``--resume`` nor ``--overwrite`` was given.
    """
    from pixcolor.run_folder import RunFolder

    folder = RunFolder(config.out)
    if not folder.has_run():
        return
    if not overwrite:
        raise ConfigError(
            f"{folder.root} already holds a training run: continue it with --resume, "
            "give a new --out folder, or start over with --overwrite (moves it aside)"
        )
    if is_main:  # under torchrun, rank 0 alone moves it
        moved = folder.move_aside()
        print(f"moved the earlier run in {folder.root} to {moved}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Train, or resume, and return 0 when the run ends normally.

    Under ``torchrun`` every process runs this; rank 0 alone logs at INFO level and writes.
    After a ``torchrun --max-restarts`` restart, the run resumes from its last checkpoint.
    """
    from pixcolor.distributed import init_from_env, restart_count, shutdown
    from pixcolor.train import Trainer

    config = config_from_args(args)
    dist = init_from_env(
        device=config.device, sync_bn=config.sync_bn, timeout_s=config.dist_timeout
    )
    if not dist.is_main:
        logging.getLogger("pixcolor").setLevel(logging.WARNING)
    try:
        restarted = restart_count() > 0
        if not (args.resume or restarted):
            _fresh_run_folder(config, overwrite=args.overwrite, is_main=dist.is_main)
        trainer = Trainer(config, dist=dist)
        if args.resume or restarted:
            trainer.resume(missing_ok=restarted and not args.resume)
        trainer.fit()
    except Exception as exc:
        if dist.enabled:  # one line per failed rank before the traceback or error line
            print(
                f"pixcolor: rank {dist.rank} of {dist.world_size} stopped ({type(exc).__name__}); "
                f"when a rank fails, the others stop within --dist-timeout "
                f"({config.dist_timeout:g} s) at the latest",
                file=sys.stderr,
                flush=True,
            )
        raise
    shutdown()
    if dist.is_main:
        print(f"run folder: {config.out}")
    return 0
