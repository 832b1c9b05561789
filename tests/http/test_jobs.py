"""Jobs: the lease that makes a run happen once, run records, the CLI and the Jobs page."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from apscheduler.triggers.cron import CronTrigger
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

import nightreg
from nightreg import cli
from nightreg.clock import FrozenClock, SystemClock
from nightreg.db import Database
from nightreg.jobs import make_scheduler, slot_of
from nightreg.models import AuditEvent, JobLease, JobRun, Signal
from nightreg.services import jobs, retention
from nightreg.settings import Settings
from tests.factories import forward, make_agreement, make_staff, new_site, on_database
from tests.pages import sign_in

T0 = datetime(2026, 7, 14, 12, 0, tzinfo=UTC)
T = TypeVar("T")


@dataclass
class Counts:
    n: int = 1

    def counts(self) -> dict[str, int]:
        return {"found": self.n}


def a_job(name: str, calls: list[datetime] | None = None, fail: bool = False) -> jobs.JobSpec:
    async def body(db: Database, now: datetime, full: bool) -> Counts:
        if calls is not None:
            calls.append(now)
        if fail:
            raise RuntimeError("the database went away\nsecond line")
        return Counts(3 if full else 1)

    return jobs.JobSpec(name, body)


def unique_job() -> str:
    return f"test-{os.urandom(4).hex()}"


async def test_a_lease_is_taken_once_until_it_expires(db: Database):
    job = unique_job()
    assert await jobs.acquire(db, job, holder="a", now=T0)
    assert not await jobs.acquire(db, job, holder="b", now=T0 + timedelta(minutes=1))
    assert await jobs.acquire(db, job, holder="b", now=T0 + timedelta(hours=1))


async def test_a_released_lease_can_be_taken_but_not_for_a_slot_already_run(db: Database):
    job = unique_job()
    slot = T0.replace(minute=10)
    assert await jobs.acquire(db, job, holder="a", now=T0, slot=slot)
    await jobs.release(db, job, holder="a", now=T0 + timedelta(seconds=5))

    assert not await jobs.acquire(db, job, holder="b", now=T0 + timedelta(seconds=6), slot=slot)
    assert await jobs.acquire(
        db, job, holder="b", now=T0 + timedelta(seconds=7), slot=slot + timedelta(minutes=10)
    )


async def test_a_run_is_recorded_with_its_counts(db: Database):
    spec = a_job(unique_job())
    result = await jobs.run_job(
        db, spec, clock=FrozenClock(T0), holder="h", trigger="cli", full=True
    )

    assert result.ran
    assert result.run is not None
    runs = await jobs.recent_runs(db, spec.name)
    assert [(r.status, r.counts, r.trigger) for r in runs] == [("ok", {"found": 3}, "cli")]


async def test_a_failing_job_is_recorded_as_failed_and_frees_its_lease(db: Database):
    spec = a_job(unique_job(), fail=True)
    result = await jobs.run_job(db, spec, clock=FrozenClock(T0), holder="h", trigger="cli")

    assert result.run is not None
    assert result.run.status == "failed"
    assert "RuntimeError" in (result.run.error or "")
    assert await jobs.acquire(db, spec.name, holder="other", now=T0 + timedelta(seconds=1))


async def test_a_job_whose_lease_is_held_does_not_run_and_records_nothing(db: Database):
    calls: list[datetime] = []
    spec = a_job(unique_job(), calls)
    await jobs.acquire(db, spec.name, holder="elsewhere", now=T0)

    result = await jobs.run_job(db, spec, clock=FrozenClock(T0), holder="h", trigger="cli")

    assert not result.ran
    assert calls == []
    assert await jobs.recent_runs(db, spec.name) == []


async def test_a_second_scheduler_firing_for_a_slot_already_run_skips_it(db: Database):
    calls: list[datetime] = []
    spec = a_job(unique_job(), calls)
    slot = T0.replace(minute=10)
    first = await jobs.run_job(
        db, spec, clock=FrozenClock(T0.replace(minute=10, second=1)), holder="a",
        trigger="schedule", slot=slot,
    )  # fmt: skip
    late = await jobs.run_job(
        db, spec, clock=FrozenClock(T0.replace(minute=10, second=30)), holder="b",
        trigger="schedule", slot=slot,
    )  # fmt: skip
    by_hand = await jobs.run_job(
        db, spec, clock=FrozenClock(T0.replace(minute=11)), holder="b", trigger="cli"
    )

    assert (first.ran, late.ran, by_hand.ran) == (True, False, True)
    assert len(calls) == 2


async def test_a_cancelled_run_is_recorded_as_failed_not_ok_and_frees_its_lease(db: Database):
    async def body(db: Database, now: datetime, full: bool) -> Counts:
        raise asyncio.CancelledError

    spec = jobs.JobSpec(unique_job(), body)
    with pytest.raises(asyncio.CancelledError):
        await jobs.run_job(db, spec, clock=FrozenClock(T0), holder="h", trigger="schedule")

    [run] = await jobs.recent_runs(db, spec.name)
    assert (run.status, run.error) == ("failed", "interrupted")
    assert await jobs.acquire(db, spec.name, holder="other", now=T0 + timedelta(seconds=1))


def test_the_slot_of_a_firing_is_the_last_scheduled_time_at_or_before_now():
    trigger = CronTrigger.from_crontab("*/10 * * * *", timezone=UTC)
    assert slot_of(trigger, T0.replace(minute=13, second=2)) == T0.replace(minute=10)
    assert slot_of(trigger, T0.replace(minute=20)) == T0.replace(minute=20)


def test_the_cli_runs_the_scan_and_prints_its_summary(
    cli_env: object, capsys: pytest.CaptureFixture[str]
):
    assert cli.main(["jobs", "run", "scan", "--full"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("scan (full) done in")
    assert "findings" in out


def test_the_cli_exits_1_and_prints_the_error_when_the_job_fails(
    cli_env: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    import nightreg.jobs

    failing = a_job(unique_job(), fail=True)
    monkeypatch.setattr(nightreg.jobs, "job_specs", lambda settings: {"scan": failing})

    assert cli.main(["jobs", "run", "scan"]) == 1
    assert "scan failed after" in capsys.readouterr().out


def test_the_cli_says_so_when_another_process_holds_the_lease(
    cli_env: object, database_url: str, capsys: pytest.CaptureFixture[str]
):
    async def hold() -> None:
        db = Database(database_url)
        await jobs.acquire(db, "overdue", holder="elsewhere", now=SystemClock().now())
        await db.dispose()

    asyncio.run(hold())
    try:
        assert cli.main(["jobs", "run", "overdue"]) == 1
        assert "Another process is running overdue" in capsys.readouterr().out
    finally:

        async def free() -> None:
            db = Database(database_url)
            await jobs.release(
                db, "overdue", holder="elsewhere", now=datetime(2000, 1, 1, tzinfo=UTC)
            )
            await db.dispose()

        asyncio.run(free())


async def test_the_jobs_page_shows_each_job_and_an_admin_can_run_one_now(
    client: AsyncTestClient[Litestar], db: Database
):
    admin = await make_staff(db, "admin")
    csrf = await sign_in(client, admin.email)

    page = await client.get("/admin/jobs")
    assert page.status_code == 200
    assert "*/10 * * * *" in page.text
    assert "overdue" in page.text

    answer = await client.post(
        "/admin/jobs/overdue/run", data={"_csrf_token": csrf}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/jobs?ran=overdue-ok"
    async with db.read() as session:
        requested = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "job_run_requested", AuditEvent.actor.contains(admin.email)
            )
        )
        run = await session.scalar(
            select(JobRun).where(JobRun.trigger.contains(admin.email)).order_by(JobRun.id.desc())
        )
    assert requested is not None
    assert run is not None
    assert run.status == "ok"


async def test_running_an_unknown_job_is_not_found_and_not_audited(
    client: AsyncTestClient[Litestar], db: Database
):
    admin = await make_staff(db, "admin")
    csrf = await sign_in(client, admin.email)

    answer = await client.post("/admin/jobs/no-such-job/run", data={"_csrf_token": csrf})

    assert answer.status_code == 404
    async with db.read() as session:
        requested = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "job_run_requested", AuditEvent.actor.contains(admin.email)
            )
        )
    assert requested is None


async def test_a_harbour_master_may_not_see_or_run_jobs(
    client: AsyncTestClient[Litestar], db: Database
):
    staff = await make_staff(db, "harbour_master")
    csrf = await sign_in(client, staff.email)

    assert (await client.get("/admin/jobs")).status_code == 403
    answer = await client.post("/admin/jobs/scan/run", data={"_csrf_token": csrf})
    assert answer.status_code == 403


@pytest.mark.skipif(
    not os.environ.get("NIGHTREG_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="two schedulers on one database is the PostgreSQL deployment",
)
async def test_two_schedulers_on_postgresql_run_each_slot_once(
    database_url: str, settings: Settings
):
    name = unique_job()
    calls: list[datetime] = []
    spec = a_job(name, calls)
    databases = [Database(database_url), Database(database_url)]
    schedulers = [
        make_scheduler(
            db, settings, SystemClock(), specs={name: spec},
            triggers={name: CronTrigger(second="*", timezone=UTC)},
        )
        for db in databases
    ]  # fmt: skip
    for scheduler in schedulers:
        scheduler.start()
    await asyncio.sleep(3.5)
    for scheduler in schedulers:
        scheduler.shutdown(wait=False)
    await asyncio.sleep(0.3)
    async with databases[0].read() as session:
        runs = list(await session.scalars(select(JobRun).where(JobRun.job == name)))
    for db in databases:
        await db.dispose()

    slots = Counter(run.started_at.replace(microsecond=0) for run in runs)
    assert len(runs) >= 2
    assert len(runs) == len(calls)
    assert all(count == 1 for count in slots.values()), slots


def test_the_dispatch_job_is_scheduled_every_minute_by_default(settings: Settings):
    from nightreg.jobs import crontabs, job_specs

    assert crontabs(settings)["dispatch"] == "* * * * *"
    assert job_specs(settings)["dispatch"].name == "dispatch"


async def test_the_purge_removes_job_runs_older_than_ninety_days_but_keeps_the_newest_success(
    db: Database, settings: Settings
):
    name = unique_job()
    ok = a_job(name)
    failing = jobs.JobSpec(name, a_job(name, fail=True).body)
    await jobs.run_job(db, ok, clock=FrozenClock(T0), holder="h", trigger="cli")
    await jobs.run_job(db, failing, clock=FrozenClock(T0 + timedelta(days=1)), holder="h",
                       trigger="cli")  # fmt: skip
    await jobs.run_job(db, failing, clock=FrozenClock(T0 + timedelta(days=2)), holder="h",
                       trigger="cli")  # fmt: skip

    await jobs.run_job(
        db, failing, clock=FrozenClock(T0 + timedelta(days=91, hours=12)), holder="h",
        trigger="cli",
    )  # fmt: skip
    await retention.purge(db, settings, now=T0 + timedelta(days=91, hours=12))

    runs = await jobs.recent_runs(db, name)
    assert [(r.status, r.started_at) for r in runs] == [
        ("failed", T0 + timedelta(days=91, hours=12)),
        ("failed", T0 + timedelta(days=2)),
        ("ok", T0),
    ]


# --- issue 18: a short lease, kept alive by a heartbeat --------------------------------------


def a_waiting_job(
    started: asyncio.Event, proceed: asyncio.Event, heartbeat: timedelta
) -> jobs.JobSpec:
    """A job that runs until the test lets it finish, with a 90-second lease."""

    async def body(db: Database, now: datetime, full: bool) -> Counts:
        started.set()
        await proceed.wait()
        return Counts()

    lease = jobs.LeaseTiming(ttl=timedelta(seconds=90), heartbeat=heartbeat)
    return jobs.JobSpec(unique_job(), body, lease)


async def lease_expiry(db: Database, job: str) -> datetime | None:
    async with db.read() as session:
        expiry: datetime | None = await session.scalar(
            select(JobLease.expires_at).where(JobLease.job == job)
        )
    return expiry


async def test_a_lease_is_renewed_only_by_its_holder_and_only_while_it_holds(db: Database):
    job = unique_job()
    assert await jobs.acquire(db, job, holder="a", now=T0, ttl=timedelta(seconds=90))

    assert not await jobs.renew(db, job, holder="b", now=T0 + timedelta(seconds=30))
    assert await jobs.renew(db, job, holder="a", now=T0 + timedelta(seconds=60))
    assert await lease_expiry(db, job) == T0 + timedelta(seconds=150)
    # Expired, it is lost, even though nobody has taken it yet.
    assert not await jobs.renew(db, job, holder="a", now=T0 + timedelta(seconds=150))


async def test_a_running_job_renews_its_lease_so_nobody_takes_it_however_long_it_runs(
    db: Database,
):
    clock = FrozenClock(T0)
    started, proceed = asyncio.Event(), asyncio.Event()
    spec = a_waiting_job(started, proceed, heartbeat=timedelta(milliseconds=20))
    running = asyncio.create_task(jobs.run_job(db, spec, clock=clock, holder="h", trigger="cli"))
    await asyncio.wait_for(started.wait(), 5)

    for _ in range(4):  # four minutes of a run whose lease lasts 90 seconds
        clock.advance(timedelta(minutes=1))
        deadline = time.monotonic() + 5
        while await lease_expiry(db, spec.name) != clock.now() + timedelta(seconds=90):
            assert time.monotonic() < deadline, "the heartbeat did not renew the lease"
            await asyncio.sleep(0.01)
        later = clock.now() + timedelta(seconds=89)
        assert not await jobs.acquire(db, spec.name, holder="other", now=later)
    proceed.set()
    result = await asyncio.wait_for(running, 5)

    assert result.run is not None
    assert result.run.status == "ok"
    assert await jobs.acquire(db, spec.name, holder="other", now=clock.now())


async def test_a_run_that_lost_its_lease_after_a_stall_stops_and_is_recorded_as_failed(
    db: Database,
):
    clock = FrozenClock(T0)
    started, never = asyncio.Event(), asyncio.Event()
    spec = a_waiting_job(started, never, heartbeat=timedelta(milliseconds=200))
    running = asyncio.create_task(
        jobs.run_job(db, spec, clock=clock, holder="stalled", trigger="schedule")
    )
    await asyncio.wait_for(started.wait(), 5)

    # The holder stalled (a paused machine) past its lease, and another process took the job.
    clock.advance(timedelta(seconds=91))
    assert await jobs.acquire(db, spec.name, holder="other", now=clock.now())
    result = await asyncio.wait_for(running, 5)

    assert result.run is not None
    assert result.run.status == "failed"
    assert "lease was lost" in (result.run.error or "")
    [run] = await jobs.recent_runs(db, spec.name)
    assert run.status == "failed"
    # The stopped run neither renewed nor released the other process's lease.
    later = clock.now() + timedelta(seconds=89)
    assert not await jobs.acquire(db, spec.name, holder="third", now=later)


@pytest.fixture
def answering_hub() -> Iterator[str]:
    """A hub that stores every signal it is sent (200); its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub/signals"
    server.shutdown()
    server.server_close()


def test_a_dispatcher_killed_mid_post_frees_the_dispatch_job_when_its_short_lease_expires(
    cli_env: Path,
    database_url: str,
    answering_hub: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    async def a_pending_signal(db: Database) -> str:
        site = await new_site(db)
        made = await forward(db, site, await make_agreement(db), at=SystemClock().now())
        return made.uid

    uid = on_database(database_url, a_pending_signal)
    silent = socket.create_server(("127.0.0.1", 0))  # accepts the POST, never answers
    silent.settimeout(30)
    lease = 3
    monkeypatch.setenv("NIGHTREG_HUB_URL", f"http://127.0.0.1:{silent.getsockname()[1]}/hub")
    monkeypatch.setenv("NIGHTREG_HUB_SECRET", "hub-secret-for-tests-" + "h" * 32)
    monkeypatch.setenv("NIGHTREG_INSTALLATION_ID", "test-installation")
    monkeypatch.setenv("NIGHTREG_HUB_TIMEOUT_SECONDS", "600")
    monkeypatch.setenv("NIGHTREG_JOB_LEASE_SECONDS", str(lease))
    monkeypatch.setenv("NIGHTREG_JOB_HEARTBEAT_SECONDS", "1")
    root = Path(nightreg.__file__).resolve().parents[1]
    dispatcher = subprocess.Popen(
        [sys.executable, "-m", "nightreg.cli", "jobs", "run", "dispatch"],
        cwd=cli_env, env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        connection, _ = silent.accept()
        with connection:
            assert b"POST /hub" in connection.recv(65536)
            # Mid-POST, longer than the lease lasts: the heartbeat keeps it.
            time.sleep(lease + 0.5)
            assert cli.main(["jobs", "run", "dispatch"]) == 1
            dispatcher.send_signal(signal.SIGKILL)
            dispatcher.wait(10)
            killed = time.monotonic()
    finally:
        if dispatcher.poll() is None:
            dispatcher.kill()
        silent.close()
    assert "Another process is running dispatch" in capsys.readouterr().out

    monkeypatch.setenv("NIGHTREG_HUB_URL", answering_hub)
    while True:
        tried = time.monotonic()
        if (code := cli.main(["jobs", "run", "dispatch"])) != 1:
            break
        assert tried - killed < lease + 10, "the dead dispatcher's lease held on"
        time.sleep(0.25)
    waited = tried - killed

    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[-1].startswith("dispatch done in"), out
    assert "delivered 1" in out[-1], out
    assert waited <= lease + 2  # the lease's seconds, plus the polling's

    async def runs_and_signal(db: Database) -> tuple[list[JobRun], str]:
        async with db.read() as session:
            status = await session.scalar(select(Signal.status).where(Signal.uid == uid))
        return await jobs.recent_runs(db, "dispatch"), str(status)

    runs, status = on_database(database_url, runs_and_signal)
    assert status == "delivered"
    assert [(r.status, r.error) for r in runs[:2]] == [
        ("ok", None),
        ("failed", "interrupted: its holder stopped renewing the lease"),
    ]
