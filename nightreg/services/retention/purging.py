"""The purge: delete what has passed its retention, in batches, and leave a receipt.

See nightreg.services.retention for the periods and how the purge deletes.
"""

from __future__ import annotations

import logging
import time as monotonic
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, text

from nightreg.clock import local_day
from nightreg.db import Database
from nightreg.models import (
    AisMovement,
    AuditAnchor,
    AuditDetail,
    AuditEvent,
    Flag,
    JobRun,
    Observation,
    Sighting,
    SignInFailure,
    StaffSession,
    Visit,
    VisitAggregate,
)
from nightreg.services import aggregates, audit, audit_checkpoints
from nightreg.services.access import SYSTEM, Actor
from nightreg.services.retention.due import (
    aggregate_cutoff,
    due_ais_movements,
    due_failures,
    due_flags,
    due_forwarded,
    due_job_runs,
    due_observations,
    due_sessions,
    due_sightings,
    due_visits,
    today_of,
)
from nightreg.services.retention.policies import CATEGORIES, Defaults, Policy, policies_in
from nightreg.settings import Settings

log = logging.getLogger("nightreg.retention")

# Small enough that a batch takes tens of milliseconds, so a check-in waits at most that long
# for the write lock; big enough that a million rows take minutes, not hours. On SQLite every
# check-in queues behind the batch's transaction, and a DELETE costs more per row in bigger
# batches: 100 cut that wait fivefold against 500 (bench/purge.py, bench/README.md "Purge").
BATCH = 500
SQLITE_BATCH = 100


@dataclass
class PurgeResult:
    at: datetime
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    aggregated_visits: int = 0
    oldest_kept: dict[str, str] = field(default_factory=dict)
    finished: bool = True
    # Audit detail records erased: their visit or flag is gone, or a search's period ended.
    details_erased: int = 0

    def counts(self) -> dict[str, int]:
        out = {**self.deleted, "aggregated_visits": self.aggregated_visits}
        if not self.finished:
            out["unfinished"] = 1
        return out


async def purge(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    actor: Actor = SYSTEM,
    batch: int | None = None,
    time_budget: timedelta | None = None,
) -> PurgeResult:
    """Delete what has passed its retention, in batches; record the receipt in the audit."""
    batch = batch or (SQLITE_BATCH if db.is_sqlite else BATCH)
    defaults = Defaults.of(settings)
    today = today_of(settings, now)
    result = PurgeResult(at=now)
    deadline = None if time_budget is None else monotonic.monotonic() + time_budget.total_seconds()
    try:
        async with db.read() as session:
            pols = await policies_in(session, defaults)
        for policy in pols:
            for category in ("flags_open", "flags_dismissed"):
                result.deleted[category] += await _delete_in_batches(
                    db, delete(Flag), Flag.id, due_flags(category, policy, now, today),
                    batch, deadline,
                )  # fmt: skip
        result.deleted["flags_forwarded"] += await _purge_forwarded(db, defaults, now, today, batch)
        for policy in pols:
            deleted, aggregated = await _purge_visits(db, policy, now, today, batch, deadline)
            result.deleted["visits"] += deleted
            result.aggregated_visits += aggregated
            result.deleted["observations"] += await _delete_in_batches(
                db, delete(Observation), Observation.id, due_observations(policy, now, today),
                batch, deadline,
            )  # fmt: skip
            result.deleted["ais_movements"] += await _delete_in_batches(
                db, delete(AisMovement), AisMovement.id, due_ais_movements(policy, now, today),
                batch, deadline,
            )  # fmt: skip
            # After the visits: a sighting their purge uncovered goes in the same run.
            result.deleted["sightings"] += await _purge_sightings(
                db, policy, now, today, batch, deadline
            )
        result.details_erased = await _erase_details(db, settings, now)
        result.deleted["audit_events"] = await _purge_audit(db, defaults, now, batch * 10)
        await _purge_installation(db, settings, defaults, now, today, result)
    except _OutOfTime:
        result.finished = False
    except BaseException:
        result.finished = False
        await _receipt(db, actor, settings, result, interrupted=True)
        raise
    await _clean_up(db, settings, result)
    await _receipt(db, actor, settings, result, interrupted=False)
    return result


async def _purge_forwarded(
    db: Database, defaults: Defaults, now: datetime, today: date, batch: int
) -> int:
    """Delete forwarded flags past their agreement's keep_days; how many."""
    async with db.read() as session:
        forwarded = [f[0] for f in await due_forwarded(session, defaults, now, today)]
    total = 0
    for start in range(0, len(forwarded), batch):
        ids = forwarded[start : start + batch]
        async with db.write() as session:
            # Signals go with their flag (ON DELETE CASCADE); the status is checked again
            # in case new evidence reopened the flag meanwhile.
            gone = await session.execute(
                delete(Flag).where(Flag.id.in_(ids), Flag.status == "forwarded").returning(Flag.id)
            )
            total += len(gone.all())
    return total


async def _purge_installation(
    db: Database,
    settings: Settings,
    defaults: Defaults,
    now: datetime,
    today: date,
    result: PurgeResult,
) -> None:
    """Job runs, aggregates, failed sign-ins and ended sessions past retention, in one go."""
    async with db.write() as session:
        gone = await session.execute(
            delete(JobRun).where(due_job_runs(defaults, now)).returning(JobRun.id)
        )
        result.deleted["job_runs"] = len(gone.all())
        gone = await session.execute(
            delete(VisitAggregate)
            .where(VisitAggregate.day < aggregate_cutoff(defaults, today))
            .returning(VisitAggregate.site_id)
        )
        result.deleted["aggregates"] = len(gone.all())
        gone = await session.execute(
            delete(SignInFailure).where(due_failures(now)).returning(SignInFailure.id)
        )
        result.deleted["sign_in_failures"] = len(gone.all())
        gone = await session.execute(
            delete(StaffSession).where(due_sessions(settings, now)).returning(StaffSession.id)
        )
        result.deleted["sessions"] = len(gone.all())


class _OutOfTime(Exception):
    """The run used its time budget; the rest goes next run."""


def _check_time(deadline: float | None) -> None:
    if deadline is not None and monotonic.monotonic() > deadline:
        raise _OutOfTime


async def _delete_in_batches(
    db: Database,
    stmt: Any,
    id_column: Any,
    condition: ColumnElement[bool],
    batch: int,
    deadline: float | None,
) -> int:
    """DELETE … WHERE id IN (a batch of the due ids) until none is left; how many."""
    total = 0
    while True:
        _check_time(deadline)
        async with db.write() as session:
            # correlate(None): the batch's subquery reads its own copy of the table.
            ids = select(id_column).where(condition).limit(batch).correlate(None)
            result = await session.execute(stmt.where(id_column.in_(ids)).returning(id_column))
            gone = len(result.all())
        total += gone
        if gone < batch:
            return total


async def _purge_visits(
    db: Database, policy: Policy, now: datetime, today: date, batch: int, deadline: float | None
) -> tuple[int, int]:
    """Delete the site's due visits, counting each batch into the aggregates as it goes."""
    deleted = aggregated = 0
    zones = {policy.site_id: policy.tz}
    condition = due_visits(policy, now, today)
    while True:
        _check_time(deadline)
        async with db.write() as session:
            ids = select(Visit.id).where(condition).limit(batch).correlate(None)
            rows = (
                await session.execute(
                    delete(Visit).where(Visit.id.in_(ids)).returning(*aggregates.stay_columns())
                )
            ).all()
            stays = [aggregates.stay_row(tuple(r)) for r in rows]
            await aggregates.add(session, aggregates.contributions(stays, zones))
        deleted += len(rows)
        aggregated += len(stays)
        if len(rows) < batch:
            return deleted, aggregated


async def _purge_sightings(
    db: Database, policy: Policy, now: datetime, today: date, batch: int, deadline: float | None
) -> int:
    """Delete the site's gate camera sightings that are due, a batch of old ones at a time
    (those a visit still covers are passed over, by id)."""
    deleted = after_id = 0
    while True:
        _check_time(deadline)
        async with db.write() as session:
            due, after_id = await due_sightings(
                session, policy, now, today, after_id=after_id, limit=batch
            )
            if due:
                gone = await session.execute(
                    delete(Sighting)
                    .where(Sighting.id.in_([i for i, _at in due]))
                    .returning(Sighting.id)
                )
                deleted += len(gone.all())
        if after_id == 0:
            return deleted


def receipt_name(now: datetime) -> str:
    """How an audit detail record names the purge that erased it (its receipt's time)."""
    return audit.erasure_name("purge", now)


async def _erase_details(db: Database, settings: Settings, now: datetime) -> int:
    """Erase the personal values of audit events whose visit or flag is gone, and those of
    searches past their own period; the events and their chain stay."""
    gone = or_(
        *(
            (AuditDetail.object_type == name) & ~exists().where(model.id == AuditDetail.object_id)
            for name, model in (("visit", Visit), ("flag", Flag), ("observation", Observation))
        )
    )
    expired = (AuditDetail.kind == "search") & (
        AuditDetail.at < now - timedelta(days=settings.retention_audit_search_days)
    )
    async with db.write() as session:
        return await audit.erase_details(
            session,
            ((AuditDetail.kind == "object") & gone) | expired,
            by=receipt_name(now),
            now=now,
        )


async def _purge_audit(db: Database, defaults: Defaults, now: datetime, batch: int) -> int:
    """Delete audit events past retention, oldest first, moving the chain's anchor along."""
    cutoff = now - timedelta(days=defaults.audit_days)
    total = 0
    while True:
        async with db.write() as session:
            last = await session.execute(
                select(AuditEvent.id, AuditEvent.hash)
                .where(AuditEvent.at < cutoff)
                .order_by(AuditEvent.id)
                .limit(batch)
            )
            rows = last.all()
            if not rows:
                return total
            through_id, through_hash = rows[-1]
            # Only a prefix of the chain may go: events are appended in time order, but an id
            # is what the chain follows, so delete by id up to the last one found.
            await session.execute(delete(AuditDetail).where(AuditDetail.event_id <= through_id))
            gone = await session.execute(
                delete(AuditEvent).where(AuditEvent.id <= through_id).returning(AuditEvent.id)
            )
            count = len(gone.all())
            anchor = await session.get(AuditAnchor, 1)
            if anchor is None:
                session.add(
                    AuditAnchor(
                        id=1, removed_through_id=through_id, prev_hash=through_hash,
                        removed_count=count, at=now,
                    )
                )  # fmt: skip
            else:
                anchor.removed_through_id = through_id
                anchor.prev_hash = through_hash
                anchor.removed_count += count
                anchor.at = now
        total += count
        if len(rows) < batch:
            return total


async def _clean_up(db: Database, settings: Settings, result: PurgeResult) -> None:
    """Leave no copy of what was deleted: SQLite's WAL, PostgreSQL's dead rows."""
    if not any(result.deleted.values()):
        return
    async with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            return
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        tables = ["flag", "flag_visit", "signal", "visit", "visit_note", "observation",
                  "ais_movement", "sighting",
                  "audit_event", "audit_detail", "job_run", "visit_aggregate", "sign_in_failure",
                  "staff_session"]  # fmt: skip
        for table in tables:
            await conn.execute(text(f"VACUUM {table}"))


async def oldest_kept(db: Database, settings: Settings) -> dict[str, str]:
    """The oldest date still held per category (local dates), for the receipt and the page."""
    tz = settings.tz
    out: dict[str, str] = {}
    async with db.read() as session:
        probes = {
            "visits": select(func.min(Visit.arrived_at)),
            "flags": select(func.min(Flag.created_at)),
            "observations": select(func.min(Observation.observed_at)),
            "ais_movements": select(func.min(AisMovement.at)),
            "sightings": select(func.min(Sighting.seen_at)),
            "audit_events": select(func.min(AuditEvent.at)),
        }
        for name, stmt in probes.items():
            value = await session.scalar(stmt)
            if value is not None:
                out[name] = local_day(value, tz).isoformat()
        day = await session.scalar(select(func.min(VisitAggregate.day)))
        if day is not None:
            out["aggregates"] = day.isoformat()
    return out


async def _receipt(
    db: Database, actor: Actor, settings: Settings, result: PurgeResult, *, interrupted: bool
) -> None:
    """The run's receipt in the audit trail: counts and dates, nothing personal."""
    result.oldest_kept = await oldest_kept(db, settings)
    async with db.read() as session:
        anchor = await session.get(AuditAnchor, 1)
        details: dict[str, Any] = {
            "deleted": result.deleted,
            "aggregated_visits": result.aggregated_visits,
            "oldest_kept": result.oldest_kept,
            "finished": result.finished and not interrupted,
            "audit_details_erased": result.details_erased,
        }
        if anchor is not None and result.deleted["audit_events"]:
            details["audit_anchor"] = {
                "removed_through_id": anchor.removed_through_id,
                "prev_hash": anchor.prev_hash,
            }
    # The receipt carries a signed checkpoint of the chain as the purge left it (also appended
    # to the checkpoint directory): a printed receipt is a copy out of the database's reach.
    checkpoint = await audit_checkpoints.take(db, now=result.at)
    details["checkpoint"] = checkpoint.as_dict()
    try:
        audit_checkpoints.append(settings.checkpoint_dir, checkpoint, result.at)
    except OSError as exc:
        # The receipt must be written whatever happens to the file: it carries the checkpoint.
        log.error("audit checkpoint not written to %s: %s", settings.checkpoint_dir, exc.strerror)
        details["checkpoint_not_written"] = str(exc.strerror or exc)
    async with db.write() as session:
        await audit.record(session, actor, "purge_completed", at=result.at, details=details)
