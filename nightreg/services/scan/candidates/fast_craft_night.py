"""fast_craft_night's candidates: RIBs and speedboats that arrived or left in the night."""

from __future__ import annotations

from sqlalchemy import select

from nightreg.models import Visit
from nightreg.rules.base import ScannedRule
from nightreg.rules.fast_craft_night import RULE
from nightreg.services.scan.context import FACT_COLUMNS, Scan, Scanner, ScanSummary, Window


async def scan_fast_craft(
    scan: Scan, rule: ScannedRule, window: Window, summary: ScanSummary
) -> None:
    query = select(*FACT_COLUMNS).where(
        Visit.kind == "vessel",
        Visit.vessel_type.in_(("rib", "speedboat")),
        scan.moved_at_night(rule, sorted(scan.sites)),
    )
    if window.since is not None:
        query = query.where(Visit.updated_at > window.since)
    visits = await scan.load(query)
    summary.visits += len(visits)
    for visit in visits:
        scan.evaluate(rule, [visit], scan.sites[visit.site_id])


SCANNER = Scanner(RULE, "subjects", scan_fast_craft)
