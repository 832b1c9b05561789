"""The `nightreg` command: serve, migrate, and manage sites, points, QR posters and users."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from nightreg import (
    __version__,
    cli_agreements,
    cli_holds,
    cli_jobs,
    cli_rules,
    cli_tokens,
    cli_tourist_tax,
    cli_transfer,
    cli_watchlist,
    migrate,
)
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.settings import Settings, SettingsError
from nightreg.vocabulary import ROLES, SITE_KINDS

T = TypeVar("T")


class CommandError(Exception):
    """A command cannot do what was asked; its message is printed as one line."""


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def runner() -> T:
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(runner())


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from nightreg.app import create_app
    from nightreg.services.demo import seed_demo
    from nightreg.services.sites import kiosk_url

    if not os.environ.get("NIGHTREG_BASE_URL") and not os.environ.get("NIGHTREG_BASE_URL_FILE"):
        # Unconfigured, the links we print and put in QR codes point where we actually serve.
        host = "127.0.0.1" if args.host in {"0.0.0.0", "::", ""} else args.host  # noqa: S104
        settings = dataclasses.replace(settings, base_url=f"http://{host}:{args.port}")
    migrate.upgrade(settings.database_url)
    if args.demo:
        login = _run(settings, lambda db: seed_demo(db, SystemClock().now()))
        print("Nachtregister demo is ready.")
        print(f"  Staff sign-in: {settings.base_url}/admin/  {login.email} / {login.password}")
        if "admin" in settings.two_factor_roles:
            print(
                "  The first sign-in sets up two-factor sign-in: have an authenticator app ready"
                " (or start with NIGHTREG_TWO_FACTOR_ROLES=none to use the password alone)."
            )
        for site_name, point_name, token in login.points:
            print(f"  Kiosk {site_name} / {point_name}: {kiosk_url(settings.base_url, token)}")
        sys.stdout.flush()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings, run_scheduler=settings.scheduler_in_serve),
        host=args.host,
        port=args.port,
        # Our own request log leaves tokens out of the paths; uvicorn's would print them.
        access_log=False,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        log_level=settings.log_level.lower(),
    )
    return 0


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    if args.db_command == "upgrade":
        migrate.upgrade(settings.database_url, args.revision)
    else:
        migrate.downgrade(settings.database_url, args.revision)
    return 0


def cmd_site_add(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services.sites import SiteError, create_site

    async def work(db: Database) -> None:
        await create_site(
            db,
            slug=args.slug,
            name=args.name,
            kind=args.kind,
            municipality=args.municipality,
            contact=args.contact,
            timezone=args.timezone or settings.timezone,
            now=SystemClock().now(),
        )

    try:
        _run(settings, work)
    except SiteError as exc:
        raise CommandError(str(exc)) from exc
    print(f"Site {args.slug} created.")
    return 0


def cmd_point(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services.sites import SiteError, add_point, kiosk_url, rotate_point

    async def work(db: Database) -> str:
        now = SystemClock().now()
        if args.point_command == "add":
            point = await add_point(
                db, site_slug=args.site, name=args.name, kiosk_mode=args.kiosk, now=now
            )
        else:
            point = await rotate_point(db, args.site, args.name, now)
        return point.token

    try:
        token = _run(settings, work)
    except SiteError as exc:
        raise CommandError(str(exc)) from exc
    if args.point_command == "rotate":
        print("The old QR code no longer works. Print the new poster with `nightreg qr`.")
    print(kiosk_url(settings.base_url, token))
    return 0


def cmd_qr(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.qr import poster
    from nightreg.services.sites import SiteError, get_point, kiosk_url

    try:
        point = _run(settings, lambda db: get_point(db, args.site, args.point))
    except SiteError as exc:
        raise CommandError(str(exc)) from exc
    fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() or "pdf")
    if fmt not in {"svg", "png", "pdf"}:
        raise CommandError(f"format {fmt!r}: use svg, png or pdf")
    data = poster(kiosk_url(settings.base_url, point.token), point.site.name, point.name, fmt)
    try:
        Path(args.out).write_bytes(data)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror}") from exc
    print(f"Poster for {point.site.name} / {point.name} written to {args.out} ({fmt}).")
    return 0


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
        _run(settings, work)
    except UserError as exc:
        raise CommandError(str(exc)) from exc
    print(f"Account {args.email.strip().lower()} ({args.role}) created.")
    return 0


def cmd_user_reset_two_factor(settings: Settings, args: argparse.Namespace) -> int:
    """A lost phone and lost recovery codes: the account sets up a new second factor."""
    from nightreg.services import twofactor
    from nightreg.services.access import CLI, NotFound

    try:
        was_on = _run(
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


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import audit

    result = _run(settings, audit.verify)
    print(f"Audit trail {result}.")
    return 0 if result.intact else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nightreg", description="Nachtregister: the digital night register."
    )
    parser.add_argument("--version", action="version", version=f"nightreg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="migrate the database and serve the app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--demo", action="store_true", help="seed a demo marina and business park and print logins"
    )
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="migrate to the newest schema (or REV)")
    up.add_argument("revision", nargs="?", default="head")
    down = db_sub.add_parser("downgrade", help="migrate back to REV (base: empty)")
    down.add_argument("revision")
    db.set_defaults(func=cmd_db)

    site = sub.add_parser("site", help="sites")
    site_sub = site.add_subparsers(dest="site_command", required=True)
    site_add = site_sub.add_parser("add", help="create a site")
    site_add.add_argument("slug")
    site_add.add_argument("--name", required=True)
    site_add.add_argument("--kind", required=True, choices=SITE_KINDS)
    site_add.add_argument("--municipality", default="")
    site_add.add_argument("--contact", default="", help="shown in the privacy notice")
    site_add.add_argument("--timezone", default=None)
    site_add.set_defaults(func=cmd_site_add)

    point = sub.add_parser("point", help="check-in points (QR codes)")
    point_sub = point.add_subparsers(dest="point_command", required=True)
    point_add = point_sub.add_parser("add", help="create a point and print its kiosk URL")
    point_add.add_argument("site")
    point_add.add_argument("name")
    point_add.add_argument(
        "--kiosk", action="store_true", help="a shared tablet: no 'remember me', resets itself"
    )
    point_rotate = point_sub.add_parser("rotate", help="new URL for a point; the old QR dies")
    point_rotate.add_argument("site")
    point_rotate.add_argument("name")
    point.set_defaults(func=cmd_point)

    qr = sub.add_parser("qr", help="write a point's printable QR poster")
    qr.add_argument("site")
    qr.add_argument("point")
    qr.add_argument("--out", required=True)
    qr.add_argument("--format", choices=("svg", "png", "pdf"), default=None)
    qr.set_defaults(func=cmd_qr)

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

    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="check the hash chain; prints 'intact' or the first broken event"
    )
    verify.set_defaults(func=cmd_audit_verify)

    cli_tokens.add_commands(sub)
    cli_transfer.add_commands(sub)
    cli_jobs.add_commands(sub)
    cli_rules.add_commands(sub)
    cli_watchlist.add_commands(sub)
    cli_agreements.add_commands(sub)
    cli_holds.add_commands(sub)
    cli_tourist_tax.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
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


if __name__ == "__main__":
    sys.exit(main())
