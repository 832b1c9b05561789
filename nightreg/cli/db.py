"""`nightreg db upgrade [REV]` and `nightreg db downgrade REV`: the schema migrations."""

from __future__ import annotations

import argparse
from typing import Any

from nightreg import migrate
from nightreg.settings import Settings


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    if args.db_command == "upgrade":
        migrate.upgrade(settings.database_url, args.revision)
    else:
        migrate.downgrade(settings.database_url, args.revision)
    return 0


def add_commands(sub: Any) -> None:
    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="migrate to the newest schema (or REV)")
    up.add_argument("revision", nargs="?", default="head")
    down = db_sub.add_parser("downgrade", help="migrate back to REV (base: empty)")
    down.add_argument("revision")
    db.set_defaults(func=cmd_db)
