"""`nightreg rules list` and `nightreg rules thresholds SITE [RULE.NAME=VALUE ...]`."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.models import Site
from nightreg.settings import Settings


def cmd_rules_list(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.rules import RULES

    for code, rule in RULES.items():
        defaults = ", ".join(f"{k}={v}" for k, v in rule.defaults.items()) or "-"
        notes = [] if rule.forwardable else ["never forwarded"]
        notes += ["analysts only"] if rule.restricted else []
        suffix = f"  ({'; '.join(notes)})" if notes else ""
        print(f"{code:<24} {defaults}{suffix}")
        print(f"{'':<24} {rule.rationale}")
    return 0


def cmd_rules_thresholds(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import thresholds
    from nightreg.services.access import CLI, NotFound

    try:
        changes = {
            (code, name): value
            for code, name, value in map(thresholds.parse_assignment, args.assignments)
        }
    except thresholds.ThresholdError as exc:
        raise CommandError(str(exc)) from exc

    async def work(db: Database) -> dict[str, dict[str, int]]:
        if changes:
            await thresholds.set_thresholds(db, CLI, args.site, changes, now=SystemClock().now())
        async with db.read() as session:
            site = await session.scalar(select(Site).where(Site.slug == args.site))
        if site is None:
            raise NotFound(args.site)
        return thresholds.effective(site)

    try:
        effective = with_database(settings, work)
    except NotFound as exc:
        raise CommandError(f"no site {args.site!r}") from exc
    for code, values in effective.items():
        if values:
            print(f"{code:<24} " + ", ".join(f"{k}={v}" for k, v in values.items()))
    return 0


def add_commands(sub: Any) -> None:
    rules = sub.add_parser("rules", help="the anomaly rules and their thresholds per site")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    listing = rules_sub.add_parser("list", help="every rule with its default thresholds")
    listing.set_defaults(func=cmd_rules_list)
    change = rules_sub.add_parser(
        "thresholds", help="show a site's thresholds; RULE.NAME=VALUE (or =default) changes one"
    )
    change.add_argument("site")
    change.add_argument("assignments", nargs="*", metavar="RULE.NAME=VALUE")
    change.set_defaults(func=cmd_rules_thresholds)
