"""The one loader: model names, folders and files to networks with their weights.

Every network pixcolor loads goes through here: colorizers (``pixcolor colorize``, the web
page, ``pixcolor evaluate``), SRCNN upscalers (``pixcolor upscale``, ``colorize --upscale``),
``pixcolor export``, a colorizer ``--teacher`` and SRCNN ``--init`` in training. A model is

- ``None``: the shipped default of its kind (``default``; ``srcnn-x{scale}`` for upscalers);
- a shipped name: a folder under ``pixcolor/weights`` (:func:`shipped`);
- anything else, a path: a folder holding ``model.safetensors`` and ``config.json`` (a release
  or a training checkpoint), or a ``.safetensors`` file with its ``.json`` beside it.

Only safetensors weights are read (no pickle ever runs), the config is checked field by field
(:func:`pixcolor.models.model_config.validate`), and weights that do not fit the architecture
fail in one line.

Example:
    >>> net, config = load_network("fast")  # doctest: +SKIP
    >>> config["arch"], config["size"]  # doctest: +SKIP
    ('effunet', 224)
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

from safetensors.torch import load_file
from torch import Tensor, nn

from pixcolor.errors import CheckpointError, ConfigError, PixcolorError
from pixcolor.models import create_generator, create_srcnn
from pixcolor.models.model_config import check_gain, validate

__all__ = [
    "WEIGHTS_DIR",
    "display_name",
    "load_network",
    "load_weights",
    "read_config",
    "resolve",
    "shipped",
]

Kind = Literal["colorizer", "upscaler"]
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"  # shipped: one folder a model
MODEL_FILE = "model.safetensors"
MODEL_CONFIG = "config.json"
DEFAULT_COLORIZER = "default"
UPSCALER_PREFIX = "srcnn-x"  # shipped upscalers: srcnn-x2, srcnn-x3, srcnn-x4


def kind_of(arch: str) -> Kind:
    """``"upscaler"`` for SRCNN, ``"colorizer"`` for every generator architecture."""
    return "upscaler" if arch == "srcnn" else "colorizer"


def shipped(kind: Kind = "colorizer") -> list[str]:
    """Names of the models of ``kind`` shipped inside the package, sorted."""
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(
        p.name
        for p in WEIGHTS_DIR.iterdir()
        if (p / MODEL_FILE).is_file() and p.name.startswith(UPSCALER_PREFIX) == (kind == "upscaler")
    )


def display_name(name_or_path: str | Path, taken: Collection[str] = ()) -> str:
    """A model's name in tables and menus, unique among ``taken``: a shipped name as it is, a
    folder or file by its last part (``runs/a/best`` -> ``best``); if that is taken, the path as
    given; if that is too, numbered (``best (2)``)."""
    parts = [p for p in str(name_or_path).replace("\\", "/").split("/") if p]
    name = parts[-1] if parts and parts[-1] not in taken else str(name_or_path)
    label, n = name, 2
    while label in taken:
        label, n = f"{name} ({n})", n + 1
    return label


def resolve(name_or_path: str | Path | None, kind: Kind = "colorizer", *, scale: int = 2) -> Path:
    """The folder or file of a model: ``None`` (the default), a shipped name or a path.

    Args:
        name_or_path: see the module docstring.
        kind: which default ``None`` means, and which names the error lists.
        scale: the upscaler default's factor (``srcnn-x{scale}``).

    Raises:
        PixcolorError: no such shipped model, folder or file (the message lists the shipped
            names of ``kind``).
    """
    if name_or_path is None:
        name_or_path = DEFAULT_COLORIZER if kind == "colorizer" else f"{UPSCALER_PREFIX}{scale}"
    text = str(name_or_path)
    folder = WEIGHTS_DIR / text
    if text and "/" not in text and "\\" not in text and (folder / MODEL_FILE).is_file():
        return folder
    path = Path(name_or_path)
    if not text or not path.exists():
        names = ", ".join(shipped(kind)) or "none"
        raise PixcolorError(f"{text or '(empty)'}: no such model folder, file or shipped {kind} "
                            f"(shipped: {names})")  # fmt: skip
    return path


def read_config(path: Path) -> tuple[Path, dict[str, Any]]:
    """The weights file and the checked config of a model folder or ``.safetensors`` file.

    Raises:
        CheckpointError: no weights file, weights that are not safetensors, or an unreadable
            config; ConfigError: a config field of the wrong type or out of range.
    """
    if path.is_dir():
        weights, config_file = path / MODEL_FILE, path / MODEL_CONFIG
    else:
        weights = path
        config_file = path.with_suffix(".json")
        if not config_file.exists():
            config_file = path.parent / MODEL_CONFIG
    if not weights.is_file():
        raise CheckpointError(f"{path}: no weights file ({weights.name}) found")
    if weights.suffix != ".safetensors":
        raise CheckpointError(f"{weights}: only .safetensors weights are loaded (no pickles)")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise CheckpointError(f"{config_file}: cannot read model config ({reason})") from None
    return weights, validate(config, config_file)


def load_weights(model: nn.Module, weights: Path) -> nn.Module:
    """Load a safetensors file into ``model`` (every key, cast to the model's dtypes).

    Raises:
        CheckpointError: unreadable or corrupt file, or weights that do not fit the model, in
            one line: how many keys are missing, unexpected or mis-shaped, and the first one.
    """
    try:
        state = load_file(str(weights))
    except Exception as exc:  # SafetensorError (its name varies by version), OSError, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{weights}: corrupt or unreadable weights ({reason})") from None
    own = model.state_dict()
    problem = mismatch(own, state)
    if problem:
        raise CheckpointError(
            f"{weights}: weights do not fit the {type(model).__name__} its config describes "
            f"({problem})"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
    return model


def mismatch(own: dict[str, Tensor], state: dict[str, Tensor]) -> str | None:
    """How a state dict fails to fit a model's, in a few words (``None`` if it fits): the
    number of missing, unexpected and mis-shaped keys and the first of them."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [k for k in own if k in state and state[k].shape != own[k].shape]
    if not (missing or unexpected or misshaped):
        return None
    counts = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(misshaped)} mis-shaped"
    if misshaped:
        key = misshaped[0]
        first = f"{key}: {tuple(state[key].shape)} in the file, {tuple(own[key].shape)} here"
    else:
        first = f"{(missing or unexpected)[0]} {'missing' if missing else 'unexpected'}"
    return f"{counts} keys; first: {first}"


def build(config: dict[str, Any], file: Path) -> nn.Module:
    """The network a checked config describes, with fresh weights.

    Raises:
        ConfigError: arguments the constructor refuses (naming ``file``).
    """
    try:
        if config["arch"] == "srcnn":
            return create_srcnn(**config["kwargs"])
        return create_generator(config["arch"], **config["kwargs"])
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{file}: bad model config ({exc})") from None


def load_network(
    name_or_path: str | Path | None = None,
    kind: Kind | None = None,
    *,
    scale: int = 2,
    **gains: float | None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load any network: the fp32 module on the CPU in eval mode, and its checked config.

    Args:
        name_or_path: ``None`` (the default of ``kind``), a shipped name, or a model folder or
            ``.safetensors`` file.
        kind: ``"colorizer"`` or ``"upscaler"`` to insist on one (``None``: either; a ``None``
            name then means the default colorizer).
        scale: the shipped upscaler for ``name_or_path=None``.
        **gains: new ``temperature``, ``chroma_gain`` or ``cast_gain`` for an effunet colorizer
            (``None`` keeps the model's), each within
            :data:`~pixcolor.models.model_config.GAIN_RANGES`.

    Returns:
        ``(network, config)``; ``config["kwargs"]`` holds the arguments it was built with.

    Raises:
        PixcolorError: no such model, or a gain the model lacks or out of range.
        CheckpointError: a model of the other kind, or bad weights; ConfigError: a bad config.
    """
    path = resolve(name_or_path, kind or "colorizer", scale=scale)
    weights, config = read_config(path)
    found = kind_of(config["arch"])
    if kind is not None and found != kind:
        article = {"colorizer": "a colorizer", "upscaler": "an upscaler"}
        raise CheckpointError(f"{path}: {article[found]} ({config['arch']}), not {article[kind]}")
    config["kwargs"].update(_gains(config, gains))
    network = build(config, weights)
    load_weights(network, weights)
    return network.float().eval(), config


def _gains(config: dict[str, Any], gains: dict[str, float | None]) -> dict[str, float]:
    """Checked new values of the post-hoc gains asked for (flags named as on the CLI)."""
    out = {}
    for name, value in gains.items():
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if name not in ("temperature", "chroma_gain", "cast_gain"):
            raise TypeError(f"load_network() got an unexpected keyword argument {name!r}")
        if name == "temperature" and config["kwargs"].get("head") != "bins":
            raise PixcolorError(f"{flag} applies to ab-bin models only (head='bins')")
        if config["arch"] != "effunet":
            raise PixcolorError(f"{flag} applies to effunet colorizers only")
        out[name] = check_gain(name, value, flag)
    return out
