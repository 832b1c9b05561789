"""`nightreg user add|grant|revoke|reset-two-factor`: staff accounts and their sites."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.settings import Settings
from nightreg.vocabulary import ROLES


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise CommandError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services.users import UserError, add_user

    password = _read_password("Password (at least 12 characters): ")

    async def work(db: Database) -> None:
        await add_user(
            db,
            email=args.email,
            password=password,
            role=args.role,
            site_slugs=args.site or [],
            now=SystemClock().now(),
        )

    try:
        with_database(settings, work)
    except UserError as exc:
        raise CommandError(str(exc)) from exc
    print(f"Account {args.email.strip().lower()} ({args.role}) created.")
    return 0


def cmd_user_reset_two_factor(settings: Settings, args: argparse.Namespace) -> int:
    """A lost phone and lost recovery codes: the account sets up a new second factor."""
    from nightreg.services import twofactor
    from nightreg.services.access import CLI, NotFound

    try:
        was_on = with_database(
            settings,
            lambda db: twofactor.reset_by_email(db, CLI, args.email, now=SystemClock().now()),
        )
    except NotFound as exc:
        raise CommandError(f"no account {args.email!r}") from exc
    state = "was switched off" if was_on else "was not set up"
    print(
        f"Second factor of {args.email.strip().lower()} {state}; its sessions are ended and it "
        "sets up a new one at its next sign-in (if its role requires one)."
    )
    return 0


def cmd_user_grant(settings: Settings, args: argparse.Namespace) -> int:
    """Give an account a site's register (or take it away): the operator's way, also for an
    administrator's own account, which no administrator may give themself on the page."""
    from nightreg.services.access import CLI
    from nightreg.services.users import UserError, grant_site

    revoke = args.user_command == "revoke"

    async def work(db: Database) -> bool:
        return await grant_site(
            db, CLI, args.email, args.site, now=SystemClock().now(), revoke=revoke
        )

    try:
        changed = with_database(settings, work)
    except UserError as exc:
        raise CommandError(str(exc)) from exc
    email = args.email.strip().lower()
    if not changed:
        state = "does not hold" if revoke else "holds"
        print(f"{email} {state} {args.site} already; nothing changed.")
    elif revoke:
        print(f"{email} no longer holds {args.site}; its sessions are ended (audited).")
    else:
        print(
            f"{email} now holds {args.site}; audited as site_access_granted and shown on the "
            "site's page."
        )
    return 0


def add_commands(sub: Any) -> None:
    user = sub.add_parser("user", help="staff accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    user_add = user_sub.add_parser("add", help="create an account; password from stdin")
    user_add.add_argument("email")
    user_add.add_argument("--role", required=True, choices=ROLES)
    user_add.add_argument("--site", action="append", help="a site slug; repeat for more")
    user_add.set_defaults(func=cmd_user_add)
    user_reset = user_sub.add_parser(
        "reset-two-factor", help="switch an account's second factor off (a lost phone)"
    )
    user_reset.add_argument("email")
    user_reset.set_defaults(func=cmd_user_reset_two_factor)
    for name, text in (
        ("grant", "give an account a site's register (audited, shown on the site's page)"),
        ("revoke", "take a site's register from an account (audited; its sessions end)"),
    ):
        command = user_sub.add_parser(name, help=text)
        command.add_argument("email")
        command.add_argument("site", help="the site's slug")
        command.set_defaults(func=cmd_user_grant)
