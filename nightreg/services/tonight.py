"""Tonight's board: who is at a site now, who came today, who leaves today, who is overdue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Integer, bindparam, select, text

from nightreg import visit_status, visit_status_sql
from nightreg.clock import local_midnight
from nightreg.db import Database
from nightreg.models import Site, Visit
from nightreg.services import audit, duplicates, presence, rounds, sightings
from nightreg.services import flags as flag_queue
from nightreg.services.access import Actor
from nightreg.services.ais import store as ais_store
from nightreg.services.register import VIEW, site_tz
from nightreg.services.sites import scoped_site


@dataclass(frozen=True)
class Tonight:
    site: Site
    present: list[Visit]
    present_by_kind: dict[str, int]
    arrived_today: list[Visit]
    leaving_today: list[Visit]
    overdue: list[Visit]
    open_flags: int | None = None
    # Boats present but not there on the last two night rounds that looked for them: to check out.
    not_seen: list[Visit] = field(default_factory=list)
    # Possible duplicates among those present (and the visits they double), unresolved.
    duplicates: list[duplicates.Pair] = field(default_factory=list)
    # Present visit id -> the visit it may double; those counted once are in `doubled`.
    marks: dict[int, int] = field(default_factory=dict)
    doubled: frozenset[int] = frozenset()
    # AIS (a marina that listens): MMSIs inside the harbour area with no open visit. For the
    # harbour master to look at; never a flag, never forwarded.
    on_ais: list[ais_store.Inside] = field(default_factory=list)
    # Gate cameras (issue 19): plates on the park at night with no visit covering them.
    on_camera: list[sightings.CameraVehicle] = field(default_factory=list)

    def count(self, visits: list[Visit]) -> int:
        """How many of these the board counts: a subject present twice (a possible duplicate
        of a visit present too) counts once."""
        return sum(1 for v in visits if v.id not in self.doubled)


_VISIT_COLUMNS = ", ".join(f"visit.{c.name}" for c in Visit.__table__.columns)
# visit_status_sql.present_at written out by hand, for the index hint.
# SQLite without statistics (no ANALYZE yet) rates ix_visit_present and ix_visit_site_arrived
# alike and may pick the latter, reading every visit the site ever had to find the few still
# here; INDEXED BY settles it. PostgreSQL's planner has statistics and finds the partial index.
_PRESENT_SQLITE = (
    text(
        f"SELECT {_VISIT_COLUMNS} FROM visit INDEXED BY ix_visit_present "  # noqa: S608
        "WHERE visit.site_id = :site_id AND visit.departed_at IS NULL "
        "AND visit.arrived_at <= :now ORDER BY visit.arrived_at DESC, visit.id DESC"
    )
    .bindparams(bindparam("site_id", type_=Integer()), bindparam("now", type_=DateTimeUTC()))
    .columns(*Visit.__table__.columns)
)


def _present(site_id: int, now: datetime, *, sqlite: bool) -> Any:
    """Who is at a site now (arrived, not departed), newest arrival first."""
    if sqlite:
        return select(Visit).from_statement(_PRESENT_SQLITE).params(site_id=site_id, now=now)
    return (
        select(Visit)
        .where(Visit.site_id == site_id, visit_status_sql.present_at(now))
        .order_by(Visit.arrived_at.desc(), Visit.id.desc())
    )


async def tonight(db: Database, actor: Actor, site_id: int, *, now: datetime) -> Tonight:
    """Who is at the site now, who came today, who leaves today, who should have left.

    `leaving_today` holds those still expected to leave before midnight; those whose expected
    departure has passed are `overdue` instead, so that nobody is listed twice.
    """
    async with db.read() as session:
        site = await scoped_site(session, actor, VIEW, site_id=site_id)
        tz = site_tz(site)
        today = now.astimezone(tz).date()
        midnight = local_midnight(today, tz)
        next_midnight = local_midnight(today + timedelta(days=1), tz)
        present = list(await session.scalars(_present(site.id, now, sqlite=db.is_sqlite)))
        not_seen = await rounds.not_seen_twice(session, site.id, present, now=now)
        # Counted only for those who may open the queue; None leaves it off the board.
        open_flags = (
            await flag_queue.open_flag_count_in(session, actor, site.id)
            if actor.can(flag_queue.VIEW, site.id)
            else None
        )
        pairs = await duplicates.pairs_among(session, [v.id for v in present])
        on_ais = (
            await ais_store.inside_unregistered(session, site.id, now=now)
            if site.ais_enabled
            else []
        )
        on_camera = await sightings.not_in_register(session, site, now=now)
        arrived_today = list(
            await session.scalars(
                select(Visit)
                .where(
                    Visit.site_id == site.id,
                    Visit.arrived_at >= midnight,
                    Visit.arrived_at <= now,
                )
                .order_by(Visit.arrived_at.desc(), Visit.id.desc())
            )
        )
    overdue = [v for v in present if visit_status.is_overdue(v, now)]
    leaving_today = sorted(
        (v for v in present if now < v.expected_departure_at < next_midnight),
        key=lambda v: (v.expected_departure_at, v.id),
    )
    marks = {p.duplicate.id: p.original.id for p in pairs}
    doubled = presence.doubled((v.id for v in present), marks)
    by_kind = dict.fromkeys(site.visit_kinds, 0)
    for visit in present:
        if visit.id not in doubled:
            by_kind[visit.kind] = by_kind.get(visit.kind, 0) + 1
    shown = [v.id for v in present] + [v.id for v in arrived_today]
    shown += [p.original.id for p in pairs]
    # The MMSIs on AIS alone are shown too: the event names their movements.
    extra = {"details": {"ais_movements": [i.movement_id for i in on_ais]}} if on_ais else {}
    await audit.log(db, actor, "tonight_viewed", at=now, site_id=site.id, object_ids=shown, **extra)
    if on_camera:
        seen = [i for vehicle in on_camera for i in vehicle.sighting_ids]
        await audit.log(
            db, actor, "sightings_viewed", at=now, site_id=site.id, object_type="sighting",
            object_ids=seen,
        )  # fmt: skip
    return Tonight(
        site=site,
        present=present,
        present_by_kind=by_kind,
        arrived_today=arrived_today,
        leaving_today=leaving_today,
        overdue=sorted(overdue, key=lambda v: (v.expected_departure_at, v.id)),
        open_flags=open_flags,
        not_seen=sorted(not_seen, key=lambda v: rounds.berth_sort_key(v.berth)),
        duplicates=pairs,
        marks=marks,
        doubled=frozenset(doubled),
        on_ais=on_ais,
        on_camera=on_camera,
    )
