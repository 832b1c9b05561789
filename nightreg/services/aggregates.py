"""Non-personal counts per site, local day and kind: what survives a visit's deletion.

The counts are what a tourist-tax return and the statistics need, and nothing that points at
a person: per site, per local day, per kind of visit,

- `visits` and `persons`: the visits that arrived that day and the persons they brought;
- `overnight_stays`: the persons staying the night that begins that day.

A visit's nights are the local dates from its arrival date up to (not including) its
departure date: a boat that arrives on 30 March and leaves on 2 April spends the nights of
30 and 31 March and 1 April, two in March and one in April, and counts persons × 1 on each.
A visit that arrives and leaves on one day spends no night. A visit never checked out counts
up to its expected departure.

A possible duplicate not yet resolved by staff (nightreg.services.duplicates) counts its
subject once: it adds no arrival, and only the nights the visit it doubles does not spend.

`contributions` is a pure function over plain rows; `add` folds counts into the table (an
upsert that adds), inside the caller's transaction, so that counting a visit and deleting it
commit together: a purge interrupted between batches neither loses nor double-counts one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.clock import local_day
from nightreg.models import PossibleDuplicate, Site, Visit, VisitAggregate


@dataclass(frozen=True)
class StayRow:
    """What the counts need of one visit, and nothing else."""

    site_id: int
    kind: str
    persons: int
    arrived_at: datetime
    # Departure, or the expected departure for a visit never checked out.
    ends_at: datetime
    visit_id: int = 0
    # The visit this one may double (an unresolved possible duplicate), if any.
    duplicate_of: int | None = None


@dataclass
class Counts:
    visits: int = 0
    persons: int = 0
    overnight_stays: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        self.visits += other.visits
        self.persons += other.persons
        self.overnight_stays += other.overnight_stays
        return self


Key = tuple[int, date, str]  # site id, local day, kind


def nights(arrived_at: datetime, ends_at: datetime, tz: ZoneInfo) -> list[date]:
    """The local dates whose night the visit spends at the site (none for a day visit)."""
    first = local_day(arrived_at, tz)
    last = local_day(ends_at, tz)
    return [first + timedelta(days=n) for n in range((last - first).days)]


def contributions(
    rows: Iterable[StayRow], zones: Mapping[int, ZoneInfo], context: Iterable[StayRow] = ()
) -> dict[Key, Counts]:
    """The counts these visits add, per site, local day and kind.

    A possible duplicate of a visit among `rows` or `context` (visits counted elsewhere, given
    only for this) adds no arrival and only the nights that visit, and the other duplicates
    of it before it, do not spend: the subject counts once a night.
    """
    rows = list(rows)
    known = {r.visit_id: r for r in (*context, *rows) if r.visit_id}
    covered: dict[int, set[date]] = {}  # the nights of a doubled visit, as counted so far
    out: dict[Key, Counts] = defaultdict(Counts)
    for row in sorted(rows, key=lambda r: r.duplicate_of is not None):
        tz = zones[row.site_id]
        spent = nights(row.arrived_at, row.ends_at, tz)
        original = known.get(row.duplicate_of) if row.duplicate_of is not None else None
        if original is not None:
            seen = covered.setdefault(
                original.visit_id,
                set(nights(original.arrived_at, original.ends_at, zones[original.site_id])),
            )
            spent = [night for night in spent if night not in seen]
            seen.update(spent)
        else:
            arrival = out[(row.site_id, local_day(row.arrived_at, tz), row.kind)]
            arrival.visits += 1
            arrival.persons += row.persons
        for night in spent:
            out[(row.site_id, night, row.kind)].overnight_stays += row.persons
    return dict(out)


def stay_columns() -> tuple[Any, ...]:
    """The columns of Visit that make a StayRow, in its order."""
    return (
        Visit.site_id,
        Visit.kind,
        Visit.persons,
        Visit.arrived_at,
        Visit.departed_at,
        Visit.expected_departure_at,
    )


def stay_row(row: tuple[Any, ...]) -> StayRow:
    site_id, kind, persons, arrived_at, departed_at, expected, *marked = row
    visit_id, duplicate_of = marked if marked else (0, None)
    return StayRow(
        site_id, kind, persons, arrived_at, departed_at or expected, visit_id, duplicate_of
    )


def marked_stay_columns() -> tuple[Any, ...]:
    """stay_columns, with the visit's id and the visit it may double: select them from
    `marked_stays()` (a possible duplicate counts its subject once)."""
    return (*stay_columns(), Visit.id, PossibleDuplicate.duplicate_of_id)


def marked_stays() -> Any:
    """The visits with their marks as possible duplicates (an outer join)."""
    return select(*marked_stay_columns()).outerjoin(
        PossibleDuplicate, PossibleDuplicate.visit_id == Visit.id
    )


async def site_zones(session: AsyncSession) -> dict[int, ZoneInfo]:
    rows = await session.execute(select(Site.id, Site.timezone))
    return {site_id: ZoneInfo(name) for site_id, name in rows}


async def add(session: AsyncSession, counts: Mapping[Key, Counts]) -> None:
    """Add counts to the aggregates (insert, or add to the row already there)."""
    if not counts:
        return
    values = [
        {
            "site_id": site_id,
            "day": day,
            "kind": kind,
            "visits": c.visits,
            "persons": c.persons,
            "overnight_stays": c.overnight_stays,
        }
        for (site_id, day, kind), c in sorted(counts.items())
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = VisitAggregate.__table__
    assert isinstance(table, Table)
    for start in range(0, len(values), 500):
        stmt = insert(table).values(values[start : start + 500])
        stmt = stmt.on_conflict_do_update(
            index_elements=["site_id", "day", "kind"],
            set_={
                "visits": table.c.visits + stmt.excluded.visits,
                "persons": table.c.persons + stmt.excluded.persons,
                "overnight_stays": table.c.overnight_stays + stmt.excluded.overnight_stays,
            },
        )
        await session.execute(stmt)


async def add_visits(session: AsyncSession, visit_ids: list[int]) -> int:
    """Count these visits into the aggregates (just before they are deleted); how many."""
    if not visit_ids:
        return 0
    zones = await site_zones(session)
    rows = [
        stay_row(tuple(r))
        for r in await session.execute(marked_stays().where(Visit.id.in_(visit_ids)))
    ]
    # The visits they double that stay behind count them as they are counted live.
    doubled = {r.duplicate_of for r in rows if r.duplicate_of is not None} - set(visit_ids)
    context = [
        stay_row(tuple(r))
        for r in await session.execute(marked_stays().where(Visit.id.in_(sorted(doubled))))
    ]
    await add(session, contributions(rows, zones, context))
    return len(rows)
