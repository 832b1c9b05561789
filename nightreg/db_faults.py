"""Is this error the database being gone or full? The database layer's answer, for every caller.

Two faults are told apart from every other error:

- *unreachable*: the database does not answer (PostgreSQL stopped or restarting, the network
  gone, a connection cut mid-query, the pool's wait for a connection ran out, SQLite's lock
  held past the busy timeout);
- *unwritable*: it answers but cannot store anything (disk full, a read-only file or file
  system, PostgreSQL's disk full or a read-only standby).

The web answers both with a 503 (nightreg.web.unavailable); a scheduled job skips its run and
tries again at the next (nightreg.jobs). Nothing here knows about either.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

UNREACHABLE = "unreachable"
UNWRITABLE = "unwritable"

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
