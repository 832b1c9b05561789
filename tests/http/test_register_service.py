"""The register services: tonight, search, one visit, walk-ins, corrections, notes, print.

Called directly with an Actor, on the test's own database: scope, permissions and the audit
trail are checked here; the pages on top of them in test_register.py.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import VisitNote
from nightreg.services import (
    audit,
    corrections,
    police_print,
    register,
    register_search,
    tonight,
    walk_ins,
)
from nightreg.services.access import AccessDenied, NotFound
from nightreg.services.register import QueryInvalid, VisitInvalid
from nightreg.services.register_search import RegisterQuery
from tests.factories import (
    SUMMER_EVENING,
    add_visit,
    event_details,
    events,
    new_site,
    reload,
    staff,
)

NOW = SUMMER_EVENING  # 21:00 in Amsterdam, 14 July 2026


def walk_in(**overrides: str) -> dict[str, str]:
    form = {
        "kind": "vessel",
        "vessel_name": "Albatros",
        "registration": "DE-4711",
        "guest_name": "Greta Berger",
        "residence": "Hamburg",
        "country": "DE",
        "persons": "3",
        "arrived_at": "2026-07-13T22:15",
        "expected_departure_at": "2026-07-16T10:00",
    }
    form.update(overrides)
    return form


# --- tonight -----------------------------------------------------------------------------


async def test_tonight_counts_who_is_present_by_kind_and_lists_arrivals_leavers_and_overdue(
    db: Database,
):
    site = await new_site(db)
    boat = await add_visit(db, site, arrived=NOW - timedelta(hours=2))
    car = await add_visit(
        db, site, kind="vehicle", arrived=NOW - timedelta(days=2), expected=NOW + timedelta(days=2)
    )
    # Expected to leave at 22:30 tonight, local time: leaving today.
    leaver = await add_visit(
        db, site, arrived=NOW - timedelta(days=1), expected=NOW + timedelta(minutes=90)
    )
    late = await add_visit(
        db, site, arrived=NOW - timedelta(days=3), expected=NOW - timedelta(hours=5)
    )
    gone = await add_visit(
        db, site, arrived=NOW - timedelta(hours=6), departed=NOW - timedelta(hours=1)
    )
    not_yet = await add_visit(db, site, arrived=NOW + timedelta(hours=10))

    result = await tonight.tonight(db, staff("harbour_master", site), site.id, now=NOW)

    assert {v.id for v in result.present} == {boat.id, car.id, leaver.id, late.id}
    assert result.present_by_kind == {"vessel": 3, "vehicle": 1}
    assert {v.id for v in result.arrived_today} == {boat.id, gone.id}
    assert [v.id for v in result.leaving_today] == [leaver.id]
    assert [v.id for v in result.overdue] == [late.id]
    assert result.open_flags == 0
    assert not_yet.id not in {v.id for v in result.present}


async def test_tonight_starts_the_day_at_midnight_on_the_sites_clock(db: Database):
    site = await new_site(db)
    # 00:30 in Amsterdam on 14 July is 22:30 UTC on 13 July.
    after_midnight = await add_visit(db, site, arrived=datetime(2026, 7, 13, 22, 30, tzinfo=UTC))
    before_midnight = await add_visit(db, site, arrived=datetime(2026, 7, 13, 21, 30, tzinfo=UTC))

    result = await tonight.tonight(db, staff("security", site), site.id, now=NOW)

    assert after_midnight.id in {v.id for v in result.arrived_today}
    assert before_midnight.id not in {v.id for v in result.arrived_today}


async def test_tonight_is_audited_with_the_visits_it_showed(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)

    await tonight.tonight(db, staff("harbour_master", site), site.id, now=NOW)

    [event] = await events(db, "tonight_viewed", site)
    assert json.loads(event.object_ids) == [boat.id]
    assert event.actor.startswith("user:")


async def test_tonight_of_another_site_is_not_found_and_an_analyst_is_refused(db: Database):
    mine, theirs = await new_site(db), await new_site(db)

    with pytest.raises(NotFound):
        await tonight.tonight(db, staff("harbour_master", mine), theirs.id, now=NOW)
    with pytest.raises(AccessDenied):
        await tonight.tonight(db, staff("analyst", mine), mine.id, now=NOW)
    with pytest.raises(AccessDenied):
        await tonight.tonight(db, staff("auditor", mine), mine.id, now=NOW)


# --- search ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q", ["de vries", "DEVRIES", "  De-Vries ", "nl 123 ab", "nl123ab", "zeeMEEUW", "NL-123"]
)
async def test_the_search_ignores_case_spaces_and_dashes(db: Database, q: str):
    site = await new_site(db)
    boat = await add_visit(db, site)
    await add_visit(db, site, guest_name="Piet Jansen", vessel_name="Albatros", registration="X1")

    page = await register_search.search(
        db, staff("harbour_master", site), site.id, RegisterQuery(q=q), now=NOW
    )

    assert [v.id for v in page.visits] == [boat.id]


async def test_the_search_finds_an_mmsi_and_a_plate(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site, registration=None, mmsi="244123456")
    car = await add_visit(db, site, kind="vehicle", plate="GX-123-B")
    actor = staff("security", site)

    by_mmsi = await register_search.search(
        db, actor, site.id, RegisterQuery(q="244 123 456"), now=NOW
    )
    by_plate = await register_search.search(db, actor, site.id, RegisterQuery(q="gx123b"), now=NOW)

    assert [v.id for v in by_mmsi.visits] == [boat.id]
    assert [v.id for v in by_plate.visits] == [car.id]


@pytest.mark.parametrize("q", ["%", "%%", "J%V"])
async def test_wildcards_in_a_search_are_taken_literally(db: Database, q: str):
    site = await new_site(db)
    await add_visit(db, site)

    page = await register_search.search(
        db, staff("harbour_master", site), site.id, RegisterQuery(q=q), now=NOW
    )

    assert page.visits == []


async def test_the_search_never_shows_another_sites_visits(db: Database):
    mine, theirs = await new_site(db), await new_site(db)
    await add_visit(db, theirs)
    actor = staff("harbour_master", mine)

    page = await register_search.search(db, actor, mine.id, RegisterQuery(q="de vries"), now=NOW)

    assert page.visits == []
    with pytest.raises(NotFound):
        await register_search.search(db, actor, theirs.id, RegisterQuery(), now=NOW)


@pytest.mark.parametrize("sort", ["arrived_desc", "arrived_asc", "name"])
async def test_keyset_pagination_returns_every_visit_exactly_once(db: Database, sort: str):
    site = await new_site(db)
    names = ["anna", "Bram", "cees", "Dirk", "Eva"]
    made = []
    for i in range(23):
        # Several visits share an arrival time and a name: the id breaks the ties.
        made.append(
            await add_visit(
                db,
                site,
                arrived=NOW - timedelta(hours=i // 3),
                guest_name=f"{names[i % 5]} Jansen",
            )
        )
    actor = staff("harbour_master", site)

    seen: list[int] = []
    cursor = None
    for _page in range(10):
        page = await register_search.search(
            db, actor, site.id, RegisterQuery(sort=sort, cursor=cursor, limit=4), now=NOW
        )
        seen.extend(v.id for v in page.visits)
        cursor = page.next_cursor
        if cursor is None:
            break

    assert sorted(seen) == sorted(v.id for v in made)
    assert len(seen) == len(set(seen))
    if sort == "arrived_desc":
        assert seen == [v.id for v in sorted(made, key=lambda v: (v.arrived_at, v.id))][::-1]
    elif sort == "arrived_asc":
        assert seen == [v.id for v in sorted(made, key=lambda v: (v.arrived_at, v.id))]
    else:
        assert seen == [v.id for v in sorted(made, key=lambda v: (v.guest_name.lower(), v.id))]


async def test_the_filters_narrow_by_kind_status_and_source(db: Database):
    site = await new_site(db)
    present = await add_visit(db, site, expected=NOW + timedelta(days=1))
    overdue = await add_visit(
        db, site, arrived=NOW - timedelta(days=2), expected=NOW - timedelta(hours=1)
    )
    departed = await add_visit(db, site, departed=NOW - timedelta(hours=1), source="staff")
    car = await add_visit(db, site, kind="vehicle", source="api")
    actor = staff("harbour_master", site)

    async def found(**kw: Any) -> set[int]:
        page = await register_search.search(db, actor, site.id, RegisterQuery(**kw), now=NOW)
        return {v.id for v in page.visits}

    assert await found(kind="vehicle") == {car.id}
    assert await found(status="present") == {present.id, overdue.id, car.id}
    assert await found(status="overdue") == {overdue.id}
    assert await found(status="departed") == {departed.id}
    assert await found(source="staff") == {departed.id}
    assert await found(source="api", kind="vessel") == set()


async def test_a_date_range_finds_every_stay_that_overlaps_it(db: Database):
    site = await new_site(db)
    # Local dates in Amsterdam (UTC+2 in summer).
    in_june = await add_visit(
        db,
        site,
        arrived=datetime(2026, 6, 10, 18, 0, tzinfo=UTC),
        departed=datetime(2026, 6, 12, 9, 0, tzinfo=UTC),
    )
    across_the_start = await add_visit(
        db,
        site,
        arrived=datetime(2026, 6, 30, 18, 0, tzinfo=UTC),
        departed=datetime(2026, 7, 2, 9, 0, tzinfo=UTC),
    )
    still_here = await add_visit(db, site, arrived=datetime(2026, 6, 28, 12, 0, tzinfo=UTC))
    # Left at 01:00 local time on 1 July: overlaps 1 July by an hour.
    left_after_midnight = await add_visit(
        db,
        site,
        arrived=datetime(2026, 6, 29, 12, 0, tzinfo=UTC),
        departed=datetime(2026, 6, 30, 23, 0, tzinfo=UTC),
    )
    # Left at 23:30 local time on 30 June: does not.
    left_before_midnight = await add_visit(
        db,
        site,
        arrived=datetime(2026, 6, 29, 12, 0, tzinfo=UTC),
        departed=datetime(2026, 6, 30, 21, 30, tzinfo=UTC),
    )
    # Arrived at 00:30 local time on 4 July: after the range.
    after = await add_visit(db, site, arrived=datetime(2026, 7, 3, 22, 30, tzinfo=UTC))

    page = await register_search.search(
        db,
        staff("harbour_master", site),
        site.id,
        RegisterQuery(date_from=date(2026, 7, 1), date_to=date(2026, 7, 3)),
        now=NOW,
    )

    found = {v.id for v in page.visits}
    assert found == {across_the_start.id, still_here.id, left_after_midnight.id}
    assert not found & {in_june.id, left_before_midnight.id, after.id}


async def test_a_search_is_audited_with_the_visits_shown_and_the_filters(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)

    await register_search.search(
        db,
        staff("security", site),
        site.id,
        RegisterQuery(q="vries", kind="vessel", date_from=date(2026, 7, 1)),
        now=NOW,
    )

    [event] = await events(db, "register_viewed", site)
    assert json.loads(event.object_ids) == [boat.id]
    assert "filters" not in json.loads(event.details)  # personal: in the detail record
    assert (await event_details(db, event))["filters"] == {
        "q": "vries",
        "kind": "vessel",
        "from": "2026-07-01",
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (RegisterQuery(limit=0), "limit"),
        (RegisterQuery(limit=201), "limit"),
        (RegisterQuery(kind="boat"), "kind"),
        (RegisterQuery(status="gone"), "status"),
        (RegisterQuery(source="fax"), "source"),
        (RegisterQuery(sort="random"), "sort"),
        (RegisterQuery(cursor="not-a-cursor"), "cursor"),
        (RegisterQuery(date_from=date(2026, 7, 2), date_to=date(2026, 7, 1)), "date_to"),
    ],
)
async def test_a_bad_query_is_refused_with_its_field(
    db: Database, query: RegisterQuery, field: str
):
    site = await new_site(db)

    with pytest.raises(QueryInvalid) as refused:
        await register_search.search(db, staff("harbour_master", site), site.id, query, now=NOW)

    assert refused.value.field == field


async def test_a_cursor_of_another_sort_is_refused(db: Database):
    site = await new_site(db)
    for _ in range(3):
        await add_visit(db, site)
    actor = staff("harbour_master", site)
    page = await register_search.search(db, actor, site.id, RegisterQuery(limit=1), now=NOW)
    assert page.next_cursor

    with pytest.raises(QueryInvalid):
        await register_search.search(
            db, actor, site.id, RegisterQuery(sort="name", cursor=page.next_cursor), now=NOW
        )


# --- one visit ---------------------------------------------------------------------------


async def test_opening_a_visit_is_audited_and_loads_its_site(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)

    visit = await register.get_visit(db, staff("security", site), boat.id, now=NOW)

    assert visit.site.slug == site.slug
    [event] = await events(db, "visit_viewed", site)
    assert (event.object_type, event.object_id) == ("visit", boat.id)


async def test_a_visit_of_another_site_is_not_found_and_nothing_is_audited(db: Database):
    mine, theirs = await new_site(db), await new_site(db)
    boat = await add_visit(db, theirs)
    actor = staff("harbour_master", mine)

    for call in (
        register.get_visit(db, actor, boat.id, now=NOW),
        register.visit_history(db, actor, boat.id),
        register.visit_notes(db, actor, boat.id),
        corrections.correct_visit(db, actor, boat.id, {"persons": "3"}, "typo", now=NOW),
        corrections.check_out_visit(db, actor, boat.id, now=NOW),
        corrections.add_note(db, actor, boat.id, "paid", now=NOW),
    ):
        with pytest.raises(NotFound):
            await call
    assert await events(db, "visit_viewed", theirs) == []


async def test_a_missing_visit_is_not_found(db: Database):
    site = await new_site(db)

    with pytest.raises(NotFound):
        await register.get_visit(db, staff("harbour_master", site), 2**31 - 1, now=NOW)


# --- walk-ins ----------------------------------------------------------------------------


async def test_staff_enter_last_nights_walk_in_the_next_morning(db: Database):
    site = await new_site(db)
    morning = datetime(2026, 7, 14, 7, 0, tzinfo=UTC)

    visit = await walk_ins.create_visit(
        db, staff("harbour_master", site), site.id, walk_in(), now=morning
    )

    stored = await reload(db, visit.id)
    assert stored.source == "staff"
    assert stored.arrived_at == datetime(2026, 7, 13, 20, 15, tzinfo=UTC)
    assert stored.search_key == "GRETABERGER|ALBATROS|DE4711"
    assert stored.subject_key == "reg:DE4711"
    assert stored.point_id is None
    assert visit.site.slug == site.slug
    [event] = await events(db, "visit_created", site)
    assert event.object_id == visit.id


async def test_a_walk_in_uses_the_kiosks_validation(db: Database):
    site = await new_site(db)
    form = walk_in(guest_name="", arrived_at="2026-07-01T10:00", registration="", mmsi="123")

    with pytest.raises(VisitInvalid) as refused:
        await walk_ins.create_visit(db, staff("harbour_master", site), site.id, form, now=NOW)

    assert {"guest_name", "arrived_at", "mmsi"} <= refused.value.errors.keys()
    assert await events(db, "visit_created", site) == []


async def test_a_walk_in_of_a_kind_the_site_does_not_take_is_refused(db: Database):
    site = await new_site(db, "marina")

    with pytest.raises(VisitInvalid) as refused:
        await walk_ins.create_visit(
            db,
            staff("harbour_master", site),
            site.id,
            walk_in(kind="stay", unit="B1"),
            now=NOW,
        )

    assert "kind" in refused.value.errors


async def test_a_walk_in_sent_twice_makes_one_visit(db: Database):
    site = await new_site(db)
    actor = staff("harbour_master", site)
    form = walk_in(idempotency_key=secrets.token_urlsafe(12))

    first = await walk_ins.create_visit(db, actor, site.id, form, now=NOW)
    second = await walk_ins.create_visit(db, actor, site.id, form, now=NOW)

    assert first.id == second.id
    assert len(await events(db, "visit_created", site)) == 1


async def test_security_may_not_enter_a_walk_in(db: Database):
    site = await new_site(db)

    with pytest.raises(AccessDenied):
        await walk_ins.create_visit(db, staff("security", site), site.id, walk_in(), now=NOW)


# --- corrections -------------------------------------------------------------------------


async def test_a_correction_audits_the_reason_and_old_and_new_values_of_what_changed(
    db: Database,
):
    site = await new_site(db)
    boat = await add_visit(db, site, length_m=Decimal("9.5"))
    actor = staff("harbour_master", site)
    tz = ZoneInfo(site.timezone)
    form = corrections.visit_form_values(boat, tz)
    form.update(guest_name="Jan de Vries-Bakker", registration="NL-124-AB", length_m="10")

    visit = await corrections.correct_visit(db, actor, boat.id, form, "Typo at the kiosk", now=NOW)

    assert visit.guest_name == "Jan de Vries-Bakker"
    stored = await reload(db, boat.id)
    assert stored.registration == "NL-124-AB"
    assert stored.length_m == Decimal("10.0")
    assert stored.search_key == "JANDEVRIESBAKKER|ZEEMEEUW|NL124AB"
    assert stored.subject_key == "reg:NL124AB"
    # Untouched times keep their seconds: a whole form posted back changes nothing else.
    assert stored.arrived_at == boat.arrived_at
    [event] = await events(db, "visit_corrected", site)
    details = await event_details(db, event)
    assert details == {
        "reason": "Typo at the kiosk",
        "before": {
            "guest_name": "Jan de Vries",
            "registration": "NL-123-AB",
            "length_m": "9.5",
        },
        "after": {
            "guest_name": "Jan de Vries-Bakker",
            "registration": "NL-124-AB",
            "length_m": "10.0",
        },
    }
    assert (event.object_type, event.object_id) == ("visit", boat.id)


@pytest.mark.parametrize("reason", ["", "   ", "\t"])
async def test_a_correction_without_a_reason_is_refused(db: Database, reason: str):
    site = await new_site(db)
    boat = await add_visit(db, site)

    with pytest.raises(VisitInvalid) as refused:
        await corrections.correct_visit(
            db, staff("harbour_master", site), boat.id, {"persons": "3"}, reason, now=NOW
        )

    assert list(refused.value.errors) == ["reason"]
    assert (await reload(db, boat.id)).persons == 2
    assert await events(db, "visit_corrected", site) == []


async def test_a_correction_is_checked_with_the_kiosks_rules(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)

    with pytest.raises(VisitInvalid) as refused:
        await corrections.correct_visit(
            db,
            staff("harbour_master", site),
            boat.id,
            {"persons": "0", "mmsi": "12", "registration": ""},
            "fix",
            now=NOW,
        )

    assert {"persons", "mmsi"} <= refused.value.errors.keys()


async def test_an_old_visit_can_still_be_corrected(db: Database):
    site = await new_site(db)
    old = await add_visit(
        db,
        site,
        arrived=NOW - timedelta(days=40),
        departed=NOW - timedelta(days=38),
    )

    await corrections.correct_visit(
        db,
        staff("harbour_master", site),
        old.id,
        {"arrived_at": "2026-06-04T09:00", "residence": "Enkhuizen"},
        "Arrived in the morning, per the harbour log",
        now=NOW,
    )

    stored = await reload(db, old.id)
    assert stored.arrived_at == datetime(2026, 6, 4, 7, 0, tzinfo=UTC)
    assert stored.residence == "Enkhuizen"


async def test_a_correction_may_not_move_the_departure_before_the_arrival(db: Database):
    site = await new_site(db)
    boat = await add_visit(
        db, site, arrived=NOW - timedelta(hours=5), departed=NOW - timedelta(hours=1)
    )

    with pytest.raises(VisitInvalid) as refused:
        await corrections.correct_visit(
            db,
            staff("harbour_master", site),
            boat.id,
            {"departed_at": "2026-07-14T10:00"},
            "wrong time",
            now=NOW,
        )

    assert list(refused.value.errors) == ["departed_at"]


async def test_a_field_of_another_kind_or_an_unknown_field_cannot_be_corrected(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)

    with pytest.raises(VisitInvalid) as refused:
        await corrections.correct_visit(
            db,
            staff("harbour_master", site),
            boat.id,
            {"plate": "AB-12-CD", "private_token_hash": "x", "source": "api"},
            "sneaky",
            now=NOW,
        )

    assert refused.value.errors.keys() == {"plate", "private_token_hash", "source"}


async def test_a_correction_that_changes_nothing_writes_nothing(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    form = corrections.visit_form_values(boat, ZoneInfo(site.timezone))

    await corrections.correct_visit(
        db, staff("harbour_master", site), boat.id, form, "no change", now=NOW
    )

    assert await events(db, "visit_corrected", site) == []


async def test_security_may_view_but_not_correct(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    guard = staff("security", site)

    await register.get_visit(db, guard, boat.id, now=NOW)
    with pytest.raises(AccessDenied):
        await corrections.correct_visit(db, guard, boat.id, {"persons": "3"}, "x", now=NOW)
    with pytest.raises(AccessDenied):
        await corrections.check_out_visit(db, guard, boat.id, now=NOW)
    with pytest.raises(AccessDenied):
        await corrections.add_note(db, guard, boat.id, "x", now=NOW)


async def test_a_correction_fails_when_its_audit_cannot_be_written(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    site = await new_site(db)
    boat = await add_visit(db, site)

    async def broken(*_args: Any, **_kw: Any) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError):
        await corrections.correct_visit(
            db, staff("harbour_master", site), boat.id, {"persons": "4"}, "count", now=NOW
        )

    assert (await reload(db, boat.id)).persons == 2


async def test_a_search_hands_out_nothing_when_its_audit_cannot_be_written(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    site = await new_site(db)
    await add_visit(db, site)

    async def broken(*_args: Any, **_kw: Any) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "log", broken)
    with pytest.raises(RuntimeError):
        await register_search.search(
            db, staff("harbour_master", site), site.id, RegisterQuery(), now=NOW
        )


# --- check-out, notes, history -----------------------------------------------------------


async def test_checking_out_twice_records_one_departure(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    actor = staff("harbour_master", site)

    first = await corrections.check_out_visit(db, actor, boat.id, now=NOW)
    second = await corrections.check_out_visit(db, actor, boat.id, now=NOW + timedelta(hours=1))

    assert first.departed_at == second.departed_at == NOW
    assert len(await events(db, "visit_checked_out", site)) == 1


async def test_a_check_out_before_the_arrival_is_refused(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site, arrived=NOW - timedelta(hours=1))

    with pytest.raises(VisitInvalid):
        await corrections.check_out_visit(
            db,
            staff("harbour_master", site),
            boat.id,
            now=NOW,
            departed_at=NOW - timedelta(hours=2),
        )


async def test_a_note_is_signed_and_audited(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    actor = staff("harbour_master", site, name="piet@haven.test")

    note = await corrections.add_note(db, actor, boat.id, "Paid for two nights.", now=NOW)

    notes = await register.visit_notes(db, actor, boat.id)
    assert [(n.id, n.text) for n in notes] == [(note.id, "Paid for two nights.")]
    assert "piet@haven.test" in notes[0].author
    [event] = await events(db, "visit_note_added", site)
    assert event.object_id == boat.id


async def test_an_empty_note_is_refused(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)

    with pytest.raises(VisitInvalid) as refused:
        await corrections.add_note(db, staff("harbour_master", site), boat.id, "  \n ", now=NOW)

    assert list(refused.value.errors) == ["text"]
    async with db.read() as session:
        assert await session.scalar(select(VisitNote).where(VisitNote.visit_id == boat.id)) is None


async def test_the_history_of_a_visit_lists_its_changes_oldest_first_without_views(
    db: Database,
):
    site = await new_site(db)
    actor = staff("harbour_master", site)
    visit = await walk_ins.create_visit(db, actor, site.id, walk_in(), now=NOW)
    await register.get_visit(db, actor, visit.id, now=NOW)
    await corrections.correct_visit(db, actor, visit.id, {"persons": "4"}, "count", now=NOW)
    await corrections.add_note(db, actor, visit.id, "key at the office", now=NOW)
    await corrections.check_out_visit(db, actor, visit.id, now=NOW)

    history = await register.visit_history(db, actor, visit.id)
    with_views = await register.visit_history(db, actor, visit.id, include_views=True)

    assert [e.action for e in history] == [
        "visit_created",
        "visit_corrected",
        "visit_note_added",
        "visit_checked_out",
    ]
    assert "visit_viewed" in [e.action for e in with_views]


# --- police print ------------------------------------------------------------------------


async def test_the_print_without_dates_holds_who_is_present_and_is_audited(db: Database):
    site = await new_site(db)
    here = await add_visit(db, site)
    await add_visit(db, site, departed=NOW - timedelta(hours=1))

    out = await police_print.print_register(
        db, staff("harbour_master", site), site.id, date_from=None, date_to=None, now=NOW
    )

    assert [v.id for v in out.visits] == [here.id]
    [event] = await events(db, "register_printed", site)
    assert json.loads(event.object_ids) == [here.id]


async def test_the_print_of_a_period_holds_every_stay_in_it_in_arrival_order(db: Database):
    site = await new_site(db)
    second = await add_visit(
        db,
        site,
        arrived=datetime(2026, 7, 2, 18, 0, tzinfo=UTC),
        departed=datetime(2026, 7, 3, 8, 0, tzinfo=UTC),
    )
    first = await add_visit(
        db,
        site,
        arrived=datetime(2026, 7, 1, 18, 0, tzinfo=UTC),
        departed=datetime(2026, 7, 2, 8, 0, tzinfo=UTC),
    )
    await add_visit(
        db,
        site,
        arrived=datetime(2026, 6, 1, 18, 0, tzinfo=UTC),
        departed=datetime(2026, 6, 2, 8, 0, tzinfo=UTC),
    )

    out = await police_print.print_register(
        db,
        staff("harbour_master", site),
        site.id,
        date_from=date(2026, 7, 1),
        date_to=date(2026, 7, 2),
        now=NOW,
    )

    assert [v.id for v in out.visits] == [first.id, second.id]


async def test_security_may_not_print_the_register(db: Database):
    site = await new_site(db)

    with pytest.raises(AccessDenied):
        await police_print.print_register(
            db, staff("security", site), site.id, date_from=None, date_to=None, now=NOW
        )
