"""The hub's watchlist on a real database: the CLI, silent matching at check-in, the scan."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, select

from nightreg import cli
from nightreg.db import Database
from nightreg.models import AuditEvent, Visit, WatchlistEntry, flag_visit
from nightreg.services import checkin, watchlist
from nightreg.validation import validate_checkin
from tests.factories import (
    AMSTERDAM,
    KEY,
    SUMMER_EVENING,
    a_plate,
    a_site_id,
    arrive,
    flags_of,
    on_the_list,
)

T = TypeVar("T")


def on_db(database_url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on a connection of its own (for the synchronous CLI tests)."""

    async def run() -> T:
        db = Database(database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


# --- the CLI ---------------------------------------------------------------------------------


def test_the_digest_command_shows_the_identifier_and_its_digest(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("NIGHTREG_WATCHLIST_KEY", KEY)
    assert cli.main(["watchlist", "digest", "nl-123 ab", "--kind", "reg"]) == 0
    out = capsys.readouterr().out
    assert "reg:NL123AB" in out
    assert watchlist.digest(KEY, "reg:NL123AB") in out


def test_the_digest_command_says_so_when_no_key_is_set(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.delenv("NIGHTREG_WATCHLIST_KEY", raising=False)
    assert cli.main(["watchlist", "digest", "244123456", "--kind", "mmsi"]) == 2
    assert "NIGHTREG_WATCHLIST_KEY" in capsys.readouterr().err


def test_the_digest_command_refuses_a_value_that_identifies_nothing(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("NIGHTREG_WATCHLIST_KEY", KEY)
    assert cli.main(["watchlist", "digest", "12345", "--kind", "mmsi"]) == 2
    assert "9 digits" in capsys.readouterr().err


def a_digest() -> str:
    return secrets.token_hex(32)


def stored(database_url: str) -> dict[str, datetime]:
    async def read(db: Database) -> dict[str, datetime]:
        async with db.read() as session:
            rows = await session.execute(select(WatchlistEntry.digest, WatchlistEntry.expires_at))
            return {row.digest: row.expires_at for row in rows}

    return on_db(database_url, read)


def last_import_event(database_url: str) -> AuditEvent:
    async def read(db: Database) -> AuditEvent:
        async with db.read() as session:
            event = await session.scalar(
                select(AuditEvent)
                .where(AuditEvent.action == "watchlist_imported")
                .order_by(AuditEvent.id.desc())
                .limit(1)
            )
        assert event is not None
        return event

    return on_db(database_url, read)


def import_file(path: Path, *args: str) -> int:
    return cli.main(["watchlist", "import", str(path), *args])


def test_an_import_with_a_bad_line_names_it_and_imports_nothing(
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
):
    monkeypatch.setenv("NIGHTREG_WATCHLIST_KEY", KEY)
    good, file = a_digest(), cli_env / "list.txt"
    file.write_text(f"# hub list\n{good}\n\n{good[:-1]}\n{good},31-12-2099\n")
    assert import_file(file, "--expires", "2099-12-31") == 2
    err = capsys.readouterr().err
    assert f"{file}:4:" in err
    assert f"{file}:5:" in err
    assert f"{file}:2:" not in err
    assert "nothing imported" in err
    assert good not in stored(database_url)


def test_an_import_needs_an_expiry_for_every_line(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("NIGHTREG_WATCHLIST_KEY", KEY)
    file = cli_env / "list.txt"
    file.write_text(f"{a_digest()},2099-01-01\n{a_digest()}\n")
    assert import_file(file) == 2
    assert f"{file}:2: no expiry" in capsys.readouterr().err


def test_an_import_adds_updates_replaces_and_drops_the_expired_and_audits_counts_only(
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
):
    monkeypatch.setenv("NIGHTREG_WATCHLIST_KEY", KEY)
    on_db(database_url, _empty_watchlist)
    kept, renewed, gone, stale = (a_digest() for _ in range(4))
    file = cli_env / "list.txt"

    file.write_text(f"{kept}\n{renewed},2099-06-30\n{gone}\n{stale},2000-01-01\n")
    assert import_file(file, "--expires", "2099-12-31", "--list-ref", "HUB-2026-11") == 0
    assert "2 added" not in capsys.readouterr().out  # the stale line is not added
    entries = stored(database_url)
    assert entries == {
        kept: datetime(2100, 1, 1, tzinfo=UTC),
        renewed: datetime(2099, 7, 1, tzinfo=UTC),
        gone: datetime(2100, 1, 1, tzinfo=UTC),
    }

    file.write_text(f"{kept}\n{renewed},2099-09-30T12:00\n")
    assert import_file(file, "--expires", "2099-12-31", "--replace") == 0
    assert "0 added, 2 updated, 1 removed, 0 expired dropped" in capsys.readouterr().out
    assert stored(database_url) == {
        kept: datetime(2100, 1, 1, tzinfo=UTC),
        renewed: datetime(2099, 9, 30, 12, tzinfo=UTC),
    }

    file.write_text(f"{renewed},2001-01-01\n")
    assert import_file(file) == 0
    assert "0 added, 0 updated, 0 removed, 1 expired dropped" in capsys.readouterr().out
    assert set(stored(database_url)) == {kept}

    event = last_import_event(database_url)
    assert event.actor == "cli"
    assert json.loads(event.details) == {
        "added": 0,
        "updated": 0,
        "removed": 0,
        "expired_dropped": 1,
    }
    assert renewed not in event.details
    assert kept not in event.details


def test_the_first_import_prints_its_counts(
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
):
    monkeypatch.setenv("NIGHTREG_WATCHLIST_KEY", KEY)
    on_db(database_url, _empty_watchlist)
    file = cli_env / "list.txt"
    file.write_text(f"{a_digest()}\n{a_digest()}\n{a_digest()},2000-01-01\n")
    assert import_file(file, "--expires", "2099-12-31") == 0
    assert "2 added, 0 updated, 0 removed, 1 expired dropped" in capsys.readouterr().out


async def _empty_watchlist(db: Database) -> None:
    async with db.write() as session:
        await session.execute(delete(WatchlistEntry))


# --- matching at check-in --------------------------------------------------------------------


def an_mmsi() -> str:
    return f"244{secrets.randbelow(10**6):06d}"


async def test_a_check_in_with_a_listed_plate_raises_a_restricted_flag_on_that_visit(
    db: Database,
):
    site_id, plate = await a_site_id(db), a_plate()
    await on_the_list(db, "plate", plate.lower())  # the hub's spelling does not matter
    result = await arrive(db, site_id, plate=plate)

    (flag,) = await flags_of(db, result.visit.id)
    assert flag.rule == "watchlist_hit"
    assert flag.restricted is True
    assert flag.site_id == site_id
    assert flag.score == 90
    assert flag.subject == watchlist.identifier("plate", plate)
    assert flag.reason_params == {"identifier": "licence plate"}
    assert flag.window_start == result.visit.arrived_at
    async with db.read() as session:
        evidence = list(
            await session.scalars(
                select(flag_visit.c.visit_id).where(flag_visit.c.flag_id == flag.id)
            )
        )
        raised = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "flag_raised", AuditEvent.object_id == flag.id
            )
        )
    assert evidence == [result.visit.id]
    assert raised is not None


async def test_the_visitor_gets_the_same_answer_with_or_without_a_hit(db: Database):
    site_id, listed = await a_site_id(db), a_plate()
    await on_the_list(db, "plate", listed)
    hit = await arrive(db, site_id, plate=listed)
    miss = await arrive(db, site_id, plate=a_plate())

    assert await flags_of(db, hit.visit.id)
    assert not await flags_of(db, miss.visit.id)
    assert type(hit) is type(miss)
    assert (hit.replayed, miss.replayed) == (False, False)
    assert {k for k in vars(hit.visit) if not k.startswith("_")} == {
        k for k in vars(miss.visit) if not k.startswith("_")
    }


async def test_a_boat_is_matched_by_its_mmsi_as_well_as_its_registration(db: Database):
    site_id, mmsi = await a_site_id(db), an_mmsi()
    await on_the_list(db, "mmsi", mmsi)
    result = await arrive(db, site_id, "vessel", registration="NL-777-ZZ", mmsi=mmsi)

    (flag,) = await flags_of(db, result.visit.id)
    assert flag.subject == f"mmsi:{mmsi}"
    assert flag.reason_params == {"identifier": "MMSI"}


async def test_an_expired_entry_does_not_match(db: Database):
    site_id, plate = await a_site_id(db), a_plate()
    await on_the_list(db, "plate", plate, expires_at=SUMMER_EVENING - timedelta(minutes=1))
    result = await arrive(db, site_id, plate=plate)
    assert await flags_of(db, result.visit.id) == []


async def test_without_a_key_the_watchlist_is_not_consulted(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    site_id, plate = await a_site_id(db), a_plate()
    await on_the_list(db, "plate", plate)
    calls: list[object] = []

    async def spy(*args: object, **kwargs: object) -> None:
        calls.append(args)

    monkeypatch.setattr(watchlist, "check_new_visit", spy)
    result = await arrive(db, site_id, plate=plate, key="")
    assert calls == []
    assert await flags_of(db, result.visit.id) == []


async def test_a_failing_check_is_logged_and_the_check_in_still_succeeds(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    site_id, plate = await a_site_id(db), a_plate()
    await on_the_list(db, "plate", plate)

    async def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("the flag table is on fire")

    monkeypatch.setattr(watchlist, "check_visit", broken)
    with caplog.at_level(logging.ERROR, logger="nightreg.services.watchlist"):
        result = await arrive(db, site_id, plate=plate)

    assert result.replayed is False
    async with db.read() as session:
        assert await session.get(Visit, result.visit.id) is not None
    assert await flags_of(db, result.visit.id) == []
    assert "watchlist check of visit" in caplog.text
    assert plate not in caplog.text


async def test_a_replayed_check_in_is_not_checked_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    site_id, plate = await a_site_id(db), a_plate()
    calls: list[int] = []
    real = watchlist.check_new_visit

    async def counting(db_: Database, visit: Any, key: str, now: datetime) -> None:
        calls.append(visit.id)
        await real(db_, visit, key, now)

    monkeypatch.setattr(watchlist, "check_new_visit", counting)
    data, _ = validate_checkin(
        {
            "guest_name": "Jan",
            "residence": "Hoorn",
            "persons": "1",
            "plate": plate,
            "arrived_at": "2026-07-14T20:45",
            "expected_departure_at": "2026-07-16T11:00",
        },
        kind="vehicle",
        allowed_kinds=("vehicle",),
        now=SUMMER_EVENING,
        tz=AMSTERDAM,
    )
    assert data is not None
    key = secrets.token_hex(16)
    for _ in range(2):
        result = await checkin.check_in(
            db, site_id=site_id, point_id=None, data=data, now=SUMMER_EVENING,
            secret_key="test-secret", watchlist_key=KEY, idempotency_key=key,
            fingerprint="same-form",
        )  # fmt: skip
    assert result.replayed is True
    assert calls == [result.visit.id]


# --- the scan's batch ------------------------------------------------------------------------


async def test_the_scan_matches_visits_in_batch_and_counts_each_hit_once(db: Database):
    site_id, plate, mmsi = await a_site_id(db), a_plate(), an_mmsi()
    await on_the_list(db, "plate", plate)
    await on_the_list(db, "mmsi", mmsi)
    # Written without a key (as an import or a walk-in would be): only the scan sees them.
    car = await arrive(db, site_id, plate=plate, key="")
    boat = await arrive(db, site_id, "vessel", mmsi=mmsi, key="")
    other = await arrive(db, site_id, plate=a_plate(), key="")
    since = SUMMER_EVENING - timedelta(minutes=1)

    first = await watchlist.scan_visits(db, since=since, key=KEY, now=SUMMER_EVENING)
    assert first >= 2  # visits of other tests may match entries of their own
    assert len(await flags_of(db, car.visit.id)) == 1
    assert len(await flags_of(db, boat.visit.id)) == 1
    assert await flags_of(db, other.visit.id) == []

    rows = [car.visit, boat.visit, other.visit]
    assert await watchlist.check_visits(db, rows, KEY, SUMMER_EVENING) == 0
    assert len(await flags_of(db, car.visit.id)) == 1


async def test_the_scan_does_nothing_without_a_key(db: Database):
    assert await watchlist.scan_visits(db, since=None, key="", now=SUMMER_EVENING) == 0


async def test_a_walk_in_with_a_listed_plate_raises_the_same_silent_flag(db: Database):
    from nightreg.services import walk_ins
    from nightreg.services.access import Actor

    site_id, plate = await a_site_id(db), a_plate()
    await on_the_list(db, "plate", plate)
    harbour_master = Actor(
        kind="user", id=1, name="hm@test", role="harbour_master", site_ids=frozenset({site_id})
    )
    form = {
        "kind": "vehicle",
        "guest_name": "Jan de Vries",
        "residence": "Hoorn",
        "persons": "1",
        "plate": plate,
        "expected_departure_at": "2026-07-16 11:00",
    }

    visit = await walk_ins.create_visit(
        db, harbour_master, site_id, form, now=SUMMER_EVENING, watchlist_key=KEY
    )

    (flag,) = await flags_of(db, visit.id)
    assert flag.rule == "watchlist_hit"
    assert flag.restricted is True
