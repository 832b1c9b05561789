"""Possible duplicates as staff resolve them: merge the two visits, or keep both with a reason.

A possible duplicate (nightreg.services.presence) is a second open visit of a subject that
was present already. Staff see it on Tonight, on either visit's page and in the register's
filter, and resolve it:

- *merge*: the open visit it doubles survives, with the earliest arrival and the newest
  details (the later visit's, where it has them); the other's notes, observations, flags and
  legal holds move over, its audit detail records too, and its row goes. What still points at
  it is kept in `VisitMerge`: its private link resolves to the survivor, its id and reference
  name it in the survivor's history (its audit events stay as written: the chain is not
  rewritten). Audited as `visit_merged` (before and after in the detail record).
- *keep both*: the mark goes, the reason stays in the audit (`duplicate_kept`).

Until then, the counts (Tonight, the police print, the tourist tax) count the subject once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import (
    AisMovement,
    AuditDetail,
    Observation,
    PossibleDuplicate,
    Visit,
    VisitMerge,
    VisitNote,
    flag_visit,
    legal_hold_visit,
)
from nightreg.services import audit, visits
from nightreg.services.access import Actor
from nightreg.services.corrections import COMMON_FIELDS, fields_for
from nightreg.services.register import EDIT, VIEW, scoped_visit
from nightreg.validation import MSG_TOO_LONG, FieldError, Invalid, clean_text

MAX_REASON_LENGTH = 500
MERGED = "visit_merged"
KEPT = "duplicate_kept"

MSG_REASON = N_("Please say why both visits stay.")
MSG_RESOLVED = N_("This visit is no longer marked as a possible duplicate.")
MSG_KINDS = N_("Visits of different kinds cannot be merged; keep both instead.")

# The times are merged by their own rules (merged_values); the rest: the newest value.
_TIMES = ("arrived_at", "expected_departure_at", "departed_at")


class DuplicateInvalid(Invalid):
    """A merge or keep-both that cannot be done: messages by field (`reason`, `duplicate`)."""


@dataclass(frozen=True)
class Pair:
    """A possible duplicate and the open visit it doubles (both of the same site)."""

    duplicate: Visit
    original: Visit


# --- the pure part ---------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value == ""


def merged_values(
    kind: str, survivor: Mapping[str, Any], other: Mapping[str, Any]
) -> dict[str, Any]:
    """The survivor's fields after a merge with `other`: what changes, by field name.

    The earliest arrival; every other field from the newer of the two (the later
    `created_at`), where that one has a value; the expected departure of the newer; no
    departure while either is still present, else the later one.
    """
    newer, older = (
        (other, survivor)
        if (other["created_at"], other["id"]) > (survivor["created_at"], survivor["id"])
        else (survivor, other)
    )
    values: dict[str, Any] = {}
    for name in fields_for(kind):
        if name in _TIMES:
            continue
        values[name] = older[name] if _empty(newer[name]) else newer[name]
    values["arrived_at"] = min(survivor["arrived_at"], other["arrived_at"])
    values["expected_departure_at"] = newer["expected_departure_at"]
    departures = (survivor["departed_at"], other["departed_at"])
    values["departed_at"] = None if None in departures else max(departures)
    return {name: value for name, value in values.items() if value != survivor[name]}


def _audit_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _fields(visit: Visit) -> dict[str, Any]:
    names = {*COMMON_FIELDS, *fields_for(visit.kind), "id", "created_at"}
    return {name: getattr(visit, name) for name in names}


# --- reading -----------------------------------------------------------------------------------


async def _visits(session: AsyncSession, ids: Iterable[int]) -> dict[int, Visit]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found = await session.scalars(
        select(Visit).where(Visit.id.in_(wanted)).options(joinedload(Visit.site))
    )
    return {v.id: v for v in found}


async def pairs_among(session: AsyncSession, visit_ids: Iterable[int]) -> list[Pair]:
    """The unresolved possible duplicates among these visits, with the visits they double.

    No audit of its own: the caller shows these visits and logs that it did.
    """
    ids = sorted(set(visit_ids))
    if not ids:
        return []
    marks = list(
        await session.execute(
            select(PossibleDuplicate.visit_id, PossibleDuplicate.duplicate_of_id)
            .where(PossibleDuplicate.visit_id.in_(ids))
            .order_by(PossibleDuplicate.visit_id)
        )
    )
    loaded = await _visits(session, [v for pair in marks for v in pair])
    return [Pair(loaded[dup], loaded[of]) for dup, of in marks if dup in loaded and of in loaded]


@dataclass(frozen=True)
class VisitDuplicates:
    """What a visit's page shows: the visit it may double, and the visits that may double it."""

    doubles: Visit | None
    doubled_by: list[Visit]


async def of_visit(db: Database, actor: Actor, visit_id: int) -> VisitDuplicates:
    """A visit's unresolved marks, both ways (part of its page: the page's view is audited)."""
    async with db.read() as session:
        visit = await scoped_visit(session, actor, visit_id, VIEW)
        mark = await session.get(PossibleDuplicate, visit.id)
        doubled_by_ids = list(
            await session.scalars(
                select(PossibleDuplicate.visit_id).where(
                    PossibleDuplicate.duplicate_of_id == visit.id
                )
            )
        )
        loaded = await _visits(
            session, [*doubled_by_ids, *([mark.duplicate_of_id] if mark else [])]
        )
    return VisitDuplicates(
        doubles=loaded.get(mark.duplicate_of_id) if mark else None,
        doubled_by=sorted(
            (loaded[i] for i in doubled_by_ids if i in loaded), key=lambda v: (v.arrived_at, v.id)
        ),
    )


async def survivor_of(db: Database, actor: Actor, merged_visit_id: int) -> int | None:
    """The visit a merged visit went into, if it is on one of the actor's sites."""
    if not actor.can(VIEW):
        return None
    stmt = select(VisitMerge.visit_id).where(VisitMerge.merged_visit_id == merged_visit_id)
    if actor.kind != "cli":
        stmt = stmt.where(VisitMerge.site_id.in_(sorted(actor.sites_for(VIEW))))
    async with db.read() as session:
        return await session.scalar(stmt)


def with_token_hash(digest: str) -> ColumnElement[bool]:
    """The visit a private link's hash stands for: its own, or, for the link of a visit that
    staff merged into another, the visit it went into."""
    went_into = (
        select(VisitMerge.visit_id).where(VisitMerge.private_token_hash == digest).scalar_subquery()
    )
    return or_(Visit.private_token_hash == digest, Visit.id == went_into)


# --- resolving ---------------------------------------------------------------------------------


async def _marked(session: AsyncSession, actor: Actor, visit_id: int) -> tuple[Visit, Visit]:
    """The possible duplicate (locked) and the open visit it doubles (locked), for a change."""
    duplicate = await scoped_visit(session, actor, visit_id, EDIT, lock=True)
    mark = await session.get(PossibleDuplicate, duplicate.id)
    if mark is None:
        raise DuplicateInvalid({"duplicate": FieldError(MSG_RESOLVED)})
    original = await scoped_visit(session, actor, mark.duplicate_of_id, EDIT, lock=True)
    return duplicate, original


async def merge(db: Database, actor: Actor, visit_id: int, *, now: datetime) -> Visit:
    """Merge the possible duplicate `visit_id` into the open visit it doubles; the survivor."""
    async with db.write() as session:
        duplicate, survivor = await _marked(session, actor, visit_id)
        if duplicate.kind != survivor.kind:
            raise DuplicateInvalid({"duplicate": FieldError(MSG_KINDS)})
        changes = merged_values(survivor.kind, _fields(survivor), _fields(duplicate))
        before = {name: _audit_value(getattr(survivor, name)) for name in changes}
        for name, value in changes.items():
            setattr(survivor, name, value)
        keys = visits.keys_of({n: getattr(survivor, n) for n in _KEYED})
        for name, value in keys.items():
            setattr(survivor, name, value)
        survivor.updated_at = now
        await session.flush()
        await _move(session, duplicate, survivor, now)
        await audit.record(
            session, actor, MERGED, at=now, site_id=survivor.site_id,
            object_type="visit", object_id=survivor.id, object_ids=[survivor.id, duplicate.id],
            details={"merged_visit_id": duplicate.id, "merged_reference": duplicate.reference},
            personal={"before": before,
                      "after": {name: _audit_value(value) for name, value in changes.items()}},
        )  # fmt: skip
    return survivor


# What the search and subject keys are made of (visits.keys_of).
_KEYED = ("kind", "guest_name", "residence", "vessel_name", "registration", "mmsi", "plate")


async def _move(session: AsyncSession, gone: Visit, survivor: Visit, now: datetime) -> None:
    """Everything that hangs on `gone` moves to `survivor`; then `gone` goes."""
    old, new = gone.id, survivor.id
    for table in (VisitNote, Observation):
        await session.execute(
            update(table)
            .where(table.visit_id == old)
            .values(visit_id=new)
            .execution_options(synchronize_session=False)
        )
    for link, other in ((flag_visit, "flag_id"), (legal_hold_visit, "hold_id")):
        mine = link.alias()
        await session.execute(
            insert(link).from_select(
                [other, "visit_id"],
                select(link.c[other], literal(new)).where(
                    link.c.visit_id == old,
                    ~exists().where(mine.c[other] == link.c[other], mine.c.visit_id == new),
                ),
            )
        )
    # Other marks on `gone` now point at the survivor (a mark on itself is no mark).
    await session.execute(
        delete(PossibleDuplicate).where(
            PossibleDuplicate.visit_id == new, PossibleDuplicate.duplicate_of_id == old
        )
    )
    await session.execute(
        update(PossibleDuplicate)
        .where(PossibleDuplicate.duplicate_of_id == old)
        .values(duplicate_of_id=new)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(VisitMerge)
        .where(VisitMerge.visit_id == old)
        .values(visit_id=new)
        .execution_options(synchronize_session=False)
    )
    # Its AIS movements are the survivor's evidence now (they would go with `gone`).
    await session.execute(
        update(AisMovement)
        .where(AisMovement.visit_id == old)
        .values(visit_id=new)
        .execution_options(synchronize_session=False)
    )
    # The personal values the audit keeps about `gone` are now the survivor's: erased with it.
    await session.execute(
        update(AuditDetail)
        .where(AuditDetail.object_type == "visit", AuditDetail.object_id == old)
        .values(object_id=new)
        .execution_options(synchronize_session=False)
    )
    session.add(
        VisitMerge(
            site_id=gone.site_id,
            visit_id=new,
            merged_visit_id=old,
            merged_reference=gone.reference,
            private_token_hash=gone.private_token_hash,
            at=now,
        )
    )
    session.expunge(gone)
    await session.execute(
        delete(Visit).where(Visit.id == old).execution_options(synchronize_session=False)
    )


def _reason(reason: str) -> str:
    text = reason if isinstance(reason, str) else ""
    cleaned = clean_text(text, MAX_REASON_LENGTH * 2, multiline=True)
    if not cleaned:
        raise DuplicateInvalid({"reason": FieldError(MSG_REASON)})
    if len(cleaned) > MAX_REASON_LENGTH:
        raise DuplicateInvalid({"reason": FieldError(MSG_TOO_LONG, {"max": MAX_REASON_LENGTH})})
    return cleaned


async def keep_both(
    db: Database, actor: Actor, visit_id: int, reason: str, *, now: datetime
) -> Visit:
    """Both visits stay, each counted: the mark goes, the reason stays in the audit."""
    cleaned = _reason(reason)
    async with db.write() as session:
        duplicate, original = await _marked(session, actor, visit_id)
        await session.execute(
            delete(PossibleDuplicate).where(PossibleDuplicate.visit_id == duplicate.id)
        )
        await audit.record(
            session, actor, KEPT, at=now, site_id=duplicate.site_id,
            object_type="visit", object_id=duplicate.id,
            object_ids=[duplicate.id, original.id],
            details={"duplicate_of": original.id}, personal={"reason": cleaned},
        )  # fmt: skip
    return duplicate


def involved(stmt_visit: Any = Visit) -> Any:
    """Visits in an unresolved pair, either side (the register's filter)."""
    return or_(
        exists().where(PossibleDuplicate.visit_id == stmt_visit.id),
        exists().where(PossibleDuplicate.duplicate_of_id == stmt_visit.id),
    )
