"""boat_meets_vehicle's candidates: boats and vehicles at a marina that moved around the night."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select

from nightreg.models import Visit
from nightreg.rules.base import ScannedRule
from nightreg.rules.boat_meets_vehicle import RULE
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
)


async def scan_meetings(
    scan: Scan, rule: ScannedRule, window: Window, summary: ScanSummary
) -> None:
    """All touched marinas in one query."""
    marinas = sorted(s for s in window.touched if scan.sites[s].kind == "marina")
    if not marinas:
        return
    start = min(window.touched[s] for s in marinas) - timedelta(days=1)
    visits = await scan.load(
        select(*FACT_COLUMNS).where(
            *recent(marinas, start, dialect=scan.dialect),
            Visit.kind.in_(("vessel", "vehicle")),
            scan.moved_at_night(rule, marinas, pad=1),
        )
    )
    # Vehicles the gate cameras saw at night, whatever hours the register shows for them.
    sighted = await camera.seen_at_night(scan, rule, marinas, start)
    known = {v.id for v in visits}
    for chunk in chunks(sorted({key for _site, key in sighted})):
        # By the subject index: the plates' visits at these marinas still there since.
        more = await scan.load(
            select(*FACT_COLUMNS).where(
                Visit.subject_key.in_(chunk),
                Visit.site_id.in_(marinas),
                Visit.kind == "vehicle",
                or_(Visit.departed_at.is_(None), Visit.departed_at >= start),
            )
        )
        visits += [v for v in more if v.id not in known and (v.site_id, v.subject_key) in sighted]
    summary.visits += len(visits)
    visits = await camera.with_sightings(scan, visits)
    for site_id, site_visits in by_site(visits).items():
        if {v.kind for v in site_visits} == {"vessel", "vehicle"}:
            scan.evaluate(rule, site_visits, scan.sites[site_id])


SCANNER = Scanner(RULE, "sites", scan_meetings)
