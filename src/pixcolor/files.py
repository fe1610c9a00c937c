"""Turning command-line inputs (files, folders, glob patterns) into a list of images.

Folders are walked recursively without following symlinked folders, so a link loop cannot hang
the walk; the outputs mirror each input's folder layout (:func:`output_path`).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

# Suffixes (lower case) that a folder walk or a glob picks up; compared case-insensitively.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})

# Apple's HEIC/HEIF photos: Pillow reads them only through the pillow-heif plugin.
HEIF_EXTENSIONS = frozenset({".heic", ".heif"})
HEIF_SKIP_REASON = (
    "skipped: HEIC/HEIF photos need the pillow-heif package (pip install pillow-heif)"
)

# Called with (path, reason) for each file a folder walk leaves out on purpose.
SkipHandler = Callable[[Path, str], None]

# The characters that make an input a glob pattern (as in the glob module).
_GLOB_MAGIC = re.compile(r"[*?[]")


@dataclass(frozen=True)
class InputFile:
    """One image to process.

    Attributes:
        path: Where the file is, as found (not resolved).
        relative: Its path relative to the folder it was found under; just its name for a file
            given directly or found by a glob. Outputs mirror this.
    """

    path: Path
    relative: Path


def is_image_name(name: str | Path) -> bool:
    """True when ``name`` ends in one of :data:`IMAGE_EXTENSIONS` (any case), or is a HEIC/HEIF
    photo and the pillow-heif plugin is installed."""
    suffix = Path(name).suffix.lower()
    return suffix in IMAGE_EXTENSIONS or (suffix in HEIF_EXTENSIONS and heif_supported())


def heif_supported() -> bool:
    """Whether the pillow-heif plugin is installed (it lets Pillow read HEIC/HEIF)."""
    return importlib.util.find_spec("pillow_heif") is not None


def collect_inputs(
    inputs: Sequence[str | Path],
    *,
    exclude: Sequence[str | Path] = (),
    on_skip: SkipHandler | None = None,
) -> tuple[list[InputFile], list[tuple[str, str]]]:
    """Expand files, folders and glob patterns into the images to process.

    - A file is taken whatever its extension.
    - A folder is walked recursively (symlinked folders are not entered) for files with an
      image extension, in sorted order. A folder named like an image is not a file: skipped.
      A broken symlink named like an image (dangling, or a loop) is kept, so that the caller
      reports it when reading it fails.
    - Anything else containing ``*``, ``?`` or ``[`` is a glob pattern (``**`` spans folders);
      it yields the matching files with an image extension.

    Files reached twice (the same real file) are kept once, at their first position.

    Args:
        inputs: Paths and patterns, in the order given.
        exclude: Folders that folder walks do not enter (an output folder inside an input
            folder, so that a second run does not process the first run's outputs).
        on_skip: Told about each file a folder walk leaves out on purpose, with the reason
            (HEIC/HEIF photos without pillow-heif); by default they are left out silently.

    Returns:
        ``(files, problems)``: the files found, and ``(input, reason)`` for each input that
        does not exist or matched no image.
    """
    files: list[InputFile] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    pruned = {os.path.realpath(folder) for folder in exclude}
    for raw in inputs:
        text = os.fspath(raw)
        found, problem = _expand(text, pruned, on_skip)
        if problem is not None:
            problems.append((text, problem))
        for item in found:
            key = os.path.realpath(item.path)
            if key not in seen:
                seen.add(key)
                files.append(item)
    return files, problems


def output_path(item: InputFile, out_dir: Path, suffix: str) -> Path:
    """Where the output for ``item`` goes: ``out_dir / item.relative`` with a new suffix.

    Args:
        item: The input.
        out_dir: The output folder.
        suffix: The new suffix, e.g. ``".png"`` (the dot may be left out).

    Example:
        >>> item = InputFile(Path("in/a/b.jpg"), Path("a/b.jpg"))
        >>> output_path(item, Path("out"), ".png").as_posix()
        'out/a/b.png'
    """
    if suffix and not suffix.startswith("."):
        suffix = "." + suffix
    return Path(out_dir) / item.relative.with_suffix(suffix)


def _expand(
    text: str, pruned: set[str], on_skip: SkipHandler | None
) -> tuple[list[InputFile], str | None]:
    """The files one input stands for, and a problem if it stands for none."""
    path = Path(text)
    if path.is_file():
        return [InputFile(path, Path(path.name))], None
    if path.is_dir():
        errors: list[OSError] = []
        walked = _walk_images(path, errors.append, pruned, on_skip)
        found = [InputFile(path / rel, rel) for rel in walked]
        if errors:  # report the first unreadable folder, keep what could be read
            return found, f"cannot read {errors[0].filename}: {errors[0].strerror}"
        return found, None if found else "no image files in this folder"
    if _GLOB_MAGIC.search(text):
        hits = sorted(_glob_files(text))
        found = [InputFile(Path(hit), Path(Path(hit).name)) for hit in hits if is_image_name(hit)]
        if found:
            return found, None
        return [], "matched no image files" if hits else "matched nothing"
    if path.is_symlink():
        return [], "broken symbolic link"
    if os.path.lexists(text):
        return [], "not a regular file or folder"
    return [], "no such file or folder"


def _walk_images(
    root: Path,
    onerror: Callable[[OSError], object],
    pruned: set[str] = frozenset(),  # type: ignore[assignment]
    on_skip: SkipHandler | None = None,
) -> list[Path]:
    """Image files under ``root``, relative to it, sorted by path components; folders whose
    real path is in ``pruned`` are not entered."""
    found: list[Path] = []
    heif = heif_supported()
    for folder, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=False):
        # os.walk lists a symlink to a folder among dirnames and, with followlinks=False,
        # never enters it; dropping those keeps that true whatever the platform does.
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not os.path.islink(os.path.join(folder, d))
            and os.path.realpath(os.path.join(folder, d)) not in pruned
        )
        for name in filenames:
            full = os.path.join(folder, name)
            if is_image_name(name) and (os.path.isfile(full) or _is_broken_link(full)):
                found.append(Path(full).relative_to(root))
            elif not heif and Path(name).suffix.lower() in HEIF_EXTENSIONS and on_skip:
                on_skip(Path(full), HEIF_SKIP_REASON)
    return sorted(found, key=lambda p: p.parts)


def _is_broken_link(path: str) -> bool:
    """A symlink that leads nowhere (dangling, or a loop): kept so that reading it is reported."""
    return os.path.islink(path) and not os.path.exists(path)


def _glob_files(pattern: str) -> Iterator[str]:
    """Files matching ``pattern``, as :func:`glob.glob` with ``recursive=True`` finds them.

    ``glob.glob`` follows symlinked folders under ``**``, so a link loop makes it explode
    (2 loops: 2**40 paths). A ``**`` pattern is therefore matched over an ``os.walk`` of its
    fixed leading folder instead, following no links.
    """
    if "**" not in pattern:
        yield from (hit for hit in glob.glob(pattern, recursive=True) if os.path.isfile(hit))
        return
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if _GLOB_MAGIC.search(part))
    base = Path(*parts[:fixed]) if fixed else Path()
    wanted = parts[fixed:]
    if not base.is_dir():
        return
    for folder, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(folder, d))]
        for name in filenames:
            full = os.path.join(folder, name)
            if _match_parts(Path(full).relative_to(base).parts, wanted) and os.path.isfile(full):
                yield str(Path(full))  # "./a/b.jpg" -> "a/b.jpg", as glob.glob writes it


def _match_parts(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    """Match path components against pattern components, ``**`` spanning zero or more.

    Like :mod:`glob`, wildcards do not match names starting with a dot.
    """
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        for i in range(len(parts) + 1):
            if i and parts[i - 1].startswith("."):
                return False
            if _match_parts(parts[i:], rest):
                return True
        return False
    if not parts or not fnmatchcase(parts[0], head):
        return False
    if parts[0].startswith(".") and not head.startswith(".") and _GLOB_MAGIC.search(head):
        return False
    return _match_parts(parts[1:], rest)
