"""A uvicorn server run in a background thread for the web tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serving(
    server: Any, sock: socket.socket, *, start_timeout: float = 30.0, stop_timeout: float = 10.0
) -> Iterator[str]:
    """Run ``server`` (a ``uvicorn.Server``) on the bound ``sock`` until the block ends.

    Yields the server's URL once it has started; on the way out it stops the server, waits for
    its thread and closes the socket.
    """
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=stop_timeout)
        sock.close()
