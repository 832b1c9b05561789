"""Gate camera sightings as evidence for the rules about vehicles (issue 19).

A sighting counts for a rule only through a visit that covers it (the same plate at the same
site, nightreg.services.sightings.covers): it adds the times the cameras saw the vehicle go
in or out to that visit's facts (`VisitFacts.camera_sightings`). What the scan needs: the
sites whose sightings arrived since the last scan, the plates seen at night (so that a
vehicle whose register times are by day is still a candidate), and the sightings themselves.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import func, select

from nightreg.models import Sighting
from nightreg.rules.base import Rule, VisitFacts, in_window, night_of
from nightreg.services.scan.context import Scan, chunks
from nightreg.services.sightings import MATCH_SLACK, covers


async def touched(scan: Scan, since: datetime | None) -> dict[int, datetime]:
    """Site -> the earliest sighting among those received since `since` (none: nothing)."""
    if since is None:
        return {}
    async with scan.db.read() as session:
        rows = (
            await session.execute(
                select(Sighting.site_id, func.min(Sighting.seen_at))
                .where(Sighting.received_at > since)
                .group_by(Sighting.site_id)
            )
        ).all()
    return {site_id: at for site_id, at in rows if site_id in scan.sites}


async def seen_at_night(
    scan: Scan, rule: Rule, site_ids: Sequence[int], start: datetime
) -> dict[tuple[int, str], set[date]]:
    """(site, plate key) -> the nights (night_of, on the site's clock) on which the cameras
    saw the plate at these sites since `start` within the rule's night window."""
    if not site_ids:
        return {}
    night = scan.night_filter(
        Sighting.seen_at, rule, pad=1, site_ids=site_ids, site_column=Sighting.site_id
    )
    async with scan.db.read() as session:
        rows = await session.execute(
            select(Sighting.site_id, Sighting.subject_key, Sighting.seen_at).where(
                Sighting.site_id.in_(site_ids), Sighting.seen_at >= start, night
            )
        )
        found: dict[tuple[int, str], set[date]] = defaultdict(set)
        for site_id, key, at in rows.all():
            site = scan.sites[site_id]
            t = site.thresholds(rule)
            if in_window(at, site.tz, t["night_start_hour"], t["night_end_hour"]):
                found[(site_id, key)].add(night_of(at, site.tz, t["night_end_hour"]))
        return dict(found)


async def with_sightings(scan: Scan, visits: Iterable[VisitFacts]) -> list[VisitFacts]:
    """The visits, each vehicle's facts with the sightings it covers."""
    visits = list(visits)
    vehicles = [v for v in visits if v.kind == "vehicle" and v.subject_key.startswith("plate:")]
    if not vehicles:
        return visits
    start = min(v.arrived_at for v in vehicles) - MATCH_SLACK
    by_site: dict[int, set[str]] = defaultdict(set)
    for v in vehicles:
        by_site[v.site_id].add(v.subject_key)
    seen: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    async with scan.db.read() as session:
        for site_id, keys in by_site.items():
            for chunk in chunks(sorted(keys)):
                rows = await session.execute(
                    select(Sighting.subject_key, Sighting.seen_at).where(
                        Sighting.site_id == site_id,
                        Sighting.subject_key.in_(chunk),
                        Sighting.seen_at >= start,
                    )
                )
                for key, at in rows.all():
                    seen[(site_id, key)].append(at)
    if not seen:
        return visits
    out = []
    for v in visits:
        times = seen.get((v.site_id, v.subject_key)) if v.kind == "vehicle" else None
        if times:
            mine = tuple(
                sorted(at for at in times if covers(v.arrived_at, v.departed_at, at, scan.now))
            )
            if mine:
                v = dataclasses.replace(v, camera_sightings=mine)
        out.append(v)
    return out
