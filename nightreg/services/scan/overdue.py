"""The overdue job: flag visits still present well after their expected departure.

Operational, not a risk signal (nightreg.rules.overdue): it runs on its own schedule, apart
from the scan, and looks at every site each time.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy import select

from nightreg import visit_status_sql
from nightreg.db import Database
from nightreg.rules.overdue import RULE
from nightreg.services.scan.context import FACT_COLUMNS, Scan, ScanSummary
from nightreg.services.scan.core import load_sites
from nightreg.services.scan.recording import record


async def run_overdue(db: Database, *, now: datetime) -> ScanSummary:
    """Flag visits still present well after their expected departure (operational)."""
    started = time.perf_counter()
    summary = ScanSummary(job="overdue", full=True)
    sites = await load_sites(db)
    if sites:
        scan = Scan(db, sites, now)
        hours = scan.loosest(RULE, "hours")
        visits = await scan.load(
            # The rule's grace is a threshold on the one definition of overdue.
            select(*FACT_COLUMNS).where(visit_status_sql.overdue_at(now, timedelta(hours=hours)))
        )
        summary.visits = len(visits)
        for visit in visits:
            scan.evaluate(RULE, [visit], scan.sites[visit.site_id])
        await record(scan, summary)
    summary.seconds = time.perf_counter() - started
    return summary
