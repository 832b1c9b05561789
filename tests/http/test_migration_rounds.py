"""Migration 0013 (night rounds): a visit's source may be `round`, and widening that check on
SQLite loses nothing that points at a visit (it edits the table's definition, not its rows)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from nightreg import migrate
from nightreg.db import make_engine

SITE = (
    "INSERT INTO site (slug, name, kind, municipality, timezone, contact, rule_thresholds, "
    "is_active, created_at) VALUES ('mig-0013', 'Haven', 'marina', '', 'Europe/Amsterdam', '', "
    "'{}', true, '2026-07-14 19:00:00')"
)
VISIT = (
    "INSERT INTO visit (reference, site_id, kind, source, arrived_at, expected_departure_at, "
    "persons, guest_name, residence, subject_key, search_key, private_token_hash, created_at, "
    "updated_at) SELECT :ref, id, 'vessel', :source, '2026-07-14 19:00:00', "
    "'2026-07-15 10:00:00', 1, '?', '?', 'reg:x', '', :ref, '2026-07-14 19:00:00', "
    "'2026-07-14 19:00:00' FROM site WHERE slug = 'mig-0013'"
)
NOTE = (
    "INSERT INTO visit_note (visit_id, at, author, text) SELECT id, '2026-07-14 19:00:00', "
    "'test', 'paid two nights' FROM visit WHERE reference = 'MIG-1'"
)


@pytest.fixture
def scratch_url(tmp_path: Path, own_database_url: str) -> str:
    if os.environ.get("NIGHTREG_TEST_DATABASE_URL"):
        return own_database_url
    return f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"


def run(url: str, *statements: tuple[str, dict[str, str]]) -> list[tuple[object, ...]]:
    """Run statements in one transaction (foreign keys on, as the app's connections have them);
    the rows of the last."""

    async def go() -> list[tuple[object, ...]]:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                rows: list[tuple[object, ...]] = []
                for sql, params in statements:
                    result = await conn.execute(text(sql), params)
                    rows = [tuple(r) for r in result] if result.returns_rows else []
                return rows
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_0013_lets_a_visit_be_found_on_a_round_and_keeps_what_points_at_visits(scratch_url: str):
    migrate.upgrade(scratch_url)
    migrate.downgrade(scratch_url, "0009")
    try:
        run(scratch_url, (SITE, {}), (VISIT, {"ref": "MIG-1", "source": "kiosk"}), (NOTE, {}))
        with pytest.raises(IntegrityError):
            run(scratch_url, (VISIT, {"ref": "MIG-2", "source": "round"}))

        migrate.upgrade(scratch_url, "0013")
        run(scratch_url, (VISIT, {"ref": "MIG-2", "source": "round"}))
        with pytest.raises(IntegrityError):
            run(scratch_url, (VISIT, {"ref": "MIG-3", "source": "bogus"}))
        assert run(scratch_url, ("SELECT text FROM visit_note", {})) == [("paid two nights",)]

        migrate.downgrade(scratch_url, "0009")
        sources = run(scratch_url, ("SELECT reference, source FROM visit ORDER BY reference", {}))
        assert sources == [("MIG-1", "kiosk"), ("MIG-2", "staff")]
        assert run(scratch_url, ("SELECT text FROM visit_note", {})) == [("paid two nights",)]
    finally:
        migrate.upgrade(scratch_url)
