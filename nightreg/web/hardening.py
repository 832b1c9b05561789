"""Small ASGI pieces every answer shares: security headers, a request log without secrets,
and a deadline for request bodies.

They wrap the whole application (see `harden`), not each route: Litestar answers an unknown
path (404), a wrong method (405) and a failed CSRF check (403) outside the routes' middleware,
and those answers need the same headers and the same log line as every other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from nightreg.metrics import UNMATCHED, observe_request

log = logging.getLogger("nightreg.request")

# No inline script or style and no eval: htmx is configured for that in base.html's
# <meta name="htmx-config"> (allowEval false, includeIndicatorStyles false).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
# One year, subdomains included (ASVS 5.0 V3.4.1 at level 2).
HSTS = "max-age=31536000; includeSubDomains"
STATIC_PREFIX = "/static/"
# A site's logo and accent stylesheet (public, named by their version; kiosk/branding.py):
# their handlers set their own cache header.
BRAND_PREFIX = "/brand/"
# The icons browsers ask for at the root, served from the static folder (nightreg.app).
ICONS = frozenset({"/favicon.ico", "/apple-touch-icon.png"})
STATIC_CACHE_VERSIONED = "public, max-age=31536000, immutable"
STATIC_CACHE = "public, max-age=86400"
# The minimum pace a declared body must keep after the fixed allowance (64 KiB a second).
BODY_BYTES_PER_SECOND = 64 * 1024


class SecurityHeadersMiddleware:
    """CSP without inline script, no framing, no sniffing, and no caching of personal data.

    Every page, API answer and error may carry personal data (a form being typed, a visit),
    so only static files may be cached.
    """

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_brand = scope.get("path", "").startswith(BRAND_PREFIX)
        is_static = scope.get("path", "").startswith(STATIC_PREFIX) or scope.get("path") in ICONS
        # A URL with the files' version (`?v=`) never changes its content: a year, immutable.
        # Without it (a bookmark, /favicon.ico) a day, so that a new release shows in a day.
        versioned = b"v=" in scope.get("query_string", b"")
        static_cache = STATIC_CACHE_VERSIONED if versioned else STATIC_CACHE

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if self.https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if is_static:
                    if message["status"] == 200:
                        headers["Cache-Control"] = static_cache
                elif not is_brand:
                    headers["Cache-Control"] = "no-store"
                if self.https:
                    # In place: MutableScopeHeaders above holds this very list.
                    raw = cast("list[tuple[bytes, bytes]]", message["headers"])
                    raw[:] = [_secure_cookie(h) for h in raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _secure_cookie(header: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    """Over https every Set-Cookie is Secure, also a removal that forgot to say so (a browser
    ignores the removal of a __Host- cookie that is not Secure)."""
    name, value = header
    if name.lower() != b"set-cookie":
        return header
    attributes = {part.strip().split(b"=", 1)[0].lower() for part in value.split(b";")[1:]}
    return header if b"secure" in attributes else (name, value + b"; Secure")


class RequestLogMiddleware:
    """Logs method, route template, status and time; never a body, cookie, header or token.

    The route template (``/k/v/{vtoken}``) is logged instead of the path, because paths
    carry the private link's token and the point's QR token; the query string is never logged.
    The same labels and time go into the latency histogram of /metrics (nightreg.metrics).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def record_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            seconds = time.perf_counter() - started
            template = scope.get("path_template") or UNMATCHED
            method = str(scope.get("method", "-"))
            observe_request(method, template, status["code"], seconds)
            log.info("%s %s %s %.1fms", method, template, status["code"], seconds * 1000)


class BodyTimeout(HTTPException):
    """The request body did not arrive in time (a slow or stalled client)."""

    status_code = 408
    detail = "the request body did not arrive in time"


class BodyTimeoutMiddleware:
    """A deadline for reading a request body: `seconds`, plus a second per 64 KiB declared.

    uvicorn waits for a body as long as the client keeps the connection open, so a client
    that sends the headers and then a byte now and then would hold a request (and its
    database work) open for ever. Reading past the deadline raises BodyTimeout, which the
    error handler answers with 408 and `Connection: close`.
    """

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = 0
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                declared = int(value) if value.isdigit() and len(value) < 16 else 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds + declared / BODY_BYTES_PER_SECOND
        body_done = False

        async def receive_in_time() -> ReceiveMessage:
            nonlocal body_done
            if body_done:
                # After the body only a disconnect can come; waiting for it is not reading.
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout() from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, receive_in_time, send)


def harden(app: Litestar, *, https: bool, body_timeout_seconds: float) -> Litestar:
    """Wrap the whole application (outside Litestar's own exception handling) in the above.

    Litestar builds `asgi_handler` once, in its constructor: the router inside the
    application-wide exception handler. Wrapping it keeps the app a Litestar app (its state,
    routes and lifespan) while every answer passes through the headers and the log.
    """
    handler: ASGIApp = app.asgi_handler
    handler = BodyTimeoutMiddleware(handler, seconds=body_timeout_seconds)
    handler = SecurityHeadersMiddleware(handler, https=https)
    app.asgi_handler = RequestLogMiddleware(handler)
    return app
