"""repeat_overnight_unit's candidates: stays in a unit of a business park, recent or present."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from nightreg.models import Visit
from nightreg.rules.base import ScannedRule
from nightreg.rules.repeat_overnight_unit import RULE
from nightreg.services.scan.context import (
    FACT_COLUMNS,
    Scan,
    Scanner,
    ScanSummary,
    Window,
    by_site,
    recent,
    unit_key,
)


async def scan_overnight_stays(
    scan: Scan, rule: ScannedRule, window: Window, summary: ScanSummary
) -> None:
    parks = sorted(s for s in window.touched if scan.sites[s].kind == "business_park")
    if not parks:
        return
    unit = unit_key(scan.dialect)
    earliest = min(window.touched[s] for s in parks)
    start = earliest - timedelta(days=scan.loosest(rule, "days", max) + 2)
    stays = await scan.load(
        select(*FACT_COLUMNS).where(
            *recent(parks, start, present=True, dialect=scan.dialect),
            Visit.kind == "stay",
            unit.is_not(None),
            unit != "",
        )
    )
    summary.visits += len(stays)
    for site_id, site_visits in by_site(stays).items():
        scan.evaluate(rule, site_visits, scan.sites[site_id])


SCANNER = Scanner(RULE, "sites", scan_overnight_stays)
