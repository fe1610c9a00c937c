"""Image sources and splits: folders and ``.txt`` lists, and the tutorial's seeded selection.

The colorization tutorial this project follows picks its training images with NumPy's legacy
global-seed API::

    np.random.seed(seed)
    chosen = np.random.choice(paths, n, replace=False)
    perm = np.random.permutation(n)
    train, val = chosen[perm[: n - n_val]], chosen[perm[n - n_val :]]

:func:`seed_split` draws exactly the same stream from a private ``np.random.RandomState`` (no
global state), after sorting the files so the result does not depend on directory order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pixcolor.atomic import atomic_write_bytes
from pixcolor.errors import PixcolorError
from pixcolor.files import collect_inputs

# File names that :func:`write_split` writes into its output folder.
TRAIN_LIST = "train.txt"
VAL_LIST = "val.txt"

# What every data function accepts: a folder, a ``.txt`` list, or a sequence of paths.
Source = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def read_file_list(path: str | Path) -> list[Path]:
    """Read a ``.txt`` list: one path a line, ``#`` comment lines and blank lines ignored.

    Relative paths are resolved against the list file's folder.
    """
    path = Path(path)
    base = path.parent
    files = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            files.append(Path(os.path.normpath(base / Path(line).expanduser())))
    return files


def resolve_files(source: Source) -> list[Path]:
    """Return the image files of a folder (recursive, sorted), a ``.txt`` list, or a sequence.

    Raises:
        PixcolorError: If the source does not exist or holds no images.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_file() and path.suffix.lower() == ".txt":
            files = read_file_list(path)
        elif path.is_dir():
            found, problems = collect_inputs([path])
            if problems:  # only one input: the problem is that it holds no image
                raise PixcolorError(f"{path}: {problems[0][1]}")
            files = sorted(f.path for f in found)
        elif path.is_file():
            files = [path]
        else:
            raise PixcolorError(f"{path}: no such file or folder")
    else:
        files = [Path(p) for p in source]
    if not files:
        raise PixcolorError(f"{source}: no images found")
    return files


def seed_split(
    files: Sequence[str | Path], n: int = 5000, n_val: int = 1000, seed: int = 1
) -> tuple[list[Path], list[Path]]:
    """Choose ``n`` of ``files`` at random and split them into train and validation lists.

    Args:
        files: Candidate image paths (need not exist); sorted before choosing.
        n: How many files to choose in total, ``n <= len(files)``.
        n_val: How many of the chosen files go to validation, ``0 <= n_val < n``.
        seed: Seed of the legacy ``RandomState`` stream (the tutorial's ``np.random.seed``).

    Returns:
        ``(train, val)`` with ``n - n_val`` and ``n_val`` paths, disjoint.

    Raises:
        ValueError: If ``n`` exceeds the number of files, or ``n_val`` is not in ``[0, n)``.

    Example:
        >>> train, val = seed_split([f"{i:04d}.jpg" for i in range(100)], n=50, n_val=10)
        >>> len(train), len(val)
        (40, 10)
    """
    paths = sorted(Path(f) for f in files)
    if not 0 < n <= len(paths):
        raise ValueError(f"n must be in [1, {len(paths)}] (the number of files), got {n}")
    if not 0 <= n_val < n:
        raise ValueError(f"n_val must be in [0, n) = [0, {n}), got {n_val}")
    rng = np.random.RandomState(seed)
    # ``choice(len(paths))`` consumes the stream exactly as ``choice(paths)`` does.
    chosen = rng.choice(len(paths), n, replace=False)
    perm = rng.permutation(n)
    train = [paths[i] for i in chosen[perm[: n - n_val]]]
    val = [paths[i] for i in chosen[perm[n - n_val :]]]
    return train, val


def write_split(
    train: Sequence[str | Path], val: Sequence[str | Path], out_dir: str | Path
) -> tuple[Path, Path]:
    """Write ``train.txt`` and ``val.txt`` (one absolute path a line) into ``out_dir``.

    Both files are written atomically; the folder is created if needed. The lists can be
    passed straight to :class:`pixcolor.data.ColorizationDataset`.

    Returns:
        The paths of the train and validation list files.
    """
    out = Path(out_dir)
    written = []
    for name, paths in ((TRAIN_LIST, train), (VAL_LIST, val)):
        target = out / name
        text = "".join(f"{Path(p).absolute()}\n" for p in paths)
        atomic_write_bytes(target, text.encode("utf-8"))
        written.append(target)
    return written[0], written[1]
