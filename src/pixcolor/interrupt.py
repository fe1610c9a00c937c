"""Graceful Ctrl-C for the trainers: the first SIGINT asks for a checkpoint, the second aborts.

Shared by the colorization and SRCNN trainers (and relied on by ``scripts/timed_runs.py``,
which stops jobs with SIGINT and resumes them with a new epoch count).
"""

from __future__ import annotations

import logging
import signal
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)


class GracefulInterrupt:
    """Context manager that turns the first SIGINT into a flag.

    Inside the ``with`` block the first Ctrl-C sets :attr:`requested` (the training loop
    finishes its step, saves ``checkpoints/last`` and returns); a second one raises
    :class:`KeyboardInterrupt` at once. Outside the main thread (where signal handlers cannot
    be installed) or with ``enabled=False`` it installs nothing and only carries the flag.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.info("Ctrl-C: saving a checkpoint after this step (again to abort)")

    def __enter__(self) -> GracefulInterrupt:
        self.requested = False
        if self.enabled:
            try:
                self._previous = signal.getsignal(signal.SIGINT)
                signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except ValueError:  # not the main thread
                self._installed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            # getsignal() gives None for a handler not installed from Python: use the default.
            previous = signal.SIG_DFL if self._previous is None else self._previous
            signal.signal(signal.SIGINT, previous)
            self._installed = False
