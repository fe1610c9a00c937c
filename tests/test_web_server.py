"""The real server (uvicorn, as ``pixcolor serve`` builds it) against hostile clients, through
real sockets on 127.0.0.1. Time limits are shortened for the test; every wait is bounded."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from PIL import Image
from server_helpers import serving
from torch import nn

pytest.importorskip("fastapi", reason="the web extra is not installed")
pytest.importorskip("uvicorn", reason="the web extra is not installed")

from pixcolor.pipeline import Colorizer
from pixcolor.web import WebOptions, create_app
from pixcolor.web.server import bind, build_server

BOUNDARY = "pixcolortestboundary"
# Short time limits, so stalled clients are dropped within the test's bounded waits.
FAST = {"head_timeout_s": 1.0, "body_timeout_s": 2.0, "keep_alive_s": 1.0}


class ConstantAB(nn.Module):
    stride = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 2, *x.shape[-2:]), 0.3)


@contextmanager
def running_server(**options: object) -> Iterator[int]:
    """``pixcolor serve``'s server for a tiny model on 127.0.0.1 and a free port."""
    opts = WebOptions(**{**FAST, **options})
    colorizer = Colorizer(ConstantAB(), {"arch": "constant", "size": 64}, device="cpu")
    sock = bind("127.0.0.1", 0)
    server = build_server(create_app(colorizer, opts), opts, log_level="critical")
    with serving(server, sock, start_timeout=20, stop_timeout=15):
        yield sock.getsockname()[1]


def photo_form(noise: bool = False) -> bytes:
    """A form with a small gradient PNG, or (``noise``) a 300 KB noise PNG."""
    if noise:
        pixels = np.random.default_rng(0).integers(0, 256, (400, 800), dtype=np.uint8)
    else:
        pixels = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + buffer.getvalue()
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def request_head(port: int, length: int, host: str = "127.0.0.1") -> bytes:
    return (
        f"POST /api/colorize HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and everything the server sent until it closed (bounded by the socket timeout)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else 0
    return status, data


def upload(port: int, host: str = "127.0.0.1", *, noise: bool = False) -> tuple[int, bytes]:
    """POST a photo in one write (head and body together), and read the whole answer."""
    body = photo_form(noise)
    with connect(port) as sock:
        sock.sendall(
            request_head(port, len(body), host).replace(
                b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"
            )
            + body
        )
        return read_response(sock)


def test_stalled_uploads_do_not_lock_users_out() -> None:
    with running_server(max_queue=4, body_timeout_s=3.0, head_timeout_s=3.0) as port:
        stalled = []
        for _ in range(6):  # more than the queue has slots
            sock = connect(port)
            sock.sendall(request_head(port, 100_000) + b"--" + BOUNDARY.encode())
            stalled.append(sock)
        time.sleep(0.3)  # the server has their heads and a few body bytes
        started = time.monotonic()
        status, data = upload(port)
        assert status == 200, data[:300]
        assert time.monotonic() - started < 2.5  # answered while the others still stall
        for sock in stalled:  # each stalled upload gets 408 at its deadline, then is closed
            status, data = read_response(sock)
            assert status == 408 and b"not complete after 3 s" in data
            sock.close()


def test_a_silent_or_slow_request_head_is_dropped() -> None:
    with (
        running_server() as port,
        connect(port, timeout=5) as idle,
        connect(port, timeout=5) as partial,
    ):
        partial.sendall(b"POST /api/colorize HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        assert read_response(idle) == (0, b"")  # closed without a word
        status, data = read_response(partial)
        assert status == 408 and b"did not arrive within 1 s" in data
        assert time.monotonic() - started < 3


def test_huge_headers_get_431_not_a_reset() -> None:
    with running_server() as port, connect(port) as sock:
        head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"x" * 1000) for i in range(1024))
        sock.sendall(head + filler + b"\r\n")  # 1 MB of headers
        status, data = read_response(sock)
        assert status == 431 and b"request headers too large" in data


def test_a_large_upload_sent_in_one_write_is_not_taken_for_a_huge_head() -> None:
    with running_server() as port:
        status, data = upload(port, noise=True)
        assert status == 200, data[:300]


def test_idle_connections_are_bounded_and_then_dropped() -> None:
    with running_server(max_connections=4) as port:
        idle = [connect(port) for _ in range(4)]
        time.sleep(0.2)
        status, data = upload(port)
        assert status == 503  # every connection taken: refused at once, not left hanging
        for sock in idle:  # the head timeout frees them
            assert read_response(sock) == (0, b"")
            sock.close()
        status, data = upload(port)
        assert status == 200, data[:300]


def test_other_host_names_are_refused_by_the_real_server() -> None:
    with running_server() as port:
        status, data = upload(port, host="rebind.evil.example")
        assert status == 421 and b"answers only to" in data
        assert upload(port, host="localhost")[0] == 200
