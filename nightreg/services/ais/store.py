"""AIS movements in the database: written, matched to visits, read for pages and the scan.

Only transitions are written (an MMSI entering or leaving the harbour area), never a position.
A movement is matched to the register's visit of that MMSI at the site whose stay, widened by
MATCH_GRACE on both sides, holds the movement's time (a boat enters, then checks in; checks
out, then leaves). Movements that found no visit are tried again by `match_pending` (the scan
job calls it), as a walk-in may be entered after the boat came in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.models import AisMovement, Visit
from nightreg.services.ais.tracker import Transition

MATCH_GRACE = timedelta(hours=3)
# Unmatched movements live this long (retention); the "last known side" of an MMSI, read when
# a listener starts, looks no further back either.
UNMATCHED_DAYS = 28
CHUNK = 500


@dataclass(frozen=True)
class Inside:
    """An MMSI inside the harbour area by AIS, with no open visit in the register."""

    mmsi: str
    since: datetime
    movement_id: int


def utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def pick_visit(visits: Sequence[tuple[int, datetime, datetime | None]], at: datetime) -> int | None:
    """The visit (id, arrived, departed) a movement at `at` belongs to: the latest arrival
    whose stay, widened by MATCH_GRACE, holds `at`."""
    best: tuple[datetime, int] | None = None
    for visit_id, arrived, departed in visits:
        fits = arrived - MATCH_GRACE <= at and (departed is None or at <= departed + MATCH_GRACE)
        if fits and (best is None or arrived > best[0]):
            best = (arrived, visit_id)
    return best[1] if best else None


async def _visits_of(
    session: AsyncSession, site_id: int, mmsis: Iterable[str]
) -> dict[str, list[tuple[int, datetime, datetime | None]]]:
    found: dict[str, list[tuple[int, datetime, datetime | None]]] = defaultdict(list)
    values = sorted(set(mmsis))
    for start in range(0, len(values), CHUNK):
        rows = await session.execute(
            select(Visit.mmsi, Visit.id, Visit.arrived_at, Visit.departed_at).where(
                Visit.site_id == site_id, Visit.mmsi.in_(values[start : start + CHUNK])
            )
        )
        for mmsi, visit_id, arrived, departed in rows:
            found[str(mmsi)].append((visit_id, arrived, departed))
    return found


def _insert(dialect: str, rows: list[dict[str, Any]]) -> Any:
    stmt = postgresql.insert(AisMovement) if dialect == "postgresql" else sqlite.insert(AisMovement)
    return stmt.values(rows).on_conflict_do_nothing()


async def record(
    db: Database, site_id: int, transitions: Sequence[Transition], *, now: datetime
) -> int:
    """Write the transitions, each matched to its visit if one fits; how many were new."""
    if not transitions:
        return 0
    dialect = "sqlite" if db.is_sqlite else "postgresql"
    written = 0
    async with db.write() as session:
        visits = await _visits_of(session, site_id, (t.mmsi for t in transitions))
        for start in range(0, len(transitions), CHUNK):
            rows = []
            for t in transitions[start : start + CHUNK]:
                at = utc(t.at)
                rows.append(
                    {
                        "site_id": site_id,
                        "mmsi": t.mmsi,
                        "direction": t.direction,
                        "at": at,
                        "visit_id": pick_visit(visits.get(t.mmsi, []), at),
                        "recorded_at": now,
                    }
                )
            result = await session.execute(
                _insert(dialect, rows).returning(AisMovement.__table__.c.id)
            )
            written += len(result.all())
    return written


async def match_pending(db: Database, *, now: datetime) -> int:
    """Match movements that found no visit when written to visits entered since; how many."""
    since = now - timedelta(days=UNMATCHED_DAYS)
    async with db.read() as session:
        rows = (
            await session.execute(
                select(AisMovement.id, AisMovement.site_id, AisMovement.mmsi, AisMovement.at)
                .where(AisMovement.visit_id.is_(None), AisMovement.at >= since)
                .order_by(AisMovement.site_id)
            )
        ).all()
    if not rows:
        return 0
    by_site: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_site[row.site_id].append(row)
    matched: dict[int, int] = {}
    async with db.read() as session:
        for site_id, movements in by_site.items():
            visits = await _visits_of(session, site_id, (m.mmsi for m in movements))
            for m in movements:
                visit_id = pick_visit(visits.get(m.mmsi, []), m.at)
                if visit_id is not None:
                    matched[m.id] = visit_id
    if matched:
        async with db.write() as session:
            for movement_id, visit_id in matched.items():
                await session.execute(
                    update(AisMovement)
                    .where(AisMovement.id == movement_id, AisMovement.visit_id.is_(None))
                    .values(visit_id=visit_id, recorded_at=now)
                )
    return len(matched)


def _latest(site_id: int, since: datetime) -> Any:
    """Each MMSI's latest movement at the site since `since` (id, mmsi, direction, at)."""
    ranked = (
        select(
            AisMovement.id,
            AisMovement.mmsi,
            AisMovement.direction,
            AisMovement.at,
            func.row_number()
            .over(
                partition_by=AisMovement.mmsi,
                order_by=(AisMovement.at.desc(), AisMovement.id.desc()),
            )
            .label("n"),
        )
        .where(AisMovement.site_id == site_id, AisMovement.at >= since)
        .subquery()
    )
    return select(ranked.c.id, ranked.c.mmsi, ranked.c.direction, ranked.c.at).where(
        ranked.c.n == 1
    )


async def known_sides(db: Database, site_id: int, *, now: datetime) -> dict[str, str]:
    """The side (in or out) each MMSI was last recorded on: a restarted listener's memory."""
    async with db.read() as session:
        rows = await session.execute(_latest(site_id, now - timedelta(days=UNMATCHED_DAYS)))
        return {str(mmsi): direction for _id, mmsi, direction, _at in rows}


async def inside_unregistered(
    session: AsyncSession, site_id: int, *, now: datetime
) -> list[Inside]:
    """MMSIs whose latest movement is an entry, with no open visit of that MMSI at the site
    (Tonight's "on AIS, not in the register"), longest inside first."""
    rows = (await session.execute(_latest(site_id, now - timedelta(days=UNMATCHED_DAYS)))).all()
    inside = {str(r.mmsi): r for r in rows if r.direction == "in" and r.at <= now}
    if not inside:
        return []
    present: set[str] = set()
    values = sorted(inside)
    for start in range(0, len(values), CHUNK):
        present.update(
            str(m)
            for m in await session.scalars(
                select(Visit.mmsi).where(
                    Visit.site_id == site_id,
                    Visit.mmsi.in_(values[start : start + CHUNK]),
                    Visit.departed_at.is_(None),
                    Visit.arrived_at <= now + MATCH_GRACE,
                )
            )
        )
    return sorted(
        (Inside(mmsi, r.at, r.id) for mmsi, r in inside.items() if mmsi not in present),
        key=lambda i: (i.since, i.mmsi),
    )


async def of_visit(session: AsyncSession, visit_id: int) -> list[AisMovement]:
    """A visit's AIS movements, in time order."""
    return list(
        await session.scalars(
            select(AisMovement)
            .where(AisMovement.visit_id == visit_id)
            .order_by(AisMovement.at, AisMovement.id)
        )
    )


async def visit_movements(db: Database, visit_id: int) -> list[AisMovement]:
    """A visit's AIS movements (the caller has checked that the actor may see the visit)."""
    async with db.read() as session:
        return await of_visit(session, visit_id)


async def of_visits(
    session: AsyncSession, visit_ids: Sequence[int]
) -> dict[int, list[tuple[datetime, str]]]:
    """(time, direction) of the AIS movements of these visits, by visit, in time order."""
    out: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    ids = sorted(set(visit_ids))
    for start in range(0, len(ids), CHUNK):
        rows = await session.execute(
            select(AisMovement.visit_id, AisMovement.at, AisMovement.direction)
            .where(AisMovement.visit_id.in_(ids[start : start + CHUNK]))
            .order_by(AisMovement.at)
        )
        for visit_id, at, direction in rows:
            out[visit_id or 0].append((at, direction))
    return out
