"""Run one image-to-image job over many inputs: files, folders (mirrored) and globs.

Shared by ``pixcolor colorize`` and ``pixcolor upscale``: a progress bar over files, one line
per failed file (``path: reason``), atomic writes that never overwrite an input (nor an
existing output unless asked), a summary line, and an exit code of 1 when anything failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pixcolor.errors import ImageReadError, PixcolorError
from pixcolor.files import InputFile, collect_inputs, output_path

if TYPE_CHECKING:
    from PIL import Image

FORMATS = {"png": ".png", "jpg": ".jpg"}
log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """Counts of one batch run."""

    done: int = 0  # outputs written
    skipped: int = 0  # outputs already there (no --overwrite)
    failed: int = 0  # inputs that could not be processed

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.failed else 0


def run_batch(
    inputs: Sequence[str | Path],
    out_dir: Path,
    job: Callable[[Path], Image.Image],
    *,
    fmt: str = "png",
    overwrite: bool = False,
    verb: str = "processed",
    skipped_note: str = "output exists",
) -> BatchResult:
    """Apply ``job(path) -> image`` to every input and write the results under ``out_dir``.

    Args:
        inputs: files, folders (walked recursively, structure mirrored) or glob patterns.
        out_dir: output root.
        job: turns an input path into the output image; raises ``PixcolorError`` on bad input.
        fmt: ``"png"`` or ``"jpg"``.
        overwrite: replace outputs that already exist (inputs are never replaced).
        verb: word for the summary line ("colorized", "upscaled").
        skipped_note: why files were skipped, for the summary line.
    """
    from tqdm import tqdm

    if fmt not in FORMATS:
        raise PixcolorError(f"unknown output format {fmt!r}; choose from {sorted(FORMATS)}")
    files, problems = collect_inputs(list(inputs))
    result = BatchResult(failed=len(problems))
    for raw, reason in problems:
        print(f"{raw}: {reason}", file=sys.stderr)
    if files:
        check_output_dir(out_dir)
    claimed: dict[Path, Path] = {}  # output -> the input it was written (or kept) for
    for item in tqdm(files, desc=verb, unit="img", disable=None):
        try:
            target = output_path(item, out_dir, FORMATS[fmt])
            if target in claimed:  # e.g. a.jpg and a.png: never replace the first one's output
                raise PixcolorError(f"same output {target} as {claimed[target]}; rename one")
            if _process(item, target, job, overwrite):
                result.done += 1
            else:
                result.skipped += 1
            claimed[target] = item.path
        except Exception as exc:  # one bad file never stops the batch
            tqdm.write(f"{item.path}: {failure_reason(exc)}", file=sys.stderr)
            result.failed += 1
    print(
        f"{verb} {result.done}, skipped {result.skipped} ({skipped_note}), failed {result.failed}"
    )
    return result


@contextlib.contextmanager
def notice_if_slow(message: str, after: float = 1.0) -> Iterator[None]:
    """Print ``message`` on stderr if the ``with`` block is still running after ``after`` s.

    For start-up work users wait on without output (importing PyTorch, loading a model).
    """
    timer = threading.Timer(after, lambda: print(message, file=sys.stderr, flush=True))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def failure_reason(exc: Exception) -> str:
    """The one-line reason printed for a file that failed with ``exc``.

    Expected failures (bad input, full disk, ...) print their message; anything else is a bug
    met on that file, printed as one line too (its traceback is logged with ``-v``).
    """
    if isinstance(exc, ImageReadError):
        return exc.reason
    if isinstance(exc, (PixcolorError, OSError, ValueError)):
        return str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        return "out of memory"
    log.debug("unexpected error", exc_info=exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"


def check_output_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and prove it writable, so an unusable folder is one clear error.

    Raises:
        PixcolorError: the folder cannot be created or written to.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out_dir, prefix=".pixcolor-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PixcolorError(f"{out_dir}: cannot write to the output folder ({reason})") from None


def _process(
    item: InputFile, target: Path, job: Callable[[Path], Image.Image], overwrite: bool
) -> bool:
    if os.path.realpath(target) == os.path.realpath(item.path):  # never raises on link loops
        raise PixcolorError(f"{target}: output would overwrite the input; choose another -o")
    if target.exists() and not overwrite:
        return False
    from pixcolor.imageio import save_image_atomic

    image = job(item.path)
    save_image_atomic(image, target, overwrite=overwrite)
    return True
