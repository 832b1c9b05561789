"""The migrations build the whole schema from empty and take it down again, on both databases."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from nightreg import migrate
from nightreg.db import make_engine
from nightreg.models import Visit

ON_POSTGRESQL = bool(os.environ.get("NIGHTREG_TEST_DATABASE_URL"))
postgresql_only = pytest.mark.skipif(
    not ON_POSTGRESQL,
    reason="the trigram search index exists on PostgreSQL only (pg_trgm, GIN); "
    "set NIGHTREG_TEST_DATABASE_URL to run this",
)


def table_names(url: str) -> set[str]:
    async def names() -> set[str]:
        engine = make_engine(url)
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        await engine.dispose()
        return found

    return asyncio.run(names())


def visit_indexes(url: str) -> dict[str, dict[str, Any]]:
    """The visit table's named indexes as the database reports them."""

    async def found() -> dict[str, dict[str, Any]]:
        engine = make_engine(url)
        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda sync: inspect(sync).get_indexes("visit"))
        await engine.dispose()
        return {str(ix["name"]): dict(ix) for ix in indexes if ix["name"]}

    return asyncio.run(found())


@pytest.fixture
def scratch_url(tmp_path: Path, own_database_url: str) -> str:
    # On PostgreSQL a database of the test's own, which it may migrate up and down.
    if os.environ.get("NIGHTREG_TEST_DATABASE_URL"):
        return own_database_url
    return f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"


def test_base_to_head_to_base_to_head_leaves_the_full_schema(scratch_url: str):
    migrate.upgrade(scratch_url)
    assert {"site", "checkin_point", "visit", "app_user", "user_site"} <= table_names(scratch_url)
    migrate.downgrade(scratch_url, "base")
    assert table_names(scratch_url) <= {"alembic_version"}
    migrate.upgrade(scratch_url)
    assert "visit" in table_names(scratch_url)


def test_the_register_has_indexes_for_present_now_one_subject_and_a_date_range(scratch_url: str):
    migrate.upgrade(scratch_url)
    indexes = {name: list(ix["column_names"]) for name, ix in visit_indexes(scratch_url).items()}
    assert indexes["ix_visit_present"] == ["site_id", "arrived_at"]
    assert indexes["ix_visit_subject_scan"] == [
        "subject_key",
        "arrived_at",
        "departed_at",
        "site_id",
    ]
    assert indexes["ix_visit_site_arrived"] == ["site_id", "arrived_at"]
    assert indexes["ix_visit_updated_at"] == ["updated_at"]


# --- 0003: the trigram index for the register search (PostgreSQL only) -----------------------

TRIGRAM_INDEX = "ix_visit_search_trgm"


@postgresql_only
def test_on_postgresql_the_search_key_has_a_trigram_gin_index(scratch_url: str):
    migrate.upgrade(scratch_url)
    index = visit_indexes(scratch_url)[TRIGRAM_INDEX]
    assert index["column_names"] == ["search_key"]
    assert index["dialect_options"]["postgresql_using"] == "gin"
    assert index["dialect_options"]["postgresql_ops"] == {"search_key": "gin_trgm_ops"}


def test_on_sqlite_there_is_no_trigram_index(tmp_path: Path):
    # Always on a scratch SQLite file, also in the PostgreSQL run: 0003 does nothing there.
    url = f"sqlite+aiosqlite:///{tmp_path / 'no-trigram.db'}"
    migrate.upgrade(url)
    indexes = visit_indexes(url)
    assert TRIGRAM_INDEX not in indexes
    assert "ix_visit_site_arrived" in indexes
    migrate.downgrade(url, "0002")
    migrate.upgrade(url)
    assert TRIGRAM_INDEX not in visit_indexes(url)


def test_0003_down_and_up_again_drops_and_restores_the_trigram_index(scratch_url: str):
    migrate.upgrade(scratch_url)
    try:
        migrate.downgrade(scratch_url, "0002")
        assert TRIGRAM_INDEX not in visit_indexes(scratch_url)
        if ON_POSTGRESQL:
            # The downgrade leaves the extension: other things in the database may use it.
            assert "pg_trgm" in installed_extensions(scratch_url)
    finally:
        migrate.upgrade(scratch_url)
    assert (TRIGRAM_INDEX in visit_indexes(scratch_url)) is ON_POSTGRESQL


def installed_extensions(url: str) -> set[str]:
    async def names() -> set[str]:
        engine = make_engine(url)
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT extname FROM pg_extension"))
            found = {row[0] for row in rows}
        await engine.dispose()
        return found

    return asyncio.run(names())


@postgresql_only
def test_a_search_for_a_rare_fragment_can_use_the_trigram_index(scratch_url: str):
    """EXPLAIN the register search's shape (one site, LIKE '%…%', newest first, a page).

    A site with 5,000 visits is made in a transaction that is rolled back, and analysed so
    the planner knows the fragment is rare. Sequential scans are switched off so the answer
    does not depend on cost details of a small table; the other way left, the site's own
    index, reads every visit of the site and costs many times more.
    """
    migrate.upgrade(scratch_url)
    visits = 5_000
    fragment = "zqxjw"

    async def plan() -> str:
        engine = make_engine(scratch_url)
        try:
            async with engine.connect() as conn:
                transaction = await conn.begin()
                try:
                    site_id = (
                        await conn.execute(
                            text(
                                "INSERT INTO site (slug, name, kind, municipality, timezone,"
                                " contact, is_active, created_at)"
                                " VALUES ('trigram-probe', 'Probe', 'marina', '',"
                                " 'Europe/Amsterdam', '', true, now()) RETURNING id"
                            )
                        )
                    ).scalar_one()
                    await conn.execute(
                        text(
                            "INSERT INTO visit (reference, site_id, kind, source, arrived_at,"
                            " expected_departure_at, persons, guest_name, residence,"
                            " subject_key, search_key, private_token_hash, created_at,"
                            " updated_at)"
                            " SELECT 'TRGM' || g, :site_id, 'vessel', 'staff',"
                            " now() - g * interval '1 minute', now(), 1, 'Gast ' || g,"
                            " 'Ergens', 'person:probe-' || g,"
                            " 'gast ' || g || ' de vries ' || md5(g::text),"
                            " md5('trigram-probe-' || g), now(), now()"
                            " FROM generate_series(1, :visits) AS g"
                        ),
                        {"site_id": site_id, "visits": visits},
                    )
                    # As autovacuum would: move the new rows from the GIN index's pending list
                    # into the index proper (the planner charges a scan of the whole list),
                    # and give the planner statistics.
                    await conn.execute(
                        text(f"SELECT gin_clean_pending_list('{TRIGRAM_INDEX}'::regclass)")
                    )
                    await conn.execute(text("ANALYZE visit"))
                    await conn.execute(text("SET LOCAL enable_seqscan = off"))
                    stmt = (
                        select(Visit.id)
                        .where(
                            Visit.site_id == site_id,
                            Visit.search_key.contains(fragment, autoescape=True),
                        )
                        .order_by(Visit.arrived_at.desc(), Visit.id.desc())
                        .limit(26)
                    )
                    sql = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
                    rows = await conn.execute(text(f"EXPLAIN {sql}"))
                    return "\n".join(str(row[0]) for row in rows)
                finally:
                    await transaction.rollback()
        finally:
            await engine.dispose()

    explained = asyncio.run(plan())
    assert TRIGRAM_INDEX in explained, explained
