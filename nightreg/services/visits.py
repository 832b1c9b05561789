"""One way to write a visit: the kiosk's check-in, the staff's walk-in, the API and the import.

Every visit is built by `visit_row` (the validated form plus its site, source, search key,
subject key and a private-link hash) and written by `write` (one visit: a fresh reference,
the idempotency key, the post-commit watchlist check) or `insert_batch` (the import's many
rows in the caller's transaction; the watchlist meets those in the scheduled scan).

A subject is present once per site (nightreg.services.presence): `write` marks a visit that
doubles one present as a possible duplicate (the kiosk: nothing submitted is lost), or refuses
it with AlreadyPresent (a walk-in or the API, until told to add it anyway), or lets it be.
"""

from __future__ import annotations

import operator
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Column, Table, bindparam, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from nightreg import metrics
from nightreg.db import Database
from nightreg.models import Visit
from nightreg.security import new_reference
from nightreg.services import presence, watchlist
from nightreg.services.writer import VisitWriter
from nightreg.validation import CheckinData, search_key, subject_key

_VISIT_TABLE = cast(Table, Visit.__table__)
_INSERT = insert(_VISIT_TABLE)

# A reference collides once in ~10^12 draws; try again rather than fail the visitor.
_ATTEMPTS = 3

# Runs inside the visit's own transaction once the row is in (the walk-in's audit event). The
# values are the row's, plus `present_visit_id`: the open visit of the subject, if any.
InTransaction = Callable[[AsyncSession, int, Mapping[str, Any]], Awaitable[None]]

# What `write` does with a visit of a subject already present at the site.
OnPresent = Literal["mark", "refuse", "allow"]


@dataclass(frozen=True)
class Written:
    visit: Visit
    replayed: bool  # the idempotency key named a visit written before; nothing new was written


def keys_of(values: Mapping[str, Any]) -> dict[str, str]:
    """The derived columns of a visit: what the register search and the rules look up."""
    return {
        "search_key": search_key_of(values),
        "subject_key": subject_key(
            values["kind"],
            registration=values.get("registration"),
            mmsi=values.get("mmsi"),
            plate=values.get("plate"),
            guest_name=values["guest_name"],
            residence=values["residence"],
        ),
    }


def visit_row(
    data: CheckinData,
    *,
    site_id: int,
    source: str,
    now: datetime,
    point_id: int | None = None,
    departed_at: datetime | None = None,
    private_token_hash: str | None = None,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """The insertable values of one visit, without its reference (the writer draws that).

    Without `private_token_hash` nobody holds a private link to the visit (a walk-in, an
    import): a random value of the hash's length stands in its place.
    """
    values = dict(vars(data))  # the dataclass's fields (subject_key included), cheaper than asdict
    values.update(
        search_key=search_key_of(values),
        site_id=site_id,
        point_id=point_id,
        source=source,
        departed_at=departed_at,
        private_token_hash=private_token_hash or secrets.token_hex(32),
        idempotency_key=idempotency_key or None,
        request_fingerprint=fingerprint,
        created_at=now,
        updated_at=now,
    )
    return values


def search_key_of(values: Mapping[str, Any]) -> str:
    """What the register search finds a visit by (validation.search_key of its names)."""
    return search_key(
        values.get("guest_name"),
        values.get("vessel_name"),
        values.get("registration"),
        values.get("mmsi"),
        values.get("plate"),
    )


async def by_idempotency_key(db: Database, key: str) -> Visit | None:
    async with db.read() as session:
        return await session.scalar(
            select(Visit).where(Visit.idempotency_key == key).options(joinedload(Visit.site))
        )


async def write(
    db: Database,
    row: Mapping[str, Any],
    *,
    now: datetime,
    writer: VisitWriter | None = None,
    in_transaction: InTransaction | None = None,
    watchlist_key: str = "",
    on_present: OnPresent = "mark",
) -> Written:
    """Write one visit built by visit_row; a repeat of its idempotency key returns the first.

    With `writer` the visit shares a group commit with the check-ins arriving alongside it;
    `in_transaction` needs a transaction of the visit's own (so it cannot use the writer).
    A visit of a subject present at the site now is marked as a possible duplicate of it
    (`on_present="mark"`, the writer's way), refused with presence.AlreadyPresent ("refuse")
    or written as it is ("allow"; staff said to add it anyway).
    With a `watchlist_key`, the new visit is then matched against the hub's watchlist: a hit
    raises a flag only analysts see, and never changes or fails the write.
    """
    values = dict(row)
    key = values.get("idempotency_key")
    for _attempt in range(_ATTEMPTS):
        values["reference"] = new_reference()
        try:
            visit_id = await _insert(db, values, writer, in_transaction, on_present, now)
        except IntegrityError:
            # The same form sent twice at once, or a reference drawn twice: the next round
            # draws another reference unless the key finds the first visit.
            if key:
                earlier = await by_idempotency_key(db, key)
                if earlier is not None:
                    return Written(visit=earlier, replayed=True)
            continue
        visit = Visit(id=visit_id, **values)
        metrics.checked_in(values["site_id"], values["source"])
        if watchlist_key:
            # Only once the visit is committed, in transactions of its own: a failing check is
            # logged by check_new_visit and never fails the registration it looks at.
            await watchlist.check_new_visit(db, visit, watchlist_key, now)
        return Written(visit=visit, replayed=False)
    raise RuntimeError("could not allocate a unique visit reference")


async def _insert(
    db: Database,
    values: dict[str, Any],
    writer: VisitWriter | None,
    in_transaction: InTransaction | None,
    on_present: OnPresent,
    now: datetime,
) -> int:
    if writer is not None and in_transaction is None and on_present == "mark":
        return await writer.insert(dict(values))  # the writer marks in its own transaction
    async with db.write() as session:
        present_id: int | None = None
        await presence.lock_sites(session, [values["site_id"]])
        if on_present != "mark":
            present = await presence.open_visit(session, values["site_id"], values, now)
            present_id = present.id if present is not None else None
            if present_id is not None and on_present == "refuse":
                raise presence.AlreadyPresent(present_id)
        visit_id = await session.scalar(insert(Visit).values(**values).returning(Visit.id))
        assert visit_id is not None
        if on_present == "mark":
            await presence.mark(session, [visit_id])
        if in_transaction is not None:
            await in_transaction(session, visit_id, {**values, "present_visit_id": present_id})
    return visit_id


async def insert_batch(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert rows built by visit_row (with their references) in the caller's transaction."""
    await session.execute(_INSERT, rows)


# Converted values remembered per column by BulkRows.params (then forgotten all at once).
_CONVERTED_CACHE_SIZE = 4096
_UNIQUE_VIOLATION = "23505"


class BulkRows:
    """The import's bulk path: rows built by visit_row, turned into the driver's parameters
    where the caller builds them (the import's worker thread), and inserted with one
    executemany that SQLAlchemy hands to the driver as they are: the event loop does not
    convert 40 values a row.

    A column a row does not name gets its scalar default (or NULL).
    """

    def __init__(self, dialect: Dialect) -> None:
        columns = [c for c in _VISIT_TABLE.columns if c.name != "id"]
        compiled = (
            insert(_VISIT_TABLE)
            .values({c.name: bindparam(c.name) for c in columns})
            .compile(dialect=dialect)
        )
        self.sql = str(compiled)
        order = list(compiled.positiontup or [c.name for c in columns])
        by_name = {c.name: c for c in columns}
        self.names = order
        self.processors = [
            by_name[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
        ]
        self.defaults = [_scalar_default(by_name[name]) for name in order]
        self.named = list(zip(order, self.defaults, strict=True))
        self.getter = operator.itemgetter(*order)
        # (index, converter, its remembered results) of the columns the driver needs converted
        self.converted: list[tuple[int, Callable[[Any], Any], dict[Any, Any]]] = [
            (index, process, {}) for index, process in enumerate(self.processors) if process
        ]
        self.reference_index = order.index("reference")
        self.copy = dialect.name == "postgresql" and dialect.driver == "asyncpg"
        self.sqlite = dialect.name == "sqlite" and dialect.driver == "aiosqlite"
        self._sqlite_statements: dict[tuple[int, ...], str] = {}
        self.dialect = dialect

    def params(self, values: Mapping[str, Any]) -> list[Any]:
        """One row's parameters in the statement's order (the reference is set later).

        A converted value is remembered per column: a register repeats its dates and times
        (every row of an import has the same created_at), and converting a datetime for the
        driver costs more than looking it up.
        """
        try:
            out = list(self.getter(values))  # every column named: the usual case, at C speed
        except KeyError:
            out = [values.get(name, default) for name, default in self.named]
        for index, process, cache in self.converted:
            value = out[index]
            if value is None:
                continue
            try:
                converted = cache.get(value)  # not a KeyError a miss: raising one costs more
            except TypeError:  # not hashable
                out[index] = process(value)
                continue
            if converted is None:
                if len(cache) >= _CONVERTED_CACHE_SIZE:
                    cache.clear()
                converted = cache[value] = process(value)
            out[index] = converted
        return out

    async def insert(self, session: AsyncSession, rows: list[list[Any]]) -> None:
        """Insert rows made by `params` (with their references) in the caller's transaction."""
        connection = await session.connection()
        if self.copy:
            # PostgreSQL: one COPY (binary) instead of a statement a row, in the same
            # transaction; its unique violation is raised as SQLAlchemy's IntegrityError, as
            # the INSERT's would be.
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            try:
                # Every column, also those no row fills: picking them out here costs the app
                # more than encoding NULLs costs it and PostgreSQL (measured, bench/README.md).
                await driver.copy_records_to_table(
                    _VISIT_TABLE.name, records=rows, columns=self.names
                )
            except Exception as exc:
                if getattr(exc, "sqlstate", None) == _UNIQUE_VIOLATION:
                    raise IntegrityError(self.sql, None, exc) from exc
                raise
            return
        if self.sqlite:
            # SQLite: the rows as they are (lists) to the driver's executemany, in its thread,
            # without SQLAlchemy's pass over 37 parameters a row on the event loop.
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            sql, rows = self._without_empty_columns(rows)
            try:
                await driver.executemany(sql, rows)
            except sqlite3.IntegrityError as exc:
                raise IntegrityError(sql, None, exc) from exc
            return
        await connection.exec_driver_sql(self.sql, [tuple(row) for row in rows])

    def _kept(self, rows: list[list[Any]]) -> tuple[int, ...] | None:
        """The indexes of the columns some row fills, or None for all of them. A column left
        out takes its default, which is NULL for every column that can be NULL (a test says
        so: tests/unit/test_bulk_rows.py)."""
        if not rows:
            return None
        size = len(rows)
        keep = tuple(
            index for index, column in enumerate(zip(*rows, strict=True))
            if column.count(None) != size
        )  # fmt: skip
        return None if len(keep) == len(self.names) else keep

    def _without_empty_columns(self, rows: list[list[Any]]) -> tuple[str, list[Any]]:
        """The statement and rows without the columns that are NULL in every row (those the
        file has no column for): Python's sqlite3 binds a None through its adapter lookup, a
        failed attribute search each time, about a quarter of an import row's insert."""
        keep = self._kept(rows)
        if keep is None:
            return self.sql, rows
        sql = self._sqlite_statements.get(keep)
        if sql is None:
            names = [self.names[index] for index in keep]
            compiled = _INSERT.values({name: bindparam(name) for name in names}).compile(
                dialect=self.dialect
            )
            if list(compiled.positiontup or ()) != names:
                return self.sql, rows  # a default of its own was added: the full statement
            sql = self._sqlite_statements[keep] = str(compiled)
        pick = operator.itemgetter(*keep)  # several: the NOT NULL columns are always there
        return sql, [pick(row) for row in rows]


def _scalar_default(column: Column[Any]) -> Any:
    default = column.default
    if default is not None and getattr(default, "is_scalar", False):
        return getattr(default, "arg", None)
    return None
