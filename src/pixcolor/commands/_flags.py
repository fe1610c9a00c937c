"""Command-line flags generated from a frozen config dataclass, one flag per field.

Each field's ``--help`` text is in its metadata (``config.option(default, help)``), so the
dataclass stays the single statement of every option (``TrainConfig``, ``SRTrainConfig``) and
``--help`` works in an install without source files.
"""

from __future__ import annotations

import argparse
import json
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from typing import Any


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"base_channels\": 32}'")
    return value


def _optional(kind: type):
    def parse(text: str):
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def field_default(f: Field) -> Any:
    """The default value of a dataclass field (calling its factory)."""
    return f.default_factory() if f.default_factory is not MISSING else f.default


def show_value(value: Any) -> str:
    """A config value as a user types it on the command line."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _help(f: Field, default: Any) -> str:
    text = str(f.metadata.get("help", "")).replace("``", "")
    if default != "":  # an empty default (--data) is required, not a default
        text += f" (default: {show_value(default)})"
    return text.replace("%", "%%")


def add_dataclass_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Add ``--field-name`` for every field of ``cls`` (when not given: absent, ``SUPPRESS``).

    bool fields get ``--x/--no-x``, Literal fields ``choices``, dict fields a JSON object,
    ``X | None`` fields accept ``none``. The help text is the field's ``help`` metadata and
    its default, or the value in ``defaults`` (e.g. a preset's) where it has one.
    """
    hints = typing.get_type_hints(cls)
    shown = dict(defaults or {})
    for f in fields(cls):
        hint = hints[f.name]
        default = shown.get(f.name, field_default(f))
        kw: dict[str, Any] = {
            "dest": f.name,
            "default": argparse.SUPPRESS,
            "help": _help(f, default),
        }
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if hint is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif origin is typing.Literal:
            kw["choices"] = args
        elif origin is dict:
            kw.update(type=_json_dict, metavar="JSON")
        elif type(None) in args:  # X | None
            inner = next(a for a in args if a is not type(None))
            kw.update(type=_optional(inner), metavar=inner.__name__.upper())
        else:
            kw.update(type=hint, metavar=hint.__name__.upper())
        parser.add_argument("--" + f.name.replace("_", "-"), **kw)


def given_fields(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The flags of ``cls``'s fields that were given on the command line."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


def add_size_flag(p: argparse.ArgumentParser) -> None:
    """``--size N``: one working size instead of the model's own (and its extra sizes)."""
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="one working size (default: the model's, with its extra sizes averaged in)",
    )
