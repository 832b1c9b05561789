"""Injectable time: everything asks a Clock, so tests can set the hour instead of sleeping."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)


# --- the site's calendar -----------------------------------------------------------------


def local_day(at: datetime, tz: ZoneInfo) -> date:
    """The calendar day `at` falls on in `tz` (a site's or the installation's)."""
    return at.astimezone(tz).date()


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of `day` in `tz`, in UTC: where a period of local dates begins."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def utc_text(at: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second (what the hub and the API read)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
