"""The server's two pieces of shared state: the bounded work queue and the recent results.

A photo takes a queue slot only once its upload has been read in full, so slow or stalled
uploads never hold one; the slot is freed when its job ends on the worker thread, even if the
client has gone away, so abandoned work still counts.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pixcolor.web.photo import KeptResult

T = TypeVar("T")


class WorkQueue:
    """Runs jobs on ``workers`` threads, with at most ``max_queue`` waiting or running at once."""

    def __init__(self, workers: int, max_queue: int) -> None:
        self.workers = workers
        self.max_queue = max_queue
        self._busy = 0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def busy(self) -> int:
        """Jobs now waiting or running."""
        return self._busy

    def full(self) -> bool:
        """True when every slot is taken (a new job would be refused)."""
        return self._busy >= self.max_queue

    def try_reserve(self) -> bool:
        """Reserve a slot; ``False`` when all ``max_queue`` are taken."""
        with self._lock:
            if self._busy >= self.max_queue:
                return False
            self._busy += 1
            return True

    def release(self) -> None:
        """Free a reserved slot."""
        with self._lock:
            self._busy -= 1

    async def run(self, job: Callable[[], T]) -> T:
        """Run ``job`` on a worker thread in a reserved slot; the slot is freed when it ends."""
        try:
            future = self._get_executor().submit(job)
        except BaseException:
            self.release()
            raise
        future.add_done_callback(lambda _: self.release())
        return await asyncio.wrap_future(future)

    def _get_executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="pixcolor-web")
            return self._executor

    def shutdown(self) -> None:
        """Drop waiting jobs and let running ones finish in the background."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


class ResultStore:
    """The most recent results by id, in memory, within a budget of pixels (least recently used go first).

    They let the page change the colour strength of a result without running the model again,
    and preview colour hints on the photo without sending it again. Reading a result makes it
    the most recent (the photo being edited stays).
    """

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self._items: OrderedDict[str, KeptResult] = OrderedDict()
        self._pixels = 0
        self._lock = threading.Lock()

    def add(self, kept: KeptResult) -> str | None:
        """Keep a result; its id, or ``None`` when it alone is over the budget."""
        pixels = kept.pixels
        if pixels > self.max_pixels:
            return None
        key = secrets.token_urlsafe(12)
        with self._lock:
            while self._items and self._pixels + pixels > self.max_pixels:
                _, old = self._items.popitem(last=False)
                self._pixels -= old.pixels
            self._items[key] = kept
            self._pixels += pixels
        return key

    def get(self, key: str) -> KeptResult | None:
        """The result kept under ``key``, or ``None`` once it has been dropped."""
        with self._lock:
            kept = self._items.get(key)
            if kept is not None:
                self._items.move_to_end(key)
            return kept

    def __len__(self) -> int:
        return len(self._items)
