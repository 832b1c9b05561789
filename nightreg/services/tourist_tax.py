"""The tourist-tax return: a site's visits, persons and overnight stays in one month.

The municipality levies tourist tax per overnight stay: one person staying one night. The
return counts, per kind of visit and in total, for one calendar month in the site's own time:

- visits and persons: the visits that arrived in the month and the persons they brought;
- overnight stays: persons × nights, for the nights that fall in the month. A night belongs
  to the local date it begins on; a visit spends the nights of the dates from its arrival up
  to, not including, its departure (its expected departure if it was never checked out).
  A stay across a month end is thus split: the March nights count in March, the April
  nights in April. A visit that arrives and leaves on one day spends no night.

The figures come from two places that share one definition (nightreg.services.aggregates):
the live register, counted here with `aggregates.contributions`, and the `VisitAggregate`
rows the purge wrote for visits it deleted. A visit is in exactly one of them (the purge
counts it and deletes it in one transaction), so their sum is the same before and after a
purge. Nothing on the return points at a person.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from nightreg.clock import local_day, local_midnight
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Site, Visit, VisitAggregate
from nightreg.services import aggregates, audit
from nightreg.services.access import Actor
from nightreg.services.aggregates import Counts, StayRow
from nightreg.services.sites import scoped_site
from nightreg.vocabulary import KINDS, KINDS_BY_SITE_KIND

PERMISSION = "tourist_tax.view"
VIEWED = "tourist_tax_viewed"
EXPORTED = "tourist_tax_exported"

# Months the return can be asked for: enough for any real register, and bounds that keep the
# date arithmetic (a month's end, a time zone's offset) well inside what Python can count.
FIRST_YEAR = 1970
LAST_YEAR = 2999

MSG_MONTH = N_("Please enter a month like 2026-07.")
MSG_MONTH_RANGE = N_("Please choose a month from 1970-01 to 2999-12.")

_MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")
# The live visits are fetched by UTC bounds widened by this much on either side, so that no
# time zone's offset can leave one out; the local dates then decide what counts.
_MARGIN = timedelta(days=1)


class MonthInvalid(ValueError):
    """The month asked for is not one; `message` is a msgid for the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month (in a site's local time when it is given a place)."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """YYYY-MM, as a month picker sends it; MonthInvalid otherwise."""
        match = _MONTH_RE.fullmatch(text.strip())
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise MonthInvalid(MSG_MONTH)
        month = cls(int(match.group(1)), int(match.group(2)))
        if not FIRST_YEAR <= month.year <= LAST_YEAR:
            raise MonthInvalid(MSG_MONTH_RANGE)
        return month

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def previous(cls, today: date) -> Month:
        """The last full month before `today`'s."""
        return cls.of(today.replace(day=1) - timedelta(days=1))

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def next_first(self) -> date:
        """The first day of the month after."""
        if self.month == 12:
            return date(self.year + 1, 1, 1)
        return date(self.year, self.month + 1, 1)

    @property
    def days(self) -> list[date]:
        first = self.first
        return [first + timedelta(days=n) for n in range((self.next_first - first).days)]

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and (day.year, day.month) == (self.year, self.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass
class DayFigures:
    """One day of the month: its counts per kind and in total."""

    day: date
    by_kind: dict[str, Counts]
    total: Counts


@dataclass
class TaxReturn:
    """The figures of one site for one month."""

    site_id: int
    month: Month
    kinds: tuple[str, ...]
    days: list[DayFigures]
    by_kind: dict[str, Counts]
    total: Counts
    # The part of `total` that came from the aggregates: visits the purge has deleted.
    archived: Counts = field(default_factory=Counts)


def _copy(counts: Counts) -> Counts:
    return Counts(counts.visits, counts.persons, counts.overnight_stays)


def compute(
    site_id: int,
    site_kinds: Sequence[str],
    month: Month,
    tz: ZoneInfo,
    stays: Iterable[StayRow],
    archived: Iterable[tuple[date, str, Counts]] = (),
) -> TaxReturn:
    """The return from live visits (`stays`) and aggregate rows (day, kind, counts).

    Pure: the stays may include visits of other sites and visits that only touch the month;
    only this site's counts on the month's days are kept. A kind outside the site's own
    (an imported visit, a site whose kind changed) gets a row of its own, after them.
    """
    live = aggregates.contributions((s for s in stays if s.site_id == site_id), {site_id: tz})
    cells: dict[tuple[date, str], Counts] = {}
    for (_site, day, kind), counts in live.items():
        if day in month:
            cells[(day, kind)] = _copy(counts)
    kept = Counts()
    for day, kind, counts in archived:
        if day not in month:
            continue
        cell = cells.setdefault((day, kind), Counts())
        cell += counts
        kept += counts
    extra = sorted({kind for _day, kind in cells} - set(site_kinds), key=_kind_order)
    kinds = (*site_kinds, *extra)
    by_kind = {kind: Counts() for kind in kinds}
    total = Counts()
    days = []
    for day in month.days:
        row = {kind: _copy(cells.get((day, kind), Counts())) for kind in kinds}
        day_total = Counts()
        for kind, counts in row.items():
            day_total += counts
            by_kind[kind] += counts
        total += day_total
        days.append(DayFigures(day, row, day_total))
    return TaxReturn(site_id, month, kinds, days, by_kind, total, kept)


def _kind_order(kind: str) -> tuple[int, str]:
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), kind)


async def _figures(db: Database, site: Site, month: Month) -> TaxReturn:
    tz = ZoneInfo(site.timezone)
    start = local_midnight(month.first, tz) - _MARGIN
    end = local_midnight(month.next_first, tz) + _MARGIN
    ends = func.coalesce(Visit.departed_at, Visit.expected_departure_at)
    async with db.read() as session:
        # With their marks: a possible duplicate counts its subject once a night.
        live = await session.execute(
            aggregates.marked_stays().where(
                Visit.site_id == site.id, Visit.arrived_at < end, ends >= start
            )
        )
        stays = [aggregates.stay_row(tuple(row)) for row in live]
        kept = await session.execute(
            select(
                VisitAggregate.day,
                VisitAggregate.kind,
                VisitAggregate.visits,
                VisitAggregate.persons,
                VisitAggregate.overnight_stays,
            ).where(
                VisitAggregate.site_id == site.id,
                VisitAggregate.day >= month.first,
                VisitAggregate.day < month.next_first,
            )
        )
        archived = [
            (day, kind, Counts(visits, persons, int(nights)))
            for day, kind, visits, persons, nights in kept
        ]
    return compute(site.id, KINDS_BY_SITE_KIND[site.kind], month, tz, stays, archived)


async def site_for(db: Database, actor: Actor, slug: str) -> Site:
    """The site by slug, if the actor may see its return (NotFound / AccessDenied otherwise)."""
    async with db.read() as session:
        return await scoped_site(session, actor, PERMISSION, slug=slug)


def default_month(site: Site, now: datetime) -> Month:
    """The last full month in the site's own time."""
    return Month.previous(local_day(now, ZoneInfo(site.timezone)))


async def tax_return(
    db: Database,
    actor: Actor,
    site_id: int,
    month: Month,
    *,
    now: datetime,
    exported: bool = False,
) -> TaxReturn:
    """The site's return for the month, audited as seen (or exported) by `actor`."""
    async with db.read() as session:
        site = await scoped_site(session, actor, PERMISSION, site_id=site_id)
    await audit.log(
        db,
        actor,
        EXPORTED if exported else VIEWED,
        at=now,
        site_id=site.id,
        object_type="site",
        object_id=site.id,
        details={"month": str(month)},
    )
    return await _figures(db, site, month)


def is_complete(month: Month, site: Site, now: datetime) -> bool:
    """Whether the month is over in the site's time (until then its figures can change)."""
    return local_day(now, ZoneInfo(site.timezone)) >= month.next_first


# --- CSV ------------------------------------------------------------------------------------

COLUMNS = ("visits", "persons", "overnight_stays")


def csv_header(kinds: Sequence[str]) -> list[str]:
    return ["day", *COLUMNS, *(f"{kind}_{column}" for kind in kinds for column in COLUMNS)]


def _cells(total: Counts, by_kind: dict[str, Counts], kinds: Sequence[str]) -> list[int]:
    values = [total.visits, total.persons, total.overnight_stays]
    for kind in kinds:
        c = by_kind[kind]
        values += [c.visits, c.persons, c.overnight_stays]
    return values


def to_csv(result: TaxReturn) -> bytes:
    """One row per day, then the month's total; UTF-8 with a BOM (for Excel), like every CSV.

    Every cell is a date, a number or the word `total`: nothing a spreadsheet could run.
    """
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(csv_header(result.kinds))
    for row in result.days:
        writer.writerow([row.day.isoformat(), *_cells(row.total, row.by_kind, result.kinds)])
    writer.writerow(["total", *_cells(result.total, result.by_kind, result.kinds)])
    return buffer.getvalue().encode()


def csv_filename(slug: str, month: Month) -> str:
    return f"tourist-tax-{slug}-{month}.csv"
