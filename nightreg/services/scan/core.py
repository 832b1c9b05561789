"""The scan: run the rules over the register and turn what they find into flags.

It works in three steps, so that a million visits never pass through Python one by one:
1. Set-based queries (GROUP BY over indexed columns) pick the candidates a rule could match:
   subjects with two night movements, units with many vans in a day, and so on. The filters
   are loose on purpose (a superset); they only bound the work. Each rule's query lives in
   its module of nightreg.services.scan.candidates; this core names no rule.
2. The candidates' visits are loaded as plain `VisitFacts` and each rule, a pure function,
   decides exactly (on the site's wall clock, with the site's thresholds).
3. Each finding is recorded through nightreg.services.flagging (nightreg.services.scan.
   recording), which creates a flag once and grows it when the finding grows. Running the
   scan twice changes nothing the second time.

An incremental scan looks again at the subjects and sites touched (visit.updated_at) since the
last successful scan started, minus an overlap that covers transactions still open then and
clocks a little apart; a full scan looks at everything.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from nightreg.db import Database
from nightreg.models import JobRun, Site, Visit
from nightreg.services.ais import store as ais_store
from nightreg.services.scan import sightings as camera
from nightreg.services.scan.candidates import SCANNERS
from nightreg.services.scan.context import (
    EVER,
    Scan,
    Scanner,
    ScanSummary,
    SiteInfo,
    SubjectScanner,
    Window,
)
from nightreg.services.scan.recording import record
from nightreg.services.scan.subjects import scan_subjects

# Transactions that were still open when the last scan started, and instances whose clocks
# differ a little, wrote visits stamped before that start: look that far back again.
OVERLAP = timedelta(minutes=10)


async def load_sites(db: Database) -> dict[int, SiteInfo]:
    async with db.read() as session:
        rows = (
            await session.execute(select(Site.id, Site.kind, Site.timezone, Site.rule_thresholds))
        ).all()
    sites = {}
    for site_id, kind, timezone, overrides in rows:
        sites[site_id] = SiteInfo(
            site_id, kind, ZoneInfo(timezone), overrides if isinstance(overrides, dict) else {}
        )
    return sites


async def last_scan_started(db: Database) -> datetime | None:
    async with db.read() as session:
        return await session.scalar(
            select(func.max(JobRun.started_at)).where(JobRun.job == "scan", JobRun.status == "ok")
        )


async def _touched_sites(scan: Scan, since: datetime | None) -> dict[int, datetime]:
    """Site -> earliest time to look at again (full scan: every site from the beginning)."""
    if since is None:
        return dict.fromkeys(scan.sites, EVER)
    async with scan.db.read() as session:
        # Rows, not GROUP BY: grouped, SQLite walks the site index over the whole table
        # instead of the few rows ix_visit_updated_at finds.
        rows = (
            await session.execute(
                select(Visit.site_id, Visit.arrived_at).where(Visit.updated_at > since)
            )
        ).all()
    earliest: dict[int, datetime] = {}
    for site_id, arrived_at in rows:
        if site_id in scan.sites and (site_id not in earliest or arrived_at < earliest[site_id]):
            earliest[site_id] = arrived_at
    return earliest


class _PhaseClock:
    """Seconds per phase of a scan, for the benchmark and the log."""

    def __init__(self, summary: ScanSummary) -> None:
        self.summary = summary
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.summary.phases[phase] = round(now - self.last, 2)
        self.last = now


def _parts(scan: Scan, window: Window, summary: ScanSummary) -> list[Callable[[], Awaitable[None]]]:
    """The scan's parts, each a sequence of rules on one connection: the subject pass first,
    then each rule with a query of its own, in the catalogue's order."""
    subject_scanners = [s for s in SCANNERS if isinstance(s, SubjectScanner)]
    by_part: dict[str, list[Scanner]] = defaultdict(list)
    for scanner in SCANNERS:
        if isinstance(scanner, Scanner):
            by_part[scanner.part].append(scanner)
    by_part.setdefault("subjects", [])

    def part(name: str, scanners: list[Scanner]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            clock = _PhaseClock(summary)
            if name == "subjects" and subject_scanners:
                await scan_subjects(scan, subject_scanners, window.since, summary)
                clock.lap("subjects")
            for scanner in scanners:
                await scanner.run(scan, scanner.rule, window, summary)
                clock.lap(scanner.rule.code)

        return run

    return [part(name, scanners) for name, scanners in by_part.items()]


async def run_scan(
    db: Database,
    *,
    now: datetime,
    full: bool = False,
    since: datetime | None = None,
    watchlist_key: str = "",
) -> ScanSummary:
    """Evaluate the rules and record their findings; see the module docstring."""
    started = time.perf_counter()
    if not full and since is None:
        last = await last_scan_started(db)
        if last is None:
            full = True
        else:
            since = last - OVERLAP
    if full:
        since = None
    summary = ScanSummary(job="scan", full=full, since=since)
    # AIS movements that found no visit when written may belong to one entered since (a
    # walk-in): matched first, they are evidence for this scan.
    matching = _PhaseClock(summary)
    await ais_store.match_pending(db, now=now)
    matching.lap("ais_match")
    sites = await load_sites(db)
    if sites:
        scan = Scan(db, sites, now)
        touched = await _touched_sites(scan, since)
        # Sites whose gate cameras posted since: their night looks again from the sightings.
        for site_id, at in (await camera.touched(scan, since)).items():
            touched[site_id] = min(at, touched.get(site_id, at))
        window = Window(since, touched)
        # The parts only read, each on its own connection: the database works on one while
        # Python works on another's rows.
        await asyncio.gather(*(part() for part in _parts(scan, window, summary)))
        clock = _PhaseClock(summary)
        await record(scan, summary)
        clock.lap("record")
        if watchlist_key:
            summary.watchlist_hits = await _scan_watchlist(db, since, watchlist_key, now)
            clock.lap("watchlist")
    summary.seconds = time.perf_counter() - started
    return summary


async def _scan_watchlist(db: Database, since: datetime | None, key: str, now: datetime) -> int:
    """Visits written other than through a check-in (imports, corrections) meet the list here."""
    from nightreg.services import watchlist

    return await watchlist.scan_visits(db, since=since, key=key, now=now)
