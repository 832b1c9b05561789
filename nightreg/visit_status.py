"""A visit's status, in one place: present, departed, or overdue (past the expected departure).

- departed: the departure is recorded.
- present: arrived by `now` and not departed.
- overdue: present and past its expected departure by at least a grace period. The register's
  pages and the API use no grace ("expected departure has passed"); the `overdue` rule uses
  its `hours` threshold as the grace ("still present N hours after the expected departure").

Overdue is a kind of present: a filter on "present" lists the overdue too (has_status), while
the label a page shows for one visit is the most specific one (status).

Each test has its SQL twin in `nightreg.visit_status_sql`, so that a page that filters in the
database and a page (or a rule) that judges a loaded visit can never disagree
(tests/http/test_visit_status.py holds them to each other). The twins live apart because rules
are pure functions and must not reach the ORM models through this module.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

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
