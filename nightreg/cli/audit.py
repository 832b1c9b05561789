"""`nightreg audit verify` and `nightreg audit checkpoint`: the audit trail's chain."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nightreg.cli.common import with_database
from nightreg.db import Database
from nightreg.settings import Settings


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import audit_checkpoints

    async def work(db: Database) -> Any:
        return await audit_checkpoints.verify(db, settings, checkpoint_file=args.checkpoint)

    result = with_database(settings, work)
    print(f"Audit trail {result}.")
    return 0 if result.intact else 1


def cmd_audit_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import audit_checkpoints

    now = datetime.now(UTC)

    async def work(db: Database) -> Any:
        return await audit_checkpoints.write(db, settings, now=now)

    checkpoint = with_database(settings, work)
    # Printed as well: an operator may keep the line anywhere out of the database's reach.
    print(checkpoint.line())
    return 0


def add_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify",
        help="check the keyed hash chain and compare it with the latest signed checkpoint; "
        "prints 'intact' or what is broken",
    )
    verify.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="a file of checkpoints (JSON lines) to compare with, instead of the latest in "
        "NIGHTREG_AUDIT_CHECKPOINT_DIR",
    )
    verify.set_defaults(func=cmd_audit_verify)
    checkpoint = audit_sub.add_parser(
        "checkpoint",
        help="append a signed checkpoint of the chain to NIGHTREG_AUDIT_CHECKPOINT_DIR "
        "and print it",
    )
    checkpoint.set_defaults(func=cmd_audit_checkpoint)
