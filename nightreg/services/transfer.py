"""Export a site's register as CSV or JSON; register_import reads such a file back in.

Export
    The columns are EXPORT_COLUMNS, the vocabulary of forms, API and models. Times carry the
    site's local offset ("2026-07-14T21:30:00+02:00", whole seconds), length_m is text ("9.5").
    CSV is UTF-8 with a BOM (so Excel reads it as UTF-8), `,` or `;` between cells, CRLF
    between rows. JSON is one array of objects. Both are streamed in keyset batches of
    EXPORT_BATCH_SIZE rows read with Core, so memory stays flat however large the register is; each
    batch is its own short read, so an export is not a snapshot: a visit corrected while a
    long export runs may show its old or its new values.

    Spreadsheet formulas: a CSV cell that starts with =, +, -, @, a tab or a carriage return
    gets a leading apostrophe, so that a spreadsheet shows it as text instead of running it.
    Cells that are only a sign followed by digits, spaces, brackets and dashes (a phone number
    like "+31 6 1234 5678") are left alone: they cannot name a function, a cell or another
    program, and an apostrophe would only make them harder to read. A cell that starts with
    apostrophes in front of something that would be escaped gets one more apostrophe, so the
    import can take off exactly the one the export added: the round trip is exact.
    JSON is not escaped (no spreadsheet opens it as a sheet).

    Audit: one `register_exported` event before the first byte, with the filters, the format
    and the number of visits the filters matched at that moment (a COUNT in the same request);
    no visit ids, which for a whole register would be a megabyte in one audit line: the site,
    the period and the time tell which visits they were.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, DateTime, Table, func, or_, select, type_coerce

from nightreg.clock import local_midnight
from nightreg.db import Database
from nightreg.i18n import LOCALES, N_, translations
from nightreg.models import Site, Visit
from nightreg.services import audit
from nightreg.services.access import Actor
from nightreg.services.sites import scoped_site
from nightreg.validation import FieldError, Invalid

EXPORT_PERMISSION = "register.export"

EXPORT_COLUMNS: tuple[str, ...] = (
    "reference", "site", "kind", "source", "arrived_at", "expected_departure_at", "departed_at",
    "persons", "guest_name", "residence", "country", "id_document_type", "phone", "email",
    "berth", "vessel_name", "registration", "mmsi", "flag", "vessel_type", "length_m",
    "last_port", "next_port", "plate", "plate_country", "vehicle_type", "unit", "company",
    "notes",
)  # fmt: skip
# The export's headers for people (the "for a spreadsheet" option writes them in the reader's
# language); the import recognises them in every language. Unique in each language, so that a
# German export does not name two columns "Kennzeichen".
EXPORT_HEADERS: dict[str, str] = {
    "reference": N_("Reference"),
    "site": N_("Site"),
    "kind": N_("Kind"),
    "source": N_("Source"),
    "arrived_at": N_("Arrival"),
    "expected_departure_at": N_("Expected departure"),
    "departed_at": N_("Departure"),
    "persons": N_("Persons"),
    "guest_name": N_("Name"),
    "residence": N_("Place of residence"),
    "country": N_("Country"),
    "id_document_type": N_("ID document type"),
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "berth": N_("Berth"),
    "vessel_name": N_("Name of the boat"),
    "registration": N_("Registration of the boat"),
    "mmsi": N_("MMSI"),
    "flag": N_("Flag"),
    "vessel_type": N_("Type of boat"),
    "length_m": N_("Length (m)"),
    "last_port": N_("Coming from"),
    "next_port": N_("Going to"),
    "plate": N_("Licence plate"),
    "plate_country": N_("Country of the plate"),
    "vehicle_type": N_("Type of vehicle"),
    "unit": N_("Unit"),
    "company": N_("Company"),
    "notes": N_("Notes"),
}
FORMATS = ("csv", "json")
DELIMITERS = (",", ";")
# A spreadsheet in Dutch or German splits a CSV at semicolons (the comma is their decimal sign).
DEFAULT_DELIMITERS = {"nl": ";", "de": ";", "en": ","}
EXPORT_BATCH_SIZE = 5000  # rows of an export per query: few round trips, a few MB each

MSG_FORMAT = N_("Please choose CSV or JSON.")
MSG_DELIMITER = N_("Please choose a comma or a semicolon.")
MSG_PERIOD = N_("The first date must not be after the second.")

_visit = cast(Table, Visit.__table__)
# Everything EXPORT_COLUMNS names except `site`, in that order; the id is the keyset's tiebreak.
_COLUMN_NAMES = tuple(c for c in EXPORT_COLUMNS if c != "site")
_TIME_COLUMNS = ("arrived_at", "expected_departure_at", "departed_at")


def _selected(sqlite: bool) -> list[ColumnElement[Any]]:
    """The export's columns, with the times as naive UTC: _LocalTimes formats those fastest.

    SQLite stores naive UTC already (read past DateTimeUTC, which would add a tzinfo to every
    value); PostgreSQL is asked for `timezone('UTC', t)`, a timestamp without a zone.
    """
    columns: list[ColumnElement[Any]] = []
    for name in _COLUMN_NAMES:
        column = _visit.c[name]
        if name not in _TIME_COLUMNS:
            columns.append(column)
        elif sqlite:
            columns.append(type_coerce(column, DateTime()).label(name))
        else:
            columns.append(type_coerce(func.timezone("UTC", column), DateTime()).label(name))
    return columns


_SELECTED = {sqlite: _selected(sqlite) for sqlite in (True, False)}
_SITE_INDEX = EXPORT_COLUMNS.index("site")
_TIME_INDEXES = tuple(_COLUMN_NAMES.index(c) for c in _TIME_COLUMNS)
_LENGTH_INDEX = _COLUMN_NAMES.index("length_m")
_ARRIVED_INDEX = _COLUMN_NAMES.index("arrived_at")
_TEXT_INDEXES = tuple(
    i
    for i, name in enumerate(_COLUMN_NAMES)
    if i not in _TIME_INDEXES and i != _LENGTH_INDEX and name != "persons"
)


class ExportInvalid(Invalid):
    """The export was asked for with a value it cannot use; `field` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__({field: FieldError(message)})
        self.args = (f"{field}: {message}",)
        self.field = field
        self.message = message


# --- spreadsheet formulas ---------------------------------------------------------------------

_FORMULA_START = frozenset("=+-@\t\r")
_CHECK_START = _FORMULA_START | {"'"}
# A sign followed by digits, spaces, brackets and dashes only: a phone number, never a formula
# that calls something.
_NUMBER_LIKE = re.compile(r"[+\-][0-9 ()\-]*")


def _would_run(text: str) -> bool:
    """Whether a spreadsheet could take `text` (after any leading apostrophes) for a formula."""
    rest = text.lstrip("'")
    return bool(rest) and rest[0] in _FORMULA_START and _NUMBER_LIKE.fullmatch(rest) is None


def escape_cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading apostrophe where a formula could start."""
    if text and text[0] in _CHECK_START and _would_run(text):
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    """Undo escape_cell exactly: drop the one apostrophe it added, and only that one."""
    if text[:1] == "'" and _would_run(text):
        return text[1:]
    return text


# --- export -----------------------------------------------------------------------------------


class _LocalTimes:
    """UTC times as the site's local ISO 8601 time with its offset ("2026-07-14T21:30:00+02:00").

    The export's hottest line: the offset and its text are looked up once per UTC hour instead
    of converting every value (an hour with an offset change in it is converted value by value).
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.hours: dict[tuple[int, int], tuple[timedelta, str] | None] = {}

    def _hour(self, naive_utc: datetime) -> tuple[timedelta, str] | None:
        start = naive_utc.replace(minute=0, second=0, microsecond=0, tzinfo=UTC)
        first = start.astimezone(self.tz)
        last = (start + timedelta(seconds=3599)).astimezone(self.tz)
        offset = first.utcoffset()
        if offset is None or offset != last.utcoffset():
            return None
        return offset, first.isoformat(timespec="seconds")[19:]

    def __call__(self, value: datetime) -> str:
        if value.tzinfo is not None:
            # asyncpg answers in UTC; another driver may answer in the session's zone.
            value = value.replace(tzinfo=None) - (value.utcoffset() or timedelta(0))
        key = (value.toordinal(), value.hour)
        try:
            hour = self.hours[key]
        except KeyError:
            hour = self.hours[key] = self._hour(value)
        if hour is None:
            return value.replace(tzinfo=UTC).astimezone(self.tz).isoformat(timespec="seconds")
        offset, suffix = hour
        return (value + offset).isoformat(timespec="seconds") + suffix


class _SheetTimes(_LocalTimes):
    """Local times a spreadsheet recognises: "2026-12-05 23:15" (seconds only when not zero),
    no T and no offset. A time that occurs twice (the autumn DST change) keeps its offset in
    ISO form, so that the import reads it back exactly."""

    def __init__(self, tz: ZoneInfo) -> None:
        super().__init__(tz)
        self.twice: dict[str, bool] = {}  # local "YYYY-MM-DDTHH" -> occurs twice

    def _occurs_twice(self, local_hour: str) -> bool:
        naive = datetime.fromisoformat(local_hour + ":30")
        fold0 = naive.replace(tzinfo=self.tz, fold=0).utcoffset()
        return fold0 != naive.replace(tzinfo=self.tz, fold=1).utcoffset()

    def __call__(self, value: datetime) -> str:
        text = super().__call__(value)
        hour = text[:13]
        twice = self.twice.get(hour)
        if twice is None:
            twice = self.twice[hour] = self._occurs_twice(hour)
        if twice:
            return text
        return text[:10] + " " + (text[11:16] if text[17:19] == "00" else text[11:19])


def _values(
    row: Sequence[Any], site_slug: str, local_time: _LocalTimes, decimal_comma: bool = False
) -> list[Any]:
    """One visit (columns in _COLUMN_NAMES order) as export values, in EXPORT_COLUMNS order."""
    values = list(row[: len(_COLUMN_NAMES)])
    for i in _TIME_INDEXES:
        value = values[i]
        if value is not None:
            values[i] = local_time(value)
    length = values[_LENGTH_INDEX]
    if length is not None:
        values[_LENGTH_INDEX] = f"{Decimal(length):.1f}"
        if decimal_comma:
            values[_LENGTH_INDEX] = values[_LENGTH_INDEX].replace(".", ",")
    values.insert(_SITE_INDEX, site_slug)
    return values


def visit_record(visit: Visit, site_slug: str, tz: ZoneInfo) -> dict[str, str | int | None]:
    """One visit in the export's vocabulary (also the API's): local ISO times, length as text."""
    row = [getattr(visit, name) for name in _COLUMN_NAMES]
    return dict(zip(EXPORT_COLUMNS, _values(row, site_slug, _LocalTimes(tz)), strict=True))


def _period(
    site_id: int, tz: ZoneInfo, date_from: date | None, date_to: date | None
) -> list[ColumnElement[bool]]:
    """Visits of the site whose stay overlaps [date_from 00:00, date_to + 1 00:00) locally.

    The same rule as the register's search: a visit not yet departed overlaps every period from
    its arrival on.
    """
    clauses: list[ColumnElement[bool]] = [_visit.c.site_id == site_id]
    if date_to is not None:
        clauses.append(_visit.c.arrived_at < local_midnight(date_to + timedelta(days=1), tz))
    if date_from is not None:
        start = local_midnight(date_from, tz)
        clauses.append(or_(_visit.c.departed_at.is_(None), _visit.c.departed_at > start))
    return clauses


async def _site(db: Database, actor: Actor, site_id: int, permission: str) -> Site:
    async with db.read() as session:
        return await scoped_site(session, actor, permission, site_id=site_id)


def export_filename(site_slug: str, date_from: date | None, date_to: date | None, fmt: str) -> str:
    period = "-".join(d.isoformat() for d in (date_from, date_to) if d is not None) or "all"
    return f"register-{site_slug}-{period}.{fmt}"


async def _batch(
    db: Database, where: list[ColumnElement[bool]], after: tuple[datetime, int] | None
) -> Sequence[Sequence[Any]]:
    """One batch of matching visits by arrival (then id), after the keyset `after`."""
    stmt = select(*_SELECTED[db.is_sqlite], _visit.c.id).where(*where)
    if after is not None:
        # Written so that both databases walk the (site_id, arrived_at) index from `after`.
        stmt = stmt.where(
            _visit.c.arrived_at >= after[0],
            or_(_visit.c.arrived_at > after[0], _visit.c.id > after[1]),
        )
    stmt = stmt.order_by(_visit.c.arrived_at, _visit.c.id).limit(EXPORT_BATCH_SIZE)
    async with db.engine.connect() as conn:
        return (await conn.execute(stmt)).all()


async def _batches(
    db: Database, where: list[ColumnElement[bool]]
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """The matching visits a batch at a time, each batch its own short read.

    (Reading the next batch while this one is written out was tried: no measurable gain.)
    """
    rows = await _batch(db, where, None)
    while rows:
        yield rows
        if len(rows) < EXPORT_BATCH_SIZE:
            return
        tail = rows[-1]
        arrived = tail[_ARRIVED_INDEX]
        rows = await _batch(db, where, (arrived.replace(tzinfo=UTC), tail[-1]))


async def export_register(
    db: Database,
    actor: Actor,
    site_id: int,
    *,
    date_from: date | None,
    date_to: date | None,
    fmt: str,
    delimiter: str = ",",
    sheet_locale: str | None = None,
    now: datetime,
) -> AsyncIterator[bytes]:
    """A site's register for a local date range (None: all of it) as CSV or JSON bytes.

    `sheet_locale` ("nl", "en", "de"; CSV only) writes a file for a spreadsheet in that
    language: headers in it (EXPORT_HEADERS), local times as "2026-12-05 23:15", and, in Dutch
    and German, the length with a decimal comma. The import reads both kinds back exactly.

    Checks and audits on the first `anext()`, before any byte: pull the first chunk before
    promising a response.
    """
    if fmt not in FORMATS:
        raise ExportInvalid("format", MSG_FORMAT)
    if fmt == "csv" and delimiter not in DELIMITERS:
        raise ExportInvalid("delimiter", MSG_DELIMITER)
    if sheet_locale is not None and sheet_locale not in LOCALES:
        sheet_locale = None
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ExportInvalid("to", MSG_PERIOD)
    site = await _site(db, actor, site_id, EXPORT_PERMISSION)
    tz = ZoneInfo(site.timezone)
    where = _period(site.id, tz, date_from, date_to)
    async with db.engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(_visit).where(*where))
    details: dict[str, Any] = {
        "format": fmt,
        "from": date_from.isoformat() if date_from else None,
        "to": date_to.isoformat() if date_to else None,
        "count": count,
    }
    if fmt == "csv":
        details["delimiter"] = delimiter
        if sheet_locale:
            details["sheet"] = sheet_locale
    await audit.log(db, actor, "register_exported", at=now, site_id=site.id, details=details)
    if fmt == "json":
        async for chunk in _json_chunks(db, where, site.slug, tz):
            yield chunk
        return
    async for chunk in _csv_chunks(db, where, site.slug, tz, delimiter, sheet_locale):
        yield chunk


def sheet_headers(locale: str) -> list[str]:
    """The export's headers in a language (the "for a spreadsheet" option)."""
    catalog = translations(locale)
    return [catalog.ugettext(EXPORT_HEADERS[name]) for name in EXPORT_COLUMNS]


async def _csv_chunks(
    db: Database,
    where: list[ColumnElement[bool]],
    slug: str,
    tz: ZoneInfo,
    delimiter: str,
    sheet_locale: str | None,
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    # The BOM tells Excel the file is UTF-8; without it, "Zoë" arrives as "ZoÃ«".
    buffer.write("\ufeff")
    writer.writerow(sheet_headers(sheet_locale) if sheet_locale else EXPORT_COLUMNS)
    yield buffer.getvalue().encode()
    text_indexes = tuple(i + (i >= _SITE_INDEX) for i in _TEXT_INDEXES)
    local_time = _SheetTimes(tz) if sheet_locale else _LocalTimes(tz)
    decimal_comma = sheet_locale in ("nl", "de")
    async for rows in _batches(db, where):
        buffer.seek(0)
        buffer.truncate()
        out = []
        for row in rows:
            values = _values(row, slug, local_time, decimal_comma)
            for i in text_indexes:
                value = values[i]
                if value and value[0] in _CHECK_START:
                    values[i] = escape_cell(value)
            out.append(values)
        writer.writerows(out)  # None is written as an empty cell
        yield buffer.getvalue().encode()


async def _json_chunks(
    db: Database, where: list[ColumnElement[bool]], slug: str, tz: ZoneInfo
) -> AsyncIterator[bytes]:
    local_time = _LocalTimes(tz)
    separator = "[\n"
    async for rows in _batches(db, where):
        records = [
            dict(zip(EXPORT_COLUMNS, _values(row, slug, local_time), strict=True)) for row in rows
        ]
        # One dumps per batch (not per row): its "[...]" is cut off, the batches joined by ",".
        yield (separator + json.dumps(records, ensure_ascii=False)[1:-1]).encode()
        separator = ",\n"
    yield b"]\n" if separator != "[\n" else b"[]\n"


__all__ = [
    "DEFAULT_DELIMITERS",
    "DELIMITERS",
    "EXPORT_COLUMNS",
    "EXPORT_HEADERS",
    "FORMATS",
    "ExportInvalid",
    "escape_cell",
    "export_filename",
    "export_register",
    "sheet_headers",
    "unescape_cell",
    "visit_record",
]
