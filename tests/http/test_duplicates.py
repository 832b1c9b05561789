"""One subject, present once per site, through HTTP: a kiosk check-in of a boat already
present is kept and marked, the walk-in and the API ask first, Tonight, the police print and
the tourist tax count the subject once, and staff merge the two visits or keep both."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import secrets
from datetime import timedelta
from zoneinfo import ZoneInfo

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import AuditEvent, PossibleDuplicate, Visit, VisitMerge, VisitNote
from nightreg.security import new_reference
from nightreg.services import checkin, sites, visits
from nightreg.services.writer import VisitWriter
from nightreg.validation import validate_checkin
from tests.factories import (
    SUMMER_EVENING,
    PointRef,
    event_details,
    make_point,
    make_staff,
    new_token,
)
from tests.pages import bearer, open_form, sign_in, yacht

Client = AsyncTestClient[Litestar]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


# --- helpers ---------------------------------------------------------------------------------


async def check_in(client: Client, point: PointRef, **changes: str) -> str:
    """A visitor's check-in on a phone of their own (no cookies); the private link."""
    client.cookies.clear()
    form = {**await open_form(client, point), **yacht(**changes)}
    answer = await client.post(point.url, data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"]).split("?")[0]


async def visits_of(db: Database, point: PointRef) -> list[Visit]:
    info = await sites.point_by_token(db, point.token)
    assert info is not None
    async with db.read() as session:
        return list(
            await session.scalars(
                select(Visit).where(Visit.site_id == info.site_id).order_by(Visit.id)
            )
        )


async def marks(db: Database) -> dict[int, int]:
    async with db.read() as session:
        rows = await session.execute(
            select(PossibleDuplicate.visit_id, PossibleDuplicate.duplicate_of_id)
        )
        return dict(rows.all())


async def staff_in(client: Client, db: Database, point: PointRef, role: str = "harbour_master"):
    client.cookies.clear()
    account = await make_staff(db, role, [point.site_slug])
    return await sign_in(client, account.email, account.password)


async def a_boat_twice(client: Client, db: Database, point: PointRef) -> tuple[Visit, Visit]:
    """Jan checks in his boat; later Piet, on another phone, checks the same boat in again."""
    await check_in(client, point, berth="A12", expected_departure_at="2026-07-16T11:00")
    await check_in(
        client, point, guest_name="Piet Smit", residence="Enkhuizen", persons="3",
        arrived_at="2026-07-14T20:55", expected_departure_at="2026-07-17T11:00",
    )  # fmt: skip
    first, second = await visits_of(db, point)
    return first, second


async def events_of(db: Database, action: str) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


# --- the kiosk -------------------------------------------------------------------------------


async def test_a_second_check_in_of_a_boat_present_is_kept_marked_and_answered_neutrally(
    client: Client, db: Database, marina: PointRef
):
    await check_in(client, marina, berth="A12", phone="+31 6 12345678")
    [first] = await visits_of(db, marina)

    link = await check_in(client, marina, guest_name="Piet Smit", residence="Enkhuizen")

    first_, second = await visits_of(db, marina)
    assert first_.id == first.id
    assert second.guest_name == "Piet Smit"  # nothing the visitor sent is lost
    assert await marks(db) == {second.id: first.id}
    page = await client.get(link + "?new=1")
    assert page.status_code == 200
    assert second.reference in page.text
    # Nothing of the other visit, and no hint that there is one.
    for other in ("Jan de Vries", "Hoorn", "A12", "12345678", first.reference):
        assert other not in page.text
    assert "duplicate" not in page.text.lower()


async def test_the_same_boat_by_its_mmsi_alone_is_marked_too(
    client: Client, db: Database, marina: PointRef
):
    await check_in(client, marina, mmsi="244123456")
    await check_in(client, marina, registration="", mmsi="244123456", guest_name="Piet Smit")

    first, second = await visits_of(db, marina)
    assert second.subject_key == "mmsi:244123456"
    assert await marks(db) == {second.id: first.id}


async def test_another_boat_a_departed_or_imported_visit_and_another_site_make_no_duplicate(
    client: Client, db: Database, marina: PointRef
):
    other = await make_point(db, "marina")
    await check_in(client, other)  # present, at another site
    info = await sites.point_by_token(db, marina.token)
    assert info is not None
    # Last season's boat, imported with its departure: historic, not present.
    earlier = SUMMER_EVENING - timedelta(days=300)
    data, errors = validate_checkin(
        {**yacht(arrived_at="", expected_departure_at="2025-09-20T11:00"), "persons": "2"},
        kind="vessel", allowed_kinds=("vessel",), now=earlier, tz=AMSTERDAM,
    )  # fmt: skip
    assert data is not None, errors
    row = visits.visit_row(
        data, site_id=info.site_id, source="staff", now=earlier,
        departed_at=earlier + timedelta(days=2),
    )  # fmt: skip
    async with db.write() as session:
        await visits.insert_batch(session, [{**row, "reference": new_reference()}])

    await check_in(client, marina)
    await check_in(client, marina, registration="DE-99", vessel_name="Stormvogel")

    assert await marks(db) == {}


async def test_two_check_ins_of_one_boat_in_one_group_commit_mark_only_the_later(
    db: Database, marina: PointRef
):
    info = await sites.point_by_token(db, marina.token)
    assert info is not None
    data, errors = validate_checkin(
        yacht(), kind="vessel", allowed_kinds=("vessel",), now=SUMMER_EVENING, tz=AMSTERDAM
    )
    assert data is not None, errors
    writer = VisitWriter(db)
    try:
        written = await asyncio.gather(
            *(
                checkin.check_in(
                    db,
                    writer=writer,
                    site_id=info.site_id,
                    point_id=None,
                    data=data,
                    now=SUMMER_EVENING,
                    secret_key="test",
                    idempotency_key=secrets.token_hex(8),
                )
                for _ in range(2)
            )
        )
    finally:
        await writer.close()

    first, second = sorted(w.visit.id for w in written)
    assert await marks(db) == {second: first}


# --- counting once ---------------------------------------------------------------------------


async def test_tonight_counts_a_boat_present_twice_once_and_shows_the_marker(
    client: Client, db: Database, marina: PointRef
):
    _first, second = await a_boat_twice(client, db, marina)
    await staff_in(client, db, marina)

    page = await client.get(f"/admin/sites/{marina.site_slug}/tonight")

    assert page.status_code == 200
    assert re.search(r'id="count-present">1<', page.text)
    assert re.search(r'id="count-vessel">1<', page.text)
    assert re.search(r'id="count-arrived">1<', page.text)
    assert 'id="duplicates"' in page.text
    assert f'href="/admin/visits/{second.id}#duplicate"' in page.text
    assert page.text.count("possible duplicate</span>") >= 1
    # Both visits stay on the board: nothing is hidden from the harbour master.
    assert "Piet Smit" in page.text
    assert "Jan de Vries" in page.text


async def test_the_police_print_counts_the_subject_once_and_marks_the_duplicate(
    client: Client, db: Database, marina: PointRef
):
    first, _second = await a_boat_twice(client, db, marina)
    await staff_in(client, db, marina)

    now = await client.get(f"/admin/sites/{marina.site_slug}/print")
    period = await client.get(f"/admin/sites/{marina.site_slug}/print?from=2026-07-14")

    for page in (now, period):
        assert page.status_code == 200
        entries = re.search(r"<dt>Entries</dt><dd>(\d+)", page.text)
        assert entries
        assert entries.group(1) == "1"
        assert f"possible duplicate of {first.reference}" in page.text
        assert "Piet Smit" in page.text  # listed, marked, not counted again


async def test_the_tourist_tax_counts_the_subject_once_a_night(
    client: Client, db: Database, marina: PointRef
):
    # Jan: 2 persons, the nights of 14 and 15 July; Piet's second check-in of the same boat:
    # 3 persons to 17 July. Once a night: Jan's 2 on 14 and 15, Piet's 3 on 16 only.
    await a_boat_twice(client, db, marina)
    await staff_in(client, db, marina)

    answer = await client.get(f"/admin/sites/{marina.site_slug}/tourist-tax.csv?month=2026-07")

    assert answer.status_code == 200
    rows = {r[0]: r[1:4] for r in csv.reader(io.StringIO(answer.text.lstrip("\ufeff")))}
    assert rows["total"] == ["1", "2", "7"]
    assert rows["2026-07-14"] == ["1", "2", "2"]
    assert rows["2026-07-16"] == ["0", "0", "3"]


# --- the walk-in -----------------------------------------------------------------------------


async def test_a_walk_in_of_a_boat_present_shows_the_open_visit_and_asks_to_add_anyway(
    client: Client, db: Database, marina: PointRef
):
    await check_in(client, marina, berth="A12")
    [present] = await visits_of(db, marina)
    csrf = await staff_in(client, db, marina)
    form = await client.get(f"/admin/sites/{marina.site_slug}/walk-in?kind=vessel")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.text)
    assert key
    data = {
        "_csrf_token": csrf, "idempotency_key": key.group(1), "kind": "vessel",
        "vessel_name": "Zeemeeuw", "registration": "nl 123 ab", "guest_name": "Kees Bakker",
        "residence": "Urk", "persons": "1", "arrived_at": "2026-07-14T20:50",
        "expected_departure_at": "2026-07-15T10:00",
    }  # fmt: skip
    url = f"/admin/sites/{marina.site_slug}/walk-in"

    asked = await client.post(url, data=data, follow_redirects=False)

    assert asked.status_code == 409
    assert 'id="already-present"' in asked.text
    assert f'href="/admin/visits/{present.id}"' in asked.text
    assert present.reference in asked.text
    assert 'name="add_anyway"' in asked.text
    assert 'name="guest_name" value="Kees Bakker"' in asked.text  # the typing is kept
    assert len(await visits_of(db, marina)) == 1

    added = await client.post(url, data={**data, "add_anyway": "1"}, follow_redirects=False)

    assert added.status_code == 303
    new_id = int(re.findall(r"/admin/visits/(\d+)", added.headers["location"])[0])
    assert [v.id for v in await visits_of(db, marina)] == [present.id, new_id]
    assert await marks(db) == {}  # added on purpose: not a possible duplicate
    [created] = [e for e in await events_of(db, "visit_created") if e.object_id == new_id]
    assert json.loads(created.details)["added_beside"] == present.id


# --- the API ---------------------------------------------------------------------------------

BOAT = {
    "kind": "vessel",
    "guest_name": "Kees Bakker",
    "residence": "Urk",
    "persons": 1,
    "expected_departure_at": "2026-07-16T11:00:00+02:00",
    "vessel_name": "Zeemeeuw",
    "registration": "NL-123-AB",
}


async def test_the_api_answers_409_already_present_with_the_open_visit_unless_allowed(
    client: Client, db: Database, marina: PointRef
):
    await check_in(client, marina)
    [present] = await visits_of(db, marina)
    plain = await new_token(db, "harbour_master", marina.site_slug)
    url = f"/api/v1/sites/{marina.site_slug}/visits"

    refused = await client.post(url, json=BOAT, headers=bearer(plain))

    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "already_present"
    assert body["visit_id"] == present.id
    assert len(await visits_of(db, marina)) == 1

    allowed = await client.post(url, json={**BOAT, "allow_duplicate": True}, headers=bearer(plain))

    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["guest_name"] == "Kees Bakker"
    assert len(await visits_of(db, marina)) == 2
    other_boat = await client.post(
        url, json={**BOAT, "registration": "DE-99"}, headers=bearer(plain)
    )
    assert other_boat.status_code == 201


async def test_the_schema_documents_allow_duplicate_and_the_409(client: Client):
    schema = (await client.get("/schema/openapi.json")).json()

    post = schema["paths"]["/api/v1/sites/{slug}/visits"]["post"]
    assert "409" in post["responses"]
    assert "already_present" in json.dumps(post)
    visit_in = schema["components"]["schemas"]["VisitIn"]
    assert visit_in["properties"]["allow_duplicate"]["type"] == "boolean"
    assert "409" in visit_in["properties"]["allow_duplicate"]["description"]


# --- merge and keep both ---------------------------------------------------------------------


async def test_staff_merge_a_possible_duplicate_into_the_visit_it_doubles(
    client: Client, db: Database, marina: PointRef
):
    first_link = await check_in(
        client, marina, berth="A12", expected_departure_at="2026-07-16T11:00"
    )
    second_link = await check_in(
        client, marina, guest_name="Piet Smit", residence="Enkhuizen", persons="3",
        arrived_at="2026-07-14T20:40", expected_departure_at="2026-07-17T11:00",
    )  # fmt: skip
    first, second = await visits_of(db, marina)
    csrf = await staff_in(client, db, marina)
    await client.post(
        f"/admin/visits/{second.id}/notes", data={"_csrf_token": csrf, "text": "paid 3 nights"}
    )
    page = await client.get(f"/admin/visits/{second.id}")
    assert 'id="duplicate"' in page.text
    assert f'action="/admin/visits/{second.id}/merge"' in page.text
    assert f'action="/admin/visits/{second.id}/keep-both"' in page.text

    merged = await client.post(
        f"/admin/visits/{second.id}/merge", data={"_csrf_token": csrf}, follow_redirects=False
    )

    assert merged.status_code == 303
    assert merged.headers["location"] == f"/admin/visits/{first.id}?merged=1"
    [survivor] = await visits_of(db, marina)
    assert survivor.id == first.id
    assert survivor.reference == first.reference
    assert survivor.arrived_at == second.arrived_at  # the earliest arrival (20:40)
    assert survivor.guest_name == "Piet Smit"  # the newest details ...
    assert survivor.persons == 3
    assert survivor.expected_departure_at == second.expected_departure_at
    assert survivor.berth == "A12"  # ... where the newer visit had them
    assert await marks(db) == {}
    async with db.read() as session:
        notes = list(await session.scalars(select(VisitNote.visit_id)))
        [kept] = list(await session.scalars(select(VisitMerge)))
    assert notes == [first.id]
    assert (kept.visit_id, kept.merged_visit_id, kept.merged_reference) == (
        first.id,
        second.id,
        second.reference,
    )
    [event] = await events_of(db, "visit_merged")
    assert (event.object_id, json.loads(event.object_ids)) == (first.id, [first.id, second.id])
    details = await event_details(db, event)
    assert details["merged_reference"] == second.reference
    assert details["after"]["guest_name"] == "Piet Smit"
    assert details["before"]["guest_name"] == "Jan de Vries"
    assert "Piet Smit" not in event.details  # personal values stay in the detail record

    # Both private links still work and show the one visit left.
    client.cookies.clear()
    for link in (first_link, second_link):
        shown = await client.get(link)
        assert shown.status_code == 200
        assert first.reference in shown.text
        assert "Piet Smit" in shown.text
    # The merged visit's page leads to the survivor, whose history holds both.
    await staff_in(client, db, marina)
    old = await client.get(f"/admin/visits/{second.id}", follow_redirects=False)
    assert old.status_code == 303
    assert old.headers["location"] == f"/admin/visits/{first.id}"
    page = await client.get(f"/admin/visits/{first.id}?merged=1")
    assert "The two visits are now one." in page.text
    assert f"Merged with visit {second.reference}" in page.text
    assert "Note added" in page.text  # the merged visit's history
    assert "paid 3 nights" in page.text


async def test_a_check_out_through_the_merged_visits_link_checks_the_survivor_out(
    client: Client, db: Database, marina: PointRef
):
    await check_in(client, marina)
    second_link = await check_in(client, marina, guest_name="Piet Smit")
    first, second = await visits_of(db, marina)
    csrf = await staff_in(client, db, marina)
    await client.post(f"/admin/visits/{second.id}/merge", data={"_csrf_token": csrf})

    client.cookies.clear()
    csrf = (await open_form(client, marina))["_csrf_token"]
    out = await client.post(f"{second_link}/checkout", data={"_csrf_token": csrf})

    assert out.status_code < 400
    [survivor] = await visits_of(db, marina)
    assert survivor.id == first.id
    assert survivor.departed_at is not None


async def test_staff_keep_both_with_a_reason_and_then_both_count(
    client: Client, db: Database, marina: PointRef
):
    first, second = await a_boat_twice(client, db, marina)
    csrf = await staff_in(client, db, marina)
    url = f"/admin/visits/{second.id}/keep-both"

    without = await client.post(url, data={"_csrf_token": csrf, "reason": "  "})

    assert without.status_code == 422
    assert re.search(r'id="err-reason">[^<]+<', without.text)
    assert await marks(db) == {second.id: first.id}

    kept = await client.post(
        url, data={"_csrf_token": csrf, "reason": "two boats, one registration typo"},
        follow_redirects=False,
    )  # fmt: skip

    assert kept.status_code == 303
    assert await marks(db) == {}
    [event] = await events_of(db, "duplicate_kept")
    assert (event.object_id, json.loads(event.object_ids)) == (second.id, [first.id, second.id])
    assert (await event_details(db, event))["reason"] == "two boats, one registration typo"
    assert "typo" not in event.details
    page = await client.get(f"/admin/visits/{second.id}")
    assert "Kept as a visit of its own" in page.text
    assert "two boats, one registration typo" in page.text
    tonight = await client.get(f"/admin/sites/{marina.site_slug}/tonight")
    assert re.search(r'id="count-present">2<', tonight.text)
    assert 'id="duplicates"' not in tonight.text
    again = await client.post(f"/admin/visits/{second.id}/merge", data={"_csrf_token": csrf})
    assert again.status_code == 409  # no longer a possible duplicate: nothing to merge


async def test_security_sees_the_marker_but_may_not_resolve_it(
    client: Client, db: Database, marina: PointRef
):
    _first, second = await a_boat_twice(client, db, marina)
    csrf = await staff_in(client, db, marina, role="security")

    page = await client.get(f"/admin/visits/{second.id}")
    merge = await client.post(f"/admin/visits/{second.id}/merge", data={"_csrf_token": csrf})

    assert 'id="duplicate"' in page.text
    assert "/merge" not in page.text
    assert merge.status_code == 403
    assert len(await marks(db)) == 1


async def test_the_register_filters_the_possible_duplicates_both_sides(
    client: Client, db: Database, marina: PointRef
):
    first, second = await a_boat_twice(client, db, marina)
    await check_in(client, marina, registration="DE-99", guest_name="Anna Weber")
    await staff_in(client, db, marina)

    page = await client.get(f"/admin/sites/{marina.site_slug}/register?duplicates=1")

    assert page.status_code == 200
    shown = {int(n) for n in re.findall(r'href="/admin/visits/(\d+)"', page.text)}
    assert shown == {first.id, second.id}
    assert "Anna Weber" not in page.text
    assert 'name="duplicates" type="checkbox" value="1" checked' in page.text
    assert "possible duplicate</span>" in page.text
