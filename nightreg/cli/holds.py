"""`nightreg hold list|add|release`: legal holds from the server's shell."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.models import LegalHold
from nightreg.settings import Settings

if TYPE_CHECKING:
    from nightreg.models import Site
    from nightreg.services.holds import HoldInvalid, HoldRow


def _problem(exc: HoldInvalid) -> str:
    """Every field at fault, one after another, in the source language."""
    parts = []
    for field, error in exc.errors.items():
        text = error.message % error.params if error.params else error.message
        parts.append(f"{field}: {text}")
    return "; ".join(parts)


def _covers(hold: LegalHold, site: Site | None) -> str:
    if hold.scope == "visits":
        return f"{hold.visit_count} named visit{'s' if hold.visit_count != 1 else ''}"
    if hold.scope == "subject":
        return f"{hold.subject_key} at {site.slug if site else 'all sites'}"
    return f"site {site.slug if site else hold.site_id}"


def cmd_hold_list(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import holds
    from nightreg.services.access import CLI

    now = SystemClock().now()

    async def work(db: Database) -> list[HoldRow]:
        return await holds.list_holds(db, CLI, now=now, tz=settings.tz)

    rows = with_database(settings, work)
    if not rows:
        print("No legal holds: the purge deletes everything when its time is up.")
        return 0
    for row in rows:
        h = row.hold
        until = h.until.isoformat() if h.until else "until released"
        state = row.state.replace("_", " ")
        print(
            f"{h.id}\t{h.case_reference}\t{h.scope}\t{_covers(h, row.site)}\t{until}\t{state}\t"
            f"placed {h.created_at.astimezone(settings.tz):%Y-%m-%d %H:%M} by {h.created_by}"
        )
    return 0


def cmd_hold_add(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import holds
    from nightreg.services.access import CLI

    if args.visit:
        scope = "visits"
        if args.subject or args.site:
            raise CommandError("name visits (--visit), or a subject (--subject), or a site")
    elif args.subject:
        scope = "subject"
    elif args.site:
        scope = "site"
    else:
        raise CommandError("say what to hold: --visit REF, --subject KEY or --site SLUG")
    now = SystemClock().now()

    async def work(db: Database) -> LegalHold:
        return await holds.place(
            db,
            CLI,
            scope=scope,
            case_reference=args.case,
            reason=args.reason,
            until=args.until or "",
            site_slug=args.site,
            subject_key=args.subject,
            visit_references=args.visit,
            now=now,
            tz=settings.tz,
        )

    try:
        hold = with_database(settings, work)
    except holds.HoldInvalid as exc:
        raise CommandError(_problem(exc)) from exc
    until = hold.until.isoformat() if hold.until else "until released"
    what = _covers(hold, None) if scope == "visits" else (
        f"{hold.subject_key} at {args.site or 'all sites'}" if scope == "subject"
        else f"site {args.site}"
    )  # fmt: skip
    print(f"Hold {hold.id} ({hold.case_reference}) placed on {what}, {until}.")
    return 0


def cmd_hold_release(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import holds
    from nightreg.services.access import CLI, NotFound

    now = SystemClock().now()

    async def work(db: Database) -> LegalHold:
        return await holds.release(db, CLI, args.id, args.reason, now=now, tz=settings.tz)

    try:
        hold = with_database(settings, work)
    except NotFound:
        raise CommandError(f"no legal hold with id {args.id}") from None
    except holds.HoldInvalid as exc:
        raise CommandError(_problem(exc)) from exc
    print(
        f"Hold {hold.id} ({hold.case_reference}) released; what it covered is purged when its "
        "time is up."
    )
    return 0


def add_commands(sub: Any) -> None:
    """Add `hold` to the `nightreg` command's subcommands."""
    hold = sub.add_parser("hold", help="legal holds: data kept past its retention for a case")
    hold_sub = hold.add_subparsers(dest="hold_command", required=True)

    listing = hold_sub.add_parser("list", help="every hold, those in force first")
    listing.set_defaults(func=cmd_hold_list)

    add = hold_sub.add_parser("add", help="place a hold (audited)")
    add.add_argument("--case", required=True, help="the case's reference")
    add.add_argument("--reason", required=True, help="why the data must be kept")
    add.add_argument("--until", metavar="YYYY-MM-DD", help="last day (default: until released)")
    add.add_argument(
        "--visit", action="append", metavar="REF", help="a visit's reference; repeat for more"
    )
    add.add_argument("--subject", metavar="KEY", help="a subject key, e.g. plate:12ABC3")
    add.add_argument(
        "--site", metavar="SLUG", help="a whole site, or with --subject: only at this site"
    )
    add.set_defaults(func=cmd_hold_add)

    release = hold_sub.add_parser("release", help="release a hold now (audited)")
    release.add_argument("id", type=int)
    release.add_argument("--reason", required=True, help="kept with the hold and audited")
    release.set_defaults(func=cmd_hold_release)
