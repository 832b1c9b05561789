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

import dataclasses
import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Select,
    and_,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement

from nightreg.db import Database
from nightreg.models import JobRun, Site, Visit
from nightreg.rules import RULES
from nightreg.rules.base import Finding, NightCount, Rule, VisitFacts, fold_name
from nightreg.services import flagging
from nightreg.services.scan_sql import (
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
    seconds: float = 0.0
    by_rule: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts = {
            "candidates": self.candidates,
            "visits": self.visits,
            "findings": self.findings,
            "created": self.created,
            "grown": self.grown,
            "reopened": self.reopened,
        }
        if self.job == "scan":
            counts["watchlist_hits"] = self.watchlist_hits
        return counts

    def line(self) -> str:
        mode = "full" if self.full else "incremental"
        parts = ", ".join(f"{k} {v}" for k, v in self.counts().items())
        return f"{self.job} ({mode}): {parts} in {self.seconds:.1f} s"


# --- facts -------------------------------------------------------------------------------


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
        registration=normalise_identifier(row.registration) if row.registration else None,
        mmsi=row.mmsi or None,
        plate=normalise_identifier(row.plate) if row.plate else None,
        vessel_name=fold_name(row.vessel_name),
        vessel_type=row.vessel_type,
        guest=fold_name(row.guest_name) or "",
        unit=(normalise_identifier(unit) or None) if unit else None,
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

    # -- loose filters shared by several rules ---------------------------------------------

    def loosest(self, code: str, name: str, pick: Any = min) -> int:
        rule = RULES[code]
        return int(pick(site.thresholds(rule)[name] for site in self.sites.values()))

    def night_filter(
        self,
        column: ColumnElement[datetime],
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

    async def load(self, query: Select[Any]) -> list[VisitFacts]:
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

    async def record(self, summary: ScanSummary) -> None:
        for start in range(0, len(self.findings), RECORD_BATCH):
            batch = self.findings[start : start + RECORD_BATCH]
            async with self.db.write() as session:
                for finding, site_id, thresholds in batch:
                    done = await flagging.record(
                        session, finding, site_id=site_id, now=self.now, thresholds=thresholds
                    )
                    summary.created += done.created
                    summary.grown += bool(done.added_visits) and not done.created
                    summary.reopened += done.reopened
        summary.findings += len(self.findings)
        for finding, _site_id, _t in self.findings:
            summary.by_rule[finding.rule] = summary.by_rule.get(finding.rule, 0) + 1
        self.findings.clear()


# --- subjects: night movements, short stays, site hopping ---------------------------------


def _touched_subjects(since: datetime | None) -> ColumnElement[bool] | None:
    if since is None:
        return None
    touched = select(Visit.subject_key).where(Visit.updated_at > since).scalar_subquery()
    return Visit.subject_key.in_(touched)


def _touched_mmsis(since: datetime | None) -> ColumnElement[bool] | None:
    if since is None:
        return None
    touched = (
        select(Visit.mmsi)
        .where(Visit.updated_at > since, Visit.mmsi.is_not(None))
        .scalar_subquery()
    )
    return Visit.mmsi.in_(touched)


async def _subject_candidates(scan: _Scan, since: datetime | None) -> tuple[set[str], set[str]]:
    """Subject keys and MMSIs that some subject rule could flag."""
    d = scan.dialect
    night_count = scan.loosest("night_movement", "count")
    short_count = scan.loosest("short_stay_repeat", "count")
    short_hours = scan.loosest("short_stay_repeat", "hours", max)
    keys: set[str] = set()
    mmsis: set[str] = set()
    for column, touched in (
        (Visit.subject_key, _touched_subjects(since)),
        (Visit.mmsi, _touched_mmsis(since)),
    ):
        base = [column.is_not(None)] + ([touched] if touched is not None else [])
        arrivals = select(column.label("k")).where(
            *base, scan.night_filter(Visit.arrived_at, "night_movement")
        )
        departures = select(column.label("k")).where(
            *base,
            Visit.departed_at.is_not(None),
            scan.night_filter(Visit.departed_at, "night_movement"),
        )
        movements = union_all(arrivals, departures).subquery()
        queries = [
            select(movements.c.k).group_by(movements.c.k).having(func.count() >= night_count),
            select(column)
            .where(
                *base,
                Visit.departed_at.is_not(None),
                hours_between(Visit.arrived_at, Visit.departed_at, d) < short_hours,
            )
            .group_by(column)
            .having(func.count() >= short_count),
            select(column)
            .where(*base)
            .group_by(column)
            .having(func.count(func.distinct(Visit.site_id)) >= 2),
        ]
        async with scan.db.read() as session:
            for query in queries:
                found = set((await session.scalars(query)).all())
                (keys if column is Visit.subject_key else mmsis).update(found)
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


async def _scan_subjects(scan: _Scan, since: datetime | None, summary: ScanSummary) -> None:
    keys, mmsis = await _subject_candidates(scan, since)
    visits = await scan.load_subjects(keys, mmsis)
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
    touched = []
    if since is not None:
        changed = select(Visit.id).where(Visit.updated_at > since, vessel)
        touched_names = (
            select(func.lower(Visit.vessel_name)).where(Visit.id.in_(changed)).scalar_subquery()
        )
        touched = [
            or_(
                _touched_subjects(since),  # type: ignore[arg-type]
                _touched_mmsis(since),  # type: ignore[arg-type]
                name.in_(touched_names),
            )
        ]
    by_key = (
        select(Visit.subject_key)
        .where(vessel, Visit.vessel_name.is_not(None), *touched)
        .group_by(Visit.subject_key)
        .having(func.count(func.distinct(name)) >= 2)
    )
    by_mmsi = (
        select(Visit.mmsi)
        .where(vessel, Visit.mmsi.is_not(None), *touched)
        .group_by(Visit.mmsi)
        .having(func.count(func.distinct(name)) >= 2)
    )
    by_name = (
        select(name)
        .where(vessel, Visit.vessel_name.is_not(None), *touched)
        .group_by(name, guest)
        .having(func.count(func.distinct(Visit.subject_key)) >= 2)
    )
    async with scan.db.read() as session:
        keys = set((await session.scalars(by_key)).all())
        mmsis = set((await session.scalars(by_mmsi)).all())
        names = set((await session.scalars(by_name)).all())
    visits = {v.id: v for v in await scan.load_subjects(keys, mmsis)}
    for chunk in _chunks(sorted(names)):
        for v in await scan.load(select(*_FACT_COLUMNS).where(vessel, name.in_(chunk))):
            visits[v.id] = v
    summary.candidates += len(keys) + len(mmsis) + len(names)
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
        rows = (
            await session.execute(
                select(Visit.site_id, func.min(Visit.arrived_at))
                .where(Visit.updated_at > since)
                .group_by(Visit.site_id)
            )
        ).all()
    return {site_id: at for site_id, at in rows if site_id in scan.sites}


def _unit_key(dialect: str) -> ColumnElement[str]:
    """unit or company without case, spaces or dashes (close to normalise_identifier)."""
    raw = func.coalesce(Visit.unit, Visit.company)
    # Literals, not bound parameters: PostgreSQL matches a GROUP BY expression to the
    # selected one only when their parameters are the same.
    for char in (" ", "-", "."):
        raw = func.replace(raw, literal_column(f"'{char}'"), literal_column("''"))
    return func.upper(raw)


async def _scan_sites(scan: _Scan, touched: dict[int, datetime], summary: ScanSummary) -> None:
    d = scan.dialect
    marinas = [s for s in touched if scan.sites[s].kind == "marina"]
    parks = [s for s in touched if scan.sites[s].kind == "business_park"]
    meet = RULES["boat_meets_vehicle"]
    for site_id in marinas:
        site = scan.sites[site_id]
        start = touched[site_id] - timedelta(days=1)
        query = select(*_FACT_COLUMNS).where(
            Visit.site_id == site_id,
            Visit.kind.in_(("vessel", "vehicle")),
            or_(Visit.departed_at.is_(None), Visit.departed_at >= start),
            or_(
                scan.night_filter(Visit.arrived_at, meet.code, pad=1, site_ids=[site_id]),
                and_(
                    Visit.departed_at.is_not(None),
                    scan.night_filter(Visit.departed_at, meet.code, pad=1, site_ids=[site_id]),
                ),
            ),
        )
        visits = await scan.load(query)
        summary.visits += len(visits)
        if any(v.kind == "vehicle" for v in visits) and any(v.kind == "vessel" for v in visits):
            assert meet.evaluate is not None
            scan.found(meet, meet.evaluate(visits, site.thresholds(meet), scan.now), site)

    traffic = RULES["unit_night_traffic"]
    overnight = RULES["repeat_overnight_unit"]
    unit = _unit_key(d)
    for site_id in parks:
        site = scan.sites[site_id]
        t = site.thresholds(traffic)
        start = touched[site_id] - timedelta(days=max(t["days"], 2))
        in_range = [
            Visit.site_id == site_id,
            or_(Visit.departed_at.is_(None), Visit.departed_at >= start),
            Visit.arrived_at >= start - timedelta(days=400),
        ]
        vehicles = [Visit.kind == "vehicle", unit.is_not(None), unit != ""]
        # A local day spans at most two UTC dates: ten vans in a day are five on one of them.
        busy_day = (
            select(unit)
            .where(*in_range, *vehicles)
            .group_by(unit, utc_date(Visit.arrived_at, d))
            .having(func.count(func.distinct(Visit.plate)) >= math.ceil(t["vehicles"] / 2))
        )
        at_night = (
            select(unit)
            .where(
                *in_range,
                *vehicles,
                or_(
                    scan.night_filter(Visit.arrived_at, traffic.code, site_ids=[site_id]),
                    and_(
                        Visit.departed_at.is_not(None),
                        scan.night_filter(Visit.departed_at, traffic.code, site_ids=[site_id]),
                    ),
                ),
            )
            .group_by(unit)
            .having(func.count() >= t["nights"])
        )
        async with scan.db.read() as session:
            units = set((await session.scalars(busy_day)).all())
            units |= set((await session.scalars(at_night)).all())
        visits: list[VisitFacts] = []
        for chunk in _chunks(sorted(units)):
            visits += await scan.load(
                select(*_FACT_COLUMNS).where(*in_range, *vehicles, unit.in_(chunk))
            )
        stays = await scan.load(
            select(*_FACT_COLUMNS).where(
                *in_range, Visit.kind == "stay", unit.is_not(None), unit != ""
            )
        )
        summary.candidates += len(units)
        summary.visits += len(visits) + len(stays)
        if visits:
            assert traffic.evaluate is not None
            scan.found(traffic, traffic.evaluate(visits, t, scan.now), site)
        if stays:
            assert overnight.evaluate is not None
            scan.found(
                overnight, overnight.evaluate(stays, site.thresholds(overnight), scan.now), site
            )


# --- arrival surges ----------------------------------------------------------------------


def _midnight_hours(tz: ZoneInfo, start: datetime, end: datetime) -> list[int]:
    """The UTC hours at which the zone's local date changes (Amsterdam: 22 and 23)."""
    return sorted({(-offset // 60) % 24 for offset in zone_offsets(tz, start, end)})


async def _night_counts(scan: _Scan, site_id: int, start: datetime) -> list[NightCount]:
    """Arrivals per local date, counted in SQL by UTC date and hour band, dated exactly here.

    Within one UTC date, the hours before the earliest local midnight, each hour at which a
    local midnight can fall, and the hours after the last, each belong to one local date.
    """
    site = scan.sites[site_id]
    d = scan.dialect
    edges = _midnight_hours(site.tz, start, scan.now)
    hour = utc_hour(Visit.arrived_at, d)
    band = case(
        (hour < edges[0], -1),
        *[(hour == e, e) for e in edges],
        else_=99,
    )
    query = (
        select(utc_date(Visit.arrived_at, d), band, func.count())
        .where(Visit.site_id == site_id, Visit.arrived_at >= start)
        # By position: PostgreSQL matches a GROUP BY expression only when its bound
        # parameters are the same ones, and each use of an expression binds its own.
        .group_by(text("1"), text("2"))
    )
    async with scan.db.read() as session:
        rows = (await session.execute(query)).all()
    per_date: dict[date, int] = defaultdict(int)
    for day, band_hour, count in rows:
        day = date.fromisoformat(day) if isinstance(day, str) else day
        probe = {-1: 0, 99: 23}.get(band_hour, band_hour)
        instant = datetime(day.year, day.month, day.day, probe, tzinfo=UTC)
        per_date[instant.astimezone(site.tz).date()] += count
    return [NightCount(site_id, night, n) for night, n in sorted(per_date.items())]


async def _scan_surges(scan: _Scan, touched: dict[int, datetime], summary: ScanSummary) -> None:
    rule = RULES["arrival_surge"]
    assert rule.evaluate is not None
    for site_id, earliest in touched.items():
        site = scan.sites[site_id]
        t = site.thresholds(rule)
        start = max(EVER, earliest - timedelta(weeks=t["weeks"], days=2))
        nights = await _night_counts(scan, site_id, start)
        summary.candidates += len(nights)
        findings = []
        for finding in rule.evaluate(nights, t, scan.now, tz=site.tz):
            # The evidence: that night's arrivals.
            async with scan.db.read() as session:
                ids = tuple(
                    (
                        await session.scalars(
                            select(Visit.id)
                            .where(
                                Visit.site_id == site_id,
                                Visit.arrived_at >= finding.window_start,
                                Visit.arrived_at < finding.window_end,
                            )
                            .order_by(Visit.id)
                        )
                    ).all()
                )
            findings.append(_with_visits(finding, ids))
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
        try:
            overrides = json.loads(raw or "{}")
        except ValueError:
            overrides = {}
        sites[site_id] = SiteInfo(
            site_id, kind, ZoneInfo(timezone), overrides if isinstance(overrides, dict) else {}
        )
    return sites


async def last_scan_started(db: Database) -> datetime | None:
    async with db.read() as session:
        return await session.scalar(
            select(func.max(JobRun.started_at)).where(JobRun.job == "scan", JobRun.status == "ok")
        )


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
        await _scan_subjects(scan, since, summary)
        await _scan_identities(scan, since, summary)
        await _scan_fast_craft(scan, since, summary)
        touched = await _touched_sites(scan, since)
        await _scan_sites(scan, touched, summary)
        await _scan_surges(scan, touched, summary)
        await scan.record(summary)
        if watchlist_key:
            summary.watchlist_hits = await _scan_watchlist(db, since, watchlist_key, now)
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
