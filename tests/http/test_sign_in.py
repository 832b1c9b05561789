"""Staff sign-in: sessions, their timeouts and rotation, throttling, passwords, reset links."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from nightreg.app import create_app
from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import AuditEvent, SignInFailure, User
from nightreg.services import auth
from nightreg.services.access import CLI
from tests.factories import STAFF_PASSWORD, event_details, make_staff
from tests.pages import csrf_from, sign_in

Client = AsyncTestClient[Litestar]


def a_quiet_hour(clock: FrozenClock) -> None:
    """Failed sign-ins are counted per address over 15 minutes, and all tests share one
    address and one database: tests that fail on purpose do it at a moment of their own."""
    clock.advance(
        timedelta(days=400 + secrets.randbelow(100_000), seconds=secrets.randbelow(86400))
    )


async def post_sign_in(client: Client, email: str, password: str, *, follow: bool = False):
    page = await client.get("/admin/sign-in")
    return await client.post(
        "/admin/sign-in",
        data={"_csrf_token": csrf_from(page.text), "email": email, "password": password},
        follow_redirects=follow,
    )


async def test_a_staff_page_sends_an_anonymous_visitor_to_the_sign_in_page(client: Client):
    answer = await client.get("/admin/", follow_redirects=False)
    assert answer.status_code in (302, 303)
    assert answer.headers["location"].startswith("/admin/sign-in?next=")


async def test_an_htmx_request_without_a_session_is_told_to_redirect(client: Client):
    answer = await client.get("/admin/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert answer.headers["HX-Redirect"].startswith("/admin/sign-in")


async def test_signing_in_sets_an_http_only_lax_session_cookie(client: Client, db: Database):
    staff = await make_staff(db, "harbour_master")
    answer = await post_sign_in(client, staff.email, staff.password)
    assert answer.status_code == 302
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("nightreg_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie
    assert (await client.get("/admin/password")).status_code == 200


async def test_on_https_the_session_cookie_is_secure_and_host_bound(
    db: Database, make_settings, clock: FrozenClock
):
    app = create_app(make_settings(base_url="https://register.example.org"), clock=clock)
    staff = await make_staff(db, "auditor")
    async with AsyncTestClient(app=app, base_url="https://register.example.org") as client:
        answer = await post_sign_in(client, staff.email, staff.password)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-nightreg_session=")
    assert "Secure" in cookie


async def test_a_wrong_password_and_an_unknown_account_get_the_same_answer(
    client: Client, db: Database, clock: FrozenClock
):
    a_quiet_hour(clock)
    staff = await make_staff(db, "security")
    wrong = await post_sign_in(client, staff.email, "not-the-password-at-all")
    unknown = await post_sign_in(client, f"nobody-{secrets.token_hex(3)}@test.example", "x" * 14)
    assert wrong.status_code == unknown.status_code == 400
    assert "The e-mail address or the password is not right." in wrong.text
    assert "The e-mail address or the password is not right." in unknown.text
    assert (
        "set-cookie" not in wrong.headers or "nightreg_session" not in wrong.headers["set-cookie"]
    )


async def test_a_session_id_planted_before_sign_in_is_worthless_afterwards(
    app: Litestar, db: Database
):
    attacker = await make_staff(db, "security")
    victim = await make_staff(db, "harbour_master")
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as attacker_client:
        await sign_in(attacker_client, attacker.email)
        planted = attacker_client.cookies["nightreg_session"]
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as victim_client:
        victim_client.cookies.set("nightreg_session", planted, domain="testserver.local")
        await sign_in(victim_client, victim.email)
        assert victim_client.cookies["nightreg_session"] != planted
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as attacker_again:
        attacker_again.cookies.set("nightreg_session", planted, domain="testserver.local")
        answer = await attacker_again.get("/admin/password", follow_redirects=False)
        assert answer.status_code in (302, 303)


async def test_a_made_up_session_cookie_is_not_signed_in(client: Client):
    client.cookies.set(
        "nightreg_session", "attacker-chose-this-session-id", domain="testserver.local"
    )
    answer = await client.get("/admin/password", follow_redirects=False)
    assert answer.status_code in (302, 303)


async def test_signing_out_ends_the_session_on_the_server(client: Client, db: Database):
    staff = await make_staff(db, "auditor")
    csrf = await sign_in(client, staff.email)
    kept = client.cookies["nightreg_session"]
    answer = await client.post(
        "/admin/sign-out", data={"_csrf_token": csrf}, follow_redirects=False
    )
    assert answer.status_code in (302, 303)
    client.cookies.set("nightreg_session", kept, domain="testserver.local")
    assert (await client.get("/admin/password", follow_redirects=False)).status_code in (302, 303)


async def test_sign_out_without_a_csrf_token_is_refused(client: Client, db: Database):
    staff = await make_staff(db, "auditor")
    await sign_in(client, staff.email)
    answer = await client.post("/admin/sign-out", data={}, follow_redirects=False)
    assert answer.status_code == 403
    assert (await client.get("/admin/password")).status_code == 200


async def test_a_session_ends_after_thirty_idle_minutes(
    client: Client, db: Database, clock: FrozenClock
):
    staff = await make_staff(db, "auditor")
    await sign_in(client, staff.email)
    clock.advance(timedelta(minutes=29))
    assert (await client.get("/admin/password")).status_code == 200
    clock.advance(timedelta(minutes=31))
    answer = await client.get("/admin/password", follow_redirects=False)
    assert answer.status_code in (302, 303)


async def test_a_busy_session_still_ends_after_twelve_hours(
    client: Client, db: Database, clock: FrozenClock
):
    staff = await make_staff(db, "auditor")
    await sign_in(client, staff.email)
    for _ in range(11 * 3 + 2):  # a request every 20 minutes for 11h40m
        clock.advance(timedelta(minutes=20))
        assert (await client.get("/admin/password")).status_code == 200
    clock.advance(timedelta(minutes=25))
    answer = await client.get("/admin/password", follow_redirects=False)
    assert answer.status_code in (302, 303)


async def test_five_failures_on_an_account_make_the_next_attempt_wait(
    client: Client, db: Database, clock: FrozenClock
):
    a_quiet_hour(clock)
    staff = await make_staff(db, "harbour_master")
    for _ in range(5):
        assert (await post_sign_in(client, staff.email, "wrong-password-guess")).status_code == 400
    throttled = await post_sign_in(client, staff.email, staff.password)
    assert throttled.status_code == 429
    assert "Too many failed attempts. Please wait 30 seconds" in throttled.text
    assert throttled.headers["Retry-After"] == "30"
    clock.advance(timedelta(seconds=31))
    assert (await post_sign_in(client, staff.email, staff.password)).status_code == 302


async def test_the_wait_grows_with_each_further_failure(
    client: Client, db: Database, clock: FrozenClock
):
    a_quiet_hour(clock)
    staff = await make_staff(db, "harbour_master")
    for _ in range(5):
        await post_sign_in(client, staff.email, "wrong-password-guess")
    clock.advance(timedelta(seconds=31))
    await post_sign_in(client, staff.email, "another-wrong-guess")  # the sixth failure
    answer = await post_sign_in(client, staff.email, staff.password)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "60"


async def test_twenty_failures_from_one_address_slow_down_every_account(
    client: Client, db: Database, clock: FrozenClock
):
    a_quiet_hour(clock)
    for i in range(20):
        await post_sign_in(client, f"guess-{i}-{secrets.token_hex(3)}@test.example", "password1234")
    staff = await make_staff(db, "security")
    answer = await post_sign_in(client, staff.email, staff.password)
    assert answer.status_code == 429
    # The message is the same whether or not the account exists.
    unknown = await post_sign_in(client, "nobody@test.example", "password1234")
    assert unknown.status_code == 429


async def test_failed_and_successful_sign_ins_are_in_the_audit_trail(
    client: Client, db: Database, clock: FrozenClock
):
    a_quiet_hour(clock)
    staff = await make_staff(db, "security")
    await post_sign_in(client, staff.email, "wrong-password-guess")
    await post_sign_in(client, staff.email, staff.password)
    async with db.read() as session:
        events = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.at == clock.now()).order_by(AuditEvent.id)
            )
        )
    # The e-mail typed at a failed sign-in is in the event's detail record (issue 17).
    actions = [
        (e.action, staff.email in (json.dumps(await event_details(db, e)) + e.actor))
        for e in events
    ]
    assert ("sign_in_failed", True) in actions
    assert ("sign_in", True) in actions
    assert all(staff.password not in e.details for e in events)


@pytest.mark.real_argon2
async def test_an_old_password_hash_is_upgraded_at_sign_in(client: Client, db: Database):
    staff = await make_staff(db, "auditor")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(staff.password)
    async with db.write() as session:
        await session.execute(
            update(User).where(User.id == staff.user_id).values(password_hash=weak)
        )
    await sign_in(client, staff.email)
    async with db.read() as session:
        stored = await session.scalar(select(User.password_hash).where(User.id == staff.user_id))
    assert stored != weak
    assert "m=65536" in stored


async def test_changing_the_password_signs_out_other_sessions(client: Client, db: Database):
    # Two devices as two session cookies on one client (see the reset test for why).
    staff = await make_staff(db, "harbour_master")
    new_password = "tide-tables-" + secrets.token_hex(6)
    await sign_in(client, staff.email)
    phone_session = client.cookies.get("nightreg_session")
    client.cookies.delete("nightreg_session")
    csrf = await sign_in(client, staff.email)
    wrong = await client.post(
        "/admin/password",
        data={"_csrf_token": csrf, "current": "wrong", "new": new_password, "repeat": new_password},
    )
    assert wrong.status_code == 400
    assert "Your current password is not right." in wrong.text
    done = await client.post(
        "/admin/password",
        data={
            "_csrf_token": csrf,
            "current": STAFF_PASSWORD,
            "new": new_password,
            "repeat": new_password,
        },
    )
    assert done.status_code == 200
    assert (await client.get("/admin/password")).status_code == 200
    client.cookies.set("nightreg_session", phone_session, domain="testserver.local")
    phone = await client.get("/admin/password", follow_redirects=False)
    assert phone.status_code in (302, 303)
    client.cookies.delete("nightreg_session")
    await sign_in(client, staff.email, new_password)


async def test_a_short_or_common_new_password_is_refused(client: Client, db: Database):
    staff = await make_staff(db, "harbour_master")
    csrf = await sign_in(client, staff.email)
    for bad in ("short", "password1234", "wachtwoord123"):
        answer = await client.post(
            "/admin/password",
            data={"_csrf_token": csrf, "current": STAFF_PASSWORD, "new": bad, "repeat": bad},
        )
        assert answer.status_code == 400, bad
        assert 'id="new-error"' in answer.text


async def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(
    client: Client, db: Database, clock: FrozenClock
):
    # One client whose cookies are swapped: on PostgreSQL a second client on the same app
    # would run on another event loop than the pool's connections.
    staff = await make_staff(db, "security")
    token = await auth.issue_reset(db, CLI, staff.user_id, now=clock.now())
    new_password = "lighthouse-keeper-" + secrets.token_hex(4)
    await sign_in(client, staff.email)
    old_session = client.cookies.get("nightreg_session")
    assert old_session
    client.cookies.delete("nightreg_session")
    page = await client.get(f"/admin/reset/{token}")
    assert page.status_code == 200
    assert staff.email in page.text
    form = {"_csrf_token": csrf_from(page.text), "new": new_password, "repeat": new_password}
    assert (await client.post(f"/admin/reset/{token}", data=form)).status_code == 200
    again = await client.post(f"/admin/reset/{token}", data=form)
    assert again.status_code == 400
    assert "not valid any more" in again.text
    client.cookies.set("nightreg_session", old_session, domain="testserver.local")
    ended = await client.get("/admin/password", follow_redirects=False)
    assert ended.status_code in (302, 303)
    client.cookies.delete("nightreg_session")
    await sign_in(client, staff.email, new_password)


async def test_a_reset_link_expires_after_a_day(client: Client, db: Database, clock: FrozenClock):
    staff = await make_staff(db, "security")
    token = await auth.issue_reset(db, CLI, staff.user_id, now=clock.now())
    clock.advance(timedelta(hours=25))
    assert (await client.get(f"/admin/reset/{token}")).status_code == 400


async def test_a_disabled_account_cannot_sign_in_and_loses_its_session(
    client: Client, db: Database, clock: FrozenClock
):
    a_quiet_hour(clock)
    staff = await make_staff(db, "security")
    await sign_in(client, staff.email)
    async with db.write() as session:
        await session.execute(update(User).where(User.id == staff.user_id).values(is_active=False))
    assert (await client.get("/admin/password", follow_redirects=False)).status_code in (302, 303)
    assert (await post_sign_in(client, staff.email, staff.password)).status_code == 400
    async with db.read() as session:
        failures = await session.scalar(
            select(SignInFailure.id).where(SignInFailure.email == staff.email)
        )
    assert failures is not None
