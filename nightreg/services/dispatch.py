"""Deliver pending signals to the hub: signed POSTs, retries with backoff, each outcome once.

The outbox (`signal` rows) is the truth. A run takes the due signals (pending, next attempt
at or before now) oldest first, POSTs each one's stored body byte for byte with a fresh
signature (nightreg.hubsign) and its uid as Idempotency-Key, up to
`settings.dispatch_concurrency` (NIGHTREG_DISPATCH_CONCURRENCY, default 16) at once, and
records the outcomes in short write transactions (never open across a POST; the outcomes that
are waiting share one, like check-ins do):

- 2xx: delivered (by "push"), audited as `signal_delivered`;
- no answer (network error, timeout), 408, 429 or 5xx: tried again later, after an exponential
  backoff with full jitter (30 s doubling up to 1 h; a Retry-After within that hour is
  honoured), until the signal is `hub_retry_days` old: then failed, audited `signal_failed`;
- a stale timestamp (401 with the JSON code `stale_timestamp`, or 425): the clocks differ, not
  the signal; tried again with the same backoff and never failed for it, not even after
  `hub_retry_days`;
- any other answer (4xx, 3xx): failed at once with the status and the start of the answer.

When the hub's Date header and our clock differ by more than CLOCK_SKEW_SECONDS, a run logs
both once (a warning): a stale answer is then explained in the log.

A signal only leaves `pending` once its outcome is committed. A crash after the POST and before
the record leaves it pending, so the next run sends it again with the same Idempotency-Key and
the same bytes: the hub deduplicates. Each record is a compare-and-swap (`WHERE status =
'pending'`), so a second dispatcher running by mistake cannot record an outcome twice; the
job's lease (nightreg.services.jobs) makes such a second run rare in the first place.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import httpx
from sqlalchemy import Table, bindparam, func, select, update

from nightreg.clock import Clock
from nightreg.db import Database
from nightreg.models import Signal
from nightreg.services import audit, signals
from nightreg.services.access import Actor
from nightreg.services.hub_post import (
    Attempt,
    Due,
    Jitter,
    backoff,
    clocks,
    make_client,
    post,
)
from nightreg.settings import Settings

log = logging.getLogger("nightreg.dispatch")

DISPATCHER = Actor(kind="system", name="dispatch")

# POSTs in flight at once: enough to hide the hub's latency, few enough not to swamp it
# (the default of NIGHTREG_DISPATCH_CONCURRENCY; docs/hub.md tells hubs to plan for it).
DEFAULT_CONCURRENCY = 16
# The hub's Date header this far from our clock (either way) is logged, once a run.
CLOCK_SKEW_SECONDS = 60.0
# Due signals read per query (keyset on id, oldest first).
BATCH = 500
# This many answerless attempts in a row (refused connections, timeouts) and the hub is taken
# to be down: the run stops, and the signals it did not try wait, still due, for the next run
# rather than each waiting out its own timeout now.
UNREACHABLE_AFTER = 32
# At most this many outcomes are recorded in one transaction.
RECORD_GROUP = 64
# A run stops taking new signals after this long (the lease's heartbeat keeps it meanwhile), so
# that a huge backlog goes in runs of bounded length, each recorded on the Jobs page.
TIME_BUDGET_SECONDS = 20 * 60.0


@dataclass
class DispatchSummary:
    """What a run did: POSTs made and the outcomes recorded; what is still pending after it."""

    push: bool = True  # False: no hub URL, nothing sent
    sent: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    gave_up: int = 0
    # Outcomes another dispatcher (or the hub's acknowledgement over the API) recorded first.
    skipped: int = 0
    # Pending signals whose agreement ended (or expired) before they left: failed, not sent.
    withheld: int = 0
    pending_left: int = 0
    stopped: str = ""  # "" | "hub_unreachable" | "time_budget"
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        if not self.push:
            off = {"push_off": 1, "pending_left": self.pending_left}
            return {**off, "withheld": self.withheld} if self.withheld else off
        counts = {
            "sent": self.sent,
            "delivered": self.delivered,
            "retried": self.retried,
            "failed": self.failed,
            "pending_left": self.pending_left,
        }
        if self.skipped:
            counts["skipped"] = self.skipped
        if self.withheld:
            counts["withheld"] = self.withheld
        if self.stopped:
            counts[self.stopped] = 1
        return counts

    def line(self) -> str:
        if not self.push:
            return (
                f"push is off (no NIGHTREG_HUB_URL): {self.pending_left} pending signals "
                "wait for the hub to pull them"
            )
        parts = ", ".join(f"{k} {v}" for k, v in self.counts().items())
        return f"dispatch: {parts} in {self.seconds:.1f} s"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- recording outcomes ------------------------------------------------------------------
# One Core statement per kind of outcome, compiled once; each a compare-and-swap on the row.

_SIGNAL = cast(Table, Signal.__table__)
_DELIVERED = (
    update(_SIGNAL)
    .where(_SIGNAL.c.id == bindparam("b_id"), _SIGNAL.c.status == "pending")
    .values(
        status="delivered", delivered_at=bindparam("b_at"), delivered_by="push",
        attempts=_SIGNAL.c.attempts + 1, last_attempt_at=bindparam("b_at"),
        last_status_code=bindparam("b_code"), last_error=None,
    )
)  # fmt: skip
# A retry or a failure also checks the attempts it read: a stray second dispatcher that
# recorded this attempt first wins, and this one's record is dropped.
_RETRY = (
    update(_SIGNAL)
    .where(
        _SIGNAL.c.id == bindparam("b_id"), _SIGNAL.c.status == "pending",
        _SIGNAL.c.attempts == bindparam("b_seen"),
    )
    .values(
        attempts=_SIGNAL.c.attempts + 1, last_attempt_at=bindparam("b_at"),
        last_status_code=bindparam("b_code"), last_error=bindparam("b_error"),
        next_attempt_at=bindparam("b_next"),
    )
)  # fmt: skip
_FAILED = (
    update(_SIGNAL)
    .where(
        _SIGNAL.c.id == bindparam("b_id"), _SIGNAL.c.status == "pending",
        _SIGNAL.c.attempts == bindparam("b_seen"),
    )
    .values(
        status="failed", attempts=_SIGNAL.c.attempts + 1, last_attempt_at=bindparam("b_at"),
        last_status_code=bindparam("b_code"), last_error=bindparam("b_error"),
    )
)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What to record of one attempt: delivered, tried again at `next_at`, or failed."""

    due: Due
    attempt: Attempt
    status: Literal["delivered", "retry", "failed"]
    error: str = ""
    next_at: datetime | None = None
    reason: str = ""  # failed: "refused" (the hub said no) or "gave_up" (out of days)


async def record_outcomes(db: Database, outcomes: Sequence[Outcome]) -> list[bool]:
    """Record outcomes in one short write transaction; say which of them took.

    Each is a compare-and-swap on its row (see the statements above): an outcome another
    dispatcher recorded first, or a signal the hub acknowledged by pull meanwhile, is left
    alone. Deliveries and failures that took are audited, without the payload or the hub's
    answer (which may echo it): the status code is kept.
    """
    took: list[bool] = []
    events: list[dict[str, Any]] = []
    async with db.write() as session:
        connection = await session.connection()
        for outcome in outcomes:
            due, attempt = outcome.due, outcome.attempt
            params: dict[str, Any] = {
                "b_id": due.id, "b_at": attempt.at, "b_code": attempt.status_code,
            }  # fmt: skip
            if outcome.status == "delivered":
                statement = _DELIVERED
            else:
                params.update(b_seen=due.attempts, b_error=outcome.error[:2000])
                if outcome.status == "retry":
                    statement = _RETRY
                    params["b_next"] = outcome.next_at
                else:
                    statement = _FAILED
            result = await connection.execute(statement, params)
            took.append(bool(result.rowcount))
            if not result.rowcount or outcome.status == "retry":
                continue
            details: dict[str, Any] = {
                "uid": due.uid, "agreement_id": due.agreement_id, "rule": due.rule,
                "status_code": attempt.status_code, "attempts": due.attempts + 1,
            }  # fmt: skip
            if outcome.status == "delivered":
                details["by"] = "push"
            else:
                details["reason"] = outcome.reason
            events.append(
                {
                    "action": f"signal_{outcome.status}", "at": attempt.at,
                    "site_id": due.site_id, "object_type": "signal", "object_id": due.id,
                    "details": details,
                }
            )  # fmt: skip
        await audit.record_many(session, DISPATCHER, events)
    return took


# --- the run -----------------------------------------------------------------------------


async def _pending_count(db: Database) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Signal).where(Signal.status == "pending")
            )
            or 0
        )


async def _due_batch(db: Database, now: datetime, after_id: int, limit: int) -> list[Due]:
    async with db.read() as session:
        rows = (
            await session.execute(
                select(
                    Signal.id, Signal.uid, Signal.body, Signal.site_id, Signal.agreement_id,
                    Signal.rule, Signal.attempts, Signal.created_at,
                )
                .where(
                    Signal.status == "pending", Signal.next_attempt_at <= now,
                    Signal.id > after_id,
                )
                .order_by(Signal.id)
                .limit(limit)
            )
        ).all()  # fmt: skip
    return [Due(*row) for row in rows]


class _Run:
    """One run: a feeder reads due signals, workers POST them, a recorder writes outcomes.

    The recorder writes whatever outcomes are waiting in one transaction (group commit, as
    for check-ins): one at a time when signals are few, many together under load, never
    holding a transaction open over the network.
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clients: Sequence[httpx.AsyncClient],
        now: datetime,
        clock: Clock | None,
        rng: Jitter,
        concurrency: int,
        batch: int,
        time_budget: float,
    ) -> None:
        self.db, self.settings, self.clients = db, settings, clients
        self.now, self.clock, self.rng = now, clock, rng
        self.concurrency, self.batch, self.time_budget = concurrency, batch, time_budget
        self.summary = DispatchSummary()
        self.started = time.monotonic()
        self.unanswered_in_a_row = 0
        self.retry_days = settings.hub_retry_days
        self.skew_logged = False

    def at(self) -> datetime:
        """When this attempt happens: the clock's time, or `now` moved on by the time spent."""
        if self.clock is not None:
            return self.clock.now()
        return self.now + timedelta(seconds=time.monotonic() - self.started)

    def stop_taking_work(self) -> bool:
        if self.summary.stopped:
            return True
        if time.monotonic() - self.started > self.time_budget:
            self.summary.stopped = "time_budget"
        return bool(self.summary.stopped)

    async def feed(self, due: asyncio.Queue[Due | None]) -> None:
        after_id = 0
        while not self.stop_taking_work():
            batch = await _due_batch(self.db, self.now, after_id, self.batch)
            if not batch:
                break
            for signal in batch:
                if self.stop_taking_work():
                    break
                await due.put(signal)
            after_id = batch[-1].id
        # One end mark per worker. (On an error the task group cancels the workers instead.)
        for _ in range(self.concurrency):
            await due.put(None)

    async def work_all(
        self, due: asyncio.Queue[Due | None], done: asyncio.Queue[Outcome | None]
    ) -> None:
        async with asyncio.TaskGroup() as workers:
            for client in self.clients:
                workers.create_task(self.work(client, due, done))
        await done.put(None)

    async def work(
        self,
        client: httpx.AsyncClient,
        due: asyncio.Queue[Due | None],
        done: asyncio.Queue[Outcome | None],
    ) -> None:
        while (signal := await due.get()) is not None:
            if self.summary.stopped:
                continue  # still due: the next run takes it
            attempt = await post(client, self.settings, signal, self.at())
            self.summary.sent += 1
            self.check_clocks(attempt)
            if attempt.answered:
                self.unanswered_in_a_row = 0
            else:
                self.unanswered_in_a_row += 1
                if self.unanswered_in_a_row >= UNREACHABLE_AFTER:
                    self.summary.stopped = "hub_unreachable"
            await done.put(self.decide(signal, attempt))

    def check_clocks(self, attempt: Attempt) -> None:
        """Log, once a run, when the hub's clock and ours differ by more than a minute."""
        if self.skew_logged or attempt.hub_date is None:
            return
        if abs((attempt.hub_date - attempt.at).total_seconds()) > CLOCK_SKEW_SECONDS:
            self.skew_logged = True
            log.warning(
                "dispatch: the hub's clock and ours differ by more than %d s: %s; signatures "
                "are refused as stale beyond the hub's tolerance (keep both clocks on NTP)",
                CLOCK_SKEW_SECONDS, clocks(attempt.at, attempt.hub_date),
            )  # fmt: skip

    def decide(self, due: Due, attempt: Attempt) -> Outcome:
        if attempt.outcome == "delivered":
            return Outcome(due, attempt, "delivered")
        if attempt.outcome == "refused":
            return Outcome(due, attempt, "failed", attempt.error, reason="refused")
        attempts = due.attempts + 1
        if attempt.stale:
            # The clocks need fixing, not the signal: never given up for this answer.
            wait = backoff(attempts, self.rng)
            return Outcome(due, attempt, "retry", attempt.error, next_at=attempt.at + wait)
        deadline = due.created_at + timedelta(days=self.retry_days)
        if attempt.at >= deadline:
            error = (
                f"gave up after {_plural(attempts, 'attempt')} over "
                f"{_plural(self.retry_days, 'day')}; last: {attempt.error}"
            )
            return Outcome(due, attempt, "failed", error, reason="gave_up")
        wait = backoff(attempts, self.rng, attempt.retry_after)
        # The last try falls on the deadline, not after it.
        return Outcome(
            due, attempt, "retry", attempt.error, next_at=min(attempt.at + wait, deadline)
        )

    async def record_all(self, done: asyncio.Queue[Outcome | None]) -> None:
        summary = self.summary
        finished = False
        while not finished:
            first = await done.get()
            if first is None:
                break
            group = [first]
            while len(group) < RECORD_GROUP and not done.empty():
                item = done.get_nowait()
                if item is None:
                    finished = True
                    break
                group.append(item)
            for outcome, took in zip(group, await record_outcomes(self.db, group), strict=True):
                if not took:
                    summary.skipped += 1
                    log.info("signal %s: its outcome was recorded elsewhere first", outcome.due.uid)
                elif outcome.status == "delivered":
                    summary.delivered += 1
                elif outcome.status == "retry":
                    summary.retried += 1
                else:
                    summary.failed += 1
                    summary.gave_up += outcome.reason == "gave_up"

    async def run(self) -> None:
        due: asyncio.Queue[Due | None] = asyncio.Queue(maxsize=self.concurrency * 2)
        done: asyncio.Queue[Outcome | None] = asyncio.Queue(maxsize=self.concurrency * 2)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.feed(due))
                group.create_task(self.work_all(due, done))
                group.create_task(self.record_all(done))
        except BaseExceptionGroup as errors:
            # Report the first real error, not the group: the job's record shows one line.
            first = errors.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None


async def dispatch(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    client: httpx.AsyncClient | None = None,
    clock: Clock | None = None,
    rng: Jitter | None = None,
    concurrency: int | None = None,
    batch: int = BATCH,
    time_budget: float = TIME_BUDGET_SECONDS,
) -> DispatchSummary:
    """Deliver the signals due at `now`; without a hub URL, do nothing and say so.

    `concurrency`: POSTs in flight at once (default: `settings.dispatch_concurrency`).
    `client`: one to share between the workers (tests); by default each worker has its own
    client with one keep-alive connection, which costs httpx less per request than one pool
    of `concurrency` connections. SettingsError without an installation id to sign with.
    """
    settings.require_hub_sender()
    started = time.monotonic()
    withheld = await signals.withhold_lapsed(db, now=now)
    if not settings.hub_url:
        summary = DispatchSummary(
            push=False, withheld=withheld, pending_left=await _pending_count(db)
        )
        log.info("dispatch: %s", summary.line())
        return summary
    workers = max(1, settings.dispatch_concurrency if concurrency is None else concurrency)
    owned = [] if client is not None else [make_client(settings) for _ in range(workers)]
    clients = [client] * workers if client is not None else owned
    run = _Run(
        db, settings, clients, now, clock, rng or random.SystemRandom(), workers, max(1, batch),
        time_budget,
    )  # fmt: skip
    try:
        await run.run()
    finally:
        for own in owned:
            await own.aclose()
    summary = run.summary
    summary.withheld = withheld
    summary.pending_left = await _pending_count(db)
    summary.seconds = time.monotonic() - started
    return summary
