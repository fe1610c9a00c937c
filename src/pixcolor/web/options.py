"""The limits of one ``pixcolor serve``: sizes, queue, time limits and the host names it answers."""

from __future__ import annotations

from dataclasses import dataclass, fields

MIB = 2**20
# Host names every server answers to: the loopback address in its three spellings.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class WebOptions:
    """What one server accepts, and for how long it waits.

    The defaults suit one person's local page on a CPU: a 20 MiB, 50-megapixel photo, four
    photos in the queue, and a client gets 10 s to send its request head and 30 s its upload.
    """

    max_upload_bytes: int = 20 * MIB  # largest photo file; bigger uploads get 413
    max_pixels: int = 50_000_000  # largest photo and upscaled result (width * height); 413 above
    max_queue: int = 4  # photos read in full and waiting or running; more get 503 + Retry-After
    workers: int = 1  # inference threads (1 suits one CPU or GPU)
    body_timeout_s: float = 30.0  # an upload not read in full by then gets 408
    head_timeout_s: float = 10.0  # request line and headers not in by then: 408, closed
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_head_bytes: int = 16 * 1024  # request line + headers; more gets 431
    # Open connections, idle ones included; more get 503. Each may be reading an upload of up
    # to max_upload_bytes into memory, so this also bounds the memory uploads take (640 MiB).
    max_connections: int = 32
    # Results kept in memory (pixels, all together, with each photo's screen-size copy) so that
    # the colour strength and hints can change without sending the photo again; the least
    # recently used go first.
    kept_result_pixels: int = 60_000_000
    # Host header names accepted (against DNS rebinding); None accepts any.
    allowed_hosts: frozenset[str] | None = LOOPBACK_HOSTS

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "allowed_hosts":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{field.name} must be a positive number, got {value!r}")
            if field.type == "int" and not isinstance(value, int):
                raise ValueError(f"{field.name} must be a whole number, got {value!r}")
