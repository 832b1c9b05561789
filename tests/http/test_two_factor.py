"""Two-factor sign-in through HTTP: enrolment, the second step, recovery codes, the roles that
must have it, an admin's reset, and sessions that end when an account is disabled or reset."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.app import create_app
from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import AuditEvent, SignInFailure, User
from nightreg.services import tokens, users
from nightreg.services.access import CLI
from tests.factories import STAFF_PASSWORD, StaffRef, event_details, make_point, make_staff
from tests.pages import csrf_from, sign_in

Client = AsyncTestClient[Litestar]
SESSION = "nightreg_session"
PENDING = "nightreg_sign_in"
# Analysts and auditors must have a second factor here; admins sign in with a password alone,
# so that the tests of an admin's reset need no second factor of their own.
REQUIRED = ("analyst", "auditor")
NEW_PASSWORD = "tide-tables-and-ropes-17"


@pytest.fixture
async def client(make_settings, clock: FrozenClock) -> AsyncIterator[Client]:
    app = create_app(make_settings(two_factor_roles=REQUIRED), clock=clock)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


def a_quiet_hour(clock: FrozenClock) -> None:
    """Failed attempts are counted per address over 15 minutes, and all tests share one address
    and one database: a test that fails on purpose does it at a moment of its own."""
    clock.advance(
        timedelta(days=400 + secrets.randbelow(100_000), seconds=secrets.randbelow(86400))
    )


def next_step(clock: FrozenClock) -> None:
    """Half a minute on: the app shows a new code (a code counts once)."""
    clock.advance(timedelta(seconds=30))


def code(secret: str, clock: FrozenClock) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def signed_out(client: Client) -> None:
    client.cookies.delete(SESSION)
    client.cookies.delete(PENDING)


def switch_to(client: Client, session: str) -> None:
    signed_out(client)
    client.cookies.set(SESSION, session, domain="testserver.local")


async def password_step(client: Client, staff: StaffRef, password: str = STAFF_PASSWORD):
    page = await client.get("/admin/sign-in")
    return await client.post(
        "/admin/sign-in",
        data={"_csrf_token": csrf_from(page.text), "email": staff.email, "password": password},
        follow_redirects=False,
    )


async def post_code(client: Client, path: str, typed: str):
    page = await client.get(path, follow_redirects=False)
    assert page.status_code == 200, page.headers.get("location")
    return await client.post(
        path, data={"_csrf_token": csrf_from(page.text), "code": typed}, follow_redirects=False
    )


def secret_on(page: str) -> str:
    found = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page)
    assert found, "the enrolment page shows no secret"
    return found.group(1).replace(" ", "")


def recovery_codes_on(page: str) -> list[str]:
    return re.findall(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})</code>", page)


async def enrolled_at_sign_in(
    client: Client, db: Database, clock: FrozenClock, role: str = "auditor"
) -> tuple[StaffRef, str, list[str]]:
    """A new account of a role that must have a second factor, enrolled at its first sign-in;
    the client is signed in as it. Returns it, its TOTP secret and its recovery codes."""
    staff = await make_staff(db, role)
    signed_out(client)
    answer = await password_step(client, staff)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/sign-in/enrol"
    page = await client.get("/admin/sign-in/enrol")
    secret = secret_on(page.text)
    done = await client.post(
        "/admin/sign-in/enrol",
        data={"_csrf_token": csrf_from(page.text), "code": code(secret, clock)},
    )
    assert done.status_code == 200, done.text
    next_step(clock)
    return staff, secret, recovery_codes_on(done.text)


async def events(db: Database, action: str, object_id: int | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    if object_id is not None:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    async with db.read() as session:
        return list(await session.scalars(stmt.order_by(AuditEvent.id)))


async def account(db: Database, user_id: int) -> User:
    async with db.read() as session:
        user = await session.get(User, user_id)
    assert user is not None
    return user


# --- a role that must have a second factor ---------------------------------------------------


async def test_a_required_role_is_sent_to_enrolment_after_the_password_and_reaches_nothing_else(
    client: Client, db: Database
):
    auditor = await make_staff(db, "auditor")

    answer = await password_step(client, auditor)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/sign-in/enrol"
    assert SESSION not in client.cookies
    assert "HttpOnly" in answer.headers["set-cookie"]
    for path in ("/admin/", "/admin/audit", "/admin/two-factor", "/admin/password"):
        refused = await client.get(path, follow_redirects=False)
        assert refused.headers["location"].startswith("/admin/sign-in?next="), path
    refused = await client.get("/admin/sign-in/code", follow_redirects=False)
    assert refused.headers["location"] == "/admin/sign-in?expired=1"
    page = await client.get("/admin/sign-in/enrol")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "<svg" in page.text
    assert 'aria-label="QR code for your authenticator app"' in page.text
    assert len(secret_on(page.text)) == 32


async def test_enrolling_at_sign_in_shows_ten_recovery_codes_once_and_opens_the_session(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, secret, codes = await enrolled_at_sign_in(client, db, clock)

    assert len(codes) == 10 == len(set(codes))
    assert SESSION in client.cookies
    assert PENDING not in client.cookies
    assert (await client.get("/admin/audit")).status_code == 200
    user = await account(db, auditor.user_id)
    assert user.totp_enabled_at is not None
    assert secret not in (user.totp_secret or "")
    assert len(await events(db, "two_factor_enabled", auditor.user_id)) == 1
    signed = await events(db, "sign_in", auditor.user_id)
    assert json.loads(signed[-1].details) == {"second_factor": "enrolled"}
    again = await client.get("/admin/sign-in/enrol", follow_redirects=False)
    assert again.headers["location"] == "/admin/sign-in?expired=1", "the codes are shown once"


async def test_a_wrong_code_while_enrolling_leaves_it_off_and_says_so_next_to_the_field(
    client: Client, db: Database, clock: FrozenClock
):
    analyst = await make_staff(db, "analyst")
    await password_step(client, analyst)
    page = await client.get("/admin/sign-in/enrol")
    secret = secret_on(page.text)
    wrong = pyotp.TOTP(secret).at(clock.now() + timedelta(minutes=3))

    answer = await client.post(
        "/admin/sign-in/enrol", data={"_csrf_token": csrf_from(page.text), "code": wrong}
    )

    assert answer.status_code == 400
    assert 'id="code-error"' in answer.text
    assert secret_on(answer.text) == secret, "the same secret, so the app need not scan again"
    assert SESSION not in client.cookies
    assert (await account(db, analyst.user_id)).totp_enabled_at is None


async def test_an_enrolled_account_signs_in_with_the_password_and_then_a_code(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, secret, _ = await enrolled_at_sign_in(client, db, clock)
    signed_out(client)

    first = await password_step(client, auditor)
    assert first.headers["location"] == "/admin/sign-in/code"
    assert (await client.get("/admin/audit", follow_redirects=False)).status_code in (302, 303)
    answer = await post_code(client, "/admin/sign-in/code", code(secret, clock))

    assert answer.status_code == 302
    assert answer.headers["location"] == "/admin/"
    assert (await client.get("/admin/audit")).status_code == 200
    signed = await events(db, "sign_in", auditor.user_id)
    assert json.loads(signed[-1].details) == {"second_factor": "totp"}


async def test_the_page_asked_for_before_signing_in_is_where_the_code_leads(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, secret, _ = await enrolled_at_sign_in(client, db, clock)
    signed_out(client)
    page = await client.get("/admin/sign-in?next=/admin/audit")
    await client.post(
        "/admin/sign-in",
        data={"_csrf_token": csrf_from(page.text), "email": auditor.email,
              "password": STAFF_PASSWORD, "next": "/admin/audit"},
    )  # fmt: skip

    answer = await post_code(client, "/admin/sign-in/code", code(secret, clock))

    assert answer.headers["location"] == "/admin/audit"


async def test_a_wrong_code_is_refused_counted_as_a_failed_sign_in_and_then_throttled(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, secret, _ = await enrolled_at_sign_in(client, db, clock)
    a_quiet_hour(clock)
    signed_out(client)
    await password_step(client, auditor)
    wrong = pyotp.TOTP(secret).at(clock.now() + timedelta(minutes=5))

    answers = [await post_code(client, "/admin/sign-in/code", wrong) for _ in range(5)]
    right = await post_code(client, "/admin/sign-in/code", code(secret, clock))

    assert [a.status_code for a in answers] == [400] * 5
    assert 'id="code-error"' in answers[0].text
    assert right.status_code == 429, "five failures on the account: even the right code waits"
    assert "Retry-After" in right.headers
    assert SESSION not in client.cookies
    async with db.read() as session:
        failures = list(
            await session.scalars(select(SignInFailure).where(SignInFailure.email == auditor.email))
        )
    assert len(failures) == 5
    failed = [
        details
        for e in await events(db, "sign_in_failed")
        if auditor.email in json.dumps(details := await event_details(db, e))
    ]
    assert [f["reason"] for f in failed].count("second factor") == 5
    # A refused attempt is counted, not chained one by one (issue 17, finding 5).
    assert "throttled" not in [f["reason"] for f in failed]


async def test_a_code_that_signed_in_once_does_not_sign_in_again(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, secret, _ = await enrolled_at_sign_in(client, db, clock)
    a_quiet_hour(clock)
    typed = code(secret, clock)
    signed_out(client)
    await password_step(client, auditor)
    assert (await post_code(client, "/admin/sign-in/code", typed)).status_code == 302

    signed_out(client)
    await password_step(client, auditor)
    replay = await post_code(client, "/admin/sign-in/code", typed)

    assert replay.status_code == 400
    assert SESSION not in client.cookies


async def test_a_recovery_code_signs_in_once_and_its_use_is_audited(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, _secret, codes = await enrolled_at_sign_in(client, db, clock)
    a_quiet_hour(clock)
    signed_out(client)
    await password_step(client, auditor)

    answer = await post_code(client, "/admin/sign-in/code", codes[0].lower())

    assert answer.status_code == 302
    used = await events(db, "recovery_code_used", auditor.user_id)
    assert json.loads(used[-1].details)["left"] == 9
    signed_out(client)
    await password_step(client, auditor)
    assert (await post_code(client, "/admin/sign-in/code", codes[0])).status_code == 400
    page = await client.get("/admin/sign-in/code")
    assert "recovery codes" in page.text


async def test_the_half_done_sign_in_expires_after_ten_minutes(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, secret, _ = await enrolled_at_sign_in(client, db, clock)
    signed_out(client)
    await password_step(client, auditor)
    clock.advance(timedelta(minutes=11))

    answer = await client.post(
        "/admin/sign-in/code",
        data={"_csrf_token": csrf_from((await client.get("/admin/sign-in")).text),
              "code": code(secret, clock)},
        follow_redirects=False,
    )  # fmt: skip

    assert answer.headers["location"] == "/admin/sign-in?expired=1"
    assert SESSION not in client.cookies
    page = await client.get("/admin/sign-in?expired=1")
    assert "Your sign-in has expired" in page.text


async def test_a_made_up_or_stale_half_done_sign_in_is_worthless(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, _secret, _ = await enrolled_at_sign_in(client, db, clock)
    signed_out(client)
    client.cookies.set(PENDING, "gAAAAA-not-a-sealed-value", domain="testserver.local")
    made_up = await client.get("/admin/sign-in/code", follow_redirects=False)
    assert made_up.headers["location"] == "/admin/sign-in?expired=1"

    await password_step(client, auditor)
    await users.set_password(db, auditor.email, NEW_PASSWORD)  # the password changed meanwhile
    stale = await client.get("/admin/sign-in/code", follow_redirects=False)

    assert stale.headers["location"] == "/admin/sign-in?expired=1"


async def test_a_required_role_cannot_switch_its_second_factor_off(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, secret, _ = await enrolled_at_sign_in(client, db, clock)
    page = await client.get("/admin/two-factor")
    assert "cannot be switched off" in page.text
    assert 'action="/admin/two-factor/disable"' not in page.text

    answer = await client.post(
        "/admin/two-factor/disable",
        data={"_csrf_token": csrf_from(page.text), "code": code(secret, clock)},
    )

    assert answer.status_code == 400
    assert (await account(db, auditor.user_id)).totp_enabled_at is not None
    assert await events(db, "two_factor_disabled", auditor.user_id) == []


# --- a role for which it is optional ---------------------------------------------------------


async def test_an_optional_role_signs_in_with_its_password_and_may_switch_it_on_and_off(
    client: Client, db: Database, clock: FrozenClock
):
    a_quiet_hour(clock)
    master = await make_staff(db, "harbour_master")
    csrf = await sign_in(client, master.email)  # a password alone
    status = await client.get("/admin/two-factor")
    assert 'id="two-factor-state"' in status.text
    assert "Off" in status.text
    assert 'href="/admin/two-factor"' in status.text, "in the account's own menu"

    page = await client.get("/admin/two-factor/enrol")
    assert page.headers["cache-control"] == "no-store"
    secret = secret_on(page.text)
    done = await client.post(
        "/admin/two-factor/enrol", data={"_csrf_token": csrf, "code": code(secret, clock)}
    )
    assert done.status_code == 200
    assert len(recovery_codes_on(done.text)) == 10
    assert (await client.get("/admin/two-factor/enrol", follow_redirects=False)).status_code == 303
    next_step(clock)

    signed_out(client)
    assert (await password_step(client, master)).headers["location"] == "/admin/sign-in/code"
    assert (await post_code(client, "/admin/sign-in/code", code(secret, clock))).status_code == 302
    next_step(clock)

    wrong = pyotp.TOTP(secret).at(clock.now() + timedelta(minutes=5))
    refused = await client.post(
        "/admin/two-factor/disable", data={"_csrf_token": csrf, "code": wrong}
    )
    assert refused.status_code == 400
    assert 'id="code-error"' in refused.text
    off = await client.post(
        "/admin/two-factor/disable",
        data={"_csrf_token": csrf, "code": code(secret, clock)},
        follow_redirects=False,
    )
    assert off.status_code == 303
    assert len(await events(db, "two_factor_enabled", master.user_id)) == 1
    assert len(await events(db, "two_factor_disabled", master.user_id)) == 1
    user = await account(db, master.user_id)
    assert user.totp_secret is None
    assert user.recovery_codes is None
    signed_out(client)
    assert (await password_step(client, master)).status_code == 302, "a password alone again"


async def test_api_tokens_of_a_required_role_work_without_a_second_factor(
    client: Client, db: Database
):
    _token, plain = await tokens.create_token(
        db, CLI, name="hub pull", role="analyst", site_slugs=[], expires_at=None,
        now=(await account(db, (await make_staff(db, "admin")).user_id)).created_at,
    )  # fmt: skip

    answer = await client.get("/api/v1/signals", headers={"Authorization": f"Bearer {plain}"})

    assert answer.status_code == 200, answer.text


# --- the administrator's side ----------------------------------------------------------------


async def test_an_admin_resets_a_second_factor_which_signs_the_account_out_and_it_enrols_again(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, secret, _ = await enrolled_at_sign_in(client, db, clock)
    auditor_browser = client.cookies[SESSION]
    admin = await make_staff(db, "admin")
    signed_out(client)
    csrf = await sign_in(client, admin.email)
    page = await client.get(f"/admin/users/{auditor.user_id}")
    assert "On since" in page.text
    assert f'action="/admin/users/{auditor.user_id}/two-factor-reset"' in page.text

    answer = await client.post(
        f"/admin/users/{auditor.user_id}/two-factor-reset",
        data={"_csrf_token": csrf},
        follow_redirects=False,
    )

    assert answer.status_code == 303
    shown = await client.get(answer.headers["location"])
    assert "The second factor has been reset" in shown.text
    assert "required for this role" in shown.text
    reset = await events(db, "two_factor_reset", auditor.user_id)
    assert json.loads(reset[-1].details) == {"email": auditor.email, "was_enabled": True}
    switch_to(client, auditor_browser)
    gone = await client.get("/admin/audit", follow_redirects=False)
    assert gone.headers["location"].startswith("/admin/sign-in"), "signed out at once"
    signed_out(client)
    again = await password_step(client, auditor)
    assert again.headers["location"] == "/admin/sign-in/enrol"
    assert secret_on((await client.get("/admin/sign-in/enrol")).text) != secret


async def test_an_admin_cannot_reset_their_own_second_factor_from_the_users_page(
    client: Client, db: Database, clock: FrozenClock
):
    admin = await make_staff(db, "admin")
    csrf = await sign_in(client, admin.email)
    page = await client.get("/admin/two-factor/enrol")
    await client.post(
        "/admin/two-factor/enrol",
        data={"_csrf_token": csrf, "code": code(secret_on(page.text), clock)},
    )

    answer = await client.post(
        f"/admin/users/{admin.user_id}/two-factor-reset", data={"_csrf_token": csrf}
    )

    assert answer.status_code == 400
    assert "cannot reset your own second factor" in answer.text
    assert (await account(db, admin.user_id)).totp_enabled_at is not None
    assert await events(db, "two_factor_reset", admin.user_id) == []


async def test_a_security_guard_may_not_reset_anyone_s_second_factor(
    client: Client, db: Database, clock: FrozenClock
):
    auditor, _secret, _ = await enrolled_at_sign_in(client, db, clock)
    guard = await make_staff(db, "security")
    signed_out(client)
    csrf = await sign_in(client, guard.email)

    answer = await client.post(
        f"/admin/users/{auditor.user_id}/two-factor-reset", data={"_csrf_token": csrf}
    )

    assert answer.status_code == 403
    assert (await account(db, auditor.user_id)).totp_enabled_at is not None


async def test_disabling_an_account_ends_its_sessions_at_once(
    client: Client, db: Database, clock: FrozenClock
):
    marina = await make_point(db)
    auditor, _secret, _ = await enrolled_at_sign_in(client, db, clock)
    auditor_browser = client.cookies[SESSION]
    admin = await make_staff(db, "admin", [marina.site_slug])
    signed_out(client)
    csrf = await sign_in(client, admin.email)

    await client.post(
        f"/admin/users/{auditor.user_id}",
        data={"_csrf_token": csrf, "role": "auditor", "active": "no"},
    )

    switch_to(client, auditor_browser)
    gone = await client.get("/admin/audit", follow_redirects=False)
    assert gone.headers["location"].startswith("/admin/sign-in")


async def test_an_admin_s_reset_link_ends_the_account_s_sessions_at_once_but_not_their_own(
    client: Client, db: Database
):
    master = await make_staff(db, "harbour_master")
    await sign_in(client, master.email)
    master_browser = client.cookies[SESSION]
    admin = await make_staff(db, "admin")
    signed_out(client)
    csrf = await sign_in(client, admin.email)

    answer = await client.post(f"/admin/users/{master.user_id}/reset", data={"_csrf_token": csrf})
    own = await client.post(f"/admin/users/{admin.user_id}/reset", data={"_csrf_token": csrf})

    assert answer.status_code == 200
    assert own.status_code == 200
    assert (await client.get("/admin/users")).status_code == 200, "the admin is still signed in"
    switch_to(client, master_browser)
    gone = await client.get("/admin/password", follow_redirects=False)
    assert gone.headers["location"].startswith("/admin/sign-in")
    signed_out(client)
    assert (await password_step(client, master)).status_code == 302, "the old password still works"


async def test_on_https_the_half_done_sign_in_s_cookie_is_secure_and_host_bound(
    db: Database, make_settings, clock: FrozenClock
):
    app = create_app(
        make_settings(base_url="https://register.example.org", two_factor_roles=REQUIRED),
        clock=clock,
    )
    auditor = await make_staff(db, "auditor")
    async with AsyncTestClient(app=app, base_url="https://register.example.org") as secure:
        page = await secure.get("/admin/sign-in")
        answer = await secure.post(
            "/admin/sign-in",
            data={"_csrf_token": csrf_from(page.text), "email": auditor.email,
                  "password": STAFF_PASSWORD},
            follow_redirects=False,
        )  # fmt: skip
        enrol = await secure.get("/admin/sign-in/enrol")

    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-nightreg_sign_in=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "Max-Age=600" in cookie
    assert enrol.status_code == 200


def test_the_command_line_switches_off_the_second_factor_of_an_account_that_lost_its_phone(
    cli_env: object, capsys: pytest.CaptureFixture[str], database_url: str
):
    import asyncio

    from nightreg import cli
    from nightreg.services import twofactor
    from nightreg.services.access import CLI

    secret = "cli-test-" + "s" * 40  # resetting needs no key: it forgets the factor

    async def enrolled(db: Database) -> StaffRef:
        staff = await make_staff(db, "admin")
        enrolment = await twofactor.begin_enrolment(db, staff.user_id, secret_key=secret)
        assert enrolment is not None
        now = datetime.now(UTC)
        code = twofactor.code_at(enrolment.secret, twofactor.time_step(now))
        await twofactor.confirm_enrolment(db, CLI, staff.user_id, code, secret_key=secret, now=now)
        return staff

    async def in_db(work: Any) -> Any:
        db = Database(database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    staff = asyncio.run(in_db(enrolled))

    assert cli.main(["user", "reset-two-factor", staff.email]) == 0
    assert "was switched off" in capsys.readouterr().out
    user = asyncio.run(in_db(lambda db: account(db, staff.user_id)))
    assert not twofactor.is_enabled(user)
    assert cli.main(["user", "reset-two-factor", "nobody@example.invalid"]) == 2
