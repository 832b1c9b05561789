"""The scan over a real database: candidates, exact rules, flags made once and grown."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from nightreg.db import Database
from nightreg.models import Flag, Site, Visit, flag_visit
from nightreg.security import new_reference
from nightreg.services import scan
from nightreg.validation import search_key, subject_key
from tests.factories import make_point

NOW = datetime(2026, 7, 20, 12, 0, tzinfo=UTC)


async def a_site(db: Database, kind: str = "marina") -> Site:
    point = await make_point(db, kind)
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == point.site_slug))
    assert site is not None
    return site


def a_registration() -> str:
    return f"NL-{secrets.randbelow(10**6):06d}-{secrets.choice('ABCDEFGH')}"


async def plant(
    db: Database,
    site: Site,
    arrived: datetime,
    departed: datetime | None = None,
    *,
    kind: str = "vessel",
    updated: datetime | None = None,
    **fields: Any,
) -> int:
    guest = f"Piet {secrets.token_hex(3)}"
    values: dict[str, Any] = {"guest_name": guest, "residence": "Hoorn", "persons": 1}
    if kind == "vessel":
        values.update(vessel_name="Zeemeeuw", registration=a_registration(), vessel_type="motor")
    elif kind == "vehicle":
        values.update(plate=f"{secrets.randbelow(90) + 10}-XYZ-{secrets.randbelow(9) + 1}")
    values.update(fields)
    visit = Visit(
        reference=new_reference(),
        site_id=site.id,
        kind=kind,
        source="staff",
        arrived_at=arrived,
        expected_departure_at=departed or arrived + timedelta(days=1),
        departed_at=departed,
        subject_key=subject_key(
            kind,
            registration=values.get("registration"),
            mmsi=values.get("mmsi"),
            plate=values.get("plate"),
            guest_name=values["guest_name"],
            residence=values["residence"],
        ),
        search_key=search_key(values["guest_name"], None, None, None, None),
        private_token_hash=secrets.token_hex(32),
        created_at=arrived,
        updated_at=updated or departed or arrived,
        **values,
    )
    async with db.write() as session:
        session.add(visit)
    return visit.id


async def flags_of(db: Database, visit_ids: list[int], rule: str) -> dict[int, set[int]]:
    """The flags of `rule` that rest on any of these visits, with all their visits."""
    async with db.read() as session:
        flag_ids = set(
            await session.scalars(
                select(Flag.id)
                .join(flag_visit, flag_visit.c.flag_id == Flag.id)
                .where(Flag.rule == rule, flag_visit.c.visit_id.in_(visit_ids))
            )
        )
        result: dict[int, set[int]] = {}
        for flag_id in flag_ids:
            result[flag_id] = set(
                await session.scalars(
                    select(flag_visit.c.visit_id).where(flag_visit.c.flag_id == flag_id)
                )
            )
    return result


def local(day: str, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Amsterdam, as UTC."""
    from zoneinfo import ZoneInfo

    y, m, d = (int(p) for p in day.split("-"))
    return datetime(y, m, d, hour, minute, tzinfo=ZoneInfo("Europe/Amsterdam")).astimezone(UTC)


async def test_two_night_arrivals_make_one_flag_and_a_second_scan_changes_nothing(db: Database):
    site = await a_site(db)
    reg = a_registration()
    first = await plant(
        db, site, local("2026-07-10", 23, 40), local("2026-07-11", 10), registration=reg
    )
    second = await plant(
        db, site, local("2026-07-15", 2, 15), local("2026-07-15", 12), registration=reg
    )

    summary = await scan.run_scan(db, now=NOW, full=True)
    again = await scan.run_scan(db, now=NOW, full=True)

    flags = await flags_of(db, [first, second], "night_movement")
    assert list(flags.values()) == [{first, second}]
    assert summary.created >= 1
    assert again.created == 0
    assert again.grown == 0


async def test_a_third_night_movement_grows_the_flag_instead_of_making_a_new_one(db: Database):
    site = await a_site(db)
    reg = a_registration()
    ids = [
        await plant(
            db, site, local("2026-07-01", 23, 30), local("2026-07-02", 9), registration=reg
        ),
        await plant(db, site, local("2026-07-04", 1, 0), local("2026-07-04", 9), registration=reg),
    ]
    await scan.run_scan(db, now=NOW, full=True)
    before = await flags_of(db, ids, "night_movement")
    since = NOW - timedelta(minutes=1)
    ids.append(
        await plant(
            db, site, local("2026-07-08", 3, 0), local("2026-07-08", 9), registration=reg,
            updated=NOW,
        )
    )  # fmt: skip

    summary = await scan.run_scan(db, now=NOW, since=since)

    after = await flags_of(db, ids, "night_movement")
    assert list(after) == list(before)
    assert list(after.values()) == [set(ids)]
    assert summary.grown >= 1


async def test_a_single_late_arrival_is_not_a_night_movement_pattern(db: Database):
    site = await a_site(db)
    reg = a_registration()
    lone = await plant(
        db, site, local("2026-07-10", 23, 30), local("2026-07-12", 10), registration=reg
    )
    early = await plant(
        db, site, local("2026-07-13", 22, 59), local("2026-07-14", 10), registration=reg
    )

    await scan.run_scan(db, now=NOW, full=True)

    assert await flags_of(db, [lone, early], "night_movement") == {}


async def test_the_night_window_follows_the_site_clock_across_the_autumn_clock_change(db: Database):
    site = await a_site(db)
    reg = a_registration()
    # 25 October 2026: 03:00 CEST becomes 02:00 CET. 04:30 CET is 03:30 UTC.
    night = await plant(
        db, site, local("2026-10-25", 4, 30), local("2026-10-25", 12), registration=reg
    )
    # 05:10 CET (04:10 UTC) is after the night, although 04:10 UTC would be 06:10 in summer.
    other = await plant(
        db, site, local("2026-10-27", 1, 0), local("2026-10-27", 5, 10), registration=reg
    )

    await scan.run_scan(db, now=datetime(2026, 11, 1, tzinfo=UTC), full=True)

    flags = await flags_of(db, [night, other], "night_movement")
    assert list(flags.values()) == [{night, other}]


async def test_a_site_can_raise_a_threshold(db: Database):
    site = await a_site(db)
    async with db.write() as session:
        await session.execute(
            update(Site)
            .where(Site.id == site.id)
            .values(rule_thresholds={"night_movement": {"count": 3}})
        )
    reg = a_registration()
    ids = [
        await plant(
            db, site, local("2026-07-10", 23, 40), local("2026-07-11", 10), registration=reg
        ),
        await plant(
            db, site, local("2026-07-15", 2, 15), local("2026-07-15", 12), registration=reg
        ),
    ]

    await scan.run_scan(db, now=NOW, full=True)

    assert await flags_of(db, ids, "night_movement") == {}


async def test_an_incremental_scan_finds_what_a_full_scan_finds(db: Database):
    site = await a_site(db)
    other = await a_site(db)
    reg = a_registration()
    since = NOW - timedelta(hours=1)
    ids = [
        await plant(
            db, site, local("2026-07-01", 9), local("2026-07-01", 11), registration=reg, updated=NOW
        ),
        await plant(
            db,
            other,
            local("2026-07-01", 18),
            local("2026-07-01", 20),
            registration=reg,
            updated=NOW,
        ),
        await plant(
            db, site, local("2026-07-05", 9), local("2026-07-05", 10), registration=reg, updated=NOW
        ),
    ]

    await scan.run_scan(db, now=NOW, since=since)
    incremental = {
        rule: sorted(map(sorted, (await flags_of(db, ids, rule)).values()))
        for rule in ("short_stay_repeat", "site_hopping")
    }
    await scan.run_scan(db, now=NOW, full=True)
    full = {
        rule: sorted(map(sorted, (await flags_of(db, ids, rule)).values()))
        for rule in ("short_stay_repeat", "site_hopping")
    }

    assert incremental == full
    assert incremental["short_stay_repeat"] == [sorted(ids)]
    # Two sites within 12 hours: the first two visits; the third came days later.
    assert incremental["site_hopping"] == [sorted(ids[:2])]


async def test_a_vessel_is_followed_by_its_mmsi_as_well_as_its_registration(db: Database):
    site = await a_site(db)
    mmsi = f"244{secrets.randbelow(10**6):06d}"
    ids = [
        await plant(db, site, local("2026-07-10", 0, 30), local("2026-07-10", 9), mmsi=mmsi),
        await plant(
            db,
            site,
            local("2026-07-12", 1, 30),
            local("2026-07-12", 9),
            mmsi=mmsi,
            registration=None,
        ),
    ]

    await scan.run_scan(db, now=NOW, full=True)

    assert list((await flags_of(db, ids, "night_movement")).values()) == [set(ids)]


async def test_a_renamed_boat_and_a_fast_craft_at_night_are_flagged(db: Database):
    site = await a_site(db)
    reg = a_registration()
    renamed = [
        await plant(
            db,
            site,
            local("2026-05-01", 12),
            local("2026-05-02", 12),
            registration=reg,
            vessel_name="Zeemeeuw",
        ),
        await plant(
            db,
            site,
            local("2026-07-01", 12),
            local("2026-07-02", 12),
            registration=reg,
            vessel_name="Albatros",
        ),
    ]
    rib = await plant(db, site, local("2026-07-05", 3), local("2026-07-05", 15), vessel_type="rib")

    await scan.run_scan(db, now=NOW, full=True)

    assert list((await flags_of(db, renamed, "identity_change")).values()) == [set(renamed)]
    assert list((await flags_of(db, [rib], "fast_craft_night")).values()) == [{rib}]


async def test_a_van_meeting_a_boat_at_night_and_night_traffic_at_a_unit_are_flagged(db: Database):
    marina = await a_site(db)
    boat = await plant(db, marina, local("2026-07-10", 23, 50), local("2026-07-11", 8))
    van = await plant(
        db, marina, local("2026-07-11", 0, 10), local("2026-07-11", 0, 40), kind="vehicle"
    )
    park = await a_site(db, "business_park")
    calls = [
        await plant(
            db,
            park,
            local(f"2026-07-{day:02d}", 23),
            local(f"2026-07-{day + 1:02d}", 1),
            kind="vehicle",
            unit="Unit 7",
        )
        for day in (3, 6, 9)
    ]

    await scan.run_scan(db, now=NOW, full=True)

    assert list((await flags_of(db, [boat, van], "boat_meets_vehicle")).values()) == [{boat, van}]
    assert list((await flags_of(db, calls, "unit_night_traffic")).values()) == [set(calls)]


async def test_an_arrival_surge_is_flagged_with_that_days_arrivals_as_evidence(db: Database):
    site = await a_site(db)
    surge_day = "2026-07-15"  # a Wednesday
    for week in range(1, 9):
        day = datetime(2026, 7, 15, 10, tzinfo=UTC) - timedelta(weeks=week)
        await plant(db, site, day, day + timedelta(hours=20))
    arrivals = [
        await plant(db, site, local(surge_day, 8 + i), local(surge_day, 8 + i) + timedelta(days=1))
        for i in range(12)
    ]

    await scan.run_scan(db, now=NOW, full=True)

    flags = await flags_of(db, arrivals, "arrival_surge")
    assert list(flags.values()) == [set(arrivals)]


async def test_an_overdue_visit_is_flagged_by_the_overdue_job_not_the_scan(db: Database):
    site = await a_site(db)
    late = await plant(db, site, NOW - timedelta(days=3), None, kind="vessel")
    async with db.write() as session:
        await session.execute(
            update(Visit)
            .where(Visit.id == late)
            .values(expected_departure_at=NOW - timedelta(hours=25))
        )
    await scan.run_scan(db, now=NOW, full=True)
    assert await flags_of(db, [late], "overdue") == {}

    summary = await scan.run_overdue(db, now=NOW)

    assert list((await flags_of(db, [late], "overdue")).values()) == [{late}]
    assert summary.created >= 1


async def test_two_scans_at_once_make_each_flag_once(db: Database):
    site = await a_site(db)
    reg = a_registration()
    ids = [
        await plant(
            db, site, local("2026-07-10", 23, 40), local("2026-07-11", 10), registration=reg
        ),
        await plant(
            db, site, local("2026-07-15", 2, 15), local("2026-07-15", 12), registration=reg
        ),
    ]

    await asyncio.gather(
        scan.run_scan(db, now=NOW, full=True), scan.run_scan(db, now=NOW, full=True)
    )

    assert len(await flags_of(db, ids, "night_movement")) == 1


async def test_findings_of_one_rule_that_share_a_visit_in_one_scan_make_one_flag(db: Database):
    marina = await a_site(db)
    first_boat = await plant(db, marina, local("2026-07-10", 23, 50), local("2026-07-11", 8))
    second_boat = await plant(db, marina, local("2026-07-11", 0, 20), local("2026-07-11", 9))
    van = await plant(
        db, marina, local("2026-07-11", 0, 5), local("2026-07-11", 0, 50), kind="vehicle"
    )

    await scan.run_scan(db, now=NOW, full=True)

    flags = await flags_of(db, [first_boat, second_boat, van], "boat_meets_vehicle")
    assert list(flags.values()) == [{first_boat, second_boat, van}]


async def test_the_flags_a_scan_raises_are_in_the_audit_trail_and_the_chain_holds(db: Database):
    from nightreg.models import AuditEvent
    from nightreg.services import audit

    site = await a_site(db)
    reg = a_registration()
    ids = [
        await plant(
            db, site, local("2026-07-10", 23, 40), local("2026-07-11", 10), registration=reg
        ),
        await plant(
            db, site, local("2026-07-15", 2, 15), local("2026-07-15", 12), registration=reg
        ),
    ]

    await scan.run_scan(db, now=NOW, full=True)

    (flag_id,) = await flags_of(db, ids, "night_movement")
    async with db.read() as session:
        raised = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "flag_raised", AuditEvent.object_id == flag_id
            )
        )
    assert raised is not None
    assert raised.actor == "system"
    assert json.loads(raised.object_ids) == sorted(ids)
    assert (await audit.verify(db)).intact
