"""arrival_surge's candidates: arrivals per site and local date, counted in SQL."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select, text

from nightreg.models import Visit
from nightreg.rules.arrival_surge import RULE
from nightreg.rules.base import Finding, NightCount, ScannedRule
from nightreg.services.scan.context import EVER, Scan, Scanner, ScanSummary, SiteInfo, Window
from nightreg.services.scan.sql import utc_date, utc_hour, zone_offsets


def _midnight_hours(tz: ZoneInfo, start: datetime, end: datetime) -> list[int]:
    """The UTC hours at which the zone's local date changes (Amsterdam: 22 and 23)."""
    return sorted({(-offset // 60) % 24 for offset in zone_offsets(tz, start, end)})


async def _night_counts(
    scan: Scan, site_ids: list[int], tz: ZoneInfo, start: datetime
) -> dict[int, list[NightCount]]:
    """Arrivals per site and local date, counted in SQL by UTC date and hour band.

    Within one UTC date, the hours before the earliest local midnight, each hour at which a
    local midnight can fall, and the hours after the last, each belong to one local date,
    which is worked out here from one instant of the band.
    """
    d = scan.dialect
    edges = _midnight_hours(tz, start, scan.now)
    hour = utc_hour(Visit.arrived_at, d)
    band = case((hour < edges[0], -1), *[(hour == e, e) for e in edges], else_=99)
    query = (
        select(Visit.site_id, utc_date(Visit.arrived_at, d), band, func.count())
        .where(Visit.site_id.in_(site_ids), Visit.arrived_at >= start)
        # By position: PostgreSQL matches a GROUP BY expression only when its bound
        # parameters are the same ones, and each use of an expression binds its own.
        .group_by(text("1"), text("2"), text("3"))
    )
    async with scan.db.read() as session:
        rows = (await session.execute(query)).all()
    per_date: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for site_id, day, band_hour, count in rows:
        day = date.fromisoformat(day) if isinstance(day, str) else day
        probe = {-1: 0, 99: 23}.get(band_hour, band_hour)
        instant = datetime(day.year, day.month, day.day, probe, tzinfo=UTC)
        per_date[site_id][instant.astimezone(tz).date()] += count
    return {
        site_id: [NightCount(site_id, night, n) for night, n in sorted(nights.items())]
        for site_id, nights in per_date.items()
    }


async def scan_surges(scan: Scan, rule: ScannedRule, window: Window, summary: ScanSummary) -> None:
    by_zone: dict[str, list[int]] = defaultdict(list)
    for site_id in window.touched:
        by_zone[scan.sites[site_id].tz.key].append(site_id)
    weeks = scan.loosest(rule, "weeks", max)
    for zone, site_ids in by_zone.items():
        earliest = min(window.touched[s] for s in site_ids)
        start = max(EVER, earliest - timedelta(weeks=weeks, days=2))
        counts = await _night_counts(scan, sorted(site_ids), ZoneInfo(zone), start)
        for site_id, nights in counts.items():
            site = scan.sites[site_id]
            summary.candidates += len(nights)
            surging = rule.evaluate(nights, site.thresholds(rule), scan.now, tz=site.tz)
            if surging:
                scan.found(rule, await _with_evidence(scan, site, surging), site)


async def _with_evidence(scan: Scan, site: SiteInfo, surging: list[Finding]) -> list[Finding]:
    """The findings with those days' arrivals as their visits, read in one query per site."""
    async with scan.db.read() as session:
        arrivals = (
            await session.execute(
                select(Visit.id, Visit.arrived_at)
                .where(
                    Visit.site_id == site.id,
                    or_(
                        *(
                            and_(
                                Visit.arrived_at >= f.window_start,
                                Visit.arrived_at < f.window_end,
                            )
                            for f in surging
                        )
                    ),
                )
                .order_by(Visit.id)
            )
        ).all()
    return [
        dataclasses.replace(
            finding,
            visit_ids=tuple(
                visit_id
                for visit_id, at in arrivals
                if finding.window_start <= at < finding.window_end
            ),
        )
        for finding in surging
    ]


SCANNER = Scanner(RULE, "surges", scan_surges)
