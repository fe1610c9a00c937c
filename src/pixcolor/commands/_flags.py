"""Command-line flags generated from a frozen config dataclass, one flag per field.

The comment beside each field in the dataclass source is the flag's ``--help`` text, so the
dataclass stays the single statement of every option (``TrainConfig``, ``SRTrainConfig``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import typing
from dataclasses import fields
from typing import Any

FIELD_COMMENT = re.compile(r"^\s+(\w+): .*?#\s*(.+)$")


def field_help(cls: type) -> dict[str, str]:
    """Field name -> the one-line comment beside it in ``cls``'s source."""
    return {
        m[1]: m[2]
        for line in inspect.getsource(cls).splitlines()
        if (m := FIELD_COMMENT.match(line))
    }


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


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add ``--field-name`` for every field of ``cls`` (default: not given, ``SUPPRESS``).

    bool fields get ``--x/--no-x``, Literal fields ``choices``, dict fields a JSON object,
    ``X | None`` fields accept ``none``.
    """
    helps = field_help(cls)
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        hint = hints[f.name]
        kw: dict[str, Any] = {
            "dest": f.name,
            "default": argparse.SUPPRESS,
            "help": helps.get(f.name),
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
