"""Atomic file writes: every file pixcolor writes appears complete or not at all.

One rule for images, weights, checkpoints, configs, reports and ONNX files: the content goes to
a hidden temp file in the target's folder, named ``.<target name>.pixcolor-<8 hex>.tmp``
(:func:`is_temp_name` recognises it, so :func:`remove_stale_temps` can tidy what a killed run
left), created with mode 0644 (less the umask, as ``open`` would), fsynced, renamed over the
target (or linked beside it without replacing an existing file), and the folder is fsynced so
that the rename survives a power cut. On any failure the temp file is removed and the target is
unchanged. A whole folder (a clip's frames) is published the same way by
:func:`atomic_output` with ``folder=True``.

Example:
    >>> atomic_write_bytes(Path("run/config.json"), b"{}")
    PosixPath('run/config.json')
    >>> with atomic_output(Path("out/reel"), folder=True) as tmp:
    ...     (tmp / "frame_00000.png").write_bytes(png)  # a failure here leaves no out/reel
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pixcolor.errors import OutputExistsError, PixcolorError

TEMP_TAG = "pixcolor-"  # marks our temp files: .<name>.pixcolor-<8 hex>.tmp
TEMP_SUFFIX = ".tmp"
FILE_MODE = 0o644  # of every file written (less the umask); temp files are created with it
DIR_MODE = 0o755  # of folders published whole (checkpoint folders)
STALE_AFTER_S = 60.0  # remove_stale_temps leaves younger temp files alone (a live writer's)
_TEMP_RE = re.compile(rf"^\..+\.{TEMP_TAG}[0-9a-f]{{8}}{re.escape(TEMP_SUFFIX)}$")


def temp_name(path: Path) -> Path:
    """A fresh hidden temp path beside ``path``: ``.<name>.pixcolor-<8 hex>.tmp``."""
    return path.with_name(f".{path.name}.{TEMP_TAG}{secrets.token_hex(4)}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` (a file or folder name) is one of our temp names."""
    return bool(_TEMP_RE.match(name))


def write_error(path: Path, exc: OSError) -> PixcolorError:
    """The one-line error for a failed write: the target, the reason, and that it is intact."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return PixcolorError(f"{path}: cannot write: {reason} (any earlier file there is unchanged)")


def _create_temp_file(path: Path) -> Path:
    """Create an empty temp file for ``path`` (exclusive, mode 0644 less the umask)."""
    for _ in range(100):
        tmp = temp_name(path)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temp name beside {path}")


def make_temp_dir(path: Path) -> Path:
    """Create an empty temp folder for ``path`` (mode 0755 less the umask), to publish whole.

    Raises:
        PixcolorError: the folder could not be created (disk full, no permission).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            tmp = temp_name(path)
            try:
                tmp.mkdir(DIR_MODE)
            except FileExistsError:
                continue
            return tmp
        raise FileExistsError(f"no free temp name beside {path}")
    except OSError as exc:
        raise write_error(path, exc) from exc


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (best effort: not every platform can)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def move_no_clobber(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path``; raise FileExistsError if ``path`` exists (even if it appeared
    a moment ago: a hard link is created atomically or not at all)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        # No hard links on this file system: check, then rename (a small race window).
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike, *, overwrite: bool = True, folder: bool = False
) -> Iterator[Path]:
    """Give a temp path beside ``path`` to fill; publish it there on success, else remove it.

    On a normal exit of the ``with`` block the temp file (or every file in the temp folder) is
    fsynced, then moved to ``path``; if the block raises, the temp is removed and ``path`` is
    unchanged.

    Args:
        path: the target; missing parent folders are created.
        overwrite: replace an existing target (a folder is renamed aside, then removed);
            otherwise an existing target (even one that another process publishes
            meanwhile) raises :class:`OutputExistsError`.
        folder: give an empty temp folder (published whole) instead of an empty temp file.

    Yields:
        The temp path, which exists: an empty file (which may be opened with ``"wb"`` or
        replaced in place, as ``safetensors`` does) or an empty folder.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is off.
        PixcolorError: the write failed (disk full, no permission), in one line; the target
            is unchanged and no temp is left. Other exceptions of the block propagate, after
            the same cleanup.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise OutputExistsError(path)
    if folder:
        tmp = make_temp_dir(path)
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = _create_temp_file(path)
        except OSError as exc:
            raise write_error(path, exc) from exc
    try:
        yield tmp
        _fsync_tree(tmp)
        _publish(tmp, path, overwrite)
    except FileExistsError:
        _remove_quietly(tmp)
        raise OutputExistsError(path) from None
    except OSError as exc:
        _remove_quietly(tmp)
        raise write_error(path, exc) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write(
    path: str | os.PathLike, write: Callable[[Path], None], *, overwrite: bool = True
) -> Path:
    """Write a file atomically through ``write(tmp)``, which fills the temp path given.

    The same as ``with atomic_output(path, overwrite=overwrite) as tmp: write(tmp)``; see
    :func:`atomic_output` for the arguments and errors.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_output(path, overwrite=overwrite) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; see :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), overwrite=overwrite)


def remove_stale_temps(folder: Path, *, older_than: float = STALE_AFTER_S) -> list[Path]:
    """Delete our temp files (not folders) in ``folder`` untouched for ``older_than`` seconds.

    A run killed between creating and renaming its temp file (SIGKILL, a power cut) leaves
    one; a younger one may belong to a writer still at work and is kept.

    Returns:
        The files removed (none if ``folder`` does not exist).
    """
    if not folder.is_dir():
        return []
    now = time.time()
    removed = []
    for entry in os.scandir(folder):
        if not is_temp_name(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat(follow_symlinks=False).st_mtime >= older_than:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return sorted(removed)


def _fsync_tree(path: Path) -> None:
    """Flush the file ``path``, or every file under the folder ``path`` and the folders."""
    if not path.is_dir():
        fsync_file(path)
        return
    for folder, _, names in os.walk(path):
        for name in names:
            fsync_file(Path(folder, name))
        fsync_dir(Path(folder))


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``path`` (see :func:`atomic_output`)."""
    if not overwrite:
        move_no_clobber(tmp, path)
    elif (path.is_dir() and not path.is_symlink()) or (tmp.is_dir() and os.path.lexists(path)):
        # rename() replaces only a file by a file, or a folder by an empty folder: the old
        # target goes aside first and is put back if the second rename fails.
        aside = temp_name(path)
        os.rename(path, aside)
        try:
            os.rename(tmp, path)
        except OSError:
            os.rename(aside, path)
            raise
        _remove_quietly(aside)
    else:
        os.replace(tmp, path)


def _remove_quietly(path: Path) -> None:
    """Delete the file or folder ``path`` if it still exists."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            os.unlink(path)
