"""The migrations build the whole schema from empty and take it down again, on both databases."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import inspect

from nightreg import migrate
from nightreg.db import make_engine


def table_names(url: str) -> set[str]:
    async def names() -> set[str]:
        engine = make_engine(url)
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        await engine.dispose()
        return found

    return asyncio.run(names())


@pytest.fixture
def scratch_url(tmp_path: Path, database_url: str) -> str:
    # On PostgreSQL the shared test database is used: its tests make their own data anyway,
    # and the run ends at head again.
    if os.environ.get("NIGHTREG_TEST_DATABASE_URL"):
        return database_url
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

    async def index_columns() -> dict[str, list[str]]:
        engine = make_engine(scratch_url)
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda sync: inspect(sync).get_indexes("visit"))
        await engine.dispose()
        return {ix["name"]: list(ix["column_names"]) for ix in found if ix["name"]}

    indexes = asyncio.run(index_columns())
    assert indexes["ix_visit_present"] == ["site_id", "arrived_at"]
    assert indexes["ix_visit_subject_arrived"] == ["subject_key", "arrived_at"]
    assert indexes["ix_visit_site_arrived"] == ["site_id", "arrived_at"]
