"""Corrections, check-outs and notes: what staff change on a visit, each with its audit event."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Visit, VisitNote
from nightreg.services import audit, visits
from nightreg.services.access import Actor
from nightreg.services.register import EDIT, VisitInvalid, scoped_visit, site_tz
from nightreg.validation import (
    KINDS,
    MSG_DATETIME,
    MSG_TOO_LONG,
    FieldError,
    clean_text,
    parse_local_datetime,
    validate_checkin,
)

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


def _touched(
    changes: Mapping[str, str],
    allowed: tuple[str, ...],
    current: Mapping[str, str],
    errors: dict[str, FieldError],
) -> set[str]:
    """The fields a correction changes; fields it may not change go into `errors`."""
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
    return touched


def _apply(
    visit: Visit, names: list[str], new_values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the fields that really change; their old and new values, as the audit keeps them."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name in names:
        new = new_values.get(name)
        old = getattr(visit, name)
        if new != old:
            before[name] = _audit_value(old)
            after[name] = _audit_value(new)
            setattr(visit, name, new)
    return before, after


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
    # Longer than most: the check, the change and the audit's before/after share one transaction.
    errors: dict[str, FieldError] = {}
    cleaned_reason = _reason(reason, errors)
    async with db.write() as session:
        visit = await scoped_visit(session, actor, visit_id, EDIT, lock=True)
        tz = site_tz(visit.site)
        allowed = fields_for(visit.kind)
        current = visit_form_values(visit, tz)
        touched = _touched(changes, allowed, current, errors)
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

        new_values["departed_at"] = departed
        before, after = _apply(visit, sorted(touched, key=allowed.index), new_values)
        if not after:
            return visit
        for name, value in visits.keys_of({n: getattr(visit, n) for n in _KEYED}).items():
            setattr(visit, name, value)
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


# What the search and subject keys are made of (visits.keys_of).
_KEYED = (
    "kind", "guest_name", "residence", "vessel_name", "registration", "mmsi", "plate",
)  # fmt: skip


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
        visit = await scoped_visit(session, actor, visit_id, EDIT, lock=True)
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
        visit = await scoped_visit(session, actor, visit_id, EDIT)
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
