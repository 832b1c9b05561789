"""Legal holds: a freeze on deletion for a case (issue 6 §1).

An admin places a hold, with the case's reference, a reason and optionally a last day, on
named visits, on everything of one subject (at one site or all), or on a whole site. While it
is in force the purge keeps what it covers (the clauses below: hold_in_force,
visit_held, flag_held). A hold ends when an admin releases it, with a reason, or when its last
day (inclusive, in the installation's time zone) has passed. Holds are never deleted: the list
is the privacy officer's record. Placing and releasing are audited (`hold_placed`,
`hold_released`); so is reading them (`holds_viewed`, `hold_viewed`), as a hold can name a
person by their subject key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.clock import local_day
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Flag, LegalHold, Sighting, Site, Visit, flag_visit, legal_hold_visit
from nightreg.services import audit
from nightreg.services.access import Actor, NotFound
from nightreg.validation import MSG_TOO_LONG, FieldError, Invalid, clean_text
from nightreg.vocabulary import HOLD_SCOPES

# Holds are retention's business: they share its permissions (nightreg.services.access).
VIEW = "retention.view"
MANAGE = "retention.manage"

SCOPES = HOLD_SCOPES
SCOPE_LABELS = {
    "visits": N_("Named visits"),
    "subject": N_("A subject (person, boat or vehicle)"),
    "site": N_("A whole site"),
}
IN_FORCE, EXPIRED, RELEASED = "in_force", "expired", "released"
STATES = (IN_FORCE, EXPIRED, RELEASED)
STATE_LABELS = {
    IN_FORCE: N_("In force"),
    EXPIRED: N_("Ended (last day passed)"),
    RELEASED: N_("Released"),
}

MAX_CASE_REFERENCE = 100
MAX_REASON = 2000
MAX_RELEASE_REASON = 1000
MAX_SUBJECT_KEY = 240
MAX_REFERENCES = 500
# How many covered visits' references a hold's page lists.
SHOWN_REFERENCES = 500
# The kinds of subject key the register and the flags store (validation.subject_key; a flag
# about a unit follows "unit:…").
SUBJECT_PREFIXES = ("reg:", "mmsi:", "plate:", "person:", "unit:")

MSG_SCOPE = N_("Please choose what the hold covers.")
MSG_CASE_REFERENCE = N_("Please enter the case's reference (the file or court number).")
MSG_REASON = N_("Please say why the data must be kept.")
MSG_DATE = N_("Please enter a date like 2026-07-14.")
MSG_UNTIL_PAST = N_("The last day has passed already: such a hold would hold nothing.")
MSG_REFS = N_("Please enter the references of the visits to hold, e.g. K7QX-M2PD.")
MSG_REFS_MANY = N_("Please name at most %(max)s visits in one hold.")
MSG_REFS_UNKNOWN = N_("No visit has these references: %(refs)s.")
MSG_SUBJECT = N_(
    "Please enter the subject key as the register stores it, e.g. plate:12ABC3, reg:NL123AB, "
    "mmsi:244123456 or person:jan de vries|hoorn."
)
MSG_SUBJECT_UNKNOWN = N_(
    "No visit or flag has this subject key; check it against the register (it must match exactly)."
)
MSG_SUBJECT_UNKNOWN_AT_SITE = N_(
    "No visit or flag at this site has this subject key; check it against the register (it "
    "must match exactly), or hold it at all sites."
)
MSG_SITE = N_("Please choose the site to hold.")
MSG_SITE_UNKNOWN = N_("There is no such site.")
MSG_RELEASE_REASON = N_("Please say why the hold is released.")
MSG_ALREADY_RELEASED = N_("This hold has been released already.")
MSG_ALREADY_ENDED = N_("This hold's last day has passed: it holds nothing any more.")


class HoldInvalid(Invalid):
    """A hold (or its release) that cannot be saved as submitted: errors by field name.

    Field names are the form's: scope, case_reference, reason, until, refs, subject, site; for
    a release, reason, or `hold` when it has ended already.
    """


def in_force(hold: LegalHold, today: date) -> bool:
    return hold.released_at is None and (hold.until is None or hold.until >= today)


def state(hold: LegalHold, today: date) -> str:
    if hold.released_at is not None:
        return RELEASED
    if hold.until is not None and hold.until < today:
        return EXPIRED
    return IN_FORCE


_SPLIT = re.compile(r"[\s,;]+")


def parse_references(value: str | Iterable[str] | None) -> list[str]:
    """Visit references from text (one a line, or separated by commas or spaces) or a list;
    upper case, each once, in the order given."""
    if value is None:
        return []
    parts = _SPLIT.split(value) if isinstance(value, str) else [
        p for item in value for p in _SPLIT.split(str(item))
    ]  # fmt: skip
    out: list[str] = []
    for part in parts:
        ref = part.strip().upper()
        if ref and ref not in out:
            out.append(ref)
    return out


def _day(value: date | str | None) -> date | None:
    """A date, or text YYYY-MM-DD; None when empty; ValueError otherwise."""
    if isinstance(value, datetime):
        raise ValueError(value)
    if isinstance(value, date):
        return value
    text = (value or "").strip()
    if not text:
        return None
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise ValueError(text)
    return date.fromisoformat(text)


def _required(value: str | None, limit: int, missing: str, errors: dict[str, FieldError],
              name: str, *, multiline: bool = False) -> str:  # fmt: skip
    text = clean_text(value if isinstance(value, str) else "", limit, multiline=multiline)
    if not text:
        errors[name] = FieldError(missing)
    elif len(text) > limit:
        errors[name] = FieldError(MSG_TOO_LONG, {"max": limit})
    return text


async def _site(
    session: AsyncSession, site_id: int | None, site_slug: str | None
) -> tuple[Site | None, bool]:
    """(the site, whether one was asked for)."""
    if site_id is not None:
        return await session.get(Site, site_id), True
    slug = (site_slug or "").strip()
    if not slug:
        return None, False
    return await session.scalar(select(Site).where(Site.slug == slug[:64])), True


async def _named_visits(
    session: AsyncSession, refs: Sequence[str], errors: dict[str, FieldError]
) -> list[int]:
    """The ids of the visits a hold names by reference; every reference must exist."""
    if not refs:
        errors["refs"] = FieldError(MSG_REFS)
        return []
    if len(refs) > MAX_REFERENCES:
        errors["refs"] = FieldError(MSG_REFS_MANY, {"max": MAX_REFERENCES})
        return []
    rows = await session.execute(select(Visit.reference, Visit.id).where(Visit.reference.in_(refs)))
    found: dict[str, int] = dict(rows.all())
    unknown = [r for r in refs if r not in found]
    if unknown:
        named = ", ".join(r[:20] for r in unknown[:20])
        if len(unknown) > 20:
            named += ", …"
        errors["refs"] = FieldError(MSG_REFS_UNKNOWN, {"refs": named})
    return [found[r] for r in refs if r in found]


async def _check_subject(
    session: AsyncSession, key: str, site: Site | None, errors: dict[str, FieldError]
) -> None:
    """A subject key as stored, known at the site (or anywhere, without a site)."""
    if (
        not key
        or len(key) > MAX_SUBJECT_KEY
        or not key.startswith(SUBJECT_PREFIXES)
        or key.endswith(":")
    ):
        errors["subject"] = FieldError(MSG_SUBJECT)
    elif not await _subject_known(session, key, site.id if site else None):
        errors["subject"] = FieldError(MSG_SUBJECT_UNKNOWN_AT_SITE if site else MSG_SUBJECT_UNKNOWN)


async def place(
    db: Database,
    actor: Actor,
    *,
    scope: str,
    case_reference: str,
    reason: str,
    until: date | str | None = None,
    site_id: int | None = None,
    site_slug: str | None = None,
    subject_key: str | None = None,
    visit_references: str | Iterable[str] | None = None,
    now: datetime,
    tz: ZoneInfo,
) -> LegalHold:
    """Place a hold; audited as `hold_placed`. HoldInvalid names every field at fault.

    scope "visits": `visit_references` (each must exist); "subject": `subject_key` exactly as
    stored, limited to a site if one is given; "site": a site (by id or slug). Fields that do
    not belong to the scope are ignored.
    """
    # Longer than most: the three scopes (visits, subject, site) are checked and stored in one
    # transaction with one audit event, and reading them in order is clearer than three helpers
    # sharing half a dozen arguments.
    actor.require(MANAGE)
    today = local_day(now, tz)
    errors: dict[str, FieldError] = {}
    if scope not in SCOPES:
        errors["scope"] = FieldError(MSG_SCOPE)
    case = _required(case_reference, MAX_CASE_REFERENCE, MSG_CASE_REFERENCE, errors,
                     "case_reference")  # fmt: skip
    why = _required(reason, MAX_REASON, MSG_REASON, errors, "reason", multiline=True)
    last_day: date | None = None
    try:
        last_day = _day(until)
    except ValueError:
        errors["until"] = FieldError(MSG_DATE)
    if last_day is not None and last_day < today:
        errors["until"] = FieldError(MSG_UNTIL_PAST)
    refs = parse_references(visit_references) if scope == "visits" else []
    key = clean_text(subject_key or "", MAX_SUBJECT_KEY) if scope == "subject" else ""
    async with db.write() as session:
        site: Site | None = None
        visit_ids: list[int] = []
        if scope in ("subject", "site"):
            site, asked = await _site(session, site_id, site_slug)
            if asked and site is None:
                errors["site"] = FieldError(MSG_SITE_UNKNOWN)
            elif scope == "site" and site is None:
                errors["site"] = FieldError(MSG_SITE)
        if scope == "visits":
            visit_ids = await _named_visits(session, refs, errors)
        if scope == "subject" and "site" not in errors:
            await _check_subject(session, key, site, errors)
        if errors:
            raise HoldInvalid(errors)
        hold = LegalHold(
            scope=scope,
            case_reference=case,
            reason=why,
            until=last_day,
            site_id=site.id if site else None,
            subject_key=key or None,
            visit_count=len(visit_ids),
            created_at=now,
            created_by=actor.label[:300],
        )
        session.add(hold)
        await session.flush()
        if visit_ids:
            await session.execute(
                legal_hold_visit.insert(),
                [{"hold_id": hold.id, "visit_id": v} for v in visit_ids],
            )
        await audit.record(
            session,
            actor,
            "hold_placed",
            at=now,
            site_id=hold.site_id,
            object_type="legal_hold",
            object_id=hold.id,
            object_ids=visit_ids,
            details={
                "scope": scope,
                "case_reference": case,
                "reason": why,
                "until": last_day.isoformat() if last_day else None,
                "site": site.slug if site else None,
                "subject_key": key or None,
            },
        )
    return hold


async def _subject_known(session: AsyncSession, key: str, site_id: int | None) -> bool:
    visits = select(Visit.id).where(Visit.subject_key == key)
    flags = select(Flag.id).where(Flag.subject == key)
    if site_id is not None:
        visits = visits.where(Visit.site_id == site_id)
        flags = flags.where(Flag.site_id == site_id)
    if await session.scalar(visits.limit(1)) is not None:
        return True
    return await session.scalar(flags.limit(1)) is not None


async def release(
    db: Database, actor: Actor, hold_id: int, reason: str, *, now: datetime, tz: ZoneInfo
) -> LegalHold:
    """Release a hold now, with a reason; audited as `hold_released`. The hold stays on the
    list for good. A hold released already, or past its last day, is refused (HoldInvalid on
    `hold`); NotFound when there is none with that id."""
    actor.require(MANAGE)
    errors: dict[str, FieldError] = {}
    why = _required(reason, MAX_RELEASE_REASON, MSG_RELEASE_REASON, errors, "reason",
                    multiline=True)  # fmt: skip
    async with db.write() as session:
        stmt = select(LegalHold).where(LegalHold.id == hold_id)
        if not db.is_sqlite:  # two admins releasing it at once: the second sees the first
            stmt = stmt.with_for_update()
        hold = await session.scalar(stmt)
        if hold is None:
            raise NotFound(f"legal hold {hold_id}")
        now_state = state(hold, local_day(now, tz))
        if now_state == RELEASED:
            raise HoldInvalid({"hold": FieldError(MSG_ALREADY_RELEASED)})
        if now_state == EXPIRED:
            raise HoldInvalid({"hold": FieldError(MSG_ALREADY_ENDED)})
        if errors:
            raise HoldInvalid(errors)
        hold.released_at = now
        hold.released_by = actor.label[:300]
        hold.release_reason = why
        await session.flush()
        await audit.record(
            session,
            actor,
            "hold_released",
            at=now,
            site_id=hold.site_id,
            object_type="legal_hold",
            object_id=hold.id,
            details={"case_reference": hold.case_reference, "reason": why},
        )
    return hold


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldRow:
    hold: LegalHold
    state: str
    site: Site | None


async def list_holds(db: Database, actor: Actor, *, now: datetime, tz: ZoneInfo) -> list[HoldRow]:
    """Every hold with its state: those in force first, then the ended ones (released or past
    their last day); newest first within each. Audited as `holds_viewed` (a hold on a subject
    names them)."""
    actor.require(VIEW)
    today = local_day(now, tz)
    async with db.read() as session:
        rows = await session.execute(
            select(LegalHold, Site)
            .outerjoin(Site, Site.id == LegalHold.site_id)
            .order_by(LegalHold.id.desc())
        )
        out = [HoldRow(hold, state(hold, today), site) for hold, site in rows]
    out.sort(key=lambda r: (r.state != IN_FORCE, -r.hold.id))
    await audit.log(
        db, actor, "holds_viewed", at=now, object_type="legal_hold",
        object_ids=[r.hold.id for r in out],
    )  # fmt: skip
    return out


def _covered_visits(hold: LegalHold) -> ColumnElement[bool]:
    """The visits this hold covers (whether or not it is still in force)."""
    if hold.scope == "site":
        return Visit.site_id == hold.site_id
    if hold.scope == "subject":
        same = Visit.subject_key == hold.subject_key
        return same if hold.site_id is None else and_(same, Visit.site_id == hold.site_id)
    return Visit.id.in_(
        select(legal_hold_visit.c.visit_id).where(legal_hold_visit.c.hold_id == hold.id)
    )


def _covered_flags(hold: LegalHold) -> ColumnElement[bool]:
    """The flags this hold covers: of its site or its subject, and any resting on a visit it
    covers (as flag_held counts them)."""
    rests_on_held = Flag.id.in_(
        select(flag_visit.c.flag_id)
        .join(Visit, Visit.id == flag_visit.c.visit_id)
        .where(_covered_visits(hold))
    )
    if hold.scope == "site":
        return or_(Flag.site_id == hold.site_id, rests_on_held)
    if hold.scope == "subject":
        same = Flag.subject == hold.subject_key
        if hold.site_id is not None:
            same = and_(same, Flag.site_id == hold.site_id)
        return or_(same, rests_on_held)
    return rests_on_held


@dataclass(frozen=True)
class HoldDetail:
    hold: LegalHold
    state: str
    site: Site | None
    # What it covers now (visits and flags still in the register).
    visits: int
    flags: int
    # References of the covered visits (named visits and a subject's), up to SHOWN_REFERENCES;
    # a whole site's are only counted.
    references: Sequence[str]
    # Named visits that are gone since (purged after the hold ended, or erased).
    named_gone: int


async def get_hold(
    db: Database, actor: Actor, hold_id: int, *, now: datetime, tz: ZoneInfo
) -> HoldDetail:
    """One hold with what it covers now; NotFound when there is none. Audited as
    `hold_viewed` with the ids of the visits whose references it shows."""
    actor.require(VIEW)
    today = local_day(now, tz)
    async with db.read() as session:
        hold = await session.get(LegalHold, hold_id)
        if hold is None:
            raise NotFound(f"legal hold {hold_id}")
        site = await session.get(Site, hold.site_id) if hold.site_id is not None else None
        covered = _covered_visits(hold)
        visits = await session.scalar(select(func.count()).select_from(Visit).where(covered))
        flags = await session.scalar(
            select(func.count()).select_from(Flag).where(_covered_flags(hold))
        )
        shown: list[tuple[int, str]] = []
        if hold.scope != "site":
            shown = [
                (vid, ref)
                for vid, ref in (
                    await session.execute(
                        select(Visit.id, Visit.reference)
                        .where(covered)
                        .order_by(Visit.arrived_at, Visit.id)
                        .limit(SHOWN_REFERENCES)
                    )
                )
            ]
    named_gone = max(hold.visit_count - (visits or 0), 0) if hold.scope == "visits" else 0
    await audit.log(
        db, actor, "hold_viewed", at=now, site_id=hold.site_id, object_type="legal_hold",
        object_id=hold.id, object_ids=[vid for vid, _ref in shown],
    )  # fmt: skip
    return HoldDetail(
        hold=hold,
        state=state(hold, today),
        site=site,
        visits=visits or 0,
        flags=flags or 0,
        references=[ref for _vid, ref in shown],
        named_gone=named_gone,
    )


async def all_sites(db: Database, actor: Actor) -> list[Site]:
    """Every site (inactive ones too: their data is kept or purged all the same), for the
    form's choice; holds are placed installation-wide."""
    actor.require(MANAGE)
    async with db.read() as session:
        return list(await session.scalars(select(Site).order_by(Site.name, Site.slug)))


# --- what a hold keeps: the clauses the purge, its preview and subject requests use -------


def hold_in_force(today: date) -> ColumnElement[bool]:
    return and_(
        LegalHold.released_at.is_(None), or_(LegalHold.until.is_(None), LegalHold.until >= today)
    )


def visit_held(today: date) -> ColumnElement[bool]:
    """True for a visit that a hold in force covers (by name, by subject or by site)."""
    by_site_or_subject = exists().where(
        hold_in_force(today),
        or_(
            and_(LegalHold.scope == "site", LegalHold.site_id == Visit.site_id),
            and_(
                LegalHold.scope == "subject",
                LegalHold.subject_key == Visit.subject_key,
                or_(LegalHold.site_id.is_(None), LegalHold.site_id == Visit.site_id),
            ),
        ),
    )
    by_name = exists().where(
        legal_hold_visit.c.visit_id == Visit.id,
        LegalHold.id == legal_hold_visit.c.hold_id,
        hold_in_force(today),
    )
    return or_(by_site_or_subject, by_name)


def sighting_held(today: date) -> ColumnElement[bool]:
    """True for a gate camera's sighting that a hold covers: its site, or its plate as a
    subject (a hold on named visits keeps their sightings by keeping the visits that cover
    them; nightreg.services.retention.due)."""
    return exists().where(
        hold_in_force(today),
        or_(
            and_(LegalHold.scope == "site", LegalHold.site_id == Sighting.site_id),
            and_(
                LegalHold.scope == "subject",
                LegalHold.subject_key == Sighting.subject_key,
                or_(LegalHold.site_id.is_(None), LegalHold.site_id == Sighting.site_id),
            ),
        ),
    )


def flag_held(today: date) -> ColumnElement[bool]:
    """True for a flag that a hold covers: its site, its subject, or any visit it rests on."""
    held_visit = (
        select(Visit.id)
        .join(flag_visit, flag_visit.c.visit_id == Visit.id)
        .where(flag_visit.c.flag_id == Flag.id, visit_held(today))
        .exists()
    )
    by_site_or_subject = exists().where(
        hold_in_force(today),
        or_(
            and_(LegalHold.scope == "site", LegalHold.site_id == Flag.site_id),
            and_(
                LegalHold.scope == "subject",
                LegalHold.subject_key == Flag.subject,
                or_(LegalHold.site_id.is_(None), LegalHold.site_id == Flag.site_id),
            ),
        ),
    )
    return or_(held_visit, by_site_or_subject)
