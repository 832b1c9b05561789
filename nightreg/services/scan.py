"""The scan: run the rules over the register and turn what they find into flags.

It works in three steps, so that a million visits never pass through Python one by one:
1. Set-based queries (GROUP BY over indexed columns) pick the candidates a rule could match:
   subjects with two night movements, units with many vans in a day, and so on. The filters
   are loose on purpose (a superset); they only bound the work.
2. The candidates' visits are loaded as plain `VisitFacts` and each rule, a pure function,
   decides exactly (on the site's wall clock, with the site's thresholds).
3. Each finding is recorded through nightreg.services.flagging, which creates a flag once and
   grows it when the finding grows. Running the scan twice changes nothing the second time.

An incremental scan looks again at the subjects and sites touched (visit.updated_at) since the
last successful scan started, minus an overlap that covers transactions still open then and
clocks a little apart; a full scan looks at everything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    and_,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.sql.elements import ColumnElement

from nightreg.db import Database
from nightreg.models import Flag, JobRun, Site, Visit, flag_visit
from nightreg.rules import RULES
from nightreg.rules.base import Finding, NightCount, Rule, VisitFacts, fold_name
from nightreg.services import audit, flagging, signals
from nightreg.services.access import SYSTEM
from nightreg.services.scan_sql import (
    Column,
    hours_between,
    night_utc_hours,
    utc_date,
    utc_hour,
    zone_offsets,
)
from nightreg.validation import normalise_identifier

# Transactions that were still open when the last scan started, and instances whose clocks
# differ a little, wrote visits stamped before that start: look that far back again.
OVERLAP = timedelta(minutes=10)
# Findings are recorded in transactions of this many, so SQLite's one writer is not held for
# the whole scan while check-ins wait.
RECORD_BATCH = 200
# IN lists are sent in chunks well below both databases' limits on bound parameters.
CHUNK = 500

SUBJECT_RULES = ("night_movement", "short_stay_repeat", "site_hopping")
SITE_RULES = ("boat_meets_vehicle", "unit_night_traffic", "repeat_overnight_unit")
EVER = datetime(2000, 1, 1, tzinfo=UTC)

_FACT_COLUMNS = (
    Visit.id,
    Visit.site_id,
    Visit.kind,
    Visit.subject_key,
    Visit.arrived_at,
    Visit.expected_departure_at,
    Visit.departed_at,
    Visit.registration,
    Visit.mmsi,
    Visit.plate,
    Visit.vessel_name,
    Visit.vessel_type,
    Visit.guest_name,
    Visit.unit,
    Visit.company,
)


@dataclass(frozen=True)
class SiteInfo:
    id: int
    kind: str
    tz: ZoneInfo
    overrides: Mapping[str, Mapping[str, object]]

    def thresholds(self, rule: Rule) -> dict[str, int]:
        return rule.resolve(self.overrides.get(rule.code))


@dataclass
class ScanSummary:
    job: str = "scan"
    full: bool = False
    since: datetime | None = None
    candidates: int = 0
    visits: int = 0
    findings: int = 0
    created: int = 0
    grown: int = 0
    reopened: int = 0
    watchlist_hits: int = 0
    # Flags an agreement forwards without review (watchlist hits), sent to the outbox.
    forwarded: int = 0
    seconds: float = 0.0
    by_rule: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts = {
            "candidates": self.candidates,
            "visits": self.visits,
            "findings": self.findings,
            "created": self.created,
            "grown": self.grown,
            "reopened": self.reopened,
            "forwarded": self.forwarded,
        }
        if self.job == "scan":
            counts["watchlist_hits"] = self.watchlist_hits
        return counts

    def line(self) -> str:
        mode = "full" if self.full else "incremental"
        parts = ", ".join(f"{k} {v}" for k, v in self.counts().items())
        return f"{self.job} ({mode}): {parts} in {self.seconds:.1f} s"


# --- facts -------------------------------------------------------------------------------


def _identifier(value: str | None, key: str, prefix: str) -> str | None:
    """The normalised registration or plate; the subject key holds it already when it leads."""
    if not value:
        return None
    return key[len(prefix) :] if key.startswith(prefix) else normalise_identifier(value)


# Boat names and units repeat across a register: fold each spelling once per process.
_fold = lru_cache(maxsize=65536)(fold_name)
_unit = lru_cache(maxsize=65536)(normalise_identifier)


def _facts(row: Any, site: SiteInfo) -> VisitFacts:
    unit = row.unit or row.company
    return VisitFacts(
        id=row.id,
        site_id=row.site_id,
        site_kind=site.kind,
        tz=site.tz,
        kind=row.kind,
        subject_key=row.subject_key,
        arrived_at=row.arrived_at,
        expected_departure_at=row.expected_departure_at,
        departed_at=row.departed_at,
        registration=_identifier(row.registration, row.subject_key, "reg:"),
        mmsi=row.mmsi or None,
        plate=_identifier(row.plate, row.subject_key, "plate:"),
        vessel_name=_fold(row.vessel_name),
        vessel_type=row.vessel_type,
        guest=fold_name(row.guest_name) or "",
        unit=(_unit(unit) or None) if unit else None,
    )


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class _Scan:
    """One scan's state: the sites, the database dialect, what it found."""

    def __init__(self, db: Database, sites: dict[int, SiteInfo], now: datetime) -> None:
        self.db = db
        self.sites = sites
        self.now = now
        self.dialect = "sqlite" if db.is_sqlite else "postgresql"
        self.findings: list[tuple[Finding, int, dict[str, int]]] = []
        # The subjects' visits, kept for the identity rule, which looks at the same boats.
        self.subject_visits: dict[int, VisitFacts] = {}

    # -- loose filters shared by several rules ---------------------------------------------

    def loosest(self, code: str, name: str, pick: Any = min) -> int:
        rule = RULES[code]
        return int(pick(site.thresholds(rule)[name] for site in self.sites.values()))

    def night_filter(
        self,
        column: Column,
        code: str,
        *,
        start_name: str = "night_start_hour",
        end_name: str = "night_end_hour",
        pad: int = 0,
        site_ids: Iterable[int] | None = None,
    ) -> ColumnElement[bool]:
        """`column` is, on some site's clock, within the rule's night window (a superset)."""
        rule = RULES[code]
        wanted = set(site_ids) if site_ids is not None else set(self.sites)
        groups: dict[tuple[str, int, int], list[int]] = defaultdict(list)
        for site in self.sites.values():
            if site.id in wanted:
                t = site.thresholds(rule)
                groups[(site.tz.key, t[start_name], t[end_name])].append(site.id)
        hour = utc_hour(column, self.dialect)
        conditions = [
            and_(
                Visit.site_id.in_(ids),
                hour.in_(
                    sorted(night_utc_hours(ZoneInfo(tz), start, end, EVER, self.now, pad=pad))
                ),
            )
            for (tz, start, end), ids in groups.items()
        ]
        return or_(*conditions) if conditions else literal(False)

    # -- loading ---------------------------------------------------------------------------

    async def load(self, query: Any) -> list[VisitFacts]:
        """Run a select of _FACT_COLUMNS and make facts of its rows."""
        async with self.db.read() as session:
            rows = (await session.execute(query)).all()
        return [_facts(row, self.sites[row.site_id]) for row in rows if row.site_id in self.sites]

    async def load_subjects(self, keys: set[str], mmsis: set[str]) -> list[VisitFacts]:
        """Every visit of these subjects (by subject key, and vessels also by MMSI)."""
        seen: dict[int, VisitFacts] = {}
        for column, values in ((Visit.subject_key, keys), (Visit.mmsi, mmsis)):
            for chunk in _chunks(sorted(values)):
                for fact in await self.load(select(*_FACT_COLUMNS).where(column.in_(chunk))):
                    seen[fact.id] = fact
        return sorted(seen.values(), key=lambda f: (f.arrived_at, f.id))

    # -- recording -------------------------------------------------------------------------

    def found(self, rule: Rule, findings: Iterable[Finding], site: SiteInfo | None) -> None:
        for finding in findings:
            site_id = finding.site_id or (site.id if site else None)
            if site_id is None:
                continue
            thresholds = self.sites[site_id].thresholds(rule)
            self.findings.append((finding, site_id, thresholds))

    async def known(self, findings: Sequence[Finding]) -> tuple[set[int], set[int]]:
        """Indexes of findings already wholly in a flag of their rule (nothing to record), and
        of those with no flag of their rule on any of their visits (a new flag, surely).

        A rescan finds mostly what it found before; one read per batch tells which, so the
        write transaction (SQLite's single writer) is only taken for what is new.
        """
        visit_ids = sorted({v for f in findings for v in f.visit_ids})
        flags_of: dict[int, set[tuple[int, str]]] = defaultdict(set)
        members: dict[int, set[int]] = defaultdict(set)
        async with self.db.read() as session:
            for chunk in _chunks(visit_ids):
                rows = await session.execute(
                    select(flag_visit.c.visit_id, flag_visit.c.flag_id, Flag.rule)
                    .join(Flag, Flag.id == flag_visit.c.flag_id)
                    .where(flag_visit.c.visit_id.in_(chunk))
                )
                for visit_id, flag_id, rule in rows:
                    flags_of[visit_id].add((flag_id, rule))
                    members[flag_id].add(visit_id)
        done: set[int] = set()
        fresh: set[int] = set()
        for index, finding in enumerate(findings):
            if not finding.visit_ids:
                continue
            same_rule = {
                fid for v in finding.visit_ids for fid, rule in flags_of[v] if rule == finding.rule
            }
            if any(set(finding.visit_ids) <= members[fid] for fid in same_rule):
                done.add(index)
            elif not same_rule:
                fresh.add(index)
        return done, fresh

    async def record(self, summary: ScanSummary) -> None:
        recorded: dict[str, set[int]] = defaultdict(set)
        for start in range(0, len(self.findings), RECORD_BATCH):
            batch = self.findings[start : start + RECORD_BATCH]
            known, fresh = await self.known([finding for finding, _s, _t in batch])
            todo = [(i, item) for i, item in enumerate(batch) if i not in known]
            if not todo:
                continue
            async with self.db.write() as session:
                # The batch's audit events are chained and written together at its end.
                events: list[dict[str, Any]] = []
                new: list[tuple[Finding, int, dict[str, int]]] = []
                rest: list[tuple[Finding, int, dict[str, int]]] = []
                for index, item in todo:
                    # Fresh as of the batch's read, unless a finding before it in this batch
                    # shares a visit with it (then it grows that one's flag, written first).
                    mine = recorded[item[0].rule]
                    fresh_here = index in fresh and mine.isdisjoint(item[0].visit_ids)
                    mine.update(item[0].visit_ids)
                    (new if fresh_here else rest).append(item)
                ids = await flagging.create_many(session, new, now=self.now, audit_log=events)
                summary.created += sum(flag_id is not None for flag_id in ids)
                rest += [item for item, flag_id in zip(new, ids, strict=True) if flag_id is None]
                # Flags a reviewer has not seen in this state: new, or reopened by evidence.
                unseen = [flag_id for flag_id in ids if flag_id is not None]
                for finding, site_id, thresholds in rest:
                    done = await flagging.record(
                        session, finding, site_id=site_id, now=self.now, thresholds=thresholds,
                        audit_log=events,
                    )  # fmt: skip
                    summary.created += done.created
                    summary.grown += bool(done.added_visits) and not done.created
                    summary.reopened += done.reopened
                    if done.created or done.reopened:
                        unseen.append(done.flag_id)
                await audit.record_many(session, SYSTEM, events)
                summary.forwarded += await signals.auto_forward(session, unseen, now=self.now)
        summary.findings += len(self.findings)
        for finding, _site_id, _t in self.findings:
            summary.by_rule[finding.rule] = summary.by_rule.get(finding.rule, 0) + 1
        self.findings.clear()


# --- subjects: night movements, short stays, site hopping ---------------------------------


async def _subject_candidates(scan: _Scan) -> tuple[set[str], set[str]]:
    """Subject keys and MMSIs that some subject rule could flag, in one pass each.

    Two night movements, enough short stays, or two different sites: a loose filter (the
    loosest thresholds of all sites); the rules then decide on these subjects' visits.
    """
    d = scan.dialect
    departed = Visit.departed_at.is_not(None)
    night_moves = func.sum(
        case((scan.night_filter(Visit.arrived_at, "night_movement"), 1), else_=0)
    ) + func.sum(
        case((and_(departed, scan.night_filter(Visit.departed_at, "night_movement")), 1), else_=0)
    )
    short_hours = scan.loosest("short_stay_repeat", "hours", max)
    short_stays = func.sum(
        case(
            (
                and_(departed, hours_between(Visit.arrived_at, Visit.departed_at, d) < short_hours),
                1,
            ),
            else_=0,
        )
    )
    wanted = or_(
        night_moves >= scan.loosest("night_movement", "count"),
        short_stays >= scan.loosest("short_stay_repeat", "count"),
        func.count(func.distinct(Visit.site_id)) >= 2,
    )
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


async def _touched_keys(scan: _Scan, since: datetime) -> tuple[set[str], set[str]]:
    """The subjects (keys and MMSIs) of the visits written since `since` (ix_visit_updated_at)."""
    async with scan.db.read() as session:
        rows = (
            await session.execute(
                # No DISTINCT: SQLite would then walk another index over the whole table.
                select(Visit.subject_key, Visit.mmsi).where(Visit.updated_at > since)
            )
        ).all()
    return {key for key, _mmsi in rows}, {str(mmsi) for _key, mmsi in rows if mmsi}


async def _scan_subjects(scan: _Scan, since: datetime | None, summary: ScanSummary) -> None:
    if since is None:
        keys, mmsis = await _subject_candidates(scan)
    else:
        # A few thousand touched subjects: reading their visits by index is cheaper than
        # any GROUP BY over the table, and the rules decide exactly anyway.
        keys, mmsis = await _touched_keys(scan, since)
    visits = await scan.load_subjects(keys, mmsis)
    scan.subject_visits = {v.id: v for v in visits}
    summary.candidates += len(keys) + len(mmsis)
    summary.visits += len(visits)
    for group in _link(visits):
        group.sort(key=lambda v: (v.arrived_at, v.id))
        latest = scan.sites[group[-1].site_id]
        for code in SUBJECT_RULES:
            rule = RULES[code]
            assert rule.evaluate is not None
            scan.found(rule, rule.evaluate(group, latest.thresholds(rule), scan.now), latest)


# --- identity changes --------------------------------------------------------------------


async def _scan_identities(scan: _Scan, since: datetime | None, summary: ScanSummary) -> None:
    """Identifiers seen with two vessel names, and a name and guest seen with two identifiers."""
    vessel = Visit.kind == "vessel"
    name = func.lower(Visit.vessel_name)
    guest = func.lower(Visit.guest_name)
    if since is not None:
        visits = await _touched_vessels(scan, since)
        await _evaluate_identities(scan, list(visits.values()), summary)
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
    visits = {v.id: v for v in await scan.load_subjects(keys, mmsis)}
    for chunk in _chunks(sorted(names)):
        for v in await scan.load(select(*_FACT_COLUMNS).where(vessel, name.in_(chunk))):
            visits[v.id] = v
    summary.candidates += len(keys) + len(mmsis) + len(names)
    await _evaluate_identities(scan, list(visits.values()), summary)


async def _touched_vessels(scan: _Scan, since: datetime) -> dict[int, VisitFacts]:
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
    # The subject step has read these boats' visits already (the same touched subjects).
    known = scan.subject_visits
    seen_keys = {v.subject_key for v in known.values()}
    seen_mmsis = {v.mmsi for v in known.values() if v.mmsi}
    visits = {i: v for i, v in known.items() if v.kind == "vessel"}
    for v in await scan.load_subjects(keys - seen_keys, mmsis - seen_mmsis):
        visits[v.id] = v
    for chunk in _chunks(names):
        for v in await scan.load(
            select(*_FACT_COLUMNS).where(vessel, Visit.vessel_name.in_(chunk))
        ):
            visits[v.id] = v
    return visits


async def _evaluate_identities(scan: _Scan, loaded: list[VisitFacts], summary: ScanSummary) -> None:
    visits = {v.id: v for v in loaded if v.kind == "vessel"}
    summary.visits += len(visits)
    if not visits:
        return
    rule = RULES["identity_change"]
    assert rule.evaluate is not None
    ordered = sorted(visits.values(), key=lambda v: (v.arrived_at, v.id))
    # Thresholds of the site where the latest visit of each finding is.
    by_id = {v.id: v for v in ordered}
    default_site = scan.sites[ordered[-1].site_id]
    for finding in rule.evaluate(ordered, default_site.thresholds(rule), scan.now):
        latest = max((by_id[i] for i in finding.visit_ids), key=lambda v: v.arrived_at)
        scan.found(rule, [finding], scan.sites[latest.site_id])


# --- one visit at a time: fast craft at night ---------------------------------------------


async def _scan_fast_craft(scan: _Scan, since: datetime | None, summary: ScanSummary) -> None:
    code = "fast_craft_night"
    query = select(*_FACT_COLUMNS).where(
        Visit.kind == "vessel",
        Visit.vessel_type.in_(("rib", "speedboat")),
        or_(
            scan.night_filter(Visit.arrived_at, code),
            and_(Visit.departed_at.is_not(None), scan.night_filter(Visit.departed_at, code)),
        ),
    )
    if since is not None:
        query = query.where(Visit.updated_at > since)
    visits = await scan.load(query)
    summary.visits += len(visits)
    rule = RULES[code]
    assert rule.evaluate is not None
    for visit in visits:
        site = scan.sites[visit.site_id]
        scan.found(rule, rule.evaluate([visit], site.thresholds(rule), scan.now), site)


# --- sites: boats meeting vans, unit traffic, overnight stays in units ---------------------


async def _touched_sites(scan: _Scan, since: datetime | None) -> dict[int, datetime]:
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


def _unit_key(dialect: str) -> ColumnElement[str]:
    """unit or company without case, spaces or dashes (close to normalise_identifier)."""
    raw: Any = func.coalesce(Visit.unit, Visit.company)
    # Literals, not bound parameters: PostgreSQL matches a GROUP BY expression to the
    # selected one only when their parameters are the same.
    for char in (" ", "-", "."):
        raw = func.replace(raw, literal_column(f"'{char}'"), literal_column("''"))
    return func.upper(raw)


def _by_site(visits: Iterable[VisitFacts]) -> dict[int, list[VisitFacts]]:
    grouped: dict[int, list[VisitFacts]] = defaultdict(list)
    for visit in visits:
        grouped[visit.site_id].append(visit)
    return grouped


def _moved_at_night(scan: _Scan, code: str, site_ids: list[int], pad: int = 0) -> Any:
    return or_(
        scan.night_filter(Visit.arrived_at, code, pad=pad, site_ids=site_ids),
        and_(
            Visit.departed_at.is_not(None),
            scan.night_filter(Visit.departed_at, code, pad=pad, site_ids=site_ids),
        ),
    )


async def _scan_sites(scan: _Scan, touched: dict[int, datetime], summary: ScanSummary) -> None:
    """Marinas and business parks, all touched sites in one query per question."""
    marinas = sorted(s for s in touched if scan.sites[s].kind == "marina")
    parks = sorted(s for s in touched if scan.sites[s].kind == "business_park")
    if marinas:
        await _scan_marinas(scan, marinas, min(touched[s] for s in marinas), summary)
    if parks:
        await _scan_parks(scan, parks, min(touched[s] for s in parks), summary)


def _recent(
    site_ids: list[int], start: datetime, *, present: bool = False, dialect: str = "sqlite"
) -> list[Any]:
    """Visits of these sites that arrived or changed since `start` (and, if asked, those
    still present), as a condition on visit.id that each database answers from its indexes.

    A departure is recorded after it happens, so a visit that left since `start` was also
    written since then. The obvious `arrived_at >= start OR departed_at >= start` makes
    SQLite read every visit of the site instead.
    """
    if start <= EVER:
        return [Visit.site_id.in_(site_ids)]
    if dialect == "postgresql":
        # PostgreSQL combines the indexes of an OR itself (BitmapOr); an IN (… UNION …)
        # would make it hash-join the whole table instead.
        either = [Visit.arrived_at >= start, Visit.updated_at >= start]
        if present:
            either.append(Visit.departed_at.is_(None))
        return [Visit.site_id.in_(site_ids), or_(*either)]
    parts = [
        select(Visit.id).where(Visit.site_id.in_(site_ids), Visit.arrived_at >= start),
        select(Visit.id).where(Visit.updated_at >= start),
    ]
    if present:
        parts.append(
            select(Visit.id).where(Visit.site_id.in_(site_ids), Visit.departed_at.is_(None))
        )
    return [Visit.site_id.in_(site_ids), Visit.id.in_(union(*parts).scalar_subquery())]


async def _scan_marinas(
    scan: _Scan, marinas: list[int], earliest: datetime, summary: ScanSummary
) -> None:
    meet = RULES["boat_meets_vehicle"]
    assert meet.evaluate is not None
    start = earliest - timedelta(days=1)
    visits = await scan.load(
        select(*_FACT_COLUMNS).where(
            *_recent(marinas, start, dialect=scan.dialect),
            Visit.kind.in_(("vessel", "vehicle")),
            _moved_at_night(scan, meet.code, marinas, pad=1),
        )
    )
    summary.visits += len(visits)
    for site_id, site_visits in _by_site(visits).items():
        kinds = {v.kind for v in site_visits}
        if kinds == {"vessel", "vehicle"}:
            site = scan.sites[site_id]
            scan.found(meet, meet.evaluate(site_visits, site.thresholds(meet), scan.now), site)


async def _scan_parks(
    scan: _Scan, parks: list[int], earliest: datetime, summary: ScanSummary
) -> None:
    d = scan.dialect
    traffic = RULES["unit_night_traffic"]
    overnight = RULES["repeat_overnight_unit"]
    assert traffic.evaluate is not None
    assert overnight.evaluate is not None
    unit = _unit_key(d)
    start = earliest - timedelta(days=scan.loosest("unit_night_traffic", "days", max) + 2)
    in_range = _recent(parks, start, dialect=d)
    vehicles = [Visit.kind == "vehicle", unit.is_not(None), unit != ""]
    # A local day spans at most two UTC dates: ten vans in a day are five on one of them.
    busy = math.ceil(scan.loosest("unit_night_traffic", "vehicles") / 2)
    busy_day = (
        select(Visit.site_id, unit, utc_date(Visit.arrived_at, d))
        .where(*in_range, *vehicles)
        .group_by(text("1"), text("2"), text("3"))
        .having(func.count(func.distinct(Visit.plate)) >= busy)
    )
    at_night = (
        select(Visit.site_id, unit)
        .where(*in_range, *vehicles, _moved_at_night(scan, traffic.code, parks))
        .group_by(text("1"), text("2"))
        .having(func.count() >= scan.loosest("unit_night_traffic", "nights"))
    )
    async with scan.db.read() as session:
        pairs = {(site, u) for site, u, _day in (await session.execute(busy_day)).all()}
        pairs |= {(site, u) for site, u in (await session.execute(at_night)).all()}
    summary.candidates += len(pairs)
    units = sorted({u for _site, u in pairs})
    visits: list[VisitFacts] = []
    for chunk in _chunks(units):
        loaded = await scan.load(
            select(*_FACT_COLUMNS).where(*in_range, *vehicles, unit.in_(chunk))
        )
        visits += loaded
    stays = await scan.load(
        select(*_FACT_COLUMNS).where(
            *_recent(parks, start, present=True, dialect=d),
            Visit.kind == "stay",
            unit.is_not(None),
            unit != "",
        )
    )
    summary.visits += len(visits) + len(stays)
    by_site_visits = _by_site(visits)
    for site_id, site_visits in _by_site(stays).items():
        site = scan.sites[site_id]
        scan.found(
            overnight, overnight.evaluate(site_visits, site.thresholds(overnight), scan.now), site
        )
    for site_id, site_visits in by_site_visits.items():
        site = scan.sites[site_id]
        # Units that are candidates at another park were loaded too; the rule decides exactly.
        scan.found(traffic, traffic.evaluate(site_visits, site.thresholds(traffic), scan.now), site)


# --- arrival surges ----------------------------------------------------------------------


def _midnight_hours(tz: ZoneInfo, start: datetime, end: datetime) -> list[int]:
    """The UTC hours at which the zone's local date changes (Amsterdam: 22 and 23)."""
    return sorted({(-offset // 60) % 24 for offset in zone_offsets(tz, start, end)})


async def _night_counts(
    scan: _Scan, site_ids: list[int], tz: ZoneInfo, start: datetime
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


async def _scan_surges(scan: _Scan, touched: dict[int, datetime], summary: ScanSummary) -> None:
    rule = RULES["arrival_surge"]
    assert rule.evaluate is not None
    by_zone: dict[str, list[int]] = defaultdict(list)
    for site_id in touched:
        by_zone[scan.sites[site_id].tz.key].append(site_id)
    weeks = scan.loosest("arrival_surge", "weeks", max)
    for zone, site_ids in by_zone.items():
        earliest = min(touched[s] for s in site_ids)
        start = max(EVER, earliest - timedelta(weeks=weeks, days=2))
        counts = await _night_counts(scan, sorted(site_ids), ZoneInfo(zone), start)
        for site_id, nights in counts.items():
            site = scan.sites[site_id]
            summary.candidates += len(nights)
            surging = rule.evaluate(nights, site.thresholds(rule), scan.now, tz=site.tz)
            if not surging:
                continue
            # The evidence: those days' arrivals, read in one query per site.
            async with scan.db.read() as session:
                arrivals = (
                    await session.execute(
                        select(Visit.id, Visit.arrived_at)
                        .where(
                            Visit.site_id == site_id,
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
            findings = [
                _with_visits(
                    finding,
                    tuple(
                        visit_id
                        for visit_id, at in arrivals
                        if finding.window_start <= at < finding.window_end
                    ),
                )
                for finding in surging
            ]
            scan.found(rule, findings, site)


def _with_visits(finding: Finding, visit_ids: tuple[int, ...]) -> Finding:
    return dataclasses.replace(finding, visit_ids=visit_ids)


# --- entry points ------------------------------------------------------------------------


async def load_sites(db: Database) -> dict[int, SiteInfo]:
    async with db.read() as session:
        rows = (
            await session.execute(select(Site.id, Site.kind, Site.timezone, Site.rule_thresholds))
        ).all()
    sites = {}
    for site_id, kind, timezone, raw in rows:
        overrides = raw
        sites[site_id] = SiteInfo(
            site_id, kind, ZoneInfo(timezone), overrides if isinstance(overrides, dict) else {}
        )
    return sites


async def last_scan_started(db: Database) -> datetime | None:
    async with db.read() as session:
        return await session.scalar(
            select(func.max(JobRun.started_at)).where(JobRun.job == "scan", JobRun.status == "ok")
        )


class _PhaseClock:
    """Seconds per phase of a scan, for the benchmark and the log."""

    def __init__(self, summary: ScanSummary) -> None:
        self.summary = summary
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.summary.phases[phase] = round(now - self.last, 2)
        self.last = now


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
    sites = await load_sites(db)
    if sites:
        scan = _Scan(db, sites, now)

        async def subjects() -> None:
            clock = _PhaseClock(summary)
            await _scan_subjects(scan, since, summary)
            clock.lap("subjects")
            await _scan_identities(scan, since, summary)
            clock.lap("identities")
            await _scan_fast_craft(scan, since, summary)
            clock.lap("fast_craft")

        touched = await _touched_sites(scan, since)

        async def sites_() -> None:
            clock = _PhaseClock(summary)
            await _scan_sites(scan, touched, summary)
            clock.lap("sites")

        async def surges() -> None:
            clock = _PhaseClock(summary)
            await _scan_surges(scan, touched, summary)
            clock.lap("surges")

        # The three parts only read, each on its own connection: the database works on one
        # while Python works on another's rows.
        await asyncio.gather(subjects(), sites_(), surges())
        clock = _PhaseClock(summary)
        await scan.record(summary)
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


async def run_overdue(db: Database, *, now: datetime) -> ScanSummary:
    """Flag visits still present well after their expected departure (operational)."""
    started = time.perf_counter()
    summary = ScanSummary(job="overdue", full=True)
    sites = await load_sites(db)
    rule = RULES["overdue"]
    assert rule.evaluate is not None
    if sites:
        scan = _Scan(db, sites, now)
        hours = scan.loosest("overdue", "hours")
        visits = await scan.load(
            select(*_FACT_COLUMNS).where(
                Visit.departed_at.is_(None),
                Visit.expected_departure_at < now - timedelta(hours=hours),
            )
        )
        summary.visits = len(visits)
        for visit in visits:
            site = scan.sites[visit.site_id]
            scan.found(rule, rule.evaluate([visit], site.thresholds(rule), now), site)
        await scan.record(summary)
    summary.seconds = time.perf_counter() - started
    return summary
