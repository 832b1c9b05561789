"""A scheduler that starts runs each job whose latest slot was missed, once (nightreg.jobs)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.jobs import catch_up, catch_up_one, last_slot, make_scheduler
from nightreg.models import JobRun
from nightreg.services import jobs
from nightreg.settings import Settings

T0 = datetime(2026, 7, 14, 12, 0, tzinfo=UTC)
EVERY_TEN_MINUTES = CronTrigger.from_crontab("*/10 * * * *", timezone=UTC)


@dataclass
class Counts:
    def counts(self) -> dict[str, int]:
        return {"done": 1}


def a_job(calls: list[datetime]) -> jobs.JobSpec:
    async def body(db: Database, now: datetime, full: bool) -> Counts:
        calls.append(now)
        return Counts()

    return jobs.JobSpec(f"test-catch-up-{os.urandom(4).hex()}", body)


async def runs_of(db: Database, job: str) -> list[JobRun]:
    async with db.read() as session:
        return list(await session.scalars(select(JobRun).where(JobRun.job == job)))


async def test_a_job_whose_last_slot_was_missed_runs_once_for_the_latest_slot(db: Database):
    calls: list[datetime] = []
    spec = a_job(calls)
    # It ran at 12:00; the server was down at 12:10 and 12:20 and starts again at 12:23.
    await jobs.run_job(db, spec, clock=FrozenClock(T0), holder="old", trigger="schedule", slot=T0)
    restart = FrozenClock(T0 + timedelta(minutes=23))

    result = await catch_up_one(db, spec, EVERY_TEN_MINUTES, clock=restart, holder="new")

    assert result.ran
    assert result.run is not None
    assert result.run.trigger == "catch-up"
    assert len(calls) == 2
    slot = await last_slot(db, spec.name)
    assert slot is not None
    assert slot.astimezone(UTC) == T0 + timedelta(minutes=20)


async def test_a_second_start_in_the_same_slot_runs_nothing(db: Database):
    calls: list[datetime] = []
    spec = a_job(calls)
    first = FrozenClock(T0 + timedelta(minutes=3))
    second = FrozenClock(T0 + timedelta(minutes=8))

    ran_first = await catch_up_one(db, spec, EVERY_TEN_MINUTES, clock=first, holder="a")
    ran_second = await catch_up_one(db, spec, EVERY_TEN_MINUTES, clock=second, holder="b")

    assert (ran_first.ran, ran_second.ran) == (True, False)
    assert len(calls) == 1


async def test_a_job_that_ran_its_latest_slot_on_schedule_is_not_caught_up(db: Database):
    calls: list[datetime] = []
    spec = a_job(calls)
    slot = T0 + timedelta(minutes=10)
    await jobs.run_job(
        db, spec, clock=FrozenClock(slot), holder="old", trigger="schedule", slot=slot
    )

    result = await catch_up_one(
        db, spec, EVERY_TEN_MINUTES, clock=FrozenClock(slot + timedelta(minutes=9)), holder="new"
    )

    assert not result.ran
    assert len(calls) == 1


async def test_two_schedulers_starting_at_once_catch_up_a_missed_slot_once(
    db: Database, database_url: str
):
    calls: list[datetime] = []
    spec = a_job(calls)
    other = Database(database_url)  # a second process: its own engine
    clock = FrozenClock(T0 + timedelta(minutes=14))
    try:
        results = await asyncio.gather(
            catch_up(db, {spec.name: spec}, {spec.name: EVERY_TEN_MINUTES}, clock=clock,
                     holder="a"),
            catch_up(other, {spec.name: spec}, {spec.name: EVERY_TEN_MINUTES}, clock=clock,
                     holder="b"),
        )  # fmt: skip
    finally:
        await other.dispose()

    assert sorted(r[spec.name].ran for r in results) == [False, True]
    assert len(calls) == 1
    assert len(await runs_of(db, spec.name)) == 1


async def test_starting_the_scheduler_catches_up_every_job_with_a_missed_slot(
    db: Database, settings: Settings
):
    calls_a: list[datetime] = []
    calls_b: list[datetime] = []
    missed, current = a_job(calls_a), a_job(calls_b)
    now = T0 + timedelta(minutes=31)
    # `current` already ran the 12:30 slot; `missed` last ran at 12:00.
    await jobs.run_job(db, missed, clock=FrozenClock(T0), holder="old", trigger="schedule",
                       slot=T0)  # fmt: skip
    await jobs.run_job(db, current, clock=FrozenClock(now), holder="old", trigger="schedule",
                       slot=T0 + timedelta(minutes=30))  # fmt: skip
    scheduler = make_scheduler(
        db, settings, FrozenClock(now),
        specs={missed.name: missed, current.name: current},
        triggers={missed.name: EVERY_TEN_MINUTES, current.name: EVERY_TEN_MINUTES},
    )  # fmt: skip

    scheduler.start()
    try:
        for _ in range(100):
            if len(calls_a) == 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # time for a wrong second run to show
    finally:
        scheduler.shutdown(wait=False)

    assert (len(calls_a), len(calls_b)) == (2, 1)
    assert [r.trigger for r in await runs_of(db, missed.name)].count("catch-up") == 1
    assert [r.trigger for r in await runs_of(db, current.name)].count("catch-up") == 0


async def test_a_job_that_never_ran_is_run_once_at_start(db: Database):
    calls: list[datetime] = []
    spec = a_job(calls)
    clock = FrozenClock(T0 + timedelta(minutes=5))

    first = await catch_up(db, {spec.name: spec}, {spec.name: EVERY_TEN_MINUTES}, clock=clock,
                           holder="a")  # fmt: skip
    again = await catch_up(db, {spec.name: spec}, {spec.name: EVERY_TEN_MINUTES}, clock=clock,
                           holder="b")  # fmt: skip

    assert (first[spec.name].ran, again[spec.name].ran) == (True, False)
    assert len(calls) == 1


def a_dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


async def hold_mid_run(
    db: Database, spec: jobs.JobSpec, holder: str, at: datetime, *, renewed: datetime | None = None
) -> None:
    """What a process killed in the middle of a scheduled run leaves: its lease and its run.

    `renewed`: its heartbeat's last renewal of the lease (a long run), before it died.
    """
    assert await jobs.acquire(db, spec.name, holder=holder, now=at, slot=at)
    beat = at + jobs.HEARTBEAT
    while renewed is not None and beat <= renewed:
        assert await jobs.renew(db, spec.name, holder=holder, now=beat)
        beat += jobs.HEARTBEAT
    async with db.write() as session:
        session.add(
            JobRun(job=spec.name, trigger="schedule", holder=holder, started_at=at,
                   status="running", counts={})
        )  # fmt: skip


# The holders below last renewed their leases at 12:10:30; the scheduler restarts at 12:11,
# while those leases still hold (until 12:12), and the 12:10 slot was missed.
LAST_BEAT = T0 + timedelta(minutes=10, seconds=30)


async def test_a_lease_left_by_a_process_killed_mid_run_is_freed_and_the_job_caught_up(
    db: Database,
):
    calls: list[datetime] = []
    spec = a_job(calls)
    dead = f"{socket.gethostname()}:{a_dead_pid()}:abc123"
    await hold_mid_run(db, spec, dead, T0, renewed=LAST_BEAT)
    restart = FrozenClock(T0 + timedelta(minutes=11))  # the lease would hold for 60 s more

    results = await catch_up(db, {spec.name: spec}, {spec.name: EVERY_TEN_MINUTES},
                             clock=restart, holder="new")  # fmt: skip

    assert results[spec.name].ran
    assert len(calls) == 1
    runs = sorted(await runs_of(db, spec.name), key=lambda r: r.started_at)
    assert [(r.status, r.error) for r in runs] == [
        ("failed", "interrupted: the process died"),
        ("ok", None),
    ]


async def test_a_lease_held_by_a_live_process_or_another_machine_is_left_alone(db: Database):
    calls: list[datetime] = []
    alive, elsewhere = a_job(calls), a_job(calls)
    await hold_mid_run(
        db, alive, f"{socket.gethostname()}:{os.getppid()}:abc123", T0, renewed=LAST_BEAT
    )
    await hold_mid_run(
        db, elsewhere, f"other-host.example:{a_dead_pid()}:abc123", T0, renewed=LAST_BEAT
    )
    restart = FrozenClock(T0 + timedelta(minutes=11))

    results = await catch_up(
        db, {alive.name: alive, elsewhere.name: elsewhere},
        {alive.name: EVERY_TEN_MINUTES, elsewhere.name: EVERY_TEN_MINUTES},
        clock=restart, holder="new",
    )  # fmt: skip

    assert not results[alive.name].ran
    assert not results[elsewhere.name].ran
    assert calls == []


async def test_a_lease_whose_holder_on_another_machine_stopped_renewing_is_free_within_90_s(
    db: Database,
):
    calls: list[datetime] = []
    spec = a_job(calls)
    await hold_mid_run(
        db, spec, f"other-host.example:{a_dead_pid()}:abc123", T0, renewed=LAST_BEAT
    )  # its last heartbeat; then the machine lost power

    still_held = await catch_up(db, {spec.name: spec}, {spec.name: EVERY_TEN_MINUTES},
                                clock=FrozenClock(LAST_BEAT + timedelta(seconds=89)),
                                holder="new")  # fmt: skip
    freed = await catch_up(db, {spec.name: spec}, {spec.name: EVERY_TEN_MINUTES},
                           clock=FrozenClock(LAST_BEAT + timedelta(seconds=90)),
                           holder="new")  # fmt: skip

    assert not still_held[spec.name].ran
    assert freed[spec.name].ran
    assert len(calls) == 1
    runs = sorted(await runs_of(db, spec.name), key=lambda r: r.started_at)
    assert [(r.status, r.error) for r in runs] == [
        ("failed", "interrupted: its holder stopped renewing the lease"),
        ("ok", None),
    ]
