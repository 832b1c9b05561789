"""The purge, with an injected clock: what goes, what stays, and what it leaves behind.

The purge is installation-wide and the test database is shared, so each test builds its own
site and asserts on that site's rows (other tests' old rows may go too; that is the purge).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from nightreg.db import Database
from nightreg.models import (
    AuditEvent,
    Flag,
    Observation,
    RetentionPolicy,
    Signal,
    Site,
    Visit,
    VisitAggregate,
    VisitNote,
    flag_visit,
)
from nightreg.services import aggregates, audit, retention
from nightreg.services.access import CLI
from nightreg.settings import Settings
from tests.factories import add_visit, new_site

NOW = datetime(2027, 9, 1, 1, 30, tzinfo=UTC)  # 03:30 in Amsterdam: the nightly slot
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def unique_guest() -> dict[str, str]:
    return {"guest_name": f"Gast {secrets.token_hex(4)}", "residence": "Enkhuizen"}


async def visit_ids(db: Database, site: Site) -> set[int]:
    async with db.read() as session:
        return set(await session.scalars(select(Visit.id).where(Visit.site_id == site.id)))


async def flag_ids(db: Database, site: Site) -> set[int]:
    async with db.read() as session:
        return set(await session.scalars(select(Flag.id).where(Flag.site_id == site.id)))


async def site_aggregates(db: Database, site: Site) -> dict[tuple[date, str], tuple[int, ...]]:
    async with db.read() as session:
        rows = await session.execute(
            select(
                VisitAggregate.day,
                VisitAggregate.kind,
                VisitAggregate.visits,
                VisitAggregate.persons,
                VisitAggregate.overnight_stays,
            ).where(VisitAggregate.site_id == site.id)
        )
        return {(day, kind): (v, p, o) for day, kind, v, p, o in rows}


async def add_flag(
    db: Database,
    site: Site,
    visits: list[Visit],
    *,
    status: str = "open",
    created: datetime,
    reviewed: datetime | None = None,
    **extra: Any,
) -> Flag:
    flag = Flag(
        site_id=site.id,
        rule="night_movement",
        subject=visits[0].subject_key,
        dedupe_key=f"test:{secrets.token_hex(8)}",
        window_start=created - DAY,
        window_end=created,
        score=60,
        reason="Moved at night three times in a week.",
        status=status,
        created_at=created,
        updated_at=reviewed or created,
        reviewed_at=reviewed,
        reviewed_by="user:1 test" if reviewed else None,
        **extra,
    )
    async with db.write() as session:
        session.add(flag)
        await session.flush()
        await session.execute(
            flag_visit.insert(), [{"flag_id": flag.id, "visit_id": v.id} for v in visits]
        )
    return flag


async def departed_visit(db: Database, site: Site, departed: datetime, **fields: Any) -> Visit:
    return await add_visit(
        db, site, arrived=departed - 2 * DAY, departed=departed, **{**unique_guest(), **fields}
    )


async def test_a_visit_just_inside_retention_stays_and_one_just_past_it_goes(
    db: Database, settings: Settings
):
    site = await new_site(db)
    inside = await departed_visit(db, site, NOW - 365 * DAY + SECOND)
    past = await departed_visit(db, site, NOW - 365 * DAY - SECOND)

    await retention.purge(db, settings, now=NOW)

    assert await visit_ids(db, site) == {inside.id}
    assert past.id not in await visit_ids(db, site)


async def test_a_visit_never_checked_out_counts_from_its_expected_departure(
    db: Database, settings: Settings
):
    site = await new_site(db)
    arrived = NOW - 400 * DAY
    gone = await add_visit(
        db, site, arrived=arrived, expected=NOW - 366 * DAY, **unique_guest()
    )  # fmt: skip
    kept = await add_visit(
        db, site, arrived=arrived, expected=NOW - 364 * DAY, **unique_guest()
    )  # fmt: skip

    await retention.purge(db, settings, now=NOW)

    assert await visit_ids(db, site) == {kept.id}
    assert gone.id not in await visit_ids(db, site)


async def test_a_sites_own_policy_shortens_the_time_its_visits_are_kept(
    db: Database, settings: Settings
):
    site = await new_site(db)
    other = await new_site(db)
    await retention.set_policy(
        db, CLI, site.id,
        {"visit_days": 30, "open_flag_days": None, "dismissed_flag_days": None}, now=NOW,
    )  # fmt: skip
    short = await departed_visit(db, site, NOW - 31 * DAY)
    default = await departed_visit(db, other, NOW - 31 * DAY)

    await retention.purge(db, settings, now=NOW)

    assert await visit_ids(db, site) == set()
    assert await visit_ids(db, other) == {default.id}
    async with db.read() as session:
        policy = await session.get(RetentionPolicy, site.id)
    assert policy is not None
    assert policy.visit_days == 30
    assert short.id not in await visit_ids(db, site)


async def test_the_evidence_of_an_open_flag_stays_until_the_flag_itself_has_had_its_year(
    db: Database, settings: Settings
):
    site = await new_site(db)
    evidence = await departed_visit(db, site, NOW - 500 * DAY)
    flag = await add_flag(db, site, [evidence], created=NOW - 364 * DAY)

    await retention.purge(db, settings, now=NOW)
    assert await visit_ids(db, site) == {evidence.id}
    assert await flag_ids(db, site) == {flag.id}

    await retention.purge(db, settings, now=NOW + 2 * DAY)
    assert await flag_ids(db, site) == set()
    assert await visit_ids(db, site) == set()


async def test_a_dismissed_flag_goes_thirty_days_after_the_review_and_its_visits_with_it(
    db: Database, settings: Settings
):
    site = await new_site(db)
    evidence = await departed_visit(db, site, NOW - 400 * DAY)
    recent = await add_flag(
        db, site, [evidence], status="dismissed", created=NOW - 60 * DAY,
        reviewed=NOW - 29 * DAY,
    )  # fmt: skip
    await retention.purge(db, settings, now=NOW)
    assert await flag_ids(db, site) == {recent.id}
    assert await visit_ids(db, site) == {evidence.id}

    await retention.purge(db, settings, now=NOW + 2 * DAY)
    assert await flag_ids(db, site) == set()
    assert await visit_ids(db, site) == set()


async def test_a_forwarded_flag_and_its_signal_live_as_long_as_the_agreement_says(
    db: Database, settings: Settings, make_agreement: Any
):
    site = await new_site(db)
    agreement_id = await make_agreement(keep_days=90)
    evidence = await departed_visit(db, site, NOW - 400 * DAY)
    forwarded_at = NOW - 89 * DAY
    flag = await add_flag(
        db, site, [evidence], status="forwarded", created=forwarded_at - DAY,
        reviewed=forwarded_at,
    )  # fmt: skip
    async with db.write() as session:
        session.add(
            Signal(
                uid=secrets.token_hex(8), flag_id=flag.id, agreement_id=agreement_id,
                site_id=site.id, rule=flag.rule, body="{}", status="delivered",
                created_at=forwarded_at, next_attempt_at=forwarded_at, delivered_at=forwarded_at,
            )
        )  # fmt: skip

    await retention.purge(db, settings, now=NOW)
    assert await flag_ids(db, site) == {flag.id}
    assert await visit_ids(db, site) == {evidence.id}

    result = await retention.purge(db, settings, now=NOW + 2 * DAY)
    assert result.deleted["flags_forwarded"] >= 1
    assert await flag_ids(db, site) == set()
    assert await visit_ids(db, site) == set()
    async with db.read() as session:
        left = await session.scalar(select(func.count()).where(Signal.flag_id == flag.id))
    assert left == 0


async def test_a_forwarded_flag_without_a_signal_takes_the_default_of_180_days(
    db: Database, settings: Settings
):
    site = await new_site(db)
    evidence = await departed_visit(db, site, NOW - 400 * DAY)
    flag = await add_flag(
        db, site, [evidence], status="forwarded", created=NOW - 200 * DAY,
        reviewed=NOW - 179 * DAY,
    )  # fmt: skip

    await retention.purge(db, settings, now=NOW)
    assert await flag_ids(db, site) == {flag.id}
    await retention.purge(db, settings, now=NOW + 2 * DAY)
    assert await flag_ids(db, site) == set()


async def test_the_aggregates_equal_the_sums_of_the_visits_the_purge_deleted(
    db: Database, settings: Settings
):
    site = await new_site(db)
    # Across a month end, a day visit, and persons from one to five.
    base = datetime(2026, 3, 30, 16, 0, tzinfo=UTC)
    made = []
    for n in range(12):
        arrived = base + timedelta(hours=7 * n)
        made.append(
            await add_visit(
                db, site, kind=("vessel", "vehicle")[n % 2], arrived=arrived,
                departed=arrived + timedelta(hours=5 + 13 * (n % 4)), persons=1 + n % 5,
                **unique_guest(),
            )
        )  # fmt: skip
    before = await site_aggregates(db, site)
    expected = aggregates.contributions(
        [
            aggregates.StayRow(v.site_id, v.kind, v.persons, v.arrived_at, v.departed_at or NOW)
            for v in made
        ],
        {site.id: ZoneInfo(site.timezone)},
    )

    await retention.purge(db, settings, now=NOW)

    assert before == {}
    assert await visit_ids(db, site) == set()
    after = await site_aggregates(db, site)
    assert after == {
        (day, kind): (c.visits, c.persons, c.overnight_stays)
        for (_site, day, kind), c in expected.items()
    }
    assert sum(v[0] for v in after.values()) == 12
    assert sum(v[1] for v in after.values()) == sum(v.persons for v in made)


async def test_a_second_purge_at_the_same_moment_deletes_nothing(db: Database, settings: Settings):
    site = await new_site(db)
    for _ in range(3):
        await departed_visit(db, site, NOW - 400 * DAY)
    first = await retention.purge(db, settings, now=NOW)
    aggregates_after_first = await site_aggregates(db, site)

    second = await retention.purge(db, settings, now=NOW)

    assert first.deleted["visits"] >= 3
    assert second.deleted == dict.fromkeys(retention.CATEGORIES, 0)
    assert await site_aggregates(db, site) == aggregates_after_first


async def test_a_purge_interrupted_half_way_and_run_again_ends_in_the_same_state(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    crashed_site = await new_site(db)
    clean_site = await new_site(db)
    for site in (crashed_site, clean_site):
        for n in range(7):
            await departed_visit(db, site, NOW - (400 + n) * DAY, persons=1 + n)
    real_add = aggregates.add
    calls = 0

    async def crash_on_the_second_batch(session: Any, counts: Any) -> None:
        nonlocal calls
        calls += any(key[0] == crashed_site.id for key in counts)
        if calls == 2:
            raise RuntimeError("the machine lost power")
        await real_add(session, counts)

    monkeypatch.setattr(aggregates, "add", crash_on_the_second_batch)
    with pytest.raises(RuntimeError):
        await retention.purge(db, settings, now=NOW, batch=3)
    half_way = await visit_ids(db, crashed_site) | await visit_ids(db, clean_site)
    monkeypatch.setattr(aggregates, "add", real_add)

    await retention.purge(db, settings, now=NOW, batch=3)

    assert len(half_way) == 14 - 3
    assert await visit_ids(db, crashed_site) == set()
    crashed = await site_aggregates(db, crashed_site)
    clean = await site_aggregates(db, clean_site)
    assert sorted(crashed.values()) == sorted(clean.values())
    assert sum(v[0] for v in crashed.values()) == 7
    receipts = await retention.receipts(db, CLI, limit=2)
    assert receipts[0]["finished"] is True
    assert receipts[1]["finished"] is False


async def test_the_receipt_counts_by_category_and_names_no_one(db: Database, settings: Settings):
    site = await new_site(db)
    guest = {"guest_name": "Pieter Receiptson", "residence": "Medemblik"}
    visit = await departed_visit(
        db, site, NOW - 400 * DAY, plate="99-ZZZ-9", email="pieter@example.nl", **guest
    )
    async with db.write() as session:
        session.add(VisitNote(visit_id=visit.id, at=NOW - 401 * DAY, author="hm", text="paid"))
        session.add(
            Observation(
                site_id=site.id, visit_id=None, location="Steiger B",
                indicators=[], text="van waited at the quay", observed_at=NOW - 400 * DAY,
                author="hm", created_at=NOW - 400 * DAY,
            )
        )  # fmt: skip

    result = await retention.purge(db, settings, now=NOW)

    async with db.read() as session:
        event = await session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "purge_completed")
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
        notes = await session.scalar(
            select(func.count()).where(VisitNote.visit_id == visit.id)
        )  # fmt: skip
    assert event is not None
    details = json.loads(event.details)
    assert details["deleted"]["visits"] == result.deleted["visits"] >= 1
    assert details["deleted"]["observations"] >= 1
    assert set(details["deleted"]) == set(retention.CATEGORIES)
    assert "visits" in details["oldest_kept"] or details["deleted"]["visits"]
    assert event.object_ids == "[]"
    text = event.details + event.actor
    for personal in ("Receiptson", "Medemblik", "99-ZZZ-9", "99ZZZ9", "pieter@", visit.reference):
        assert personal.lower() not in text.lower()
    assert notes == 0


async def test_audit_events_past_two_years_go_and_the_chain_still_verifies(
    db: Database, settings: Settings
):
    site = await new_site(db)
    async with db.write() as session:
        old = await audit.record(
            session, CLI, "site_changed", at=NOW - 800 * DAY, site_id=site.id
        )  # fmt: skip
        await audit.record(session, CLI, "site_changed", at=NOW - 700 * DAY, site_id=site.id)

    result = await retention.purge(db, settings, now=NOW)

    assert result.deleted["audit_events"] >= 1
    async with db.read() as session:
        assert await session.get(AuditEvent, old.id) is None
    check = await audit.verify(db)
    assert check.intact, str(check)
    receipts = await retention.receipts(db, CLI, limit=1)
    assert receipts[0]["audit_anchor"]["removed_through_id"] >= old.id


async def test_aggregates_older_than_seven_years_go(db: Database, settings: Settings):
    site = await new_site(db)
    async with db.write() as session:
        await aggregates.add(
            session,
            {
                (site.id, date(2020, 8, 31), "vessel"): aggregates.Counts(1, 2, 2),
                (site.id, date(2020, 9, 2), "vessel"): aggregates.Counts(1, 3, 3),
            },
        )

    await retention.purge(db, settings, now=NOW)

    assert list(await site_aggregates(db, site)) == [(date(2020, 9, 2), "vessel")]


async def test_the_preview_shows_what_the_purge_then_deletes(db: Database, settings: Settings):
    site = await new_site(db)
    a = await departed_visit(db, site, NOW - 400 * DAY)
    await departed_visit(db, site, NOW - 401 * DAY)
    await departed_visit(db, site, NOW - 10 * DAY)
    await add_flag(
        db, site, [a], status="dismissed", created=NOW - 90 * DAY, reviewed=NOW - 31 * DAY
    )  # fmt: skip

    shown = await retention.preview(db, settings, at=NOW)
    done = await retention.purge(db, settings, now=NOW)

    visits = next(c for c in shown.categories if c.category == "visits")
    assert visits.by_site[site.id] == 2
    flags = next(c for c in shown.categories if c.category == "flags_dismissed")
    assert flags.by_site[site.id] == 1
    assert {day for day, _n in visits.by_date} >= {
        (NOW - 400 * DAY).date(),
        (NOW - 401 * DAY).date(),
    }
    for category in retention.CATEGORIES:
        assert shown.count(category) == done.deleted[category], category
    assert len(await visit_ids(db, site)) == 1


def test_the_purge_is_a_nightly_job_with_a_dry_run_on_the_command_line(
    cli_env: Any, capsys: pytest.CaptureFixture[str], database_url: str
):
    from nightreg import cli
    from nightreg.jobs import crontabs, job_specs

    loaded = Settings.from_env()
    assert crontabs(loaded)["purge"] == "30 3 * * *"
    assert "purge" in job_specs(loaded)

    async def in_db(work: Any) -> Any:
        db = Database(database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    async def seed(db: Database) -> Site:
        site = await new_site(db)
        await departed_visit(db, site, datetime.now(UTC) - 400 * DAY)
        return site

    site = asyncio.run(in_db(seed))

    assert cli.main(["jobs", "run", "purge", "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "nothing was deleted" in said
    assert len(asyncio.run(in_db(lambda db: visit_ids(db, site)))) == 1

    assert cli.main(["jobs", "run", "purge"]) == 0
    said = capsys.readouterr().out
    assert "purge done" in said
    assert asyncio.run(in_db(lambda db: visit_ids(db, site))) == set()


async def test_shorter_audit_retention_from_the_settings_is_honoured(
    db: Database, settings: Settings
):
    site = await new_site(db)
    async with db.write() as session:
        event = await audit.record(
            session, CLI, "site_changed", at=NOW - 40 * DAY, site_id=site.id
        )  # fmt: skip
    short = replace(settings, retention_audit_days=30)

    shown = await retention.preview(db, short, at=NOW)
    await retention.purge(db, short, now=NOW)

    assert shown.count("audit_events") >= 1
    async with db.read() as session:
        assert await session.get(AuditEvent, event.id) is None
    assert (await audit.verify(db)).intact


async def test_failed_sign_ins_go_after_a_week_and_ended_sessions_at_once(
    db: Database, settings: Settings
):
    from nightreg.models import SignInFailure, StaffSession
    from tests.factories import make_staff

    user = await make_staff(db, "harbour_master")
    email = f"guess-{secrets.token_hex(4)}@example.nl"
    async with db.write() as session:
        session.add_all(
            [
                SignInFailure(email=email, address="198.51.100.9", at=NOW - 8 * DAY),
                SignInFailure(email=email, address="198.51.100.9", at=NOW - 6 * DAY),
            ]
        )
        session.add_all(
            [
                StaffSession(token_hash=secrets.token_hex(32), user_id=user.user_id,
                             created_at=NOW - DAY, last_seen_at=NOW - DAY),
                StaffSession(token_hash=secrets.token_hex(32), user_id=user.user_id,
                             created_at=NOW - timedelta(minutes=5), last_seen_at=NOW),
            ]
        )  # fmt: skip

    await retention.purge(db, settings, now=NOW)

    async with db.read() as session:
        failures = list(
            await session.scalars(select(SignInFailure.at).where(SignInFailure.email == email))
        )
        mine = StaffSession.user_id == user.user_id
        sessions = list(await session.scalars(select(StaffSession.id).where(mine)))
    assert failures == [NOW - 6 * DAY]
    assert len(sessions) == 1


async def test_the_purge_erases_the_audit_details_of_what_it_deleted_and_signs_a_checkpoint(
    db: Database, settings: Settings
):
    """Issue 17: a purged visit's correction keeps its event, not its names; searches lose their
    terms after their own period; the receipt carries a signed checkpoint of the chain."""
    from nightreg.models import AuditDetail
    from nightreg.services import audit_checkpoints

    site = await new_site(db)
    past = await departed_visit(db, site, NOW - 400 * DAY)
    kept = await departed_visit(db, site, NOW - DAY)
    async with db.write() as session:
        for visit in (past, kept):
            await audit.record(
                session, CLI, "visit_corrected", at=NOW - 2 * DAY, site_id=site.id,
                object_type="visit", object_id=visit.id,
                details={"reason": "typo", "before": {"guest_name": "A"},
                         "after": {"guest_name": "B"}},
            )  # fmt: skip
        old_search = await audit.record(
            session, CLI, "register_viewed", at=NOW - 31 * DAY, site_id=site.id,
            details={"filters": {"q": "vries"}},
        )  # fmt: skip
        new_search = await audit.record(
            session, CLI, "register_viewed", at=NOW - 29 * DAY, site_id=site.id,
            details={"filters": {"q": "jansen"}},
        )  # fmt: skip

    result = await retention.purge(db, settings, now=NOW)

    assert result.details_erased == 2
    async with db.read() as session:
        bodies = {
            d.object_id if d.object_type == "visit" else d.event_id: d.body
            for d in await session.scalars(select(AuditDetail))
        }
    assert bodies[past.id] is None
    assert bodies[kept.id] is not None
    assert bodies[old_search.id] is None
    assert bodies[new_search.id] is not None
    check = await audit_checkpoints.verify(db, settings)
    assert check.intact, str(check)
    assert check.erased == {retention.purging.receipt_name(NOW): 2}
    receipt = (await retention.receipts(db, CLI, limit=1))[0]
    assert receipt["audit_details_erased"] == 2
    signed = receipt["checkpoint"]
    assert signed["signature"]
    assert audit_checkpoints.latest_in(settings.checkpoint_dir).as_dict() == signed
