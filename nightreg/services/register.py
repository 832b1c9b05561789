"""The register as staff keep it: tonight, search, one visit, walk-ins, corrections, notes, print.

Every function takes the actor and checks both its role (AccessDenied) and its sites (NotFound:
a visit or site outside the actor's scope looks like no visit at all). Reads write their audit
event before the data is handed out; changes write theirs in the same transaction.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Integer, Select, and_, bindparam, func, insert, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from nightreg.clock import local_midnight
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import AuditEvent, Site, Visit, VisitNote
from nightreg.security import new_reference, token_hash
from nightreg.services import audit
from nightreg.services import flags as flag_queue
from nightreg.services.access import AccessDenied, Actor, NotFound
from nightreg.services.sites import scoped_site
from nightreg.services.writer import VisitWriter
from nightreg.validation import (
    MSG_CHOICE,
    MSG_DATETIME,
    MSG_TOO_LONG,
    FieldError,
    clean_text,
    normalise_identifier,
    parse_local_datetime,
    search_key,
    subject_key,
    validate_checkin,
)
from nightreg.vocabulary import KINDS, SOURCES

VIEW = "register.view"
EDIT = "register.edit"
EXPORT = "register.export"

STATUSES = ("present", "departed", "overdue")
SORTS = ("arrived_desc", "arrived_asc", "name")
MAX_LIMIT = 200
MAX_QUERY_LENGTH = 100
MAX_REASON_LENGTH = 500
MAX_NOTE_LENGTH = 2000

# The fields of a visit by kind, in the order forms show them; kind and source are not
# editable (a boat entered as a car is a new entry, not a correction).
COMMON_FIELDS = (
    "guest_name", "residence", "country", "persons", "phone", "email", "id_document_type",
    "arrived_at", "expected_departure_at", "departed_at", "notes",
)  # fmt: skip
FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
    "vessel": (
        "vessel_name", "registration", "mmsi", "vessel_type", "length_m", "flag", "berth",
        "last_port", "next_port",
    ),
    "vehicle": ("plate", "plate_country", "vehicle_type", "company", "unit"),
    "stay": ("unit", "company"),
}  # fmt: skip
EDITABLE_FIELDS: tuple[str, ...] = COMMON_FIELDS + tuple(
    dict.fromkeys(f for kind in KINDS for f in FIELDS_BY_KIND[kind])
)

MSG_REASON = N_("Please give the reason for this correction.")
MSG_NOT_EDITABLE = N_("This field cannot be changed here.")
MSG_NOT_FOR_KIND = N_("This field does not belong to this kind of visit.")
MSG_DEPARTED_BEFORE = N_("The departure must be after the arrival.")
MSG_DEPARTED_FUTURE = N_("The departure cannot be in the future.")
MSG_NOTE_REQUIRED = N_("Please write a note.")
MSG_IDEMPOTENCY = N_("This form was used for another site; please start again.")


class VisitInvalid(ValueError):
    """What was submitted for a visit does not validate: errors by field name."""

    def __init__(self, errors: Mapping[str, FieldError]) -> None:
        super().__init__(", ".join(sorted(errors)))
        self.errors: dict[str, FieldError] = dict(errors)


class QueryInvalid(ValueError):
    """A register query with a value out of range (limit, cursor, filter or dates)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RegisterQuery:
    q: str = ""
    date_from: date | None = None
    date_to: date | None = None
    kind: str | None = None
    status: str | None = None
    source: str | None = None
    sort: str = "arrived_desc"
    cursor: str | None = None
    limit: int = 50

    def filters(self) -> dict[str, str]:
        """The query as the audit records it (and the register page's links repeat it)."""
        values = {
            "q": self.q,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "kind": self.kind or "",
            "status": self.status or "",
            "source": self.source or "",
            "sort": self.sort if self.sort != "arrived_desc" else "",
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class RegisterPage:
    visits: list[Visit]
    next_cursor: str | None


@dataclass(frozen=True)
class Tonight:
    site: Site
    present: list[Visit]
    present_by_kind: dict[str, int]
    arrived_today: list[Visit]
    leaving_today: list[Visit]
    overdue: list[Visit]
    open_flags: int | None = None


@dataclass(frozen=True)
class PrintOut:
    """The police print: one site's register for a period, or who is present now."""

    site: Site
    visits: list[Visit]
    date_from: date | None
    date_to: date | None
    printed_at: datetime


# --- scope -------------------------------------------------------------------------------


async def _visit(
    session: AsyncSession, actor: Actor, visit_id: int, permission: str, *, lock: bool = False
) -> Visit:
    if not actor.can(permission):
        raise AccessDenied(permission)
    stmt = select(Visit).where(Visit.id == visit_id).options(joinedload(Visit.site))
    if actor.kind != "cli":
        # The scope is part of the query: a visit of another site is never even loaded.
        stmt = stmt.where(Visit.site_id.in_(sorted(actor.sites_for(permission))))
    if lock:
        stmt = stmt.with_for_update(of=Visit)
    visit = await session.scalar(stmt)
    if visit is None:
        raise NotFound(f"visit {visit_id}")
    return visit


def _tz(site: Site) -> ZoneInfo:
    return ZoneInfo(site.timezone)


# --- tonight -----------------------------------------------------------------------------

_VISIT_COLUMNS = ", ".join(f"visit.{c.name}" for c in Visit.__table__.columns)
# SQLite without statistics (no ANALYZE yet) rates ix_visit_present and ix_visit_site_arrived
# alike and may pick the latter, reading every visit the site ever had to find the few still
# here; INDEXED BY settles it. PostgreSQL's planner has statistics and finds the partial index.
_PRESENT_SQLITE = (
    text(
        f"SELECT {_VISIT_COLUMNS} FROM visit INDEXED BY ix_visit_present "  # noqa: S608
        "WHERE visit.site_id = :site_id AND visit.departed_at IS NULL "
        "AND visit.arrived_at <= :now ORDER BY visit.arrived_at DESC, visit.id DESC"
    )
    .bindparams(bindparam("site_id", type_=Integer()), bindparam("now", type_=DateTimeUTC()))
    .columns(*Visit.__table__.columns)
)


def _present(site_id: int, now: datetime, *, sqlite: bool) -> Any:
    """Who is at a site now (arrived, not departed), newest arrival first."""
    if sqlite:
        return select(Visit).from_statement(_PRESENT_SQLITE).params(site_id=site_id, now=now)
    return (
        select(Visit)
        .where(Visit.site_id == site_id, Visit.departed_at.is_(None), Visit.arrived_at <= now)
        .order_by(Visit.arrived_at.desc(), Visit.id.desc())
    )


async def tonight(db: Database, actor: Actor, site_id: int, *, now: datetime) -> Tonight:
    """Who is at the site now, who came today, who leaves today, who should have left.

    `leaving_today` holds those still expected to leave before midnight; those whose expected
    departure has passed are `overdue` instead, so that nobody is listed twice.
    """
    async with db.read() as session:
        site = await scoped_site(session, actor, VIEW, site_id=site_id)
        tz = _tz(site)
        today = now.astimezone(tz).date()
        midnight = local_midnight(today, tz)
        next_midnight = local_midnight(today + timedelta(days=1), tz)
        present = list(await session.scalars(_present(site.id, now, sqlite=db.is_sqlite)))
        # Counted only for those who may open the queue; None leaves it off the board.
        open_flags = (
            await flag_queue.open_flag_count_in(session, actor, site.id)
            if actor.can(flag_queue.VIEW, site.id)
            else None
        )
        arrived_today = list(
            await session.scalars(
                select(Visit)
                .where(
                    Visit.site_id == site.id,
                    Visit.arrived_at >= midnight,
                    Visit.arrived_at <= now,
                )
                .order_by(Visit.arrived_at.desc(), Visit.id.desc())
            )
        )
    overdue = [v for v in present if v.expected_departure_at < now]
    leaving_today = sorted(
        (v for v in present if now <= v.expected_departure_at < next_midnight),
        key=lambda v: (v.expected_departure_at, v.id),
    )
    by_kind = dict.fromkeys(site.visit_kinds, 0)
    for visit in present:
        by_kind[visit.kind] = by_kind.get(visit.kind, 0) + 1
    shown = [v.id for v in present] + [v.id for v in arrived_today]
    await audit.log(db, actor, "tonight_viewed", at=now, site_id=site.id, object_ids=shown)
    return Tonight(
        site=site,
        present=present,
        present_by_kind=by_kind,
        arrived_today=arrived_today,
        leaving_today=leaving_today,
        overdue=sorted(overdue, key=lambda v: (v.expected_departure_at, v.id)),
        open_flags=open_flags,
    )


# --- search ------------------------------------------------------------------------------


def _encode_cursor(sort: str, key: Any, visit_id: int) -> str:
    if isinstance(key, datetime):
        key = key.astimezone(UTC).isoformat()
    raw = json.dumps([sort, key, visit_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, key, visit_id = json.loads(raw)
        if cursor_sort != sort or not isinstance(visit_id, int) or not isinstance(key, str):
            raise ValueError(cursor_sort)
        if sort != "name":
            parsed = datetime.fromisoformat(key)
            if parsed.tzinfo is None:
                raise ValueError(key)
            return parsed, visit_id
        return key, visit_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise QueryInvalid("cursor", "not a cursor of this register query") from None


def _check_query(query: RegisterQuery) -> None:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise QueryInvalid("limit", f"must be from 1 to {MAX_LIMIT}")
    if query.kind is not None and query.kind not in KINDS:
        raise QueryInvalid("kind", f"must be one of {', '.join(KINDS)}")
    if query.status is not None and query.status not in STATUSES:
        raise QueryInvalid("status", f"must be one of {', '.join(STATUSES)}")
    if query.source is not None and query.source not in SOURCES:
        raise QueryInvalid("source", f"must be one of {', '.join(SOURCES)}")
    if query.sort not in SORTS:
        raise QueryInvalid("sort", f"must be one of {', '.join(SORTS)}")
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise QueryInvalid("date_to", "must not be before date_from")
    if len(query.q) > MAX_QUERY_LENGTH:
        raise QueryInvalid("q", f"must be at most {MAX_QUERY_LENGTH} characters")


def _period(
    stmt: Select[Any], tz: ZoneInfo, date_from: date | None, date_to: date | None
) -> Select[Any]:
    """Visits whose stay overlaps [date_from 00:00, date_to + 1 00:00) on the site's clock.

    A visit not yet departed stays on: it overlaps every period from its arrival onwards.
    """
    if date_to is not None:
        stmt = stmt.where(Visit.arrived_at < local_midnight(date_to + timedelta(days=1), tz))
    if date_from is not None:
        start = local_midnight(date_from, tz)
        stmt = stmt.where(or_(Visit.departed_at.is_(None), Visit.departed_at > start))
    return stmt


async def search(
    db: Database, actor: Actor, site_id: int, query: RegisterQuery, *, now: datetime
) -> RegisterPage:
    """One page of a site's register, newest arrival first unless asked otherwise.

    Keyset pagination on (arrived_at, id) or (lower(guest_name), id): a page costs the same
    however deep into the register it is, and a visit added meanwhile never shifts a row onto
    two pages.
    """
    _check_query(query)
    async with db.read() as session:
        site = await scoped_site(session, actor, VIEW, site_id=site_id)
        # The sort key comes from the database: its lower() is not always Python's.
        name_key = func.lower(Visit.guest_name)
        stmt = select(Visit, name_key).where(Visit.site_id == site.id)
        term = normalise_identifier(clean_text(query.q, MAX_QUERY_LENGTH))
        if term:
            stmt = stmt.where(Visit.search_key.contains(term, autoescape=True))
        stmt = _period(stmt, _tz(site), query.date_from, query.date_to)
        if query.kind:
            stmt = stmt.where(Visit.kind == query.kind)
        if query.source:
            stmt = stmt.where(Visit.source == query.source)
        if query.status == "present":
            stmt = stmt.where(Visit.departed_at.is_(None), Visit.arrived_at <= now)
        elif query.status == "overdue":
            stmt = stmt.where(
                Visit.departed_at.is_(None),
                Visit.arrived_at <= now,
                Visit.expected_departure_at < now,
            )
        elif query.status == "departed":
            stmt = stmt.where(Visit.departed_at.is_not(None))

        if query.sort == "name":
            if query.cursor:
                key, last_id = _decode_cursor(query.cursor, query.sort)
                stmt = stmt.where(or_(name_key > key, and_(name_key == key, Visit.id > last_id)))
            stmt = stmt.order_by(name_key, Visit.id)
        elif query.sort == "arrived_asc":
            if query.cursor:
                key, last_id = _decode_cursor(query.cursor, query.sort)
                stmt = stmt.where(
                    Visit.arrived_at >= key,
                    or_(Visit.arrived_at > key, Visit.id > last_id),
                )
            stmt = stmt.order_by(Visit.arrived_at, Visit.id)
        else:
            if query.cursor:
                key, last_id = _decode_cursor(query.cursor, query.sort)
                stmt = stmt.where(
                    Visit.arrived_at <= key,
                    or_(Visit.arrived_at < key, Visit.id < last_id),
                )
            stmt = stmt.order_by(Visit.arrived_at.desc(), Visit.id.desc())
        rows = [(row[0], row[1]) for row in await session.execute(stmt.limit(query.limit + 1))]

    visits = [visit for visit, _name in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last, last_name = rows[query.limit - 1]
        key = last_name if query.sort == "name" else last.arrived_at
        next_cursor = _encode_cursor(query.sort, key, last.id)
    details: dict[str, Any] = {"filters": query.filters()}
    if query.cursor:
        details["page"] = "next"
    await audit.log(
        db,
        actor,
        "register_viewed",
        at=now,
        site_id=site.id,
        object_ids=[v.id for v in visits],
        details=details,
    )
    return RegisterPage(visits=visits, next_cursor=next_cursor)


# --- one visit ---------------------------------------------------------------------------


async def get_visit(db: Database, actor: Actor, visit_id: int, *, now: datetime) -> Visit:
    """One visit with its site, for someone who may view the register of that site."""
    async with db.read() as session:
        visit = await _visit(session, actor, visit_id, VIEW)
    await audit.log(
        db,
        actor,
        "visit_viewed",
        at=now,
        site_id=visit.site_id,
        object_type="visit",
        object_id=visit.id,
    )
    return visit


async def visit_history(
    db: Database, actor: Actor, visit_id: int, *, include_views: bool = False
) -> list[AuditEvent]:
    """What happened to a visit, oldest first: created, corrected, checked out, notes.

    Views are left out unless asked for: every opening of the page would otherwise add a line
    to the page. (The audit trail itself keeps them.)
    """
    async with db.read() as session:
        visit = await _visit(session, actor, visit_id, VIEW)
        stmt = select(AuditEvent).where(
            AuditEvent.object_type == "visit", AuditEvent.object_id == visit.id
        )
        if not include_views:
            stmt = stmt.where(AuditEvent.action != "visit_viewed")
        return list(await session.scalars(stmt.order_by(AuditEvent.id)))


async def visit_notes(db: Database, actor: Actor, visit_id: int) -> list[VisitNote]:
    async with db.read() as session:
        visit = await _visit(session, actor, visit_id, VIEW)
        return list(
            await session.scalars(
                select(VisitNote)
                .where(VisitNote.visit_id == visit.id)
                .order_by(VisitNote.at, VisitNote.id)
            )
        )


# --- walk-in -----------------------------------------------------------------------------


async def create_visit(
    db: Database,
    actor: Actor,
    site_id: int,
    form: Mapping[str, str],
    *,
    now: datetime,
    source: str = "staff",
    writer: VisitWriter | None = None,
    watchlist_key: str = "",
) -> Visit:
    """A visit entered by staff (a walk-in) or through the API, with the kiosk's validation.

    The arrival may lie up to 7 days back (last night's arrivals entered in the morning); an
    empty arrival means now. A repeated `idempotency_key` returns the visit made the first time.

    `writer` is accepted for symmetry with check_in but not used: the visit and its audit
    event must share one transaction, which the group commit cannot offer.
    """
    del writer
    if source not in SOURCES:
        raise VisitInvalid({"source": FieldError(MSG_CHOICE)})
    key = form.get("idempotency_key") or None
    if key is not None and (not isinstance(key, str) or len(key) > 64):
        key = None
    for _attempt in range(3):
        try:
            async with db.write() as session:
                site = await scoped_site(session, actor, EDIT, site_id=site_id)
                if key is not None:
                    earlier = await _by_idempotency_key(session, key)
                    if earlier is not None:
                        if earlier.site_id != site.id:
                            raise VisitInvalid({"idempotency_key": FieldError(MSG_IDEMPOTENCY)})
                        return earlier
                data, errors = validate_checkin(
                    form,
                    kind=form.get("kind", ""),
                    allowed_kinds=site.visit_kinds,
                    now=now,
                    tz=_tz(site),
                )
                if data is None:
                    raise VisitInvalid(errors)
                values = dataclasses.asdict(data)
                values.update(
                    reference=new_reference(),
                    search_key=_search_key(values),
                    site_id=site.id,
                    point_id=None,
                    source=source,
                    # Nobody holds a private link to a walk-in: a random one, never shown.
                    private_token_hash=token_hash(secrets.token_urlsafe(32)),
                    idempotency_key=key,
                    request_fingerprint=None,
                    created_at=now,
                    updated_at=now,
                )
                visit_id = await session.scalar(insert(Visit).values(**values).returning(Visit.id))
                assert visit_id is not None
                await audit.record(
                    session,
                    actor,
                    "visit_created",
                    at=now,
                    site_id=site.id,
                    object_type="visit",
                    object_id=visit_id,
                    details={"kind": data.kind, "source": source, "reference": values["reference"]},
                )
                visit = await session.scalar(
                    select(Visit).where(Visit.id == visit_id).options(joinedload(Visit.site))
                )
                assert visit is not None
            # After the commit, like a check-in: a hit raises a flag only analysts see.
            if watchlist_key:
                from nightreg.services import watchlist

                await watchlist.check_new_visit(db, visit, watchlist_key, now)
            return visit
        except IntegrityError:
            # A reference drawn twice (once in ~10^12), or the same form sent twice at once:
            # the next round finds the first visit by its idempotency key.
            continue
    raise RuntimeError("could not write the visit")


async def _by_idempotency_key(session: AsyncSession, key: str) -> Visit | None:
    return await session.scalar(
        select(Visit).where(Visit.idempotency_key == key).options(joinedload(Visit.site))
    )


def _search_key(values: Mapping[str, Any]) -> str:
    return search_key(
        values.get("guest_name"),
        values.get("vessel_name"),
        values.get("registration"),
        values.get("mmsi"),
        values.get("plate"),
    )


# --- corrections -------------------------------------------------------------------------


def fields_for(kind: str) -> tuple[str, ...]:
    """The editable fields of a visit of this kind."""
    return COMMON_FIELDS + FIELDS_BY_KIND.get(kind, ())


def _local_input(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def form_value(visit: Visit, name: str, tz: ZoneInfo) -> str:
    """One field of a visit as a form shows it (and as a correction submits it)."""
    value = getattr(visit, name)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _local_input(value, tz)
    return str(value)


def visit_form_values(visit: Visit, tz: ZoneInfo) -> dict[str, str]:
    """The correction form prefilled with what the visit holds now."""
    return {name: form_value(visit, name, tz) for name in fields_for(visit.kind)}


def _audit_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _departed_at(
    text: str, arrived_at: datetime, tz: ZoneInfo, now: datetime, errors: dict[str, FieldError]
) -> datetime | None:
    if not text.strip():
        return None
    departed = parse_local_datetime(text, tz)
    if departed is None:
        errors["departed_at"] = FieldError(MSG_DATETIME)
    elif departed <= arrived_at:
        errors["departed_at"] = FieldError(MSG_DEPARTED_BEFORE)
    elif departed > now + timedelta(minutes=5):
        errors["departed_at"] = FieldError(MSG_DEPARTED_FUTURE)
    else:
        return departed
    return None


def _reason(reason: str, errors: dict[str, FieldError]) -> str:
    cleaned = clean_text(reason if isinstance(reason, str) else "", MAX_REASON_LENGTH)
    if not cleaned:
        errors["reason"] = FieldError(MSG_REASON)
    elif len(cleaned) > MAX_REASON_LENGTH:
        errors["reason"] = FieldError(MSG_TOO_LONG, {"max": MAX_REASON_LENGTH})
    return cleaned


async def correct_visit(
    db: Database,
    actor: Actor,
    visit_id: int,
    changes: Mapping[str, str],
    reason: str,
    *,
    now: datetime,
) -> Visit:
    """Change fields of a visit, with a reason; the audit keeps old and new values.

    `changes` holds form-style strings (local times like "2026-07-14T21:30") for the fields to
    change; a field sent with the value it has already counts as unchanged, so a whole form
    may be posted. The result is checked with the kiosk's rules, except that an arrival may
    lie any time back (old entries get corrected too). Nothing changed: nothing is written.
    """
    errors: dict[str, FieldError] = {}
    cleaned_reason = _reason(reason, errors)
    async with db.write() as session:
        visit = await _visit(session, actor, visit_id, EDIT, lock=True)
        tz = _tz(visit.site)
        allowed = fields_for(visit.kind)
        current = visit_form_values(visit, tz)
        touched: set[str] = set()
        for name, value in changes.items():
            if name not in EDITABLE_FIELDS:
                errors[name[:40]] = FieldError(MSG_NOT_EDITABLE)
            elif name not in allowed:
                errors[name] = FieldError(MSG_NOT_FOR_KIND)
            elif not isinstance(value, str):
                errors[name] = FieldError(MSG_NOT_EDITABLE)
            elif value.strip() != current[name]:
                touched.add(name)
        merged = {**current, **{name: changes[name] for name in touched}}
        merged["kind"] = visit.kind

        # The kiosk's arrival window (7 days back) is for visitors; a correction may move an
        # old arrival, only not into the future beyond what a walk-in may.
        arrival = parse_local_datetime(merged["arrived_at"], tz)
        check_now = arrival if arrival is not None and arrival <= now else now
        data, field_errors = validate_checkin(
            merged, kind=visit.kind, allowed_kinds=(visit.kind,), now=check_now, tz=tz
        )
        for name, error in field_errors.items():
            errors.setdefault(name, error)
        new_values: dict[str, Any] = dataclasses.asdict(data) if data is not None else {}
        arrived_for_departure = (
            visit.arrived_at if "arrived_at" not in touched else (arrival or visit.arrived_at)
        )
        departed = (
            _departed_at(merged["departed_at"], arrived_for_departure, tz, now, errors)
            if "departed_at" in touched
            else visit.departed_at
        )
        if errors:
            raise VisitInvalid(errors)

        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for name in sorted(touched, key=allowed.index):
            new = departed if name == "departed_at" else new_values.get(name)
            old = getattr(visit, name)
            if new != old:
                before[name] = _audit_value(old)
                after[name] = _audit_value(new)
                setattr(visit, name, new)
        if not after:
            return visit
        visit.subject_key = subject_key(
            visit.kind,
            registration=visit.registration,
            mmsi=visit.mmsi,
            plate=visit.plate,
            guest_name=visit.guest_name,
            residence=visit.residence,
        )
        visit.search_key = _search_key({n: getattr(visit, n) for n in _SEARCHED})
        visit.updated_at = now
        await audit.record(
            session,
            actor,
            "visit_corrected",
            at=now,
            site_id=visit.site_id,
            object_type="visit",
            object_id=visit.id,
            details={"reason": cleaned_reason, "before": before, "after": after},
        )
    return visit


_SEARCHED = ("guest_name", "vessel_name", "registration", "mmsi", "plate")


async def check_out_visit(
    db: Database,
    actor: Actor,
    visit_id: int,
    *,
    now: datetime,
    departed_at: datetime | None = None,
) -> Visit:
    """Record the departure (now, or the time given); a visit already checked out stays as is."""
    async with db.write() as session:
        visit = await _visit(session, actor, visit_id, EDIT, lock=True)
        if visit.departed_at is not None:
            return visit
        departure = departed_at or now
        if departure.tzinfo is None:
            raise ValueError("departed_at must be timezone-aware")
        if departure <= visit.arrived_at:
            raise VisitInvalid({"departed_at": FieldError(MSG_DEPARTED_BEFORE)})
        if departure > now + timedelta(minutes=5):
            raise VisitInvalid({"departed_at": FieldError(MSG_DEPARTED_FUTURE)})
        visit.departed_at = departure
        visit.updated_at = now
        await audit.record(
            session,
            actor,
            "visit_checked_out",
            at=now,
            site_id=visit.site_id,
            object_type="visit",
            object_id=visit.id,
            details={"before": {"departed_at": None}, "after": {"departed_at": departure}},
        )
    return visit


async def add_note(
    db: Database, actor: Actor, visit_id: int, text: str, *, now: datetime
) -> VisitNote:
    """A staff note on a visit, signed with the actor's name."""
    cleaned = clean_text(text if isinstance(text, str) else "", MAX_NOTE_LENGTH, multiline=True)
    if not cleaned:
        raise VisitInvalid({"text": FieldError(MSG_NOTE_REQUIRED)})
    if len(cleaned) > MAX_NOTE_LENGTH:
        raise VisitInvalid({"text": FieldError(MSG_TOO_LONG, {"max": MAX_NOTE_LENGTH})})
    async with db.write() as session:
        visit = await _visit(session, actor, visit_id, EDIT)
        note = VisitNote(visit_id=visit.id, at=now, author=actor.label[:300], text=cleaned)
        session.add(note)
        await session.flush()
        await audit.record(
            session,
            actor,
            "visit_note_added",
            at=now,
            site_id=visit.site_id,
            object_type="visit",
            object_id=visit.id,
            details={"note_id": note.id},
        )
    return note


# --- police print ------------------------------------------------------------------------


async def print_register(
    db: Database,
    actor: Actor,
    site_id: int,
    *,
    date_from: date | None,
    date_to: date | None,
    now: datetime,
) -> PrintOut:
    """The register for the police: every visit of a period, or (no dates) who is present now.

    Arrival order, complete (no pages): what is printed is what the register holds.
    """
    if date_from and date_to and date_from > date_to:
        raise QueryInvalid("date_to", "must not be before date_from")
    async with db.read() as session:
        site = await scoped_site(session, actor, EXPORT, site_id=site_id)
        stmt = select(Visit).where(Visit.site_id == site.id)
        if date_from is None and date_to is None:
            stmt = stmt.where(Visit.departed_at.is_(None), Visit.arrived_at <= now)
        else:
            stmt = _period(stmt, _tz(site), date_from, date_to)
        visits = list(await session.scalars(stmt.order_by(Visit.arrived_at, Visit.id)))
    await audit.log(
        db,
        actor,
        "register_printed",
        at=now,
        site_id=site.id,
        object_ids=[v.id for v in visits],
        details={
            "from": date_from.isoformat() if date_from else None,
            "to": date_to.isoformat() if date_to else None,
            "count": len(visits),
        },
    )
    return PrintOut(site=site, visits=visits, date_from=date_from, date_to=date_to, printed_at=now)
