"""Run one image-to-image job over many inputs: files, folders (mirrored) and globs.

Shared by ``pixcolor colorize`` and ``pixcolor upscale``: a progress bar over files, one line
per failed file (``path: reason``), atomic writes that never overwrite an input (nor an
existing output unless asked), a summary line, and an exit code of 1 when anything failed.

Several runs may write into one folder at once: an output another run published meanwhile is
counted as skipped, not failed. An output folder inside an input folder is not searched for
inputs. SIGTERM ends a run like Ctrl-C (its temp file is removed), and temp files that killed
runs left behind (over a minute old, our own naming pattern) are removed from the folders a
run writes into.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pixcolor.errors import ImageReadError, OutputExistsError, PixcolorError
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
    raced: int = 0  # outputs another run wrote while this one worked on them
    failed: int = 0  # inputs that could not be processed

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.failed else 0

    def summary(self, verb: str, skipped_note: str) -> str:
        """The last line of a run, e.g. ``colorized 3, skipped 1 (output exists; ...), failed 0``."""
        skipped = f"skipped {self.skipped}"
        if self.skipped:
            skipped += f" ({skipped_note}; use --overwrite to replace them)"
        parts = [f"{verb} {self.done}", skipped]
        if self.raced:
            parts.append(f"skipped {self.raced} (written by another run)")
        return ", ".join([*parts, f"failed {self.failed}"])


def output_dir_arg(text: str) -> Path:
    """Argparse ``type`` of an output folder flag: refuses an empty one (``-o ""``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the output folder is empty; give a folder name")
    return Path(text)


def run_batch(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    job: Callable[[InputFile], Image.Image],
    *,
    fmt: str = "png",
    overwrite: bool = False,
    verb: str = "processed",
    skipped_note: str = "output exists",
) -> BatchResult:
    """Apply ``job(path) -> image`` to every input and write the results under ``out_dir``.

    Args:
        inputs: files, folders (walked recursively, structure mirrored) or glob patterns.
        out_dir: output root; if it lies inside an input folder, it is not searched.
        job: turns an input (its ``path``, and its ``relative`` path, which the output
            mirrors) into the output image; raises ``PixcolorError`` on bad input.
        fmt: ``"png"`` or ``"jpg"``.
        overwrite: replace outputs that already exist (inputs are never replaced).
        verb: word for the summary line ("colorized", "upscaled").
        skipped_note: why files were skipped, for the summary line.

    Raises:
        PixcolorError: unknown format, an input folder that is the output folder, or an
            output folder that cannot be written.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    if fmt not in FORMATS:
        raise PixcolorError(f"unknown output format {fmt!r}; choose from {sorted(FORMATS)}")
    files, result = _inputs(inputs, out_dir)
    if files:
        check_output_dir(out_dir)
    claimed: dict[Path, Path] = {}  # output -> the input it was written (or kept) for
    tidied: set[Path] = set()  # folders cleared of stale temp files
    with sigterm_as_interrupt():
        for item in tqdm(files, desc=verb, unit="img", disable=None):
            try:
                target = output_path(item, out_dir, FORMATS[fmt])
                if target in claimed:  # e.g. a.jpg and a.png: never replace the first's output
                    raise PixcolorError(f"same output {target} as {claimed[target]}; rename one")
                if target.parent not in tidied:
                    _remove_stale_temps(target.parent)
                    tidied.add(target.parent)
                outcome = _process(item, target, job, overwrite)
                setattr(result, outcome, getattr(result, outcome) + 1)
                claimed[target] = item.path
            except Exception as exc:  # one bad file never stops the batch
                tqdm.write(f"{item.path}: {failure_reason(exc)}", file=sys.stderr)
                result.failed += 1
    print(result.summary(verb, skipped_note))
    return result


def _inputs(inputs: Sequence[str | Path], out_dir: Path) -> tuple[list[InputFile], BatchResult]:
    """The files to process, and a result counting the inputs that matched nothing; the
    problems and notes about the inputs are printed."""
    check_folders(inputs, out_dir)
    out_real = os.path.realpath(out_dir)
    for raw in inputs:
        real = os.path.realpath(raw)
        if os.path.isdir(raw) and out_real.startswith(real.rstrip(os.sep) + os.sep):
            print(f"{out_dir}: the output folder is inside {raw}; not searched for inputs")
            break

    def skip(path: Path, reason: str) -> None:
        print(f"{path}: {reason}", file=sys.stderr)

    files, problems = collect_inputs(list(inputs), exclude=[out_dir], on_skip=skip)
    for raw, reason in problems:
        print(f"{raw}: {reason}", file=sys.stderr)
    if any(item.path.suffix.lower() in (".heic", ".heif") for item in files):
        import pillow_heif  # present: files lists HEIC/HEIF only when it is

        pillow_heif.register_heif_opener()
    return files, BatchResult(failed=len(problems))


def check_folders(inputs: Sequence[str | Path], out_dir: Path) -> None:
    """Refuse an output folder that is one of the input folders (before any work is done).

    Raises:
        PixcolorError: naming the folder.
    """
    out_real = os.path.realpath(out_dir)
    for raw in inputs:
        if os.path.isdir(raw) and os.path.realpath(raw) == out_real:
            raise PixcolorError(
                f"{raw}: the output folder is the input folder; choose another -o "
                "(outputs would be mixed with the photos they came from)"
            )


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


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (as Ctrl-C does), so that the write
    in progress removes its temp file; the default handler would end the process at once."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove_stale_temps(folder: Path) -> None:
    """Remove temp files that killed runs left in ``folder`` (over a minute old)."""
    from pixcolor.atomic import remove_stale_temps

    for path in remove_stale_temps(folder):
        log.info("%s: removed a temp file left by an interrupted run", path)


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
    item: InputFile, target: Path, job: Callable[[InputFile], Image.Image], overwrite: bool
) -> str:
    """Make one output; returns the :class:`BatchResult` field to count it in."""
    from pixcolor.imageio import output_metadata  # here: --help must not import torch
    from pixcolor.imagewrite import save_image_atomic

    if os.path.realpath(target) == os.path.realpath(item.path):  # never raises on link loops
        raise PixcolorError(f"{target}: output would overwrite the input; choose another -o")
    if target.exists() and not overwrite:
        return "skipped"
    image = job(item)
    try:
        save_image_atomic(image, target, overwrite=overwrite, metadata=output_metadata(item.path))
    except OutputExistsError:  # another run published it meanwhile (atomically: complete)
        _check_readable(target)
        return "raced"
    return "done"


def _check_readable(path: Path) -> None:
    """Raise PixcolorError unless ``path`` opens as an image (its header is read)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.size  # noqa: B018
    except (OSError, UnidentifiedImageError) as exc:
        reason = f"another run wrote it, but it is not a readable image: {exc}"
        raise PixcolorError(f"{path}: {reason}") from None
