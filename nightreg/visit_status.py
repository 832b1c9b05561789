"""A visit's status, in one place: present, departed, or overdue (past the expected departure).

- departed: the departure is recorded.
- present: arrived by `now` and not departed.
- overdue: present and past its expected departure by at least a grace period. The register's
  pages and the API use no grace ("expected departure has passed"); the `overdue` rule uses
  its `hours` threshold as the grace ("still present N hours after the expected departure").

Overdue is a kind of present: a filter on "present" lists the overdue too (has_status), while
the label a page shows for one visit is the most specific one (status).

Each test has its SQL twin beside it, so that a page that filters in the database and a page
(or a rule) that judges a loaded visit can never disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, and_

from nightreg.models import Visit

PRESENT = "present"
DEPARTED = "departed"
OVERDUE = "overdue"
STATUSES = (PRESENT, DEPARTED, OVERDUE)

NO_GRACE = timedelta(0)


class Stay(Protocol):
    """What the status looks at: a Visit, or the rules' VisitFacts."""

    @property
    def arrived_at(self) -> datetime: ...

    @property
    def expected_departure_at(self) -> datetime: ...

    @property
    def departed_at(self) -> datetime | None: ...


def is_present(visit: Stay, now: datetime) -> bool:
    """At the site at `now`: arrived, not departed."""
    return visit.departed_at is None and visit.arrived_at <= now


def is_overdue(visit: Stay, now: datetime, grace: timedelta = NO_GRACE) -> bool:
    """Present at `now`, and at least `grace` past the expected departure."""
    return is_present(visit, now) and now - visit.expected_departure_at >= grace


def has_status(visit: Stay, name: str, now: datetime) -> bool:
    """Whether the register's filter on `name` lists the visit (status_is in Python)."""
    if name == PRESENT:
        return is_present(visit, now)
    if name == OVERDUE:
        return is_overdue(visit, now)
    if name == DEPARTED:
        return visit.departed_at is not None
    raise ValueError(f"unknown status: {name!r}")


def status(visit: Stay, now: datetime) -> str:
    """The one label a page shows for a visit at `now`: the most specific status."""
    if visit.departed_at is not None:
        return DEPARTED
    return OVERDUE if is_overdue(visit, now) else PRESENT


# --- the SQL twins -----------------------------------------------------------------------------


def present_at(now: datetime) -> ColumnElement[bool]:
    """Visits at the site at `now`: arrived, not departed."""
    return and_(Visit.departed_at.is_(None), Visit.arrived_at <= now)


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
