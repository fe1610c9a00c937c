"""Running the app under uvicorn with bounded connections, and the port checked first.

uvicorn bounds open connections (``limit_concurrency``: more get 503) and idle keep-alive ones,
but waits forever for the head of a request and answers a huge head by closing the connection.
:class:`GuardedH11Protocol` adds both: a request head must arrive within ``head_timeout_s``
(else 408 and the connection closes), and a head over ``max_head_bytes`` gets 431, sent with a
lingering close so that the client reads it instead of a reset. The body has its own deadline
in the app (:mod:`pixcolor.web.upload`).
"""

from __future__ import annotations

import errno
import json
import socket
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pixcolor.errors import PixcolorError
from pixcolor.web.options import WebOptions

# After refusing a head, read and drop what the client still sends for this long, then close.
LINGER_S = 2.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline and a size limit on each request head.

    Subclasses set ``head_timeout_s`` and ``max_head_bytes`` (see :func:`build_server`).
    """

    head_timeout_s = 10.0
    max_head_bytes = 16 * 1024

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._head_bytes = 0
        self._refused = False
        self._head_timer: Any = None
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a refusal: read and drop
        if self.conn.their_state is h11.IDLE:
            end = data.find(b"\r\n\r\n")  # the head may end in this chunk, a body follow
            self._head_bytes += len(data) if end < 0 else end + 4
            if self._head_bytes > self.max_head_bytes:
                limit = self.max_head_bytes // 1024
                self._refuse(431, f"request headers too large (the limit is {limit} KiB)")
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head_bytes = 0
        self._arm_head_timer()  # the next request's head must come in time too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._refused:
            return
        waiting_for_head = self.conn.their_state is h11.IDLE and (
            self.cycle is None or self.cycle.response_complete
        )
        if not waiting_for_head:
            return
        if self._head_bytes:
            limit = f"{self.head_timeout_s:g}"
            self._refuse(408, f"the request headers did not arrive within {limit} s")
        else:
            self.transport.close()  # an idle connection: nothing to answer

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` outside h11 (the head is incomplete), then close gracefully."""
        self._refused = True
        reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        body = json.dumps({"error": message}).encode()
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, reason, len(body))
        )
        self.transport.write(head + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


def build_server(app: Any, options: WebOptions, *, log_level: str = "info") -> uvicorn.Server:
    """A uvicorn server for ``app`` with the connection limits of ``options``."""
    protocol = type(
        "PixcolorHTTP",
        (GuardedH11Protocol,),
        {"head_timeout_s": options.head_timeout_s, "max_head_bytes": options.max_head_bytes},
    )
    config = uvicorn.Config(
        app,
        http=protocol,
        ws="none",
        lifespan="on",
        limit_concurrency=options.max_connections,
        timeout_keep_alive=options.keep_alive_s,  # type: ignore[arg-type]
        timeout_graceful_shutdown=5,
        # h11's own limit, above ours so that a large head gets our 431, not h11's 400.
        h11_max_incomplete_event_size=2 * options.max_head_bytes,
        log_level=log_level,
        server_header=False,
    )
    return uvicorn.Server(config)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, made before any model loads.

    Raises:
        PixcolorError: the port is taken, not ours to use, or the address is not this
            machine's (one line).
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
        family = infos[0][0]
        return socket.create_server((host, port), family=family, backlog=128)
    except socket.gaierror as exc:
        raise PixcolorError(f"--host {host}: not an address of this machine ({exc})") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PixcolorError(
                f"port {port} on {host} is already in use (another pixcolor serve?); "
                "stop it or choose another with --port"
            ) from None
        raise PixcolorError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
