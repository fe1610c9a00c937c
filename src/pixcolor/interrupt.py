"""Graceful stop for the trainers: the first SIGINT (Ctrl-C) or SIGTERM asks for a checkpoint,
a second one aborts.

SIGTERM is what SLURM, Kubernetes and ``timeout`` send before killing a job: it saves
``checkpoints/last`` like Ctrl-C, so ``--resume`` continues where the job was stopped.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulInterrupt:
    """Context manager that turns the first SIGINT or SIGTERM into a flag.

    Inside the ``with`` block the first signal sets :attr:`requested` (the training loop
    finishes its step, saves ``checkpoints/last`` and returns); a second one raises
    :class:`KeyboardInterrupt` at once. Outside the main thread (where signal handlers cannot
    be installed) or with ``enabled=False`` it installs nothing and only carries the flag.
    On leaving, the previous handlers are back.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        log.info("%s: saving a checkpoint after this step (again to abort)", name)

    def __enter__(self) -> GracefulInterrupt:
        self.requested = False
        if self.enabled:
            try:
                for signum in SIGNALS:
                    self._previous[signum] = signal.getsignal(signum)
                    signal.signal(signum, self._handler)
            except ValueError:  # not the main thread: nothing could be installed
                self._previous = {}
        return self

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            # getsignal() gives None for a handler not installed from Python: use the default.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()
