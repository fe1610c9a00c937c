"""What keeps other web pages out: a strict Content-Security-Policy and a ``Host:`` check.

The ``Host:`` check stops DNS rebinding: a page on ``evil.example`` that points its own name at
127.0.0.1 reaches a local server with the browser's blessing, but its requests still say
``Host: evil.example``. Only the names the server was bound to (and the loopback names) pass.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from pixcolor.web.errors import ApiError
from pixcolor.web.options import LOOPBACK_HOSTS

# The page loads nothing from elsewhere and runs no inline script; blob: shows the result.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# Bind addresses that listen on every interface.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def allowed_hosts(bind_host: str, extra: Collection[str] = ()) -> frozenset[str]:
    """The ``Host:`` names a server bound to ``bind_host`` answers to.

    The loopback names, ``bind_host`` itself and ``extra``; for a wildcard bind (``0.0.0.0``)
    also ``*ip``, which admits any IP address literal (DNS rebinding needs a name).
    """
    names = set(LOOPBACK_HOSTS) | {_bare(bind_host)} | {_bare(h) for h in extra}
    if _bare(bind_host) in WILDCARD_HOSTS:
        names.add("*ip")
    return frozenset(names - {""})


class HostCheck:
    """ASGI middleware answering 421 to requests whose ``Host:`` is not an allowed name."""

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(_bare(h) for h in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.accepts(_host_header(scope)):
            names = ", ".join(sorted(self.allowed - {"*ip"}))
            error = ApiError(
                421,
                "this server answers only to the names it was started for "
                f"({names}); start it with --allow-host NAME to add one",
                {"Connection": "close"},
            )
            await error.response()(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def accepts(self, host_header: str | None) -> bool:
        """True for a ``Host:`` value (``name[:port]``) whose name is allowed."""
        if not host_header:
            return False
        try:
            name = urlsplit("//" + host_header).hostname or ""
        except ValueError:
            return False
        if name in self.allowed:
            return True
        return "*ip" in self.allowed and _is_ip(name)


def _host_header(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"host":
            return value.decode("latin-1")
    return None


def _bare(host: str) -> str:
    """A host name or address, lower case, without IPv6 brackets."""
    return host.strip().strip("[]").lower()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
