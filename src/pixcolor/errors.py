"""Typed errors that pixcolor raises at its public boundary.

The command line turns every :class:`PixcolorError` into one clear line (no traceback).
"""

from __future__ import annotations

from pathlib import Path


class PixcolorError(Exception):
    """Base class of every error pixcolor reports to users."""


class ImageReadError(PixcolorError):
    """A file could not be read as an image.

    Attributes:
        path: The offending file (``None`` for in-memory input).
        reason: A short human-readable reason, e.g. ``"truncated file"``.
    """

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else Path(path)
        self.reason = reason
        where = "<memory>" if path is None else str(path)
        super().__init__(f"{where}: {reason}")


class ConfigError(PixcolorError, ValueError):
    """A configuration value or file is invalid (unknown key, wrong type, out of range)."""


class CheckpointError(PixcolorError):
    """A checkpoint or weights file is missing, corrupt or not loadable safely."""


class DownloadError(PixcolorError):
    """A download failed, or its size/checksum did not match, or its archive is unsafe."""


class OutputExistsError(PixcolorError):
    """An output file exists and was not to be replaced.

    Attributes:
        path: The existing file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: already exists (not replaced)")
