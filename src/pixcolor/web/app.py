"""The web app behind ``pixcolor serve``: one page, ``POST /api/colorize`` and ``GET /api/health``.

Uploads are parsed as they stream in and kept in memory (nothing is written to disk); a body
is refused with 413 as soon as it passes ``max_upload_bytes``. Inference runs on a small thread
pool, off the event loop, behind a bounded queue: when ``max_queue`` photos are already waiting
or running, a new request gets 503 with ``Retry-After`` instead of piling up. The app only calls
the public API (:meth:`pixcolor.pipeline.Colorizer.colorize`, :func:`pixcolor.imageio.read_image`
and, when asked to upscale, ``pixcolor.sr.upscale``); it holds no model logic.

Example:
    >>> from pixcolor.pipeline import load_model
    >>> app = create_app(load_model(), max_queue=2)  # uvicorn.run(app, host="127.0.0.1")
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from pixcolor.errors import ImageReadError, PixcolorError
from pixcolor.imageio import read_image

if TYPE_CHECKING:
    from PIL import Image

    from pixcolor.pipeline import Colorizer

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
MIB = 2**20
# Working sizes the API accepts (the model's input side; the result keeps the photo's size).
MIN_SIZE, MAX_SIZE = 64, 1024
# Upscale factors the API accepts besides "none" (0 and 1 also mean none).
UPSCALE_FACTORS = (2, 3, 4)
# Room in a request body for the multipart framing and the small form fields.
FORM_OVERHEAD_BYTES = 64 * 1024
# Largest non-file form field, and most parts, that one request may carry.
MAX_FIELD_BYTES = 1024
MAX_PARTS = 8
# Seconds a client is asked to wait after a 503 (a guess: about one photo's work on a CPU).
RETRY_AFTER_S = 5
# zlib level of the PNG result: levels 1-3 encode large photos several times faster than
# Pillow's default 6 for files a few percent larger; the server is local, so speed wins.
PNG_COMPRESS_LEVEL = 3
# The page loads nothing from elsewhere and runs no inline script; blob: shows the result.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

T = TypeVar("T")


class ApiError(Exception):
    """A failed request, answered as JSON ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """The JSON response for this error."""
        return JSONResponse({"error": self.message}, status_code=self.status, headers=self.headers)


class WorkQueue:
    """Runs jobs on ``workers`` threads, with at most ``max_queue`` waiting or running at once.

    A request reserves a slot before it reads its upload and the slot is freed when its job has
    finished on the worker thread, even if the client has gone away, so abandoned work counts.
    """

    def __init__(self, workers: int, max_queue: int) -> None:
        self.workers = workers
        self.max_queue = max_queue
        self._busy = 0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def busy(self) -> int:
        """Slots now reserved (requests uploading, waiting or running)."""
        return self._busy

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


class _Model:
    """The colorizer: given ready, or built once by a loader (at start-up, else on first use)."""

    def __init__(self, colorizer_or_loader: Colorizer | Callable[[], Colorizer]) -> None:
        self._lock = threading.Lock()
        self._loader: Callable[[], Colorizer] | None = None
        self.colorizer: Colorizer | None = None
        if hasattr(colorizer_or_loader, "colorize"):
            self.colorizer = colorizer_or_loader  # type: ignore[assignment]
        elif callable(colorizer_or_loader):
            self._loader = colorizer_or_loader
        else:
            raise TypeError(
                "create_app needs a Colorizer or a function returning one, "
                f"got {type(colorizer_or_loader).__name__}"
            )

    def get(self) -> Colorizer:
        with self._lock:
            if self.colorizer is None:
                assert self._loader is not None
                self.colorizer = self._loader()
            return self.colorizer

    async def get_async(self) -> Colorizer:
        if self.colorizer is not None:
            return self.colorizer
        return await asyncio.to_thread(self.get)


def create_app(
    colorizer_or_loader: Colorizer | Callable[[], Colorizer],
    *,
    max_upload_bytes: int = 20 * MIB,
    max_pixels: int = 50_000_000,
    max_queue: int = 4,
    workers: int = 1,
) -> FastAPI:
    """Build the web app around one colorizer.

    Args:
        colorizer_or_loader: a loaded :class:`~pixcolor.pipeline.Colorizer`, or a function
            returning one (called once, at start-up).
        max_upload_bytes: largest accepted image file; bigger uploads get 413.
        max_pixels: largest ``width * height`` of a photo, and of an upscaled result; 413 above.
        max_queue: photos waiting or running at once; more get 503 with ``Retry-After``.
        workers: inference threads (1 suits one CPU or GPU).

    Returns:
        A FastAPI app serving ``/`` (the page), ``/static/*``, ``POST /api/colorize`` and
        ``GET /api/health``.
    """
    for name, value in (
        ("max_upload_bytes", max_upload_bytes),
        ("max_pixels", max_pixels),
        ("max_queue", max_queue),
        ("workers", workers),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    model = _Model(colorizer_or_loader)
    queue = WorkQueue(workers, max_queue)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        colorizer = await model.get_async()  # load once, before the first request
        logger.info("pixcolor web: model %s on %s", colorizer.name, colorizer.device)
        try:
            yield
        finally:
            queue.shutdown()

    # No /docs: FastAPI's API pages load their scripts from a CDN, and this page works offline.
    app = FastAPI(
        title="pixcolor", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.work_queue = queue

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return ApiError(exc.status_code, str(exc.detail), dict(exc.headers or {})).response()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}
        return FileResponse(STATIC_DIR / "index.html", headers=headers)

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        colorizer = await model.get_async()
        return {
            "status": "ok",
            "model": colorizer.name,
            "device": str(colorizer.device),
            "size": colorizer.size,
            "busy": queue.busy,
            "max_queue": queue.max_queue,
            "max_upload_bytes": max_upload_bytes,
            "max_pixels": max_pixels,
        }

    @app.post("/api/colorize")
    async def colorize(request: Request) -> Response:
        try:
            _check_content_length(request, max_upload_bytes)
            if not queue.try_reserve():
                raise ApiError(
                    503,
                    f"the server is busy with {queue.max_queue} photos; "
                    f"try again in {RETRY_AFTER_S} s",
                    {"Retry-After": str(RETRY_AFTER_S)},
                )
            handed_over = False
            try:
                fields, data = await _read_form(request, max_upload_bytes)
                size = _parse_size(fields.get("size"))
                scale = _parse_upscale(fields.get("upscale"))
                colorizer = await model.get_async()
                job = partial(
                    _colorize_png, colorizer, data, size=size, scale=scale, max_pixels=max_pixels
                )
                handed_over = True  # from here the queue frees the slot when the job ends
                png = await queue.run(job)
            finally:
                if not handed_over:
                    queue.release()
        except ApiError as exc:
            return exc.response()
        except PixcolorError as exc:
            logger.error("colorize failed: %s", exc)
            return ApiError(500, f"colorization failed: {exc}").response()
        except Exception:  # a bug: log it, and still answer the page in JSON
            logger.exception("colorize failed")
            return ApiError(
                500, "colorization failed: internal error (see the server log)"
            ).response()
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _colorize_png(
    colorizer: Colorizer, data: bytes, *, size: int | None, scale: int, max_pixels: int
) -> bytes:
    """The worker-thread job: decode, colorize, optionally upscale, encode as PNG."""
    try:
        image = read_image(data, max_pixels=max_pixels)
    except ImageReadError as exc:
        if exc.reason.startswith("image too large"):
            raise ApiError(
                413, f"photo too large: {exc.reason.removeprefix('image too large: ')}"
            ) from None
        raise ApiError(400, f"cannot read the upload as an image ({exc.reason})") from None
    if scale > 1 and image.width * image.height * scale**2 > max_pixels:
        raise ApiError(
            413,
            f"upscaling {image.width}x{image.height} by {scale} would give more "
            f"than the limit of {max_pixels} pixels; choose a smaller factor",
        )
    result = colorizer.colorize(image, size=size, max_pixels=max_pixels)
    if scale > 1:
        result = _upscale(result, scale, device=colorizer.device)
    buffer = io.BytesIO()
    result.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _upscale(image: Image.Image, scale: int, *, device: Any) -> Image.Image:
    """Upscale with ``pixcolor.sr.upscale`` on the colorizer's device, imported only if asked."""
    try:
        from pixcolor.sr import upscale
    except ImportError as exc:
        if exc.name != "pixcolor.sr":
            raise
        raise ApiError(400, "upscaling is not available in this version of pixcolor") from None
    try:
        return upscale(image, scale=scale, device=device)
    except PixcolorError as exc:
        raise ApiError(400, f"upscaling failed: {exc}") from None


def _check_content_length(request: Request, max_upload_bytes: int) -> None:
    """Refuse a body announced as too large before reading any of it."""
    value = request.headers.get("content-length")
    if value is None:
        return
    try:
        length = int(value)
    except ValueError:
        raise ApiError(400, f"bad Content-Length header: {value!r}") from None
    if length > max_upload_bytes + FORM_OVERHEAD_BYTES:
        raise _upload_too_large(max_upload_bytes)


def _upload_too_large(max_upload_bytes: int) -> ApiError:
    if max_upload_bytes >= MIB:
        limit = f"{max_upload_bytes / MIB:.3g} MiB"
    else:
        limit = f"{max_upload_bytes} bytes"
    return ApiError(413, f"upload too large: the limit is {limit} per photo")


async def _read_form(request: Request, max_upload_bytes: int) -> tuple[dict[str, str], bytes]:
    """Stream a multipart body into memory.

    Returns:
        The text fields and the bytes of the ``image`` file.

    Raises:
        ApiError: 400 for a malformed or incomplete form, or one without an image; 413 as soon
            as the image or the whole body passes its limit.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(400, "send the photo as multipart/form-data with an 'image' file field")
    form = _FormCollector(max_upload_bytes)
    parser = MultipartParser(boundary, form.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_upload_bytes + FORM_OVERHEAD_BYTES:
                raise _upload_too_large(max_upload_bytes)
            parser.write(chunk)
    except MultipartParseError as exc:
        raise ApiError(400, f"malformed form data: {exc}") from None
    except ClientDisconnect:
        raise ApiError(400, "the upload was interrupted") from None
    if not form.complete:
        raise ApiError(400, "incomplete form data: the upload was cut short")
    if form.image is None:
        raise ApiError(400, "no 'image' file in the form")
    return form.fields, bytes(form.image)


class _FormCollector:
    """Callbacks for python-multipart's streaming parser, keeping each part in memory."""

    def __init__(self, max_upload_bytes: int) -> None:
        self.max_upload_bytes = max_upload_bytes
        self.fields: dict[str, str] = {}
        self.image: bytearray | None = None
        self.complete = False
        self._parts = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._data = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise ApiError(400, f"too many form fields (at most {MAX_PARTS})")
        self._disposition, self._name, self._data = b"", "", bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise ApiError(400, "malformed form data: a part has no name")
        self._name = options[b"name"].decode("utf-8", "replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        limit = self.max_upload_bytes if self._name == "image" else MAX_FIELD_BYTES
        if len(self._data) + (end - start) > limit:
            if self._name == "image":
                raise _upload_too_large(self.max_upload_bytes)
            raise ApiError(400, f"form field {self._name[:40]!r} is too long")
        self._data += data[start:end]

    def _part_end(self) -> None:
        if self._name == "image":
            self.image = self._data
        else:
            self.fields[self._name] = self._data.decode("utf-8", "replace").strip()

    def _end(self) -> None:
        self.complete = True


def _parse_size(value: str | None) -> int | None:
    """The ``size`` field: ``None`` (the model's default) or an int in [MIN_SIZE, MAX_SIZE]."""
    if value in (None, "", "default"):
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ApiError(
            400, f"size must be a whole number from {MIN_SIZE} to {MAX_SIZE}, got {value[:40]!r}"
        )
    return size


def _parse_upscale(value: str | None) -> int:
    """The ``upscale`` field: 1 for none, else one of :data:`UPSCALE_FACTORS`."""
    text = (value or "").lower()
    if text in ("", "none", "0", "1"):
        return 1
    if text.isdigit() and int(text) in UPSCALE_FACTORS:
        return int(text)
    choices = ", ".join(str(f) for f in UPSCALE_FACTORS)
    raise ApiError(400, f"upscale must be none, {choices}; got {value[:40]!r}")
