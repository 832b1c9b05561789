"""The review queue: list a site's flags, open one with its evidence, and review it.

Every function takes the actor and scopes its queries to the sites where the actor holds
flags.view. Watchlist hits (restricted flags) exist only for analysts: for every other role
they are not found, not listed and not counted, so that nobody at a site can tip anyone off.
Analysts, the hub's people, see nothing else but flags a site has forwarded (DESIGN §2: never
the raw register).
Reads write their audit event before the data is handed out; a review writes its event in the
same transaction as the change.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import AuditEvent, Flag, Signal, Site, Visit, flag_visit
from nightreg.rules import RULES
from nightreg.rules.base import Rule
from nightreg.services import audit, signals
from nightreg.services.access import AccessDenied, Actor, NotFound
from nightreg.services.signals import MSG_NOT_FORWARDABLE
from nightreg.services.sites import scoped_site
from nightreg.validation import (
    MSG_CHOICE,
    MSG_TOO_LONG,
    FieldError,
    Invalid,
    clean_text,
    normalise_identifier,
)

VIEW = "flags.view"
REVIEW = "flags.review"

STATUSES = ("open", "watching", "dismissed", "forwarded", "expired")
# What the queue shows unless asked otherwise: what still needs (or keeps) someone's attention.
DEFAULT_STATUSES = ("open", "watching")
ACTIONS = {"dismiss": "dismissed", "watch": "watching", "forward": "forwarded"}
PAGE_SIZE = 50
MAX_REVIEW_REASON = 1000
# The history of a flag on its page: what happened to it, not every time someone looked.
HISTORY_ACTIONS = ("flag_raised", "flag_grown", "flag_reviewed")

MSG_DISMISS_REASON = N_("Please say why this flag can be dismissed.")
MSG_ALREADY_DISMISSED = N_("This flag has been dismissed already.")
MSG_ALREADY_WATCHING = N_("This flag is being watched already.")
MSG_AGREEMENT_REQUIRED = N_("Please name the sharing agreement to forward the flag under.")
MSG_NONE_CHOSEN = N_("Please choose the flags to dismiss.")
MSG_TOO_MANY = N_("Please choose at most %(max)s flags at a time.")
# One dismissal of several flags: a page of the queue, and a little more.
MAX_BULK = 200
# The subject filter: a fragment of a boat's name or registration, a plate or a unit.
MAX_SUBJECT_FILTER = 40
# What a signal may carry of its subject (nightreg.services.agreements.VISIT_FIELDS): the
# analyst's subject column and filter read only these, as the agreement let them go.
SHARED_SUBJECT_FIELDS = ("vessel_name", "registration", "mmsi", "plate")


# Why a review cannot be done, for programs (the API's error codes, the command line); the
# refusals of forwarding add theirs (nightreg.services.signals: not_forwardable, agreement_...).
INVALID = "invalid"
BAD_ACTION = "bad_action"
REASON_REQUIRED = "reason_required"
AGREEMENT_REQUIRED = "agreement_required"
ALREADY_REVIEWED = "already_reviewed"


class ReviewInvalid(Invalid):
    """A review that cannot be done as submitted: errors by field name ("reason", "action",
    "agreement"), and each error's code by field name (INVALID unless said otherwise)."""

    def __init__(
        self, errors: Mapping[str, FieldError], codes: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(errors)
        given = codes or {}
        self.codes: dict[str, str] = {name: given.get(name, INVALID) for name in self.errors}


class AlreadyReviewed(ReviewInvalid):
    """The flag is already as the review would leave it (forwarded, or with refuse_repeat:
    dismissed or watched); on "action", code ALREADY_REVIEWED."""

    def __init__(self, error: FieldError) -> None:
        super().__init__({"action": error}, {"action": ALREADY_REVIEWED})


class CursorInvalid(ValueError):
    """A queue cursor that this query did not make."""


@dataclass(frozen=True)
class FlagQuery:
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    rule: str | None = None
    cursor: str | None = None
    limit: int = PAGE_SIZE
    # A fragment of the subject: boat name, registration, MMSI, plate or unit.
    subject: str | None = None

    def filters(self) -> dict[str, Any]:
        """The query as the audit records it (in the detail record: a plate is personal)."""
        return {
            "statuses": list(self.statuses),
            "rule": self.rule or "",
            "subject": self.subject or "",
        }


@dataclass(frozen=True)
class Subject:
    """Whom or what a flag is about, as far as the viewer may see it.

    `kind` is the visit kind (vessel, vehicle, stay), "site" for a finding about the whole
    site, or "" when nothing may be shown (an analyst's flag whose agreement shares no
    identifier, or evidence only at sites the viewer does not see).
    """

    kind: str = ""
    name: str = ""  # a boat's name
    identifier: str = ""  # a registration or MMSI, a plate
    unit: str = ""  # a unit or house of an overnight stay

    @property
    def known(self) -> bool:
        return bool(self.name or self.identifier or self.unit) or self.kind == "site"


@dataclass(frozen=True)
class FlagRow:
    flag: Flag
    rule: Rule | None
    evidence: int  # visits the flag rests on, at any site
    subject: Subject = field(default_factory=Subject)


@dataclass(frozen=True)
class FlagPage:
    rows: list[FlagRow]
    next_cursor: str | None


@dataclass(frozen=True)
class FlagDetail:
    flag: Flag
    site: Site
    rule: Rule | None
    thresholds: list[tuple[str, str, int]]  # name, label (English msgid or the name), value
    visits: list[Visit]  # evidence on sites where the actor holds flags.view, site loaded
    other_sites: int  # evidence on sites the actor does not see: only counted
    history: list[audit.ShownEvent]
    signals: list[Signal] = field(default_factory=list)  # what went to the hub, newest first


# --- scope -------------------------------------------------------------------------------


def sees_restricted(actor: Actor) -> bool:
    """Watchlist hits are for analysts only (DESIGN §5; nightreg.rules.watchlist_hit)."""
    return actor.role == "analyst"


def _visible(actor: Actor, permission: str = VIEW) -> ColumnElement[bool]:
    """The WHERE clause of every flag query: the actor's sites, and restricted flags hidden."""
    sites = sorted(actor.sites_for(permission))
    clause: ColumnElement[bool] = Flag.site_id.in_(sites) if sites else false()
    if sees_restricted(actor):
        # The hub's analyst never sees the raw register (DESIGN §2): only what the hub sent
        # (watchlist hits) and what a site forwarded to it.
        clause = and_(clause, or_(Flag.restricted.is_(true()), Flag.status == "forwarded"))
    else:
        clause = and_(clause, Flag.restricted.is_(false()))
    return clause


async def _flag(session: AsyncSession, actor: Actor, flag_id: int, *, lock: bool = False) -> Flag:
    if not actor.can(VIEW):
        raise AccessDenied(VIEW)
    stmt = select(Flag).where(Flag.id == flag_id, _visible(actor))
    if lock:
        stmt = stmt.with_for_update()
    flag = await session.scalar(stmt)
    if flag is None:
        raise NotFound(f"flag {flag_id}")
    return flag


def rule_of(flag: Flag) -> Rule | None:
    """The flag's rule; None for a rule code this version no longer knows."""
    return RULES.get(flag.rule)


def reason_params(flag: Flag) -> dict[str, Any]:
    params = flag.reason_params
    return params if isinstance(params, dict) else {}


def _thresholds(flag: Flag, rule: Rule | None) -> list[tuple[str, str, int]]:
    values = flag.thresholds
    if not isinstance(values, dict):
        values = {}
    labels: dict[str, str] = {t.name: t.label for t in rule.thresholds} if rule else {}
    # The rule's order first (as documented beside the rule), then anything it no longer has.
    names = [n for n in labels if n in values]
    names += sorted(str(n) for n in values if n not in labels)
    return [(name, labels.get(name, name), values[name]) for name in names]


# --- the queue ---------------------------------------------------------------------------


def _encode_cursor(flag: Flag) -> str:
    raw = json.dumps(
        [flag.score, flag.updated_at.astimezone(UTC).isoformat(), flag.id], separators=(",", ":")
    ).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(cursor: str) -> tuple[int, datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        score, updated, flag_id = json.loads(raw)
        if not isinstance(score, int) or not isinstance(flag_id, int):
            raise ValueError(cursor)
        at = datetime.fromisoformat(updated)
        if at.tzinfo is None:
            raise ValueError(updated)
        return score, at, flag_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise CursorInvalid(cursor) from None


async def list_flags(
    db: Database, actor: Actor, site_id: int, query: FlagQuery, *, now: datetime
) -> FlagPage:
    """One page of a site's queue: highest score first, then the newest evidence.

    Keyset pagination on (score, updated_at, id): a flag raised meanwhile never pushes a row
    onto two pages. Unknown statuses and rules in the query simply match nothing.
    """
    if not 1 <= query.limit <= 200:
        raise ValueError("limit must be from 1 to 200")
    async with db.read() as session:
        site = await scoped_site(session, actor, VIEW, site_id=site_id)
        evidence = (
            select(func.count())
            .select_from(flag_visit)
            .where(flag_visit.c.flag_id == Flag.id)
            .correlate(Flag)
            .scalar_subquery()
        )
        stmt = select(Flag, evidence).where(
            Flag.site_id == site.id, _visible(actor), Flag.status.in_(query.statuses)
        )
        if query.rule:
            stmt = stmt.where(Flag.rule == query.rule)
        if query.subject:
            stmt = stmt.where(_subject_matches(actor, query.subject))
        if query.cursor:
            score, updated, last_id = _decode_cursor(query.cursor)
            stmt = stmt.where(
                or_(
                    Flag.score < score,
                    and_(Flag.score == score, Flag.updated_at < updated),
                    and_(Flag.score == score, Flag.updated_at == updated, Flag.id < last_id),
                )
            )
        stmt = stmt.order_by(Flag.score.desc(), Flag.updated_at.desc(), Flag.id.desc())
        result = await session.execute(stmt.limit(query.limit + 1))
        found = [(row[0], int(row[1])) for row in result]
        shown = found[: query.limit]
        subjects = await _subjects(session, actor, [flag for flag, _n in shown])
    next_cursor = _encode_cursor(shown[-1][0]) if len(found) > query.limit else None
    await audit.log(
        db,
        actor,
        "flags_viewed",
        at=now,
        site_id=site.id,
        object_ids=[flag.id for flag, _n in shown],
        details={"filters": query.filters()},
    )
    return FlagPage(
        rows=[
            FlagRow(flag, rule_of(flag), n, subjects.get(flag.id, Subject())) for flag, n in shown
        ],
        next_cursor=next_cursor,
    )


# --- the subject of a flag -------------------------------------------------------------------


def _subject_of_visit(kind: str, values: dict[str, Any]) -> Subject:
    def text(name: str) -> str:
        value = values.get(name)
        return str(value) if value not in (None, "") else ""

    if kind == "vehicle":
        return Subject(kind, identifier=text("plate"))
    if kind == "stay":
        return Subject(kind, unit=text("unit"))
    return Subject(kind, name=text("vessel_name"), identifier=text("registration") or text("mmsi"))


def _shared_subject(body: str) -> Subject:
    """The subject as a signal carried it: only the identifiers its agreement shared."""
    try:
        payload = json.loads(body)
    except ValueError:
        return Subject()
    visits = payload.get("visits") if isinstance(payload, dict) else None
    if not isinstance(visits, list):
        return Subject()
    latest: dict[str, Any] = {}
    for visit in visits:
        if isinstance(visit, dict) and str(visit.get("arrived_at") or "") >= str(
            latest.get("arrived_at") or ""
        ):
            latest = visit
    shared = {name: latest.get(name) for name in SHARED_SUBJECT_FIELDS}
    boat = shared["vessel_name"] or shared["registration"] or shared["mmsi"]
    kind = "vehicle" if shared["plate"] and not boat else "vessel"
    subject = _subject_of_visit(kind, shared)
    return subject if subject.known else Subject()


async def _subjects(
    session: AsyncSession, actor: Actor, page: Sequence[Flag]
) -> dict[int, Subject]:
    """The subject of each flag of a page, in one query (the queue may hold thousands).

    Staff read it from the flag's latest evidence visit at a site where they see flags; the
    hub's analyst from the newest signal of the flag, as its agreement shared it, never from
    the register (DESIGN §2).
    """
    ids = [flag.id for flag in page]
    subjects: dict[int, Subject] = {
        flag.id: Subject("site") for flag in page if flag.subject.startswith("site:")
    }
    wanted = [i for i in ids if i not in subjects]
    if not wanted:
        return subjects
    if sees_restricted(actor):
        newest = (
            select(
                Signal.flag_id,
                Signal.body,
                func.row_number()
                .over(partition_by=Signal.flag_id, order_by=Signal.id.desc())
                .label("n"),
            )
            .where(Signal.flag_id.in_(wanted))
            .subquery()
        )
        rows = await session.execute(select(newest.c.flag_id, newest.c.body).where(newest.c.n == 1))
        subjects.update({flag_id: _shared_subject(body) for flag_id, body in rows})
        return subjects
    sites = sorted(actor.sites_for(VIEW))
    if not sites:
        return subjects
    columns = ("kind", "vessel_name", "registration", "mmsi", "plate", "unit")
    latest = (
        select(
            flag_visit.c.flag_id,
            *(getattr(Visit, name) for name in columns),
            func.row_number()
            .over(
                partition_by=flag_visit.c.flag_id,
                order_by=(Visit.arrived_at.desc(), Visit.id.desc()),
            )
            .label("n"),
        )
        .join(Visit, Visit.id == flag_visit.c.visit_id)
        .where(flag_visit.c.flag_id.in_(wanted), Visit.site_id.in_(sites))
        .subquery()
    )
    rows = await session.execute(
        select(latest.c.flag_id, *(latest.c[name] for name in columns)).where(latest.c.n == 1)
    )
    for flag_id, *values in rows:
        found = dict(zip(columns, values, strict=True))
        subjects[flag_id] = _subject_of_visit(str(found["kind"]), found)
    return subjects


def _subject_matches(actor: Actor, fragment: str) -> ColumnElement[bool]:
    """The subject filter: flags whose subject, as the actor may see it, holds the fragment.

    Staff match a boat's name, registration or MMSI, a plate (as the register search folds
    them) or a unit, on evidence at sites where they see flags. The analyst matches only what
    a signal of the flag shared: the start of a shared name, registration, MMSI or plate.
    """
    if sees_restricted(actor):
        wanted = fragment.casefold()
        shared = [
            func.lower(Signal.body).contains(
                f'"{name}":' + json.dumps(wanted, ensure_ascii=False)[:-1], autoescape=True
            )
            for name in SHARED_SUBJECT_FIELDS
        ]
        return select(Signal.id).where(Signal.flag_id == Flag.id, or_(*shared)).exists()
    sites = sorted(actor.sites_for(VIEW))
    if not sites:
        return false()
    term = normalise_identifier(fragment)
    clauses: list[ColumnElement[bool]] = [
        func.lower(Visit.unit).contains(fragment.casefold(), autoescape=True)
    ]
    if term:
        clauses.append(Visit.search_key.contains(term, autoescape=True))
    return (
        select(flag_visit.c.visit_id)
        .join(Visit, Visit.id == flag_visit.c.visit_id)
        .where(flag_visit.c.flag_id == Flag.id, Visit.site_id.in_(sites), or_(*clauses))
        .exists()
    )


async def open_flag_count_in(session: AsyncSession, actor: Actor, site_id: int) -> int:
    """Open flags of a site as the actor may see them, inside the caller's session."""
    count = await session.scalar(
        select(func.count())
        .select_from(Flag)
        .where(Flag.site_id == site_id, Flag.status == "open", _visible(actor))
    )
    return int(count or 0)


async def open_flag_count(db: Database, actor: Actor, site_id: int) -> int:
    """Tonight's count: open flags of the site; 0 for sites outside the actor's scope."""
    async with db.read() as session:
        return await open_flag_count_in(session, actor, site_id)


# --- one flag ----------------------------------------------------------------------------


async def get_flag(db: Database, actor: Actor, flag_id: int, *, now: datetime) -> FlagDetail:
    """A flag with its rule, thresholds, evidence and history; the view is audited.

    Evidence at sites where the actor does not hold flags.view (a boat that hops between
    harbours) is counted, never loaded.
    """
    async with db.read() as session:
        flag = await _flag(session, actor, flag_id)
        site = await session.get(Site, flag.site_id)
        assert site is not None  # the foreign key cascades
        evidence_ids = list(
            await session.scalars(
                select(flag_visit.c.visit_id).where(flag_visit.c.flag_id == flag.id)
            )
        )
        # The hub's analyst sees evidence as the agreement lets it go (signals), never the
        # register's rows: visits are only counted for them.
        sites = [] if sees_restricted(actor) else sorted(actor.sites_for(VIEW))
        visits = list(
            await session.scalars(
                select(Visit)
                .where(Visit.id.in_(evidence_ids), Visit.site_id.in_(sites) if sites else false())
                .options(joinedload(Visit.site))
                .order_by(Visit.arrived_at, Visit.id)
            )
        )
        events = list(
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.object_type == "flag",
                    AuditEvent.object_id == flag.id,
                    AuditEvent.action.in_(HISTORY_ACTIONS),
                )
                .order_by(AuditEvent.id)
            )
        )
        # A review's reason lives in the event's detail record (personal values).
        history = await audit.shown(session, events, with_details=True)
        sent = await signals.signals_of_flag(session, flag.id)
    rule = rule_of(flag)
    await audit.log(
        db,
        actor,
        "flag_viewed",
        at=now,
        site_id=flag.site_id,
        object_type="flag",
        object_id=flag.id,
        object_ids=[v.id for v in visits],
    )
    if sees_restricted(actor):
        history = _without_staff(flag, history, actor)
        for signal in sent:  # detached too
            if signal.forwarded_by.startswith("user:") and signal.forwarded_by != actor.label:
                signal.forwarded_by = STAFF_WITHHELD
    return FlagDetail(
        flag=flag,
        site=site,
        rule=rule,
        thresholds=_thresholds(flag, rule),
        visits=visits,
        other_sites=len(evidence_ids) - len(visits),
        history=history,
        signals=sent,
    )


# What the hub's analyst reads in place of a site's staff member and their note.
STAFF_WITHHELD = "staff (not shared)"


def _without_staff(
    flag: Flag, history: list[audit.ShownEvent], actor: Actor
) -> list[audit.ShownEvent]:
    """The flag and its history as an analyst may read them: no agreement shares who at a
    site reviewed a flag nor what they wrote (issue 17, finding 7), so those are withheld,
    except the analyst's own. The objects are detached (the read is over): nothing is written.
    """
    own = actor.label
    if flag.reviewed_by and flag.reviewed_by.startswith("user:") and flag.reviewed_by != own:
        flag.reviewed_by = STAFF_WITHHELD
        flag.review_reason = None
    shown: list[audit.ShownEvent] = []
    for event in history:
        if event.actor == own or not event.actor.startswith("user:"):
            shown.append(event)  # the analyst's own, or the system's (automatic forwarding)
            continue
        try:
            details = json.loads(event.details)
        except (TypeError, ValueError):
            details = {}
        kept = (
            {k: v for k, v in details.items() if k in ("action", "from", "to", "rule")}
            if (isinstance(details, dict))
            else {}
        )
        shown.append(dataclasses.replace(event, actor=STAFF_WITHHELD, details=json.dumps(kept)))
    return shown


# --- review ------------------------------------------------------------------------------


def _check_review(action: str, reason: str, rule: Rule | None, agreement: str | None = None) -> str:
    errors: dict[str, FieldError] = {}
    codes: dict[str, str] = {}
    text = reason if isinstance(reason, str) else ""
    cleaned = clean_text(text, MAX_REVIEW_REASON, multiline=True)
    if action not in ACTIONS:
        errors["action"] = FieldError(MSG_CHOICE)
        codes["action"] = BAD_ACTION
    elif action == "forward" and (rule is None or not rule.forwardable):
        errors["action"] = FieldError(MSG_NOT_FORWARDABLE)
        codes["action"] = signals.NOT_FORWARDABLE
    elif action == "forward" and agreement is not None and not agreement.strip():
        errors["agreement"] = FieldError(MSG_AGREEMENT_REQUIRED)
        codes["agreement"] = AGREEMENT_REQUIRED
    if len(cleaned) > MAX_REVIEW_REASON:
        errors["reason"] = FieldError(MSG_TOO_LONG, {"max": MAX_REVIEW_REASON})
    elif action == "dismiss" and not cleaned:
        errors["reason"] = FieldError(MSG_DISMISS_REASON)
        codes["reason"] = REASON_REQUIRED
    if errors:
        raise ReviewInvalid(errors, codes)
    return cleaned


def _check_repeat(flag: Flag, action: str, *, refuse_repeat: bool) -> None:
    """A forwarded flag is not forwarded twice; with `refuse_repeat`, a flag is not dismissed
    or watched again either (a program that retries a request must not review twice)."""
    if flag.status == "forwarded" and action == "forward":
        raise AlreadyReviewed(FieldError(signals.MSG_ALREADY_FORWARDED))
    if refuse_repeat and flag.status == ACTIONS.get(action):
        message = MSG_ALREADY_DISMISSED if action == "dismiss" else MSG_ALREADY_WATCHING
        raise AlreadyReviewed(FieldError(message))


async def forward_preview(
    db: Database,
    actor: Actor,
    flag_id: int,
    *,
    now: datetime,
    agreement: str | None = None,
    refuse_repeat: bool = False,
) -> tuple[Flag, signals.Draft]:
    """What forwarding the flag would send now (or why it cannot); the read is audited.

    Under the agreement with the reference `agreement` if one is named (the API, the command
    line), else under the one forwarding would choose (the page, which shows a refusal in
    place of the preview). A named agreement that cannot be used raises ReviewInvalid with the
    refusal's code, as forwarding under it would. With `refuse_repeat`, a flag forwarded
    already is refused (AlreadyReviewed) rather than previewed.
    """
    async with db.read() as session:
        flag = await _flag(session, actor, flag_id)
    actor.require(REVIEW, flag.site_id)
    if agreement is not None:  # a program's preview: refused as its forward would be
        _check_review("forward", "", rule_of(flag), agreement)
    if refuse_repeat:
        _check_repeat(flag, "forward", refuse_repeat=True)
    draft = await signals.preview(db, actor, flag, now=now, reference=agreement)
    if agreement is not None and draft.refused is not None:
        raise _refused(draft.refused, draft.code, named=True)
    return flag, draft


def _refused(error: FieldError, code: str, *, named: bool) -> ReviewInvalid:
    """Forwarding refused: a named agreement's problem is the agreement's, else the action's
    (the page shows it next to the forward button)."""
    field = "agreement" if named and code != signals.NOT_FORWARDABLE else "action"
    return ReviewInvalid({field: error}, {field: code})


async def review(
    db: Database,
    actor: Actor,
    flag_id: int,
    action: str,
    reason: str = "",
    *,
    now: datetime,
    agreement: str | None = None,
    refuse_repeat: bool = False,
) -> Flag:
    """Dismiss (with a reason), keep watching or forward a flag; audited with the change.

    A flag may be reviewed again whatever its status: watched today, forwarded tomorrow.
    Forwarding writes the flag's signal into the outbox in the same transaction, under the
    agreement in force that covers its rule, or under the one with the reference `agreement`
    when the caller names one (the API and the command line, after their preview); without
    one it is refused (ReviewInvalid on "action", saying which agreement is missing, lapsed
    or does not cover the rule, with its code). A forwarded flag is forwarded again only after
    new evidence reopened it: a second click sends nothing twice (AlreadyReviewed). With
    `refuse_repeat` a dismissed flag is not dismissed again, nor a watched one watched.
    """
    async with db.write() as session:
        flag = await _flag(session, actor, flag_id, lock=not db.is_sqlite)
        actor.require(REVIEW, flag.site_id)
        cleaned = _check_review(action, reason, rule_of(flag), agreement)
        _check_repeat(flag, action, refuse_repeat=refuse_repeat)
        before = flag.status
        if action == "forward":
            try:
                await signals.queue(session, actor, flag, now=now, reference=agreement)
            except signals.ForwardRefused as refused:
                raise _refused(refused.error, refused.code, named=agreement is not None) from None
        flag.status = ACTIONS[action]
        flag.reviewed_by = actor.label[:300]
        flag.reviewed_at = now
        flag.review_reason = cleaned or None
        await audit.record(
            session,
            actor,
            "flag_reviewed",
            at=now,
            site_id=flag.site_id,
            object_type="flag",
            object_id=flag.id,
            details={"action": action, "reason": cleaned, "from": before, "to": flag.status},
        )
    return flag


def statuses_from(values: Sequence[str]) -> tuple[str, ...]:
    """Known statuses from a filter, in their usual order; none given means the default."""
    chosen = tuple(s for s in STATUSES if s in values)
    return chosen or DEFAULT_STATUSES


@dataclass(frozen=True)
class Dismissed:
    """What one dismissal of several flags did."""

    flag_ids: list[int]  # dismissed now, each with its own audit event
    unchanged: int  # chosen, but dismissed already


async def dismiss_many(
    db: Database,
    actor: Actor,
    site_id: int,
    flag_ids: Sequence[int],
    reason: str,
    *,
    now: datetime,
) -> Dismissed:
    """Dismiss several flags of one site with one reason; each flag is audited on its own.

    Only the site's flags the actor may review are touched: an id of another site, of a
    restricted flag or of no flag at all is passed over as if it were not there (the answer
    counts what was done). One transaction: all of them, or none.
    """
    errors: dict[str, FieldError] = {}
    chosen = sorted({i for i in flag_ids if 0 < i < 2**31})
    if not chosen:
        errors["flags"] = FieldError(MSG_NONE_CHOSEN)
    elif len(chosen) > MAX_BULK:
        errors["flags"] = FieldError(MSG_TOO_MANY, {"max": MAX_BULK})
    try:
        cleaned = _check_review("dismiss", reason, None)
    except ReviewInvalid as invalid:
        errors.update(invalid.errors)
    async with db.write() as session:
        site = await scoped_site(session, actor, REVIEW, site_id=site_id)
        if errors:
            raise ReviewInvalid(errors)
        stmt = (
            select(Flag)
            .where(Flag.id.in_(chosen), Flag.site_id == site.id, _visible(actor, REVIEW))
            .order_by(Flag.id)
        )
        if not db.is_sqlite:
            stmt = stmt.with_for_update()
        found = list(await session.scalars(stmt))
        changed = [flag for flag in found if flag.status != "dismissed"]
        events = []
        for flag in changed:
            before = flag.status
            flag.status = ACTIONS["dismiss"]
            flag.reviewed_by = actor.label[:300]
            flag.reviewed_at = now
            flag.review_reason = cleaned
            events.append(
                {
                    "action": "flag_reviewed",
                    "at": now,
                    "site_id": site.id,
                    "object_type": "flag",
                    "object_id": flag.id,
                    "details": {
                        "action": "dismiss",
                        "reason": cleaned,
                        "from": before,
                        "to": flag.status,
                        "together_with": len(changed),
                    },
                }
            )
        await audit.record_many(session, actor, events)
    return Dismissed(flag_ids=[flag.id for flag in changed], unchanged=len(found) - len(changed))
