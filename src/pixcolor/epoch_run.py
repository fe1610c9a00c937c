"""The epoch loop both trainers share, over a :class:`~pixcolor.run_folder.RunFolder`.

:class:`EpochRun` owns what the colorization and SRCNN trainers do the same way: the loop over
epochs, the first Ctrl-C or SIGTERM saving ``checkpoints/last``, checkpoint saving and pruning,
resuming from the newest checkpoint that verifies (on every rank under DDP), trimming the log
to the resumed step, and the private random stream that training draws from.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm

from pixcolor import checkpoint as ckpt
from pixcolor.distributed import DistContext
from pixcolor.errors import CheckpointError, PixcolorError
from pixcolor.interrupt import GracefulInterrupt
from pixcolor.random_stream import PrivateRNG
from pixcolor.run_folder import RunFolder, Writers
from pixcolor.tensorboard_log import TensorBoardLog
from pixcolor.visualize import plot_curves

log = logging.getLogger(__name__)


class TrainingDiverged(PixcolorError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class LogWindow:
    """Sums of the losses since the last log row, and the time they took."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.items = 0
        self.t0 = time.perf_counter()

    def add(self, losses: Mapping[str, torch.Tensor], items: int) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1
        self.items += items

    def close(self, where: str) -> tuple[dict[str, float], float]:
        """Mean losses (one device sync) and items per second; start a new window.

        Raises:
            TrainingDiverged: a mean is NaN or infinite; ``where`` ends the message.
        """
        means = {k: float(v) / self.count for k, v in self.sums.items()}
        rate = self.items / max(time.perf_counter() - self.t0, 1e-9)
        if not all(math.isfinite(v) for v in means.values()):
            raise TrainingDiverged(f"non-finite loss ({means}); {where}")
        self.__init__()
        return means, rate


class EpochRun:
    """The loop and bookkeeping of a run; a trainer fills in the hooks.

    A subclass sets ``config`` (with ``epochs``, ``keep_last``, ``seed``), ``device`` and
    ``folder``, calls :meth:`_init_run`, and implements :meth:`_run_epoch` (train the steps of
    ``self.epoch`` from ``self.step_in_epoch``; return False when asked to stop),
    :meth:`_end_epoch`, :meth:`_validate_now`, :meth:`_checkpoint_files`, :meth:`_restore`.
    """

    config: Any
    device: torch.device
    folder: RunFolder
    # Write the full training state into best and epoch_N too (the layout of run folders
    # before generator-only epochs, which still resume; SRCNN's state is a few hundred KB).
    full_state_everywhere = False

    def _init_run(self, dist: DistContext | None = None) -> None:
        self.dist = dist or DistContext.single()
        self.rng = PrivateRNG(self.config.seed, self.device)
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0  # completed steps of the current epoch
        self.global_step = 0
        # Under torchrun, Ctrl-C reaches the agent, which stops every worker: no graceful save.
        self._interrupt = GracefulInterrupt(enabled=not self.dist.enabled)
        self.tensorboard = TensorBoardLog(self.folder.root, enabled=self.dist.is_main)

    # --- hooks ---------------------------------------------------------------------------
    def _run_epoch(self, stop_at_step: int | None) -> bool:
        raise NotImplementedError

    def _end_epoch(self) -> None:
        """After an epoch's last step (e.g. the lr schedulers' step)."""

    def _validate_now(self) -> bool:
        """Validate after this epoch; return whether the result is the best so far."""
        return False

    def _checkpoint_files(self, full: bool) -> Writers:
        raise NotImplementedError

    def _restore(self, folder: Path) -> None:
        raise NotImplementedError

    def _log_start(self) -> None:
        """Say what the run is about to do (rank 0 only)."""

    # --- the loop ------------------------------------------------------------------------
    def fit_epochs(self, stop_at_step: int | None = None) -> bool:
        """Train until ``config.epochs``, checkpointing each epoch; returns False when stopped
        early (Ctrl-C, SIGTERM or ``stop_at_step``), after saving ``checkpoints/last``."""
        cfg = self.config
        if self.dist.is_main:
            self.folder.save_config(cfg)
        self._log_start()
        with self.rng.active(), self._interrupt, contextlib.closing(self.tensorboard):
            while self.epoch < cfg.epochs:
                if not self._run_epoch(stop_at_step):
                    self.save_checkpoint("last")
                    self.dist.barrier()  # no rank leaves before rank 0 has written it
                    reason = "interrupted" if self._interrupt.requested else "stopped"
                    log.info(
                        "%s at epoch %d step %d; saved %s (resume with --resume)",
                        reason,
                        self.epoch + 1,
                        self.step_in_epoch,
                        self.folder.checkpoints / "last",
                    )
                    return False
                self.epoch += 1
                self.step_in_epoch = 0
                self._end_epoch()
                self._save_epoch(self._validate_now())
                self.dist.barrier()  # no rank runs ahead of (or exits before) a checkpoint
        if self.dist.is_main:
            plot_curves(self.folder.metrics, self.folder.root / "curves.png")
        return True

    def _save_epoch(self, is_best: bool) -> None:
        self.save_checkpoint("last")
        if is_best:
            self.save_checkpoint("best")
        if self.config.keep_last:
            self.save_checkpoint(f"epoch_{self.epoch:04d}")
            if self.dist.is_main:
                self.folder.prune(self.config.keep_last)

    def should_stop(self, stop_at_step: int | None) -> bool:
        """After a step: a signal asked for a checkpoint, or ``stop_at_step`` is reached."""
        return self._interrupt.requested or (
            stop_at_step is not None and self.global_step >= stop_at_step
        )

    def progress_bar(self, total: int, desc: str, **kwargs: Any) -> tqdm:
        """The epoch's progress bar, starting at ``step_in_epoch`` (rank 0 only)."""
        return tqdm(
            total=total,
            initial=self.step_in_epoch,
            desc=desc,
            disable=not self.dist.is_main,
            dynamic_ncols=True,
            **kwargs,
        )

    def log_row(self, row: Mapping[str, Any]) -> None:
        """Append a row to ``metrics.jsonl``, and to TensorBoard when installed (rank 0 only)."""
        if self.dist.is_main:
            self.folder.log(row)
            self.tensorboard.row(row)

    def log_image(self, tag: str, image: Image.Image) -> None:
        """Show an image (the validation grid) in TensorBoard at the current step."""
        if self.dist.is_main:
            self.tensorboard.image(tag, image, self.global_step)

    def diverged_where(self) -> str:
        """The end of a divergence message: where, and which checkpoint is good."""
        return (
            f"at epoch {self.epoch + 1} step {self.step_in_epoch}; "
            f"the last good checkpoint is {self.folder.checkpoints / 'last'}"
        )

    # --- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self, name: str) -> Path | None:
        """Write ``checkpoints/<name>`` atomically (rank 0 only); returns its folder.

        ``last`` holds the full training state; ``best`` and ``epoch_N`` the network alone,
        unless :attr:`full_state_everywhere` is set.
        """
        if not self.dist.is_main:
            return None
        full = name == "last" or self.full_state_everywhere
        return self.folder.write_checkpoint(name, self._checkpoint_files(full=full))

    def resume(self, folder: str | Path | None = None, *, missing_ok: bool = False) -> Path | None:
        """Restore everything from ``folder`` (default: the newest good checkpoint of the run).

        Under DDP, rank 0 picks the checkpoint and every rank loads that same one. With
        ``missing_ok`` (a torchrun restart before the first checkpoint), a run that has none
        starts afresh and None is returned. The log keeps the rows up to the resumed step.
        """
        chosen, error = None, None
        if self.dist.is_main:
            if missing_ok and folder is None and not self.folder.candidates():
                log.info("no checkpoint in %s yet: starting afresh", self.folder.checkpoints)
                self.folder.trim_log(0)  # rows of the failed attempt
            else:
                try:
                    chosen = self._load_first_good(None if folder is None else Path(folder))
                except CheckpointError as exc:
                    if not self.dist.enabled:
                        raise
                    error = str(exc)
        if self.dist.enabled:
            chosen = self._resume_other_ranks(chosen, error)
        return chosen

    def _load_first_good(self, folder: Path | None) -> Path:
        cand = self.folder.restore_first_good(folder, self._restore, clean=self.dist.is_main)
        log.info("resumed from %s: epoch %d, step %d", cand, self.epoch + 1, self.step_in_epoch)
        if self.dist.is_main:  # rank 0 alone writes the run folder
            self.folder.trim_log(self.global_step)
        return cand

    def _resume_other_ranks(self, chosen: Path | None, error: str | None) -> Path | None:
        chosen, error = self.dist.broadcast_object((chosen, error))
        if error is not None:
            raise CheckpointError(f"rank 0 could not resume: {error}")
        failed: CheckpointError | None = None
        if chosen is not None and not self.dist.is_main:
            try:
                ckpt.verify_checkpoint_dir(chosen)
                self._restore(chosen)
                log.info("resumed from %s", chosen)
            except CheckpointError as exc:
                failed = exc
        bad = self.dist.all_reduce_sum(torch.tensor([float(failed is not None)]))
        if failed is not None:
            raise failed
        if bad.item():
            raise CheckpointError(
                f"another rank could not load {chosen}; is the run folder on a file "
                "system that every node shares?"
            )
        return chosen

    def restore_progress(self, state: Mapping[str, Any]) -> None:
        """Set epoch, steps and the random stream from a checkpoint's training state."""
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        steps = int(state["step_in_epoch"])
        old_world = int(state.get("world_size", 1))
        if old_world != self.dist.world_size and steps:
            # Same images seen, expressed in batches of the new world size.
            steps = steps * old_world // self.dist.world_size
        self.step_in_epoch = steps
        self.rng.load_state_dict(state)

    def progress_state(self) -> dict[str, Any]:
        """Epoch, steps, world size and the random stream, for a checkpoint's training state."""
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "world_size": self.dist.world_size,
            **self.rng.state_dict(),
        }


@contextmanager
def scheduler_order_warning_ignored() -> Iterator[None]:
    """Step lr schedulers at an epoch's end without PyTorch's order warning.

    Resumed at an epoch's end, no optimizer step precedes the scheduler's; the schedule's
    position comes from the checkpoint, so the warning is moot.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler")
        yield
