"""The subject pass: the rules that follow one boat, car or person across visits and sites.

A full scan keeps, in one GROUP BY by subject key and one by MMSI, the subjects that any
subject rule wants (see `SubjectScanner`); an incremental scan takes the subjects of the visits
written since. Their visits are loaded once and every subject rule decides on each subject.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select

from nightreg.models import AisMovement, Visit
from nightreg.rules.base import VisitFacts
from nightreg.services.scan.context import Scan, ScanSummary, SubjectScanner, chunks


async def _candidates(scan: Scan, scanners: Sequence[SubjectScanner]) -> tuple[set[str], set[str]]:
    """Subject keys and MMSIs that some subject rule could flag, in one pass each.

    A loose filter (the loosest thresholds of all sites); the rules then decide on these
    subjects' visits.
    """
    wanted = or_(*(scanner.wants(scan) for scanner in scanners))
    async with scan.db.read() as session:
        keys = set(
            (
                await session.scalars(
                    select(Visit.subject_key).group_by(Visit.subject_key).having(wanted)
                )
            ).all()
        )
        mmsis = {
            str(m)
            for m in (
                await session.scalars(
                    select(Visit.mmsi)
                    .where(Visit.mmsi.is_not(None))
                    .group_by(Visit.mmsi)
                    .having(wanted)
                )
            ).all()
            if m
        }
    return keys, mmsis


def _link(visits: Sequence[VisitFacts]) -> list[list[VisitFacts]]:
    """Group visits into subjects: a vessel's registration and its MMSI both link visits."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for visit in visits:
        if visit.kind == "vessel" and visit.mmsi:
            a, b = find(visit.subject_key), find(f"mmsi:{visit.mmsi}")
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[VisitFacts]] = defaultdict(list)
    for visit in visits:
        groups[find(visit.subject_key)].append(visit)
    return list(groups.values())


async def _touched_keys(scan: Scan, since: datetime) -> tuple[set[str], set[str]]:
    """The subjects (keys and MMSIs) of the visits written since `since` (ix_visit_updated_at)."""
    async with scan.db.read() as session:
        rows = (
            await session.execute(
                # No DISTINCT: SQLite would then walk another index over the whole table.
                select(Visit.subject_key, Visit.mmsi).where(Visit.updated_at > since)
            )
        ).all()
    keys, mmsis = {key for key, _mmsi in rows}, {str(mmsi) for _key, mmsi in rows if mmsi}
    more_keys, more_mmsis = await _ais_subjects(scan, since)
    return keys | more_keys, mmsis | more_mmsis


async def _ais_subjects(scan: Scan, since: datetime | None) -> tuple[set[str], set[str]]:
    """The subjects of visits with AIS movements (written or matched since `since`)."""
    stmt = select(Visit.subject_key, Visit.mmsi).join(AisMovement, AisMovement.visit_id == Visit.id)
    if since is not None:
        stmt = stmt.where(AisMovement.recorded_at > since)
    async with scan.db.read() as session:
        rows = (await session.execute(stmt.distinct())).all()
    return {key for key, _mmsi in rows}, {str(mmsi) for _key, mmsi in rows if mmsi}


async def _with_ais(scan: Scan, visits: list[VisitFacts]) -> list[VisitFacts]:
    """The visits with their AIS movements (evidence the rules may count)."""
    found: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    async with scan.db.read() as session:
        for chunk in chunks([v.id for v in visits]):
            rows = await session.execute(
                select(AisMovement.visit_id, AisMovement.at, AisMovement.direction)
                .where(AisMovement.visit_id.in_(chunk))
                .order_by(AisMovement.at)
            )
            for visit_id, at, direction in rows:
                found[visit_id or 0].append((at, direction))
    if not found:
        return visits
    return [dataclasses.replace(v, ais=tuple(found[v.id])) if v.id in found else v for v in visits]


async def scan_subjects(
    scan: Scan,
    scanners: Sequence[SubjectScanner],
    since: datetime | None,
    summary: ScanSummary,
) -> None:
    if not scanners:
        return
    if since is None:
        keys, mmsis = await _candidates(scan, scanners)
        more_keys, more_mmsis = await _ais_subjects(scan, None)
        keys, mmsis = keys | more_keys, mmsis | more_mmsis
    else:
        # A few thousand touched subjects: reading their visits by index is cheaper than
        # any GROUP BY over the table, and the rules decide exactly anyway.
        keys, mmsis = await _touched_keys(scan, since)
    visits = await _with_ais(scan, await scan.load_subjects(keys, mmsis))
    scan.subject_visits = {v.id: v for v in visits}
    summary.candidates += len(keys) + len(mmsis)
    summary.visits += len(visits)
    for group in _link(visits):
        group.sort(key=lambda v: (v.arrived_at, v.id))
        latest = scan.sites[group[-1].site_id]
        for scanner in scanners:
            scan.evaluate(scanner.rule, group, latest)
