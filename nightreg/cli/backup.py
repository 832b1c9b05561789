"""`nightreg backup --out FILE` and `nightreg restore FILE`: encrypted copies that restore."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.settings import Settings


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{-(-n // 1024)} kB"


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import backup
    from nightreg.services.access import CLI

    async def work(db: Database) -> Any:
        return await backup.make_backup(db, settings, args.out, actor=CLI, now=SystemClock().now())

    try:
        result = with_database(settings, work)
    except (backup.BackupError, backup.BackupFileError) as exc:
        raise CommandError(str(exc)) from None
    header = result.header
    print(
        f"Backup written to {result.path}: {_size(result.size)} encrypted "
        f"({_size(result.plain_size)} of {header.database} data) in {result.seconds:.1f} s; "
        f"schema {header.migration_head}, audit trail through event "
        f"{header.audit_checkpoint.get('head_id')}, key {header.key_id}."
    )
    print(f"It shows the database as it was at {header.snapshot_ended}.")
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import backup
    from nightreg.services.access import CLI

    async def work() -> Any:
        return await backup.restore(
            settings, args.file.expanduser().resolve(), actor=CLI, now=SystemClock().now()
        )

    try:
        result = asyncio.run(work())
    except (backup.BackupError, backup.BackupFileError) as exc:
        raise CommandError(str(exc)) from None
    header = result.header
    print(
        f"Restored the backup of {header.created_at} ({header.database}, "
        f"{_size(result.plain_size)}, made by version {header.app_version}) in "
        f"{result.seconds:.1f} s."
    )
    if result.upgraded_from:
        print(f"The schema was upgraded from {result.upgraded_from} to the newest.")
    print(f"Audit trail {result.verification}.")
    if result.checkpoint_problem is None:
        print("The restored trail matches the checkpoint the backup carries.")
    else:
        print(f"The restored trail does not match the backup's checkpoint: "
              f"{result.checkpoint_problem}.")  # fmt: skip
    print(f"A checkpoint of the restored trail was written to {settings.checkpoint_dir}.")
    print(
        "The backup holds what the purge deleted after it was made: run "
        "`nightreg jobs run purge` before the app serves again."
    )
    return 0 if result.verified else 1


def add_commands(sub: Any) -> None:
    make = sub.add_parser(
        "backup",
        help="write an encrypted, consistent copy of the database (while the app runs)",
        description="Writes an encrypted, consistent copy of the database to FILE, with "
        "NIGHTREG_BACKUP_KEY. SQLite: the online backup API; PostgreSQL: pg_dump (custom "
        "format) of one snapshot. See README 'Backups'.",
    )
    make.add_argument("--out", type=Path, required=True, metavar="FILE", help="the new file")
    make.set_defaults(func=cmd_backup)
    restore = sub.add_parser(
        "restore",
        help="restore a backup into the empty database NIGHTREG_DATABASE_URL names",
        description="Restores FILE into the database NIGHTREG_DATABASE_URL names, which must "
        "be empty; authenticates the whole file first, upgrades an older schema, verifies the "
        "audit trail. Exit 1 when the trail does not verify.",
    )
    restore.add_argument("file", type=Path, metavar="FILE")
    restore.set_defaults(func=cmd_restore)
