"""`nightreg watchlist import FILE` and `nightreg watchlist digest VALUE --kind reg|mmsi|plate`."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.settings import Settings

NO_KEY = "no watchlist key: set NIGHTREG_WATCHLIST_KEY (the key shared with the hub)"


def cmd_watchlist_digest(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import watchlist

    if not settings.watchlist_key:
        raise CommandError(NO_KEY)
    ident = watchlist.identifier(args.kind, args.value)
    if not ident:
        what = "9 digits" if args.kind == "mmsi" else "letters or digits"
        raise CommandError(f"{args.value!r} is not a {args.kind} ({what})")
    print(f"identifier: {ident}")
    print(f"digest:     {watchlist.digest(settings.watchlist_key, ident)}")
    return 0


def cmd_watchlist_import(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import watchlist

    # Entries nobody can match would only sit there: refuse them as the scan would ignore them.
    if not settings.watchlist_key:
        raise CommandError(NO_KEY)
    default_expiry: datetime | None = None
    if args.expires:
        try:
            default_expiry = watchlist.parse_expiry(args.expires)
        except ValueError as exc:
            raise CommandError(f"--expires {args.expires!r}: not an ISO date") from exc
    try:
        with open(args.file, encoding="utf-8-sig") as lines:  # a BOM from a Windows editor
            entries = watchlist.parse_file(lines, default_expiry)
    except UnicodeDecodeError as exc:
        raise CommandError(f"{args.file}: not a UTF-8 text file") from exc
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from exc
    except watchlist.WatchlistFileError as exc:
        for number, reason in exc.errors:
            print(f"{args.file}:{number}: {reason}", file=sys.stderr)
        raise CommandError(
            f"{len(exc.errors)} bad line(s) in {args.file}; nothing imported"
        ) from None

    async def work(db: Database) -> watchlist.ImportCounts:
        return await watchlist.import_entries(
            db, entries, now=SystemClock().now(), list_ref=args.list_ref, replace=args.replace
        )

    counts = with_database(settings, work)
    print(
        f"Watchlist imported: {counts.added} added, {counts.updated} updated, "
        f"{counts.removed} removed, {counts.expired_dropped} expired dropped."
    )
    return 0


def add_commands(sub: Any) -> None:
    """Register this module's subcommands."""
    wl = sub.add_parser("watchlist", help="the hub's watchlist (keyed hashes)")
    wl_sub = wl.add_subparsers(dest="watchlist_command", required=True)

    imp = wl_sub.add_parser(
        "import", help="load digests from the hub: one per line, or digest,expires_at"
    )
    imp.add_argument("file")
    imp.add_argument(
        "--expires", metavar="YYYY-MM-DD", help="expiry for lines without one (end of that day)"
    )
    imp.add_argument("--list-ref", default="", help="the hub's reference for this list")
    imp.add_argument(
        "--replace", action="store_true", help="remove entries that are not in the file"
    )
    imp.set_defaults(func=cmd_watchlist_import)

    dig = wl_sub.add_parser(
        "digest", help="print a value's normalised identifier and its digest (for the hub)"
    )
    dig.add_argument("value")
    dig.add_argument("--kind", required=True, choices=("reg", "mmsi", "plate"))
    dig.set_defaults(func=cmd_watchlist_digest)
