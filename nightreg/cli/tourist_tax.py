"""`nightreg tourist-tax SLUG YYYY-MM [--csv]`: a site's tourist-tax return from the shell."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.settings import Settings

if TYPE_CHECKING:
    from nightreg.services.tourist_tax import TaxReturn


def _figures(result: TaxReturn, name: str) -> str:
    """The month's figures per kind and in total, as an aligned plain-text table."""
    rows = [("kind", "visits", "persons", "overnight stays")]
    for kind in result.kinds:
        c = result.by_kind[kind]
        rows.append((kind, str(c.visits), str(c.persons), str(c.overnight_stays)))
    t = result.total
    rows.append(("total", str(t.visits), str(t.persons), str(t.overnight_stays)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"Tourist tax, {name}, {result.month} (the site's local time)"]
    for row in rows:
        lines.append(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            ).rstrip()
        )
    if result.archived.visits:
        lines.append(
            f"{result.archived.visits} of these visits were deleted under the retention "
            "policy; their figures come from the aggregates."
        )
    lines.append(
        "Overnight stays: persons x nights, a night for every local date from arrival up to "
        "(not including) departure; a visit never checked out counts up to its expected "
        "departure."
    )
    return "\n".join(lines)


def cmd_tourist_tax(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import tourist_tax
    from nightreg.services.access import CLI, NotFound
    from nightreg.services.tourist_tax import Month, MonthInvalid

    try:
        month = Month.parse(args.month)
    except MonthInvalid as exc:
        raise CommandError(f"month {args.month!r}: {exc.message}") from None
    now = SystemClock().now()

    async def work(db: Database) -> tuple[str, TaxReturn]:
        site = await tourist_tax.site_for(db, CLI, args.slug)
        result = await tourist_tax.tax_return(db, CLI, site.id, month, now=now, exported=args.csv)
        return site.name, result

    try:
        name, result = with_database(settings, work)
    except NotFound:
        raise CommandError(f"no site with slug {args.slug!r}") from None
    if args.csv:
        data = tourist_tax.to_csv(result)
        sys.stdout.flush()
        out = getattr(sys.stdout, "buffer", None)
        if out is None:  # a stream without bytes underneath (a test's capture, say)
            sys.stdout.write(data.decode())
        else:
            out.write(data)
            out.flush()
    else:
        print(_figures(result, name))
    return 0


def add_commands(sub: Any) -> None:
    """Add `tourist-tax` to the `nightreg` command's subcommands."""
    command = sub.add_parser(
        "tourist-tax",
        help="a site's tourist-tax return for one month (audited)",
        description="Visits, persons and overnight stays (persons x nights) of one site in "
        "one month of its local calendar, from the register and the purge's aggregates.",
    )
    command.add_argument("slug", help="the site")
    command.add_argument("month", metavar="YYYY-MM", help="the month, like 2026-07")
    command.add_argument(
        "--csv", action="store_true", help="print the CSV (per day and the total) instead"
    )
    command.set_defaults(func=cmd_tourist_tax)
