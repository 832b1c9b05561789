"""Experimental variants of the app, to measure a suggested change before anyone makes it.

Each factory patches the app in the server process only, then builds the usual bench app:

    python bench/checkin.py --db postgresql --app bench.variants:big_pool

They replace `nightreg.db.make_engine` (pool 16 without overflow on SQLite, 20 + 5 with
pre-ping on PostgreSQL since commit 9ab28d4) with a fixed pool without overflow, to see whether
the pool size still matters. The earlier variants for the SQLite write lock and the country
lists were removed: the app now does both itself.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.app import create_bench_app
from nightreg import db as nightreg_db

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
