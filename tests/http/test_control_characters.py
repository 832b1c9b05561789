"""A NUL byte or another control character is refused with a 400 and a message wherever input
arrives (forms, queries, JSON): before, on PostgreSQL, the sign-in e-mail, a point's name, a new
user's e-mail and the audit's actor filter answered 500 (issue 17, finding 10)."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from nightreg.db import Database
from nightreg.models import CheckinPoint, User, Visit
from nightreg.web.control_characters import has_control_character
from tests.factories import PointRef, make_staff, new_token
from tests.pages import bearer, csrf_from, open_form, sign_in, yacht

Client = AsyncTestClient[Litestar]
MESSAGE = "control character"
HOSTILE = ["a\x00b", "\x1b[31mred", "back\x08space", "del\x7f", "c1\x85"]


async def rows(db: Database, model: type) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def assert_refused(answer: object) -> None:
    assert answer.status_code == 400, answer.text  # type: ignore[attr-defined]
    assert MESSAGE in answer.text  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", HOSTILE)
async def test_the_sign_in_email_with_a_control_character_is_refused(
    client: Client, db: Database, value: str
):
    csrf = csrf_from((await client.get("/admin/sign-in")).text)
    answer = await client.post(
        "/admin/sign-in",
        data={"_csrf_token": csrf, "email": f"x{value}@test.example", "password": "whatever"},
    )
    assert_refused(answer)


async def test_a_point_name_a_new_user_and_the_audit_filter_with_nul_are_refused(
    client: Client, db: Database, marina: PointRef
):
    admin = await make_staff(db, "admin", [marina.site_slug])
    csrf = await sign_in(client, admin.email, admin.password)
    points, users = await rows(db, CheckinPoint), await rows(db, User)

    answer = await client.post(
        f"/admin/sites/{marina.site_slug}/points",
        data={"_csrf_token": csrf, "name": "Steiger\x00B"},
    )
    assert_refused(answer)
    answer = await client.post(
        "/admin/users/new",
        data={"_csrf_token": csrf, "email": "new\x00@test.example", "role": "harbour_master"},
    )
    assert_refused(answer)
    assert_refused(await client.get("/admin/audit/", params={"actor": "adm\x00in"}))
    assert_refused(await client.get("/admin/audit/export.csv", params={"actor": "\x00"}))
    assert (await rows(db, CheckinPoint), await rows(db, User)) == (points, users)

    # Tabs and line breaks are text, and the same forms without the NUL still work.
    assert (await client.get("/admin/audit/", params={"actor": "admin\t"})).status_code == 200


async def test_the_api_refuses_a_nul_in_any_json_string_in_its_error_shape(
    client: Client, db: Database, marina: PointRef
):
    plain = await new_token(db, "harbour_master", marina.site_slug)
    answer = await client.post(
        f"/api/v1/sites/{marina.site_slug}/visits",
        json={"kind": "vessel", "guest_name": "Jan\u0000", "persons": 1},
        headers=bearer(plain),
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "bad_request"
    assert body["field"] == "guest_name"
    assert MESSAGE in body["message"]
    answer = await client.get(
        f"/api/v1/sites/{marina.site_slug}/visits", params={"q": "\x00"}, headers=bearer(plain)
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "bad_request"
    assert await rows(db, Visit) == 0


async def test_a_visitors_check_in_loses_nothing_to_a_control_character(
    client: Client, db: Database, marina: PointRef
):
    """The kiosk form is the one exception to the app-wide refusal: its validation removes
    control characters from what it keeps, so a visitor who pasted one keeps their entry."""
    form = await open_form(client, marina)
    answer = await client.post(
        marina.url, data={**form, **yacht(guest_name="Jan\x00 de\x1b Vries")},
        follow_redirects=False,
    )  # fmt: skip

    assert answer.status_code == 303, answer.text
    async with db.read() as session:
        names = (await session.scalars(select(Visit.guest_name))).all()
    assert names == ["Jan de Vries"]


def test_what_counts_as_a_control_character():
    assert not has_control_character("Zoë Ångström 李小龙 🚤\t\r\n")
    assert all(has_control_character(v) for v in HOSTILE)
