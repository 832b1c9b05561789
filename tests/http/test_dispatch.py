"""Delivering signals to a real HTTP receiver on 127.0.0.1: signed, retried, once.

The receiver is a small threaded HTTP server the test starts, stops and scripts. Signals are
forwarded through nightreg.services.signals.queue, in the year 2001: the shared test database
holds other tests' signals from 2026, which are then never due here. Each test deletes what it
made (its signals, flags and agreement), so an agreement of ours never covers another test's
rule.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import jsonschema
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, select, update

from nightreg import cli, hubsign
from nightreg.app import create_app
from nightreg.cli import jobs as cli_jobs
from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import AuditEvent, Flag, JobLease, SharingAgreement, Signal, Site
from nightreg.services import dispatch as dispatching
from nightreg.services import hub_post, signals
from nightreg.services.access import CLI, Actor
from nightreg.services.signals import SIGNAL_SCHEMA
from nightreg.settings import Settings
from tests.factories import make_point, make_staff, on_database
from tests.pages import sign_in

SECRET = "hub-secret-for-tests-" + "h" * 32
INSTALLATION = "test-marina"
EPOCH = datetime(2001, 3, 4, 21, 0, tzinfo=UTC)
T = TypeVar("T")
REVIEWER = Actor(kind="user", id=1, name="havenmeester@test.example", role="harbour_master")


# --- the receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str:
        return self.headers.get("Idempotency-Key", "")


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b'{"stored":true}'
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


@dataclass
class Receiver:
    """A hub stand-in: records every request, answers as told, can be down."""

    received: list[Received] = field(default_factory=list)
    answer: Callable[[Received], Answer] = lambda request: Answer()
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub/signals"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Received(dict(self.headers.items()), self.rfile.read(length))
                with receiver._lock:
                    receiver.received.append(request)
                reply = receiver.answer(request)
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        """Down: the port refuses connections until start() again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys(self, uids: set[str] | None = None) -> list[str]:
        return [r.key for r in self.received if uids is None or r.key in uids]

    def of(self, uid: str) -> list[Received]:
        return [r for r in self.received if r.key == uid]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hub = Receiver()
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hub_settings(settings: Settings, receiver: Receiver, make_settings: Any) -> Settings:
    hub: Settings = make_settings(
        hub_url=receiver.url, hub_secret=SECRET, hub_key_id="k1", installation_id=INSTALLATION
    )
    return hub


class MaxJitter:
    """Full jitter drawn at its ceiling, so a test knows the exact wait."""

    def uniform(self, low: float, high: float) -> float:
        return high


# --- signals in the outbox ---------------------------------------------------------------


@dataclass
class Outbox:
    db: Database
    agreement_ids: list[int] = field(default_factory=list)
    flag_ids: list[int] = field(default_factory=list)

    async def forward(self, n: int = 1, *, now: datetime = EPOCH) -> list[Signal]:
        """`n` night-movement flags at a new marina, forwarded under a new agreement."""
        point = await make_point(self.db, now=now)
        async with self.db.write() as session:
            site_id = await session.scalar(select(Site.id).where(Site.slug == point.site_slug))
            assert site_id is not None
            agreement = SharingAgreement(
                name="Signalen jachthavens (test)", recipient="RIEC test",
                reference=f"TEST-{secrets.token_hex(4)}", valid_from=date(2000, 1, 1),
                valid_until=None, rules=["night_movement"],
                fields=["score", "site"], auto_rules=[], keep_days=180,
                created_at=now, created_by="test",
            )  # fmt: skip
            session.add(agreement)
            flags = [
                Flag(
                    site_id=site_id, rule="night_movement", subject=f"test:{secrets.token_hex(6)}",
                    dedupe_key=f"test:{secrets.token_hex(12)}",
                    window_start=now - timedelta(days=3), window_end=now, score=70,
                    reason="Arrived or left at night 3 times within 14 days.",
                    reason_params={}, thresholds={}, status="forwarded",
                    created_at=now, updated_at=now,
                )
                for _ in range(n)
            ]  # fmt: skip
            session.add_all(flags)
            await session.flush()
            self.agreement_ids.append(agreement.id)
            self.flag_ids.extend(f.id for f in flags)
            return [await signals.queue(session, REVIEWER, flag, now=now) for flag in flags]

    async def get(self, uid: str) -> Signal:
        async with self.db.read() as session:
            found = await session.scalar(select(Signal).where(Signal.uid == uid))
        assert found is not None
        return found

    async def events(self, action: str, uid: str) -> list[AuditEvent]:
        async with self.db.read() as session:
            rows = await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == action, AuditEvent.object_type == "signal"
                )
            )
            return [e for e in rows if json.loads(e.details).get("uid") == uid]

    async def clean(self) -> None:
        async with self.db.write() as session:
            if self.flag_ids:
                await session.execute(delete(Signal).where(Signal.flag_id.in_(self.flag_ids)))
                await session.execute(delete(Flag).where(Flag.id.in_(self.flag_ids)))
            if self.agreement_ids:
                await session.execute(
                    delete(SharingAgreement).where(SharingAgreement.id.in_(self.agreement_ids))
                )


@pytest.fixture
async def outbox(db: Database) -> AsyncIterator[Outbox]:
    box = Outbox(db)
    yield box
    await box.clean()


async def run(
    db: Database, settings: Settings, at: datetime, **kwargs: Any
) -> dispatching.DispatchSummary:
    kwargs.setdefault("clock", FrozenClock(at))
    kwargs.setdefault("rng", MaxJitter())
    return await dispatching.dispatch(db, settings, now=at, **kwargs)


# --- delivery ----------------------------------------------------------------------------


async def test_a_signal_is_delivered_once_signed_with_its_stored_bytes(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()
    # Other tests' signals under agreements ended since are withheld first, not counted here.
    await signals.withhold_lapsed(db, now=EPOCH)

    summary = await run(db, hub_settings, EPOCH)
    again = await run(db, hub_settings, EPOCH + timedelta(minutes=1))

    [request] = receiver.received
    assert request.body == signal.body.encode("utf-8")
    verified = hubsign.verify(request.headers, request.body, {(INSTALLATION, "k1"): SECRET}, EPOCH)
    assert (verified.installation_id, verified.key_id) == (INSTALLATION, "k1")
    assert request.headers["Idempotency-Key"] == signal.uid == json.loads(request.body)["id"]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("nightreg/")
    jsonschema.Draft202012Validator(SIGNAL_SCHEMA).validate(json.loads(request.body))
    assert summary.counts() == {"sent": 1, "delivered": 1, "retried": 0, "failed": 0,
                                "pending_left": summary.pending_left}  # fmt: skip
    assert again.sent == 0
    stored = await outbox.get(signal.uid)
    assert (stored.status, stored.delivered_by, stored.delivered_at, stored.attempts) == (
        "delivered", "push", EPOCH, 1,
    )  # fmt: skip
    assert stored.last_status_code == 200


async def test_two_runs_with_the_same_arguments_are_two_runs(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    """A cache left over a refactoring on `dispatch` handed the second call the first one's
    coroutine (already awaited) and kept every run's arguments alive."""
    client = httpx.AsyncClient()
    try:
        first = await dispatching.dispatch(db, hub_settings, now=EPOCH, client=client)
        await outbox.forward()
        second = await dispatching.dispatch(db, hub_settings, now=EPOCH, client=client)
    finally:
        await client.aclose()
    assert second is not first
    assert second.sent == 1


async def test_a_delivery_is_audited_without_the_payload(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()

    await run(db, hub_settings, EPOCH)

    [event] = await outbox.events("signal_delivered", signal.uid)
    details = json.loads(event.details)
    assert event.site_id == signal.site_id
    assert event.object_id == signal.id
    assert details == {
        "uid": signal.uid, "agreement_id": signal.agreement_id, "rule": "night_movement",
        "status_code": 200, "attempts": 1, "by": "push",
    }  # fmt: skip
    assert "Arrived or left" not in event.details


async def test_many_signals_go_out_in_parallel_each_exactly_once(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    made = await outbox.forward(40)
    uids = {s.uid for s in made}

    summary = await run(db, hub_settings, EPOCH, concurrency=8, batch=7)

    assert Counter(receiver.keys(uids)) == Counter(dict.fromkeys(uids, 1))
    assert summary.delivered == 40
    for uid in uids:
        assert (await outbox.get(uid)).status == "delivered"


async def test_signals_go_out_oldest_first(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    made = await outbox.forward(5)

    await run(db, hub_settings, EPOCH, concurrency=1)

    assert receiver.keys() == [s.uid for s in made]


async def test_a_client_passed_in_is_shared_by_the_workers_and_left_open(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    made = await outbox.forward(4)

    async with httpx.AsyncClient() as client:
        summary = await run(db, hub_settings, EPOCH, client=client, concurrency=3)
        assert not client.is_closed

    assert summary.delivered == 4
    assert sorted(receiver.keys()) == sorted(s.uid for s in made)


# --- retries -----------------------------------------------------------------------------


async def test_while_the_hub_is_down_a_signal_waits_with_backoff_and_then_goes_once(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()
    receiver.stop()

    at = EPOCH
    waits = []
    for _ in range(3):
        summary = await run(db, hub_settings, at)
        assert summary.retried == 1
        stored = await outbox.get(signal.uid)
        assert stored.status == "pending"
        assert "ConnectError" in (stored.last_error or "")
        waits.append((stored.next_attempt_at - at).total_seconds())
        # Not due a second early.
        assert (
            await run(db, hub_settings, stored.next_attempt_at - timedelta(seconds=1))
        ).sent == 0
        at = stored.next_attempt_at
    assert waits == [30.0, 60.0, 120.0]

    receiver.start()
    summary = await run(db, hub_settings, at)
    await run(db, hub_settings, at + timedelta(hours=2))

    assert summary.delivered == 1
    assert receiver.keys() == [signal.uid]
    stored = await outbox.get(signal.uid)
    assert (stored.status, stored.attempts, stored.last_error) == ("delivered", 4, None)


async def test_every_attempt_carries_the_same_key_and_bytes_with_a_fresh_signature(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()
    answers = iter([Answer(503, b"maintenance"), Answer(500, b"oops"), Answer(200)])
    receiver.answer = lambda request: next(answers)

    at = EPOCH
    for _ in range(3):
        await run(db, hub_settings, at)
        at = (await outbox.get(signal.uid)).next_attempt_at

    attempts = receiver.of(signal.uid)
    assert len(attempts) == 3
    assert {r.body for r in attempts} == {signal.body.encode("utf-8")}
    assert len({r.headers["Nightreg-Signature"] for r in attempts}) == 3
    assert (await outbox.get(signal.uid)).status == "delivered"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_a_status_that_may_pass_is_tried_again_later(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings, status: int
):
    [signal] = await outbox.forward()
    receiver.answer = lambda request: Answer(status, b"try later")

    summary = await run(db, hub_settings, EPOCH)

    stored = await outbox.get(signal.uid)
    assert summary.retried == 1
    assert (stored.status, stored.attempts, stored.last_status_code) == ("pending", 1, status)
    assert stored.last_error == f"HTTP {status}: try later"
    assert stored.next_attempt_at == EPOCH + timedelta(seconds=30)


async def test_no_answer_in_time_is_tried_again(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings, make_settings: Any
):
    [signal] = await outbox.forward()
    receiver.answer = lambda request: Answer(delay=1.5)
    impatient = make_settings(
        hub_url=receiver.url, hub_secret=SECRET, hub_timeout_seconds=1,
        installation_id=INSTALLATION,
    )  # fmt: skip

    summary = await run(db, impatient, EPOCH)

    stored = await outbox.get(signal.uid)
    assert summary.retried == 1
    assert stored.status == "pending"
    assert stored.last_status_code is None
    assert (stored.last_error or "").startswith("no answer within 1 s")


async def test_429_with_retry_after_waits_as_long_as_the_hub_asks_within_an_hour(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    first, second = await outbox.forward(2)
    waits = {first.uid: "120", second.uid: "7200"}
    receiver.answer = lambda request: Answer(429, b"", (("Retry-After", waits[request.key]),))

    await run(db, hub_settings, EPOCH, concurrency=1)

    assert (await outbox.get(first.uid)).next_attempt_at == EPOCH + timedelta(seconds=120)
    assert (await outbox.get(second.uid)).next_attempt_at == EPOCH + timedelta(hours=1)
    assert (await run(db, hub_settings, EPOCH + timedelta(seconds=119))).sent == 0
    receiver.answer = lambda request: Answer()
    assert (await run(db, hub_settings, EPOCH + timedelta(seconds=120))).delivered == 1


async def test_after_seven_days_of_failures_the_signal_is_given_up(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()
    receiver.answer = lambda request: Answer(503, b"down", (("Retry-After", "3600"),))

    await run(db, hub_settings, EPOCH)
    await run(db, hub_settings, EPOCH + timedelta(days=7, minutes=-10))
    stored = await outbox.get(signal.uid)
    assert stored.next_attempt_at == EPOCH + timedelta(days=7)  # the last try, on the deadline

    summary = await run(db, hub_settings, EPOCH + timedelta(days=7))
    await run(db, hub_settings, EPOCH + timedelta(days=8))

    stored = await outbox.get(signal.uid)
    assert summary.failed == summary.gave_up == 1
    assert stored.status == "failed"
    assert (stored.last_error or "").startswith(
        "gave up after 3 attempts over 7 days; last: HTTP 503"
    )
    assert len(receiver.of(signal.uid)) == 3
    [event] = await outbox.events("signal_failed", signal.uid)
    assert json.loads(event.details)["reason"] == "gave_up"


async def test_when_the_hub_cannot_be_reached_the_run_stops_and_the_rest_stay_due(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    made = await outbox.forward(20)
    receiver.stop()
    monkeypatch.setattr(dispatching, "UNREACHABLE_AFTER", 5)

    summary = await run(db, hub_settings, EPOCH, concurrency=2)

    untouched = [s for s in made if (await outbox.get(s.uid)).attempts == 0]
    assert summary.stopped == "hub_unreachable"
    assert summary.counts()["hub_unreachable"] == 1
    assert 5 <= summary.sent < 20
    assert len(untouched) == 20 - summary.sent
    for s in untouched:
        assert (await outbox.get(s.uid)).next_attempt_at == EPOCH


async def test_a_run_that_used_its_time_leaves_the_rest_due_for_the_next_one(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    made = await outbox.forward(3)

    summary = await run(db, hub_settings, EPOCH, time_budget=0.0)

    assert summary.stopped == "time_budget"
    assert summary.sent == 0
    assert receiver.received == []
    for s in made:
        assert (await outbox.get(s.uid)).next_attempt_at == EPOCH


# --- refusals ----------------------------------------------------------------------------


async def test_a_400_stops_the_retries_and_keeps_the_hubs_answer(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()
    receiver.answer = lambda request: Answer(400, b"schema violation: " + b"x" * 1000)

    summary = await run(db, hub_settings, EPOCH)
    later = await run(db, hub_settings, EPOCH + timedelta(days=1))

    stored = await outbox.get(signal.uid)
    assert (summary.failed, later.sent) == (1, 0)
    assert (stored.status, stored.attempts, stored.last_status_code) == ("failed", 1, 400)
    assert stored.last_error == "HTTP 400: schema violation: " + "x" * (300 - 18)
    [event] = await outbox.events("signal_failed", signal.uid)
    assert json.loads(event.details) == {
        "uid": signal.uid, "agreement_id": signal.agreement_id, "rule": "night_movement",
        "status_code": 400, "attempts": 1, "reason": "refused",
    }  # fmt: skip


@pytest.mark.parametrize("status", [301, 401, 403, 404, 409, 413, 422])
async def test_any_other_answer_fails_the_signal_at_once(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings, status: int
):
    [signal] = await outbox.forward()
    receiver.answer = lambda request: Answer(status, b"no", (("Location", "http://elsewhere/"),))

    await run(db, hub_settings, EPOCH)

    stored = await outbox.get(signal.uid)
    assert (stored.status, stored.last_status_code) == ("failed", status)
    assert len(receiver.of(signal.uid)) == 1


# --- crashes and stray runs --------------------------------------------------------------


async def test_a_crash_between_sending_and_recording_resends_what_the_hub_can_deduplicate(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    [signal] = await outbox.forward()
    recorded = dispatching.record_outcomes

    async def crash(*args: Any, **kwargs: Any) -> list[bool]:
        raise RuntimeError("the process died before the delivery was recorded")

    monkeypatch.setattr(dispatching, "record_outcomes", crash)
    with pytest.raises(RuntimeError, match="process died"):
        await run(db, hub_settings, EPOCH)
    assert (await outbox.get(signal.uid)).status == "pending"

    monkeypatch.setattr(dispatching, "record_outcomes", recorded)
    summary = await run(db, hub_settings, EPOCH + timedelta(minutes=1))

    first, second = receiver.of(signal.uid)
    assert first.key == second.key == signal.uid
    assert first.body == second.body == signal.body.encode("utf-8")
    # What the hub keeps after deduplicating on the key: one signal.
    assert len({r.key for r in receiver.received}) == 1
    assert summary.delivered == 1
    stored = await outbox.get(signal.uid)
    assert (stored.status, stored.attempts) == ("delivered", 1)
    assert len(await outbox.events("signal_delivered", signal.uid)) == 1


async def test_two_dispatchers_at_once_record_each_delivery_once(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings, database_url: str
):
    made = await outbox.forward(6)
    other = Database(database_url)
    try:
        first, second = await asyncio.gather(
            run(db, hub_settings, EPOCH), run(other, hub_settings, EPOCH)
        )
    finally:
        await other.dispose()

    assert first.delivered + second.delivered == 6
    assert first.skipped + second.skipped == first.sent + second.sent - 6
    for s in made:
        assert (await outbox.get(s.uid)).status == "delivered"
        assert len(await outbox.events("signal_delivered", s.uid)) == 1


async def test_a_signal_the_hub_acknowledged_by_pull_meanwhile_is_not_recorded_again(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()

    def pulled_meanwhile(request: Received) -> Answer:
        async def ack() -> None:
            pulling = Database(db.url)
            async with pulling.write() as session:
                await session.execute(
                    update(Signal).where(Signal.uid == request.key)
                    .values(status="delivered", delivered_by="pull", delivered_at=EPOCH)
                )  # fmt: skip
            await pulling.dispose()

        asyncio.run(ack())
        return Answer()

    receiver.answer = pulled_meanwhile
    summary = await run(db, hub_settings, EPOCH)

    assert (summary.delivered, summary.skipped) == (0, 1)
    assert (await outbox.get(signal.uid)).delivered_by == "pull"
    assert await outbox.events("signal_delivered", signal.uid) == []


# --- no hub ------------------------------------------------------------------------------


async def test_without_a_hub_url_nothing_is_sent_and_the_summary_says_so(
    db: Database, outbox: Outbox, receiver: Receiver, settings: Settings
):
    [signal] = await outbox.forward()

    summary = await run(db, settings, EPOCH)

    assert receiver.received == []
    assert summary.counts()["push_off"] == 1
    assert summary.counts()["pending_left"] >= 1
    assert "wait for the hub to pull them" in summary.line()
    stored = await outbox.get(signal.uid)
    assert (stored.status, stored.attempts) == ("pending", 0)


# --- backoff, the pure part --------------------------------------------------------------


def test_the_backoff_ceiling_doubles_from_thirty_seconds_and_stops_at_an_hour():
    ceilings = [hub_post.backoff(n, MaxJitter()).total_seconds() for n in range(1, 10)]
    assert ceilings == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert hub_post.backoff(500, MaxJitter()).total_seconds() == 3600


def test_the_backoff_is_drawn_below_its_ceiling():
    import random

    draws = [hub_post.backoff(3, random.Random(seed)).total_seconds() for seed in range(50)]
    assert all(0 <= d <= 120 for d in draws)
    assert len(set(draws)) > 40


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert hub_post.retry_after_seconds("120", now) == 120
    assert hub_post.retry_after_seconds("Sun, 29 Nov 2026 08:05:00 GMT", now) == 300
    assert hub_post.retry_after_seconds("Sun, 29 Nov 2026 07:00:00 GMT", now) == 0
    assert hub_post.retry_after_seconds("soon", now) is None
    assert hub_post.retry_after_seconds(None, now) is None


# --- the job: CLI and the Jobs page ------------------------------------------------------


async def free_lease(db: Database) -> None:
    """Other tests may have run dispatch at a later (frozen) time: its lease says so."""
    async with db.write() as session:
        await session.execute(
            update(JobLease)
            .where(JobLease.job == "dispatch")
            .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC), last_slot=None)
        )


@pytest.fixture
def cli_outbox(
    cli_env: object, database_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Outbox]:
    """The CLI's environment pointing at the receiver, at EPOCH, with a free lease."""
    monkeypatch.setenv("NIGHTREG_HUB_URL", receiver.url)
    monkeypatch.setenv("NIGHTREG_HUB_SECRET", SECRET)
    monkeypatch.setenv("NIGHTREG_INSTALLATION_ID", INSTALLATION)
    monkeypatch.setattr(cli_jobs, "SystemClock", lambda: FrozenClock(EPOCH))
    on_database(database_url, free_lease)
    box = Outbox(db=None)  # type: ignore[arg-type]
    yield box

    async def clean(db: Database) -> None:
        box.db = db
        await box.clean()

    on_database(database_url, clean)


def forward_now(database_url: str, box: Outbox, n: int = 1) -> list[Signal]:
    async def forward(db: Database) -> list[Signal]:
        box.db = db
        return await box.forward(n)

    return on_database(database_url, forward)


def test_the_cli_runs_dispatch_and_prints_what_it_delivered(
    cli_outbox: Outbox, database_url: str, receiver: Receiver, capsys: pytest.CaptureFixture[str]
):
    made = forward_now(database_url, cli_outbox, 2)

    code = cli.main(["jobs", "run", "dispatch"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("dispatch done in")
    assert "delivered 2" in out
    assert sorted(receiver.keys()) == sorted(s.uid for s in made)


def test_the_cli_exits_1_and_points_to_the_jobs_page_when_the_hub_refuses_a_signal(
    cli_outbox: Outbox, database_url: str, receiver: Receiver, capsys: pytest.CaptureFixture[str]
):
    receiver.answer = lambda request: Answer(422, b"unknown schema")
    forward_now(database_url, cli_outbox)

    code = cli.main(["jobs", "run", "dispatch"])

    out = capsys.readouterr().out
    assert code == 1
    assert "failed 1" in out
    assert "/admin/jobs" in out


def test_the_cli_says_push_is_off_without_a_hub_url(
    cli_outbox: Outbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.delenv("NIGHTREG_HUB_URL")

    assert cli.main(["jobs", "run", "dispatch"]) == 0
    out = capsys.readouterr().out
    assert "push is off (no NIGHTREG_HUB_URL)" in out
    assert "wait for the hub to pull them" in out


async def test_run_now_on_the_jobs_page_delivers_and_a_refusal_shows_there(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    clock = FrozenClock(EPOCH)
    app = create_app(hub_settings, clock=clock)
    good, bad = await outbox.forward(2)
    receiver.answer = lambda request: (
        Answer(400, b"field 'score' not allowed by agreement") if request.key == bad.uid
        else Answer()
    )  # fmt: skip
    await free_lease(db)
    admin = await make_staff(db, "admin")

    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        csrf = await sign_in(client, admin.email)
        answer = await client.post(
            "/admin/jobs/dispatch/run", data={"_csrf_token": csrf}, follow_redirects=False
        )
        page = await client.get(answer.headers["location"])

    assert answer.headers["location"] == "/admin/jobs?ran=dispatch-ok"
    assert (await outbox.get(good.uid)).status == "delivered"
    assert (await outbox.get(bad.uid)).status == "failed"
    assert page.status_code == 200
    assert "Signals to the hub" in page.text
    assert f"http://127.0.0.1:{receiver.port}" in page.text
    failed_table = page.text.split('id="failed-signals"', 1)[1].split("</table>", 1)[0]
    assert bad.uid in failed_table
    assert "HTTP 400: field &#39;score&#39; not allowed by agreement" in failed_table
    assert good.uid not in failed_table
    # No payload on the page: the flag's reason stays in the signal.
    assert "Arrived or left at night" not in page.text


async def test_the_jobs_page_lists_signals_waiting_to_be_tried_again_with_their_error(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()
    receiver.answer = lambda request: Answer(503, b"hub in maintenance")
    await run(db, hub_settings, EPOCH)
    app = create_app(hub_settings, clock=FrozenClock(EPOCH))
    admin = await make_staff(db, "admin")

    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        await sign_in(client, admin.email)
        page = await client.get("/admin/jobs")

    waiting = page.text.split('id="retrying-signals"', 1)[1].split("</table>", 1)[0]
    assert signal.uid in waiting
    assert "HTTP 503: hub in maintenance" in waiting


async def test_the_jobs_page_says_when_sending_is_off(client: AsyncTestClient, db: Database):
    admin = await make_staff(db, "admin")
    await sign_in(client, admin.email)

    page = await client.get("/admin/jobs")

    assert "Sending is off (NIGHTREG_HUB_URL is not set)" in page.text
    assert "* * * * *" in page.text


async def test_a_signal_whose_agreement_ended_before_delivery_is_withheld_not_sent(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()
    async with db.write() as session:
        agreement = await session.get(SharingAgreement, signal.agreement_id)
        assert agreement is not None
        agreement.ended_at = EPOCH + timedelta(seconds=30)

    summary = await run(db, hub_settings, EPOCH + timedelta(minutes=1))

    assert receiver.received == []
    assert summary.withheld >= 1
    stored = await outbox.get(signal.uid)
    assert stored.status == "failed"
    assert stored.last_error is not None
    assert agreement.reference in stored.last_error
    async with db.read() as session:
        withheld = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "signals_withheld",
                AuditEvent.object_id == signal.agreement_id,
            )
        )
    assert withheld is not None
    assert json.loads(withheld.object_ids) == [signal.id]


async def test_an_admin_sends_a_refused_signal_again_once_the_hub_is_fixed(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()
    receiver.answer = lambda request: Answer(401, b"unknown key id")
    await run(db, hub_settings, EPOCH)
    assert (await outbox.get(signal.uid)).status == "failed"
    app = create_app(hub_settings, clock=FrozenClock(EPOCH + timedelta(minutes=5)))
    admin = await make_staff(db, "admin")

    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        csrf = await sign_in(client, admin.email)
        page = await client.get("/admin/jobs")
        answer = await client.post(
            f"/admin/jobs/signals/{signal.uid}/retry",
            data={"_csrf_token": csrf},
            follow_redirects=False,
        )
        again = await client.post(
            f"/admin/jobs/signals/{signal.uid}/retry",
            data={"_csrf_token": csrf},
            follow_redirects=False,
        )

    assert f'action="/admin/jobs/signals/{signal.uid}/retry"' in page.text
    assert answer.headers["location"] == "/admin/jobs?retried=ok#outbox"
    assert again.headers["location"] == "/admin/jobs?retried=refused#outbox"  # pending now
    receiver.answer = lambda request: Answer()
    await run(db, hub_settings, EPOCH + timedelta(minutes=6))
    stored = await outbox.get(signal.uid)
    assert stored.status == "delivered"
    assert [r.headers["Idempotency-Key"] for r in receiver.received] == [signal.uid] * 2
    async with db.read() as session:
        retried = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "signal_retried", AuditEvent.object_id == signal.id
            )
        )
    assert retried is not None
    assert "unknown key id" in json.loads(retried.details)["error"]


async def test_a_withheld_signal_is_never_sent_again(
    db: Database, outbox: Outbox, receiver: Receiver, hub_settings: Settings
):
    [signal] = await outbox.forward()
    async with db.write() as session:
        agreement = await session.get(SharingAgreement, signal.agreement_id)
        assert agreement is not None
        agreement.ended_at = EPOCH
    await run(db, hub_settings, EPOCH + timedelta(minutes=1))

    with pytest.raises(signals.RetryRefused):
        await signals.retry(db, CLI, signal.uid, now=EPOCH + timedelta(minutes=2))
    assert (await outbox.get(signal.uid)).status == "failed"
    assert receiver.received == []
