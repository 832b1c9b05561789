"""Small ASGI pieces every page shares: security headers and a request log without secrets."""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("nightreg.request")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


class SecurityHeadersMiddleware(ASGIMiddleware):
    """CSP without inline script, no framing, no sniffing, and no caching of personal pages.

    Litestar has no such middleware. Every HTML page may carry personal data (a form being
    typed, a visit), so only static files may be cached.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, https: bool) -> None:
        self.https = https

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        is_static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
                if self.https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
                if not is_static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await next_app(scope, receive, send_with_headers)


class RequestLogMiddleware(ASGIMiddleware):
    """Logs method, route template, status and time; never a body, cookie, header or token.

    The route template (``/k/v/{vtoken}``) is logged instead of the path, because paths
    carry the private link's token and the point's QR token.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def record_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, record_status)
        finally:
            template = scope.get("path_template") or "(unmatched)"
            log.info(
                "%s %s %s %.1fms",
                scope.get("method", "-"),
                template,
                status["code"],
                (time.perf_counter() - started) * 1000,
            )
