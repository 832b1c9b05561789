"""The scheduled jobs and the scheduler that runs them (APScheduler 3).

A job is a service call on a schedule: the scan every ten minutes, overdue visits every hour,
the delivery of pending signals to the hub every minute, the retention purge at night
(crontab strings in the settings).
`nightreg serve` runs the scheduler in-process for a one-machine install; deployments with
several web instances turn that off (NIGHTREG_SCHEDULER_IN_SERVE=false) and run one
`nightreg scheduler` process instead. Either way every run takes the job's lease first
(nightreg.services.jobs), so a slot runs once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from nightreg.clock import Clock
from nightreg.db import Database
from nightreg.services.jobs import JobSpec, Summary, holder_id, run_job
from nightreg.settings import Settings

log = logging.getLogger("nightreg.jobs")


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

        # The lease lasts 30 minutes: what is left after 25 goes the next night.
        return await run_purge(db, settings, now=now, time_budget=timedelta(minutes=25))

    return {
        "scan": JobSpec("scan", scan),
        "overdue": JobSpec("overdue", overdue),
        "dispatch": JobSpec("dispatch", dispatch),
        "purge": JobSpec("purge", purge),
    }


def crontabs(settings: Settings) -> dict[str, str]:
    return {
        "scan": settings.scan_cron,
        "overdue": settings.overdue_cron,
        "dispatch": settings.dispatch_cron,
        "purge": settings.purge_cron,
    }


def trigger_for(crontab: str, settings: Settings) -> CronTrigger:
    return CronTrigger.from_crontab(crontab, timezone=settings.tz)


def next_run(crontab: str, settings: Settings, now: datetime) -> datetime | None:
    fire: datetime | None = trigger_for(crontab, settings).get_next_fire_time(None, now)
    return fire


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


def make_scheduler(
    db: Database,
    settings: Settings,
    clock: Clock,
    *,
    specs: dict[str, JobSpec] | None = None,
    triggers: dict[str, CronTrigger] | None = None,
) -> AsyncIOScheduler:
    """A scheduler with one job per spec; each firing takes the lease for its slot."""
    specs = specs or job_specs(settings)
    triggers = triggers or {
        name: trigger_for(crontab, settings) for name, crontab in crontabs(settings).items()
    }
    holder = holder_id()
    scheduler = AsyncIOScheduler(timezone=settings.tz)
    for name, spec in specs.items():
        trigger = triggers[name]

        async def fire(spec: JobSpec = spec, trigger: CronTrigger = trigger) -> None:
            slot = slot_of(trigger, clock.now())
            await run_job(db, spec, clock=clock, holder=holder, trigger="schedule", slot=slot)

        scheduler.add_job(
            fire, trigger, id=name, name=name, coalesce=True, max_instances=1,
            misfire_grace_time=60,
        )  # fmt: skip
    return scheduler
