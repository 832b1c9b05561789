"""Run a job once, however many schedulers ask: a lease per job, and a record of every run.

The lease is one row per job in `job_lease`, taken with a compare-and-swap UPDATE: it succeeds
only when the lease has expired and, for a scheduled run, when nobody ran this scheduled slot
yet. Two schedulers that fire for the same slot (two machines, or a restarted process) thus
run it once, even when the second asks after the first has finished: the slot stays recorded.

A lease is short (90 seconds by default) and kept alive by a heartbeat: while the job runs, a
task renews it every 30 seconds, again by compare-and-swap (only a lease this holder still
has). A holder that dies (SIGKILL, a machine that loses power) stops renewing, and its lease
is free within 90 seconds, on any machine. A holder that finds its lease lost (it stalled
longer than the lease, and another process may have taken the job) stops its run: the run is
recorded as failed, and what it left undone the next run does.

Run records older than NIGHTREG_RETENTION_JOB_RUN_DAYS are deleted by the nightly purge
(nightreg.services.retention), except a job's newest successful run, which the scan reads to
know where it left off.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nightreg.clock import Clock
from nightreg.db import Database
from nightreg.models import JobLease, JobRun

log = logging.getLogger("nightreg.jobs")

# A lease lasts LEASE_TTL from its last renewal; the heartbeat renews it every HEARTBEAT, so
# two renewals in a row can fail (a busy database, a long pause) before it is lost.
LEASE_TTL = timedelta(seconds=90)
HEARTBEAT = timedelta(seconds=30)


@dataclass(frozen=True)
class LeaseTiming:
    """How long a lease lasts without renewal, and how often the heartbeat renews it.

    The heartbeat's interval is real time (it sleeps); the lease's expiry is the clock's time
    (nightreg.clock), so tests move the clock instead of waiting.
    """

    ttl: timedelta = LEASE_TTL
    heartbeat: timedelta = HEARTBEAT


class Summary(Protocol):
    def counts(self) -> dict[str, int]: ...


JobBody = Callable[[Database, datetime, bool], Awaitable[Summary]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    body: JobBody
    lease: LeaseTiming = LeaseTiming()


def holder_id() -> str:
    """Who holds a lease: this host and process, and a random part for two schedulers in one."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"[:120]


def _insert_lease(dialect: str, job: str, now: datetime) -> Any:
    table = JobLease.__table__
    assert isinstance(table, Table)
    values = {"job": job, "holder": "", "expires_at": now, "last_slot": None}
    if dialect == "postgresql":
        return postgresql.insert(table).values(**values).on_conflict_do_nothing()
    return sqlite.insert(table).values(**values).on_conflict_do_nothing()


async def acquire(
    db: Database,
    job: str,
    *,
    holder: str,
    now: datetime,
    slot: datetime | None = None,
    ttl: timedelta = LEASE_TTL,
) -> bool:
    """Take the job's lease; False when another holder has it or already ran this slot."""
    async with db.write() as session:
        await session.execute(_insert_lease(session.get_bind().dialect.name, job, now))
        conditions = [JobLease.job == job, JobLease.expires_at <= now]
        values: dict[str, Any] = {"holder": holder, "expires_at": now + ttl}
        if slot is not None:
            conditions.append(or_(JobLease.last_slot.is_(None), JobLease.last_slot < slot))
            values["last_slot"] = slot
        result = await session.execute(update(JobLease).where(and_(*conditions)).values(values))
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def renew(
    db: Database, job: str, *, holder: str, now: datetime, ttl: timedelta = LEASE_TTL
) -> bool:
    """Extend the lease by `ttl` from now; False when this holder no longer has it.

    Only a lease still held (same holder, not yet expired) is extended: once it has expired,
    another process may have taken the job, so an expired lease is lost even when nobody has.
    """
    async with db.write() as session:
        result = await session.execute(
            update(JobLease)
            .where(JobLease.job == job, JobLease.holder == holder, JobLease.expires_at > now)
            .values(expires_at=now + ttl)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class _Heartbeat:
    """Renews a running job's lease; when the lease is lost, stops the run (cancels `body`)."""

    def __init__(
        self, db: Database, spec: JobSpec, holder: str, clock: Clock, body: asyncio.Future[Any]
    ) -> None:
        self.db, self.spec, self.holder, self.clock, self.body = db, spec, holder, clock, body
        self.lost = False

    async def beat(self) -> None:
        name, timing = self.spec.name, self.spec.lease
        while not self.body.done():
            await asyncio.sleep(timing.heartbeat.total_seconds())
            now = self.clock.now()
            try:
                held = await renew(self.db, name, holder=self.holder, now=now, ttl=timing.ttl)
            except Exception as exc:  # the database is busy or away: try again next beat
                log.warning(
                    "job %s: could not renew its lease (%s: %s); trying again in %.0f s",
                    name, type(exc).__name__, exc, timing.heartbeat.total_seconds(),
                )  # fmt: skip
                continue
            if not held:
                log.error(
                    "job %s: its lease was lost (not renewed within %.0f s, or taken by another "
                    "process); stopping this run, the next run does the rest",
                    name, timing.ttl.total_seconds(),
                )  # fmt: skip
                self.lost = True
                self.body.cancel()
                return


async def release(db: Database, job: str, *, holder: str, now: datetime) -> None:
    async with db.write() as session:
        await session.execute(
            update(JobLease)
            .where(JobLease.job == job, JobLease.holder == holder)
            .values(expires_at=now)
        )


@dataclass(frozen=True)
class RunResult:
    ran: bool
    run: JobRun | None = None


async def run_job(
    db: Database,
    spec: JobSpec,
    *,
    clock: Clock,
    holder: str,
    trigger: str,
    slot: datetime | None = None,
    full: bool = False,
) -> RunResult:
    """Take the lease, run the job while a heartbeat keeps the lease, record the run.

    A failure is recorded, not raised; so is a run stopped because its lease was lost.
    """
    started = clock.now()
    if not await acquire(db, spec.name, holder=holder, now=started, slot=slot, ttl=spec.lease.ttl):
        log.info("job %s: another process holds the lease or ran this slot; skipped", spec.name)
        return RunResult(ran=False)
    async with db.write() as session:
        # The lease is ours, so a run of this job still marked running is one whose holder
        # died or stalled (it stopped renewing): it ended, unfinished.
        await session.execute(
            update(JobRun)
            .where(JobRun.job == spec.name, JobRun.status == "running", JobRun.holder != holder)
            .values(
                status="failed", finished_at=started,
                error="interrupted: its holder stopped renewing the lease",
            )
        )  # fmt: skip
        run = JobRun(
            job=spec.name, trigger=trigger[:300], holder=holder, started_at=started,
            status="running", counts={},
        )  # fmt: skip
        session.add(run)
    # Until the body returns, the run counts as failed: a cancelled run (shutdown mid-job)
    # raises no Exception, and must not be recorded as ok.
    status, counts, error = "failed", {}, "interrupted"
    body = asyncio.ensure_future(spec.body(db, started, full))
    heartbeat = _Heartbeat(db, spec, holder, clock, body)
    beating = asyncio.create_task(heartbeat.beat(), name=f"lease heartbeat: {spec.name}")
    try:
        summary = await body
        counts = summary.counts()
        status, error = "ok", ""
    except asyncio.CancelledError:
        if not heartbeat.lost:
            raise  # a shutdown: recorded as interrupted, and the cancellation goes on
        error = "stopped: its lease was lost (another process may have taken the job)"
    except Exception as exc:
        log.exception("job %s failed", spec.name)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        status, error = "failed", f"{type(exc).__name__}: {first_line}"
    finally:
        if not body.done():
            body.cancel()
        beating.cancel()
        # Wait for both to end, so that no renewal comes after the release below.
        await asyncio.wait([body, beating])
        finished = clock.now()
        async with db.write() as session:
            await session.execute(
                update(JobRun)
                .where(JobRun.id == run.id)
                .values(
                    status=status, finished_at=finished, counts=counts,
                    error=error[:2000] if error else None,
                )
            )  # fmt: skip
        await release(db, spec.name, holder=holder, now=finished)
    run.status, run.finished_at, run.counts = status, finished, counts
    run.error = error or None
    log.info("job %s %s: %s", spec.name, status, counts or error)
    return RunResult(ran=True, run=run)


async def recent_runs(db: Database, job: str, limit: int = 20) -> list[JobRun]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(JobRun)
                .where(JobRun.job == job)
                .order_by(JobRun.started_at.desc(), JobRun.id.desc())
                .limit(limit)
            )
        )
