"""unit_night_traffic's candidates: units of a business park with a busy day or night traffic."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta

from sqlalchemy import func, or_, select, text

from nightreg.models import Visit
from nightreg.rules.base import ScannedRule, VisitFacts
from nightreg.rules.unit_night_traffic import RULE
from nightreg.services.scan import sightings as camera
from nightreg.services.scan.context import (
    FACT_COLUMNS,
    Scan,
    Scanner,
    ScanSummary,
    Window,
    by_site,
    chunks,
    recent,
    unit_key,
)
from nightreg.services.scan.sql import utc_date


async def scan_unit_traffic(
    scan: Scan, rule: ScannedRule, window: Window, summary: ScanSummary
) -> None:
    """All touched business parks in one query per question."""
    parks = sorted(s for s in window.touched if scan.sites[s].kind == "business_park")
    if not parks:
        return
    d = scan.dialect
    unit = unit_key(d)
    earliest = min(window.touched[s] for s in parks)
    start = earliest - timedelta(days=scan.loosest(rule, "days", max) + 2)
    in_range = recent(parks, start, dialect=d)
    vehicles = [Visit.kind == "vehicle", unit.is_not(None), unit != ""]
    # A local day spans at most two UTC dates: ten vans in a day are five on one of them.
    busy = math.ceil(scan.loosest(rule, "vehicles") / 2)
    busy_day = (
        select(Visit.site_id, unit, utc_date(Visit.arrived_at, d))
        .where(*in_range, *vehicles)
        .group_by(text("1"), text("2"), text("3"))
        .having(func.count(func.distinct(Visit.plate)) >= busy)
    )
    nights = scan.loosest(rule, "nights")
    at_night = (
        select(Visit.site_id, unit, func.count())
        .where(*in_range, *vehicles, scan.moved_at_night(rule, parks))
        .group_by(text("1"), text("2"))
    )
    # Nights on which the gate cameras saw a plate: a unit whose vehicles' nights, in the
    # register and on camera together, could reach the threshold is a candidate too.
    sighted = await camera.seen_at_night(scan, rule, parks, start)
    async with scan.db.read() as session:
        pairs = {(site, u) for site, u, _day in (await session.execute(busy_day)).all()}
        moved = {(site, u): n for site, u, n in (await session.execute(at_night)).all()}
        pairs |= {pair for pair, n in moved.items() if n >= nights}
        seen: dict[tuple[int, str], set[date]] = defaultdict(set)
        for chunk in chunks(sorted({key for _site, key in sighted})):
            # By the subject index: the plates' visits at these parks still there since.
            by_plate = select(Visit.site_id, unit, Visit.subject_key).where(
                Visit.subject_key.in_(chunk),
                Visit.site_id.in_(parks),
                *vehicles,
                or_(Visit.departed_at.is_(None), Visit.departed_at >= start),
            )
            for site, u, key in (await session.execute(by_plate)).all():
                seen[(site, u)] |= sighted.get((site, key), set())
        pairs |= {pair for pair, days in seen.items() if len(days) + moved.get(pair, 0) >= nights}
    summary.candidates += len(pairs)
    units = sorted({u for _site, u in pairs})
    visits: list[VisitFacts] = []
    for chunk in chunks(units):
        visits += await scan.load(
            select(*FACT_COLUMNS).where(*in_range, *vehicles, unit.in_(chunk))
        )
    summary.visits += len(visits)
    visits = await camera.with_sightings(scan, visits)
    for site_id, site_visits in by_site(visits).items():
        # Units that are candidates at another park were loaded too; the rule decides exactly.
        scan.evaluate(rule, site_visits, scan.sites[site_id])


SCANNER = Scanner(RULE, "sites", scan_unit_traffic)
