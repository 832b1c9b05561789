"""The scheduled jobs and the scheduler that runs them (APScheduler 3).

A job is a service call on a schedule: the scan every ten minutes, overdue visits every hour,
the delivery of pending signals to the hub every minute, the retention purge at night, and
the nightly backup when NIGHTREG_BACKUP_DIR names a folder (crontab strings in the settings).
`nightreg serve` runs the scheduler in-process for a one-machine install; deployments with
several web instances turn that off (NIGHTREG_SCHEDULER_IN_SERVE=false) and run one
`nightreg scheduler` process instead. Either way every run takes the job's lease first
(nightreg.services.jobs), so a slot runs once; a heartbeat keeps the lease while the job runs,
and a holder that dies frees it within NIGHTREG_JOB_LEASE_SECONDS (90).

A scheduler that starts (after a crash, a deploy, a night the machine was off) first catches
up: each job whose latest scheduled slot has not run yet runs once, for that slot; older missed
slots are not run one by one (every job does all its pending work in one run).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select, update

from nightreg.clock import Clock
from nightreg.db import Database
from nightreg.db_faults import cause_of, is_unavailable
from nightreg.models import JobLease, JobRun
from nightreg.services import audit_checkpoints
from nightreg.services.jobs import (
    JobBody,
    JobSpec,
    LeaseTiming,
    RunResult,
    Summary,
    holder_id,
    run_job,
)
from nightreg.settings import Settings

log = logging.getLogger("nightreg.jobs")


# The purge runs at night, in batches that check-ins wait for on SQLite: 25 minutes end a run
# long before the morning, and what is left goes the next night (a backlog, say after a
# retention period was shortened, goes over a few nights). The lease does not bound it: the
# heartbeat keeps the lease however long a run takes.
PURGE_TIME_BUDGET = timedelta(minutes=25)


def lease_timing(settings: Settings) -> LeaseTiming:
    return LeaseTiming(
        ttl=timedelta(seconds=settings.job_lease_seconds),
        heartbeat=timedelta(seconds=settings.job_heartbeat_seconds),
    )


def job_specs(settings: Settings) -> dict[str, JobSpec]:
    async def scan(db: Database, now: datetime, full: bool) -> Summary:
        from nightreg.services.scan import run_scan

        return await run_scan(db, now=now, full=full, watchlist_key=settings.watchlist_key)

    async def overdue(db: Database, now: datetime, full: bool) -> Summary:
        from nightreg.services.scan import run_overdue

        return await run_overdue(db, now=now)

    async def dispatch(db: Database, now: datetime, full: bool) -> Summary:
        from nightreg.services.dispatch import dispatch as deliver

        return await deliver(db, settings, now=now)

    async def purge(db: Database, now: datetime, full: bool) -> Summary:
        from nightreg.services.retention import purge as run_purge

        return await run_purge(db, settings, now=now, time_budget=PURGE_TIME_BUDGET)

    async def backup(db: Database, now: datetime, full: bool) -> Summary:
        from nightreg.services.backup import nightly

        return await nightly(db, settings, now=now)

    def checkpointed(name: str, body: JobBody) -> JobSpec:
        """Every job run ends with a signed checkpoint of the audit chain (written only when
        the chain moved since the last one: the dispatch job runs every minute)."""

        async def run(db: Database, now: datetime, full: bool) -> Summary:
            summary = await body(db, now, full)
            await audit_checkpoints.write(db, settings, now=now, only_if_moved=True)
            return summary

        return JobSpec(name, run, lease)

    lease = lease_timing(settings)
    specs = {
        "scan": checkpointed("scan", scan),
        "overdue": checkpointed("overdue", overdue),
        "dispatch": checkpointed("dispatch", dispatch),
        # The purge writes its checkpoint itself, onto its receipt.
        "purge": JobSpec("purge", purge, lease),
    }
    if settings.backup_dir is not None:  # the nightly backup is on when it has a folder
        specs["backup"] = checkpointed("backup", backup)
    return specs


def crontabs(settings: Settings) -> dict[str, str]:
    tabs = {
        "scan": settings.scan_cron,
        "overdue": settings.overdue_cron,
        "dispatch": settings.dispatch_cron,
        "purge": settings.purge_cron,
    }
    if settings.backup_dir is not None:
        tabs["backup"] = settings.backup_cron
    return tabs


def trigger_for(crontab: str, settings: Settings) -> CronTrigger:
    return CronTrigger.from_crontab(crontab, timezone=settings.tz)


def next_run(crontab: str, settings: Settings, now: datetime) -> datetime | None:
    fire: datetime | None = trigger_for(crontab, settings).get_next_fire_time(None, now)
    return fire


def slot_seconds(crontab: str, settings: Settings, now: datetime) -> float | None:
    """The time between the job's next two scheduled slots after `now` (None: fewer are due).

    What "a job that has not run for two slots" is measured in (the metric job_slot_seconds).
    """
    trigger = trigger_for(crontab, settings)
    first: datetime | None = trigger.get_next_fire_time(None, now)
    if first is None:
        return None
    second: datetime | None = trigger.get_next_fire_time(first, first + timedelta(microseconds=1))
    return None if second is None else (second - first).total_seconds()


def slot_of(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The scheduled time this firing belongs to: the trigger's last fire time at or before now.

    Both schedulers compute the same slot from the same crontab, whatever their small delays.
    """
    for back in (timedelta(minutes=2), timedelta(hours=2), timedelta(days=2), timedelta(days=400)):
        probe: datetime | None = trigger.get_next_fire_time(None, now - back)
        if probe is None or probe > now:
            continue  # no firing in this window: look further back
        previous = probe
        while probe is not None and probe <= now:
            previous = probe
            probe = trigger.get_next_fire_time(probe, probe + timedelta(microseconds=1))
        return previous
    return None


async def last_slot(db: Database, job: str) -> datetime | None:
    """The scheduled slot the job last ran for (None: never on a schedule)."""
    async with db.read() as session:
        slot: datetime | None = await session.scalar(
            select(JobLease.last_slot).where(JobLease.job == job)
        )
    return slot


def holder_is_dead(holder: str) -> bool:
    """Whether a lease's holder was a process on this machine that no longer exists.

    Holders are "host:pid:random" (holder_id). A process on another machine, or one whose pid
    is alive (possibly reused, as PID 1 in a restarted container), is never judged dead: its
    lease then simply expires.
    """
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, as someone else's process
        return False
    return False


async def free_dead_leases(db: Database, jobs: list[str], *, clock: Clock) -> list[str]:
    """Free the leases of holders that died mid-run (a crash), and record their runs as failed.

    Without this a job killed mid-run would wait for its lease to expire (90 seconds by
    default): the catch-up at start would find the lease held and skip the missed slot.
    """
    now = clock.now()
    async with db.read() as session:
        held = list(
            await session.execute(
                select(JobLease.job, JobLease.holder).where(
                    JobLease.job.in_(jobs), JobLease.expires_at > now, JobLease.holder != ""
                )
            )
        )
    freed = []
    for job, holder in held:
        if not holder_is_dead(holder):
            continue
        async with db.write() as session:
            await session.execute(
                update(JobLease)
                .where(JobLease.job == job, JobLease.holder == holder)
                .values(expires_at=now)
            )
            await session.execute(
                update(JobRun)
                .where(JobRun.job == job, JobRun.holder == holder, JobRun.status == "running")
                .values(status="failed", finished_at=now, error="interrupted: the process died")
            )
        log.warning("job %s: freed the lease of %s, which died mid-run", job, holder)
        freed.append(job)
    return freed


async def catch_up_one(
    db: Database, spec: JobSpec, trigger: CronTrigger, *, clock: Clock, holder: str
) -> RunResult:
    """Run the job once if its most recent scheduled slot has not run (or it never ran)."""
    slot = slot_of(trigger, clock.now())
    if slot is None:
        return RunResult(ran=False)
    done = await last_slot(db, spec.name)
    if done is not None and done.astimezone(UTC) >= slot.astimezone(UTC):
        return RunResult(ran=False)
    log.info("job %s: slot %s was missed; running it now", spec.name, slot.isoformat())
    # The lease's slot guard makes this once, whoever else starts or fires at the same time.
    return await run_job(db, spec, clock=clock, holder=holder, trigger="catch-up", slot=slot)


async def catch_up(
    db: Database,
    specs: dict[str, JobSpec],
    triggers: dict[str, CronTrigger],
    *,
    clock: Clock,
    holder: str,
) -> dict[str, RunResult]:
    """At start: leases of processes that died mid-run are freed, then every job with a missed
    slot runs once, side by side (a long purge delays no scan). A job that fails to start is
    logged; the others go on."""
    names = list(specs)
    try:
        await free_dead_leases(db, names, clock=clock)
    except Exception as exc:  # the catch-up goes on: a held lease only makes a job wait
        log.error("jobs: could not check for dead leases: %s: %s", type(exc).__name__, exc)
    results = await asyncio.gather(
        *(catch_up_one(db, specs[n], triggers[n], clock=clock, holder=holder) for n in names),
        return_exceptions=True,
    )
    done: dict[str, RunResult] = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            log.error("job %s: catching up failed: %s: %s", name, type(result).__name__, result)
            done[name] = RunResult(ran=False)
        else:
            done[name] = result
    return done


def make_scheduler(
    db: Database,
    settings: Settings,
    clock: Clock,
    *,
    specs: dict[str, JobSpec] | None = None,
    triggers: dict[str, CronTrigger] | None = None,
    catch_up_at_start: bool = True,
) -> AsyncIOScheduler:
    """A scheduler with one job per spec; each firing takes the lease for its slot.

    With `catch_up_at_start`, starting it also runs, once, each job whose latest slot was
    missed while no scheduler ran (see `catch_up`).
    """
    specs = specs or job_specs(settings)
    triggers = triggers or {
        name: trigger_for(crontab, settings) for name, crontab in crontabs(settings).items()
    }
    holder = holder_id()
    scheduler = AsyncIOScheduler(timezone=settings.tz)
    if catch_up_at_start:

        async def start_with_catch_up() -> None:
            await catch_up(db, specs, triggers, clock=clock, holder=holder)

        # No trigger: a one-off job that runs as soon as the scheduler starts.
        scheduler.add_job(
            start_with_catch_up, id="catch-up", name="catch-up", misfire_grace_time=None
        )
    for name, spec in specs.items():
        trigger = triggers[name]

        async def fire(spec: JobSpec = spec, trigger: CronTrigger = trigger) -> None:
            slot = slot_of(trigger, clock.now())
            try:
                await run_job(db, spec, clock=clock, holder=holder, trigger="schedule", slot=slot)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                # The database is away (the lease could not be taken or the run not recorded):
                # one line, no traceback; the next slot, or the catch-up at start, runs it.
                log.warning("job %s: skipped, the database is unavailable (%s)",
                            spec.name, cause_of(exc))  # fmt: skip

        scheduler.add_job(
            fire, trigger, id=name, name=name, coalesce=True, max_instances=1,
            misfire_grace_time=60,
        )  # fmt: skip
    return scheduler
