"""The register's pages: a site's visits by text, period, kind, status and source, page by page."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from nightreg import visit_status_sql
from nightreg.db import Database
from nightreg.models import Visit
from nightreg.services import audit, duplicates, presence
from nightreg.services.access import Actor
from nightreg.services.register import VIEW, QueryInvalid, period, site_tz
from nightreg.services.sites import scoped_site
from nightreg.validation import KINDS, clean_text, normalise_identifier
from nightreg.visit_status import STATUSES
from nightreg.vocabulary import SOURCES

SORTS = ("arrived_desc", "arrived_asc", "name")
MAX_LIMIT = 200
MAX_QUERY_LENGTH = 100


@dataclass(frozen=True)
class RegisterQuery:
    q: str = ""
    date_from: date | None = None
    date_to: date | None = None
    kind: str | None = None
    status: str | None = None
    source: str | None = None
    # Only visits in an unresolved possible duplicate, either side.
    duplicates: bool = False
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
            "duplicates": "1" if self.duplicates else "",
            "sort": self.sort if self.sort != "arrived_desc" else "",
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class RegisterPage:
    visits: list[Visit]
    next_cursor: str | None
    # The possible duplicates on the page: visit id -> the visit it may double.
    marks: dict[int, int] = field(default_factory=dict)


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


def _in_order(stmt: Select[Any], query: RegisterQuery, name_key: Any) -> Select[Any]:
    """The query's sort order, and with a cursor only the rows after it (the keyset)."""
    if query.sort == "name":
        if query.cursor:
            key, last_id = _decode_cursor(query.cursor, query.sort)
            stmt = stmt.where(or_(name_key > key, and_(name_key == key, Visit.id > last_id)))
        return stmt.order_by(name_key, Visit.id)
    if query.sort == "arrived_asc":
        if query.cursor:
            key, last_id = _decode_cursor(query.cursor, query.sort)
            stmt = stmt.where(
                Visit.arrived_at >= key,
                or_(Visit.arrived_at > key, Visit.id > last_id),
            )
        return stmt.order_by(Visit.arrived_at, Visit.id)
    if query.cursor:
        key, last_id = _decode_cursor(query.cursor, query.sort)
        stmt = stmt.where(
            Visit.arrived_at <= key,
            or_(Visit.arrived_at < key, Visit.id < last_id),
        )
    return stmt.order_by(Visit.arrived_at.desc(), Visit.id.desc())


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
        stmt = period(stmt, site_tz(site), query.date_from, query.date_to)
        if query.kind:
            stmt = stmt.where(Visit.kind == query.kind)
        if query.source:
            stmt = stmt.where(Visit.source == query.source)
        if query.status:
            stmt = stmt.where(visit_status_sql.status_is(query.status, now))
        if query.duplicates:
            stmt = stmt.where(duplicates.involved())

        stmt = _in_order(stmt, query, name_key)
        rows = [(row[0], row[1]) for row in await session.execute(stmt.limit(query.limit + 1))]
        marks = await presence.marks_of(session, [visit.id for visit, _name in rows])

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
    return RegisterPage(visits=visits, next_cursor=next_cursor, marks=marks)
