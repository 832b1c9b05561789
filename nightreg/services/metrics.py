"""What /metrics reads from the database when it is scraped (nightreg.metrics.Snapshot).

A handful of small indexed queries per scrape, none per ordinary request: the sites' slugs,
each job's newest finished and newest successful run, the outbox counted by status, and the
newest purge receipt. Nothing personal is read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import QueuePool

from nightreg.db import Database
from nightreg.metrics import JobState, PoolState, PurgeReceipt, Snapshot
from nightreg.models import AuditEvent, JobRun, Signal, Site


def pool_state(db: Database) -> PoolState | None:
    """This process's connection pool now (None for a pool that keeps no count)."""
    pool = db.engine.pool
    if not isinstance(pool, QueuePool):
        return None
    return PoolState(
        size=pool.size(),
        checked_out=pool.checkedout(),
        overflow=pool.overflow(),
        max_overflow=pool._max_overflow,
    )


async def snapshot(db: Database, job_slots: Mapping[str, float | None]) -> Snapshot:
    """The database's series for one scrape; `job_slots`: each job's time between two slots."""
    # The pool first: the queries below hold a connection of their own.
    pool = pool_state(db)
    async with db.read() as session:
        sites: dict[int, str] = dict((await session.execute(select(Site.id, Site.slug))).all())
        jobs = tuple([await _job(session, job, slot) for job, slot in job_slots.items()])
        by_status = select(Signal.status, func.count()).group_by(Signal.status)
        outbox: dict[str, int] = dict((await session.execute(by_status)).all())
        oldest = await session.scalar(
            select(func.min(Signal.created_at)).where(Signal.status == "pending")
        )
        purge = await _purge_receipt(session)
    return Snapshot(
        sites=sites,
        jobs=jobs,
        outbox=outbox,
        outbox_oldest_pending=oldest,
        purge=purge,
        pool=pool,
        database="sqlite" if db.is_sqlite else "postgresql",
    )


async def _job(session: AsyncSession, job: str, slot: float | None) -> JobState:
    # Both walk the index on (job, started_at) from its newest end.
    newest = (
        select(JobRun)
        .where(JobRun.job == job, JobRun.finished_at.is_not(None))
        .order_by(JobRun.started_at.desc())
        .limit(1)
    )
    last = await session.scalar(newest)
    if last is None or last.finished_at is None:
        return JobState(job=job, slot_seconds=slot)
    success = (
        last.finished_at
        if last.status == "ok"
        else await session.scalar(
            select(JobRun.finished_at)
            .where(JobRun.job == job, JobRun.status == "ok")
            .order_by(JobRun.started_at.desc())
            .limit(1)
        )
    )
    return JobState(
        job=job,
        slot_seconds=slot,
        finished_at=last.finished_at,
        duration_seconds=max((last.finished_at - last.started_at).total_seconds(), 0.0),
        result=last.status,
        last_success_at=success,
    )


async def _purge_receipt(session: AsyncSession) -> PurgeReceipt | None:
    # From the newest event backwards along the primary key: the purge runs nightly, so this
    # reads about a day's events before it meets the receipt.
    event = await session.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == "purge_completed")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    if event is None:
        return None
    details: dict[str, Any] = json.loads(event.details or "{}")
    deleted = details.get("deleted") or {}
    return PurgeReceipt(
        at=event.at,
        deleted={str(k): int(v) for k, v in deleted.items()},
        aggregated_visits=int(details.get("aggregated_visits") or 0),
        finished=bool(details.get("finished", True)),
    )
