"""Export a site's flags with their evidence visits as CSV or JSON, for park security.

A flag is in a period (local dates, both inclusive) when its window overlaps the period or it
was updated (raised, grown, reviewed) within it. CSV has one row per flag and evidence visit (a
flag without visits, such as an observation at a place, has one row with the visit cells
empty); JSON has one object per flag with a "visits" array. Times carry the site's local offset.
CSV is UTF-8 with a BOM and escapes spreadsheet formulas as the register export does
(nightreg.services.transfer.escape_cell).

Scope: the site must be one where the actor holds flags.export; evidence visits on sites the
actor does not hold it on are left out. Restricted flags (watchlist hits) are exported only to
analysts and the CLI, as they are shown only to them.

Audit: one `flags_exported` event before the first byte, with the period, status, format, count
and the flag ids. The ids are read once, before that event, and the export holds exactly those
flags: they are streamed in batches of FLAG_BATCH_SIZE by id, each batch its own short read (a
flag reviewed while the export runs shows its old or its new status).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, false, or_, select

from nightreg.clock import local_midnight
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Flag, Site, Visit, flag_visit
from nightreg.services import audit
from nightreg.services.access import Actor
from nightreg.services.sites import scoped_site
from nightreg.services.transfer import MSG_FORMAT, MSG_PERIOD, ExportInvalid, escape_cell
from nightreg.vocabulary import FLAG_STATUSES

PERMISSION = "flags.export"
FORMATS = ("csv", "json")
STATUSES = FLAG_STATUSES
FLAG_BATCH_SIZE = 500

FLAG_COLUMNS: tuple[str, ...] = (
    "flag_id", "rule", "reason", "score", "status", "window_start", "window_end", "created_at",
    "updated_at", "reviewed_by", "review_reason",
)  # fmt: skip
# The evidence visit's fields, by their names in the register.
VISIT_FIELDS: tuple[str, ...] = (
    "reference", "kind", "arrived_at", "departed_at", "guest_name", "residence", "country",
    "vessel_name", "registration", "mmsi", "vessel_type", "plate", "plate_country", "company",
    "unit", "berth", "persons",
)  # fmt: skip
# In CSV, the visit's reference and kind are named apart from the flag's columns.
CSV_COLUMNS: tuple[str, ...] = FLAG_COLUMNS + tuple(
    f"visit_{name}" if name in ("reference", "kind") else name for name in VISIT_FIELDS
)
_FLAG_TIMES = ("window_start", "window_end", "created_at", "updated_at")
_VISIT_TIMES = ("arrived_at", "departed_at")

MSG_STATUS = N_("Please choose a status from the list.")


def sees_restricted(actor: Actor) -> bool:
    """Watchlist hits leave the system only for analysts and the operator at the shell."""
    return actor.kind == "cli" or actor.role == "analyst"


def export_filename(
    site_slug: str, date_from: date | None, date_to: date | None, status: str | None, fmt: str
) -> str:
    period = "-".join(d.isoformat() for d in (date_from, date_to) if d is not None) or "all"
    return f"flags-{site_slug}-{period}{'-' + status if status else ''}.{fmt}"


def _where(
    actor: Actor,
    site_id: int,
    tz: ZoneInfo,
    date_from: date | None,
    date_to: date | None,
    status: str | None,
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [Flag.site_id == site_id]
    if status is not None:
        clauses.append(Flag.status == status)
    if not sees_restricted(actor):
        clauses.append(Flag.restricted.is_(false()))
    start = local_midnight(date_from, tz) if date_from else None
    end = local_midnight(date_to + timedelta(days=1), tz) if date_to else None
    if start is not None or end is not None:
        overlaps: list[ColumnElement[bool]] = []
        updated: list[ColumnElement[bool]] = []
        if start is not None:
            overlaps.append(Flag.window_end >= start)
            updated.append(Flag.updated_at >= start)
        if end is not None:
            overlaps.append(Flag.window_start < end)
            updated.append(Flag.updated_at < end)
        clauses.append(or_(and_(*overlaps), and_(*updated)))
    return clauses


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")


def _flag_record(flag: Flag, tz: ZoneInfo) -> dict[str, Any]:
    record: dict[str, Any] = {
        "flag_id": flag.id,
        "rule": flag.rule,
        "reason": flag.reason,
        "score": flag.score,
        "status": flag.status,
        "reviewed_by": flag.reviewed_by,
        "review_reason": flag.review_reason,
    }
    for name in _FLAG_TIMES:
        record[name] = _iso(getattr(flag, name), tz)
    return {name: record[name] for name in FLAG_COLUMNS}


def _visit_record(visit: Visit, tz: ZoneInfo) -> dict[str, Any]:
    return {
        name: _iso(getattr(visit, name), tz) if name in _VISIT_TIMES else getattr(visit, name)
        for name in VISIT_FIELDS
    }


async def _batch(
    db: Database, ids: Sequence[int], visible_sites: frozenset[int] | None
) -> list[tuple[Flag, list[Visit]]]:
    """The flags with these ids, by id, each with its evidence visits the actor may see."""
    async with db.read() as session:
        flags = list(await session.scalars(select(Flag).where(Flag.id.in_(ids)).order_by(Flag.id)))
        stmt = (
            select(flag_visit.c.flag_id, Visit)
            .join(Visit, Visit.id == flag_visit.c.visit_id)
            .where(flag_visit.c.flag_id.in_(ids))
            .order_by(flag_visit.c.flag_id, Visit.arrived_at, Visit.id)
        )
        if visible_sites is not None:
            stmt = stmt.where(Visit.site_id.in_(sorted(visible_sites)))
        visits: dict[int, list[Visit]] = {}
        for flag_id, visit in (await session.execute(stmt)).all():
            visits.setdefault(flag_id, []).append(visit)
    return [(flag, visits.get(flag.id, [])) for flag in flags]


async def _batches(
    db: Database, ids: Sequence[int], visible_sites: frozenset[int] | None
) -> AsyncIterator[list[tuple[Flag, list[Visit]]]]:
    for i in range(0, len(ids), FLAG_BATCH_SIZE):
        yield await _batch(db, ids[i : i + FLAG_BATCH_SIZE], visible_sites)


async def export_flags(
    db: Database,
    actor: Actor,
    site_id: int,
    *,
    date_from: date | None,
    date_to: date | None,
    status: str | None,
    fmt: str,
    now: datetime,
) -> AsyncIterator[bytes]:
    """A site's flags for a local date range (None: all) and status (None: any), as bytes.

    Checks and audits on the first `anext()`, before any byte: pull the first chunk before
    promising a response. Raises transfer.ExportInvalid for a bad format, status or period.
    """
    if fmt not in FORMATS:
        raise ExportInvalid("format", MSG_FORMAT)
    if status is not None and status not in STATUSES:
        raise ExportInvalid("status", MSG_STATUS)
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ExportInvalid("to", MSG_PERIOD)
    async with db.read() as session:
        site: Site = await scoped_site(session, actor, PERMISSION, site_id=site_id)
        tz = ZoneInfo(site.timezone)
        where = _where(actor, site.id, tz, date_from, date_to, status)
        ids = list(await session.scalars(select(Flag.id).where(*where).order_by(Flag.id)))
    visible_sites = None if actor.kind == "cli" else actor.sites_for(PERMISSION)
    await audit.log(
        db, actor, "flags_exported", at=now, site_id=site.id, object_type="flag", object_ids=ids,
        details={
            "format": fmt,
            "from": date_from.isoformat() if date_from else None,
            "to": date_to.isoformat() if date_to else None,
            "status": status,
            "count": len(ids),
        },
    )  # fmt: skip
    chunks = _csv_chunks if fmt == "csv" else _json_chunks
    async for chunk in chunks(db, ids, visible_sites, tz):
        yield chunk


def _cell(value: Any) -> Any:
    return escape_cell(value) if isinstance(value, str) else value


async def _csv_chunks(
    db: Database, ids: Sequence[int], visible_sites: frozenset[int] | None, tz: ZoneInfo
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    # The BOM tells Excel the file is UTF-8, as in the register export.
    buffer.write("\ufeff")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode()
    # A flag without visits the actor may see still has its row, with the visit cells empty.
    no_visit: list[list[Any]] = [[None] * len(VISIT_FIELDS)]
    async for batch in _batches(db, ids, visible_sites):
        buffer.seek(0)
        buffer.truncate()
        for flag, visits in batch:
            head = [_cell(v) for v in _flag_record(flag, tz).values()]
            tails = [[_cell(v) for v in _visit_record(visit, tz).values()] for visit in visits]
            for tail in tails or no_visit:
                writer.writerow(head + tail)  # None is written as an empty cell
        yield buffer.getvalue().encode()


async def _json_chunks(
    db: Database, ids: Sequence[int], visible_sites: frozenset[int] | None, tz: ZoneInfo
) -> AsyncIterator[bytes]:
    separator = "[\n"
    async for batch in _batches(db, ids, visible_sites):
        records = [
            {**_flag_record(flag, tz), "visits": [_visit_record(v, tz) for v in visits]}
            for flag, visits in batch
        ]
        # One dumps per batch: its "[...]" is cut off, the batches joined by ",".
        yield (separator + json.dumps(records, ensure_ascii=False)[1:-1]).encode()
        separator = ",\n"
    yield b"]\n" if separator != "[\n" else b"[]\n"
