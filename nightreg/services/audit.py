"""The audit trail: append-only, each event chained to the one before by a keyed hash.

Writing an event is part of the action it records: a change writes its event in the same
transaction, and a read of personal data writes its event before the data is handed out. If the
event cannot be written, the action fails with it; nothing is done unrecorded.

The chain is keyed (HMAC-SHA256 under the audit key, which lives outside the database), so that
whoever can write the database cannot recompute it after an edit; signed checkpoints
(nightreg.services.audit_checkpoints) catch a cut-off tail. The personal values of an event
(PERSONAL below) go to its detail record (AuditDetail), which is erased with what it describes;
the event keeps a keyed hash of it.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, insert, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.models import AuditAnchor, AuditDetail, AuditEvent, Flag
from nightreg.security import derive_key
from nightreg.services.access import Actor

GENESIS = "0" * 64
# Any fixed number: the PostgreSQL advisory lock that makes appends to the chain take turns.
_CHAIN_LOCK = 0x4E52_4155  # "NRAU"
# The key id of the events written before 0009 with the keyless formula.
LEGACY_KEY_ID = "sha256-legacy"

# The personal values of each action's details: they go to the detail record, the rest (ids,
# counts, codes) stays in the chained event. A caller may name more with `personal=`.
# A staff account's own e-mail (user and two-factor events) stays chained: the actor names it
# anyway, and it is not register data; the e-mail typed at a failed sign-in is anyone's text.
PERSONAL: dict[str, frozenset[str]] = {
    action: frozenset(keys)
    for action, keys in {
        "visit_corrected": ("before", "after", "reason"),
        "visit_checked_out": ("before", "after"),
        "visit_extended": ("before", "after"),
        "flag_reviewed": ("reason",),
        "observation_added": ("location",),
        "round_marked_seen": ("vessel_name", "berth"),
        "sign_in_failed": ("email",),
        "register_viewed": ("filters",),
        "flags_viewed": ("filters",),
        "subject_searched": ("q",),
        "subject_exported": ("q",),
        "subject_erased": ("q", "reason"),
        "subject_erase_refused": ("q", "reason"),
        "hold_placed": ("case_reference", "reason", "subject_key"),
        "hold_released": ("case_reference", "reason"),
    }.items()
}
# Searches and what was typed at a sign-in: their detail records have a shorter period of
# their own (Settings.retention_audit_search_days) instead of following an object.
SEARCH_ACTIONS = frozenset(
    {
        "register_viewed",
        "flags_viewed",
        "subject_searched",
        "subject_exported",
        "subject_erased",
        "subject_erase_refused",
        "sign_in_failed",
    }
)
# Objects whose detail records are erased with them (the purge, an early erasure).
DETAIL_OBJECTS = ("visit", "flag", "observation")


# --- keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keyring:
    """The audit key events are written with, and the old ones they still verify under."""

    current_id: str
    keys: Mapping[str, bytes] = field(repr=False)

    @classmethod
    def of(cls, current: str, old: Iterable[str] = ()) -> Keyring:
        """From key material: NIGHTREG_AUDIT_KEY (or the secret key) and the old values."""
        keys: dict[str, bytes] = {}
        for material in (*old, current):
            key = derive_key(material, "audit-chain")
            keys[key_id_of(key)] = key
        return cls(current_id=key_id_of(derive_key(current, "audit-chain")), keys=keys)

    @property
    def current(self) -> bytes:
        return self.keys[self.current_id]

    def checkpoint_key(self, key_id: str) -> bytes | None:
        """The key that signs checkpoints: its own, derived from the chain's key."""
        key = self.keys.get(key_id)
        return None if key is None else hmac.new(key, b"checkpoint", hashlib.sha256).digest()


def key_id_of(key: bytes) -> str:
    """A key's public name: a fingerprint, so that a new key gets a new id by itself."""
    return "hk-" + hashlib.sha256(b"nightreg audit key id" + key).hexdigest()[:12]


def keyring_of(settings: Any) -> Keyring:
    """The keyring of an installation's settings (nightreg.settings.Settings)."""
    return Keyring.of(settings.audit_key or settings.secret_key, settings.audit_keys_old)


_keyring: Keyring | None = None


def use_keyring(keyring: Keyring) -> None:
    """Set the process's audit keys (the app, the CLI and the scheduler do at start)."""
    global _keyring
    _keyring = keyring


def current_keyring() -> Keyring:
    if _keyring is None:
        raise RuntimeError("the audit keys are not set: call audit.use_keyring at start")
    return _keyring


# --- hashing -------------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _utc_iso(at: datetime) -> str:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


def _canonical(prev_hash: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {
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


def event_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The keyless hash of the events written before 0009 (key id "sha256-legacy")."""
    return hashlib.sha256(_json(_canonical(prev_hash, fields)).encode()).hexdigest()


def keyed_hash(key: bytes, key_id: str, prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash of one event: HMAC-SHA256 of its fields, its detail's hash and the one before."""
    canonical = {
        **_canonical(prev_hash, fields),
        "detail_hash": fields["detail_hash"],
        "key_id": key_id,
    }
    return hmac.new(key, _json(canonical).encode(), hashlib.sha256).hexdigest()


def detail_hash(key: bytes, body: str) -> str:
    """What the event keeps of its detail record: a keyed hash (a guessed value cannot be
    checked against it without the key)."""
    return hmac.new(key, b"detail:" + body.encode(), hashlib.sha256).hexdigest()


def _event_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at,
        "actor": event.actor,
        "address": event.address,
        "action": event.action,
        "site_id": event.site_id,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_ids": event.object_ids,
        "details": event.details,
        "detail_hash": event.detail_hash,
    }


# --- writing -------------------------------------------------------------------------------


async def _last_hash(session: AsyncSession) -> str:
    """The hash the next event links to: the newest event's, or where the chain was cut."""
    last = await session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    if last is not None:
        return last
    # An empty table: a new installation, or the purge removed every event.
    anchor = await session.get(AuditAnchor, 1)
    return anchor.prev_hash if anchor is not None else GENESIS


def _split(
    action: str, details: Mapping[str, Any] | None, personal: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The chained details and the detail record's body of one event."""
    chained = dict(details or {})
    private = {key: chained.pop(key) for key in PERSONAL.get(action, ()) if key in chained}
    private.update(personal or {})
    return chained, private


def _detail_kind(action: str, object_type: str, object_id: int | None) -> str:
    if action in SEARCH_ACTIONS:
        return "search"
    if object_type in DETAIL_OBJECTS and object_id is not None:
        return "object"
    return "event"


def _prepare(
    keyring: Keyring, actor: Actor, prev_hash: str, event: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One event's row (chained to prev_hash) and its detail row, if it has personal values."""
    action = event["action"]
    chained, private = _split(action, event.get("details"), event.get("personal"))
    body = _json(private) if private else None
    object_type = event.get("object_type", "")
    object_id = event.get("object_id")
    fields: dict[str, Any] = {
        "at": event["at"],
        "actor": actor.label[:300],
        "address": actor.address[:64],
        "action": action,
        "site_id": event.get("site_id"),
        "object_type": object_type,
        "object_id": object_id,
        "object_ids": _json(sorted(set(event.get("object_ids", ())))),
        "details": _json(chained),
        "detail_hash": detail_hash(keyring.current, body) if body is not None else "",
    }
    digest = keyed_hash(keyring.current, keyring.current_id, prev_hash, fields)
    row = {**fields, "prev_hash": prev_hash, "hash": digest, "key_id": keyring.current_id}
    detail = None
    if body is not None:
        detail = {
            "at": event["at"],
            "kind": _detail_kind(action, object_type, object_id),
            "object_type": object_type,
            "object_id": object_id,
            "body": body,
        }
    return row, detail


async def _restricted(session: AsyncSession, events: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Which events are about a restricted (watchlist) flag or name a restricted rule: marked
    when written, they stay the auditor's after the flag is purged (issue 17)."""
    rules = set(_restricted_rules())
    flag_ids = {
        event["object_id"]
        for event in events
        if event.get("object_type") == "flag" and event.get("object_id") is not None
    }
    restricted_flags: set[int] = set()
    if flag_ids:
        restricted_flags = set(
            await session.scalars(
                select(Flag.id).where(Flag.id.in_(flag_ids), Flag.restricted.is_(true()))
            )
        )
    return [
        (event.get("details") or {}).get("rule") in rules
        or (event.get("object_type") == "flag" and event.get("object_id") in restricted_flags)
        for event in events
    ]


async def _lock_chain(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Two instances appending at once would both chain to the same predecessor.
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    # On SQLite the writer holds the database's only write lock (BEGIN IMMEDIATE) already.


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
    personal: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event inside the caller's (write) transaction.

    `details` keys named in PERSONAL for the action, and everything in `personal`, go to the
    event's detail record; the rest is chained.
    """
    keyring = current_keyring()
    event = {
        "action": action, "at": at, "site_id": site_id, "object_type": object_type,
        "object_id": object_id, "object_ids": object_ids, "details": details,
        "personal": personal,
    }  # fmt: skip
    (restricted,) = await _restricted(session, [event])
    await _lock_chain(session)
    prev = await _last_hash(session)
    values, detail = _prepare(keyring, actor, prev, event)
    values["restricted"] = restricted
    # A Core insert: the unit of work's flush costs more than the event itself, and a scan
    # that raises a few hundred flags writes a few hundred events.
    event_id = await session.scalar(insert(AuditEvent).values(**values).returning(AuditEvent.id))
    if detail is not None:
        await session.execute(insert(AuditDetail).values(event_id=event_id, **detail))
    return AuditEvent(id=event_id, **values)


async def record_many(
    session: AsyncSession, actor: Actor, events: Sequence[Mapping[str, Any]]
) -> None:
    """Append several events in one statement, chained in order (a scan's raised flags).

    Each event is a mapping of `record`'s keyword arguments (action, at, site_id, ...).
    """
    if not events:
        return
    keyring = current_keyring()
    marks = await _restricted(session, events)
    await _lock_chain(session)
    prev_hash = await _last_hash(session)
    rows, details = [], []
    for event, restricted in zip(events, marks, strict=True):
        row, detail = _prepare(keyring, actor, prev_hash, event)
        row["restricted"] = restricted
        rows.append(row)
        details.append(detail)
        prev_hash = row["hash"]
    if not any(details):
        await session.execute(insert(AuditEvent), rows)
        return
    ids = list(
        await session.scalars(
            insert(AuditEvent).returning(AuditEvent.id, sort_by_parameter_order=True), rows
        )
    )
    await session.execute(
        insert(AuditDetail),
        [{"event_id": i, **d} for i, d in zip(ids, details, strict=True) if d is not None],
    )


async def log(db: Database, actor: Actor, action: str, *, at: datetime, **kwargs: Any) -> None:
    """Append one event in its own transaction (for reads: call before handing the data out)."""
    async with db.write() as session:
        await record(session, actor, action, at=at, **kwargs)


# --- erasing details -----------------------------------------------------------------------


def erasure_name(what: str, now: datetime) -> str:
    """How a detail record names what erased it: "purge <time>" (the purge's receipt has that
    time), "subject_erased <time>" (the erasure's event)."""
    return f"{what} {_utc_iso(now)}"


async def erase_details(session: AsyncSession, where: Any, *, by: str, now: datetime) -> int:
    """Erase the bodies of the detail records matching `where`; how many. The rows stay, so
    that verification can tell an erased detail from a removed one, and by what."""
    result = await session.execute(
        update(AuditDetail)
        .where(where, AuditDetail.body.is_not(None))
        .values(body=None, erased_at=now, erased_by=by[:60])
        .returning(AuditDetail.event_id)
    )
    return len(result.all())


async def erase_details_of(
    session: AsyncSession, object_type: str, ids: Iterable[int], *, by: str, now: datetime
) -> int:
    """Erase the detail records about these visits or flags (an early erasure)."""
    id_list = sorted(set(ids))
    if not id_list:
        return 0
    return await erase_details(
        session,
        (AuditDetail.object_type == object_type) & AuditDetail.object_id.in_(id_list),
        by=by,
        now=now,
    )


# --- verifying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    intact: bool
    checked: int
    broken_id: int | None = None
    reason: str = ""
    # Detail records erased (purge, erasure, period), by what erased them.
    erased: Mapping[str, int] = field(default_factory=dict)
    checkpoint: str = ""  # what the trail was compared with, or why it could not be

    def __str__(self) -> str:
        if self.intact:
            text_ = f"intact: {self.checked} events"
        else:
            text_ = (
                f"broken at event {self.broken_id}: {self.reason} ({self.checked} events checked)"
                if self.broken_id is not None
                else f"broken: {self.reason} ({self.checked} events checked)"
            )
        if self.erased:
            text_ += "; erased details: " + ", ".join(
                f"{count} by {by}" for by, count in sorted(self.erased.items())
            )
        if self.checkpoint:
            text_ += f"; {self.checkpoint}"
        return text_


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


async def _details(db: Database, first: int, last: int) -> dict[int, AuditDetail]:
    async with db.read() as session:
        rows = await session.scalars(
            select(AuditDetail).where(AuditDetail.event_id.between(first, last))
        )
        return {row.event_id: row for row in rows}


async def verify_chain(db: Database, keyring: Keyring | None = None) -> Verification:
    """Walk the chain from the first event; report the first event that does not fit.

    When the purge has removed the oldest events, the chain starts at its anchor: the first
    kept event must link to the hash of the last removed one (nightreg.services.retention).
    Events after the anchor's keyless_through_id must carry a known key's HMAC; a detail
    record must match the event's hash of it unless it was erased.
    """
    keyring = keyring or current_keyring()
    async with db.read() as session:
        anchor = await session.get(AuditAnchor, 1)
    prev_hash = anchor.prev_hash if anchor is not None else GENESIS
    keyless_through = anchor.keyless_through_id if anchor is not None else 0
    checked = 0
    erased: dict[str, int] = {}
    batch: list[AuditEvent] = []

    async def check(events: list[AuditEvent]) -> Verification | None:
        nonlocal prev_hash, checked
        details = await _details(db, events[0].id, events[-1].id)
        for event in events:
            if event.prev_hash != prev_hash:
                return Verification(
                    False, checked, event.id, "does not link to the event before it"
                )
            problem = _check_event(keyring, event, prev_hash, keyless_through)
            if problem is None:
                problem = _check_detail(keyring, event, details.get(event.id), erased)
            if problem:
                return Verification(False, checked, event.id, problem)
            prev_hash = event.hash
            checked += 1
        return None

    async for event in _events(db):
        batch.append(event)
        if len(batch) >= 5000:
            if (bad := await check(batch)) is not None:
                return dataclasses.replace(bad, erased=erased)
            batch = []
    if batch and (bad := await check(batch)) is not None:
        return dataclasses.replace(bad, erased=erased)
    return Verification(True, checked, erased=erased)


def _check_event(
    keyring: Keyring, event: AuditEvent, prev_hash: str, keyless_through: int
) -> str | None:
    fields = _event_fields(event)
    if event.key_id == LEGACY_KEY_ID:
        if event.id > keyless_through:
            return "its hash is keyless, but it was written after the chain became keyed"
        expected = event_hash(prev_hash, fields)
    else:
        key = keyring.keys.get(event.key_id)
        if key is None:
            return f"its key {event.key_id} is unknown (NIGHTREG_AUDIT_KEYS_OLD)"
        expected = keyed_hash(key, event.key_id, prev_hash, fields)
    return None if hmac.compare_digest(expected, event.hash) else "its content was changed"


def _check_detail(
    keyring: Keyring, event: AuditEvent, detail: AuditDetail | None, erased: dict[str, int]
) -> str | None:
    if not event.detail_hash:
        return "it has a detail record it does not name" if detail is not None else None
    if detail is None:
        return "its detail record was removed"
    if detail.body is None:
        erased[detail.erased_by or "?"] = erased.get(detail.erased_by or "?", 0) + 1
        return None
    key = keyring.keys.get(event.key_id)
    if key is None or not hmac.compare_digest(detail_hash(key, detail.body), event.detail_hash):
        return "its detail record was changed"
    return None


async def verify(db: Database, keyring: Keyring | None = None) -> Verification:
    """The chain alone (nightreg.services.audit_checkpoints.verify adds the checkpoint)."""
    return await verify_chain(db, keyring)


async def head(db: Database) -> tuple[int, str, int, int]:
    """The chain's head: the newest event's id and hash, how many events it ever had
    (kept and purged), and the anchor's keyless_through_id."""
    async with db.read() as session:
        return await head_in(session)


async def head_in(session: AsyncSession) -> tuple[int, str, int, int]:
    """`head` inside the caller's transaction (a signal's checkpoint is taken in the one that
    queues it). It waits for the chain's turn: on PostgreSQL each statement sees what was
    committed when it began, and an append between them would make the count and the head
    disagree."""
    await _lock_chain(session)
    anchor = await session.get(AuditAnchor, 1)
    row = (
        await session.execute(
            select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
        )
    ).first()
    kept = await session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    removed = anchor.removed_count if anchor is not None else 0
    keyless = anchor.keyless_through_id if anchor is not None else 0
    if row is None:
        through = anchor.removed_through_id if anchor is not None else 0
        return through, (anchor.prev_hash if anchor is not None else GENESIS), removed, keyless
    return row[0], row[1], kept + removed, keyless


async def count_through(db: Database, event_id: int) -> tuple[int, str | None, AuditAnchor | None]:
    """How many events the chain had up to `event_id` (kept and purged), and that event's hash."""
    async with db.read() as session:
        anchor = await session.get(AuditAnchor, 1)
        kept = (
            await session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.id <= event_id)
            )
            or 0
        )
        found = await session.scalar(select(AuditEvent.hash).where(AuditEvent.id == event_id))
    return kept + (anchor.removed_count if anchor is not None else 0), found, anchor


@dataclass(frozen=True)
class EventQuery:
    actor: str = ""  # a substring of the actor ("jan@", "token:3")
    site_id: int | None = None
    action: str = ""
    date_from: datetime | None = None  # UTC bounds, inclusive from, exclusive to
    date_to: datetime | None = None
    before_id: int | None = None  # keyset cursor: events older than this one
    limit: int = 100


# --- who reads what ------------------------------------------------------------------------

# Events without a site that an admin may read: sign-ins, accounts, tokens, the installation's
# settings and jobs; never one about a register (a subject search over all sites, a hold
# without a site), which only the auditor reads.
ADMIN_UNSITED = frozenset(
    {
        "sign_in", "sign_in_failed", "sign_out", "password_changed", "password_reset_issued",
        "password_reset_used", "user_created", "user_changed", "site_created", "site_changed",
        "point_created", "point_changed", "point_rotated", "token_created", "token_revoked",
        "two_factor_enabled", "two_factor_disabled", "two_factor_reset", "recovery_code_used",
        "job_run_requested", "audit_viewed", "audit_exported", "purge_completed",
        "retention_policy_changed", "agreement_created", "agreement_ended",
        "agreement_changed",
    }
)  # fmt: skip
# The hub's watchlist: its uploads, and every event about a restricted flag, are the
# auditor's only (admins never learn who is on it; DESIGN §5).
WATCHLIST_ACTIONS = frozenset({"watchlist_imported"})


def reads_all(actor: Actor) -> bool:
    """The auditor (and the operator's CLI) reads every event, with its detail record; an
    admin reads those of their sites without the details (docs/privacy.md)."""
    return actor.kind == "cli" or actor.role == "auditor"


def _restricted_rules() -> list[str]:
    from nightreg.rules import RULES

    return sorted(code for code, rule in RULES.items() if rule.restricted)


def _readable(actor: Actor) -> ColumnElement[bool]:
    """The WHERE clause of what an actor may read of the trail."""
    if reads_all(actor):
        return true()
    sites = sorted(actor.sites_for("audit.view"))
    on_my_sites = AuditEvent.site_id.in_(sites) if sites else false()
    unsited = AuditEvent.site_id.is_(None) & AuditEvent.action.in_(sorted(ADMIN_UNSITED))
    clause = (on_my_sites | unsited) & AuditEvent.action.not_in(sorted(WATCHLIST_ACTIONS))
    # Marked when written (`_restricted`; migration 0015 marked the older ones): not looked
    # up in the flags, which the purge removes.
    return clause & AuditEvent.restricted.is_(false())


@dataclass(frozen=True)
class ShownEvent:
    """An event as a page or an export shows it: its chained fields, and its detail record's
    values when the reader may see them (`details` then holds both, merged)."""

    id: int
    at: datetime
    actor: str
    address: str
    action: str
    site_id: int | None
    object_type: str
    object_id: int | None
    object_ids: str
    details: str
    prev_hash: str
    hash: str
    key_id: str
    personal: str = ""  # the detail record's JSON, "" without one, "erased (...)" once erased


async def shown(
    session: AsyncSession, events: Sequence[AuditEvent], *, with_details: bool
) -> list[ShownEvent]:
    """Events with their detail records merged in (or left out)."""
    records: dict[int, AuditDetail] = {}
    if with_details and events:
        ids = [e.id for e in events if e.detail_hash]
        if ids:
            rows = await session.scalars(select(AuditDetail).where(AuditDetail.event_id.in_(ids)))
            records = {row.event_id: row for row in rows}
    out = []
    for event in events:
        details, personal = event.details, ""
        record_ = records.get(event.id)
        if record_ is not None and record_.body is not None:
            personal = record_.body
            merged = {**json.loads(event.details or "{}"), **json.loads(record_.body)}
            details = _json(merged)
        elif record_ is not None:
            personal = f"erased ({record_.erased_by})"
        out.append(
            ShownEvent(
                id=event.id, at=event.at, actor=event.actor, address=event.address,
                action=event.action, site_id=event.site_id, object_type=event.object_type,
                object_id=event.object_id, object_ids=event.object_ids, details=details,
                prev_hash=event.prev_hash, hash=event.hash, key_id=event.key_id,
                personal=personal,
            )
        )  # fmt: skip
    return out


def _filtered(query: EventQuery, actor: Actor) -> Select[AuditEvent]:
    stmt = select(AuditEvent).where(_readable(actor))
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
) -> tuple[list[ShownEvent], int | None]:
    """A page of events, newest first, and the cursor of the next page; viewing is audited."""
    actor.require("audit.view")
    limit = max(1, min(query.limit, 500))
    stmt = _filtered(query, actor)
    if query.before_id is not None:
        stmt = stmt.where(AuditEvent.id < query.before_id)
    async with db.read() as session:
        rows = list(await session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        events = await shown(session, rows, with_details=reads_all(actor))
    await log(db, actor, "audit_viewed", at=now, details=_query_details(query))
    return events, (rows[-1].id if more and rows else None)


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
    "key_id",
    "personal",
)


async def export_events(
    db: Database, actor: Actor, query: EventQuery, *, now: datetime
) -> AsyncIterator[bytes]:
    """The filtered trail as CSV (UTF-8 with BOM), oldest first, streamed in batches.

    `details` holds the chained details; `personal` the detail record (for the auditor).
    """
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
                    _filtered(query, actor)
                    .where(AuditEvent.id > last_id)
                    .order_by(AuditEvent.id)
                    .limit(2000)
                )
            )
            events = await shown(session, rows, with_details=reads_all(actor))
        for event, row in zip(events, rows, strict=True):
            values = {**dataclasses.asdict(event), "details": row.details}
            writer.writerow([_csv_cell(values[c]) for c in EVENT_COLUMNS])
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
