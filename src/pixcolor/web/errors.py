"""``ApiError``: a failed request, answered as JSON ``{"error": message}`` with an HTTP status."""

from __future__ import annotations

from fastapi.responses import JSONResponse

MIB = 2**20


class ApiError(Exception):
    """A failed request: its HTTP status, a one-line message for the page and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """The JSON response for this error."""
        return JSONResponse({"error": self.message}, status_code=self.status, headers=self.headers)


def upload_too_large(max_upload_bytes: int) -> ApiError:
    """413 naming the per-photo limit in MiB (or bytes, for tiny test limits)."""
    if max_upload_bytes >= MIB:
        limit = f"{max_upload_bytes / MIB:.3g} MiB"
    else:
        limit = f"{max_upload_bytes} bytes"
    return ApiError(413, f"upload too large: the limit is {limit} per photo")
