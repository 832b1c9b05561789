"""The purge's receipts, as the Retention page and the CLI read them: counts, nothing personal."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import AuditEvent
from nightreg.services.access import Actor, NotFound
from nightreg.services.holds import VIEW


async def receipt(db: Database, actor: Actor, event_id: int) -> dict[str, Any]:
    """One purge receipt; NotFound for any other audit event. Not audited: it names no one."""
    actor.require(VIEW)
    async with db.read() as session:
        event = await session.get(AuditEvent, event_id)
    if event is None or event.action != "purge_completed":
        raise NotFound(str(event_id))
    return {"id": event.id, "at": event.at, "actor": event.actor, **json.loads(event.details)}


async def receipts(db: Database, actor: Actor, limit: int = 20) -> list[dict[str, Any]]:
    """The latest purge receipts (they name no one, so reading them is not audited)."""
    actor.require(VIEW)
    async with db.read() as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "purge_completed")
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
        return [
            {"id": e.id, "at": e.at, "actor": e.actor, **json.loads(e.details or "{}")}
            for e in rows
        ]
