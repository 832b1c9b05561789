"""The admin's pages through HTTP: accounts, sites, check-in points, QR rotation and posters."""

from __future__ import annotations

import json
import re
import secrets

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import AuditEvent, CheckinPoint, Site, User
from tests.factories import STAFF_PASSWORD, make_point, make_staff, unique_slug
from tests.pages import csrf_from, sign_in

Client = AsyncTestClient[Litestar]
NEW_PASSWORD = "tide-tables-and-ropes-17"


COOKIE = "nightreg_session"


# One client plays every browser: a second client would run the app on an event loop of its
# own, and asyncpg connections cannot move between loops. A browser is its session cookie.
def signed_out(client: Client) -> None:
    client.cookies.delete(COOKIE)


async def browser_of(client: Client, email: str, password: str = STAFF_PASSWORD) -> str:
    """Sign in as `email` in a fresh browser; returns that browser's session cookie."""
    signed_out(client)
    await sign_in(client, email, password)
    return client.cookies[COOKIE]


def switch_to(client: Client, session: str) -> None:
    signed_out(client)
    client.cookies.set(COOKIE, session, domain="testserver.local")


async def signed_in(client: Client, db: Database, role: str, *slugs: str) -> tuple[int, str]:
    """Sign the client in as a new account; returns its id and the CSRF token."""
    staff = await make_staff(db, role, list(slugs))
    return staff.user_id, await sign_in(client, staff.email, staff.password)


async def events(db: Database, action: str, object_id: int | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    if object_id is not None:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    async with db.read() as session:
        return list(await session.scalars(stmt.order_by(AuditEvent.id)))


async def user_by_email(db: Database, email: str) -> User | None:
    async with db.read() as session:
        return await session.scalar(select(User).where(User.email == email))


async def points_of(db: Database, slug: str) -> list[CheckinPoint]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(CheckinPoint).join(Site).where(Site.slug == slug).order_by(CheckinPoint.id)
            )
        )


async def point_named(db: Database, slug: str, name: str) -> CheckinPoint:
    found = [p for p in await points_of(db, slug) if p.name == name]
    assert len(found) == 1, [p.name for p in await points_of(db, slug)]
    return found[0]


def fresh_email() -> str:
    return f"new-{secrets.token_hex(4)}@test.example"


# --- accounts ----------------------------------------------------------------------------


async def test_an_admin_creates_an_account_that_can_then_sign_in(client: Client, db: Database):
    marina = await make_point(db)
    _, csrf = await signed_in(client, db, "admin", marina.site_slug)
    email = fresh_email()

    form = await client.get("/admin/users/new")
    assert form.status_code == 200
    assert f'value="{marina.site_slug}"' in form.text
    answer = await client.post(
        "/admin/users/new",
        data={
            "_csrf_token": csrf,
            "email": email.upper(),
            "role": "harbour_master",
            "sites": marina.site_slug,
            "password": NEW_PASSWORD,
        },
        follow_redirects=False,
    )

    assert answer.status_code == 303, answer.text
    user = await user_by_email(db, email)
    assert user is not None
    assert user.role == "harbour_master"
    assert answer.headers["location"] == f"/admin/users/{user.id}?created=1"
    listing = await client.get("/admin/users")
    assert email in listing.text
    created = await events(db, "user_created", user.id)
    assert len(created) == 1
    details = json.loads(created[0].details)
    assert details["sites"] == [marina.site_slug]
    assert NEW_PASSWORD not in created[0].details
    await browser_of(client, email, NEW_PASSWORD)
    tonight = await client.get(f"/admin/sites/{marina.site_slug}/tonight")
    assert tonight.status_code == 200


async def test_an_account_without_a_password_gets_a_one_time_link_that_works_once(
    client: Client, db: Database
):
    _, csrf = await signed_in(client, db, "admin")
    admin_browser = client.cookies[COOKIE]
    email = fresh_email()

    answer = await client.post(
        "/admin/users/new",
        data={"_csrf_token": csrf, "email": email, "role": "auditor", "password": ""},
    )

    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    match = re.search(r'value="http://testserver\.local(/admin/reset/[^"]+)"', answer.text)
    assert match, "the page shows the one-time link"
    link = match.group(1)
    user = await user_by_email(db, email)
    assert user is not None
    assert len(await events(db, "password_reset_issued", user.id)) == 1
    signed_out(client)
    page = await client.get(link)
    assert page.status_code == 200
    form = {"_csrf_token": csrf_from(page.text), "new": NEW_PASSWORD, "repeat": NEW_PASSWORD}
    assert (await client.post(link, data=form)).status_code == 200
    assert (await client.post(link, data=form)).status_code == 400
    await browser_of(client, email, NEW_PASSWORD)
    switch_to(client, admin_browser)
    again = await client.get(f"/admin/users/{user.id}")
    assert again.status_code == 200
    assert "/admin/reset/" not in again.text, "the link is shown only once"


@pytest.mark.parametrize(
    ("field", "email", "password", "message"),
    [
        ("password", "fresh", "harbour", "at least 12 characters"),
        ("password", "fresh", "password1234", "too common"),
        ("email", "not-an-address", NEW_PASSWORD, "e-mail address like"),
        ("email", "<b>bold</b>@x", NEW_PASSWORD, "e-mail address like"),
        ("email", "taken", NEW_PASSWORD, "with this e-mail address already"),
    ],
)
async def test_mistakes_in_a_new_account_are_shown_next_to_their_field(
    client: Client, db: Database, field: str, email: str, password: str, message: str
):
    _, csrf = await signed_in(client, db, "admin")
    if email == "fresh":
        email = fresh_email()
    elif email == "taken":
        email = (await make_staff(db, "security")).email

    answer = await client.post(
        "/admin/users/new",
        data={"_csrf_token": csrf, "email": email, "role": "security", "password": password},
    )

    assert answer.status_code == 400
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', answer.text)
    assert error, answer.text
    assert message in error.group(1).replace("&#39;", "'")
    assert "<b>bold</b>" not in answer.text
    if "bold" in email:
        assert "&lt;b&gt;bold&lt;/b&gt;@x" in answer.text  # kept, escaped
    assert f'value="{password}"' not in answer.text, "a password is never sent back"
    assert re.search(r'value="security" checked', answer.text), "the role is kept"


async def test_an_unknown_role_and_an_empty_form_are_refused(client: Client, db: Database):
    _, csrf = await signed_in(client, db, "admin")

    odd = await client.post(
        "/admin/users/new",
        data={"_csrf_token": csrf, "email": fresh_email(), "role": "captain", "password": ""},
    )
    empty = await client.post("/admin/users/new", data={"_csrf_token": csrf})

    assert odd.status_code == 400
    assert 'id="role-error"' in odd.text
    assert empty.status_code == 400
    assert 'id="email-error"' in empty.text


async def test_disabling_an_account_ends_its_open_session_at_once(client: Client, db: Database):
    marina = await make_point(db)
    _, csrf = await signed_in(client, db, "admin", marina.site_slug)
    admin_browser = client.cookies[COOKIE]
    guard = await make_staff(db, "security", [marina.site_slug])
    guard_browser = await browser_of(client, guard.email)
    assert (await client.get(f"/admin/sites/{marina.site_slug}/tonight")).status_code == 200

    switch_to(client, admin_browser)
    answer = await client.post(
        f"/admin/users/{guard.user_id}",
        data={"_csrf_token": csrf, "role": "security", "sites": marina.site_slug, "active": "no"},
        follow_redirects=False,
    )

    assert answer.status_code == 303, answer.text
    switch_to(client, guard_browser)
    after = await client.get(f"/admin/sites/{marina.site_slug}/tonight", follow_redirects=False)
    assert after.status_code in (302, 303)
    assert after.headers["location"].startswith("/admin/sign-in")
    changed = await events(db, "user_changed", guard.user_id)
    assert json.loads(changed[-1].details)["changes"] == {
        "active": {"before": True, "after": False}
    }
    signed_out(client)
    refused = await client.post(
        "/admin/sign-in",
        data={"_csrf_token": csrf, "email": guard.email, "password": STAFF_PASSWORD},
    )
    assert refused.status_code == 400


async def test_taking_a_site_away_holds_at_once(client: Client, db: Database):
    here, there = await make_point(db), await make_point(db)
    _, csrf = await signed_in(client, db, "admin")
    admin_browser = client.cookies[COOKIE]
    master = await make_staff(db, "harbour_master", [here.site_slug, there.site_slug])
    master_browser = await browser_of(client, master.email)
    assert (await client.get(f"/admin/sites/{here.site_slug}/tonight")).status_code == 200

    switch_to(client, admin_browser)
    await client.post(
        f"/admin/users/{master.user_id}",
        data={"_csrf_token": csrf, "role": "harbour_master", "sites": [there.site_slug],
              "active": "yes"},
    )  # fmt: skip

    switch_to(client, master_browser)
    gone = await client.get(f"/admin/sites/{here.site_slug}/tonight", follow_redirects=False)
    assert gone.headers.get("location", "").startswith("/admin/sign-in"), "signed out"
    await browser_of(client, master.email)
    assert (await client.get(f"/admin/sites/{here.site_slug}/tonight")).status_code == 404
    assert (await client.get(f"/admin/sites/{there.site_slug}/tonight")).status_code == 200
    details = json.loads((await events(db, "user_changed", master.user_id))[-1].details)
    assert details["changes"]["sites"]["after"] == [there.site_slug]


async def test_an_admin_cannot_disable_or_demote_themself(client: Client, db: Database):
    me, csrf = await signed_in(client, db, "admin")

    disable = await client.post(
        f"/admin/users/{me}", data={"_csrf_token": csrf, "role": "admin", "active": "no"}
    )
    demote = await client.post(
        f"/admin/users/{me}", data={"_csrf_token": csrf, "role": "security", "active": "yes"}
    )

    assert disable.status_code == 400
    assert "cannot disable your own account" in disable.text
    assert demote.status_code == 400
    assert "administrator role from yourself" in demote.text
    async with db.read() as session:
        user = await session.get(User, me)
    assert user is not None
    assert user.is_active
    assert user.role == "admin"
    assert await events(db, "user_changed", me) == []
    assert (await client.get("/admin/users")).status_code == 200, "still signed in"


async def test_an_admin_cannot_give_themself_a_site_but_another_admin_can(
    client: Client, db: Database
):
    """Issue 17, finding 11b: an admin added a site to their own account and read its
    register. A second admin's grant is audited on that site's trail."""
    point = await make_point(db)
    me, csrf = await signed_in(client, db, "admin")

    answer = await client.post(
        f"/admin/users/{me}",
        data={"_csrf_token": csrf, "role": "admin", "active": "yes", "sites": point.site_slug},
    )

    assert answer.status_code == 400
    assert "cannot give yourself access" in answer.text
    assert await events(db, "user_changed", me) == []
    assert (await client.get(f"/admin/sites/{point.site_slug}/tonight")).status_code == 404

    _other, other_csrf = await signed_in(client, db, "admin")
    granted = await client.post(
        f"/admin/users/{me}",
        data={"_csrf_token": other_csrf, "role": "admin", "active": "yes",
              "sites": point.site_slug},
        follow_redirects=False,
    )  # fmt: skip
    assert granted.status_code in (302, 303), granted.text
    async with db.read() as session:
        grant = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "site_access_granted", AuditEvent.object_id == me
            )
        )
    assert grant is not None
    assert grant.site_id is not None
    # The site's home shows its own staff who was let in, and by whom.
    await signed_in(client, db, "harbour_master", point.site_slug)
    home = await client.get(f"/admin/sites/{point.site_slug}")
    assert home.status_code == 200
    assert 'id="grants"' in home.text
    assert "given by" in home.text


async def test_a_new_account_holding_a_site_is_shown_as_a_grant_on_that_sites_page(
    client: Client, db: Database
):
    """Issue 17, finding 11b: an admin who may not give themself a site could make a second
    account holding it. Such an account is a grant like any other: on the site's trail, marked
    as a new account, and on the site's page for its staff and the auditor."""
    point = await make_point(db)
    _me, csrf = await signed_in(client, db, "admin")
    email = f"tweede-{secrets.token_hex(4)}@example.org"

    answer = await client.post(
        "/admin/users/new",
        data={"_csrf_token": csrf, "email": email, "role": "harbour_master",
              "sites": point.site_slug},
        follow_redirects=False,
    )  # fmt: skip

    assert answer.status_code in (200, 302, 303), answer.text
    async with db.read() as session:
        grant = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "site_access_granted",
                AuditEvent.details.contains(email),
            )
        )
    assert grant is not None
    assert grant.site_id is not None
    assert json.loads(grant.details)["new_account"] is True
    await signed_in(client, db, "harbour_master", point.site_slug)
    home = (await client.get(f"/admin/sites/{point.site_slug}")).text
    assert email in home.split('id="grants"')[1]


async def test_an_empty_account_change_is_refused_and_changes_nothing(client: Client, db: Database):
    _, csrf = await signed_in(client, db, "admin")
    guard = await make_staff(db, "security")

    answer = await client.post(f"/admin/users/{guard.user_id}", data={"_csrf_token": csrf})

    assert answer.status_code == 400
    assert 'id="role-error"' in answer.text
    assert 'id="active-error"' in answer.text
    assert await events(db, "user_changed", guard.user_id) == []


async def test_a_reset_link_from_the_account_page_works_once(client: Client, db: Database):
    _, csrf = await signed_in(client, db, "admin")
    guard = await make_staff(db, "security")

    answer = await client.post(f"/admin/users/{guard.user_id}/reset", data={"_csrf_token": csrf})

    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    link = re.search(r'value="http://testserver\.local(/admin/reset/[^"]+)"', answer.text)
    assert link
    assert len(await events(db, "password_reset_issued", guard.user_id)) == 1
    signed_out(client)
    page = await client.get(link.group(1))
    form = {"_csrf_token": csrf_from(page.text), "new": NEW_PASSWORD, "repeat": NEW_PASSWORD}
    assert (await client.post(link.group(1), data=form)).status_code == 200
    assert (await client.post(link.group(1), data=form)).status_code == 400
    await browser_of(client, guard.email, NEW_PASSWORD)


async def test_a_harbour_master_may_not_manage_accounts(client: Client, db: Database):
    marina = await make_point(db)
    _, csrf = await signed_in(client, db, "harbour_master", marina.site_slug)

    assert (await client.get("/admin/users")).status_code == 403
    answer = await client.post(
        "/admin/users/new",
        data={"_csrf_token": csrf, "email": fresh_email(), "role": "admin", "password": ""},
    )
    assert answer.status_code == 403


# --- sites ---------------------------------------------------------------------------------


async def test_a_harbour_master_sees_only_own_sites_and_cannot_create_one(
    client: Client, db: Database
):
    mine, theirs = await make_point(db), await make_point(db)
    _, csrf = await signed_in(client, db, "harbour_master", mine.site_slug)

    listing = await client.get("/admin/sites")
    create = await client.post(
        "/admin/sites",
        data={"_csrf_token": csrf, "slug": unique_slug("hm"), "name": "Mine", "kind": "marina",
              "timezone": "Europe/Amsterdam"},
    )  # fmt: skip

    assert listing.status_code == 200
    assert f'href="/admin/sites/{mine.site_slug}"' in listing.text
    assert theirs.site_slug not in listing.text
    assert "New site" not in listing.text
    assert create.status_code == 403
    assert (await client.get(f"/admin/sites/{theirs.site_slug}")).status_code == 404


async def test_security_staff_may_not_see_the_sites_pages(client: Client, db: Database):
    marina = await make_point(db)
    await signed_in(client, db, "security", marina.site_slug)

    assert (await client.get("/admin/sites")).status_code == 403
    assert (await client.get(f"/admin/sites/{marina.site_slug}")).status_code == 403


async def test_an_admin_creates_a_site_and_mistakes_are_shown_next_to_their_field(
    client: Client, db: Database
):
    _, csrf = await signed_in(client, db, "admin")
    slug = unique_slug("new")
    form = {"_csrf_token": csrf, "slug": slug, "name": "Jachthaven Noord", "kind": "marina",
            "timezone": "Europe/Amsterdam", "municipality": "Den Helder"}  # fmt: skip

    bad = await client.post(
        "/admin/sites",
        data={**form, "slug": "Not A Slug", "kind": "castle", "timezone": "Mars/Olympus"},
    )
    made = await client.post("/admin/sites", data=form, follow_redirects=False)
    twice = await client.post("/admin/sites", data=form)

    assert bad.status_code == 400
    for field in ("slug", "kind", "timezone"):
        assert f'id="new-{field}-error"' in bad.text, field
    assert 'value="Jachthaven Noord"' in bad.text
    assert made.status_code == 303
    assert twice.status_code == 400
    assert "already" in twice.text
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == slug))
    assert site is not None
    assert site.municipality == "Den Helder"
    assert len(await events(db, "site_created", site.id)) == 1
    listing = await client.get("/admin/sites")
    assert f'id="site-{slug}"' in listing.text


async def test_an_admin_renames_and_disables_a_site_whose_qr_codes_then_stop_working(
    client: Client, db: Database
):
    marina = await make_point(db)
    _, csrf = await signed_in(client, db, "admin", marina.site_slug)
    assert (await client.get(marina.url)).status_code == 200

    renamed = await client.post(
        f"/admin/sites/{marina.site_slug}",
        data={"_csrf_token": csrf, "name": "Jachthaven Zuid", "municipality": "", "contact": "x",
              "active": "yes", "back": "site"},
        follow_redirects=False,
    )  # fmt: skip
    disabled = await client.post(
        f"/admin/sites/{marina.site_slug}",
        data={"_csrf_token": csrf, "name": "Jachthaven Zuid", "municipality": "", "contact": "x",
              "active": "no"},
        follow_redirects=False,
    )  # fmt: skip

    assert renamed.status_code == 303
    assert renamed.headers["location"] == f"/admin/sites/{marina.site_slug}?saved=1"
    assert disabled.status_code == 303
    page = await client.get(f"/admin/sites/{marina.site_slug}")
    assert "Jachthaven Zuid" in page.text
    assert (await client.get(marina.url)).status_code == 404
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == marina.site_slug))
    assert site is not None
    changes = [json.loads(e.details)["changes"] for e in await events(db, "site_changed", site.id)]
    assert changes[0]["name"] == {"before": "Jachthaven Testhaven", "after": "Jachthaven Zuid"}
    assert changes[1] == {"is_active": {"before": True, "after": False}}


async def test_an_admin_changes_a_site_that_is_not_theirs_from_the_list(
    client: Client, db: Database
):
    marina = await make_point(db)
    _, csrf = await signed_in(client, db, "admin")

    empty = await client.post(f"/admin/sites/{marina.site_slug}", data={"_csrf_token": csrf})
    renamed = await client.post(
        f"/admin/sites/{marina.site_slug}",
        data={"_csrf_token": csrf, "name": "Elders", "active": "yes"},
        follow_redirects=False,
    )

    assert empty.status_code == 400
    assert f'id="site-{marina.site_slug}-name-error"' in empty.text
    assert renamed.status_code == 303
    assert renamed.headers["location"].startswith(f"/admin/sites?saved={marina.site_slug}")


# --- check-in points -----------------------------------------------------------------------


async def test_a_harbour_master_adds_renames_and_rotates_a_point(client: Client, db: Database):
    marina = await make_point(db)
    _, csrf = await signed_in(client, db, "harbour_master", marina.site_slug)

    added = await client.post(
        f"/admin/sites/{marina.site_slug}/points",
        data={"_csrf_token": csrf, "name": "Steiger B", "kiosk_mode": "1"},
        follow_redirects=False,
    )
    assert added.status_code == 303
    point = await point_named(db, marina.site_slug, "Steiger B")
    assert point.kiosk_mode
    old_url = f"/k/{point.token}"
    assert (await client.get(old_url)).status_code == 200

    renamed = await client.post(
        f"/admin/points/{point.id}",
        data={"_csrf_token": csrf, "name": "Steiger C", "kiosk_mode": "1", "active": "yes"},
        follow_redirects=False,
    )
    rotated = await client.post(
        f"/admin/points/{point.id}/rotate", data={"_csrf_token": csrf}, follow_redirects=False
    )

    assert renamed.status_code == 303
    assert rotated.status_code == 303
    page = await client.get(rotated.headers["location"])
    fresh = await point_named(db, marina.site_slug, "Steiger C")
    assert fresh.token != point.token
    assert fresh.rotated_at is not None
    assert f"http://testserver.local/k/{fresh.token}" in page.text
    assert "no longer works" in page.text
    assert (await client.get(old_url)).status_code == 404
    assert (await client.get(f"/k/{fresh.token}")).status_code == 200
    assert len(await events(db, "point_created", point.id)) == 1
    change = json.loads((await events(db, "point_changed", point.id))[0].details)
    assert change["changes"] == {"name": {"before": "Steiger B", "after": "Steiger C"}}
    rotation = await events(db, "point_rotated", point.id)
    assert len(rotation) == 1
    assert point.token not in rotation[0].details
    assert fresh.token not in rotation[0].details


async def test_a_disabled_point_stops_working_and_can_be_enabled_again(
    client: Client, db: Database
):
    marina = await make_point(db)
    _, csrf = await signed_in(client, db, "harbour_master", marina.site_slug)
    point = await point_named(db, marina.site_slug, marina.point_name)
    form = {"_csrf_token": csrf, "name": point.name}

    await client.post(f"/admin/points/{point.id}", data={**form, "active": "no"})
    assert (await client.get(marina.url)).status_code == 404
    await client.post(f"/admin/points/{point.id}", data={**form, "active": "yes"})
    assert (await client.get(marina.url)).status_code == 200


async def test_mistakes_in_a_point_are_shown_next_to_their_field(client: Client, db: Database):
    marina = await make_point(db)
    _, csrf = await signed_in(client, db, "harbour_master", marina.site_slug)
    point = await point_named(db, marina.site_slug, marina.point_name)

    empty_new = await client.post(
        f"/admin/sites/{marina.site_slug}/points", data={"_csrf_token": csrf}
    )
    same_name = await client.post(
        f"/admin/sites/{marina.site_slug}/points",
        data={"_csrf_token": csrf, "name": marina.point_name},
    )
    empty_change = await client.post(f"/admin/points/{point.id}", data={"_csrf_token": csrf})

    assert empty_new.status_code == 400
    assert 'id="new-point-name-error"' in empty_new.text
    assert same_name.status_code == 400
    assert "already" in same_name.text
    assert empty_change.status_code == 400
    assert f'id="point-{point.id}-name-error"' in empty_change.text
    assert f'id="point-{point.id}-active-error"' in empty_change.text
    assert len(await points_of(db, marina.site_slug)) == 1
    assert await events(db, "point_changed", point.id) == []


async def test_a_point_of_another_site_is_not_found(client: Client, db: Database):
    mine, theirs = await make_point(db), await make_point(db)
    _, csrf = await signed_in(client, db, "harbour_master", mine.site_slug)
    point = await point_named(db, theirs.site_slug, theirs.point_name)

    rotate = await client.post(f"/admin/points/{point.id}/rotate", data={"_csrf_token": csrf})
    poster = await client.get(f"/admin/points/{point.id}/poster/svg")
    add = await client.post(
        f"/admin/sites/{theirs.site_slug}/points", data={"_csrf_token": csrf, "name": "Mine"}
    )

    assert rotate.status_code == 404
    assert poster.status_code == 404
    assert add.status_code == 404
    assert (await point_named(db, theirs.site_slug, theirs.point_name)).token == theirs.token


@pytest.mark.parametrize(
    ("fmt", "content_type", "magic"),
    [("svg", "image/svg+xml", b"<?xml"), ("png", "image/png", b"\x89PNG"),
     ("pdf", "application/pdf", b"%PDF")],
)  # fmt: skip
async def test_a_poster_downloads_in_each_format(
    client: Client, db: Database, fmt: str, content_type: str, magic: bytes
):
    marina = await make_point(db)
    await signed_in(client, db, "harbour_master", marina.site_slug)
    point = await point_named(db, marina.site_slug, marina.point_name)

    answer = await client.get(f"/admin/points/{point.id}/poster/{fmt}")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(content_type)
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["content-disposition"].endswith(f'.{fmt}"')
    assert answer.content.startswith(magic)
    if fmt == "svg":
        assert marina.token.encode() in answer.content


async def test_a_poster_in_an_unknown_format_is_not_found(client: Client, db: Database):
    marina = await make_point(db)
    await signed_in(client, db, "harbour_master", marina.site_slug)
    point = await point_named(db, marina.site_slug, marina.point_name)

    assert (await client.get(f"/admin/points/{point.id}/poster/gif")).status_code == 404


async def test_the_site_page_lists_its_points_with_their_posters(client: Client, db: Database):
    marina = await make_point(db, kiosk_mode=True)
    await signed_in(client, db, "admin", marina.site_slug)
    point = await point_named(db, marina.site_slug, marina.point_name)

    page = await client.get(f"/admin/sites/{marina.site_slug}")

    assert page.status_code == 200
    assert f'id="point-{point.id}"' in page.text
    for fmt in ("svg", "png", "pdf"):
        assert f'href="/admin/points/{point.id}/poster/{fmt}"' in page.text
    assert f'action="/admin/sites/{marina.site_slug}"' in page.text, "admins may rename the site"
