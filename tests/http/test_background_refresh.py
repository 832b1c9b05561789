"""Tonight's board refreshes itself every 15 seconds; those requests are nobody's activity,
so an unattended screen still signs out after the idle time, not at the 12-hour limit
(issue 17, finding 11d). The clock is the test's."""

from __future__ import annotations

from datetime import timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient

from nightreg.clock import FrozenClock
from nightreg.db import Database
from tests.factories import PointRef, make_staff
from tests.pages import sign_in

Client = AsyncTestClient[Litestar]
REFRESH = {"HX-Request": "true"}


async def test_the_boards_own_refresh_does_not_keep_an_unattended_session_alive(
    client: Client, db: Database, clock: FrozenClock, marina: PointRef
):
    staff = await make_staff(db, "harbour_master", [marina.site_slug])
    await sign_in(client, staff.email)
    page = await client.get(f"/admin/sites/{marina.site_slug}/tonight")
    assert page.status_code == 200
    assert f'hx-get="/admin/sites/{marina.site_slug}/tonight?refresh=auto"' in page.text

    board = f"/admin/sites/{marina.site_slug}/tonight?refresh=auto"
    for _ in range(29 * 4):  # every 15 seconds for 29 minutes: still signed in
        clock.advance(timedelta(seconds=15))
        answer = await client.get(board, headers=REFRESH)
        assert answer.status_code == 200
        assert "HX-Redirect" not in answer.headers
    clock.advance(timedelta(minutes=2))  # 31 minutes after the last real request
    answer = await client.get(board, headers=REFRESH)
    assert answer.headers.get("HX-Redirect", "").startswith("/admin/sign-in")
    assert (await client.get("/admin/password", follow_redirects=False)).status_code in (302, 303)


async def test_a_request_of_the_user_s_own_still_counts_as_activity(
    client: Client, db: Database, clock: FrozenClock, marina: PointRef
):
    staff = await make_staff(db, "harbour_master", [marina.site_slug])
    await sign_in(client, staff.email)
    tonight = f"/admin/sites/{marina.site_slug}/tonight"
    for _ in range(3):  # the board opened by hand (or htmx without the flag) every 20 minutes
        clock.advance(timedelta(minutes=20))
        assert (await client.get(tonight, headers=REFRESH)).status_code == 200
        assert (await client.get(tonight)).status_code == 200
