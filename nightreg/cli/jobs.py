"""`nightreg jobs run JOB [--full] [--dry-run]` (scan, overdue, dispatch, purge, backup) and
`nightreg scheduler`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.settings import Settings


def cmd_jobs_run(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.jobs import job_specs
    from nightreg.services.jobs import holder_id, run_job

    if args.job == "purge" and args.dry_run:
        return _purge_preview(settings)
    if args.job == "dispatch":
        settings.require_hub_sender()
    specs = job_specs(settings)
    if args.job not in specs:  # the backup job, without a folder
        raise CommandError(
            "the nightly backup is off: set NIGHTREG_BACKUP_DIR (or run nightreg backup --out FILE)"
        )
    spec = specs[args.job]

    async def work(db: Database) -> int:
        result = await run_job(
            db, spec, clock=SystemClock(), holder=holder_id(), trigger="cli", full=args.full
        )
        if not result.ran or result.run is None:
            print(f"Another process is running {args.job}; try again later.")
            return 1
        run = result.run
        values = dict(run.counts or {})
        counts = ", ".join(f"{k} {v}" for k, v in values.items())
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
        mode = " (full)" if args.full and args.job != "dispatch" else ""
        if run.status != "ok":
            print(f"{args.job}{mode} failed after {seconds:.1f} s: {run.error}")
            return 1
        if args.job == "dispatch":
            return _dispatch_said(values, seconds)
        if args.job == "purge":
            return _purge_said(values, seconds)
        print(f"{args.job}{mode} done in {seconds:.1f} s: {counts}")
        return 0

    return with_database(settings, work)


def _purge_preview(settings: Settings) -> int:
    """`--dry-run`: what a purge now would delete, by category and date; nothing changes."""
    from nightreg.services import retention

    result = with_database(
        settings, lambda db: retention.preview(db, settings, at=SystemClock().now())
    )
    print(f"purge --dry-run: a run now would delete {result.total} rows (nothing was deleted)")
    for entry in result.categories:
        print(f"  {entry.category}: {entry.count}")
        for day, count in entry.by_date[:10]:
            print(f"    {day.isoformat()}: {count}")
        if len(entry.by_date) > 10:
            rest = sum(count for _day, count in entry.by_date[10:])
            print(f"    … {len(entry.by_date) - 10} more dates: {rest}")
    print(f"  kept by legal holds: {result.held_visits} visits ({result.holds_in_force} holds)")
    return 0


def _purge_said(counts: dict[str, int], seconds: float) -> int:
    deleted = {k: v for k, v in counts.items() if k != "aggregated_visits"}
    print(
        f"purge done in {seconds:.1f} s: deleted "
        + ", ".join(f"{k} {v}" for k, v in deleted.items())
        + f"; {counts.get('aggregated_visits', 0)} visits counted into the aggregates first"
    )
    if counts.get("unfinished"):
        print("The run used its time; the rest goes next run (or run it again now).")
    return 0


def _dispatch_said(counts: dict[str, int], seconds: float) -> int:
    """The dispatch run in words; exit 1 when a signal failed (it needs someone to look)."""
    if counts.get("push_off"):
        print(
            f"dispatch done in {seconds:.1f} s: push is off (no NIGHTREG_HUB_URL); "
            f"{counts.get('pending_left', 0)} pending signals wait for the hub to pull them"
        )
        return 0
    shown = ("sent", "delivered", "retried", "failed", "pending_left", "skipped")
    print(
        f"dispatch done in {seconds:.1f} s: "
        + ", ".join(f"{k} {counts[k]}" for k in shown if k in counts)
    )
    if counts.get("hub_unreachable"):
        print("The hub did not answer; the run stopped early. The rest are tried next run.")
    if counts.get("time_budget"):
        print("The run used its time; the rest are tried next run.")
    if counts.get("failed"):
        print(
            f"{counts['failed']} signals failed and will not be sent again: "
            "see the admin Jobs page (/admin/jobs) for the hub's answers."
        )
        return 1
    return 0


def _ais_listeners(
    db: Database, settings: Settings, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    """The AIS listeners NIGHTREG_AIS_LISTEN names, as tasks that end when `stop` is set."""
    from nightreg.services.ais.listen import Source, listen_forever

    return [
        asyncio.create_task(listen_forever(db, slug, Source.parse(source), SystemClock(), stop))
        for slug, source in settings.ais_listen
    ]


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    """Run the scheduled jobs in the foreground until SIGTERM or Ctrl-C."""
    from nightreg import migrate
    from nightreg.jobs import crontabs, make_scheduler

    settings.require_hub_sender()
    settings.require_production_ready()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    migrate.upgrade(settings.database_url)

    async def work(db: Database) -> None:
        scheduler = make_scheduler(db, settings, SystemClock())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        scheduler.start()
        for name, crontab in crontabs(settings).items():
            logging.getLogger("nightreg.jobs").info("scheduled %s: %s", name, crontab)
        listeners = _ais_listeners(db, settings, stop)
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            if listeners:
                await asyncio.gather(*listeners, return_exceptions=True)

    with_database(settings, work)
    return 0


def add_commands(sub: Any) -> None:
    jobs = sub.add_parser("jobs", help="the scheduled jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    run = jobs_sub.add_parser("run", help="run a job now and print its summary")
    run.add_argument("job", choices=("scan", "overdue", "dispatch", "purge", "backup"))
    run.add_argument("--full", action="store_true", help="scan: look at every visit again")
    run.add_argument(
        "--dry-run", action="store_true", help="purge: show what it would delete; delete nothing"
    )
    run.set_defaults(func=cmd_jobs_run)

    scheduler = sub.add_parser(
        "scheduler", help="run the scheduled jobs (beside web instances that do not)"
    )
    scheduler.set_defaults(func=cmd_scheduler)
