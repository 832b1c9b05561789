"""Issue 17: guessing in parallel (finding 1), flooding the audit trail while throttled
(finding 5) and the half-done sign-in used twice (finding 11e).

The parallel tests send many requests at once through one test client and check that they
really overlapped (the most requests inside the service at the same moment), that at most five
secrets were checked, and that every other request was told to wait.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
from litestar import Litestar
from sqlalchemy import func, select

from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import AuditEvent
from nightreg.services import auth, twofactor
from nightreg.services.access import CLI
from nightreg.settings import Settings
from tests.factories import SUMMER_EVENING, StaffRef, make_staff
from tests.pages import csrf_from, sign_in

Client = httpx.AsyncClient
PARALLEL = 60
PENDING = "nightreg_sign_in"
SESSION = "nightreg_session"
WRONG_RECOVERY_CODE = "AAAA-BBBB-CCCC-DDDD"


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[Client]:
    """A client that runs the app on the test's own event loop, so that requests sent together
    are handled together (Litestar's test client hands them to its loop one at a time)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c
    await app.state.ctx.db.dispose()


class Overlap:
    """Counts calls of a function and the most that ran at the same moment."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = 0
        self.most = 0

    def enter(self) -> None:
        self.calls += 1
        self.running += 1
        self.most = max(self.most, self.running)

    def leave(self) -> None:
        self.running -= 1


def counted_async(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Overlap:
    """Wrap `owner.name` (a coroutine function); each call lingers a little, as under load."""
    original = getattr(owner, name)
    overlap = Overlap()

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        overlap.enter()
        try:
            await asyncio.sleep(0.02)
            return await original(*args, **kwargs)
        finally:
            overlap.leave()

    monkeypatch.setattr(owner, name, wrapper)
    return overlap


def counted_password_checks(monkeypatch: pytest.MonkeyPatch) -> Overlap:
    """Count argon2 checks of a password (run in threads: a lock keeps the counts right)."""
    import threading

    original: Callable[[str, str], bool] = auth.verify_password
    overlap = Overlap()
    lock = threading.Lock()

    def wrapper(stored: str, password: str) -> bool:
        with lock:
            overlap.enter()
        try:
            time.sleep(0.02)
            return original(stored, password)
        finally:
            with lock:
                overlap.leave()

    monkeypatch.setattr(auth, "verify_password", wrapper)
    return overlap


async def enrolled(
    db: Database, settings: Settings, clock: FrozenClock
) -> tuple[StaffRef, str, list[str]]:
    """An account with a second factor: its TOTP secret and recovery codes."""
    staff = await make_staff(db, "security")
    enrolment = await twofactor.begin_enrolment(db, staff.user_id, secret_key=settings.secret_key)
    assert enrolment is not None
    codes = await twofactor.confirm_enrolment(
        db,
        CLI,
        staff.user_id,
        pyotp.TOTP(enrolment.secret).at(clock.now()),
        secret_key=settings.secret_key,
        now=clock.now(),
    )
    clock.advance(timedelta(seconds=30))
    return staff, enrolment.secret, codes


async def password_step(client: Client, staff: StaffRef) -> str:
    """The password step of a sign-in; returns the sealed half-done sign-in (its cookie)."""
    page = await client.get("/admin/sign-in")
    answer = await client.post(
        "/admin/sign-in",
        data={
            "_csrf_token": csrf_from(page.text),
            "email": staff.email,
            "password": staff.password,
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/admin/sign-in/code", answer.text
    return client.cookies[PENDING]


async def events(db: Database, action: str) -> list[dict[str, Any]]:
    async with db.read() as session:
        found = await session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return [json.loads(d) for d in found]


def statuses(answers: list[Any]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for answer in answers:
        counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
    return counts


# --- finding 1: parallel guesses -------------------------------------------------------------


async def test_sixty_parallel_wrong_passwords_check_at_most_five_and_the_right_one_then_waits(
    client: Client, db: Database, monkeypatch: pytest.MonkeyPatch
):
    staff = await make_staff(db, "harbour_master")
    checks = counted_password_checks(monkeypatch)
    requests = counted_async(monkeypatch, auth, "sign_in")
    csrf = csrf_from((await client.get("/admin/sign-in")).text)

    async def guess(number: int) -> Any:
        return await client.post(
            "/admin/sign-in",
            data={"_csrf_token": csrf, "email": staff.email, "password": f"wrong-guess-{number}"},
            follow_redirects=False,
        )

    answers = await asyncio.gather(*(guess(n) for n in range(PARALLEL)))
    right = await client.post(
        "/admin/sign-in",
        data={"_csrf_token": csrf, "email": staff.email, "password": staff.password},
        follow_redirects=False,
    )

    assert requests.most >= 10, f"the requests did not overlap ({requests.most} at once)"
    assert checks.calls <= 5, f"{checks.calls} passwords were checked"
    counted = statuses(answers)
    assert counted.get(400, 0) == checks.calls
    assert counted.get(429, 0) == PARALLEL - checks.calls
    assert "Too many failed attempts" in next(a.text for a in answers if a.status_code == 429)
    assert right.status_code == 429
    assert SESSION not in client.cookies


async def test_sixty_parallel_wrong_codes_on_one_half_done_sign_in_check_at_most_five(
    client: Client, db: Database, settings: Settings, clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    staff, secret, _codes = await enrolled(db, settings, clock)
    await password_step(client, staff)
    checks = counted_async(monkeypatch, twofactor, "verify")
    requests = counted_async(monkeypatch, auth, "complete_sign_in")
    csrf = csrf_from((await client.get("/admin/sign-in/code")).text)
    wrong = pyotp.TOTP(secret).at(clock.now() + timedelta(minutes=10))

    answers = await asyncio.gather(
        *(
            client.post(
                "/admin/sign-in/code",
                data={"_csrf_token": csrf, "code": wrong},
                follow_redirects=False,
            )
            for _ in range(PARALLEL)
        )
    )

    assert requests.most >= 10, f"the requests did not overlap ({requests.most} at once)"
    assert checks.calls <= 5, f"{checks.calls} codes were checked"
    counted = statuses(answers)
    assert counted.get(400, 0) == checks.calls
    assert counted.get(429, 0) == PARALLEL - checks.calls
    right = await client.post(
        "/admin/sign-in/code",
        data={"_csrf_token": csrf, "code": pyotp.TOTP(secret).at(clock.now())},
        follow_redirects=False,
    )
    assert right.status_code == 429


async def test_sixty_parallel_wrong_recovery_codes_check_at_most_five(
    client: Client, db: Database, settings: Settings, clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    staff, _secret, codes = await enrolled(db, settings, clock)
    await password_step(client, staff)
    checks = counted_async(monkeypatch, twofactor, "verify")
    csrf = csrf_from((await client.get("/admin/sign-in/code")).text)

    answers = await asyncio.gather(
        *(
            client.post(
                "/admin/sign-in/code",
                data={"_csrf_token": csrf, "code": WRONG_RECOVERY_CODE},
                follow_redirects=False,
            )
            for _ in range(PARALLEL)
        )
    )

    assert checks.most >= 2, "the requests did not overlap"
    assert checks.calls <= 5, f"{checks.calls} recovery codes were checked"
    assert statuses(answers).get(429, 0) == PARALLEL - checks.calls
    right = await client.post(
        "/admin/sign-in/code",
        data={"_csrf_token": csrf, "code": codes[0]},
        follow_redirects=False,
    )
    assert right.status_code == 429


async def test_the_current_password_on_the_password_page_is_throttled_and_audited(
    client: Client, db: Database, monkeypatch: pytest.MonkeyPatch
):
    staff = await make_staff(db, "harbour_master")
    csrf = await sign_in(client, staff.email)
    checks = counted_password_checks(monkeypatch)
    requests = counted_async(monkeypatch, auth, "change_password")
    new = "tide-tables-and-ropes-17"

    answers = await asyncio.gather(
        *(
            client.post(
                "/admin/password",
                data={"_csrf_token": csrf, "current": f"guess-{n}", "new": new, "repeat": new},
            )
            for n in range(PARALLEL)
        )
    )

    assert requests.most >= 10, f"the requests did not overlap ({requests.most} at once)"
    assert checks.calls <= 5, f"{checks.calls} current passwords were checked"
    counted = statuses(answers)
    assert counted.get(400, 0) == checks.calls
    assert counted.get(429, 0) == PARALLEL - checks.calls
    waiting = next(a for a in answers if a.status_code == 429)
    assert "Too many failed attempts" in waiting.text
    assert waiting.headers["Retry-After"] == "30"
    assert len(await events(db, "password_change_failed")) == checks.calls
    right = await client.post(
        "/admin/password",
        data={"_csrf_token": csrf, "current": staff.password, "new": new, "repeat": new},
    )
    assert right.status_code == 429


# --- finding 5: refused attempts are counted, not chained ------------------------------------


async def test_attempts_refused_while_throttled_write_one_audit_event_per_window(
    client: Client, db: Database, clock: FrozenClock
):
    staff = await make_staff(db, "harbour_master")
    csrf = csrf_from((await client.get("/admin/sign-in")).text)

    async def guess() -> int:
        answer = await client.post(
            "/admin/sign-in",
            data={"_csrf_token": csrf, "email": staff.email, "password": "wrong-guess"},
            follow_redirects=False,
        )
        return answer.status_code

    async with db.read() as session:
        before = await session.scalar(select(func.count()).select_from(AuditEvent))
    answers = [await guess() for _ in range(100)]
    async with db.read() as session:
        during = await session.scalar(select(func.count()).select_from(AuditEvent))

    assert answers.count(400) == 5
    assert answers.count(429) == 95
    assert during - before == 5, "only the failures before the wait are chained one by one"
    clock.advance(timedelta(minutes=16))
    await guess()  # the next attempt after the window writes its count
    throttled = await events(db, "sign_in_throttled")
    assert len(throttled) == 1
    assert throttled[0]["email"] == staff.email
    assert throttled[0]["refused"] == 95


async def test_a_burst_from_one_address_takes_turns_in_memory_not_in_the_database(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    """Forty attempts at once from one address for unknown e-mails: each is counted in turn,
    and once the address must wait the rest of the burst is refused from memory; the burst
    never queues more than one of its write transactions in front of the staff pages'."""
    import contextlib

    from nightreg.services import throttle

    tally = throttle.RefusalTally()
    writes = Overlap()
    original_write, original_read = db.write, db.read

    @contextlib.asynccontextmanager
    async def write() -> AsyncIterator[Any]:
        writes.enter()
        try:
            async with original_write() as session:
                yield session
        finally:
            writes.leave()

    @contextlib.asynccontextmanager
    async def read() -> AsyncIterator[Any]:
        await asyncio.sleep(0.01)  # under load: every attempt of the burst has read first
        async with original_read() as session:
            yield session

    monkeypatch.setattr(db, "write", write)
    monkeypatch.setattr(db, "read", read)
    attempts = counted_async(monkeypatch, throttle, "begin_attempt")

    results = await asyncio.gather(
        *(
            throttle.begin_attempt(
                db, f"guess-{n}@example.org", "203.0.113.9", SUMMER_EVENING, tally=tally
            )
            for n in range(40)
        )
    )

    assert attempts.most >= 10, "the attempts did not overlap"
    counted = [r for r in results if isinstance(r, throttle.Attempt)]
    assert len(counted) == throttle.ADDRESS_LIMIT
    assert writes.most == 1
    assert writes.calls == throttle.ADDRESS_LIMIT  # the rest read the limit, then memory
    assert not tally._turns  # nothing left behind


# --- finding 11e: the half-done sign-in is good for one second step --------------------------


async def test_a_half_done_sign_in_works_once(
    client: Client, db: Database, settings: Settings, clock: FrozenClock
):
    staff, secret, codes = await enrolled(db, settings, clock)
    pending = await password_step(client, staff)
    first = await client.post(
        "/admin/sign-in/code",
        data={
            "_csrf_token": csrf_from((await client.get("/admin/sign-in/code")).text),
            "code": pyotp.TOTP(secret).at(clock.now()),
        },
        follow_redirects=False,
    )
    assert first.status_code == 302
    csrf = csrf_from((await client.get("/admin/password")).text)

    # The same cookie again, a minute later, with a fresh code or a recovery code.
    clock.advance(timedelta(minutes=1))
    client.cookies.delete(SESSION)
    for typed in (pyotp.TOTP(secret).at(clock.now()), codes[0]):
        client.cookies.set(PENDING, pending, domain="testserver.local")
        again = await client.post(
            "/admin/sign-in/code", data={"_csrf_token": csrf, "code": typed},
            follow_redirects=False,
        )  # fmt: skip
        assert again.status_code == 303
        assert again.headers["location"] == "/admin/sign-in?expired=1"
        assert SESSION not in client.cookies


async def test_a_half_done_sign_in_after_a_recovery_code_works_no_more(
    client: Client, db: Database, settings: Settings, clock: FrozenClock
):
    staff, secret, codes = await enrolled(db, settings, clock)
    pending = await password_step(client, staff)
    csrf = csrf_from((await client.get("/admin/sign-in/code")).text)
    used = await client.post(
        "/admin/sign-in/code", data={"_csrf_token": csrf, "code": codes[0]},
        follow_redirects=False,
    )  # fmt: skip
    assert used.status_code == 302

    client.cookies.delete(SESSION)
    client.cookies.set(PENDING, pending, domain="testserver.local")
    again = await client.post(
        "/admin/sign-in/code",
        data={"_csrf_token": csrf, "code": pyotp.TOTP(secret).at(clock.now())},
        follow_redirects=False,
    )
    assert again.headers["location"] == "/admin/sign-in?expired=1"


async def test_a_half_done_sign_in_replaced_by_a_newer_one_works_no_more(
    client: Client, db: Database, settings: Settings, clock: FrozenClock
):
    staff, secret, _codes = await enrolled(db, settings, clock)
    older = await password_step(client, staff)
    await password_step(client, staff)
    csrf = csrf_from((await client.get("/admin/sign-in/code")).text)

    client.cookies.set(PENDING, older, domain="testserver.local")
    answer = await client.post(
        "/admin/sign-in/code",
        data={"_csrf_token": csrf, "code": pyotp.TOTP(secret).at(clock.now())},
        follow_redirects=False,
    )

    assert answer.headers["location"] == "/admin/sign-in?expired=1"
    assert SESSION not in client.cookies


async def test_attempts_through_several_app_instances_still_count_five(database_url: str):
    """Three engines stand for three app instances (on SQLite: three processes' worth of
    connections, each with a write lock of its own in memory)."""
    from nightreg.services import throttle

    instances = [Database(database_url) for _ in range(3)]
    now = SUMMER_EVENING
    try:
        results = await asyncio.gather(
            *(
                throttle.begin_attempt(instances[n % 3], "target@test.example", f"10.0.0.{n}", now)
                for n in range(30)
            )
        )
    finally:
        for instance in instances:
            await instance.dispose()

    assert sum(isinstance(r, throttle.Attempt) for r in results) == throttle.ACCOUNT_LIMIT
    assert all(r.seconds == 30 for r in results if isinstance(r, throttle.Throttled))


async def test_a_refused_attempt_is_answered_after_a_pause(
    db: Database, make_settings: Callable[..., Settings], clock: FrozenClock
):
    """An attacker who waits for each answer gets few refusals a second (finding 5)."""
    from nightreg.app import create_app

    app = create_app(make_settings(sign_in_refusal_pause_ms=300), clock=clock)
    staff = await make_staff(db, "harbour_master")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        csrf = csrf_from((await c.get("/admin/sign-in")).text)
        took = []
        for _ in range(6):
            began = time.perf_counter()
            answer = await c.post(
                "/admin/sign-in",
                data={"_csrf_token": csrf, "email": staff.email, "password": "wrong-guess"},
            )
            took.append((answer.status_code, time.perf_counter() - began))
    await app.state.ctx.db.dispose()

    assert [status for status, _ in took] == [400] * 5 + [429]
    assert took[5][1] >= 0.3


async def test_refusals_still_open_are_written_when_the_app_stops(app: Litestar, db: Database):
    from litestar.testing import AsyncTestClient

    staff = await make_staff(db, "harbour_master")
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        csrf = csrf_from((await test_client.get("/admin/sign-in")).text)
        for _ in range(8):
            await test_client.post(
                "/admin/sign-in",
                data={"_csrf_token": csrf, "email": staff.email, "password": "wrong-guess"},
            )
        assert await events(db, "sign_in_throttled") == []

    throttled = await events(db, "sign_in_throttled")
    assert [(t["email"], t["refused"]) for t in throttled] == [(staff.email, 3)]
