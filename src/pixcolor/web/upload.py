"""Reading one upload: the body streamed under a size and a time limit into Starlette's parser.

The multipart parsing itself is Starlette's ``MultiPartParser`` (python-multipart underneath),
with its limits on files, fields and field sizes. Around it this module adds what a public
upload form needs: a body that passes the size limit is refused with 413 as soon as it does
(before the rest is read), a body not in within ``body_timeout_s`` gets 408, and the photo stays
in memory (it is never spooled to disk).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from pixcolor.web.errors import ApiError, upload_too_large

# Room in a request body for the multipart framing and the small form fields.
FORM_OVERHEAD_BYTES = 16 * 1024
# Largest non-file form field, and most text fields, that one request may carry.
MAX_FIELD_BYTES = 1024
MAX_FIELDS = 8


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
        max_part_size=MAX_FIELD_BYTES,
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
    return Upload(data, image.filename or "", fields)


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
