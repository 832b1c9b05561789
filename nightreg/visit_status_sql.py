"""The SQL twins of `nightreg.visit_status`: the same statuses as WHERE clauses on Visit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_

from nightreg.models import Visit
from nightreg.visit_status import DEPARTED, NO_GRACE, OVERDUE, PRESENT


def present_at(now: datetime | Any, visit: Any = Visit) -> ColumnElement[bool]:
    """Visits at the site at `now`: arrived, not departed.

    `visit` may be an alias of Visit and `now` a column (the visits present when another
    was written: nightreg.services.presence).
    """
    return and_(visit.departed_at.is_(None), visit.arrived_at <= now)


def departed() -> ColumnElement[bool]:
    return Visit.departed_at.is_not(None)


def overdue_at(now: datetime, grace: timedelta = NO_GRACE) -> ColumnElement[bool]:
    """is_overdue in SQL, for the visits present at `now`."""
    return and_(present_at(now), Visit.expected_departure_at <= now - grace)


def status_is(name: str, now: datetime) -> ColumnElement[bool]:
    """The register's status filter; `name` is one of STATUSES."""
    if name == PRESENT:
        return present_at(now)
    if name == OVERDUE:
        return overdue_at(now)
    if name == DEPARTED:
        return departed()
    raise ValueError(f"unknown status: {name!r}")
