"""`nightreg flag list|dismiss|watch|forward`: the review queue from the server's shell.

Every command acts as a named staff account (`--as EMAIL`): it holds exactly that account's
role and sites, and the audit trail names the account, as if it had used the flag's page
(from the address "cli"). The services are the page's (nightreg.services.flags, .signals);
like the API, a forward names its agreement, and a review that would leave the flag as it is
is refused rather than recorded twice.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.settings import Settings

if TYPE_CHECKING:
    from nightreg.models import Flag
    from nightreg.services.access import Actor
    from nightreg.services.flags import FlagRow, ReviewInvalid
    from nightreg.services.signals import Draft

# Flags read per query of a listing (the queue's largest page).
PAGE = 200
# Row ids are 32-bit integers in PostgreSQL: a larger number names no flag.
MAX_ID = 2**31 - 1


def flag_id(text: str) -> int:
    """A flag's id on the command line (argparse's `type`)."""
    if not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"not a flag's id: {text!r}")
    return int(text)


def _problem(exc: ReviewInvalid) -> str:
    """Each problem in the source language, with its code (the API's) for scripts."""
    parts = []
    for field, error in exc.errors.items():
        text = error.message % error.params if error.params else error.message
        parts.append(f"{field}: {text} [{exc.codes.get(field, 'invalid')}]")
    return "; ".join(parts)


async def _actor(db: Database, email: str) -> Actor:
    from nightreg.services import users
    from nightreg.services.access import NotFound

    try:
        return await users.acting_as(db, email)
    except NotFound:
        raise CommandError(f"no active staff account {email.strip().lower()!r}") from None


def _run(settings: Settings, args: argparse.Namespace, work: Any) -> Any:
    """Run `work(db, actor)` as the account named by --as; the services' refusals in one line."""
    from nightreg.services.access import AccessDenied, NotFound
    from nightreg.services.flags import ReviewInvalid

    async def acting(db: Database) -> Any:
        return await work(db, await _actor(db, args.as_user))

    try:
        return with_database(settings, acting)
    except AccessDenied:
        raise CommandError(f"{args.as_user} may not review flags") from None
    except NotFound:
        # An unknown flag and another site's look the same, as on the page.
        what = f"flag {args.id}" if getattr(args, "id", None) is not None else "site"
        raise CommandError(f"no such {what} among the sites of {args.as_user}") from None
    except ReviewInvalid as exc:
        raise CommandError(_problem(exc)) from exc


# --- list ----------------------------------------------------------------------------------


def _subject(row: FlagRow) -> str:
    subject = row.subject
    if subject.kind == "site":
        return "the whole site"
    if subject.unit:
        return f"unit {subject.unit}"
    return " · ".join(part for part in (subject.name, subject.identifier) if part) or "-"


def cmd_flag_list(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import flags, sites

    now = SystemClock().now()
    statuses = ("open",) if args.open else flags.STATUSES

    async def work(db: Database, actor: Actor) -> list[tuple[str, FlagRow]]:
        if args.site:
            chosen = [await sites.site_for(db, actor, args.site, flags.VIEW)]
        else:
            chosen = await sites.sites_for(db, actor, flags.VIEW)
        found: list[tuple[str, FlagRow]] = []
        for site in chosen:
            cursor = None
            while True:  # every page, each audited as the queue's page is (flags_viewed)
                query = flags.FlagQuery(statuses=statuses, cursor=cursor, limit=PAGE)
                page = await flags.list_flags(db, actor, site.id, query, now=now)
                found += [(site.slug, row) for row in page.rows]
                cursor = page.next_cursor
                if cursor is None:
                    break
        return found

    rows = _run(settings, args, work)
    if not rows:
        print("No flags." if not args.open else "No open flags.")
        return 0
    for slug, row in rows:
        f = row.flag
        print(
            f"{f.id}\t{slug}\t{f.status}\tscore {f.score}\t{f.rule}\t{_subject(row)}\t"
            f"{row.evidence} visit{'s' if row.evidence != 1 else ''}\t{f.reason}"
        )
    return 0


# --- dismiss, watch ------------------------------------------------------------------------


def _review(settings: Settings, args: argparse.Namespace, action: str, **extra: Any) -> Flag:
    from nightreg.services import flags

    now = SystemClock().now()

    async def work(db: Database, actor: Actor) -> Flag:
        return await flags.review(
            db, actor, args.id, action, args.reason or "", now=now, refuse_repeat=True, **extra
        )

    flag: Flag = _run(settings, args, work)
    return flag


def cmd_flag_dismiss(settings: Settings, args: argparse.Namespace) -> int:
    _review(settings, args, "dismiss")
    print(f"Flag {args.id} dismissed (audited).")
    return 0


def cmd_flag_watch(settings: Settings, args: argparse.Namespace) -> int:
    _review(settings, args, "watch")
    print(f"Flag {args.id} kept on watch (audited).")
    return 0


# --- forward -------------------------------------------------------------------------------


def _print_preview(flag: Flag, draft: Draft) -> None:
    from nightreg.services import agreements

    agreement, body = draft.agreement, draft.body
    assert agreement is not None  # refused otherwise
    assert body is not None
    sent = agreements.fields_of(agreement)
    print(f"Flag {flag.id} · {flag.rule} · score {flag.score} · {flag.status}")
    print(f"  {flag.reason}")
    print(
        f"Under the agreement {agreement.reference} “{agreement.name}”, to {agreement.recipient}; "
        f"kept here {agreement.keep_days} days after forwarding."
    )
    print("Sent: " + ", ".join(sent))
    print("Never sent: " + (", ".join(f for f in agreements.FIELDS if f not in sent) or "-"))
    visits = body.get("visits_elsewhere", 0)
    print(
        f"{body.get('visit_count', 0)} visit(s) at this site"
        + (f"; {visits} at other sites, only counted." if visits else ".")
    )
    print("The signal as sent (times in UTC; its id is made when the flag is forwarded):")
    print(json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True))


def _confirmed(flag: Flag, draft: Draft) -> bool:
    assert draft.agreement is not None
    question = (
        f"Forward flag {flag.id} to {draft.agreement.recipient} under "
        f"{draft.agreement.reference}? [y/N] "
    )
    try:
        answer = input(question)
    except EOFError:
        print()
        return False
    return answer.strip().lower() in ("y", "yes", "j", "ja")


def cmd_flag_forward(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import flags

    now = SystemClock().now()

    async def preview(db: Database, actor: Actor) -> tuple[Flag, Draft]:
        # Audited as signal_previewed, as the page's preview is.
        return await flags.forward_preview(
            db, actor, args.id, now=now, agreement=args.agreement, refuse_repeat=True
        )

    flag, draft = _run(settings, args, preview)
    _print_preview(flag, draft)
    if not args.yes and not _confirmed(flag, draft):
        print("Nothing was forwarded.")
        return 1
    _review(settings, args, "forward", agreement=args.agreement)
    print(
        f"Flag {args.id} forwarded under {args.agreement}: its signal waits in the outbox for "
        "the dispatcher, or the hub's pull (audited)."
    )
    return 0


def add_commands(sub: Any) -> None:
    """Add `flag` to the `nightreg` command's subcommands."""
    flag = sub.add_parser("flag", help="review flags as a staff account (audited)")
    flag_sub = flag.add_subparsers(dest="flag_command", required=True)
    acting = argparse.ArgumentParser(add_help=False)
    acting.add_argument(
        "--as",
        dest="as_user",
        required=True,
        metavar="EMAIL",
        help="the staff account to act as: its role and sites apply, the audit names it",
    )

    listing = flag_sub.add_parser(
        "list", parents=[acting], help="the flags of the account's sites, highest score first"
    )
    listing.add_argument("--site", metavar="SLUG", help="only this site")
    listing.add_argument("--open", action="store_true", help="only flags nobody reviewed yet")
    listing.set_defaults(func=cmd_flag_list)

    dismiss = flag_sub.add_parser("dismiss", parents=[acting], help="dismiss a flag")
    dismiss.add_argument("id", type=flag_id)
    dismiss.add_argument("--reason", required=True, help="why it can be dismissed")
    dismiss.set_defaults(func=cmd_flag_dismiss)

    watch = flag_sub.add_parser("watch", parents=[acting], help="keep watching a flag")
    watch.add_argument("id", type=flag_id)
    watch.add_argument("--reason", help="a note (optional)")
    watch.set_defaults(func=cmd_flag_watch)

    forward = flag_sub.add_parser(
        "forward",
        parents=[acting],
        help="forward a flag to the hub: shows what is sent and asks first",
    )
    forward.add_argument("id", type=flag_id)
    forward.add_argument(
        "--agreement", required=True, metavar="REF", help="the sharing agreement's reference"
    )
    forward.add_argument("--reason", help="why (optional; stays here, is not sent)")
    forward.add_argument("--yes", action="store_true", help="forward without asking")
    forward.set_defaults(func=cmd_flag_forward)
