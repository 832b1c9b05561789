"""The hub contract: our real dispatch against a hub written from docs/hub.md's text alone.

The receiver below never imports nightreg.hubsign: it checks every request with its own HMAC
code, as docs/hub.md tells a hub engineer to ("The signature, step by step"), validates the body
against the JSON Schema printed in docs/hub.md, deduplicates on the Idempotency-Key, and answers
as "What to answer" says. It runs in-process behind httpx.MockTransport and can be told to fail
in every way the issue lists: 500, 503 and 429 with Retry-After, time-outs, closed connections,
storing a signal and then crashing before it answers, being down, a key rotation, a clock that
drifts. Time is injected (each run's clock is frozen; runs jump to the next due attempt), so
the backoffs cost nothing.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import select

from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import Signal
from nightreg.services import dispatch as dispatching
from nightreg.settings import Settings
from tests.http.test_dispatch import EPOCH, MaxJitter, Outbox

DOC = (Path(__file__).resolve().parents[2] / "docs" / "hub.md").read_text(encoding="utf-8")
INSTALLATION = "jachthaven-contract"
OLD_KEY = (INSTALLATION, f"{INSTALLATION}-k1")
NEW_KEY = (INSTALLATION, f"{INSTALLATION}-k2")
OLD_SECRET = "contract-old-secret-" + "o" * 32
NEW_SECRET = "contract-new-secret-" + "n" * 32
URL = "https://hub.contract.invalid/signals"


def _documented_schema() -> dict[str, Any]:
    block = re.search(r"<!-- signal-schema:start[^\n]*\n```json\n(.*?)\n```", DOC, re.DOTALL)
    assert block, "docs/hub.md has no signal schema"
    schema: dict[str, Any] = json.loads(block.group(1))
    return schema


SCHEMA = jsonschema.Draft202012Validator(_documented_schema())


# --- the hub, from the text --------------------------------------------------------------


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def hub_verify(
    headers: httpx.Headers, body: bytes, keys: dict[tuple[str, str], str], now: float
) -> tuple[str, str]:
    """docs/hub.md, "To check a request": (installation, key id) or Refused."""
    installation = headers.get("nightreg-installation", "")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", installation):
        raise Refused("bad_signature")
    key_id, t, v2 = "", "", []
    for part in headers.get("nightreg-signature", "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "keyid":
            key_id = value
        elif name == "t":
            t = value
        elif name == "v2":
            v2.append(value)
    if not key_id or not re.fullmatch(r"[0-9]{1,12}", t) or not v2:
        raise Refused("bad_signature")
    secret = keys.get((installation, key_id))
    if secret is None:
        raise Refused("bad_signature")
    if abs(now - int(t)) > 300:
        raise Refused("stale_timestamp")
    mac = hmac.new(secret.encode(), t.encode() + b"." + installation.encode() + b"." + body,
                   hashlib.sha256).hexdigest()  # fmt: skip
    if not any(hmac.compare_digest(mac.encode(), s.encode()) for s in v2):
        raise Refused("bad_signature")
    return installation, key_id


@dataclass
class Seen:
    uid: str
    body: bytes
    at: float  # the hub's clock
    key_id: str = ""
    outcome: str = ""  # stored | repeat | refused:<code> | fault:<name>


@dataclass
class Hub:
    keys: dict[tuple[str, str], str] = field(default_factory=lambda: {OLD_KEY: OLD_SECRET})
    now: float = 0.0  # set by the test to each run's time
    drift: float = 0.0  # the hub's clock minus the sender's
    stale_answer: int = 401  # or 425
    down: bool = False
    # Faults to play, per signal id, one per request, before it is answered normally.
    script: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    stored: dict[str, bytes] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    pause: float = 0.0  # seconds each answer takes (concurrency tests)

    def clock(self) -> float:
        return self.now + self.drift

    def answer(self, status: int, body: Any, **headers: str) -> httpx.Response:
        date = email.utils.formatdate(self.clock(), usegmt=True)
        return httpx.Response(status, json=body, headers={"Date": date, **headers})

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.pause:
                await asyncio.sleep(self.pause)
            return self.receive(request)
        finally:
            self.in_flight -= 1

    def receive(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("Connection refused", request=request)
        body = request.content
        uid = request.headers.get("idempotency-key", "")
        seen = Seen(uid, body, self.clock())
        self.seen.append(seen)
        fault = self.script[uid].pop(0) if self.script[uid] else ""
        if fault in {"timeout", "closed"}:
            seen.outcome = f"fault:{fault}"
            if fault == "timeout":
                raise httpx.ReadTimeout("no answer in time", request=request)
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        if fault in {"500", "503", "429"}:
            seen.outcome = f"fault:{fault}"
            extra = {"Retry-After": "600"} if fault == "503" else {}
            if fault == "429":
                extra = {"Retry-After": email.utils.formatdate(self.clock() + 900, usegmt=True)}
            return self.answer(int(fault), {"code": "try_later"}, **extra)
        try:
            _installation, seen.key_id = hub_verify(request.headers, body, self.keys, self.clock())
        except Refused as refused:
            seen.outcome = f"refused:{refused.code}"
            if refused.code == "stale_timestamp" and self.stale_answer == 425:
                return self.answer(425, {"code": refused.code})
            return self.answer(401, {"code": refused.code})
        signal = json.loads(body)
        SCHEMA.validate(signal)
        if signal["id"] != uid:
            seen.outcome = "refused:idempotency_key_mismatch"
            return self.answer(422, {"code": "idempotency_key_mismatch"})
        if uid in self.stored:
            seen.outcome = "repeat"
            assert self.stored[uid] == body, "a repeat with other bytes"
            return self.answer(200, {"stored": True, "repeat": True})
        self.stored[uid] = body
        seen.outcome = "stored"
        if fault == "stored_then_crash":
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        return self.answer(201, {"stored": True})

    def of(self, uid: str) -> list[Seen]:
        return [s for s in self.seen if s.uid == uid]


# --- driving our dispatch ----------------------------------------------------------------


@pytest.fixture
async def outbox(db: Database) -> AsyncIterator[Outbox]:
    box = Outbox(db)
    yield box
    await box.clean()


@pytest.fixture
def hub() -> Hub:
    return Hub()


@pytest.fixture
def sender(make_settings: Any) -> Settings:
    settings: Settings = make_settings(
        hub_url=URL, hub_secret=OLD_SECRET, hub_key_id="", installation_id=INSTALLATION
    )
    return settings


async def pending(db: Database, uids: set[str]) -> list[Signal]:
    async with db.read() as session:
        rows = await session.scalars(
            select(Signal).where(Signal.uid.in_(uids), Signal.status == "pending")
        )
        return list(rows)


async def statuses(db: Database, uids: set[str]) -> Counter[str]:
    async with db.read() as session:
        rows = await session.scalars(select(Signal.status).where(Signal.uid.in_(uids)))
        return Counter(rows)


@dataclass
class Driver:
    db: Database
    hub: Hub
    settings: Settings
    at: datetime = EPOCH
    runs: int = 0

    async def run(self, **kwargs: Any) -> dispatching.DispatchSummary:
        self.hub.now = self.at.timestamp()
        self.runs += 1
        async with httpx.AsyncClient(transport=httpx.MockTransport(self.hub.handle)) as client:
            return await dispatching.dispatch(
                self.db, self.settings, now=self.at, client=client,
                clock=FrozenClock(self.at), rng=MaxJitter(), **kwargs,
            )  # fmt: skip

    async def until_delivered(self, uids: set[str], max_runs: int = 40) -> None:
        """Run the job, jumping to each next due attempt, until nothing of `uids` is pending."""
        for _ in range(max_runs):
            await self.run()
            waiting = await pending(self.db, uids)
            if not waiting:
                return
            self.next_due(waiting)
        pytest.fail(f"still pending after {max_runs} runs")

    def next_due(self, waiting: list[Signal]) -> None:
        # The job runs every minute: at least a minute later, or when the first one is due.
        self.at = max(self.at + timedelta(minutes=1), min(s.next_attempt_at for s in waiting))


@pytest.fixture
def driver(db: Database, hub: Hub, sender: Settings) -> Driver:
    return Driver(db, hub, sender)


def assert_contract_held(hub: Hub, made: list[Signal], crashes: Counter[str]) -> None:
    """Nothing lost; identical bytes on every attempt; a repeat only after a stored-then-failed."""
    for signal in made:
        attempts = hub.of(signal.uid)
        assert {s.body for s in attempts} == {signal.body.encode("utf-8")}, signal.uid
        assert hub.stored[signal.uid] == signal.body.encode("utf-8")
        outcomes = Counter(s.outcome for s in attempts)
        assert outcomes["stored"] == 1
        assert outcomes["repeat"] == crashes[signal.uid], (signal.uid, outcomes)
        assert not [o for o in outcomes if o.startswith("refused:bad")], outcomes


# --- the contract ------------------------------------------------------------------------


async def test_every_signal_arrives_named_signed_and_valid_by_the_hubs_own_checks(
    db: Database, outbox: Outbox, hub: Hub, driver: Driver, caplog: pytest.LogCaptureFixture
):
    made = await outbox.forward(5)
    uids = {s.uid for s in made}
    hub.drift = 59.0  # within a minute: nothing to say about the clocks

    with caplog.at_level(logging.WARNING, logger="nightreg.dispatch"):
        await driver.until_delivered(uids, max_runs=1)

    assert not [r for r in caplog.records if "clock" in r.getMessage()]

    assert set(hub.stored) == uids
    assert {s.outcome for s in hub.seen} == {"stored"}
    assert {s.key_id for s in hub.seen} == {f"{INSTALLATION}-k1"}
    assert await statuses(db, uids) == Counter(delivered=5)
    assert_contract_held(hub, made, Counter())


async def test_through_every_fault_nothing_is_lost_and_only_a_stored_then_failed_repeats(
    db: Database, outbox: Outbox, hub: Hub, driver: Driver
):
    scripts = [
        ["500", "500"],
        ["503"],
        ["429"],
        ["timeout", "timeout"],
        ["closed"],
        ["stored_then_crash"],
        ["timeout", "stored_then_crash", "503"],
        ["closed", "500", "429", "timeout"],
        [],
    ]
    made = await outbox.forward(len(scripts))
    for signal, script in zip(made, scripts, strict=True):
        hub.script[signal.uid] = list(script)
    uids = {s.uid for s in made}

    await driver.until_delivered(uids)

    assert await statuses(db, uids) == Counter(delivered=len(made))
    crashes = Counter(
        {s.uid: script.count("stored_then_crash") for s, script in zip(made, scripts, strict=True)}
    )
    assert_contract_held(hub, made, crashes)
    # Retry-After was honoured: 503 asked for 600 s, 429 (as an HTTP date) for 900 s.
    for signal, script, wait in ((made[1], "503", 600), (made[2], "429", 900)):
        first, second = hub.of(signal.uid)[:2]
        assert first.outcome == f"fault:{script}"
        assert second.at - first.at >= wait


async def test_a_sender_crash_after_the_hub_stored_resends_the_same_bytes_once(
    db: Database, outbox: Outbox, hub: Hub, driver: Driver, monkeypatch: pytest.MonkeyPatch
):
    made = await outbox.forward(3)
    uids = {s.uid for s in made}
    recorded = dispatching.record_outcomes

    async def killed(*args: Any, **kwargs: Any) -> list[bool]:
        raise RuntimeError("the dispatcher died after the POSTs, before recording them")

    monkeypatch.setattr(dispatching, "record_outcomes", killed)
    with pytest.raises(RuntimeError):
        await driver.run()
    monkeypatch.setattr(dispatching, "record_outcomes", recorded)
    driver.at += timedelta(minutes=1)
    await driver.until_delivered(uids)

    assert_contract_held(hub, made, Counter(dict.fromkeys(uids, 1)))


async def test_while_the_hub_is_down_signals_wait_and_then_arrive_once(
    db: Database, outbox: Outbox, hub: Hub, driver: Driver
):
    made = await outbox.forward(4)
    uids = {s.uid for s in made}
    hub.down = True
    for _ in range(5):
        await driver.run()
        driver.next_due(await pending(db, uids))
    assert await statuses(db, uids) == Counter(pending=4)
    hub.down = False

    await driver.until_delivered(uids)

    assert len(hub.seen) == len(made)  # nothing reached a hub that was down
    assert_contract_held(hub, made, Counter())


async def test_a_key_rotation_keeps_every_signal_flowing_and_retries_carry_the_new_key(
    db: Database, outbox: Outbox, hub: Hub, driver: Driver
):
    made = await outbox.forward(4)
    uids = {s.uid for s in made}
    for signal in made[:2]:
        hub.script[signal.uid] = ["503"]  # these wait across the rotation
    await driver.run()
    assert len(hub.stored) == 2

    # 1. the hub accepts both keys; 2. the sender switches and restarts; 3. the hub drops k1.
    hub.keys[NEW_KEY] = NEW_SECRET
    driver.settings = replace(driver.settings, hub_secret=NEW_SECRET, hub_key_id=NEW_KEY[1])
    del hub.keys[OLD_KEY]
    driver.next_due(await pending(db, uids))
    await driver.until_delivered(uids)

    keys_used = [s.key_id for s in hub.seen if s.outcome == "stored"]
    assert Counter(keys_used) == Counter({OLD_KEY[1]: 2, NEW_KEY[1]: 2})
    assert_contract_held(hub, made, Counter())


async def test_a_key_the_hub_no_longer_accepts_fails_the_signal_for_the_admins_to_see(
    db: Database, outbox: Outbox, hub: Hub, driver: Driver
):
    [signal] = await outbox.forward()
    hub.keys = {NEW_KEY: NEW_SECRET}  # the hub dropped k1 before the sender switched

    await driver.run()

    assert await statuses(db, {signal.uid}) == Counter(failed=1)
    assert hub.of(signal.uid)[0].outcome == "refused:bad_signature"


@pytest.mark.parametrize("answer", [401, 425])
async def test_a_hub_whose_clock_drifts_gets_every_signal_once_its_clock_is_back(
    db: Database, outbox: Outbox, hub: Hub, driver: Driver, caplog: pytest.LogCaptureFixture,
    answer: int,
):  # fmt: skip
    made = await outbox.forward(2)
    uids = {s.uid for s in made}
    hub.drift, hub.stale_answer = 600.0, answer  # ten minutes ahead

    with caplog.at_level(logging.WARNING, logger="nightreg.dispatch"):
        await driver.run()
    [warning] = [r for r in caplog.records if "clock" in r.getMessage()]  # once a run
    assert "our clock 2001-03-04T21:00:00Z" in warning.getMessage()
    assert "the hub's Date 2001-03-04T21:10:00Z (+600 s)" in warning.getMessage()
    # Retried with backoff, also after the seven days at which other failures give up.
    for at in (EPOCH + timedelta(hours=1), EPOCH + timedelta(days=8)):
        driver.at = at
        await driver.run()
        waiting = await pending(db, uids)
        assert len(waiting) == 2
        assert all(s.next_attempt_at > at for s in waiting)

    stored = waiting[0]
    assert (stored.attempts, stored.last_status_code) == (3, answer)
    error = stored.last_error or ""
    assert "stale" in error
    assert "our clock 2001-03-12T21:00:00Z, the hub's Date 2001-03-12T21:10:00Z" in error

    hub.drift = 0.0
    driver.next_due(await pending(db, uids))
    await driver.until_delivered(uids)

    assert await statuses(db, uids) == Counter(delivered=2)
    assert_contract_held(hub, made, Counter())
    assert not [s for s in hub.seen if s.outcome.startswith("refused:bad")]


async def test_up_to_the_configured_number_of_posts_are_in_flight_at_once(
    db: Database, outbox: Outbox, hub: Hub, driver: Driver
):
    made = await outbox.forward(20)
    uids = {s.uid for s in made}
    hub.pause = 0.01

    await driver.run()
    assert hub.most_in_flight == 16  # the default

    hub.seen.clear()
    hub.stored.clear()
    hub.most_in_flight = 0
    async with driver.db.write() as session:
        await session.execute(
            Signal.__table__.update()  # type: ignore[attr-defined]
            .where(Signal.uid.in_(uids))
            .values(status="pending", next_attempt_at=EPOCH)
        )
    driver.settings = replace(driver.settings, dispatch_concurrency=4)
    await driver.run()

    assert hub.most_in_flight == 4
    assert set(hub.stored) == uids


def test_the_example_signal_in_hub_md_is_valid_under_the_schema_printed_there():
    example = re.search(r"An example, pretty-printed here[^\n]*\n\n```json\n(.*?)\n```", DOC, re.S)
    assert example, "docs/hub.md has no example signal"
    signal = json.loads(example.group(1))

    assert [error.message for error in SCHEMA.iter_errors(signal)] == []
    arrivals = [visit["arrived_at"] for visit in signal["visits"]]
    assert arrivals == sorted(arrivals)  # visits in arrival order, as hub.md promises
