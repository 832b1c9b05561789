"""The audit trail: append-only, each event chained to the one before by a SHA-256 hash.

Writing an event is part of the action it records: a change writes its event in the same
transaction, and a read of personal data writes its event before the data is handed out. If the
event cannot be written, the action fails with it; nothing is done unrecorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.models import AuditEvent
from nightreg.services.access import Actor

GENESIS = "0" * 64
# Any fixed number: the PostgreSQL advisory lock that makes appends to the chain take turns.
_CHAIN_LOCK = 0x4E52_4155  # "NRAU"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _utc_iso(at: datetime) -> str:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


def event_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash of one event: its own fields and the hash of the event before it."""
    canonical = _json(
        {
            "prev": prev_hash,
            "at": _utc_iso(fields["at"]),
            "actor": fields["actor"],
            "address": fields["address"],
            "action": fields["action"],
            "site_id": fields["site_id"],
            "object_type": fields["object_type"],
            "object_id": fields["object_id"],
            "object_ids": fields["object_ids"],
            "details": fields["details"],
        }
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    at: datetime,
    site_id: int | None = None,
    object_type: str = "",
    object_id: int | None = None,
    object_ids: Iterable[int] = (),
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event inside the caller's (write) transaction."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        # Two instances appending at once would both chain to the same predecessor.
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    # On SQLite the writer holds the database's only write lock (BEGIN IMMEDIATE) already.
    prev = await session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    fields: dict[str, Any] = {
        "at": at,
        "actor": actor.label[:300],
        "address": actor.address[:64],
        "action": action,
        "site_id": site_id,
        "object_type": object_type,
        "object_id": object_id,
        "object_ids": _json(sorted(set(object_ids))),
        "details": _json(dict(details or {})),
    }
    prev_hash = prev or GENESIS
    event = AuditEvent(**fields, prev_hash=prev_hash, hash=event_hash(prev_hash, fields))
    session.add(event)
    await session.flush()
    return event


async def log(db: Database, actor: Actor, action: str, *, at: datetime, **kwargs: Any) -> None:
    """Append one event in its own transaction (for reads: call before handing the data out)."""
    async with db.write() as session:
        await record(session, actor, action, at=at, **kwargs)


@dataclass(frozen=True)
class Verification:
    intact: bool
    checked: int
    broken_id: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.intact:
            return f"intact: {self.checked} events"
        return f"broken at event {self.broken_id}: {self.reason} ({self.checked} events checked)"


async def _events(db: Database, batch: int = 5000) -> AsyncIterator[AuditEvent]:
    last_id = 0
    while True:
        async with db.read() as session:
            rows = list(
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.id > last_id)
                    .order_by(AuditEvent.id)
                    .limit(batch)
                )
            )
        if not rows:
            return
        for row in rows:
            yield row
        last_id = rows[-1].id


async def verify(db: Database) -> Verification:
    """Walk the chain from the first event; report the first event that does not fit."""
    prev_hash = GENESIS
    checked = 0
    async for event in _events(db):
        if event.prev_hash != prev_hash:
            return Verification(False, checked, event.id, "does not link to the event before it")
        fields = {
            "at": event.at,
            "actor": event.actor,
            "address": event.address,
            "action": event.action,
            "site_id": event.site_id,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "object_ids": event.object_ids,
            "details": event.details,
        }
        if event_hash(prev_hash, fields) != event.hash:
            return Verification(False, checked, event.id, "its content was changed")
        prev_hash = event.hash
        checked += 1
    return Verification(True, checked)
