"""The review queue names its subject (boat, plate, unit; for the hub's analyst only what an
agreement shared), filters by it, and dismisses several flags at once, each audited."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import event, select

from nightreg.db import Database
from nightreg.models import AuditEvent, Flag
from nightreg.services import flags as flag_queue
from nightreg.services.flags import FlagQuery
from tests.factories import (
    SUMMER_EVENING,
    add_visit,
    event_details,
    forward,
    load,
    make_agreement,
    make_flag,
    new_site,
    staff,
)
from tests.pages import signed_in

Client = AsyncTestClient[Litestar]
NOW = SUMMER_EVENING


def subjects(html: str) -> list[str]:
    return [
        " ".join(re.sub(r"<[^>]+>", " ", cell).split())
        for cell in re.findall(r'<td data-label="Subject" class="subject">(.*?)</td>', html, re.S)
    ]


def flag_links(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/admin/flags/(\d+)"', html)]


async def reviews(db: Database, flag_ids: list[int]) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "flag_reviewed", AuditEvent.object_id.in_(flag_ids))
                .order_by(AuditEvent.id)
            )
        )


# --- the subject column ----------------------------------------------------------------------


async def test_the_queue_names_the_boat_the_car_and_the_unit_with_period_and_visits(
    client: Client, db: Database
):
    site = await new_site(db, "business_park")
    boat = await add_visit(db, site, vessel_name="Zeemeeuw", registration="NL-123-AB")
    car = await add_visit(db, site, kind="vehicle", plate="12-ABC-3")
    stay = await add_visit(db, site, kind="stay", unit="B12")
    await make_flag(db, site, visits=[boat], score=90)
    await make_flag(db, site, visits=[car], score=80)
    await make_flag(db, site, visits=[stay], score=70)
    await signed_in(client, db, "security", site)

    page = await client.get(f"/admin/sites/{site.slug}/flags")

    assert page.status_code == 200
    assert ">Subject</th>" in page.text
    assert ">Period</th>" in page.text
    assert subjects(page.text) == ["Zeemeeuw · NL-123-AB", "12-ABC-3", "unit B12"]
    # The time window on the site's clock (from three days before until two hours ago).
    assert "2026-07-11 21:00 – 2026-07-14 19:00" in page.text


async def test_the_subject_is_the_latest_visit_of_the_evidence(client: Client, db: Database):
    site = await new_site(db)
    old = await add_visit(
        db, site, vessel_name="Oude Naam", registration="NL-9-ZZ", arrived=NOW - timedelta(days=5)
    )
    new = await add_visit(db, site, vessel_name="Nieuwe Naam", registration="NL-9-ZZ")
    await make_flag(db, site, visits=[old, new])
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/flags")

    assert subjects(page.text) == ["Nieuwe Naam · NL-9-ZZ"]
    assert re.search(r'data-label="Visits">2<', page.text)


async def test_the_analyst_sees_only_the_identifiers_the_agreement_shared(
    client: Client, db: Database
):
    site = await new_site(db)
    named = await make_agreement(db, fields=("rule", "reason", "vessel_name"))
    nothing = await make_agreement(db, fields=("rule", "reason"))
    boat = await add_visit(db, site, vessel_name="Zeemeeuw", registration="NL-123-AB")
    other = await add_visit(db, site, vessel_name="Stormvogel", registration="NL-555-XY")
    await forward(db, site, named, visit=boat)
    await forward(db, site, nothing, visit=other)
    await signed_in(client, db, "analyst", site)

    page = await client.get(f"/admin/sites/{site.slug}/flags?status=all")

    assert sorted(subjects(page.text)) == ["Zeemeeuw", "not shared"]
    assert "NL-123-AB" not in page.text
    assert "Stormvogel" not in page.text
    assert "NL-555-XY" not in page.text


# --- the subject filter ----------------------------------------------------------------------


async def test_staff_filter_the_queue_by_boat_plate_or_unit(client: Client, db: Database):
    site = await new_site(db, "business_park")
    boat = await make_flag(
        db, site, visits=[await add_visit(db, site, vessel_name="Zeemeeuw", registration="NL-1")]
    )
    car = await make_flag(
        db, site, visits=[await add_visit(db, site, kind="vehicle", plate="12-ABC-3")]
    )
    unit = await make_flag(db, site, visits=[await add_visit(db, site, kind="stay", unit="B12")])
    await signed_in(client, db, "harbour_master", site)
    url = f"/admin/sites/{site.slug}/flags"

    assert flag_links((await client.get(url, params={"subject": "zeemeeuw"})).text) == [boat]
    assert flag_links((await client.get(url, params={"subject": "abc 3"})).text) == [car]
    assert flag_links((await client.get(url, params={"subject": "b12"})).text) == [unit]
    rows = await client.get(
        url, params={"subject": "nobody"}, headers={"HX-Request": "true", "HX-Target": "flag-rows"}
    )
    assert "No flags to show." in rows.text
    assert "<h1>" not in rows.text
    # The fragment is personal: it is audited in the detail record, not the chain.
    async with db.read() as session:
        seen = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "flags_viewed", AuditEvent.site_id == site.id)
                .order_by(AuditEvent.id)
            )
        ).all()
    assert "zeemeeuw" not in seen[0].details
    assert (await event_details(db, seen[0]))["filters"]["subject"] == "zeemeeuw"


async def test_the_analyst_filters_only_on_what_was_shared(client: Client, db: Database):
    site = await new_site(db)
    named = await make_agreement(db, fields=("rule", "reason", "vessel_name"))
    boat = await add_visit(db, site, vessel_name="Zeemeeuw", registration="NL-123-AB")
    await forward(db, site, named, visit=boat)
    await signed_in(client, db, "analyst", site)
    url = f"/admin/sites/{site.slug}/flags?status=all&subject="

    assert len(flag_links((await client.get(url + "zeemeeuw")).text)) == 1
    # The registration was not shared: searching for it must not reveal the flag.
    assert flag_links((await client.get(url + "NL-123")).text) == []
    # Nor do the payload's member names match.
    assert flag_links((await client.get(url + "vessel_name")).text) == []


async def test_the_queue_reads_its_subjects_in_a_fixed_number_of_queries(db: Database):
    site = await new_site(db)
    harbour_master = staff("harbour_master", site)
    for _n in range(3):
        await make_flag(db, site)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        few = await flag_queue.list_flags(db, harbour_master, site.id, FlagQuery(), now=NOW)
        queries_for_few = len(statements)
        for _n in range(27):
            await make_flag(db, site)
        statements.clear()
        many = await flag_queue.list_flags(db, harbour_master, site.id, FlagQuery(), now=NOW)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)

    assert (len(few.rows), len(many.rows)) == (3, 30)
    assert all(row.subject.name == "Zeemeeuw" for row in many.rows)
    assert len(statements) == queries_for_few


# --- dismissing several at once --------------------------------------------------------------


async def test_several_flags_are_dismissed_with_one_reason_each_audited(
    client: Client, db: Database
):
    site = await new_site(db)
    chosen = [await make_flag(db, site) for _n in range(3)]
    kept = await make_flag(db, site)
    csrf = await signed_in(client, db, "security", site)

    answer = await client.post(
        f"/admin/sites/{site.slug}/flags/dismiss",
        data={"_csrf_token": csrf, "flag": [str(i) for i in chosen], "reason": "Vaste ligplaats"},
        follow_redirects=False,
    )

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/sites/{site.slug}/flags?dismissed=3"
    for flag_id in chosen:
        flag = await load(db, flag_id)
        assert (flag.status, flag.review_reason) == ("dismissed", "Vaste ligplaats")
    assert (await load(db, kept)).status == "open"
    events = await reviews(db, chosen)
    assert sorted(e.object_id for e in events if e.object_id) == sorted(chosen)
    for audited in events:
        details = json.loads(audited.details)
        assert details["action"] == "dismiss"
        assert details["to"] == "dismissed"
        assert "Vaste ligplaats" not in audited.details  # the reason is in the detail record
        assert (await event_details(db, audited))["reason"] == "Vaste ligplaats"
    page = await client.get(answer.headers["location"])
    assert "3 flags dismissed." in page.text
    assert flag_links(page.text) == [kept]


async def test_a_bulk_dismissal_touches_only_the_sites_own_flags(client: Client, db: Database):
    mine, theirs = await new_site(db), await new_site(db)
    own = await make_flag(db, mine)
    foreign = await make_flag(db, theirs)
    csrf = await signed_in(client, db, "harbour_master", mine)

    answer = await client.post(
        f"/admin/sites/{mine.slug}/flags/dismiss",
        data={"_csrf_token": csrf, "flag": [str(own), str(foreign)], "reason": "bekend"},
        follow_redirects=False,
    )
    elsewhere = await client.post(
        f"/admin/sites/{theirs.slug}/flags/dismiss",
        data={"_csrf_token": csrf, "flag": [str(foreign)], "reason": "bekend"},
        follow_redirects=False,
    )

    assert answer.headers["location"].endswith("dismissed=1")
    assert (await load(db, own)).status == "dismissed"
    assert (await load(db, foreign)).status == "open"
    assert elsewhere.status_code == 404
    assert await reviews(db, [foreign]) == []


async def test_a_bulk_dismissal_without_a_reason_or_a_choice_says_so_next_to_the_form(
    client: Client, db: Database
):
    site = await new_site(db)
    flag = await make_flag(db, site)
    csrf = await signed_in(client, db, "harbour_master", site)
    url = f"/admin/sites/{site.slug}/flags/dismiss"

    no_reason = await client.post(url, data={"_csrf_token": csrf, "flag": str(flag)})
    no_choice = await client.post(url, data={"_csrf_token": csrf, "reason": "klopt"})

    assert no_reason.status_code == 422
    assert "Please say why this flag can be dismissed." in no_reason.text
    assert f'id="pick-{flag}" checked' in no_reason.text  # the choice is kept
    assert no_choice.status_code == 422
    assert "Please choose the flags to dismiss." in no_choice.text
    assert ">klopt</textarea>" in no_choice.text
    assert (await load(db, flag)).status == "open"


async def test_a_bulk_dismissal_without_the_csrf_token_is_refused(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site)
    await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/sites/{site.slug}/flags/dismiss",
        data={"flag": str(flag), "reason": "klopt"},
        follow_redirects=False,
    )

    assert answer.status_code == 403
    assert (await load(db, flag)).status == "open"


async def test_an_auditor_may_not_dismiss_flags(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site)
    csrf = await signed_in(client, db, "auditor", site)

    answer = await client.post(
        f"/admin/sites/{site.slug}/flags/dismiss",
        data={"_csrf_token": csrf, "flag": str(flag), "reason": "klopt"},
        follow_redirects=False,
    )

    assert answer.status_code == 403
    assert (await load(db, flag)).status == "open"


async def test_the_analyst_cannot_dismiss_a_sites_own_flags_in_bulk(db: Database):
    site = await new_site(db)
    hidden = await make_flag(db, site)  # open, never forwarded: not the analyst's to see

    done = await flag_queue.dismiss_many(
        db, staff("analyst", site), site.id, [hidden], "weg", now=NOW
    )

    assert done.flag_ids == []
    async with db.read() as session:
        assert (await session.get(Flag, hidden)).status == "open"  # type: ignore[union-attr]
