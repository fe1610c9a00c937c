"""Training configuration: one frozen dataclass, validated, saved with every run and checkpoint.

The CLI builds a :class:`TrainConfig` from flags over an optional TOML file; the trainer
reads nothing else. ``TrainConfig.from_dict`` refuses unknown keys, wrong types and
out-of-range values with a :class:`~pixcolor.errors.ConfigError`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pixcolor.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

Precision = Literal["auto", "bf16", "fp16", "fp32"]


def option(default: Any, help: str) -> Any:
    """A dataclass field whose metadata holds its one-line ``--help`` text.

    Mutable defaults (a dict) are copied for every instance.
    """
    if isinstance(default, dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. Defaults follow the seed write-up (``pixcolor
    train`` starts from the ``default`` preset instead: see :func:`load_preset`)."""

    # --- data ---
    data: str = option("", "training images: folder, .txt file list, or prepared cache folder")
    val: str | None = option(None, "validation images (same kinds); none = no validation")
    out: str = option("runs/default", "run folder: checkpoints, metrics.jsonl, grids, curves")
    size: int = option(256, "working size: images are resized to size x size (seed: 256, bicubic)")
    load_size: int | None = option(
        None, "decode size before augmentation (none = size); crops use it"
    )
    limit: int | None = option(None, "use only the first N training images (quick trials)")
    val_limit: int | None = option(None, "use only the first N validation images")
    augment: Literal["flip", "crop"] = option(
        "flip", "flip: horizontal flips; crop: random resized crops + flips"
    )
    crop_min_scale: float = option(0.35, "smallest crop area fraction for --augment crop")
    num_workers: int | None = option(None, "data loader workers; none = automatic")
    # --- model ---
    generator: str = option("seed", "registered generator name (pixcolor.models.list_generators())")
    generator_kwargs: dict[str, Any] = option(  # noqa: RUF009 (option() is a field())
        {}, 'generator constructor arguments, JSON (e.g. {"head": "bins"})'
    )
    discriminator: str = option("patchgan", "registered discriminator name")
    discriminator_kwargs: dict[str, Any] = option(  # noqa: RUF009 (option() is a field())
        {}, "discriminator constructor arguments, JSON"
    )
    pretrained_encoder: bool = option(
        False, "load ImageNet weights into the encoder (effunet only)"
    )
    freeze_encoder: bool = option(
        False, "train the decoder only; encoder weights and BN stats fixed"
    )
    # --- loss ---
    gan_mode: Literal["vanilla", "lsgan", "none"] = option(
        "vanilla", "adversarial loss; none trains G without a discriminator"
    )
    lambda_l1: float = option(100.0, "weight of the L1 term (pix2pix: 100)")
    lambda_gan: float = option(1.0, "weight of the generator's GAN term")
    lambda_bins: float = option(
        1.0, "weight of the ab-bin classification loss (bin-head generators only)"
    )
    bins_rebalance: float = option(
        0.5, "Zhang's lambda: mix of prior and uniform; 1 = no rebalancing"
    )
    lambda_spread: float = option(
        0.0, "weight of |colour spread(output) - spread(truth)| per image"
    )
    lambda_cast: float = option(
        0.0, "weight of the distance between each output's mean ab and its truth's"
    )
    teacher: str | None = option(
        None, "distil: a bins colorizer whose mean bin distribution is the target"
    )
    pretrain_epochs: int = option(0, "L1-only generator epochs before the GAN stage (NoGAN)")
    init_from: str | None = option(
        None,
        "start from the generator weights of this checkpoint (best, epoch_N, an exported "
        "folder) with a new optimizer and schedule, e.g. stage 2 of a two-stage recipe",
    )
    # --- optimisation ---
    epochs: int = option(20, "total epochs (resume continues up to this number)")
    batch_size: int = option(16, "images per step (per process)")
    lr_g: float = option(2e-4, "Adam learning rate of the generator (pix2pix)")
    lr_d: float = option(2e-4, "Adam learning rate of the discriminator")
    beta1: float = option(0.5, "Adam beta1 (pix2pix)")
    beta2: float = option(0.999, "Adam beta2")
    decay_epochs: int = option(0, "lr constant, then linear decay to 0 over the last N epochs")
    grad_accum: int = option(
        1, "gradient accumulation steps (global batch = batch x accum x world)"
    )
    # --- speed ---
    device: str | None = option(None, "cuda, mps or cpu; none = the best available")
    precision: Precision = option(  # noqa: RUF009 (option() is a field())
        "auto", "auto: bf16 where fast (AMX/AVX512-BF16, CUDA), fp16 on old GPUs"
    )
    channels_last: bool = option(True, "NHWC memory format (faster convolutions on CPU and GPU)")
    compile: bool = option(False, "torch.compile the networks")
    sync_bn: bool = option(False, "SyncBatchNorm under DDP (torchrun on CUDA); see the README")
    dist_timeout: float = option(
        600.0, "seconds a collective waits before a DDP job fails (torchrun)"
    )
    # --- bookkeeping ---
    seed: int = option(0, "seeds weights, data order and augmentation")
    keep_last: int = option(3, "keep the checkpoints of the last N epochs (plus last and best)")
    val_every: int = option(1, "validate every N epochs")
    grid_images: int = option(6, "fixed validation images shown in the PNG grid")
    log_every: int = option(10, "steps between JSONL log lines")

    def __post_init__(self) -> None:
        checks = [
            (self.size >= 16 and self.size % 16 == 0, "size must be a multiple of 16, >= 16"),
            (self.load_size is None or self.load_size >= 16, "load_size must be >= 16"),
            (self.limit is None or self.limit > 0, "limit must be positive"),
            (self.val_limit is None or self.val_limit > 0, "val_limit must be positive"),
            (0.01 <= self.crop_min_scale <= 1.0, "crop_min_scale must be in [0.01, 1]"),
            (self.num_workers is None or self.num_workers >= 0, "num_workers must be >= 0"),
            (self.lambda_l1 >= 0 and self.lambda_gan >= 0, "loss weights must be >= 0"),
            (self.lambda_bins >= 0, "lambda_bins must be >= 0"),
            (self.lambda_spread >= 0, "lambda_spread must be >= 0"),
            (self.lambda_cast >= 0, "lambda_cast must be >= 0"),
            (0.0 <= self.bins_rebalance <= 1.0, "bins_rebalance must be in [0, 1]"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (
                0 <= self.pretrain_epochs <= self.epochs,
                f"pretrain_epochs ({self.pretrain_epochs}) must be in [0, epochs "
                f"({self.epochs})]; with fewer --epochs, give --pretrain-epochs too",
            ),
            (
                0 <= self.decay_epochs <= self.epochs,
                f"decay_epochs ({self.decay_epochs}) must be in [0, epochs ({self.epochs})]; "
                "with fewer --epochs, give --decay-epochs too",
            ),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (0 < self.lr_g < 1 and 0 < self.lr_d < 1, "learning rates must be in (0, 1)"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "Adam betas must be in [0, 1)"),
            (self.keep_last >= 0, "keep_last must be >= 0"),
            (self.val_every >= 1 and self.log_every >= 1, "val_every/log_every must be >= 1"),
            (self.grid_images >= 0, "grid_images must be >= 0"),
            (0 <= self.seed < 2**32, "seed must be in [0, 2**32)"),
            (0 < self.dist_timeout < math.inf, "dist_timeout must be positive and finite"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid config: {message}")

    # --- (de)serialisation ---
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Build a config from a dict, refusing unknown keys and wrong types.

        Args:
            values: field name -> value.
            source: where the values came from, for error messages.
        """
        return cls().with_values(values, source=source)

    def replace(self, *, source: str = "config", **changes: Any) -> TrainConfig:
        """Return a copy with ``changes`` applied after type checks."""
        return self._apply(changes, source)

    def with_values(self, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Return a copy with a table of ``values`` (e.g. a recipe file's) applied, checked."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: a config must be a table of keys")
        return self._apply(values, source)

    def _apply(self, changes: dict[Any, Any], source: str) -> TrainConfig:
        hints = typing.get_type_hints(type(self))
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted((k for k in changes if k not in names), key=str)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; valid keys: {sorted(names)}")
        clean = {key: _check_type(key, value, hints[key], source) for key, value in changes.items()}
        return dataclasses.replace(self, **clean)

    def save(self, path: str | Path) -> None:
        """Write the config as JSON, atomically."""
        from pixcolor.checkpoint import atomic_write_bytes

        atomic_write_bytes(Path(path), json.dumps(self.to_dict(), indent=2).encode())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a config from ``.json`` or ``.toml`` (keys not in the file keep their defaults)."""
        return cls.from_dict(read_values(path), source=str(path))


def read_values(path: str | Path) -> dict[str, Any]:
    """The table of keys in a ``.json`` or ``.toml`` config file (not yet checked).

    Raises:
        ConfigError: the file cannot be read or parsed, or is not a table.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        values = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
    except (OSError, ValueError, RecursionError, tomllib.TOMLDecodeError) as exc:
        # RecursionError: absurdly deep nesting ("a = [[[[...").
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a table of keys")
    return values


PRESET_DEFAULT = "default"


def presets_dir() -> Path:
    """The folder of the named recipes, ``pixcolor/configs/`` (package data, so wheels carry it)."""
    return Path(__file__).resolve().parent / "configs"


def list_presets() -> list[str]:
    """Names of the recipes ``pixcolor train --preset`` knows (``pixcolor/configs/*.toml``), sorted."""
    return sorted(p.stem for p in presets_dir().glob("*.toml"))


def load_preset(name: str) -> TrainConfig:
    """The config of the named recipe ``pixcolor/configs/<name>.toml`` over the built-in defaults.

    Raises:
        ConfigError: no such preset, or a bad value in it.
    """
    path = presets_dir() / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(list_presets())}")
    return TrainConfig.load(path)


def _check_type(key: str, value: Any, hint: Any, source: str) -> Any:
    """Return ``value`` (ints widened to float where a float is expected) or raise ConfigError."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(
                f"{source}: {key} must be one of {typing.get_args(hint)}, not {value!r}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(key, value, arg, source)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: {key} has the wrong type ({type(value).__name__})")
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{source}: {key} must be a table with string keys")
        try:  # it is saved with the run as JSON (TOML dates, NaN, ... could not be)
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ConfigError(f"{source}: {key} must hold plain JSON values ({exc})") from None
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{source}: {key} must be an integer, not a boolean")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(
            f"{source}: {key} must be {hint.__name__}, not {type(value).__name__} ({value!r})"
        )
    return value
