"""A visit's status: the Python test and its SQL twin agree, and the rule's grace is a threshold."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from nightreg import visit_status, visit_status_sql
from nightreg.db import Database
from nightreg.models import Visit
from nightreg.services import sites, visits
from nightreg.validation import validate_checkin
from tests.factories import SUMMER_EVENING, make_point

NOW = SUMMER_EVENING
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


async def _visit(db: Database, site_id: int, hours_to_departure: int, departed: bool) -> Visit:
    expected = (NOW + timedelta(hours=hours_to_departure)).astimezone(AMSTERDAM)
    form = {
        "kind": "stay",
        "guest_name": "Jan de Vries",
        "residence": "Hoorn",
        "persons": "2",
        "arrived_at": (NOW - timedelta(days=3)).astimezone(AMSTERDAM).strftime("%Y-%m-%dT%H:%M"),
        "expected_departure_at": expected.strftime("%Y-%m-%dT%H:%M"),
    }
    data, errors = validate_checkin(
        form, kind="stay", allowed_kinds=("stay",), now=NOW, tz=AMSTERDAM, max_arrival_past=None
    )
    assert data is not None, errors
    row = visits.visit_row(
        data,
        site_id=site_id,
        source="staff",
        now=NOW,
        departed_at=NOW - timedelta(hours=1) if departed else None,
    )
    return (await visits.write(db, row, now=NOW)).visit


async def test_every_status_means_the_same_in_python_and_in_sql(db: Database) -> None:
    point = await make_point(db, "business_park")
    site = await sites.get_site(db, point.site_slug)
    written = [
        await _visit(db, site.id, hours, departed)
        for hours in (-30, -2, 0, 5)
        for departed in (False, True)
    ]
    ids = [v.id for v in written]
    labels = [visit_status.status(v, NOW) for v in written]
    assert labels == ["overdue", "departed"] * 3 + ["present", "departed"]
    async with db.read() as session:
        for name in visit_status.STATUSES:
            in_sql = set(
                await session.scalars(
                    select(Visit.id).where(Visit.id.in_(ids), visit_status_sql.status_is(name, NOW))
                )
            )
            in_python = {v.id for v in written if visit_status.has_status(v, name, NOW)}
            assert in_sql == in_python, name


async def test_the_rules_grace_is_a_threshold_of_the_same_overdue(db: Database) -> None:
    point = await make_point(db, "business_park")
    site = await sites.get_site(db, point.site_slug)
    late = await _visit(db, site.id, -30, False)
    recent = await _visit(db, site.id, -2, False)
    grace = timedelta(hours=24)
    assert visit_status.is_overdue(late, NOW, grace)
    assert not visit_status.is_overdue(recent, NOW, grace)
    assert visit_status.is_overdue(recent, NOW)  # the pages: overdue as soon as it has passed
    async with db.read() as session:
        found = set(
            await session.scalars(
                select(Visit.id).where(
                    Visit.id.in_([late.id, recent.id]), visit_status_sql.overdue_at(NOW, grace)
                )
            )
        )
    assert found == {late.id}
