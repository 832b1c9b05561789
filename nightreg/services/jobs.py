"""Run a job once, however many schedulers ask: a lease per job, and a record of every run.

The lease is one row per job in `job_lease`, taken with a compare-and-swap UPDATE: it succeeds
only when the lease has expired and, for a scheduled run, when nobody ran this scheduled slot
yet. Two schedulers that fire for the same slot (two machines, or a restarted process) thus
run it once, even when the second asks after the first has finished: the slot stays recorded.
The expiry frees a lease whose holder died mid-run.

Run records older than NIGHTREG_RETENTION_JOB_RUN_DAYS are deleted by the nightly purge
(nightreg.services.retention), except a job's newest successful run, which the scan reads to
know where it left off.
"""

from __future__ import annotations

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

LEASE_TTL = timedelta(minutes=30)


class Summary(Protocol):
    def counts(self) -> dict[str, int]: ...


JobBody = Callable[[Database, datetime, bool], Awaitable[Summary]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    body: JobBody


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
    """Take the lease, run the job, record the run; a failure is recorded, not raised."""
    started = clock.now()
    if not await acquire(db, spec.name, holder=holder, now=started, slot=slot):
        log.info("job %s: another process holds the lease or ran this slot; skipped", spec.name)
        return RunResult(ran=False)
    async with db.write() as session:
        run = JobRun(
            job=spec.name, trigger=trigger[:300], holder=holder, started_at=started,
            status="running", counts={},
        )  # fmt: skip
        session.add(run)
    # Until the body returns, the run counts as failed: a cancelled run (shutdown mid-job)
    # raises no Exception, and must not be recorded as ok.
    status, counts, error = "failed", {}, "interrupted"
    try:
        summary = await spec.body(db, started, full)
        counts = summary.counts()
        status, error = "ok", ""
    except Exception as exc:
        log.exception("job %s failed", spec.name)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        status, error = "failed", f"{type(exc).__name__}: {first_line}"
    finally:
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
