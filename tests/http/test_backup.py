"""Backups that restore: `nightreg backup` and `nightreg restore` on the test's database kind,
refusal of a database that is not empty, the nightly job and its rotation."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.jobs import crontabs, job_specs
from nightreg.models import AuditEvent, JobRun, Visit
from nightreg.services import backup
from nightreg.services.access import CLI
from nightreg.services.jobs import run_job
from nightreg.settings import Settings
from tests.databases import TemplateDatabase
from tests.factories import SUMMER_EVENING, TEST_SECRET_KEY, add_visit, make_staff, new_site
from tests.pages import run, sign_in

KEY = "test-backup-key-" + "b" * 32
T = TypeVar("T")


@pytest.fixture
def empty_database_url(template_database: TemplateDatabase) -> Iterator[str]:
    url = template_database.empty()
    yield url
    template_database.drop(url)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return replace(settings, backup_key=KEY, backup_dir=tmp_path / "backups", backup_keep=3)


@pytest.fixture(autouse=True)
def needs_pg_tools(database_url: str) -> None:
    if database_url.startswith("postgresql") and not (
        shutil.which("pg_dump") and shutil.which("pg_restore")
    ):
        pytest.skip("pg_dump or pg_restore is not on PATH: the PostgreSQL backup needs both")


async def count(db: Database, what: object) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(what)) or 0)  # type: ignore[arg-type]


def in_thread(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Async set-up for a command-line test (whose commands run their own event loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work()).result()


def test_a_backup_made_on_the_command_line_restores_into_an_empty_database(
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    empty_database_url: str,
):
    async def a_visit() -> Visit:
        db = Database(database_url)
        try:
            return await add_visit(db, await new_site(db), guest_name="Anna Visser")
        finally:
            await db.dispose()

    visit = in_thread(a_visit)
    monkeypatch.setenv("NIGHTREG_BACKUP_KEY", KEY)
    monkeypatch.setenv("NIGHTREG_SECRET_KEY", TEST_SECRET_KEY)  # the audit key of the events
    out = cli_env / "register.nrbk"

    code, said, err = run(capsys, "backup", "--out", str(out))

    assert (code, err) == (0, "")
    assert "Backup written to" in said
    assert b"Anna Visser" not in out.read_bytes()
    monkeypatch.setenv("NIGHTREG_DATABASE_URL", empty_database_url)
    code, said, err = run(capsys, "restore", str(out))
    assert (code, err) == (0, ""), said
    assert "Audit trail intact" in said
    assert "matches the checkpoint the backup carries" in said
    code, said, _ = run(capsys, "audit", "verify")
    assert code == 0, said

    async def restored() -> tuple[Visit | None, list[str], str]:
        target, live = Database(empty_database_url), Database(database_url)
        try:
            async with target.read() as session:
                back = await session.get(Visit, visit.id)
                actions = list(await session.scalars(select(AuditEvent.action)))
            async with live.read() as session:
                made = await session.scalar(
                    select(AuditEvent.details).where(AuditEvent.action == "backup_made")
                )
            return back, actions, made or "{}"
        finally:
            await target.dispose()
            await live.dispose()

    back, actions, made = in_thread(restored)
    assert back is not None
    assert (back.guest_name, back.private_token_hash) == ("Anna Visser", visit.private_token_hash)
    assert actions[-1] == "backup_restored"
    assert json.loads(made)["file"] == "register.nrbk"
    assert "Anna" not in str(made)


async def test_a_restore_into_a_database_that_is_not_empty_is_refused_and_changes_nothing(
    settings: Settings, db: Database, clock: FrozenClock, tmp_path: Path
):
    site = await new_site(db)
    await add_visit(db, site)
    made = await backup.make_backup(db, settings, tmp_path / "a.nrbk", actor=CLI, now=clock.now())
    before = await count(db, Visit)

    with pytest.raises(backup.BackupError, match="is not empty"):
        await backup.restore(settings, made.path, actor=CLI, now=clock.now())

    assert await count(db, Visit) == before


async def test_a_restore_refuses_a_changed_file_before_it_writes_anything(
    settings: Settings, db: Database, clock: FrozenClock, tmp_path: Path, empty_database_url: str
):
    await add_visit(db, await new_site(db))
    made = await backup.make_backup(db, settings, tmp_path / "a.nrbk", actor=CLI, now=clock.now())
    blob = bytearray(made.path.read_bytes())
    blob[-100] ^= 0x01
    made.path.write_bytes(bytes(blob))
    target = replace(settings, database_url=empty_database_url)

    with pytest.raises(backup.BackupFileError, match="does not authenticate"):
        await backup.restore(target, made.path, actor=CLI, now=clock.now())
    with pytest.raises(backup.BackupFileError, match="another key"):
        await backup.restore(
            replace(target, backup_key="x" * 40), made.path, actor=CLI, now=clock.now()
        )
    # Still empty: a second, intact file could go in.
    if target.is_sqlite:
        assert not backup._sqlite_path(empty_database_url).exists()
    else:
        empty = Database(empty_database_url)
        try:
            assert await backup._postgres_is_empty(empty)
        finally:
            await empty.dispose()


def test_rotation_keeps_the_newest_files_by_the_time_in_their_name(tmp_path: Path):
    clock = FrozenClock(SUMMER_EVENING)
    names = []
    for _ in range(10):
        name = backup.file_name(clock.now())
        (tmp_path / name).write_bytes(b"")
        names.append(name)
        clock.advance(timedelta(days=1))
    (tmp_path / "notes.txt").write_text("not a backup")

    kept, deleted = backup.rotate(tmp_path, 7, now=clock.now())

    assert [p.name for p in kept] == names[3:]
    assert sorted(p.name for p in deleted) == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names[3:], "notes.txt"])


async def test_the_nightly_job_writes_into_the_folder_keeps_the_newest_and_shows_on_the_jobs_page(
    settings: Settings, db: Database, clock: FrozenClock, client: AsyncTestClient[Litestar]
):
    await add_visit(db, await new_site(db))
    assert crontabs(settings)["backup"] == "30 4 * * *"
    assert "backup" not in job_specs(replace(settings, backup_dir=None))
    spec = job_specs(settings)["backup"]

    for night in range(4):
        clock.advance(timedelta(days=1))
        result = await run_job(db, spec, clock=clock, holder=f"test-{night}", trigger="schedule")
        assert result.run is not None
        assert result.run.status == "ok", result.run.error

    assert settings.backup_dir is not None
    files = sorted(p.name for p in settings.backup_dir.iterdir())
    assert files == [backup.file_name(clock.now() - timedelta(days=d)) for d in (2, 1, 0)]
    async with db.read() as session:
        runs = list(await session.scalars(select(JobRun).where(JobRun.job == "backup")))
    assert [r.counts["deleted"] for r in runs] == [0, 0, 0, 1]
    admin = await make_staff(db, "admin")
    await sign_in(client, admin.email)
    page = await client.get("/admin/jobs")
    assert "Nightly backup" in page.text
    assert "30 4 * * *" in page.text


def test_without_a_key_or_without_pg_dump_the_backup_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.delenv("NIGHTREG_BACKUP_KEY", raising=False)
    code, _, err = run(capsys, "backup", "--out", str(cli_env / "x.nrbk"))
    assert code == 2
    assert "NIGHTREG_BACKUP_KEY is not set" in err
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(backup.BackupError, match=r"pg_dump is not on PATH.*docs/operations.md"):
        backup._tool("pg_dump")
