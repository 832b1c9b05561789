"""Information pictures: counts of flags, arrivals, signals and shared subjects, never who.

Each picture's query returns plain rows of counts: no name, plate, registration, subject key
or visit id leaves this module. Identifiers are read only where a count needs them (distinct
subjects for the site-hopping matrix) and are dropped before the rows are made.

Time: every count is bucketed on the clock of the site it belongs to. Rows are fetched with
their UTC times for the period (widened by a day on both sides, since a local date can start
up to 14 hours either side of UTC midnight) and bucketed in Python with zoneinfo, which gets
the weeks and hours right on the nights the clocks change. A week starts on Monday (ISO
8601) and is named by that Monday's date; the period's dates are local and both inclusive.

The pictures:

- flags per rule per week: the week in which a flag's window starts (when the behaviour it
  describes began), so that a rescan of old visits does not pile its flags into this week;
- arrivals by local weekday and hour, per site;
- forwarded signals per site per week, by the time the flag was forwarded (`signal.created_at`);
- for `site_hopping`, per pair of sites the number of distinct subjects that one site-hopping
  flag (whose window starts in the period) rests on visits at both. We count the flags'
  evidence rather than all visits in the register: the picture is about the pattern the rule
  found, and it needs no pass over every boat's movements (data minimisation). A count below
  SUPPRESS_BELOW (but above zero) is given as None, shown "<3": one or two subjects between
  two small harbours could point at one boat.

Scope: an actor with `insight.all` (the hub's analysts) sees every active site; everyone else
the sites where they hold `insight.view`. Watchlist hits (restricted flags) and their signals
are counted only for those who may see them (analysts and the CLI): a count at one's own site
would tip off that the hub's list matched. Every query filters on the sites itself.

Audit: the counts are not personal data, but privacy officers want to see who looked: one
`insight_viewed` event per page, one `insight_exported` per CSV, with the filters.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import combinations
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, false, select

from nightreg.clock import local_day
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Flag, Signal, Site, Visit, flag_visit
from nightreg.services import audit
from nightreg.services.access import AccessDenied, Actor
from nightreg.services.flag_export import sees_restricted
from nightreg.services.sites import sites_for
from nightreg.services.transfer import MSG_PERIOD, escape_cell

PERMISSION = "insight.view"
ALL_SITES = "insight.all"
SITE_HOPPING = "site_hopping"
# Every count below this (and above zero) is not shown, as statistics offices do: a cell of
# one or two arrivals at an hour, or one flag of a rule in a week, can point at one boat or
# car (issue 17, finding 11c). The tables and CSVs say "<5", the charts leave it out.
SUPPRESS_BELOW = 5
SUPPRESSED = f"<{SUPPRESS_BELOW}"
# Secondary suppression: where a hidden count could be worked out from a total the page shows
# (a row's total, or the period's), the next smallest count of that row is hidden too, shown
# "x" (as the CBS marks a figure kept back for confidentiality).
HIDDEN = "x"
# The CSV's last line (English, no comma: one cell that needs no quotes).
CSV_NOTE = (
    "# Counts from 1 to %(most)s are shown as %(shown)s; where one could be worked out from a "
    "total the next smallest count is shown as x (as statistics offices do)"
)
SUPPRESSION_NOTE = N_(
    "Counts from 1 to %(most)s are shown as “%(shown)s” and left out of the chart, as "
    "statistics offices do, so that no number points at a single boat, car or person. Where "
    "such a count could be worked out from a total, the next smallest count of its row (or "
    "the total) is hidden too, shown as “x”."
)
# The default period: this week and the eleven before it.
DEFAULT_WEEKS = 12
CHARTS = ("flags", "arrivals", "signals", "shared")

# Dates a period may use: the register has nothing older, and the far ends of the calendar
# would overflow the arithmetic of local days.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)

MSG_SITE = N_("Please choose a site from the list.")
MSG_DATE_RANGE = N_("Please enter a date between 2000 and 2099.")
# A longer period would read more than a year of arrivals for one page.
MSG_PERIOD_LONG = N_("Please choose a period of at most a year.")


class FiltersInvalid(ValueError):
    """The filters cannot be used; `errors` maps each field to its message (a msgid)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class InsightSite:
    """What the pictures need of a site, detached from any session."""

    id: int
    slug: str
    name: str
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Filters:
    """The sites the pictures cover and the period (local dates, both inclusive)."""

    scope: tuple[InsightSite, ...]  # every site the actor may see
    chosen: InsightSite | None  # one of them picked in the form, or None for all of them
    date_from: date
    date_to: date

    @property
    def sites(self) -> tuple[InsightSite, ...]:
        return (self.chosen,) if self.chosen else self.scope

    @property
    def weeks(self) -> tuple[date, ...]:
        return weeks_between(self.date_from, self.date_to)

    def details(self) -> dict[str, str | None]:
        """The filters as the audit trail records them."""
        return {
            "site": self.chosen.slug if self.chosen else None,
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
        }


# --- rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlagCount:
    week: date  # the Monday
    rule: str
    flags: int


@dataclass(frozen=True)
class ArrivalCount:
    site_id: int
    weekday: int  # 0 = Monday ... 6 = Sunday, on the site's clock
    hour: int  # 0 ... 23, on the site's clock
    arrivals: int


@dataclass(frozen=True)
class SignalCount:
    week: date
    site_id: int
    signals: int


@dataclass(frozen=True)
class SharedSubjects:
    """Distinct subjects of site-hopping flags seen at both sites (a == b: at that site).

    `subjects` is None when the count is above zero but below SUPPRESS_BELOW.
    """

    site_a: int
    site_b: int
    subjects: int | None


# --- time ----------------------------------------------------------------------------------


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weeks_between(first: date, last: date) -> tuple[date, ...]:
    """The Mondays of every week that holds a day of first..last."""
    start, end = monday(first), monday(last)
    return tuple(start + timedelta(weeks=n) for n in range((end - start).days // 7 + 1))


def week_of(at: datetime, tz: ZoneInfo) -> date:
    """The Monday of the local week `at` falls in."""
    return monday(local_day(at, tz))


def local_slot(at: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """(weekday, hour) of `at` on the site's clock: both 02:30s of a night the clocks go back
    count in hour 2, and a spring night has no hour 2 at all."""
    local = at.astimezone(tz)
    return local.weekday(), local.hour


def utc_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """A UTC range that holds the local period in every time zone (UTC-12 ... UTC+14)."""
    start = datetime.combine(date_from - timedelta(days=1), time(0), UTC)
    end = datetime.combine(date_to + timedelta(days=2), time(0), UTC)
    return start, end


def default_period(today: date) -> tuple[date, date]:
    """This week so far and the eleven weeks before it (`today` alone outside the calendar we
    keep, which `choose` refuses anyway)."""
    if not FIRST_DAY <= today <= LAST_DAY:
        return today, today
    return monday(today) - timedelta(weeks=DEFAULT_WEEKS - 1), today


def year_after(day: date) -> date:
    """The same date a year later (29 February: 1 March); a period ends before it."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return date(day.year + 1, 3, 1)


def _in_period(day: date, filters: Filters) -> bool:
    return filters.date_from <= day <= filters.date_to


# --- scope and filters ---------------------------------------------------------------------


def _site(site: Site) -> InsightSite:
    return InsightSite(id=site.id, slug=site.slug, name=site.name, timezone=site.timezone)


async def visible_sites(db: Database, actor: Actor) -> list[InsightSite]:
    """The sites whose pictures `actor` may see, by name; AccessDenied without the right."""
    if actor.can(ALL_SITES):
        return [_site(s) for s in await sites_for(db, actor, ALL_SITES)]
    actor.require(PERMISSION)
    return [_site(s) for s in await sites_for(db, actor, PERMISSION)]


def choose(
    sites: Sequence[InsightSite],
    *,
    slug: str | None,
    date_from: date,
    date_to: date,
) -> Filters:
    """The filters for the visible `sites`: one of them by slug (None: all), and a period."""
    errors: dict[str, str] = {}
    chosen = None
    if slug:
        chosen = next((s for s in sites if s.slug == slug), None)
        if chosen is None:
            errors["site"] = MSG_SITE
    for name, day in (("from", date_from), ("to", date_to)):
        if not FIRST_DAY <= day <= LAST_DAY:
            errors[name] = MSG_DATE_RANGE
    # A period's order and length are judged only between dates of the calendar we keep.
    in_calendar = "from" not in errors and "to" not in errors
    if in_calendar and date_from > date_to:
        errors["to"] = MSG_PERIOD
    elif in_calendar and date_to >= year_after(date_from):
        errors["from"] = MSG_PERIOD_LONG
    if errors:
        raise FiltersInvalid(errors)
    return Filters(
        scope=tuple(sites),
        chosen=chosen,
        date_from=date_from,
        date_to=date_to,
    )


def _scoped(actor: Actor, sites: Iterable[InsightSite]) -> dict[int, InsightSite]:
    """Those of `sites` the actor may see, checked again here (a service trusts no caller)."""
    if not (actor.can(ALL_SITES) or actor.can(PERMISSION)):
        raise AccessDenied(PERMISSION)
    every = actor.can(ALL_SITES)
    return {s.id: s for s in sites if every or actor.can(PERMISSION, s.id)}


def _restricted_clause(actor: Actor) -> list[ColumnElement[bool]]:
    return [] if sees_restricted(actor) else [Flag.restricted.is_(false())]


# --- the pictures' numbers -----------------------------------------------------------------


async def flags_per_week(db: Database, actor: Actor, filters: Filters) -> list[FlagCount]:
    """Flags per rule per week (of the start of their window), weeks and rules in order."""
    sites = _scoped(actor, filters.sites)
    if not sites:
        return []
    start, end = utc_bounds(filters.date_from, filters.date_to)
    stmt = select(Flag.site_id, Flag.rule, Flag.window_start).where(
        Flag.site_id.in_(sorted(sites)),
        Flag.window_start >= start,
        Flag.window_start < end,
        *_restricted_clause(actor),
    )
    counts: Counter[tuple[date, str]] = Counter()
    async with db.read() as session:
        for site_id, rule, at in await session.execute(stmt):
            tz = sites[site_id].tz
            if _in_period(local_day(at, tz), filters):
                counts[(week_of(at, tz), rule)] += 1
    return [FlagCount(week, rule, n) for (week, rule), n in sorted(counts.items())]


async def arrivals_by_hour(db: Database, actor: Actor, filters: Filters) -> list[ArrivalCount]:
    """Arrivals per site, local weekday and local hour; only the slots with arrivals."""
    sites = _scoped(actor, filters.sites)
    if not sites:
        return []
    start, end = utc_bounds(filters.date_from, filters.date_to)
    stmt = select(Visit.site_id, Visit.arrived_at).where(
        Visit.site_id.in_(sorted(sites)), Visit.arrived_at >= start, Visit.arrived_at < end
    )
    zones = {site_id: site.tz for site_id, site in sites.items()}
    counts: Counter[tuple[int, int, int]] = Counter()
    async with db.read() as session:
        # A year of arrivals at every site can be many rows: read in batches (a row at a time
        # would cost a greenlet switch each), keep only the counts.
        result = await session.stream(stmt.execution_options(yield_per=5000))
        async for batch in result.partitions():
            for site_id, at in batch:
                local = at.astimezone(zones[site_id])
                if _in_period(local.date(), filters):
                    counts[(site_id, local.weekday(), local.hour)] += 1
    return [ArrivalCount(*key, n) for key, n in sorted(counts.items())]


async def signals_per_week(db: Database, actor: Actor, filters: Filters) -> list[SignalCount]:
    """Forwarded signals per site per week (of forwarding), whatever became of them since."""
    sites = _scoped(actor, filters.sites)
    if not sites:
        return []
    start, end = utc_bounds(filters.date_from, filters.date_to)
    stmt = (
        select(Signal.site_id, Signal.created_at)
        .join(Flag, Flag.id == Signal.flag_id)
        .where(
            Signal.site_id.in_(sorted(sites)),
            Signal.created_at >= start,
            Signal.created_at < end,
            *_restricted_clause(actor),
        )
    )
    counts: Counter[tuple[date, int]] = Counter()
    async with db.read() as session:
        for site_id, at in await session.execute(stmt):
            tz = sites[site_id].tz
            if _in_period(local_day(at, tz), filters):
                counts[(week_of(at, tz), site_id)] += 1
    return [SignalCount(week, site_id, n) for (week, site_id), n in sorted(counts.items())]


def shown(count: int) -> int | str:
    """A count as a table or CSV cell may hold it: "<5" for 1 .. SUPPRESS_BELOW - 1."""
    return SUPPRESSED if 0 < count < SUPPRESS_BELOW else count


def drawn(count: int) -> int:
    """A count as a chart may draw it: a suppressed count is left out (0)."""
    return 0 if 0 < count < SUPPRESS_BELOW else count


Cell = int | str  # a count, SUPPRESSED (1 .. SUPPRESS_BELOW - 1) or HIDDEN (secondary)


@dataclass(frozen=True)
class Protected:
    """A table of counts as it may be shown: every row with its total, and the grand total.

    `cells`, `totals` and `total` hold a count, SUPPRESSED or HIDDEN each.
    """

    cells: tuple[tuple[Cell, ...], ...]
    totals: tuple[Cell, ...]
    total: Cell

    def drawn(self) -> tuple[tuple[int, ...], ...]:
        """The cells as a chart may draw them: what is not shown is left out (0)."""
        return tuple(tuple(v if isinstance(v, int) else 0 for v in row) for row in self.cells)


def protect(rows: Sequence[Sequence[int]]) -> Protected:
    """Primary and secondary suppression of a table shown with row totals and a grand total.

    Primary: every count from 1 to SUPPRESS_BELOW - 1. Secondary, as statistics offices do:
    a row whose total is shown must not have exactly one hidden count (the total minus the
    others would give it away), so the next smallest count above zero is hidden too, or the
    total when there is none; the same for the row totals against the grand total. A row
    total hidden that way while all its counts are shown would be their sum, so one of its
    counts is hidden with it. Repeated until nothing changes. Columns have no totals here.
    """
    grid = [list(row) for row in rows]
    hidden = [[0 < v < SUPPRESS_BELOW for v in row] for row in grid]
    totals = [sum(row) for row in grid]
    total_hidden = [0 < t < SUPPRESS_BELOW for t in totals]
    grand = sum(totals)
    grand_hidden = 0 < grand < SUPPRESS_BELOW

    def smallest(values: Sequence[int], hide: Sequence[bool]) -> int | None:
        open_ = [(v, i) for i, v in enumerate(values) if v > 0 and not hide[i]]
        return min(open_)[1] if open_ else None

    changed = True
    while changed:
        changed = False
        for i, row in enumerate(grid):
            if total_hidden[i] and not any(hidden[i]):
                j = smallest(row, hidden[i])
                if j is not None:  # else the row is all zeros: nothing to give away
                    hidden[i][j] = changed = True
            if not total_hidden[i] and sum(hidden[i]) == 1:
                j = smallest(row, hidden[i])
                if j is None:
                    total_hidden[i] = True
                else:
                    hidden[i][j] = True
                changed = True
        if not grand_hidden and sum(total_hidden) == 1:
            k = smallest(totals, total_hidden)
            if k is None:
                grand_hidden = True
            else:
                total_hidden[k] = True
            changed = True

    def cell(value: int, is_hidden: bool) -> Cell:
        if not is_hidden:
            return value
        return SUPPRESSED if value < SUPPRESS_BELOW else HIDDEN

    return Protected(
        cells=tuple(
            tuple(cell(v, h) for v, h in zip(row, hide, strict=True))
            for row, hide in zip(grid, hidden, strict=True)
        ),
        totals=tuple(cell(t, h) for t, h in zip(totals, total_hidden, strict=True)),
        total=cell(grand, grand_hidden),
    )


def suppress(count: int) -> int | None:
    """A count of subjects as it may be shown: None for 1 .. SUPPRESS_BELOW - 1."""
    return None if 0 < count < SUPPRESS_BELOW else count


def shared_counts(
    flags: Iterable[tuple[str, Iterable[int]]], chosen: int | None = None
) -> list[SharedSubjects]:
    """Per pair of sites, distinct subjects of flags with evidence at both; small counts hidden.

    `flags` is (subject, the sites of the flag's evidence) per flag. Pairs are (a, b) with
    a <= b (a == b: the subjects with evidence at that site); with `chosen`, only the pairs
    that include it. Only pairs with at least one subject are returned.
    """
    subjects: defaultdict[tuple[int, int], set[str]] = defaultdict(set)
    for subject, site_ids in flags:
        distinct = sorted(set(site_ids))
        for site_id in distinct:
            subjects[(site_id, site_id)].add(subject)
        for pair in combinations(distinct, 2):
            subjects[pair].add(subject)
    return [
        SharedSubjects(a, b, suppress(len(found)))
        for (a, b), found in sorted(subjects.items())
        if chosen is None or chosen in (a, b)
    ]


async def shared_subjects(db: Database, actor: Actor, filters: Filters) -> list[SharedSubjects]:
    """For site_hopping: per pair of the actor's sites, the distinct subjects seen at both."""
    # With one site chosen, the matrix pairs it with every other site the actor may see.
    visible = _scoped(actor, filters.scope)
    chosen = filters.chosen.id if filters.chosen else None
    if not visible or (chosen is not None and chosen not in visible):
        return []
    start, end = utc_bounds(filters.date_from, filters.date_to)
    stmt = (
        select(Flag.id, Flag.subject, Flag.window_start, Site.timezone, Visit.site_id)
        .join(Site, Site.id == Flag.site_id)
        .join(flag_visit, flag_visit.c.flag_id == Flag.id)
        .join(Visit, Visit.id == flag_visit.c.visit_id)
        .where(
            Flag.rule == SITE_HOPPING,
            Flag.window_start >= start,
            Flag.window_start < end,
            Visit.site_id.in_(sorted(visible)),
            *_restricted_clause(actor),
        )
    )
    evidence: dict[int, tuple[str, set[int]]] = {}
    async with db.read() as session:
        for flag_id, subject, at, timezone, site_id in await session.execute(stmt):
            if not _in_period(local_day(at, ZoneInfo(timezone)), filters):
                continue
            evidence.setdefault(flag_id, (subject, set()))[1].add(site_id)
    return shared_counts(evidence.values(), chosen)


# --- grids for charts, tables and CSV ------------------------------------------------------


@dataclass(frozen=True)
class WeeklySeries:
    key: str | int  # a rule code or a site id
    counts: tuple[int, ...]  # one per week of the period

    @property
    def total(self) -> int:
        return sum(self.counts)


def weekly_series(
    weeks: Sequence[date], rows: Iterable[tuple[date, str | int, int]]
) -> list[WeeklySeries]:
    """(week, key, count) rows as one series per key over every week, largest total first."""
    index = {week: i for i, week in enumerate(weeks)}
    grid: dict[str | int, list[int]] = {}
    for week, key, count in rows:
        counts = grid.setdefault(key, [0] * len(weeks))
        counts[index[week]] += count
    series = [WeeklySeries(key, tuple(counts)) for key, counts in grid.items()]
    return sorted(series, key=lambda s: (-s.total, str(s.key)))


def top_and_rest(series: Sequence[WeeklySeries], keep: int, rest_key: str) -> list[WeeklySeries]:
    """The `keep` largest series and, if more, one series `rest_key` summing the others."""
    if len(series) <= keep + 1:
        return list(series)
    rest = [sum(counts) for counts in zip(*(s.counts for s in series[keep:]), strict=True)]
    return [*series[:keep], WeeklySeries(rest_key, tuple(rest))]


def hour_grid(rows: Iterable[ArrivalCount], site_id: int) -> tuple[tuple[int, ...], ...]:
    """A site's arrivals as 7 rows (Monday first) of 24 hours."""
    grid = [[0] * 24 for _ in range(7)]
    for row in rows:
        if row.site_id == site_id:
            grid[row.weekday][row.hour] += row.arrivals
    return tuple(tuple(day) for day in grid)


def matrix_cells(
    rows: Iterable[SharedSubjects], row_sites: Sequence[int], column_sites: Sequence[int]
) -> tuple[tuple[int | None, ...], ...]:
    """The shared-subject counts as a table (symmetric: (a, b) is also (b, a)); 0 if none."""
    found: dict[tuple[int, int], int | None] = {}
    for row in rows:
        found[(row.site_a, row.site_b)] = row.subjects
        found[(row.site_b, row.site_a)] = row.subjects
    return tuple(tuple(found.get((r, c), 0) for c in column_sites) for r in row_sites)


# --- audit and CSV -------------------------------------------------------------------------


async def record_view(
    db: Database, actor: Actor, filters: Filters, *, now: datetime, chart: str | None = None
) -> None:
    """One audit event: the page (`chart` None) or one chart's CSV, with the filters."""
    details: dict[str, str | None] = dict(filters.details())
    if chart is not None:
        details["chart"] = chart
    await audit.log(
        db,
        actor,
        "insight_exported" if chart else "insight_viewed",
        at=now,
        site_id=filters.chosen.id if filters.chosen else None,
        details=details,
    )


def protected_weekly(
    weeks: Sequence[date], series: Sequence[WeeklySeries]
) -> tuple[Protected, list[WeeklySeries]]:
    """A weekly table protected (its rows are the series, each with its total), and the series
    as the chart may draw them, largest total first as before."""
    protected = protect([s.counts for s in series])
    drawn_series = [
        WeeklySeries(s.key, row) for s, row in zip(series, protected.drawn(), strict=True)
    ]
    return protected, drawn_series


def _weekly_cells(
    weeks: Sequence[date], rows: Iterable[tuple[date, str | int, int]]
) -> dict[tuple[date, str | int], Cell]:
    """(week, key) -> the cell the page shows for it, secondary suppression included."""
    series = weekly_series(weeks, rows)
    protected = protect([s.counts for s in series])
    return {
        (week, s.key): protected.cells[i][j]
        for i, s in enumerate(series)
        for j, week in enumerate(weeks)
    }


def _cell(value: object) -> object:
    return escape_cell(value) if isinstance(value, str) else value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 CSV with a BOM (for Excel), text cells escaped against spreadsheet formulas; the
    last line, starting with "#", says which counts are suppressed."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    writer.writerow([CSV_NOTE % {"most": SUPPRESS_BELOW - 1, "shown": SUPPRESSED}])
    return buffer.getvalue().encode()


def csv_filename(chart: str, filters: Filters) -> str:
    site = filters.chosen.slug if filters.chosen else "all-sites"
    return (
        f"insight-{chart}-{site}-{filters.date_from.isoformat()}-{filters.date_to.isoformat()}.csv"
    )


async def export_csv(
    db: Database, actor: Actor, chart: str, filters: Filters, *, now: datetime
) -> bytes:
    """One chart's numbers as CSV (every count the page shows, per site where it has sites)."""
    if chart not in CHARTS:
        raise ValueError(chart)
    _scoped(actor, filters.sites)
    await record_view(db, actor, filters, now=now, chart=chart)
    by_id = {s.id: s for s in filters.scope}
    # Every cell as the page shows it, secondary suppression included: a count the page hides
    # must not be read off the CSV next to the page's totals.
    if chart == "flags":
        flag_rows = await flags_per_week(db, actor, filters)
        flag_cells = _weekly_cells(filters.weeks, ((r.week, r.rule, r.flags) for r in flag_rows))
        return to_csv(
            ("week", "rule", "flags"),
            ((r.week, r.rule, flag_cells[(r.week, r.rule)]) for r in flag_rows),
        )
    if chart == "arrivals":
        arrival_rows = await arrivals_by_hour(db, actor, filters)
        grids = {
            site_id: protect(hour_grid(arrival_rows, site_id))
            for site_id in {r.site_id for r in arrival_rows}
        }
        return to_csv(
            ("site", "site_name", "weekday", "hour", "arrivals"),
            (
                (
                    by_id[r.site_id].slug,
                    by_id[r.site_id].name,
                    r.weekday + 1,
                    r.hour,
                    grids[r.site_id].cells[r.weekday][r.hour],
                )
                for r in arrival_rows
            ),
        )
    if chart == "signals":
        signal_rows = await signals_per_week(db, actor, filters)
        signal_cells = _weekly_cells(
            filters.weeks, ((r.week, r.site_id, r.signals) for r in signal_rows)
        )
        return to_csv(
            ("week", "site", "site_name", "signals"),
            (
                (
                    r.week, by_id[r.site_id].slug, by_id[r.site_id].name,
                    signal_cells[(r.week, r.site_id)],
                )
                for r in signal_rows
            ),
        )  # fmt: skip
    shared_rows = await shared_subjects(db, actor, filters)
    return to_csv(
        ("site_a", "site_a_name", "site_b", "site_b_name", "subjects"),
        (
            (
                by_id[r.site_a].slug,
                by_id[r.site_a].name,
                by_id[r.site_b].slug,
                by_id[r.site_b].name,
                SUPPRESSED if r.subjects is None else r.subjects,
            )
            for r in shared_rows
        ),
    )
