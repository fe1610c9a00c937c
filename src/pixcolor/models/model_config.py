"""The ``config.json`` beside a model's weights: every field checked before anything is built.

A model config says which network to build (``arch`` and its constructor ``kwargs``) and how
to use it (``size``, the colorizer's working size; ``scale``, an SRCNN's factor). A file edited
by hand or by an attacker must not make pixcolor allocate gigabytes (``"members": 100000``),
run at a silly size (``"size": -5``) or fail with a bare ``int()`` error: :func:`validate`
checks the type and range of every field it knows and refuses unknown constructor arguments,
each error naming the file and the field. Fields it does not know at the top level (notes,
training metrics) are information only and are kept as they are.

Example:
    >>> validate({"arch": "srcnn", "kwargs": {"f1": 64}, "scale": 3}, "m/config.json")["scale"]
    3
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pixcolor.errors import ConfigError
from pixcolor.working_size import check_size

__all__ = ["GAIN_RANGES", "check_gain", "validate"]

MAX_MEMBERS = 16  # decoders of one ensemble; the shipped default has 6
MAX_CHANNELS = 1024  # widths of any layer
SCALES = (2, 8)  # SRCNN factors accepted in a config (the shipped ones are 2, 3 and 4)
# Post-hoc factors an effunet colorizer applies to its output (also the export flags' ranges):
# the annealed-mean temperature, the gain on each image's ab variation and on its mean ab.
GAIN_RANGES = {"temperature": (0.01, 1.0), "chroma_gain": (0.5, 2.0), "cast_gain": (0.0, 2.0)}

Check = Callable[[Any, str], Any]


def _int(low: int, high: int) -> Check:
    def check(value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{field} must be a whole number, got {value!r}")
        if not low <= value <= high:
            raise ConfigError(f"{field} must be in [{low}, {high}], got {value}")
        return value

    return check


def _float(low: float, high: float, *, open_high: bool = False) -> Check:
    def check(value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{field} must be a number, got {value!r}")
        if not (low <= value < high if open_high else low <= value <= high):
            bracket = ")" if open_high else "]"
            raise ConfigError(f"{field} must be in [{low:g}, {high:g}{bracket}, got {value}")
        return float(value)

    return check


def _choice(*options: Any) -> Check:
    def check(value: Any, field: str) -> Any:
        if isinstance(value, bool) or value not in options:
            raise ConfigError(f"{field} must be one of {list(options)}, got {value!r}")
        return value

    return check


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{field} must be true or false, got {value!r}")
    return value


def _shipped_name(value: Any, field: str) -> str:
    """A shipped model's name (a folder under pixcolor/weights): no path, no traversal."""
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", value):
        raise ConfigError(f"{field} must be a shipped model name, got {value!r:.40}")
    return value


def _channels(count: int) -> Check:
    width = _int(1, MAX_CHANNELS)

    def check(value: Any, field: str) -> list[int]:
        if not isinstance(value, (list, tuple)) or len(value) != count:
            raise ConfigError(f"{field} must be a list of {count} whole numbers, got {value!r}")
        return [width(v, f"{field}[{i}]") for i, v in enumerate(value)]

    return check


def _optional(check: Check) -> Check:
    return lambda value, field: None if value is None else check(value, field)


def check_gain(name: str, value: Any, field: str | None = None) -> float:
    """``value`` as a float if it is a number in ``GAIN_RANGES[name]``, else ConfigError."""
    low, high = GAIN_RANGES[name]
    return _float(low, high)(value, field or name)


_NORM = _choice("batch", "instance")
_DROPOUT = _float(0.0, 1.0, open_high=True)
_UNET = {
    "in_channels": _choice(1, 3),
    "out_channels": _choice(2),
    "base_channels": _int(1, 512),
    "num_downs": _int(5, 10),
    "norm": _NORM,
    "dropout": _DROPOUT,
}
# Constructor arguments each architecture accepts in a config, with their checks.
KWARGS: dict[str, dict[str, Check]] = {
    "seed": _UNET,
    "pix2pix": _UNET,
    "unet": {**_UNET, "variant": _choice("seed", "pix2pix")},
    "effunet": {
        "in_channels": _choice(1, 3),
        "out_channels": _choice(2),
        "decoder_channels": _channels(5),
        "head": _choice("tanh", "bins"),
        "num_bins": _int(0, 4096),
        "temperature": lambda v, f: check_gain("temperature", v, f),
        "chroma_gain": lambda v, f: check_gain("chroma_gain", v, f),
        "cast_gain": _optional(lambda v, f: check_gain("cast_gain", v, f)),
        "pretrained": _bool,
        "encoder": _choice("lite0", "lite2"),
        "norm": _NORM,
        "dropout": _DROPOUT,
        "members": _int(1, MAX_MEMBERS),
        "hints": _bool,
    },
    "srcnn": {
        "channels": _choice(1, 3),
        "variant": _choice("955", "915"),
        "f1": _int(1, MAX_CHANNELS),
        "f2": _int(1, MAX_CHANNELS),
    },
}
_COUNT = _int(0, 10**9)
MAX_EXTRA_SIZES = 4  # each one is a further pass of the network over the photo


def check_extra_sizes(value: Any, field: str = "extra_sizes") -> list[int]:
    """Further working sizes whose colours are averaged in (:mod:`pixcolor.multiscale`).

    Raises:
        ConfigError: not a list of at most ``MAX_EXTRA_SIZES`` working sizes.
    """
    if not isinstance(value, list) or len(value) > MAX_EXTRA_SIZES:
        raise ConfigError(
            f"{field} must be a list of at most {MAX_EXTRA_SIZES} sizes, got {value!r:.40}"
        )
    return [check_size(v, field) for v in value]


# Top-level fields with a meaning, and their checks (others are kept unchecked).
FIELDS: dict[str, Check] = {
    "size": lambda v, f: check_size(v, f),
    "extra_sizes": check_extra_sizes,
    "scale": _int(*SCALES),
    "epoch": _COUNT,
    "step": _COUNT,
    "epochs": _COUNT,
    "steps": _COUNT,
    "hints_model": _shipped_name,  # the shipped model that takes over when hints are given
}


def validate(config: Any, file: str | Path) -> dict[str, Any]:
    """Check a parsed ``config.json``; return it with ``kwargs`` as checked.

    Args:
        config: the parsed JSON.
        file: the file it came from, for messages.

    Returns:
        A new dict: ``arch``, ``kwargs`` (``pretrained`` dropped: the weights follow) and the
        other fields.

    Raises:
        ConfigError: ``"<file>: <field> must be ..., got ..."`` for the first bad field, an
            unknown ``arch`` or an unknown constructor argument.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"{file}: a model config must be a JSON object, got {config!r:.40}")
    arch = config.get("arch")
    if arch not in KWARGS:
        raise ConfigError(f"{file}: arch must be one of {sorted(KWARGS)}, got {arch!r:.40}")
    kwargs = config.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"{file}: kwargs must be a JSON object, got {kwargs!r:.40}")
    checks = KWARGS[arch]
    checked: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key not in checks:
            raise ConfigError(
                f"{file}: kwargs.{key} is not an argument of {arch} (known: {', '.join(checks)})"
            )
        checked[key] = _in_file(file, checks[key], value, f"kwargs.{key}")
    checked.pop("pretrained", None)
    out = {**config, "arch": arch, "kwargs": checked}
    for key, check in FIELDS.items():
        if key in config:
            out[key] = _in_file(file, check, config[key], key)
    return out


def _in_file(file: str | Path, check: Check, value: Any, field: str) -> Any:
    """``check(value, field)``, with the file named in the error."""
    try:
        return check(value, field)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
