"""The folder of a training run, shared by the colorization and SRCNN trainers.

A run folder holds the run's config (JSON), ``metrics.jsonl`` (one JSON row per log step),
``curves.png`` and ``checkpoints/{last,best,epoch_NNNN}``. Each checkpoint folder is written
atomically with a manifest of SHA-256s (:func:`pixcolor.checkpoint.write_checkpoint_dir`).
:class:`RunFolder` writes and reads these files; :class:`pixcolor.epoch_run.EpochRun` is the
loop that both trainers run over it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pixcolor import checkpoint as ckpt
from pixcolor.errors import CheckpointError, PixcolorError

log = logging.getLogger(__name__)
EPOCH_DIR = re.compile(r"^epoch_(\d{4,})$")
METRICS = "metrics.jsonl"
Writers = Mapping[str, Callable[[Path], Any]]


class RunFolder:
    """Files of one training run under ``root``; ``config_name`` is its config file's name."""

    def __init__(self, root: str | Path, config_name: str = "config.json") -> None:
        self.root = Path(root)
        self.config_file = self.root / config_name
        self.checkpoints = self.root / "checkpoints"
        self.metrics = self.root / METRICS

    def save_config(self, config: Any) -> None:
        """Create the folder and write ``config.to_dict()`` as JSON, atomically."""
        data = json.dumps(config.to_dict(), indent=2).encode()
        ckpt.atomic_write_bytes(self.config_file, data)

    def log(self, row: Mapping[str, Any]) -> None:
        """Append one row to ``metrics.jsonl``.

        Raises:
            PixcolorError: one line naming the file when it cannot be written (disk full, folder
                removed); the checkpoints written so far are untouched.
        """
        try:
            with open(self.metrics, "a") as fh:
                fh.write(json.dumps(dict(row)) + "\n")
        except OSError as exc:
            raise PixcolorError(
                f"{self.metrics}: cannot write the training log ({exc.strerror or exc}); "
                f"the checkpoints in {self.checkpoints} are intact"
            ) from None

    def trim_log(self, step: int) -> None:
        """Keep the log rows up to ``step``; drop later rows and blank or broken lines (the
        half-written last line of a killed run)."""
        if not self.metrics.exists():
            return
        lines = self.metrics.read_text(errors="replace").splitlines()
        keep = [line for line in lines if _row_step(line) <= step]
        ckpt.atomic_write_bytes(self.metrics, "".join(line + "\n" for line in keep).encode())

    def write_checkpoint(self, name: str, files: Writers) -> Path:
        """Write ``checkpoints/<name>`` atomically from ``files`` (name -> writer).

        Raises:
            CheckpointError: one line when a file cannot be written (disk full, no permission):
                what, where, why, and that the previous checkpoint of that name is intact.
        """
        final = self.checkpoints / name
        try:
            return ckpt.write_checkpoint_dir(final, files)
        except Exception as exc:  # OSError, torch.save's RuntimeError, SafetensorError, ...
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
            reason = getattr(cause, "strerror", None) or str(cause).strip().splitlines()[0][:200]
            with contextlib.suppress(OSError):
                reason += f"; {shutil.disk_usage(self.root).free / 2**20:.0f} MiB free there"
            kept = "the previous one is intact" if final.is_dir() else "no earlier one existed"
            raise CheckpointError(
                f"{final}: cannot write the checkpoint ({reason}); {kept}"
            ) from None

    def has_run(self) -> bool:
        """Whether the folder already holds a run (a config, log rows or checkpoints)."""
        if self.checkpoints.is_dir() and any(self.checkpoints.iterdir()):
            return True
        has_rows = self.metrics.is_file() and self.metrics.stat().st_size > 0
        return has_rows or self.config_file.is_file()

    def move_aside(self) -> Path:
        """Rename the run folder to ``<name>.old-<YYYYmmdd-HHMMSS>`` (never deleted); return it."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.root.with_name(f"{self.root.name}.old-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.root.with_name(f"{self.root.name}.old-{stamp}-{n}")
        try:
            os.replace(self.root, target)
        except OSError as exc:
            raise PixcolorError(f"{self.root}: cannot move it aside ({exc.strerror})") from None
        return target

    def epoch_checkpoints(self) -> list[Path]:
        """The ``epoch_NNNN`` folders, newest first."""
        found = (p for p in self.checkpoints.glob("epoch_*") if EPOCH_DIR.match(p.name))
        return sorted(found, reverse=True)

    def candidates(self) -> list[Path]:
        """Checkpoint folders in the order to try: last, the epochs newest first, best.

        A kill between the two renames of :func:`~pixcolor.checkpoint.write_checkpoint_dir`
        leaves ``last`` (or ``best``) only as the complete ``.last.old``, which stands in for it.
        """
        root = self.checkpoints
        last, best = (
            root / n if (root / n).is_dir() else root / f".{n}.old" for n in ("last", "best")
        )
        return [p for p in [last, *self.epoch_checkpoints(), best] if p.is_dir()]

    def restore_first_good(
        self, folder: Path | None, restore: Callable[[Path], None], *, clean: bool = True
    ) -> Path:
        """Restore from ``folder``, or from the newest checkpoint that verifies.

        Each candidate is checked against its manifest and handed to ``restore``; one that
        fails (any :class:`CheckpointError`) is refused with a warning and the next is tried.
        With ``clean``, folders left by interrupted checkpoint writes are removed first.

        Returns:
            The folder restored from.
        """
        if clean:
            for partial in ckpt.remove_partial_checkpoints(self.checkpoints):
                log.info("removed %s, left by an interrupted checkpoint write", partial)
        candidates = [folder] if folder is not None else self.candidates()
        if not candidates:
            raise CheckpointError(f"{self.checkpoints}: no checkpoint to resume from")
        errors = []
        for cand in candidates:
            try:
                ckpt.verify_checkpoint_dir(cand)
                restore(cand)
            except CheckpointError as exc:
                errors.append((cand, str(exc)))
                continue
            for refused, reason in errors:  # said only when another one serves
                log.warning("refusing checkpoint %s: %s", refused, reason)
            return cand
        if len(errors) == 1:
            raise CheckpointError(errors[0][1])
        raise CheckpointError("no usable checkpoint: " + "; ".join(e for _, e in errors))

    def prune(self, keep: int) -> None:
        """Delete ``epoch_NNNN`` folders beyond the newest ``keep``."""
        for old in self.epoch_checkpoints()[keep:]:
            shutil.rmtree(old, ignore_errors=True)


def _row_step(line: str) -> float:
    """The ``step`` of a metrics.jsonl row; infinity for a blank or broken line."""
    try:
        row = json.loads(line)
        return float(row.get("step", 0)) if isinstance(row, dict) else math.inf
    except (ValueError, TypeError):
        return math.inf
