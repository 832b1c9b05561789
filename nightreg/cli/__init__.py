"""The `nightreg` command: serve, migrate, and manage sites, points, QR posters and users.

One module per noun registers its subcommands; `common` holds what they share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from nightreg import __version__
from nightreg.cli import (
    agreements,
    ais,
    audit,
    backup,
    db,
    flags,
    holds,
    jobs,
    rules,
    serve,
    sites,
    tokens,
    tourist_tax,
    transfer,
    users,
    watchlist,
)
from nightreg.cli.common import CommandError
from nightreg.settings import Settings, SettingsError

# The order of `nightreg --help`.
NOUNS = (
    serve,
    db,
    sites,
    users,
    audit,
    backup,
    tokens,
    transfer,
    jobs,
    rules,
    flags,
    watchlist,
    agreements,
    holds,
    tourist_tax,
    ais,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nightreg", description="Nachtregister: the digital night register."
    )
    parser.add_argument("--version", action="version", version=f"nightreg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for noun in NOUNS:
        noun.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        from nightreg.services import audit

        audit.use_keyring(audit.keyring_of(settings))
        result: int = args.func(settings, args)
    except (SettingsError, CommandError) as exc:
        print(f"nightreg: {exc}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as exc:
        # A database that is down or a URL that points nowhere: say so in one line.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"nightreg: cannot use the database: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result
