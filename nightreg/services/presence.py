"""One subject, present once per site: the open visit a new one would double, and its mark.

A boat (its registration, or its MMSI), a vehicle (its plate) or an overnight guest (name and
place of residence) is a *subject*: `Visit.subject_key` (validation.subject_key), plus the
MMSI, which names a boat whichever of its identifiers the key was made of. A new visit of a
subject that is present at the site when it is written (arrived, not departed:
`visit_status_sql.present_at`) would make it present twice:

- the kiosk's check-in is written all the same (nothing a visitor submits is lost) and
  `mark`ed, in the transaction that writes it, as a *possible duplicate* of the open visit,
  for staff to merge or keep (nightreg.services.duplicates); the visitor's answer is the same;
- a walk-in or an API call finds the open visit first (`open_visit`) and is refused
  (AlreadyPresent) unless told to add it anyway.

Only visits written one by one meet this: the import's batches (historic, mostly departed
visits) are the import's own business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from nightreg.models import PossibleDuplicate, Visit
from nightreg.visit_status_sql import present_at

# Any fixed number: with a site's id, the PostgreSQL advisory lock under which a visit is
# checked against those present and written (SQLite's single writer serialises it already).
_PRESENCE_LOCK = 0x4E52_5052  # "NRPR"


class AlreadyPresent(Exception):
    """The subject is present at the site: `visit_id` is its open visit (the earliest)."""

    def __init__(self, visit_id: int) -> None:
        super().__init__(f"already present as visit {visit_id}")
        self.visit_id = visit_id


def same_subject(other: Any, subject_key: Any, mmsi: Any) -> Any:
    """`other` (Visit or an alias) is of the subject with this key or MMSI.

    `subject_key` and `mmsi` are values, or the columns of another alias of Visit.
    """
    if mmsi is None:
        return other.subject_key == subject_key
    if isinstance(mmsi, str):
        return or_(other.subject_key == subject_key, other.mmsi == mmsi)
    return or_(other.subject_key == subject_key, and_(mmsi.is_not(None), other.mmsi == mmsi))


async def lock_sites(session: AsyncSession | AsyncConnection, site_ids: Iterable[int]) -> None:
    """On PostgreSQL, take the sites' presence locks for the rest of the transaction."""
    bind = session.get_bind() if isinstance(session, AsyncSession) else session
    if bind.dialect.name != "postgresql":
        return
    for site_id in sorted(set(site_ids)):  # always in the same order: no deadlock
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:lock, :site)"),
            {"lock": _PRESENCE_LOCK, "site": site_id},
        )


async def open_visit(
    session: AsyncSession, site_id: int, values: Mapping[str, Any], now: datetime
) -> Visit | None:
    """The earliest visit of the subject of `values` (a visit_row) present at the site now."""
    return await session.scalar(
        select(Visit)
        .where(
            Visit.site_id == site_id,
            present_at(now),
            same_subject(Visit, values["subject_key"], values.get("mmsi") or None),
        )
        .order_by(Visit.arrived_at, Visit.id)
        .limit(1)
    )


def mark_statement(visit_ids: Sequence[int]) -> Any:
    """Mark each of these new visits that doubles one present when it was written.

    The open visit is the earliest present at the site at the new one's `created_at` with the
    same subject, and written before it (so that of two in one batch only the later is marked).
    """
    new = aliased(Visit, name="new_visit")
    old = aliased(Visit, name="open_visit")
    first_open = (
        select(old.id)
        .where(
            old.site_id == new.site_id,
            old.id < new.id,
            present_at(new.created_at, old),
            same_subject(old, new.subject_key, new.mmsi),
        )
        .order_by(old.arrived_at, old.id)
        .limit(1)
        .correlate(new)
        .scalar_subquery()
    )
    rows = select(new.id, first_open, new.site_id, new.created_at).where(
        new.id.in_(list(visit_ids)), new.departed_at.is_(None), first_open.is_not(None)
    )
    table = PossibleDuplicate.__table__
    return table.insert().from_select(  # type: ignore[attr-defined]
        ["visit_id", "duplicate_of_id", "site_id", "created_at"], rows
    )


async def mark(session: AsyncSession | AsyncConnection, visit_ids: Sequence[int]) -> None:
    """Mark the possible duplicates among these new visits, in the caller's transaction."""
    if visit_ids:
        await session.execute(mark_statement(visit_ids))


# --- counting once ---------------------------------------------------------------------------


def doubled(visit_ids: Iterable[int], marks: Mapping[int, int]) -> set[int]:
    """The visits not to count among `visit_ids`: possible duplicates (`marks`: visit id to
    the open visit it doubles) whose open visit is among them too. The subject counts once."""
    ids = set(visit_ids)
    return {visit_id for visit_id in ids if marks.get(visit_id) in ids}


async def marks_of(session: AsyncSession, visit_ids: Iterable[int]) -> dict[int, int]:
    """The possible duplicates among these visits: visit id to the open visit it doubles."""
    ids = sorted(set(visit_ids))
    out: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            select(PossibleDuplicate.visit_id, PossibleDuplicate.duplicate_of_id).where(
                PossibleDuplicate.visit_id.in_(ids[start : start + 500])
            )
        )
        out.update((visit_id, of) for visit_id, of in rows)
    return out
