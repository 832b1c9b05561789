"""The audit trail: append-only, each event chained to the one before by a SHA-256 hash.

Writing an event is part of the action it records: a change writes its event in the same
transaction, and a read of personal data writes its event before the data is handed out. If the
event cannot be written, the action fails with it; nothing is done unrecorded.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.models import AuditAnchor, AuditEvent
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


async def _last_hash(session: AsyncSession) -> str:
    """The hash the next event links to: the newest event's, or where the chain was cut."""
    last = await session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    if last is not None:
        return last
    # An empty table: a new installation, or the purge removed every event.
    anchor = await session.get(AuditAnchor, 1)
    return anchor.prev_hash if anchor is not None else GENESIS


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
    prev = await _last_hash(session)
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
    prev_hash = prev
    values = {**fields, "prev_hash": prev_hash, "hash": event_hash(prev_hash, fields)}
    # A Core insert: the unit of work's flush costs more than the event itself, and a scan
    # that raises a few hundred flags writes a few hundred events.
    event_id = await session.scalar(insert(AuditEvent).values(**values).returning(AuditEvent.id))
    return AuditEvent(id=event_id, **values)


async def record_many(
    session: AsyncSession, actor: Actor, events: Sequence[Mapping[str, Any]]
) -> None:
    """Append several events in one statement, chained in order (a scan's raised flags).

    Each event is a mapping of `record`'s keyword arguments (action, at, site_id, ...).
    """
    if not events:
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    prev_hash = await _last_hash(session)
    rows = []
    for event in events:
        fields: dict[str, Any] = {
            "at": event["at"],
            "actor": actor.label[:300],
            "address": actor.address[:64],
            "action": event["action"],
            "site_id": event.get("site_id"),
            "object_type": event.get("object_type", ""),
            "object_id": event.get("object_id"),
            "object_ids": _json(sorted(set(event.get("object_ids", ())))),
            "details": _json(dict(event.get("details") or {})),
        }
        digest = event_hash(prev_hash, fields)
        rows.append({**fields, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    await session.execute(insert(AuditEvent), rows)


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
    """Walk the chain from the first event; report the first event that does not fit.

    When the purge has removed the oldest events, the chain starts at its anchor: the first
    kept event must link to the hash of the last removed one (nightreg.services.retention).
    """
    async with db.read() as session:
        anchor = await session.get(AuditAnchor, 1)
    prev_hash = anchor.prev_hash if anchor is not None else GENESIS
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


@dataclass(frozen=True)
class EventQuery:
    actor: str = ""  # a substring of the actor ("jan@", "token:3")
    site_id: int | None = None
    action: str = ""
    date_from: datetime | None = None  # UTC bounds, inclusive from, exclusive to
    date_to: datetime | None = None
    before_id: int | None = None  # keyset cursor: events older than this one
    limit: int = 100


def _filtered(query: EventQuery) -> Select[AuditEvent]:
    stmt = select(AuditEvent)
    if query.actor:
        stmt = stmt.where(AuditEvent.actor.contains(query.actor, autoescape=True))
    if query.site_id is not None:
        stmt = stmt.where(AuditEvent.site_id == query.site_id)
    if query.action:
        stmt = stmt.where(AuditEvent.action == query.action)
    if query.date_from is not None:
        stmt = stmt.where(AuditEvent.at >= query.date_from)
    if query.date_to is not None:
        stmt = stmt.where(AuditEvent.at < query.date_to)
    return stmt


async def search_events(
    db: Database, actor: Actor, query: EventQuery, *, now: datetime
) -> tuple[list[AuditEvent], int | None]:
    """A page of events, newest first, and the cursor of the next page; viewing is audited."""
    actor.require("audit.view")
    limit = max(1, min(query.limit, 500))
    stmt = _filtered(query)
    if query.before_id is not None:
        stmt = stmt.where(AuditEvent.id < query.before_id)
    async with db.read() as session:
        rows = list(await session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    await log(db, actor, "audit_viewed", at=now, details=_query_details(query))
    return rows, (rows[-1].id if more and rows else None)


def _query_details(query: EventQuery) -> dict[str, Any]:
    return {
        key: value
        for key, value in dataclasses.asdict(query).items()
        if value not in (None, "") and key != "limit"
    }


EVENT_COLUMNS = (
    "id",
    "at",
    "actor",
    "address",
    "action",
    "site_id",
    "object_type",
    "object_id",
    "object_ids",
    "details",
    "prev_hash",
    "hash",
)


async def export_events(
    db: Database, actor: Actor, query: EventQuery, *, now: datetime
) -> AsyncIterator[bytes]:
    """The filtered trail as CSV (UTF-8 with BOM), oldest first, streamed in batches."""
    actor.require("audit.view")
    await log(db, actor, "audit_exported", at=now, details=_query_details(query))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(EVENT_COLUMNS)
    last_id = 0
    while True:
        async with db.read() as session:
            rows = list(
                await session.scalars(
                    _filtered(query)
                    .where(AuditEvent.id > last_id)
                    .order_by(AuditEvent.id)
                    .limit(2000)
                )
            )
        for event in rows:
            writer.writerow([_csv_cell(getattr(event, c)) for c in EVENT_COLUMNS])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < 2000:
            return
        last_id = rows[-1].id


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _utc_iso(value)
    text_value = str(value)
    # A spreadsheet must not run what an attacker typed into a sign-in form as a formula.
    return "'" + text_value if text_value[:1] in ("=", "+", "-", "@", "\t", "\r") else text_value
