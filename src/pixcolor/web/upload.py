"""Reading one upload: the body streamed under a size and a time limit into Starlette's parser.

The multipart parsing itself is Starlette's ``MultiPartParser`` (python-multipart underneath),
with its limits on files, fields and field sizes. Around it this module adds what a public
upload form needs: a body that passes the size limit is refused with 413 as soon as it does
(before the rest is read), a body not in within ``body_timeout_s`` gets 408, and the photo stays
in memory (it is never spooled to disk). :func:`read_json` reads the small JSON bodies of the
hint calls under the same kind of limits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from pixcolor.web.errors import ApiError, upload_too_large
from pixcolor.web.fields import MAX_HINTS_BYTES

# Room in a request body for the multipart framing, the small form fields and the hints.
FORM_OVERHEAD_BYTES = 16 * 1024 + MAX_HINTS_BYTES
# Largest non-file form field (the hints field excepted), and most text fields, per request.
MAX_FIELD_BYTES = 1024
MAX_FIELDS = 8
# The one field allowed to be longer, and its limit.
LONG_FIELDS = {"hints": MAX_HINTS_BYTES}


@dataclass(frozen=True)
class Upload:
    """One photo as sent by the page."""

    data: bytes  # the file's bytes
    filename: str  # as the browser named it (may be empty)
    fields: dict[str, str]  # the text fields, stripped


async def read_upload(request: Request, *, max_upload_bytes: int, timeout_s: float) -> Upload:
    """Read and parse a ``multipart/form-data`` body with an ``image`` file field.

    Raises:
        ApiError: 400 for a body that is not such a form, malformed, interrupted or without an
            image; 408 when it is not in within ``timeout_s``; 413 as soon as the body passes
            ``max_upload_bytes`` plus the form's framing, or the image ``max_upload_bytes``.
    """
    _check_content_length(request, max_upload_bytes)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise ApiError(400, "send the photo as multipart/form-data with an 'image' file field")
    body = _limited_stream(request, max_upload_bytes + FORM_OVERHEAD_BYTES, max_upload_bytes)
    parser = MultiPartParser(
        request.headers,
        body,
        max_files=1,
        max_fields=MAX_FIELDS,
        max_part_size=max(MAX_FIELD_BYTES, *LONG_FIELDS.values()),
    )
    parser.spool_max_size = max_upload_bytes + FORM_OVERHEAD_BYTES  # keep the photo in memory
    try:
        form = await asyncio.wait_for(parser.parse(), timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(
            408,
            f"the upload was not complete after {timeout_s:g} s; try again on a faster connection",
            {"Connection": "close"},
        ) from None
    except MultiPartException as exc:
        if exc.message.startswith("Part exceeded maximum size"):
            raise ApiError(400, _too_long("a form field")) from None
        raise ApiError(400, f"malformed form data: {exc.message}") from None
    except ClientDisconnect:
        raise ApiError(400, "the upload was interrupted") from None
    try:
        image = form.get("image")
        if not isinstance(image, UploadFile):
            raise ApiError(400, "no 'image' file in the form")
        data = image.file.read()  # in memory: spool_max_size is above any accepted body
    finally:
        await form.close()
    if len(data) > max_upload_bytes:
        raise upload_too_large(max_upload_bytes)
    fields = {key: value.strip() for key, value in form.multi_items() if isinstance(value, str)}
    for key, value in fields.items():
        if len(value) > LONG_FIELDS.get(key, MAX_FIELD_BYTES):
            raise ApiError(400, _too_long(f"form field {key[:40]!r}"))
    return Upload(data, image.filename or "", fields)


async def read_json(request: Request, *, max_bytes: int, timeout_s: float) -> dict[str, object]:
    """Read a JSON object body of at most ``max_bytes``, within ``timeout_s``.

    Raises:
        ApiError: 400 for a body that is not a JSON object, 408 when it is late, 413 when it
            is over ``max_bytes``.
    """
    too_large = ApiError(413, f"request body over the limit of {max_bytes // 1024} KiB")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise too_large

    async def read() -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise too_large
        return bytes(body)

    try:
        body = await asyncio.wait_for(read(), timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(
            408, f"the request was not complete after {timeout_s:g} s", {"Connection": "close"}
        ) from None
    except ClientDisconnect:
        raise ApiError(400, "the request was interrupted") from None
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, f"the body is not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _too_long(what: str) -> str:
    return (
        f"{what} is too long (hints at most {MAX_HINTS_BYTES // 1024} KiB, "
        f"other fields {MAX_FIELD_BYTES} bytes)"
    )


def _check_content_length(request: Request, max_upload_bytes: int) -> None:
    """Refuse a body announced as too large before reading any of it."""
    value = request.headers.get("content-length")
    if value is None:
        return
    try:
        length = int(value)
    except ValueError:
        raise ApiError(400, f"bad Content-Length header: {value[:40]!r}") from None
    if length > max_upload_bytes + FORM_OVERHEAD_BYTES:
        raise upload_too_large(max_upload_bytes)


async def _limited_stream(
    request: Request, max_body_bytes: int, max_upload_bytes: int
) -> AsyncIterator[bytes]:
    """The request body, stopped with 413 once more than ``max_body_bytes`` have come."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body_bytes:
            raise upload_too_large(max_upload_bytes)
        yield chunk
