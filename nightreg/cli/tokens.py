"""`nightreg token add|list|revoke`: API tokens from the server's shell."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.models import ApiToken
from nightreg.settings import Settings
from nightreg.vocabulary import TOKEN_ROLES

if TYPE_CHECKING:
    from nightreg.services.tokens import TokenInvalid


def cmd_token_add(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import tokens
    from nightreg.services.access import CLI

    if args.expires_days is not None and args.expires_days < 1:
        raise CommandError("--expires-days: use a number of days from 1")
    now = SystemClock().now()
    expires_at = now + timedelta(days=args.expires_days) if args.expires_days else None

    async def work(db: Database) -> tuple[ApiToken, str]:
        return await tokens.create_token(
            db,
            CLI,
            name=args.name,
            role=args.role,
            site_slugs=args.site or [],
            expires_at=expires_at,
            now=now,
        )

    try:
        token, plain = with_database(settings, work)
    except tokens.TokenInvalid as exc:
        raise CommandError(_token_problem(exc)) from exc
    until = f"until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "without expiry"
    sites = ", ".join(sorted(args.site or [])) or "no sites"
    print(f"Token {token.id} ({args.role}; {sites}; {until}) created. It is shown only now:")
    print(plain)
    return 0


def _token_problem(exc: TokenInvalid) -> str:
    field, message = next(iter(exc.errors.items()))
    text = message % exc.params if exc.params else message
    return f"{field}: {text}"


def cmd_token_list(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import tokens
    from nightreg.services.access import CLI

    now = SystemClock().now()
    found = with_database(settings, lambda db: tokens.list_tokens(db, CLI))
    if not found:
        print("No API tokens.")
        return 0
    for token in found:
        if token.revoked_at is not None:
            state = f"revoked {token.revoked_at:%Y-%m-%d}"
        elif not tokens.is_active(token, now):
            state = f"expired {token.expires_at:%Y-%m-%d}"
        elif token.expires_at is not None:
            state = f"active until {token.expires_at:%Y-%m-%d}"
        else:
            state = "active"
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
        sites = ",".join(sorted(site.slug for site in token.sites)) or "-"
        print(f"{token.id}\t{token.name}\t{token.role}\t{sites}\t{state}\tlast used {used}")
    return 0


def cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import tokens
    from nightreg.services.access import CLI, NotFound

    now = SystemClock().now()
    try:
        token = with_database(
            settings,
            lambda db: tokens.revoke_token(db, CLI, args.id, now=now, reason=args.reason),
        )
    except NotFound:
        raise CommandError(f"no token with id {args.id}") from None
    print(f"Token {token.id} ({token.name}) is revoked; it no longer opens the API.")
    return 0


def add_commands(sub: Any) -> None:
    """Add `token` to the `nightreg` command's subcommands."""
    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)

    add = token_sub.add_parser("add", help="create an API token and print it once")
    add.add_argument("name", help="what the token is for, e.g. 'harbour office tablet'")
    add.add_argument("--role", required=True, choices=TOKEN_ROLES)
    add.add_argument("--site", action="append", help="a site slug; repeat for more")
    add.add_argument(
        "--expires-days",
        type=int,
        default=None,
        help="days until it expires (default: never)",
    )
    add.set_defaults(func=cmd_token_add)

    listing = token_sub.add_parser("list", help="list the tokens (never their secrets)")
    listing.set_defaults(func=cmd_token_list)

    revoke = token_sub.add_parser("revoke", help="stop a token from working, at once")
    revoke.add_argument("id", type=int)
    revoke.add_argument("--reason", default="", help="kept in the audit trail")
    revoke.set_defaults(func=cmd_token_revoke)
