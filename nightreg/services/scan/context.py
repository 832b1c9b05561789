"""What a rule's candidate query works with: the scan's sites, loose filters and visit loading.

Each scanned rule narrows the register with its own query (nightreg.services.scan.candidates)
and hands the visits it loaded, as plain `VisitFacts`, to its pure function. The helpers here
are what those queries share: the loosest threshold over all sites, a night window on the UTC
hour, "what changed since", and loading visit rows as facts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, literal, literal_column, or_, select, union
from sqlalchemy.sql.elements import ColumnElement

from nightreg.db import Database
from nightreg.models import Visit
from nightreg.rules.base import Finding, Rule, ScannedRule, VisitFacts, fold_name
from nightreg.services.scan.sql import Column, night_utc_hours, utc_hour
from nightreg.validation import normalise_identifier

# IN lists are sent in chunks well below both databases' limits on bound parameters.
CHUNK = 500
EVER = datetime(2000, 1, 1, tzinfo=UTC)

FACT_COLUMNS = (
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


@dataclass(frozen=True)
class Window:
    """What a scan looks at: everything (`since` None), or what changed since `since`."""

    since: datetime | None
    # Site -> earliest arrival to look at again (a full scan: every site from EVER).
    touched: Mapping[int, datetime]


# --- facts -------------------------------------------------------------------------------


def _identifier(value: str | None, key: str, prefix: str) -> str | None:
    """The normalised registration or plate; the subject key holds it already when it leads."""
    if not value:
        return None
    return key[len(prefix) :] if key.startswith(prefix) else normalise_identifier(value)


# Boat names and units repeat across a register: fold each spelling once per process.
_fold = lru_cache(maxsize=65536)(fold_name)
_unit = lru_cache(maxsize=65536)(normalise_identifier)


def facts(row: Any, site: SiteInfo) -> VisitFacts:
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


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def by_site(visits: Iterable[VisitFacts]) -> dict[int, list[VisitFacts]]:
    grouped: dict[int, list[VisitFacts]] = defaultdict(list)
    for visit in visits:
        grouped[visit.site_id].append(visit)
    return grouped


class Scan:
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

    def loosest(self, rule: Rule, name: str, pick: Any = min) -> int:
        return int(pick(site.thresholds(rule)[name] for site in self.sites.values()))

    def night_filter(
        self,
        column: Column,
        rule: Rule,
        *,
        start_name: str = "night_start_hour",
        end_name: str = "night_end_hour",
        pad: int = 0,
        site_ids: Iterable[int] | None = None,
        site_column: Column = Visit.site_id,
    ) -> ColumnElement[bool]:
        """`column` is, on some site's clock, within the rule's night window (a superset).

        `site_column` names the row's site (a visit's by default; a sighting's too)."""
        wanted = set(site_ids) if site_ids is not None else set(self.sites)
        groups: dict[tuple[str, int, int], list[int]] = defaultdict(list)
        for site in self.sites.values():
            if site.id in wanted:
                t = site.thresholds(rule)
                groups[(site.tz.key, t[start_name], t[end_name])].append(site.id)
        hour = utc_hour(column, self.dialect)
        conditions = [
            and_(
                site_column.in_(ids),
                hour.in_(
                    sorted(night_utc_hours(ZoneInfo(tz), start, end, EVER, self.now, pad=pad))
                ),
            )
            for (tz, start, end), ids in groups.items()
        ]
        return or_(*conditions) if conditions else literal(False)

    def moved_at_night(self, rule: Rule, site_ids: list[int], pad: int = 0) -> Any:
        """The visit arrived or left within the rule's night window (a superset)."""
        return or_(
            self.night_filter(Visit.arrived_at, rule, pad=pad, site_ids=site_ids),
            and_(
                Visit.departed_at.is_not(None),
                self.night_filter(Visit.departed_at, rule, pad=pad, site_ids=site_ids),
            ),
        )

    # -- loading ---------------------------------------------------------------------------

    async def load(self, query: Any) -> list[VisitFacts]:
        """Run a select of FACT_COLUMNS and make facts of its rows."""
        async with self.db.read() as session:
            rows = (await session.execute(query)).all()
        return [facts(row, self.sites[row.site_id]) for row in rows if row.site_id in self.sites]

    async def load_subjects(self, keys: set[str], mmsis: set[str]) -> list[VisitFacts]:
        """Every visit of these subjects (by subject key, and vessels also by MMSI)."""
        seen: dict[int, VisitFacts] = {}
        for column, values in ((Visit.subject_key, keys), (Visit.mmsi, mmsis)):
            for chunk in chunks(sorted(values)):
                for fact in await self.load(select(*FACT_COLUMNS).where(column.in_(chunk))):
                    seen[fact.id] = fact
        return sorted(seen.values(), key=lambda f: (f.arrived_at, f.id))

    # -- what the rules found --------------------------------------------------------------

    def found(self, rule: Rule, findings: Iterable[Finding], site: SiteInfo | None) -> None:
        for finding in findings:
            site_id = finding.site_id or (site.id if site else None)
            if site_id is None:
                continue
            thresholds = self.sites[site_id].thresholds(rule)
            self.findings.append((finding, site_id, thresholds))

    def evaluate(self, rule: ScannedRule, visits: Sequence[VisitFacts], site: SiteInfo) -> None:
        """The rule over these visits with `site`'s thresholds; what it finds is kept."""
        self.found(rule, rule.evaluate(visits, site.thresholds(rule), self.now), site)


def recent(
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


def unit_key(dialect: str) -> ColumnElement[str]:
    """unit or company without case, spaces or dashes (close to normalise_identifier)."""
    raw: Any = func.coalesce(Visit.unit, Visit.company)
    # Literals, not bound parameters: PostgreSQL matches a GROUP BY expression to the
    # selected one only when their parameters are the same.
    for char in (" ", "-", "."):
        raw = func.replace(raw, literal_column(f"'{char}'"), literal_column("''"))
    return func.upper(raw)


# --- how a rule is scanned ----------------------------------------------------------------


@dataclass(frozen=True)
class SubjectScanner:
    """A rule over one subject's visits (one boat, car or person, at any site).

    Such rules share one pass (nightreg.services.scan.subjects): a GROUP BY over the register
    by subject key and by MMSI keeps the subjects any of them `wants` (a HAVING condition, loose
    on purpose), loads their visits once, links a boat's registration and MMSI, and evaluates
    each rule per subject with the thresholds of the site of its latest visit.
    """

    rule: ScannedRule
    wants: Callable[[Scan], ColumnElement[bool]]


@dataclass(frozen=True)
class Scanner:
    """A rule with a query of its own: `run` loads its candidates, evaluates, keeps findings.

    `part` names the database connection it runs on ("subjects", "sites" or "surges"): the
    parts run at once, the scanners of one part one after the other, after the subject pass
    in the "subjects" part (whose visits `Scan.subject_visits` keeps for reuse).
    """

    rule: ScannedRule
    part: str
    run: Callable[[Scan, ScannedRule, Window, ScanSummary], Awaitable[None]]
