"""Run one image-to-image job over many inputs: files, folders (mirrored) and globs.

Shared by ``pixcolor colorize`` and ``pixcolor upscale``: a progress bar over files, one line
per failed file (``path: reason``), atomic writes that never overwrite an input (nor an
existing output unless asked), a summary line, and an exit code of 1 when anything failed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from pixcolor.errors import ImageReadError, PixcolorError
from pixcolor.files import InputFile, collect_inputs, output_path
from pixcolor.imageio import save_image_atomic

FORMATS = {"png": ".png", "jpg": ".jpg"}


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
) -> BatchResult:
    """Apply ``job(path) -> image`` to every input and write the results under ``out_dir``.

    Args:
        inputs: files, folders (walked recursively, structure mirrored) or glob patterns.
        out_dir: output root.
        job: turns an input path into the output image; raises ``PixcolorError`` on bad input.
        fmt: ``"png"`` or ``"jpg"``.
        overwrite: replace outputs that already exist (inputs are never replaced).
        verb: word for the summary line ("colorized", "upscaled").
    """
    if fmt not in FORMATS:
        raise PixcolorError(f"unknown output format {fmt!r}; choose from {sorted(FORMATS)}")
    files, problems = collect_inputs(list(inputs))
    result = BatchResult(failed=len(problems))
    for raw, reason in problems:
        print(f"{raw}: {reason}", file=sys.stderr)
    for item in tqdm(files, desc=verb, unit="img", disable=None):
        try:
            if _process(item, out_dir, job, FORMATS[fmt], overwrite):
                result.done += 1
            else:
                result.skipped += 1
        except (PixcolorError, OSError, MemoryError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, ImageReadError) else str(exc)
            tqdm.write(f"{item.path}: {reason or type(exc).__name__}", file=sys.stderr)
            result.failed += 1
    print(f"{verb} {result.done}, skipped {result.skipped} (output exists), failed {result.failed}")
    return result


def _process(
    item: InputFile, out_dir: Path, job: Callable[[Path], Image.Image], suffix: str, overwrite: bool
) -> bool:
    target = output_path(item, out_dir, suffix)
    if target.resolve() == item.path.resolve():
        raise PixcolorError(f"{target}: output would overwrite the input; choose another -o")
    if target.exists() and not overwrite:
        return False
    image = job(item.path)
    save_image_atomic(image, target, overwrite=overwrite)
    return True
