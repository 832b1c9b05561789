"""When the database is gone or cannot be written: a friendly 503, never a traceback.

Two faults are told apart from every other error:

- *unreachable*: the database does not answer (PostgreSQL stopped or restarting, the network
  gone, a connection cut mid-query, the pool's wait for a connection ran out, SQLite's lock
  held past the busy timeout);
- *unwritable*: it answers but cannot store anything (disk full, a read-only file or file
  system, PostgreSQL's disk full or a read-only standby).

Both answer 503 with Retry-After: pages get a page in the visitor's language, the API its JSON
error shape with the code `unavailable`. Each fault is logged with its cause (driver message's
first line, never a statement or its values) once a minute at most, with the count of requests
refused since, so that an outage under load does not flood the log. Every other error goes on to
the app's generic handler.

Wiring (nightreg/app.py): `exception_handlers={Exception: with_unavailable(_error_handler)}`.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from litestar import Request, Response
from litestar.response import Template
from sqlalchemy import exc as sa_exc

from nightreg import i18n
from nightreg.i18n import N_

log = logging.getLogger("nightreg.unavailable")

UNREACHABLE = "unreachable"
UNWRITABLE = "unwritable"

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

# errno values of a network path to the database that is gone, and of a full or read-only disk.
_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
        errno.ENETUNREACH, errno.ENETDOWN, errno.ETIMEDOUT, errno.EPIPE,
    }
)  # fmt: skip
_UNWRITABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT})
# SQLite's primary result codes (sqlite3 errors carry sqlite_errorcode; the low byte is it).
_SQLITE_UNWRITABLE = frozenset({8, 10, 13})  # READONLY, IOERR, FULL
_SQLITE_UNREACHABLE = frozenset({5, 6, 14})  # BUSY, LOCKED, CANTOPEN
_SQLITE_MESSAGES = (
    ("database or disk is full", UNWRITABLE),
    ("readonly database", UNWRITABLE),
    ("disk i/o error", UNWRITABLE),
    ("unable to open database file", UNREACHABLE),
    ("database is locked", UNREACHABLE),
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The error, what SQLAlchemy wrapped (`orig`), and their causes and contexts."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _sqlstate(error: BaseException) -> str:
    # asyncpg and psycopg 3: sqlstate; psycopg2: pgcode.
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) else ""


def _one(error: BaseException) -> str | None:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return UNREACHABLE
    if isinstance(error, sa_exc.TimeoutError):  # no connection free in the pool in time
        return UNREACHABLE
    state = _sqlstate(error)
    if state in ("53100", "25006"):  # disk_full, read_only_sql_transaction
        return UNWRITABLE
    if state.startswith("08") or state in ("57P01", "57P02", "57P03", "53300"):
        # connection exceptions; admin/crash shutdown, cannot connect now; too many connections
        return UNREACHABLE
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        if code & 0xFF in _SQLITE_UNWRITABLE:
            return UNWRITABLE
        if code & 0xFF in _SQLITE_UNREACHABLE:
            return UNREACHABLE
    if type(error).__module__ == "sqlite3" or type(error).__name__ == "OperationalError":
        message = str(error).lower()
        for fragment, kind in _SQLITE_MESSAGES:
            if fragment in message:
                return kind
    if type(error).__module__.startswith("asyncpg") and "connection is closed" in str(error):
        return UNREACHABLE
    if isinstance(error, OSError):
        if error.errno in _UNWRITABLE_ERRNOS:
            return UNWRITABLE
        if isinstance(error, ConnectionError | TimeoutError) or error.errno in _UNREACHABLE_ERRNOS:
            return UNREACHABLE
        if type(error).__name__ == "gaierror":  # the database's host name does not resolve
            return UNREACHABLE
    return None


def classify(exc: BaseException) -> str | None:
    """UNREACHABLE, UNWRITABLE, or None for any other error (a bug, bad input, ...)."""
    if not isinstance(exc, sa_exc.SQLAlchemyError | OSError) and not any(
        type(e).__module__.split(".")[0] in ("asyncpg", "psycopg", "psycopg2", "sqlite3")
        for e in _chain(exc)
    ):
        return None  # the common case, and never a false positive on an app error
    for error in _chain(exc):
        kind = _one(error)
        if kind is not None:
            return kind
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Whether this error means "the database cannot be used now", not a fault of the request."""
    return classify(exc) is not None


def cause_of(exc: BaseException) -> str:
    """The deepest error's type and the first line of its message: no SQL, no values."""
    deepest = exc
    for error in _chain(exc):
        if not isinstance(error, sa_exc.SQLAlchemyError):
            deepest = error
            break
    first = (str(deepest).strip().splitlines() or [""])[0][:300]
    return f"{type(deepest).__name__}: {first}" if first else type(deepest).__name__


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
    if path.startswith(("/api/", "/health", "/schema")):
        return Response(
            {"code": "unavailable", "message": API_MESSAGES[kind], "field": None},
            status_code=503,
            headers=headers,
        )
    from nightreg.app import request_locale

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
