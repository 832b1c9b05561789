"""The JSON API v1 over HTTP: tokens and roles, site scope, the register, a visit, the export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from admin.api.v1 import VisitOut
from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import AuditEvent, Site, Visit
from nightreg.services import corrections, tokens, walk_ins
from nightreg.services.access import CLI
from nightreg.services.transfer import EXPORT_COLUMNS
from tests.factories import SUMMER_EVENING, PointRef, event_details, make_point, new_token
from tests.pages import bearer

Client = AsyncTestClient[Litestar]

BOAT = {
    "kind": "vessel",
    "guest_name": "Jan de Vries",
    "residence": "Den Helder",
    "persons": 2,
    "expected_departure_at": "2026-07-16T11:00:00+02:00",
    "vessel_name": "Zeemeeuw",
    "registration": "NL-123-AB",
    "length_m": 9.5,
}


async def site_id(db: Database, slug: str) -> int:
    async with db.read() as session:
        found = await session.scalar(select(Site.id).where(Site.slug == slug))
    assert found is not None
    return found


async def add_visit(db: Database, slug: str, **changes: str) -> Visit:
    """A walk-in entered by the operator (the CLI actor may do anything)."""
    form = {
        "kind": "vessel",
        "guest_name": "Jan de Vries",
        "residence": "Den Helder",
        "persons": "2",
        "arrived_at": "2026-07-14T18:00",
        "expected_departure_at": "2026-07-16T11:00",
        "vessel_name": "Zeemeeuw",
        "registration": "NL-123-AB",
        **changes,
    }
    return await walk_ins.create_visit(
        db, CLI, await site_id(db, slug), form, now=SUMMER_EVENING, source="staff",
        allow_duplicate=True,  # the tests' register holds the same boat many times
    )  # fmt: skip


async def events(db: Database, action: str, *, site: int | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    if site is not None:
        stmt = stmt.where(AuditEvent.site_id == site)
    async with db.read() as session:
        return list(await session.scalars(stmt.order_by(AuditEvent.id)))


@pytest.fixture
async def harbour(db: Database) -> PointRef:
    return await make_point(db, "marina")


@pytest.fixture
async def other_harbour(db: Database) -> PointRef:
    return await make_point(db, "marina")


def routes(slug: str, visit_id: int) -> list[tuple[str, str, dict]]:
    return [
        ("GET", f"/api/v1/sites/{slug}/visits", {}),
        ("POST", f"/api/v1/sites/{slug}/visits", {"json": BOAT}),
        ("GET", f"/api/v1/sites/{slug}/register.csv", {}),
        ("GET", f"/api/v1/visits/{visit_id}", {}),
        ("PATCH", f"/api/v1/visits/{visit_id}", {"json": {"changes": {}, "reason": "x"}}),
        ("POST", f"/api/v1/visits/{visit_id}/checkout", {}),
    ]


def every_route(slug: str, visit_id: int) -> list[tuple[str, str, dict]]:
    return [("GET", "/api/v1/sites", {}), *routes(slug, visit_id)]


# --- who may call ----------------------------------------------------------------------------


async def test_without_a_token_every_route_answers_401_in_json(
    client: Client, db: Database, harbour: PointRef
):
    visit = await add_visit(db, harbour.site_slug)
    for method, path, kwargs in [
        ("GET", "/api/v1/sites", {}),
        *routes(harbour.site_slug, visit.id),
    ]:
        answer = await client.request(method, path, **kwargs)
        assert answer.status_code == 401, (method, path)
        body = answer.json()
        assert body["code"] == "unauthorized"
        assert set(body) == {"code", "message", "field"}


@pytest.mark.parametrize(
    "authorization",
    ["Bearer nrt_made-up-token", "Bearer ", "Basic dXNlcjpwYXNz", "nrt_without-a-scheme"],
)
async def test_a_made_up_or_malformed_token_answers_401(
    client: Client, harbour: PointRef, authorization: str
):
    answer = await client.get("/api/v1/sites", headers={"Authorization": authorization})
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"


async def test_an_expired_token_answers_401(client: Client, db: Database, harbour: PointRef):
    plain = await new_token(
        db, "harbour_master", harbour.site_slug,
        expires_at=SUMMER_EVENING - timedelta(minutes=1), now=SUMMER_EVENING - timedelta(days=1),
    )  # fmt: skip
    answer = await client.get(f"/api/v1/sites/{harbour.site_slug}/visits", headers=bearer(plain))
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"


async def test_a_revoked_token_stops_working_at_once(
    client: Client, db: Database, harbour: PointRef
):
    token, plain = await tokens.create_token(
        db, CLI, name="leaked", role="harbour_master", site_slugs=[harbour.site_slug],
        expires_at=None, now=SUMMER_EVENING,
    )  # fmt: skip
    assert (await client.get("/api/v1/sites", headers=bearer(plain))).status_code == 200
    await tokens.revoke_token(db, CLI, token.id, now=SUMMER_EVENING)
    answer = await client.get("/api/v1/sites", headers=bearer(plain))
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"


@pytest.mark.parametrize("role", ["analyst", "auditor"])
async def test_a_token_without_register_rights_is_forbidden_everywhere(
    client: Client, db: Database, harbour: PointRef, role: str
):
    visit = await add_visit(db, harbour.site_slug)
    plain = await new_token(db, role, harbour.site_slug)
    for method, path, kwargs in [
        ("GET", "/api/v1/sites", {}),
        *routes(harbour.site_slug, visit.id),
    ]:
        answer = await client.request(method, path, headers=bearer(plain), **kwargs)
        assert answer.status_code == 403, (method, path)
        assert answer.json()["code"] == "forbidden"


async def test_a_security_token_reads_the_register_but_changes_and_exports_nothing(
    client: Client, db: Database, harbour: PointRef
):
    visit = await add_visit(db, harbour.site_slug)
    plain = await new_token(db, "security", harbour.site_slug)
    for method, path, kwargs in routes(harbour.site_slug, visit.id):
        answer = await client.request(method, path, headers=bearer(plain), **kwargs)
        reads = method == "GET" and not path.endswith(".csv")
        assert answer.status_code == (200 if reads else 403), (method, path)


@pytest.mark.parametrize("role", ["harbour_master", "security", "admin"])
async def test_a_token_of_another_site_finds_nothing_here(
    client: Client, db: Database, harbour: PointRef, other_harbour: PointRef, role: str
):
    visit = await add_visit(db, harbour.site_slug)
    plain = await new_token(db, role, other_harbour.site_slug)
    for method, path, kwargs in routes(harbour.site_slug, visit.id):
        answer = await client.request(method, path, headers=bearer(plain), **kwargs)
        expected = 403 if role == "security" and (method != "GET" or path.endswith(".csv")) else 404
        assert answer.status_code == expected, (method, path)
        assert answer.json()["code"] == {403: "forbidden", 404: "not_found"}[expected]
    async with db.read() as session:
        unchanged = await session.get(Visit, visit.id)
    assert unchanged is not None
    assert unchanged.departed_at is None


async def test_an_unknown_site_or_visit_is_404(client: Client, db: Database, harbour: PointRef):
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    for path in ("/api/v1/sites/no-such-site/visits", "/api/v1/visits/987654321"):
        answer = await client.get(path, headers=bearer(plain))
        assert answer.status_code == 404
        assert answer.json() == {"code": "not_found", "message": "Not Found", "field": None}


# --- sites -----------------------------------------------------------------------------------


async def test_a_token_lists_its_own_sites_only(
    client: Client, db: Database, harbour: PointRef, other_harbour: PointRef
):
    plain = await new_token(db, "security", harbour.site_slug)
    answer = await client.get("/api/v1/sites", headers=bearer(plain))
    assert answer.status_code == 200
    assert answer.json() == [
        {
            "slug": harbour.site_slug,
            "name": harbour.site_name,
            "kind": "marina",
            "municipality": "",
            "timezone": "Europe/Amsterdam",
        }
    ]


# --- the register ----------------------------------------------------------------------------


async def test_the_register_pages_with_a_cursor_and_the_views_are_audited(
    client: Client, db: Database, harbour: PointRef
):
    made = [
        await add_visit(db, harbour.site_slug, arrived_at=f"2026-07-14T1{hour}:00")
        for hour in range(5)
    ]
    plain = await new_token(db, "security", harbour.site_slug)
    path = f"/api/v1/sites/{harbour.site_slug}/visits"
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        answer = await client.get(path, params=params, headers=bearer(plain))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [visit["id"] for visit in body["visits"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [visit.id for visit in reversed(made)]  # newest arrival first
    views = await events(db, "register_viewed", site=await site_id(db, harbour.site_slug))
    assert len(views) == 3
    assert all(view.actor.startswith("token:") for view in views)
    assert sorted(id_ for view in views for id_ in json.loads(view.object_ids)) == sorted(seen)


async def test_the_register_filters_by_search_text_kind_status_and_dates(
    client: Client, db: Database, harbour: PointRef
):
    boat = await add_visit(db, harbour.site_slug, vessel_name="Zwaluw", registration="NL-99-ZZ")
    other = await add_visit(db, harbour.site_slug, arrived_at="2026-07-12T10:00")
    await corrections.check_out_visit(db, CLI, other.id, now=SUMMER_EVENING)
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    path = f"/api/v1/sites/{harbour.site_slug}/visits"

    async def ids(**params: str) -> list[int]:
        answer = await client.get(path, params=params, headers=bearer(plain))
        assert answer.status_code == 200, answer.text
        return [visit["id"] for visit in answer.json()["visits"]]

    assert await ids(q="nl 99zz") == [boat.id]
    assert await ids(status="departed") == [other.id]
    assert await ids(status="present", kind="vessel") == [boat.id]
    assert await ids(kind="vehicle") == []
    assert await ids(source="api") == []
    both = sorted([other.id, boat.id])
    assert sorted(await ids(**{"from": "2026-07-12", "to": "2026-07-14"})) == both
    assert await ids(**{"from": "2026-07-15"}) == [boat.id]  # still here: stays on
    assert await ids(to="2026-07-13") == [other.id]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"kind": "boat"}, "kind"),
        ({"status": "asleep"}, "status"),
        ({"sort": "random"}, "sort"),
        ({"from": "14-07-2026"}, "from"),
        ({"from": "2026-07-15", "to": "2026-07-14"}, "to"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
async def test_a_bad_register_query_is_422_with_the_parameter_named(
    client: Client, db: Database, harbour: PointRef, params: dict[str, str], field: str
):
    plain = await new_token(db, "security", harbour.site_slug)
    answer = await client.get(
        f"/api/v1/sites/{harbour.site_slug}/visits", params=params, headers=bearer(plain)
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "invalid"
    assert body["field"] == field
    assert field in body["errors"]
    assert body["message"]


# --- creating a visit ------------------------------------------------------------------------


async def test_a_harbour_master_token_registers_a_visit_from_the_api(
    client: Client, db: Database, harbour: PointRef
):
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    answer = await client.post(
        f"/api/v1/sites/{harbour.site_slug}/visits",
        json={**BOAT, "arrived_at": "2026-07-14T17:30:00Z", "country": "NL"},
        headers=bearer(plain),
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["site"] == harbour.site_slug
    assert body["source"] == "api"
    assert body["arrived_at"] == "2026-07-14T19:30:00+02:00"  # UTC in, the site's clock out
    assert body["expected_departure_at"] == "2026-07-16T11:00:00+02:00"
    assert body["length_m"] == "9.5"
    assert body["persons"] == 2
    async with db.read() as session:
        stored = await session.get(Visit, body["id"])
    assert stored is not None
    assert stored.source == "api"
    assert stored.arrived_at == SUMMER_EVENING - timedelta(minutes=90)
    [created] = [e for e in await events(db, "visit_created") if e.object_id == body["id"]]
    assert created.actor.startswith("token:")
    assert created.actor.endswith("test harbour_master")


async def test_a_local_time_is_read_on_the_site_clock(
    client: Client, db: Database, harbour: PointRef
):
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    answer = await client.post(
        f"/api/v1/sites/{harbour.site_slug}/visits",
        json={
            **BOAT,
            "arrived_at": "2026-07-14 20:15",
            "expected_departure_at": "2026-07-15T10:00",
        },
        headers=bearer(plain),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["arrived_at"] == "2026-07-14T20:15:00+02:00"
    assert answer.json()["expected_departure_at"] == "2026-07-15T10:00:00+02:00"


async def test_the_same_idempotency_key_makes_one_visit(
    client: Client, db: Database, harbour: PointRef
):
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    path = f"/api/v1/sites/{harbour.site_slug}/visits"
    body = {**BOAT, "idempotency_key": "hub-retry-0001-" + harbour.site_slug}
    first = await client.post(path, json=body, headers=bearer(plain))
    again = await client.post(path, json=body, headers=bearer(plain))
    assert first.status_code == 201
    assert again.json()["id"] == first.json()["id"]


async def test_a_replayed_idempotency_key_is_audited_as_a_read_of_the_visit(
    client: Client, db: Database, harbour: PointRef
):
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    path = f"/api/v1/sites/{harbour.site_slug}/visits"
    body = {**BOAT, "idempotency_key": "hub-retry-0002-" + harbour.site_slug}
    visit_id = (await client.post(path, json=body, headers=bearer(plain))).json()["id"]
    for _ in range(2):
        assert (await client.post(path, json=body, headers=bearer(plain))).status_code == 201
    async with db.read() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.object_type == "visit", AuditEvent.object_id == visit_id)
                .order_by(AuditEvent.id)
            )
        )
    assert actions == ["visit_created", "visit_viewed", "visit_viewed"]


async def test_a_visit_that_does_not_validate_is_422_with_every_field(
    client: Client, db: Database, harbour: PointRef
):
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    answer = await client.post(
        f"/api/v1/sites/{harbour.site_slug}/visits",
        json={"kind": "vessel", "persons": 0, "email": "not-an-address"},
        headers=bearer(plain),
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "invalid"
    assert body["field"] == "guest_name"
    assert body["message"] == body["errors"]["guest_name"] == "Please enter your name."
    assert {"guest_name", "residence", "expected_departure_at", "persons", "email"} <= set(
        body["errors"]
    )
    assert "vessel_name" in body["errors"]
    assert await events(db, "visit_created", site=await site_id(db, harbour.site_slug)) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BOAT, "kind": "stay"}, "kind"),  # a marina takes boats and cars
        ({**BOAT, "password": "x"}, "password"),  # not a field of a visit
        ({**BOAT, "persons": [2]}, "persons"),  # not a number
        ({**BOAT, "arrived_at": "2026-07-01T10:00:00+02:00"}, "arrived_at"),  # > 7 days back
        ({**BOAT, "arrived_at": "yesterday"}, "arrived_at"),
        ({**BOAT, "length_m": "long"}, "length_m"),
    ],
)
async def test_a_bad_field_is_named_in_the_422(
    client: Client, db: Database, harbour: PointRef, body: dict, field: str
):
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    answer = await client.post(
        f"/api/v1/sites/{harbour.site_slug}/visits", json=body, headers=bearer(plain)
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid"
    assert answer.json()["field"] == field


async def test_a_body_that_is_not_json_is_400(client: Client, db: Database, harbour: PointRef):
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    answer = await client.post(
        f"/api/v1/sites/{harbour.site_slug}/visits",
        content=b"{guest_name: Jan",
        headers={**bearer(plain), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "bad_request"
    assert set(answer.json()) == {"code", "message", "field"}


async def test_a_time_in_the_repeated_autumn_hour_is_refused_rather_than_shifted(
    client: Client, db: Database, harbour: PointRef, clock: FrozenClock
):
    clock.set(datetime(2026, 10, 25, 6, 0, tzinfo=UTC))
    plain = await new_token(db, "harbour_master", harbour.site_slug, now=clock.now())
    answer = await client.post(
        f"/api/v1/sites/{harbour.site_slug}/visits",
        # 02:30 local for the second time (CET, +01:00), after the clocks went back at 03:00.
        json={**BOAT, "arrived_at": "2026-10-25T02:30:00+01:00", "expected_departure_at": ""},
        headers=bearer(plain),
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "arrived_at"


# --- one visit ---------------------------------------------------------------------------------


async def test_a_visit_is_read_in_the_export_vocabulary_and_the_view_is_audited(
    client: Client, db: Database, harbour: PointRef
):
    visit = await add_visit(db, harbour.site_slug)
    plain = await new_token(db, "security", harbour.site_slug)
    answer = await client.get(f"/api/v1/visits/{visit.id}", headers=bearer(plain))
    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == ["id", *EXPORT_COLUMNS]
    assert body["id"] == visit.id
    assert body["reference"] == visit.reference
    assert body["arrived_at"] == "2026-07-14T18:00:00+02:00"
    assert body["departed_at"] is None
    [viewed] = [e for e in await events(db, "visit_viewed") if e.object_id == visit.id]
    assert viewed.actor.startswith("token:")
    assert viewed.object_type == "visit"


def test_the_visit_shape_is_the_export_vocabulary_plus_the_id():
    assert tuple(f.encode_name for f in msgspec.structs.fields(VisitOut)) == (
        "id",
        *EXPORT_COLUMNS,
    )


async def test_a_correction_with_a_reason_is_audited_with_old_and_new_values(
    client: Client, db: Database, harbour: PointRef
):
    visit = await add_visit(db, harbour.site_slug)
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    answer = await client.patch(
        f"/api/v1/visits/{visit.id}",
        json={
            "changes": {
                "guest_name": "Jan de Vries-Bakker",
                "persons": 3,
                "expected_departure_at": "2026-07-17T08:00:00Z",
                "berth": None,
            },
            "reason": "typo at the kiosk",
        },
        headers=bearer(plain),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["guest_name"] == "Jan de Vries-Bakker"
    assert body["persons"] == 3
    assert body["expected_departure_at"] == "2026-07-17T10:00:00+02:00"
    [corrected] = [e for e in await events(db, "visit_corrected") if e.object_id == visit.id]
    details = await event_details(db, corrected)
    assert details["reason"] == "typo at the kiosk"
    assert details["before"] == {
        "guest_name": "Jan de Vries",
        "persons": 2,
        "expected_departure_at": "2026-07-16T09:00:00+00:00",
    }
    assert details["after"]["guest_name"] == "Jan de Vries-Bakker"
    assert details["after"]["persons"] == 3
    assert corrected.actor.startswith("token:")
    async with db.read() as session:
        stored = await session.get(Visit, visit.id)
    assert stored is not None
    assert "JANDEVRIESBAKKER" in stored.search_key


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"changes": {"guest_name": "Jan"}}, "reason"),
        ({"changes": {"guest_name": "Jan"}, "reason": "   "}, "reason"),
        ({"changes": {"source": "kiosk"}, "reason": "why not"}, "source"),
        ({"changes": {"plate": "AB-12-CD"}, "reason": "a boat has no plate"}, "plate"),
        ({"changes": {"persons": 100}, "reason": "a crowd"}, "persons"),
        ({"changes": {}, "reason": "x", "extra": 1}, "extra"),
    ],
)
async def test_a_correction_that_does_not_validate_is_422_and_changes_nothing(
    client: Client, db: Database, harbour: PointRef, body: dict, field: str
):
    visit = await add_visit(db, harbour.site_slug)
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    answer = await client.patch(f"/api/v1/visits/{visit.id}", json=body, headers=bearer(plain))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid"
    assert field in answer.json()["errors"]
    assert [e for e in await events(db, "visit_corrected") if e.object_id == visit.id] == []


async def test_a_check_out_records_the_departure_once(
    client: Client, db: Database, harbour: PointRef, clock: FrozenClock
):
    visit = await add_visit(db, harbour.site_slug)
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    answer = await client.post(f"/api/v1/visits/{visit.id}/checkout", headers=bearer(plain))
    assert answer.status_code == 200, answer.text
    assert answer.json()["departed_at"] == "2026-07-14T21:00:00+02:00"
    clock.advance(timedelta(hours=1))
    again = await client.post(f"/api/v1/visits/{visit.id}/checkout", headers=bearer(plain))
    assert again.status_code == 200
    assert again.json()["departed_at"] == "2026-07-14T21:00:00+02:00"
    checked_out = [e for e in await events(db, "visit_checked_out") if e.object_id == visit.id]
    assert len(checked_out) == 1
    assert checked_out[0].actor.startswith("token:")


async def test_a_check_out_may_name_the_departure(client: Client, db: Database, harbour: PointRef):
    visit = await add_visit(db, harbour.site_slug)
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    path = f"/api/v1/visits/{visit.id}/checkout"
    future = await client.post(
        path, json={"departed_at": "2026-07-15T09:00:00+02:00"}, headers=bearer(plain)
    )
    assert future.status_code == 422
    assert future.json()["field"] == "departed_at"
    garbage = await client.post(path, json={"departed_at": "soon"}, headers=bearer(plain))
    assert garbage.status_code == 422
    assert garbage.json()["field"] == "departed_at"
    local = await client.post(path, json={"departed_at": "2026-07-14 20:30"}, headers=bearer(plain))
    assert local.status_code == 200, local.text
    assert local.json()["departed_at"] == "2026-07-14T20:30:00+02:00"


# --- the export ------------------------------------------------------------------------------


async def test_register_csv_is_utf8_with_a_bom_and_the_export_is_audited(
    client: Client, db: Database, harbour: PointRef
):
    await add_visit(db, harbour.site_slug, guest_name="Zoë =Janssen")
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    answer = await client.get(
        f"/api/v1/sites/{harbour.site_slug}/register.csv",
        params={"from": "2026-07-14", "to": "2026-07-14", "delimiter": ";"},
        headers=bearer(plain),
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in answer.headers["content-disposition"]
    assert answer.content.startswith(b"\xef\xbb\xbf")
    lines = answer.content.decode("utf-8-sig").splitlines()
    assert lines[0].split(";") == list(EXPORT_COLUMNS)
    assert len(lines) == 2
    assert "Zoë =Janssen" in lines[1]
    [exported] = await events(db, "register_exported", site=await site_id(db, harbour.site_slug))
    assert exported.actor.startswith("token:")
    assert json.loads(exported.details)["count"] == 1


async def test_register_csv_with_the_dates_reversed_is_422(
    client: Client, db: Database, harbour: PointRef
):
    plain = await new_token(db, "harbour_master", harbour.site_slug)
    answer = await client.get(
        f"/api/v1/sites/{harbour.site_slug}/register.csv",
        params={"from": "2026-07-15", "to": "2026-07-14"},
        headers=bearer(plain),
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "to"
    assert await events(db, "register_exported", site=await site_id(db, harbour.site_slug)) == []


# --- the schema ------------------------------------------------------------------------------


async def test_the_schema_describes_every_api_route_and_the_bearer_scheme(client: Client):
    answer = await client.get("/schema/openapi.json")
    assert answer.status_code == 200
    schema = answer.json()
    assert {
        "/api/v1/sites",
        "/api/v1/sites/{slug}/visits",
        "/api/v1/sites/{slug}/register.csv",
        "/api/v1/visits/{id}",
        "/api/v1/visits/{id}/checkout",
    } <= set(schema["paths"])
    assert not [path for path in schema["paths"] if path.startswith(("/admin", "/k/"))]
    assert schema["components"]["securitySchemes"]["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "nrt_…",
        "description": "An API token made with `nightreg token add`.",
    }
    visits = schema["paths"]["/api/v1/sites/{slug}/visits"]
    assert visits["get"]["security"] == [{"BearerToken": []}]
    assert visits["get"]["summary"]
    assert {"200", "401", "403", "404", "422"} <= set(visits["get"]["responses"])
    assert set(visits["post"]["responses"]) >= {"201", "422"}
    assert "VisitIn" in json.dumps(visits["post"]["requestBody"])
    root = await client.get("/schema")
    assert root.status_code == 200
    assert root.json()["openapi"].startswith("3.")
