"""The web app behind ``pixcolor serve``: the page, and an API of five calls.

- ``GET /api/health``: the models on offer (with whether each follows colour hints) and the
  server's limits.
- ``POST /api/colorize`` (multipart form: ``image`` file; ``model``, ``size``, ``upscale``,
  ``saturation``, ``format``, ``hints`` fields): the colour photo. ``hints`` is the JSON of
  :mod:`pixcolor.hints`. Without hints, its ``X-Result-Id`` header names the result, kept for a
  while in memory; ``X-Image-Size`` and ``X-Source-Size`` give the result's and photo's size.
- ``GET /api/results/{id}?saturation=S&format=jpeg[&preview=1]``: that result again at another
  colour strength, without running the model.
- ``POST /api/results/{id}/preview`` (JSON ``{"hints": {...}, "saturation": S}``): that photo
  colorized with the hints at screen size (a JPEG), without sending the photo again.
- ``POST /api/results/{id}/suggest`` (JSON ``{"x": X, "y": Y, "hints": {...}}``, photo pixels):
  ``{"colors": [[r, g, b], ...]}``, the model's most likely colours at that point.

Uploads are read in memory under size and time limits (:mod:`pixcolor.web.upload`); a photo
then takes a slot in a bounded queue (:mod:`pixcolor.web.jobs`) or gets 503 with
``Retry-After``; the work runs on a worker thread (:mod:`pixcolor.web.photo`). The models are
loaded and warmed before the app is built (:func:`pixcolor.web.models.load_models`).

Example:
    >>> from pixcolor.web.models import load_models
    >>> app = create_app(load_models(["default"], device=None))
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from pixcolor.errors import PixcolorError
from pixcolor.imageio import output_metadata
from pixcolor.web import fields, hinting, photo
from pixcolor.web.errors import ApiError
from pixcolor.web.jobs import ResultStore, WorkQueue
from pixcolor.web.models import ModelSet
from pixcolor.web.options import WebOptions
from pixcolor.web.security import CONTENT_SECURITY_POLICY, HostCheck
from pixcolor.web.upload import read_json, read_upload

if TYPE_CHECKING:
    from pixcolor.pipeline import Colorizer

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# Seconds a client is asked to wait after a 503 (a guess: about one photo's work on a CPU).
RETRY_AFTER_S = 5
NO_STORE = {"Cache-Control": "no-store"}
T = TypeVar("T")
# Largest JSON body of the hint calls: the hints and a few small fields.
MAX_JSON_BYTES = fields.MAX_HINTS_BYTES + 1024


def create_app(
    models: ModelSet | Colorizer | Mapping[str, Colorizer], options: WebOptions | None = None
) -> FastAPI:
    """Build the web app around loaded models.

    Args:
        models: a :class:`ModelSet`, one colorizer (offered as ``default``) or colorizers by
            the name the page shows, the default first.
        options: limits and time limits (default :class:`WebOptions`).

    Returns:
        A FastAPI app serving ``/`` (the page), ``/static/*`` and the API above.
    """
    if not isinstance(models, ModelSet):
        models = ModelSet(models if isinstance(models, Mapping) else {"default": models})
    options = options or WebOptions()
    queue = WorkQueue(options.workers, options.max_queue)
    results = ResultStore(options.kept_result_pixels)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            queue.shutdown()

    # No /docs: FastAPI's API pages load their scripts from a CDN, and this page works offline.
    app = FastAPI(
        title="pixcolor", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.work_queue = queue
    app.state.results = results
    if options.allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=options.allowed_hosts)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return ApiError(exc.status_code, str(exc.detail), dict(exc.headers or {})).response()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}
        return FileResponse(STATIC_DIR / "index.html", headers=headers)

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return _health(models, queue, options)

    @app.post("/api/colorize")
    async def colorize(request: Request) -> Response:
        return await _answer(_colorize(request, models, queue, results, options))

    @app.get("/api/results/{key}")
    async def result(key: str, request: Request) -> Response:
        return await _answer(_render(key, dict(request.query_params), models, queue, results))

    @app.post("/api/results/{key}/preview")
    async def hint_preview(key: str, request: Request) -> Response:
        return await _answer(_hint_preview(key, request, models, queue, results, options))

    @app.post("/api/results/{key}/suggest")
    async def suggest(key: str, request: Request) -> Response:
        return await _answer(_suggest(key, request, models, queue, results, options))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _health(models: ModelSet, queue: WorkQueue, options: WebOptions) -> dict[str, Any]:
    default = models.colorizer(None)
    return {
        "status": "ok",
        "model": models.default,
        "models": models.describe(),
        "device": str(default.device),
        "size": int(default.size),
        "extra_sizes": list(default.extra_sizes),  # averaged in at the model's default size
        "busy": queue.busy,
        "max_queue": queue.max_queue,
        "max_upload_bytes": options.max_upload_bytes,
        "max_pixels": options.max_pixels,
        "max_saturation": fields.MAX_SATURATION,
    }


async def _colorize(
    request: Request, models: ModelSet, queue: WorkQueue, results: ResultStore, opts: WebOptions
) -> Response:
    if queue.full():  # refuse before reading a body that could not be queued anyway
        raise _busy(queue)
    upload = await read_upload(
        request, max_upload_bytes=opts.max_upload_bytes, timeout_s=opts.body_timeout_s
    )
    how = fields.colorize_options(upload.fields)
    render = fields.render_options(upload.fields)
    models.colorizer(how.model)  # an unknown model is a 400 before the queue
    if not queue.try_reserve():  # the slot is taken only now, with the upload in hand
        raise _busy(queue)

    def job() -> tuple[bytes, str, str | None, photo.KeptResult]:
        kept = photo.colorize_photo(
            models, upload.data, how, max_pixels=opts.max_pixels,
            metadata=output_metadata(upload.data),
        )  # fmt: skip
        # A result with hints is a download: the page previews hints on the kept one.
        key = None if how.hints else results.add(kept)
        data, media_type = photo.render(models.colorizer(how.model), kept, render)
        return data, media_type, key, kept

    data, media_type, key, kept = await queue.run(job)
    height, width = kept.full.shape[:2]
    source = "x".join(map(str, kept.source_size))
    headers = {**NO_STORE, "X-Image-Size": f"{width}x{height}", "X-Source-Size": source}
    if key is not None:
        headers["X-Result-Id"] = key
    return Response(data, media_type=media_type, headers=headers)


async def _render(
    key: str, query: dict[str, str], models: ModelSet, queue: WorkQueue, results: ResultStore
) -> Response:
    options = fields.render_options(query)
    work = partial(photo.render, models.colorizer(None), options=options)
    data, media_type = await _on_kept(results, queue, key, work)
    return Response(data, media_type=media_type, headers=NO_STORE)


async def _on_kept(results: ResultStore, queue: WorkQueue, key: str, work: Callable[..., T]) -> T:
    """``work(kept=...)`` on the kept result ``key``, in a queue slot (404 if no longer kept,
    503 if the queue is full)."""
    kept = results.get(key)
    if kept is None:
        raise ApiError(404, "this result is no longer kept on the server; colorize the photo again")
    if not queue.try_reserve():
        raise _busy(queue)
    return await queue.run(partial(work, kept=kept))


async def _hint_preview(
    key: str,
    request: Request,
    models: ModelSet,
    queue: WorkQueue,
    results: ResultStore,
    opts: WebOptions,
) -> Response:
    body = await read_json(request, max_bytes=MAX_JSON_BYTES, timeout_s=opts.body_timeout_s)
    hints = fields.hints_field(body.get("hints"))
    saturation = body.get("saturation")
    options = fields.render_options({"saturation": "" if saturation is None else str(saturation)})
    work = partial(hinting.preview, models, hints=hints, options=options)
    data, media_type, (width, height) = await _on_kept(results, queue, key, work)
    return Response(
        data, media_type=media_type, headers={**NO_STORE, "X-Image-Size": f"{width}x{height}"}
    )


async def _suggest(
    key: str,
    request: Request,
    models: ModelSet,
    queue: WorkQueue,
    results: ResultStore,
    opts: WebOptions,
) -> Response:
    body = await read_json(request, max_bytes=MAX_JSON_BYTES, timeout_s=opts.body_timeout_s)
    point, count = hinting.point_field(body), hinting.count_field(body)
    hints = fields.hints_field(body.get("hints"))
    work = partial(hinting.suggestions, models, point=point, hints=hints, k=count)
    colours = await _on_kept(results, queue, key, work)
    return JSONResponse({"colors": colours}, headers=NO_STORE)


async def _answer(work: Any) -> Response:
    """Await a request's work; every failure becomes a one-line JSON error."""
    try:
        return await work
    except ApiError as exc:
        return exc.response()
    except PixcolorError as exc:
        logger.error("request failed: %s", exc)
        return ApiError(500, f"colorization failed: {exc}").response()
    except Exception:  # a bug: log it, and still answer the page in JSON
        logger.exception("request failed")
        return ApiError(500, "colorization failed: internal error (see the server log)").response()


def _busy(queue: WorkQueue) -> ApiError:
    return ApiError(
        503,
        f"the server is busy with {queue.max_queue} photos; try again in {RETRY_AFTER_S} s",
        {"Retry-After": str(RETRY_AFTER_S)},
    )
