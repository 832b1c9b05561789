"""The migrations build the whole schema from empty and take it down again, on both databases."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import column, insert, inspect, select, table, text

from nightreg import migrate
from nightreg.db import make_engine
from nightreg.models import JobRun, SharingAgreement, Site, Visit

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


# --- 0008: JSON columns ----------------------------------------------------------------------

# Text as 0007's code wrote it (json.dumps), per table: its JSON columns and the row's other
# required values. A blank value read as empty then, and reads as empty now.
JSON_ROWS: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "site": (
        {"rule_thresholds": '{"night_movement": {"count": 3}}'},
        {"slug": "json-probe", "name": "Probe", "kind": "marina", "municipality": "",
         "timezone": "Europe/Amsterdam", "contact": "", "is_active": True},
    ),
    "job_run": (
        {"counts": '{"visits": 3, "flags": 0}'},
        {"job": "json-probe", "trigger": "cli", "holder": "", "status": "ok"},
    ),
    "sharing_agreement": (
        {"rules": '["night_movement", "watchlist_hit"]', "fields": '["score", "site"]',
         "auto_rules": ""},
        {"name": "json-probe", "recipient": "RIEC", "reference": "JSON-1", "keep_days": 180,
         "created_by": "test"},
    ),
}  # fmt: skip
JSON_READ_BACK = {
    "site": {"rule_thresholds": {"night_movement": {"count": 3}}},
    "job_run": {"counts": {"visits": 3, "flags": 0}},
    "sharing_agreement": {
        "rules": ["night_movement", "watchlist_hit"],
        "fields": ["score", "site"],
        "auto_rules": [],
    },
}


def run_on(url: str, work: Any) -> Any:
    async def go() -> Any:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(go())


async def insert_json_rows(conn: Any) -> None:
    now, today = datetime(2026, 11, 30, 12, 0, tzinfo=UTC), date(2026, 11, 30)
    dated = {"site": {"created_at": now}, "job_run": {"started_at": now},
             "sharing_agreement": {"created_at": now, "valid_from": today}}  # fmt: skip
    for name, (json_text, other) in JSON_ROWS.items():
        # Untyped columns: the text goes in as 0007 stored it.
        values = {**json_text, **other, **dated[name]}
        rows = table(name, *(column(key) for key in values))
        await conn.execute(insert(rows).values(values))


async def read_json_rows(conn: Any) -> dict[str, dict[str, Any]]:
    """The probe rows' JSON columns through the models (after 0008: Python values)."""
    models = {"site": Site, "job_run": JobRun, "sharing_agreement": SharingAgreement}
    keys = {"site": Site.slug, "job_run": JobRun.job, "sharing_agreement": SharingAgreement.name}
    found = {}
    for name, model in models.items():
        columns = [getattr(model, key) for key in JSON_READ_BACK[name]]
        key = "json-probe"
        row = (await conn.execute(select(*columns).where(keys[name] == key))).one()
        found[name] = dict(zip(JSON_READ_BACK[name], row, strict=True))
    return found


async def read_json_text(conn: Any) -> dict[str, dict[str, Any]]:
    """The probe rows' JSON columns as stored text, parsed (after a downgrade to 0007)."""
    found = {}
    for name, (json_text, other) in JSON_ROWS.items():
        key_column = "slug" if name == "site" else ("job" if name == "job_run" else "name")
        rows = table(name, *(column(key) for key in [*json_text, key_column]))
        row = (
            await conn.execute(
                select(*(rows.c[key] for key in json_text)).where(
                    rows.c[key_column] == other[key_column]
                )
            )
        ).one()
        found[name] = {key: json.loads(value) for key, value in zip(json_text, row, strict=True)}
    return found


async def delete_json_rows(conn: Any) -> None:
    await conn.execute(text("DELETE FROM site WHERE slug = 'json-probe'"))
    await conn.execute(text("DELETE FROM job_run WHERE job = 'json-probe'"))
    await conn.execute(text("DELETE FROM sharing_agreement WHERE name = 'json-probe'"))


def test_0008_reads_rows_written_before_it_as_the_same_values_and_downgrades(scratch_url: str):
    migrate.upgrade(scratch_url)
    migrate.downgrade(scratch_url, "0007")
    try:
        run_on(scratch_url, insert_json_rows)
        migrate.upgrade(scratch_url, "0008")
        assert run_on(scratch_url, read_json_rows) == JSON_READ_BACK
        migrate.downgrade(scratch_url, "0007")
        assert run_on(scratch_url, read_json_text) == JSON_READ_BACK
    finally:
        migrate.upgrade(scratch_url)
        run_on(scratch_url, delete_json_rows)


# --- 0009: the keyed audit chain ---------------------------------------------------------------


def test_0009_keeps_the_events_written_before_it_verifying_and_chains_on_with_the_key(
    scratch_url: str,
):
    """Events of the keyless chain keep their hashes (key id sha256-legacy, valid up to the
    anchor's keyless_through_id); new events are keyed and the whole trail verifies."""
    from nightreg.db import Database
    from nightreg.services import audit
    from nightreg.services.access import CLI

    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    async def old_events(conn: Any) -> None:
        events = table(
            "audit_event", *(column(c) for c in (
                "at", "actor", "address", "action", "site_id", "object_type", "object_id",
                "object_ids", "details", "prev_hash", "hash"))
        )  # fmt: skip
        prev = audit.GENESIS
        for n in range(3):
            fields = {
                "at": at, "actor": "cli", "address": "", "action": "site_created",
                "site_id": None, "object_type": "", "object_id": None, "object_ids": "[]",
                "details": json.dumps({"before": n}),
            }  # fmt: skip
            digest = audit.event_hash(prev, fields)
            await conn.execute(insert(events).values(**fields, prev_hash=prev, hash=digest))
            prev = digest

    async def verify_and_append() -> audit.Verification:
        db = Database(scratch_url)
        try:
            async with db.write() as session:
                await audit.record(session, CLI, "site_changed", at=at, details={"n": 4})
            return await audit.verify(db)
        finally:
            await db.dispose()

    migrate.upgrade(scratch_url)
    migrate.downgrade(scratch_url, "0008")
    try:
        run_on(scratch_url, old_events)
        # 0009 and what follows it (today's code writes the columns of later revisions too).
        migrate.upgrade(scratch_url)
        result = asyncio.run(verify_and_append())
        assert result.intact, str(result)
        assert result.checked == 4
        migrate.downgrade(scratch_url, "0008")
    finally:
        migrate.upgrade(scratch_url)
        run_on(scratch_url, lambda conn: conn.execute(text("DELETE FROM audit_event")))
        run_on(scratch_url, lambda conn: conn.execute(text("DELETE FROM audit_anchor")))


def test_0015_marks_the_events_already_written_about_a_watchlist_hit_as_restricted(
    scratch_url: str,
):
    """Events about a restricted flag used to be hidden by looking the flag up, which the purge
    removes; 0015 marks those already written (here: the ones naming the restricted rule)."""
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    async def two_events(conn: Any) -> None:
        events = table(
            "audit_event", *(column(c) for c in (
                "at", "actor", "address", "action", "site_id", "object_type", "object_id",
                "object_ids", "details", "prev_hash", "hash"))
        )  # fmt: skip
        for n, rule in enumerate(("watchlist_hit", "night_movement")):
            details = json.dumps({"rule": rule}, separators=(",", ":"))
            await conn.execute(
                insert(events).values(
                    at=at, actor="system", address="", action="flag_raised", site_id=1,
                    object_type="flag", object_id=900 + n, object_ids="[]", details=details,
                    prev_hash=str(n), hash=f"{n}" * 64,
                )
            )  # fmt: skip

    async def marks(conn: Any) -> dict[str, bool]:
        rows = await conn.execute(text("SELECT details, restricted FROM audit_event"))
        return {json.loads(details)["rule"]: bool(restricted) for details, restricted in rows}

    migrate.upgrade(scratch_url)
    migrate.downgrade(scratch_url, "0009")
    try:
        run_on(scratch_url, two_events)
        migrate.upgrade(scratch_url)
        assert run_on(scratch_url, marks) == {"watchlist_hit": True, "night_movement": False}
    finally:
        run_on(scratch_url, lambda conn: conn.execute(text("DELETE FROM audit_event")))


# --- 0021: the harbour area as a polygon -------------------------------------------------------


def test_0021_down_switches_ais_off_where_the_area_was_a_polygon_and_keeps_the_circles(
    scratch_url: str,
):
    at = datetime(2026, 12, 15, 9, 0, tzinfo=UTC)
    polygon = "[[52.64,5.05],[52.64,5.07],[52.65,5.07]]"

    async def two_marinas(conn: Any) -> None:
        common = {"kind": "marina", "created_at": at, "ais_enabled": True,
                  "ais_dpia_reference": "DPIA-1"}  # fmt: skip
        await conn.execute(insert(Site).values(
            slug="by-polygon", name="Polygon", ais_area_polygon=polygon, **common,
        ))  # fmt: skip
        await conn.execute(insert(Site).values(
            slug="by-circle", name="Circle", ais_area_lat=52.64, ais_area_lon=5.06,
            ais_area_radius_m=300, **common,
        ))  # fmt: skip

    async def switches(conn: Any) -> dict[str, bool]:
        rows = await conn.execute(
            text("SELECT slug, ais_enabled FROM site WHERE slug IN ('by-polygon', 'by-circle')")
        )
        return {slug: bool(enabled) for slug, enabled in rows}

    migrate.upgrade(scratch_url)
    try:
        run_on(scratch_url, two_marinas)
        migrate.downgrade(scratch_url, "0020")
        assert run_on(scratch_url, switches) == {"by-polygon": False, "by-circle": True}
        migrate.upgrade(scratch_url)
    finally:
        migrate.upgrade(scratch_url)
        run_on(scratch_url, lambda conn: conn.execute(
            text("DELETE FROM site WHERE slug IN ('by-polygon', 'by-circle')")
        ))  # fmt: skip
