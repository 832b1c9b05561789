"""When the database is gone or cannot be written: a friendly 503, never a traceback.

nightreg.db_faults tells the two faults (unreachable, unwritable) from every other error; this
answers both with 503 and Retry-After: pages get a page in the visitor's language, the API its
JSON error shape with the code `unavailable`. Each fault is logged with its cause (driver
message's first line, never a statement or its values) once a minute at most, with the count of
requests refused since, so that an outage under load does not flood the log. Every other error
goes on to the app's generic handler.

Wiring (nightreg/app.py): `exception_handlers={Exception: with_unavailable(handle_error)}`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.response import Template

from nightreg import i18n
from nightreg.db_faults import UNREACHABLE, UNWRITABLE, cause_of, classify
from nightreg.i18n import N_
from nightreg.web.locale import request_locale

# The logger's name predates this module; operators' log filters use it.
log = logging.getLogger("nightreg.unavailable")

# Seconds a client is asked to wait before trying again (Retry-After).
RETRY_AFTER_SECONDS = 30
# A fault is logged at most this often (seconds); the requests refused in between are counted.
LOG_EVERY_SECONDS = 60.0

PAGES = {
    UNREACHABLE: (
        N_("The register is not available right now."),
        N_("Please try again in a minute. If it keeps happening, ask the harbour office."),
    ),
    UNWRITABLE: (
        N_("The register cannot be written right now."),
        N_("Nothing new can be saved until this is fixed. Please tell the harbour office."),
    ),
}
API_MESSAGES = {
    UNREACHABLE: "the database is not reachable; try again later",
    UNWRITABLE: "the register cannot be written; try again later",
}


class _OnceAMinute:
    """Log each kind of fault when it starts, then at most once a minute with a count."""

    def __init__(self, every: float = LOG_EVERY_SECONDS) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._refused: dict[str, int] = {}

    def __call__(self, kind: str, cause: str, where: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._refused[kind] = self._refused.get(kind, 0) + 1
            last = self._last.get(kind)
            if last is not None and now - last < self.every:
                return
            refused, self._refused[kind] = self._refused[kind], 0
            self._last[kind] = now
        log.error(
            "database %s (%s); answered 503 on %s; %d request(s) refused since the last report",
            kind, cause, where, refused,
        )  # fmt: skip

    def reset(self) -> None:
        with self._lock:
            self._last.clear()
            self._refused.clear()


report = _OnceAMinute()


def unavailable_response(request: Request[Any, Any, Any], exc: BaseException) -> Response | None:
    """The 503 answer for a database fault, or None when `exc` is not one."""
    kind = classify(exc)
    if kind is None:
        return None
    path = request.url.path
    report(kind, cause_of(exc), f"{request.method} {path.split('/')[1] or '/'}")
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if path.startswith(("/api/", "/health", "/ready", "/schema")):
        return Response(
            {"code": "unavailable", "message": API_MESSAGES[kind], "field": None},
            status_code=503,
            headers=headers,
        )
    i18n.set_locale(request_locale(request))
    title, hint = PAGES[kind]
    return Template(
        template_name="kiosk/unavailable.html",
        context={"title": title, "hint": hint},
        status_code=503,
        headers=headers,
    )


Handler = Callable[[Request[Any, Any, Any], Exception], Response]


def with_unavailable(handler: Handler) -> Handler:
    """The app's exception handler, answering database faults with 503 first."""

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response:
        answer = unavailable_response(request, exc)
        return answer if answer is not None else handler(request, exc)

    handle.__name__ = getattr(handler, "__name__", "handle")
    return handle
