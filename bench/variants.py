"""Experimental variants of the app, to measure a suggested change before anyone makes it.

Each factory patches the app in the server process only, then builds the usual bench app:

    python bench/checkin.py --db postgresql --app bench.variants:big_pool

They reach into the app's internals (`nightreg.db.make_engine`, `Database.write`,
`nightreg.i18n.countries`) as they were on 2026-11-28; if those change, a variant may stop
working or stop meaning anything. They are measurements, not proposals for the code as is.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from bench.app import create_bench_app
from nightreg import db as nightreg_db
from nightreg import i18n

POOL_SIZE = 50  # as many connections as the benchmark has visitors: no overflow churn


def _pool_engine(size: int, pre_ping: bool) -> Callable[..., AsyncEngine]:
    original = nightreg_db.make_engine

    def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
        if url.startswith("sqlite"):
            engine = create_async_engine(
                url, echo=echo, pool_size=size, max_overflow=0, connect_args={"timeout": 10}
            )
            nightreg_db._sqlite_setup(engine)
            return engine
        if not url.startswith("postgresql"):
            return original(url, echo=echo)
        return create_async_engine(
            url, echo=echo, pool_size=size, max_overflow=0, pool_pre_ping=pre_ping
        )

    return make_engine


def _patch_pool(size: int = POOL_SIZE, pre_ping: bool = False) -> None:
    nightreg_db.make_engine = _pool_engine(size, pre_ping)


def _patch_sqlite_write_lock() -> None:
    """Writers on SQLite queue on an asyncio.Lock (FIFO) instead of SQLite's busy handler."""
    locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()

    @asynccontextmanager
    async def write(self: nightreg_db.Database) -> AsyncIterator[AsyncSession]:
        if not self.is_sqlite:
            async with self.writer() as session, session.begin():
                yield session
            return
        lock = locks.setdefault(self, asyncio.Lock())
        async with lock, self.writer() as session, session.begin():
            yield session

    nightreg_db.Database.write = write  # type: ignore[method-assign]


def _patch_few_countries(keep: int = 10) -> None:
    """Upper bound for caching the country <option> lists: offer only `keep` countries."""
    original = i18n.countries

    def countries(locale: str) -> tuple[tuple[str, str], ...]:
        return original(locale)[:keep]

    i18n.countries = countries  # type: ignore[assignment]


def big_pool() -> Litestar:
    """Pool of 50 without overflow; no pre-ping on PostgreSQL."""
    _patch_pool()
    return create_bench_app()


def big_pool_with_ping() -> Litestar:
    """Pool of 50 without overflow, pre-ping kept (to separate the two effects)."""
    _patch_pool(pre_ping=True)
    return create_bench_app()


def pool_20() -> Litestar:
    """Pool of 20 without overflow; no pre-ping on PostgreSQL."""
    _patch_pool(size=20)
    return create_bench_app()


def sqlite_write_lock() -> Litestar:
    _patch_sqlite_write_lock()
    return create_bench_app()


def big_pool_and_write_lock() -> Litestar:
    _patch_pool()
    _patch_sqlite_write_lock()
    return create_bench_app()


def few_countries() -> Litestar:
    """big_pool_and_write_lock, and only 10 countries in each <select>."""
    _patch_pool()
    _patch_sqlite_write_lock()
    _patch_few_countries()
    return create_bench_app()
