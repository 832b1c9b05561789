"""Subject requests (AVG arts. 15 and 17): find, report and erase early what the register
holds of one person, boat or car, on the sites of whoever asks.

- `find`: every visit whose names and identifiers contain the folded query (as the register
  search folds it) or whose subject key is the query itself, on the actor's own sites, and
  the flags of those sites that rest on those visits or follow their subject keys.
- `report`: the same, with every stored field of the visits (not the private link's hash,
  the idempotency key, the request fingerprint or the search key: those are the system's, not
  the subject's), their staff notes and observations, the flags and the retention in force.
- `erase`: the visits shown, gone before their time, with a reason; all or nothing, and not
  while a legal hold covers one of them or an open or watched flag rests on one.

Watchlist hits (restricted flags) are for the hub's analysts only: they are never listed,
reported or counted here, and they do not stand in the way of an erasure (only a legal hold
does that for the hub): what a site's staff see of a subject with a hidden flag is exactly
what they see of one without (issue 17, finding 2; docs/privacy.md "Erasure and the hub's
watchlist"). The flag itself stays for the analysts, without the erased visits; the erasure
is audited for the auditor as `watchlist_evidence_erased`, with no site.

Staff are not named in a report (notes and observations leave out their
author, flags their reviewer and the reviewer's note, which is the staff's assessment): the
report is what the register holds of the subject. Every step is in the audit trail.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, exists, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from nightreg.clock import local_day
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import (
    AisMovement,
    Flag,
    LegalHold,
    Observation,
    Sighting,
    Signal,
    Site,
    Visit,
    VisitNote,
    flag_visit,
    legal_hold_visit,
)
from nightreg.rules import RULES
from nightreg.services import aggregates, audit, retention
from nightreg.services.access import Actor
from nightreg.services.holds import flag_held, hold_in_force, visit_held
from nightreg.settings import Settings
from nightreg.validation import (
    MSG_TOO_LONG,
    FieldError,
    Invalid,
    clean_text,
    normalise_identifier,
)

PERMISSION = "subjects.manage"

MIN_QUERY = 2
MAX_QUERY = 100
MAX_REASON = 500
# A search that finds more is too wide to be one subject: the page says so, and erasure waits
# for a narrower one.
MAX_VISITS = 500
# A flag in one of these states is still being looked at: its evidence stays.
UNDER_REVIEW = ("open", "watching")
# Stored, but not the subject's data: the private link's hash, the form's double-submit key
# and fingerprint, and the search's folded copy of the names.
NOT_REPORTED = frozenset({"private_token_hash", "idempotency_key", "request_fingerprint",
                          "search_key"})  # fmt: skip
VISIT_FIELDS: tuple[str, ...] = tuple(
    c.name for c in Visit.__table__.columns if c.name not in NOT_REPORTED
)

MSG_QUERY_SHORT = N_(
    "Please enter at least 2 letters or digits of a name, a boat, a registration or a plate."
)
MSG_REASON = N_("Please give the reason for erasing these visits early.")
MSG_NO_VISITS = N_("There is nothing to erase: search again.")
MSG_IDS = N_("These visits do not match the search, or are not on your sites.")
MSG_CHANGED = N_("More visits match the search than were shown; please check the list again.")
MSG_TOO_MANY = N_("More than %(max)s visits match: narrow the search before erasing.")


class SubjectInvalid(Invalid):
    """A request with a field at fault (query, reason, the visits): errors by field."""


@dataclass(frozen=True)
class Blockers:
    """Why an erasure may not go ahead: holds by case reference, flags by id and rule."""

    held_visit_ids: tuple[int, ...] = ()
    # The case references of the holds in force over them (empty when none could be named).
    holds: tuple[str, ...] = ()
    # (flag id, rule code) of the open or watched flags the actor may know of.
    flags: tuple[tuple[int, str], ...] = ()
    # A flag of a site the actor does not work on is under review too. (A restricted flag
    # is never a blocker: the site may not learn that one exists.)
    unnamed_flag: bool = False

    def __bool__(self) -> bool:
        return bool(self.held_visit_ids or self.flags or self.unnamed_flag)

    def details(self) -> dict[str, Any]:
        """For the audit trail: ids and references only (restricted flags by count)."""
        return {
            "held_visits": list(self.held_visit_ids),
            "holds": list(self.holds),
            "flags": [flag_id for flag_id, _rule in self.flags],
            "unnamed_flag": self.unnamed_flag,
        }


class EraseRefused(Exception):
    """A legal hold or a flag under review forbids the erasure; nothing was deleted."""

    def __init__(self, blockers: Blockers, found: Found) -> None:
        super().__init__("erasure refused")
        self.blockers = blockers
        self.found = found


@dataclass(frozen=True)
class Query:
    text: str  # as typed, cleaned: compared with subject keys as it is
    term: str  # folded like the register's search key

    def details(self) -> dict[str, str]:
        return {"q": self.text}


@dataclass
class Group:
    """The visits of one subject key, and the flags on them or on the key."""

    subject_key: str
    visits: list[Visit]
    flags: list[Flag]


@dataclass
class Found:
    query: Query
    # The sites searched: all of the actor's sites with the permission, active or not.
    sites: list[Site]
    # The visits, by subject key and arrival (each with its site loaded).
    visits: list[Visit]
    # The flags the actor may see on them (never a restricted one).
    flags: list[Flag]
    # Flag id -> the ids of the visits shown that it rests on.
    evidence: dict[int, list[int]] = field(default_factory=dict)
    # More than MAX_VISITS matched: only the first ones are here.
    truncated: bool = False

    @property
    def visit_ids(self) -> list[int]:
        return [v.id for v in self.visits]

    @property
    def subject_keys(self) -> list[str]:
        return sorted({v.subject_key for v in self.visits})

    @property
    def groups(self) -> list[Group]:
        out: list[Group] = []
        for key in self.subject_keys:
            visits = [v for v in self.visits if v.subject_key == key]
            ids = {v.id for v in visits}
            flags = [
                f
                for f in self.flags
                if f.subject == key or ids.intersection(self.evidence.get(f.id, ()))
            ]
            out.append(Group(key, visits, flags))
        return out

    def site_id(self) -> int | None:
        """The one site the visits are of, for the audit line (None for none or several)."""
        site_ids = {v.site_id for v in self.visits}
        return next(iter(site_ids)) if len(site_ids) == 1 else None


@dataclass
class Report:
    found: Found
    asked_by: str
    made_at: datetime
    policies: list[retention.Policy]
    forwarded_flag_days: int
    notes: dict[int, list[VisitNote]]
    observations: dict[int, list[Observation]]
    # AIS movements (entries and exits, never positions): of the visits, and those of their
    # MMSIs at the actor's sites that matched no visit.
    ais: dict[int, list[AisMovement]] = field(default_factory=dict)
    unmatched_ais: list[AisMovement] = field(default_factory=list)
    # The gate cameras' sightings of the plates found, at the sites searched (issue 19).
    sightings: list[Sighting] = field(default_factory=list)


@dataclass
class Erased:
    query: Query
    reason: str
    visit_ids: list[int]
    # Rows deleted by kind, and how many visits were counted into the aggregates first.
    counts: dict[str, int]


# --- the query ------------------------------------------------------------------------------


def parse_query(raw: str | None) -> Query:
    """The query as searched; SubjectInvalid when it is too short or too long."""
    text = clean_text(raw if isinstance(raw, str) else "", MAX_QUERY)
    if len(text) > MAX_QUERY:
        raise SubjectInvalid({"q": FieldError(MSG_TOO_LONG, {"max": MAX_QUERY})})
    term = normalise_identifier(text)
    if len(text) < MIN_QUERY or len(term) < MIN_QUERY:
        raise SubjectInvalid({"q": FieldError(MSG_QUERY_SHORT)})
    return Query(text=text, term=term)


async def _scope(session: AsyncSession, actor: Actor) -> list[Site]:
    """The actor's sites for subject requests (AccessDenied for a role without the right)."""
    actor.require(PERMISSION)
    stmt = select(Site).order_by(Site.name, Site.id)
    if actor.kind != "cli":
        stmt = stmt.where(Site.id.in_(sorted(actor.sites_for(PERMISSION))))
    return list(await session.scalars(stmt))


async def _search(
    session: AsyncSession, sites: Sequence[Site], query: Query, *, lock: bool = False
) -> Found:
    site_ids = [s.id for s in sites]
    if not site_ids:
        return Found(query, list(sites), [], [])
    stmt = (
        select(Visit)
        .where(
            Visit.site_id.in_(site_ids),
            or_(
                Visit.search_key.contains(query.term, autoescape=True),
                Visit.subject_key == query.text,
            ),
        )
        .options(joinedload(Visit.site))
        .order_by(Visit.subject_key, Visit.arrived_at, Visit.id)
        .limit(MAX_VISITS + 1)
    )
    if lock:
        stmt = stmt.with_for_update(of=Visit)
    visits = list(await session.scalars(stmt))
    truncated = len(visits) > MAX_VISITS
    visits = visits[:MAX_VISITS]
    if not visits:
        return Found(query, list(sites), [], [])
    ids = [v.id for v in visits]
    keys = sorted({v.subject_key for v in visits})
    linked = select(flag_visit.c.flag_id).where(flag_visit.c.visit_id.in_(ids))
    flags = list(
        await session.scalars(
            select(Flag)
            .where(
                Flag.site_id.in_(site_ids),
                Flag.restricted.is_(false()),
                or_(Flag.id.in_(linked), Flag.subject.in_(keys)),
            )
            .order_by(Flag.created_at, Flag.id)
        )
    )
    evidence: dict[int, list[int]] = {}
    if flags:
        rows = await session.execute(
            select(flag_visit.c.flag_id, flag_visit.c.visit_id)
            .where(
                flag_visit.c.flag_id.in_([f.id for f in flags]),
                flag_visit.c.visit_id.in_(ids),
            )
            .order_by(flag_visit.c.flag_id, flag_visit.c.visit_id)
        )
        for flag_id, visit_id in rows:
            evidence.setdefault(flag_id, []).append(visit_id)
    return Found(query, list(sites), visits, flags, evidence, truncated)


# --- find -----------------------------------------------------------------------------------


async def find(
    db: Database, actor: Actor, raw_query: str | None, *, now: datetime, page: str = "find"
) -> Found:
    """Every visit and flag of the subject on the actor's sites (audited: `subject_searched`).

    `page` says where the results were shown ("find" or "erase"), for the audit line.
    """
    query = parse_query(raw_query)
    async with db.read() as session:
        sites = await _scope(session, actor)
        found = await _search(session, sites, query)
    details: dict[str, Any] = {**query.details(), "sites": [s.id for s in sites]}
    if page != "find":
        details["page"] = page
    if found.truncated:
        details["truncated"] = True
    await audit.log(
        db, actor, "subject_searched", at=now, site_id=found.site_id(),
        object_type="visit", object_ids=found.visit_ids, details=details,
    )  # fmt: skip
    return found


# --- report ---------------------------------------------------------------------------------


async def report(
    db: Database,
    settings: Settings,
    actor: Actor,
    raw_query: str | None,
    *,
    now: datetime,
    fmt: str,
) -> Report:
    """The subject-access report (audited: `subject_exported`, with the format)."""
    query = parse_query(raw_query)
    async with db.read() as session:
        sites = await _scope(session, actor)
        found = await _search(session, sites, query)
        ids = found.visit_ids
        notes: dict[int, list[VisitNote]] = {}
        observations: dict[int, list[Observation]] = {}
        if ids:
            for note in await session.scalars(
                select(VisitNote)
                .where(VisitNote.visit_id.in_(ids))
                .order_by(VisitNote.at, VisitNote.id)
            ):
                notes.setdefault(note.visit_id, []).append(note)
            for observation in await session.scalars(
                select(Observation)
                .where(Observation.visit_id.in_(ids))
                .order_by(Observation.observed_at, Observation.id)
            ):
                assert observation.visit_id is not None
                observations.setdefault(observation.visit_id, []).append(observation)
        ais: dict[int, list[AisMovement]] = {}
        unmatched_ais: list[AisMovement] = []
        if ids:
            for movement in await session.scalars(
                select(AisMovement)
                .where(AisMovement.visit_id.in_(ids))
                .order_by(AisMovement.at, AisMovement.id)
            ):
                assert movement.visit_id is not None
                ais.setdefault(movement.visit_id, []).append(movement)
            unmatched_ais = list(await session.scalars(_unmatched_ais(found).order_by(
                AisMovement.at, AisMovement.id)))  # fmt: skip
        sightings = list(
            await session.scalars(
                select(Sighting)
                .where(*_sightings_of(found))
                .order_by(Sighting.seen_at, Sighting.id)
            )
        )
    searched = {s.id for s in sites}
    policies = [p for p in await retention.policies(db, settings) if p.site_id in searched]
    details: dict[str, Any] = {
        **query.details(),
        "format": fmt,
        "sites": sorted(searched),
        "flags": [f.id for f in found.flags],
    }
    if found.truncated:
        details["truncated"] = True
    await audit.log(
        db, actor, "subject_exported", at=now, site_id=found.site_id(),
        object_type="visit", object_ids=ids, details=details,
    )  # fmt: skip
    return Report(
        found=found,
        asked_by=actor.label,
        made_at=now,
        policies=policies,
        forwarded_flag_days=settings.retention_forwarded_flag_days,
        notes=notes,
        observations=observations,
        ais=ais,
        unmatched_ais=unmatched_ais,
        sightings=sightings,
    )


def _unmatched_ais(found: Found) -> Any:
    """The AIS movements of the found boats' MMSIs, at the searched sites, that matched no
    visit (a select)."""
    mmsis = sorted({v.mmsi for v in found.visits if v.mmsi})
    return select(AisMovement).where(
        AisMovement.visit_id.is_(None),
        AisMovement.site_id.in_([s.id for s in found.sites] or [NO_ID]),
        AisMovement.mmsi.in_(mmsis or [""]),
    )


def _sightings_of(found: Found) -> list[Any]:
    """The conditions on the sightings of the found plates at the sites searched."""
    plates = [k for k in found.subject_keys if k.startswith("plate:")]
    return [
        Sighting.subject_key.in_(plates or [""]),
        Sighting.site_id.in_([s.id for s in found.sites] or [NO_ID]),
    ]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def visit_record(visit: Visit) -> dict[str, Any]:
    """Every stored field of a visit the subject may read, as JSON values (times in UTC)."""
    out = {name: _json_value(getattr(visit, name)) for name in VISIT_FIELDS}
    out["site"] = visit.site.slug
    return out


def _indicators(observation: Observation) -> list[str]:
    codes = observation.indicators
    return [str(c) for c in codes] if isinstance(codes, list) else []


def report_json(rep: Report) -> dict[str, Any]:
    """The report as a JSON document: ISO 8601 times in UTC, codes rather than labels."""
    found = rep.found
    site_slugs = {s.id: s.slug for s in found.sites}
    visits = []
    for visit in found.visits:
        record = visit_record(visit)
        record["notes"] = [{"at": _iso(n.at), "text": n.text} for n in rep.notes.get(visit.id, [])]
        record["observations"] = [
            {
                "id": o.id,
                "observed_at": _iso(o.observed_at),
                "created_at": _iso(o.created_at),
                "location": o.location,
                "indicators": _indicators(o),
                "text": o.text,
            }
            for o in rep.observations.get(visit.id, [])
        ]
        record["ais_movements"] = [
            {"at": _iso(m.at), "direction": m.direction} for m in rep.ais.get(visit.id, [])
        ]
        visits.append(record)
    flags = [
        {
            "id": f.id,
            "site": site_slugs.get(f.site_id, str(f.site_id)),
            "rule": f.rule,
            "rule_title": RULES[f.rule].title if f.rule in RULES else f.rule,
            "subject": f.subject,
            "reason": f.reason,
            "status": f.status,
            "window_start": _iso(f.window_start),
            "window_end": _iso(f.window_end),
            "created_at": _iso(f.created_at),
            "updated_at": _iso(f.updated_at),
            "reviewed_at": _iso(f.reviewed_at),
            "visit_ids": found.evidence.get(f.id, []),
        }
        for f in found.flags
    ]
    return {
        "report": {
            "kind": "subject_access_report",
            "query": found.query.text,
            "asked_by": rep.asked_by,
            "made_at": _iso(rep.made_at),
            "sites": [
                {
                    "slug": p.slug,
                    "name": p.name,
                    "timezone": p.timezone,
                    "retention": {
                        "visit_days_after_departure": p.visit_days,
                        "open_flag_days": p.open_flag_days,
                        "dismissed_flag_days": p.dismissed_flag_days,
                        "forwarded_flag_days_default": rep.forwarded_flag_days,
                    },
                }
                for p in rep.policies
            ],
            "truncated": found.truncated,
        },
        "subjects": found.subject_keys,
        "visits": visits,
        "flags": flags,
        "ais_movements_unmatched": [
            {
                "site": site_slugs.get(m.site_id, str(m.site_id)),
                "mmsi": m.mmsi,
                "at": _iso(m.at),
                "direction": m.direction,
            }
            for m in rep.unmatched_ais
        ],
        "sightings": [
            {
                "site": site_slugs.get(x.site_id, str(x.site_id)),
                "camera": x.camera,
                "seen_at": _iso(x.seen_at),
                "direction": x.direction,
                "plate": x.plate,
            }
            for x in rep.sightings
        ],
    }


# --- erase ----------------------------------------------------------------------------------


async def erase_preview(
    db: Database, settings: Settings, actor: Actor, raw_query: str | None, *, now: datetime
) -> tuple[Found, Blockers]:
    """What an erasure would delete, and what would stop it (audited as a search)."""
    found = await find(db, actor, raw_query, now=now, page="erase")
    async with db.read() as session:
        blockers = await _blockers(session, found, found.visit_ids, local_day(now, settings.tz))
    return found, blockers


def _covers() -> Any:
    """The join of a hold with the visits it covers (as holds.visit_held reads them)."""
    return or_(
        and_(LegalHold.scope == "site", LegalHold.site_id == Visit.site_id),
        and_(
            LegalHold.scope == "subject",
            LegalHold.subject_key == Visit.subject_key,
            or_(LegalHold.site_id.is_(None), LegalHold.site_id == Visit.site_id),
        ),
        and_(
            LegalHold.scope == "visits",
            exists().where(
                legal_hold_visit.c.hold_id == LegalHold.id,
                legal_hold_visit.c.visit_id == Visit.id,
            ),
        ),
    )


async def _blockers(
    session: AsyncSession, found: Found, ids: Sequence[int], today: date
) -> Blockers:
    if not ids:
        return Blockers()
    held = list(
        await session.scalars(
            select(Visit.id).where(Visit.id.in_(ids), visit_held(today)).order_by(Visit.id)
        )
    )
    holds: list[str] = []
    if held:
        holds = list(
            await session.scalars(
                select(LegalHold.case_reference)
                .select_from(Visit)
                .join(LegalHold, _covers())
                .where(Visit.id.in_(held), hold_in_force(today))
                .group_by(LegalHold.case_reference)
                .order_by(LegalHold.case_reference)
            )
        )
    chosen = set(ids)
    keys = sorted({v.subject_key for v in found.visits if v.id in chosen})
    site_ids = [s.id for s in found.sites]
    linked = select(flag_visit.c.flag_id).where(flag_visit.c.visit_id.in_(ids))
    rows = await session.execute(
        select(Flag.id, Flag.rule, Flag.restricted, Flag.site_id)
        .where(
            Flag.status.in_(UNDER_REVIEW),
            or_(Flag.id.in_(linked), and_(Flag.site_id.in_(site_ids), Flag.subject.in_(keys))),
        )
        .order_by(Flag.id)
    )
    named: list[tuple[int, str]] = []
    unnamed = False
    for flag_id, rule, restricted, site_id in rows:
        if restricted:
            continue  # the hub's: see the module's docstring
        if site_id not in site_ids:
            unnamed = True
        else:
            named.append((flag_id, rule))
    return Blockers(tuple(held), tuple(holds), tuple(named), unnamed)


def _clean_reason(reason: str | None, errors: dict[str, FieldError]) -> str:
    cleaned = clean_text(reason if isinstance(reason, str) else "", MAX_REASON, multiline=True)
    if not cleaned:
        errors["reason"] = FieldError(MSG_REASON)
    elif len(cleaned) > MAX_REASON:
        errors["reason"] = FieldError(MSG_TOO_LONG, {"max": MAX_REASON})
    return cleaned


def _visit_ids(values: Iterable[str | int]) -> list[int] | None:
    """The ids as sent; None when one is not a visit id at all."""
    out: set[int] = set()
    for value in values:
        text = str(value).strip()
        if not text.isdigit() or len(text) > 11:
            return None
        out.add(int(text))
    return sorted(out)


async def erase(
    db: Database,
    settings: Settings,
    actor: Actor,
    raw_query: str | None,
    reason: str | None,
    visit_ids: Iterable[str | int],
    *,
    now: datetime,
) -> Erased:
    """Erase early the visits shown for the query, with everything that hangs on them.

    The ids must be exactly the visits the query finds on the actor's sites now: one of
    another site or of another subject, or one that no longer matches, refuses them all
    (SubjectInvalid on "visits"), and so does a visit that matches now but was not shown.
    A legal hold in force over one of them, or an open or watched flag on one of them or on
    their subject, refuses them all too (EraseRefused, audited as `subject_erase_refused`).

    Otherwise, in one transaction: the visits are counted into the aggregates (statistics
    and the tourist tax outlive them), their observations deleted, then the visits (their
    notes, flag and hold links go with them), then the flags left without evidence that are
    no longer under review (their signals go with them); audited as `subject_erased`.
    """
    errors: dict[str, FieldError] = {}
    try:
        query: Query | None = parse_query(raw_query)
    except SubjectInvalid as invalid:
        errors.update(invalid.errors)
        query = None
    cleaned = _clean_reason(reason, errors)
    ids = _visit_ids(visit_ids)
    if ids is None:
        errors["visits"] = FieldError(MSG_IDS)
    elif not ids:
        errors["visits"] = FieldError(MSG_NO_VISITS)
    actor.require(PERMISSION)
    if errors or query is None or ids is None:
        raise SubjectInvalid(errors)

    today = local_day(now, settings.tz)
    refused: EraseRefused | None = None
    counts: dict[str, int] = {}
    async with db.write() as session:
        sites = await _scope(session, actor)
        found = await _search(session, sites, query, lock=True)
        matching = set(found.visit_ids)
        if found.truncated:
            raise SubjectInvalid({"visits": FieldError(MSG_TOO_MANY, {"max": MAX_VISITS})})
        if not set(ids) <= matching:
            raise SubjectInvalid({"visits": FieldError(MSG_IDS)})
        if matching - set(ids):
            raise SubjectInvalid({"visits": FieldError(MSG_CHANGED)})
        blockers = await _blockers(session, found, ids, today)
        if blockers:
            await audit.record(
                session, actor, "subject_erase_refused", at=now, site_id=found.site_id(),
                object_type="visit", object_ids=ids,
                details={**query.details(), "reason": cleaned, **blockers.details()},
            )  # fmt: skip
            refused = EraseRefused(blockers, found)
        else:
            hidden = await _restricted_flags(session, found, ids)
            counts = await _delete(session, found, ids, today, hidden=hidden)
            # The personal values the audit kept about these visits go with them.
            counts["audit_details"] = await audit.erase_details_of(
                session, "visit", ids, by=audit.erasure_name("subject_erased", now), now=now
            )
            await audit.record(
                session, actor, "subject_erased", at=now, site_id=found.site_id(),
                object_type="visit", object_ids=ids,
                details={**query.details(), "reason": cleaned, "counts": counts,
                         "sites": sorted({v.site_id for v in found.visits})},
            )  # fmt: skip
            if hidden:
                # For the auditor and the hub, under no site: the site's own trail and its
                # counts above look as they would without a hidden flag.
                await audit.record(
                    session, actor, "watchlist_evidence_erased", at=now,
                    object_type="flag", object_ids=sorted(hidden),
                    details={"visits": len(ids)},
                )  # fmt: skip
    if refused is not None:
        raise refused
    return Erased(query=query, reason=cleaned, visit_ids=ids, counts=counts)


async def _restricted_flags(session: AsyncSession, found: Found, ids: Sequence[int]) -> set[int]:
    """The hidden (restricted) flags on these visits or on their subjects at these sites."""
    keys = sorted({v.subject_key for v in found.visits})
    site_ids = [s.id for s in found.sites]
    linked = select(flag_visit.c.flag_id).where(flag_visit.c.visit_id.in_(ids))
    return set(
        await session.scalars(
            select(Flag.id).where(
                Flag.restricted.is_(true()),
                or_(Flag.id.in_(linked), and_(Flag.site_id.in_(site_ids), Flag.subject.in_(keys))),
            )
        )
    )


NO_ID = 0  # no row has it: stands in for an empty list of ids (see _delete)


async def _delete(
    session: AsyncSession,
    found: Found,
    ids: list[int],
    today: date,
    *,
    hidden: Collection[int] = (),
) -> dict[str, int]:
    """The deletion itself, inside the caller's transaction; rows deleted by kind (hidden
    flags and their signals go as any other, but are not counted: the site sees the counts)."""
    keys = sorted({v.subject_key for v in found.visits})
    site_ids = [s.id for s in found.sites]
    # The flags that may be left without evidence: those on these visits (on any site: the
    # evidence goes wherever its flag is) and those of the actor's sites on these subjects.
    candidates = set(
        await session.scalars(
            select(flag_visit.c.flag_id).where(flag_visit.c.visit_id.in_(ids)).distinct()
        )
    )
    candidates |= set(
        await session.scalars(
            select(Flag.id).where(Flag.site_id.in_(site_ids), Flag.subject.in_(keys))
        )
    )
    notes = await session.scalar(
        select(func.count()).select_from(VisitNote).where(VisitNote.visit_id.in_(ids))
    )
    aggregated = await aggregates.add_visits(session, ids)
    # The visits' AIS movements, and those of their MMSIs that matched no visit.
    ais = (
        await session.execute(
            delete(AisMovement)
            .where(
                or_(
                    AisMovement.visit_id.in_(ids),
                    AisMovement.id.in_(_unmatched_ais(found).with_only_columns(AisMovement.id)),
                )
            )
            .returning(AisMovement.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    observations = (
        await session.execute(
            delete(Observation)
            .where(Observation.visit_id.in_(ids))
            .returning(Observation.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    # The gate cameras' sightings of these plates at these sites go with them (issue 19).
    sightings = (
        await session.execute(
            delete(Sighting)
            .where(*_sightings_of(found))
            .returning(Sighting.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    visits = (
        await session.execute(
            delete(Visit)
            .where(Visit.id.in_(ids))
            .returning(Visit.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    # Every statement below runs whether or not there are flags, hidden or not (an id list
    # that would be empty holds NO_ID instead): a subject with a hidden flag takes the same
    # queries, hence the same time, as one without (issue 17, finding 2).
    orphans = list(
        await session.scalars(
            select(Flag.id).where(
                Flag.id.in_(sorted(candidates) or [NO_ID]),
                Flag.status.not_in(UNDER_REVIEW),
                ~exists().where(flag_visit.c.flag_id == Flag.id),
                ~flag_held(today),
            )
        )
    )
    shown = [f for f in orphans if f not in hidden]
    signals = (
        await session.scalar(
            select(func.count()).select_from(Signal).where(Signal.flag_id.in_(shown or [NO_ID]))
        )
        or 0
    )
    await session.execute(
        delete(Flag)
        .where(Flag.id.in_(orphans or [NO_ID]))
        .execution_options(synchronize_session=False)
    )
    return {
        "visits": len(visits),
        "notes": notes or 0,
        "observations": len(observations),
        "ais_movements": len(ais),
        "sightings": len(sightings),
        "flags": len(shown),
        "signals": signals,
        "aggregated_visits": aggregated,
    }
