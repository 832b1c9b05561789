"""Engine, sessions and the metadata naming convention, the same for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

# Named constraints: Alembic's batch mode on SQLite can only drop what has a name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_setup(engine: AsyncEngine) -> None:
    """WAL, foreign keys and a busy timeout on every connection; explicit BEGIN.

    pysqlite's own transaction handling starts transactions lazily and cannot start a write
    transaction up front. A transaction that reads and then writes can then fail at once with
    "database is locked" when another writer got there first, without waiting for the busy
    timeout. Writers therefore ask for BEGIN IMMEDIATE (execution option `sqlite_begin`).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        # NORMAL is durable across application crashes in WAL mode; only an OS crash or power
        # loss can lose the last commits, which FULL would cost an fsync per commit to prevent.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


# Loggers that would write SQL parameters, result rows or driver calls, i.e. personal data:
# held at WARNING whatever the root logger's level (NIGHTREG_LOG_LEVEL=DEBUG included).
_QUIET_LOGGERS = ("sqlalchemy.engine", "aiosqlite")


def _keep_data_out_of_logs() -> None:
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    # Neither a log line nor a database error's message (which may end up in a log) carries
    # the values of a statement: the loggers above stay quiet, and hide_parameters below.
    if not echo:
        _keep_data_out_of_logs()
    if url.startswith("sqlite"):
        # A fixed pool: opening a connection costs a thread and a file handle, and one
        # writer at a time is all SQLite allows anyway; waiting requests queue for a connection.
        engine = create_async_engine(
            url,
            echo=echo,
            hide_parameters=True,
            pool_size=16,
            max_overflow=0,
            pool_timeout=30,
            connect_args={"timeout": 10},
        )
        _sqlite_setup(engine)
        return engine
    # Connections that open and close under load cost PostgreSQL a backend process each:
    # keep enough of them open for a busy instance, with a little room above.
    # PostgreSQL's JIT compiles a plan it thinks expensive, which costs ~80 ms per statement on
    # the scan's grouped reads and never pays back on queries this short: off.
    # A database that does not answer makes a request fail within seconds (a 503), not hang:
    # a connect timeout, and a bounded wait for a pooled connection.
    return create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=20,
        max_overflow=5,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args=_postgres_connect_args(url),
    )


def _postgres_connect_args(url: str) -> dict[str, Any]:
    if url.startswith("postgresql+asyncpg"):
        return {"server_settings": {"jit": "off"}, "timeout": 5}
    return {"options": "-c jit=off", "connect_timeout": 5}


class Database:
    """One engine and two session factories: one for reading, one for writing.

    On PostgreSQL they are the same; on SQLite the writer begins its transaction IMMEDIATE.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.is_sqlite = url.startswith("sqlite")
        write_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.is_sqlite
            else self.engine
        )
        self.write_engine = write_engine
        self.reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self.writer = async_sessionmaker(write_engine, expire_on_commit=False)
        # SQLite has one writer at a time, and its busy handler polls with sleeps of up to
        # 100 ms: writers of this process queue here instead, in order and without sleeping.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        self._counter_engine: AsyncEngine | None = None

    @property
    def counter_engine(self) -> AsyncEngine:
        """PostgreSQL only: a small pool of its own for one-statement counters (rate limits).

        Autocommit (the statement is its transaction: one round trip, no BEGIN and COMMIT)
        and no ping before each use (that would be a second round trip): the caller tries
        once more when a pooled connection turns out to be dead (nightreg.ratelimit).
        """
        if self.is_sqlite:
            raise RuntimeError("the shared counters need PostgreSQL")
        if self._counter_engine is None:
            self._counter_engine = create_async_engine(
                self.url,
                hide_parameters=True,
                isolation_level="AUTOCOMMIT",
                # Requests counting the same keys share a statement: a few connections serve
                # a busy instance (README, "Rate limits").
                pool_size=3,
                max_overflow=2,
                pool_timeout=10,
                connect_args=_postgres_connect_args(self.url),
            )
        return self._counter_engine

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.reader() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed on success and rolled back on error."""
        async with self.write_turn(), self.writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write_connection(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a write transaction: the cheapest way to insert many rows."""
        async with self.write_turn(), self.write_engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any failure means "not reachable" to a health check
            return False
        return True

    async def dispose(self) -> None:
        if self._counter_engine is not None:
            await self._counter_engine.dispose()
        await self.engine.dispose()
