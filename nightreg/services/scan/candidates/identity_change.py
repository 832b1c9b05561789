"""identity_change's candidates: identifiers seen with two vessel names, and a name and guest
seen with two identifiers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from nightreg.models import Visit
from nightreg.rules.base import ScannedRule, VisitFacts
from nightreg.rules.identity_change import RULE
from nightreg.services.scan.context import (
    FACT_COLUMNS,
    Scan,
    Scanner,
    ScanSummary,
    Window,
    chunks,
)


async def scan_identities(
    scan: Scan, rule: ScannedRule, window: Window, summary: ScanSummary
) -> None:
    vessel = Visit.kind == "vessel"
    name = func.lower(Visit.vessel_name)
    guest = func.lower(Visit.guest_name)
    if window.since is not None:
        visits = await _touched_vessels(scan, window.since)
        _evaluate(scan, rule, list(visits.values()), summary)
        return
    by_key = (
        select(Visit.subject_key)
        .where(vessel, Visit.vessel_name.is_not(None))
        .group_by(Visit.subject_key)
        .having(func.count(func.distinct(name)) >= 2)
    )
    by_mmsi = (
        select(Visit.mmsi)
        .where(vessel, Visit.mmsi.is_not(None))
        .group_by(Visit.mmsi)
        .having(func.count(func.distinct(name)) >= 2)
    )
    by_name = (
        select(name)
        .where(vessel, Visit.vessel_name.is_not(None))
        .group_by(name, guest)
        .having(func.count(func.distinct(Visit.subject_key)) >= 2)
    )
    async with scan.db.read() as session:
        keys = set((await session.scalars(by_key)).all())
        mmsis = {m for m in (await session.scalars(by_mmsi)).all() if m}
        names = set((await session.scalars(by_name)).all())
    loaded = {v.id: v for v in await scan.load_subjects(keys, mmsis)}
    for chunk in chunks(sorted(names)):
        for v in await scan.load(select(*FACT_COLUMNS).where(vessel, name.in_(chunk))):
            loaded[v.id] = v
    summary.candidates += len(keys) + len(mmsis) + len(names)
    _evaluate(scan, rule, list(loaded.values()), summary)


async def _touched_vessels(scan: Scan, since: datetime) -> dict[int, VisitFacts]:
    """Every visit sharing a registration, MMSI or exact name with a vessel written since."""
    vessel = Visit.kind == "vessel"
    async with scan.db.read() as session:
        rows = (
            await session.execute(
                select(Visit.subject_key, Visit.mmsi, Visit.vessel_name).where(
                    Visit.updated_at > since, vessel
                )
            )
        ).all()
    keys = {key for key, _m, _n in rows}
    mmsis = {mmsi for _k, mmsi, _n in rows if mmsi}
    names = sorted({name for _k, _m, name in rows if name})
    # The subject pass has read these boats' visits already (the same touched subjects).
    known = scan.subject_visits
    seen_keys = {v.subject_key for v in known.values()}
    seen_mmsis = {v.mmsi for v in known.values() if v.mmsi}
    visits = {i: v for i, v in known.items() if v.kind == "vessel"}
    for v in await scan.load_subjects(keys - seen_keys, mmsis - seen_mmsis):
        visits[v.id] = v
    for chunk in chunks(names):
        for v in await scan.load(select(*FACT_COLUMNS).where(vessel, Visit.vessel_name.in_(chunk))):
            visits[v.id] = v
    return visits


def _evaluate(
    scan: Scan, rule: ScannedRule, loaded: list[VisitFacts], summary: ScanSummary
) -> None:
    visits = {v.id: v for v in loaded if v.kind == "vessel"}
    summary.visits += len(visits)
    if not visits:
        return
    ordered = sorted(visits.values(), key=lambda v: (v.arrived_at, v.id))
    # Thresholds of the site where the latest visit of each finding is.
    by_id = {v.id: v for v in ordered}
    default_site = scan.sites[ordered[-1].site_id]
    for finding in rule.evaluate(ordered, default_site.thresholds(rule), scan.now):
        latest = max((by_id[i] for i in finding.visit_ids), key=lambda v: v.arrived_at)
        scan.found(rule, [finding], scan.sites[latest.site_id])


SCANNER = Scanner(RULE, "subjects", scan_identities)
