"""Backups that restore: an encrypted, consistent copy made while the app runs, and its restore.

- SQLite: SQLite's online backup API copies the database in one step, as one read transaction
  sees it (in WAL mode writers go on meanwhile), into a scratch file beside the database (never
  in the backup folder), which is encrypted into the backup file and deleted.
- PostgreSQL: a REPEATABLE READ transaction exports its snapshot; `pg_dump --snapshot` dumps
  exactly that (custom format, no owner, no privileges) and its output is encrypted as it
  streams: no plain copy touches a disk.

Either way the header names the migration head and a signed checkpoint of the audit chain as
the copy sees it; a restore compares the restored trail with it. A restore goes only into an
empty database, authenticates the whole file before it writes anything, upgrades an older
schema, verifies the audit chain, and records itself.

The nightly job (`backup`, on when NIGHTREG_BACKUP_DIR is set) writes into the folder and keeps
the newest NIGHTREG_BACKUP_KEEP files: what the purge deletes leaves the backups that many
nights later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg import __version__
from nightreg.db import Database
from nightreg.services import audit, audit_checkpoints
from nightreg.services.access import Actor
from nightreg.services.backup_file import (
    BackupFileError,
    Header,
    Writer,
    check,
    decrypt,
    read_header,
)
from nightreg.settings import Settings

__all__ = ["BackupError", "BackupFileError"]

# The nightly job's files: the time in the name sorts them, and rotation reads only these.
FILE_PATTERN = re.compile(r"^nightreg-(\d{8}T\d{6}Z)\.nrbk$")
PARTIAL_SUFFIX = ".partial"
_PIPE_CHUNK = 256 * 1024


class BackupError(Exception):
    """A backup or restore cannot be done as asked; the message is one line an operator acts on."""


def _require_key(settings: Settings) -> str:
    if not settings.backup_key:
        raise BackupError(
            "NIGHTREG_BACKUP_KEY is not set: backups are encrypted with it (at least 32 "
            "characters; keep a copy away from the server and its backups)"
        )
    return settings.backup_key


def _sqlite_path(database_url: str) -> Path:
    name = make_url(database_url).database or ""
    if not name or name == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up or restore into")
    return Path(name).expanduser().resolve()


def _is_inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


@contextlib.contextmanager
def _scratch_beside(database: Path, settings: Settings) -> Iterator[Path]:
    """A private folder for a plain copy, beside the database it copies (where the same data
    already lies in clear); the system's temporary folder if that would be the backup folder."""
    parent = database.parent
    if _is_inside(parent, settings.backup_dir):
        parent = Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix=".nightreg-backup-", dir=parent) as scratch:
        yield Path(scratch)


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _wall() -> datetime:
    # The snapshot's moments are real time whatever the injected clock says: the drill
    # compares them with when check-ins were acknowledged.
    return datetime.now(UTC)


# --- making a backup ------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int  # bytes of the encrypted file
    plain_size: int
    header: Header
    seconds: float


async def _revision(session: AsyncSession) -> str:
    try:
        found = await session.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:  # no table: a database never migrated
        return ""
    return str(found or "")


def _sqlite_copy(source: Path, target: Path) -> None:
    """One backup step over the whole database: a consistent snapshot, writers not blocked."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        # One self-contained file, without a write-ahead log beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


async def _copy_facts(url: str, now: datetime) -> tuple[str, dict[str, Any]]:
    """The migration head and the audit chain's signed checkpoint of a copy."""
    copy = Database(url)
    try:
        async with copy.read() as session:
            head = await _revision(session)
            checkpoint = await audit_checkpoints.take_in(session, now=now)
    finally:
        await copy.dispose()
    return head, checkpoint.as_dict()


async def _backup_sqlite(settings: Settings, out: BinaryIO, now: datetime) -> Writer:
    source = _sqlite_path(settings.database_url)
    if not source.exists():
        raise BackupError(f"there is no database at {source}")
    with _scratch_beside(source, settings) as scratch:
        copy = scratch / "copy.db"
        began = _wall()
        await asyncio.to_thread(_sqlite_copy, source, copy)
        ended = _wall()
        head, checkpoint = await _copy_facts(f"sqlite+aiosqlite:///{copy}", now)
        header = Header(
            database="sqlite", content="sqlite-database", app_version=__version__,
            migration_head=head, created_at=_utc(now), snapshot_began=_utc(began),
            snapshot_ended=_utc(ended), key_id="", audit_checkpoint=checkpoint,
        )  # fmt: skip
        writer = Writer(out, header, _require_key(settings))
        with copy.open("rb") as fh:
            for block in iter(lambda: fh.read(_PIPE_CHUNK), b""):
                writer.write(block)
        writer.close()
    return writer


def pg_environment(database_url: str) -> dict[str, str]:
    """libpq's variables for the app's database URL (the password never on a command line)."""
    url = make_url(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for name, value in (
        ("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
        ("PGPASSWORD", url.password), ("PGDATABASE", url.database),
    ):  # fmt: skip
        if value not in (None, ""):
            env[name] = str(value)
    ssl = url.query.get("ssl") or url.query.get("sslmode")
    if isinstance(ssl, str) and ssl:
        env["PGSSLMODE"] = {"true": "require", "false": "disable"}.get(ssl, ssl)
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not on PATH: install the PostgreSQL client tools (the server's major "
            f"version or newer), or use the recipe in docs/operations.md (Backups)"
        )
    return found


async def _pump(stream: asyncio.StreamReader, writer: Writer) -> None:
    while block := await stream.read(_PIPE_CHUNK):
        writer.write(block)


async def _backup_postgres(
    db: Database, settings: Settings, out: BinaryIO, now: datetime
) -> Writer:
    pg_dump = _tool("pg_dump")
    key = _require_key(settings)
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            began = _wall()
            snapshot = await conn.scalar(text("SELECT pg_export_snapshot()"))
            ended = _wall()
            session = AsyncSession(bind=conn)
            head = await _revision(session)
            checkpoint = await audit_checkpoints.take_in(session, now=now)
            header = Header(
                database="postgresql", content="pg_dump-custom", app_version=__version__,
                migration_head=head, created_at=_utc(now), snapshot_began=_utc(began),
                snapshot_ended=_utc(ended), key_id="", audit_checkpoint=checkpoint.as_dict(),
            )  # fmt: skip
            writer = Writer(out, header, key)
            # The exporting transaction stays open until pg_dump is done with its snapshot.
            process = await asyncio.create_subprocess_exec(
                pg_dump, "--format=custom", "--no-owner", "--no-privileges",
                f"--snapshot={snapshot}",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=pg_environment(settings.database_url),
            )  # fmt: skip
            assert process.stdout is not None
            assert process.stderr is not None
            _, errors = await asyncio.gather(_pump(process.stdout, writer), process.stderr.read())
            if await process.wait() != 0:
                first = (errors.decode(errors="replace").strip().splitlines() or [""])[0]
                raise BackupError(f"pg_dump failed: {first}")
    writer.close()
    return writer


def _new_file(out: Path) -> Path:
    out = out.expanduser().resolve()
    if out.exists():
        raise BackupError(f"{out} exists already; choose another file name")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a folder")
    return out


async def make_backup(
    db: Database, settings: Settings, out: Path, *, actor: Actor, now: datetime
) -> BackupResult:
    """Write an encrypted copy of the database to `out` (atomically: a `.partial` file first)."""
    _require_key(settings)
    out = _new_file(out)
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    started = time.perf_counter()
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            if db.is_sqlite:
                writer = await _backup_sqlite(settings, fh, now)
            else:
                writer = await _backup_postgres(db, settings, fh, now)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    size = out.stat().st_size
    header = writer.header
    async with db.write() as session:
        await audit.record(
            session, actor, "backup_made", at=now,
            details={
                "file": out.name, "database": header.database, "size": size,
                "migration_head": header.migration_head, "key_id": header.key_id,
                "audit_head_id": header.audit_checkpoint.get("head_id"),
            },
        )  # fmt: skip
    return BackupResult(out, size, writer.plain_bytes, header, time.perf_counter() - started)


# --- the nightly job: a file a night, the newest N kept -------------------------------------


def file_name(now: datetime) -> str:
    return f"nightreg-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.nrbk"


def rotate(folder: Path, keep: int, *, now: datetime) -> tuple[list[Path], list[Path]]:
    """Delete all but the newest `keep` backups of the nightly job (by the time in their name),
    and `.partial` files a day old (a crash mid-backup); return (kept, deleted)."""
    backups = sorted(
        (p for p in folder.iterdir() if FILE_PATTERN.match(p.name)), key=lambda p: p.name
    )
    doomed = backups[:-keep] if keep > 0 else backups
    stale_before = (now - timedelta(days=1)).timestamp()
    doomed += [
        p
        for p in folder.iterdir()
        if p.name.endswith(PARTIAL_SUFFIX)
        and FILE_PATTERN.match(p.name.removesuffix(PARTIAL_SUFFIX))
        and p.stat().st_mtime < stale_before
    ]
    for path in doomed:
        path.unlink(missing_ok=True)
    return backups[-keep:] if keep > 0 else [], doomed


@dataclass(frozen=True)
class NightlySummary:
    size_kb: int
    kept: int
    deleted: int

    def counts(self) -> dict[str, int]:
        return asdict(self)


async def nightly(db: Database, settings: Settings, *, now: datetime) -> NightlySummary:
    """The `backup` job: a new file in NIGHTREG_BACKUP_DIR, then the rotation."""
    from nightreg.services.access import SYSTEM

    folder = settings.backup_dir
    if folder is None:
        raise BackupError("NIGHTREG_BACKUP_DIR is not set: no folder for the nightly backup")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    result = await make_backup(db, settings, folder / file_name(now), actor=SYSTEM, now=now)
    kept, deleted = rotate(folder, settings.backup_keep, now=now)
    return NightlySummary(size_kb=-(-result.size // 1024), kept=len(kept), deleted=len(deleted))


# --- restoring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    header: Header
    plain_size: int
    upgraded_from: str | None  # the backup's migration head, when the schema was upgraded
    verification: audit.Verification
    checkpoint_problem: str | None  # the restored trail against the backup's own checkpoint
    seconds: float

    @property
    def verified(self) -> bool:
        return self.verification.intact and self.checkpoint_problem is None


def describe(path: Path) -> Header:
    """The header of a backup file (readable without the key); `path` absolute."""
    try:
        with path.open("rb") as fh:
            return read_header(fh)[0]
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None


def _keys(settings: Settings) -> list[str]:
    return [k for k in (settings.backup_key, *settings.backup_keys_old) if k]


def _sqlite_is_empty(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return True
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]) == 0
    finally:
        conn.close()


async def _postgres_is_empty(db: Database) -> bool:
    async with db.read() as session:
        found = await session.scalar(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
            )
        )
    return not found


def _known_revisions(database_url: str) -> set[str]:
    from nightreg import migrate

    script = migrate.script_directory(database_url)
    return {rev.revision for rev in script.walk_revisions()}


def _restore_sqlite_file(plain: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{plain}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


async def _restore_sqlite(settings: Settings, path: Path) -> None:
    target = _sqlite_path(settings.database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _scratch_beside(target, settings) as scratch:
        plain = scratch / "restore.db"

        def decrypt_to_file() -> None:
            with path.open("rb") as fh, plain.open("wb") as out:
                for chunk in decrypt(fh, _keys(settings)):
                    out.write(chunk)

        await asyncio.to_thread(decrypt_to_file)
        await asyncio.to_thread(_restore_sqlite_file, plain, target)


async def _restore_postgres(settings: Settings, path: Path) -> None:
    pg_restore = _tool("pg_restore")
    process = await asyncio.create_subprocess_exec(
        pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
        f"--dbname={make_url(settings.database_url).database}",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=pg_environment(settings.database_url),
    )  # fmt: skip
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None

    async def feed(stdin: asyncio.StreamWriter) -> None:
        try:
            with path.open("rb") as fh:
                for chunk in decrypt(fh, _keys(settings)):
                    stdin.write(chunk)
                    await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # pg_restore stopped; its exit code and message say why
        finally:
            stdin.close()

    _, _, errors = await asyncio.gather(
        feed(process.stdin), process.stdout.read(), process.stderr.read()
    )
    if await process.wait() != 0:
        first = (errors.decode(errors="replace").strip().splitlines() or [""])[0]
        raise BackupError(f"pg_restore failed (nothing was restored): {first}")


async def restore(settings: Settings, path: Path, *, actor: Actor, now: datetime) -> RestoreResult:
    """Restore a backup file into the (empty) database NIGHTREG_DATABASE_URL names."""
    from nightreg import migrate

    started = time.perf_counter()
    header = describe(path)
    kind = "sqlite" if settings.is_sqlite else "postgresql"
    if header.database != kind:
        raise BackupError(
            f"this is a backup of a {header.database} database; NIGHTREG_DATABASE_URL names a "
            f"{kind} one (a backup restores into the same kind of database)"
        )
    if header.migration_head not in _known_revisions(settings.database_url):
        raise BackupError(
            f"the backup's schema ({header.migration_head or 'none'}) is newer than this version "
            f"of Nachtregister knows (it was made by {header.app_version}): restore it with "
            "that version or a newer one"
        )
    db = Database(settings.database_url)
    try:
        empty = (
            await asyncio.to_thread(_sqlite_is_empty, _sqlite_path(settings.database_url))
            if settings.is_sqlite
            else await _postgres_is_empty(db)
        )
        if not empty:
            raise BackupError(
                "the database NIGHTREG_DATABASE_URL names is not empty: a restore never "
                "overwrites data. Restore into a new, empty database (PostgreSQL: createdb; "
                "SQLite: a file that does not exist yet), then point the app at it"
            )
        # Authenticate all of it before anything is written: a damaged file restores nothing.
        try:
            _, plain_size = await asyncio.to_thread(_check_file, path, _keys(settings))
        except OSError as exc:
            raise BackupError(f"cannot read {path}: {exc.strerror}") from None
        if settings.is_sqlite:
            await db.dispose()
            await _restore_sqlite(settings, path)
        else:
            await _restore_postgres(settings, path)
    finally:
        await db.dispose()
    upgraded_from = None
    code_head = migrate.current_heads(settings.database_url)
    if header.migration_head not in code_head:
        upgraded_from = header.migration_head
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
    db = Database(settings.database_url)
    try:
        verification, problem = await _verify(db, header)
        async with db.write() as session:
            await audit.record(
                session, actor, "backup_restored", at=now,
                details={
                    "file": path.name, "database": header.database,
                    "backup_created_at": header.created_at,
                    "migration_head": header.migration_head, "upgraded": bool(upgraded_from),
                    "audit_intact": verification.intact and problem is None,
                },
            )  # fmt: skip
        # From now on `nightreg audit verify` compares with the restored trail: the checkpoints
        # written after the backup describe events the restore does not have.
        await audit_checkpoints.write(db, settings, now=now)
    finally:
        await db.dispose()
    return RestoreResult(
        header, plain_size, upgraded_from, verification, problem, time.perf_counter() - started
    )


def _check_file(path: Path, keys: list[str]) -> tuple[Header, int]:
    with path.open("rb") as fh:
        return check(fh, keys)


async def _verify(db: Database, header: Header) -> tuple[audit.Verification, str | None]:
    verification = await audit.verify_chain(db)
    if not header.audit_checkpoint:
        return verification, "the backup carries no audit checkpoint"
    try:
        checkpoint = audit_checkpoints.parse(json.dumps(header.audit_checkpoint))
    except (ValueError, KeyError, TypeError):
        return verification, "the backup's audit checkpoint is unreadable"
    return verification, await audit_checkpoints.compare(db, checkpoint)
