"""Session fixation: whatever session cookie a browser carries before signing in, signing in
gives it a new session id, and the planted one opens nothing afterwards."""

from __future__ import annotations

import secrets

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import StaffSession
from nightreg.security import new_point_token, token_hash
from tests.factories import make_staff
from tests.pages import csrf_from, sign_in

Client = AsyncTestClient[Litestar]
BASE = "http://testserver.local"
COOKIE = "nightreg_session"
STAFF_PAGE = "/admin/password"


def plant(client: Client, value: str) -> None:
    client.cookies.set(COOKIE, value, domain="testserver.local", path="/")


async def opens_staff_pages(app: Litestar, session_id: str) -> bool:
    """Whether a browser holding only this session cookie gets a staff page."""
    async with AsyncTestClient(app=app, base_url=BASE) as browser:
        plant(browser, session_id)
        answer = await browser.get(STAFF_PAGE, follow_redirects=False)
        return answer.status_code == 200


async def stored(db: Database, session_id: str) -> bool:
    async with db.read() as s:
        found = await s.scalar(
            select(StaffSession.id).where(StaffSession.token_hash == token_hash(session_id))
        )
    return found is not None


async def test_a_made_up_session_id_planted_before_sign_in_is_replaced_and_worthless(
    app: Litestar, db: Database
):
    staff = await make_staff(db, "harbour_master")
    planted = new_point_token()  # as random and as long as a real one
    async with AsyncTestClient(app=app, base_url=BASE) as browser:
        plant(browser, planted)
        assert (await browser.get(STAFF_PAGE, follow_redirects=False)).status_code in (302, 303)
        await sign_in(browser, staff.email, staff.password)
        signed_in = browser.cookies[COOKIE]
        assert signed_in != planted
        assert len(signed_in) >= 43  # 256 random bits, URL-safe
        assert (await browser.get(STAFF_PAGE)).status_code == 200
    assert not await stored(db, planted)
    assert await stored(db, signed_in)
    assert not await opens_staff_pages(app, planted)
    assert await opens_staff_pages(app, signed_in)


async def test_a_signed_out_session_id_of_the_same_user_planted_again_stays_worthless(
    app: Litestar, db: Database
):
    staff = await make_staff(db, "security")
    async with AsyncTestClient(app=app, base_url=BASE) as earlier:
        csrf = await sign_in(earlier, staff.email, staff.password)
        old = earlier.cookies[COOKIE]
        assert (await earlier.get(STAFF_PAGE)).status_code == 200
        out = await earlier.post("/admin/sign-out", data={"_csrf_token": csrf})
        assert out.status_code in (200, 302, 303)
    assert not await stored(db, old)
    assert not await opens_staff_pages(app, old)

    async with AsyncTestClient(app=app, base_url=BASE) as browser:
        plant(browser, old)
        await sign_in(browser, staff.email, staff.password)
        new = browser.cookies[COOKIE]
        assert new != old
        assert (await browser.get(STAFF_PAGE)).status_code == 200
    assert not await opens_staff_pages(app, old)
    assert await opens_staff_pages(app, new)


async def test_a_live_session_id_planted_in_the_browser_is_ended_by_the_sign_in(
    app: Litestar, db: Database
):
    """Someone who planted a session of their own (or one they stole) in a browser cannot
    ride along on the sign-in that follows: the sign-in ends the planted session."""
    planter = await make_staff(db, "security")
    staff = await make_staff(db, "harbour_master")
    async with AsyncTestClient(app=app, base_url=BASE) as theirs:
        await sign_in(theirs, planter.email, planter.password)
        planted = theirs.cookies[COOKIE]
    assert await opens_staff_pages(app, planted)

    async with AsyncTestClient(app=app, base_url=BASE) as browser:
        plant(browser, planted)
        await sign_in(browser, staff.email, staff.password)
        new = browser.cookies[COOKIE]
        assert new != planted
        page = await browser.get(STAFF_PAGE)
        assert staff.email in page.text or page.status_code == 200
    assert not await stored(db, planted)
    assert not await opens_staff_pages(app, planted)


async def test_a_failed_sign_in_does_not_adopt_the_planted_session_id(app: Litestar, db: Database):
    staff = await make_staff(db, "harbour_master")
    planted = secrets.token_urlsafe(32)
    async with AsyncTestClient(app=app, base_url=BASE) as browser:
        plant(browser, planted)
        page = await browser.get("/admin/sign-in")
        answer = await browser.post(
            "/admin/sign-in",
            data={
                "_csrf_token": csrf_from(page.text),
                "email": staff.email,
                "password": "not-the-password-" + secrets.token_hex(4),
            },
        )
        assert answer.status_code in (400, 429)
        assert COOKIE not in answer.headers.get("set-cookie", "")
    assert not await stored(db, planted)
    assert not await opens_staff_pages(app, planted)
