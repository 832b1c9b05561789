"""The hub's watchlist: keyed hashes of identifiers, their import, and matching visits silently.

The site never holds the list in plain text. The hub sends, for each boat or vehicle of
interest, the HMAC-SHA256 of its normalised identifier under a key shared with the site
(setting NIGHTREG_WATCHLIST_KEY). The site computes the same for every check-in and looks the
result up; a match raises a restricted `watchlist_hit` flag that only analysts see, and the
visitor's answer does not change.

The scheme (the hub must compute it exactly the same way):

    digest = hex(HMAC-SHA256(key as UTF-8, identifier as UTF-8)), 64 lowercase hex digits

where the identifier is the normalised value with its prefix, as in a visit's subject key
(nightreg.validation.subject_key):

- ``reg:<registration>``: upper case, accents folded, spaces and separators (- / . _ :)
  removed: "nl-123 ab" -> ``reg:NL123AB``;
- ``mmsi:<9 digits>``: spaces removed: "244 123 456" -> ``mmsi:244123456``;
- ``plate:<plate>``: as a registration: "12-abc-3" -> ``plate:12ABC3``.

A boat is matched by its registration and by its MMSI (a boat may give either), a vehicle by
its plate; persons are never matched. Worked example, with the key "hub-key" and the
registration "nl-123 ab":

    python3 -c "import hmac;print(hmac.new(b'hub-key',b'reg:NL123AB','sha256').hexdigest())"
    a2e6cc16d0d55d23377b6752b59f7606aae6d8b89bc837d27b8bee176960622c

`nightreg watchlist digest "nl-123 ab" --kind reg` prints the same, with the installation's
key, and shows the hub how a value is normalised.

The import file has one digest per line, or ``digest,expires_at`` (an ISO date or date and
time); blank lines and ``#`` comments are ignored. A date alone means the end of that day
(UTC); a time without a zone is UTC. Expired entries never match and are dropped on import.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Visit, WatchlistEntry
from nightreg.rules import watchlist_hit
from nightreg.rules.base import Finding
from nightreg.services import audit, flagging
from nightreg.services.access import CLI, Actor
from nightreg.validation import normalise_identifier

logger = logging.getLogger(__name__)

KINDS = ("reg", "mmsi", "plate")
# The words the flag's reason names the matching identifier by ("A %(identifier)s of …").
IDENTIFIER_NAMES = {"reg": N_("registration"), "mmsi": N_("MMSI"), "plate": N_("licence plate")}
HIT_SCORE = 90
# Digests per IN query: well below any driver's limit on bound parameters.
BATCH = 500

_DIGEST = re.compile(r"[0-9a-f]{64}")
_MMSI = re.compile(r"[0-9]{9}")


# --- the scheme ------------------------------------------------------------------------------


def identifier(kind: str, value: str | None) -> str:
    """The prefixed, normalised identifier ("reg:NL123AB"), or "" when nothing identifies."""
    if not value:
        return ""
    if kind == "mmsi":
        digits = "".join(value.split())
        return f"mmsi:{digits}" if _MMSI.fullmatch(digits) else ""
    if kind in ("reg", "plate"):
        number = normalise_identifier(value)
        return f"{kind}:{number}" if number else ""
    raise ValueError(f"unknown identifier kind: {kind!r}")


def identifiers_of(
    kind: str, registration: str | None, mmsi: str | None, plate: str | None
) -> list[str]:
    """What a visit is matched by: a boat's registration and MMSI, a vehicle's plate."""
    if kind == "vessel":
        found = [identifier("reg", registration), identifier("mmsi", mmsi)]
    elif kind == "vehicle":
        found = [identifier("plate", plate)]
    else:  # a person staying overnight is never on a list of boats and vehicles
        found = []
    return [i for i in found if i]


def digest(key: str, identifier: str) -> str:
    """HMAC-SHA256 of the identifier under the shared key, as 64 lowercase hex digits."""
    return hmac.new(key.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def identifier_name(ident: str) -> str:
    """ "registration", "MMSI" or "licence plate": how the flag's reason names it."""
    return IDENTIFIER_NAMES[ident.split(":", 1)[0]]


# --- import ----------------------------------------------------------------------------------


class WatchlistFileError(Exception):
    """Lines of an import file that cannot be read; nothing was imported."""

    def __init__(self, errors: Sequence[tuple[int, str]]) -> None:
        super().__init__(f"{len(errors)} bad line(s)")
        self.errors = list(errors)


@dataclass(frozen=True)
class ImportCounts:
    added: int = 0
    updated: int = 0
    removed: int = 0
    expired_dropped: int = 0


def parse_expiry(text: str) -> datetime:
    """An ISO date (the end of that day, UTC) or date and time (UTC unless it names a zone)."""
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    at = datetime.fromisoformat(text)  # raises ValueError for anything else
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def parse_file(lines: Iterable[str], default_expiry: datetime | None) -> dict[str, datetime]:
    """Digest -> expiry from an import file; raises WatchlistFileError listing every bad line."""
    entries: dict[str, datetime] = {}
    errors: list[tuple[int, str]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) > 2:
            errors.append((number, "expected a digest, or digest,expires_at"))
            continue
        value = fields[0].lower()
        if not _DIGEST.fullmatch(value):
            errors.append((number, "not a digest (64 hexadecimal characters)"))
            continue
        expiry = default_expiry
        if len(fields) == 2 and fields[1]:
            try:
                expiry = parse_expiry(fields[1])
            except ValueError:
                errors.append((number, f"not an ISO date or date and time: {fields[1][:40]!r}"))
                continue
        if expiry is None:
            errors.append((number, "no expiry: give digest,expires_at or --expires"))
            continue
        # The same digest twice: the later line wins, as it would in a second import.
        entries[value] = expiry
    if errors:
        raise WatchlistFileError(errors)
    return entries


def _chunks(items: Sequence[str], size: int = BATCH) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def import_entries(
    db: Database,
    entries: dict[str, datetime],
    *,
    now: datetime,
    list_ref: str = "",
    replace: bool = False,
    actor: Actor = CLI,
) -> ImportCounts:
    """Upsert the entries (new expiry for known digests); with `replace`, drop the rest.

    Entries whose expiry has passed, from the file or already stored, are dropped and counted
    as such rather than as added, updated or removed. Audited with counts only: the digests
    themselves never reach the audit trail.
    """
    # Longer than most: the upsert, the expiry sweep and the counts must share one transaction.
    list_ref = list_ref[:120]
    live = {d: at for d, at in entries.items() if at > now}
    async with db.write() as session:
        rows = await session.execute(select(WatchlistEntry.digest, WatchlistEntry.expires_at))
        stored = {row.digest: row.expires_at for row in rows}
        expired_stored = {d for d, at in stored.items() if at <= now and d not in live}
        expired_in_file = set(entries) - live.keys()
        dropped = (expired_stored | expired_in_file) & stored.keys()
        removed = (
            {d for d in stored if d not in entries and d not in expired_stored}
            if replace
            else set()
        )
        new = [d for d in live if d not in stored]
        known = [d for d in live if d in stored]
        if new:
            await session.execute(
                insert(WatchlistEntry),
                [
                    {"digest": d, "expires_at": live[d], "list_ref": list_ref, "imported_at": now}
                    for d in new
                ],
            )
        if known:
            # One executemany for all known digests rather than a statement each.
            table = cast(Table, WatchlistEntry.__table__)
            values: dict[str, Any] = {"expires_at": bindparam("new_expiry"), "imported_at": now}
            if list_ref:
                values["list_ref"] = list_ref
            await session.execute(
                update(table).where(table.c.digest == bindparam("known_digest")).values(values),
                [{"known_digest": d, "new_expiry": live[d]} for d in known],
            )
        for chunk in _chunks(sorted(dropped | removed)):
            await session.execute(delete(WatchlistEntry).where(WatchlistEntry.digest.in_(chunk)))
        counts = ImportCounts(
            added=len(new),
            updated=len(known),
            removed=len(removed),
            # Lines already past their expiry are dropped too, whether stored before or not.
            expired_dropped=len(expired_stored | expired_in_file),
        )
        await audit.record(
            session,
            actor,
            "watchlist_imported",
            at=now,
            object_type="watchlist",
            details={
                "added": counts.added,
                "updated": counts.updated,
                "removed": counts.removed,
                "expired_dropped": counts.expired_dropped,
            },
        )
    return counts


# --- matching --------------------------------------------------------------------------------


class VisitRow(Protocol):
    """What matching needs of a visit (a Visit, or a row of these columns)."""

    @property
    def id(self) -> int: ...
    @property
    def site_id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def registration(self) -> str | None: ...
    @property
    def mmsi(self) -> str | None: ...
    @property
    def plate(self) -> str | None: ...
    @property
    def arrived_at(self) -> datetime: ...


async def _live_digests(session: AsyncSession, digests: Sequence[str], now: datetime) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(sorted(set(digests))):
        found.update(
            await session.scalars(
                select(WatchlistEntry.digest).where(
                    WatchlistEntry.digest.in_(chunk), WatchlistEntry.expires_at > now
                )
            )
        )
    return found


async def _record_hit(
    session: AsyncSession,
    *,
    visit_id: int,
    site_id: int,
    ident: str,
    arrived_at: datetime,
    now: datetime,
) -> flagging.Recorded:
    finding = Finding(
        rule=watchlist_hit.CODE,
        subject=ident,
        visit_ids=(visit_id,),
        window_start=arrived_at,
        window_end=arrived_at,
        score=HIT_SCORE,
        params={"identifier": identifier_name(ident)},
    )
    return await flagging.record(session, finding, site_id=site_id, now=now)


async def check_visit(
    session: AsyncSession,
    *,
    visit_id: int,
    site_id: int,
    kind: str,
    registration: str | None,
    mmsi: str | None,
    plate: str | None,
    key: str,
    now: datetime,
    arrived_at: datetime | None = None,
) -> int | None:
    """Flag the visit if one of its identifiers is on the list; the flag's id, or None.

    Runs inside the caller's write transaction. Says only whether this visit matched: which
    entries exist, or how many, never leaves this function. `arrived_at` (the flag's window)
    is read from the visit when not given.
    """
    if not key:
        return None
    idents = identifiers_of(kind, registration, mmsi, plate)
    if not idents:
        return None
    by_digest = {digest(key, i): i for i in idents}
    live = await _live_digests(session, list(by_digest), now)
    hits = [i for d, i in by_digest.items() if d in live]
    if not hits:
        return None
    if arrived_at is None:
        arrived_at = await session.scalar(select(Visit.arrived_at).where(Visit.id == visit_id))
        if arrived_at is None:
            return None
    # A boat on the list by registration and MMSI is one hit; the first identifier names it.
    recorded = await _record_hit(
        session, visit_id=visit_id, site_id=site_id, ident=hits[0], arrived_at=arrived_at, now=now
    )
    return recorded.flag_id


async def check_visits(db: Database, visits: Sequence[VisitRow], key: str, now: datetime) -> int:
    """Match many visits at once (the scan): one IN query per ~500 digests, writes on hits.

    Returns the number of visits that were new evidence (a flag created or grown); a visit
    that is already evidence of its hit counts once, on the scan that first found it.
    """
    if not key or not visits:
        return 0
    wanted: list[tuple[VisitRow, dict[str, str]]] = []
    for visit in visits:
        idents = identifiers_of(visit.kind, visit.registration, visit.mmsi, visit.plate)
        if idents:
            wanted.append((visit, {digest(key, i): i for i in idents}))
    if not wanted:
        return 0
    async with db.read() as session:
        live = await _live_digests(session, [d for _, ds in wanted for d in ds], now)
    hits = [(v, [i for d, i in ds.items() if d in live]) for v, ds in wanted]
    hits = [(v, idents) for v, idents in hits if idents]
    if not hits:
        return 0
    new = 0
    async with db.write() as session:
        for visit, idents in hits:
            recorded = await _record_hit(
                session,
                visit_id=visit.id,
                site_id=visit.site_id,
                ident=idents[0],
                arrived_at=visit.arrived_at,
                now=now,
            )
            new += recorded.changed
    return new


_SCAN_COLUMNS = (
    Visit.id,
    Visit.site_id,
    Visit.kind,
    Visit.registration,
    Visit.mmsi,
    Visit.plate,
    Visit.arrived_at,
)


async def scan_visits(db: Database, *, since: datetime | None, key: str, now: datetime) -> int:
    """The scan's part: match boats and cars changed since `since` (all when None), in batches.

    Catches visits written other than through a check-in (walk-ins, imports, corrections).
    """
    if not key:
        return 0
    hits = 0
    after = 0
    while True:
        query = (
            select(*_SCAN_COLUMNS)
            .where(Visit.kind.in_(("vessel", "vehicle")), Visit.id > after)
            .order_by(Visit.id)
            .limit(BATCH)
        )
        if since is not None:
            query = query.where(Visit.updated_at >= since)
        async with db.read() as session:
            rows = list((await session.execute(query)).all())
        if not rows:
            return hits
        hits += await check_visits(db, rows, key, now)
        after = rows[-1].id


async def check_new_visit(db: Database, visit: VisitRow, key: str, now: datetime) -> None:
    """The check-in's part: match one new visit, and never let a failure reach the visitor.

    The lookup is a read; only a hit takes a write transaction, so that a configured
    watchlist does not cost every check-in a turn at the database's write lock.
    """
    if not key:
        return
    try:
        idents = identifiers_of(visit.kind, visit.registration, visit.mmsi, visit.plate)
        if not idents:
            return
        async with db.read() as session:
            live = await _live_digests(session, [digest(key, i) for i in idents], now)
        if not live:
            return
        async with db.write() as session:
            await check_visit(
                session,
                visit_id=visit.id,
                site_id=visit.site_id,
                kind=visit.kind,
                registration=visit.registration,
                mmsi=visit.mmsi,
                plate=visit.plate,
                key=key,
                now=now,
                arrived_at=visit.arrived_at,
            )
    except Exception:
        # The visitor is registered either way; the scan will try this visit again.
        logger.exception("watchlist check of visit %s failed", visit.id)
