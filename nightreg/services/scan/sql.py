"""Time arithmetic in SQL that reads the same on SQLite and PostgreSQL, for the scan's filters.

The scan narrows a million visits down to the few a rule could match with GROUP BY queries
over indexed columns. Rules decide on the site's wall clock; SQLite knows no time zones. The
filters therefore work on the UTC hour and widen it to every UTC hour that can be a night hour
under any offset the zone uses (CET and CEST: 23:00 to 05:00 local is 21:00 to 04:00 UTC).
The rule itself then decides exactly, on the local clock, over the few visits that remain.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Float, Integer, cast, func, literal_column
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

# A mapped attribute (Visit.arrived_at) or any SQL expression of a time.
Column = InstrumentedAttribute[Any] | ColumnElement[Any]


def utc_hour(column: Column, dialect: str) -> ColumnElement[int]:
    if dialect == "sqlite":
        # DateTimeUTC stores "YYYY-MM-DD HH:MM:SS.ffffff" in UTC.
        return cast(func.strftime("%H", column), Integer)
    return cast(func.extract("hour", func.timezone(literal_column("'UTC'"), column)), Integer)


def utc_date(column: Column, dialect: str) -> ColumnElement[object]:
    """The UTC calendar date: a 'YYYY-MM-DD' string on SQLite, a date on PostgreSQL."""
    if dialect == "sqlite":
        return func.date(column)
    return cast(func.timezone(literal_column("'UTC'"), column), Date)


def hours_between(start: Column, end: Column, dialect: str) -> ColumnElement[float]:
    if dialect == "sqlite":
        return cast((func.julianday(end) - func.julianday(start)) * 24.0, Float)
    return cast(func.extract("epoch", end - start) / literal_column("3600.0"), Float)


def zone_offsets(tz: ZoneInfo, start: datetime, end: datetime) -> set[int]:
    """Every UTC offset (in whole minutes) the zone uses between start and end."""
    first, last = sorted((start.astimezone(UTC).year, end.astimezone(UTC).year))
    return set(_offsets_in_years(tz.key, first, last))


@lru_cache(maxsize=256)
def _offsets_in_years(key: str, first: int, last: int) -> frozenset[int]:
    tz = ZoneInfo(key)
    offsets = set()
    at = datetime(first, 1, 1, tzinfo=UTC)
    # Zones change offset at most a few times a year; a daily probe sees every offset in use.
    while at.year <= last:
        offset = at.astimezone(tz).utcoffset()
        offsets.add(int(offset.total_seconds() // 60) if offset else 0)
        at += timedelta(days=1)
    return frozenset(offsets)


def night_utc_hours(
    tz: ZoneInfo, start_hour: int, end_hour: int, start: datetime, end: datetime, *, pad: int = 0
) -> set[int]:
    """UTC hours that are, under some offset of the zone, within the local window.

    `pad` widens the window by whole hours on both sides (for rules that look a little
    before and after the night, such as a boat meeting a van within 30 minutes).
    """
    local_hours = set()
    hour = (start_hour - pad) % 24
    while True:
        local_hours.add(hour)
        hour = (hour + 1) % 24
        if hour == (end_hour + pad) % 24:
            break
    utc_hours = set()
    for offset in zone_offsets(tz, start, end):
        for local_hour in local_hours:
            # An offset of whole hours maps an hour onto an hour; a half-hour zone touches two.
            for minute in (0, 59):
                utc_hours.add(((local_hour * 60 + minute - offset) // 60) % 24)
    return utc_hours
