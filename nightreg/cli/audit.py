"""`nightreg audit verify`: check the audit trail's hash chain."""

from __future__ import annotations

import argparse
from typing import Any

from nightreg.cli.common import with_database
from nightreg.settings import Settings


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import audit

    result = with_database(settings, audit.verify)
    print(f"Audit trail {result}.")
    return 0 if result.intact else 1


def add_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="check the hash chain; prints 'intact' or the first broken event"
    )
    verify.set_defaults(func=cmd_audit_verify)
