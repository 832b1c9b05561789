"""The register as staff keep it: its permissions, errors, scope, and one visit's page.

The register's jobs live beside it: tonight (the board), register_search (the register's
pages), walk_in (a visit entered by staff or the API), corrections (corrections, check-out,
notes) and police_print. Every function takes the actor and checks both its role
(AccessDenied) and its sites (NotFound: a visit or site outside the actor's scope looks like no
visit at all). Reads write their audit event before the data is handed out; changes write
theirs in the same transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from nightreg.clock import local_midnight
from nightreg.db import Database
from nightreg.models import AuditEvent, Site, Visit, VisitMerge, VisitNote
from nightreg.services import audit
from nightreg.services.access import AccessDenied, Actor, NotFound
from nightreg.validation import FieldError, Invalid

VIEW = "register.view"
EDIT = "register.edit"
EXPORT = "register.export"


class VisitInvalid(Invalid):
    """What was submitted for a visit does not validate: errors by field name."""


class QueryInvalid(Invalid):
    """A register query with a value out of range (limit, cursor, filter or dates).

    One field at a time; its message is plain English (the API's answer), not a msgid.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__({field: FieldError(message)})
        self.args = (f"{field}: {message}",)
        self.field = field
        self.message = message


# --- scope -------------------------------------------------------------------------------


async def scoped_visit(
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


def site_tz(site: Site) -> ZoneInfo:
    return ZoneInfo(site.timezone)


def period(
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


# --- one visit ---------------------------------------------------------------------------


async def get_visit(db: Database, actor: Actor, visit_id: int, *, now: datetime) -> Visit:
    """One visit with its site, for someone who may view the register of that site."""
    async with db.read() as session:
        visit = await scoped_visit(session, actor, visit_id, VIEW)
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
) -> list[audit.ShownEvent]:
    """What happened to a visit, oldest first: created, corrected, checked out, notes; with
    the history of the visits merged into it (nightreg.services.duplicates).

    Views are left out unless asked for: every opening of the page would otherwise add a line
    to the page. (The audit trail itself keeps them.)
    """
    async with db.read() as session:
        visit = await scoped_visit(session, actor, visit_id, VIEW)
        merged = select(VisitMerge.merged_visit_id).where(VisitMerge.visit_id == visit.id)
        stmt = select(AuditEvent).where(
            AuditEvent.object_type == "visit",
            or_(AuditEvent.object_id == visit.id, AuditEvent.object_id.in_(merged)),
        )
        if not include_views:
            stmt = stmt.where(AuditEvent.action != "visit_viewed")
        events = list(await session.scalars(stmt.order_by(AuditEvent.id)))
        # Before and after of a correction live in the events' detail records: staff of the
        # visit's site see them here, as long as the visit itself is there.
        return await audit.shown(session, events, with_details=True)


async def visit_notes(db: Database, actor: Actor, visit_id: int) -> list[VisitNote]:
    async with db.read() as session:
        visit = await scoped_visit(session, actor, visit_id, VIEW)
        return list(
            await session.scalars(
                select(VisitNote)
                .where(VisitNote.visit_id == visit.id)
                .order_by(VisitNote.at, VisitNote.id)
            )
        )
