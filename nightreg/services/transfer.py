"""Export a site's register as CSV or JSON, and import a register from CSV (last season's sheet).

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

Import
    A CSV with the export's columns (unknown columns are ignored and named in the report;
    `site` is ignored: the target site is chosen). `,` or `;` (read from the header, or an
    Excel "sep=;" first line), UTF-8 with or without BOM, else Windows-1252 (older Excel).
    Times: ISO 8601 with or without offset, or Dutch "28-11-2026 21:30" / "28-11-2026"; times
    without an offset are read on the site's clock. Each row passes the kiosk's validation
    (no limit on how long ago the arrival was: a register is history), plus departed_at.
    `source` is kept when it is one of kiosk/staff/api, else "staff"; `reference` is kept when
    it is well-formed and not used yet (in the database or earlier in the file), else a new one
    is drawn. Imported visits get a random private-link hash nobody holds, no idempotency key.

    All or nothing, in one pass: rows are validated and inserted in batches inside one write
    transaction; once a bad row is seen nothing more is inserted, every further row is still
    checked for the report, and the transaction is rolled back. A dry run does the same
    checks without writing. `register_imported` (count, file name) is written in the same
    transaction. On SQLite the write lock is held for the whole import: kiosk check-ins wait
    that long (about a second per 30,000 rows; see bench/README.md).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import IO, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, DateTime, Table, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nightreg.clock import local_midnight
from nightreg.db import Database
from nightreg.models import SOURCES, Site, Visit
from nightreg.security import REFERENCE_ALPHABET
from nightreg.services import audit, visits
from nightreg.services.access import Actor
from nightreg.services.sites import scoped_site
from nightreg.validation import (
    MSG_DATETIME,
    N_,
    FieldError,
    Invalid,
    validate_checkin,
)

EXPORT_PERMISSION = "register.export"
IMPORT_PERMISSION = "register.edit"

EXPORT_COLUMNS: tuple[str, ...] = (
    "reference", "site", "kind", "source", "arrived_at", "expected_departure_at", "departed_at",
    "persons", "guest_name", "residence", "country", "id_document_type", "phone", "email",
    "berth", "vessel_name", "registration", "mmsi", "flag", "vessel_type", "length_m",
    "last_port", "next_port", "plate", "plate_country", "vehicle_type", "unit", "company",
    "notes",
)  # fmt: skip
FORMATS = ("csv", "json")
DELIMITERS = (",", ";")
BATCH_SIZE = 2000  # rows of an import per insert
EXPORT_BATCH_SIZE = 5000  # rows of an export per query: few round trips, a few MB each

# Columns an imported file must have; the others may be missing (then empty).
REQUIRED_COLUMNS = (
    "kind",
    "arrived_at",
    "expected_departure_at",
    "persons",
    "guest_name",
    "residence",
)
# A bad file should not fill memory with its report: further bad rows are counted, not kept.
MAX_REPORTED_ERRORS = 10_000
# A departure in the file may lie a little ahead of this server's clock (clocks differ).
DEPARTURE_SLACK = timedelta(minutes=5)

MSG_FORMAT = N_("Please choose CSV or JSON.")
MSG_DELIMITER = N_("Please choose a comma or a semicolon.")
MSG_PERIOD = N_("The first date must not be after the second.")
MSG_ARRIVAL_REQUIRED = N_("Please enter the arrival.")
MSG_DEPARTED_BEFORE = N_("The departure must not be before the arrival.")
MSG_DEPARTED_FUTURE = N_("The departure cannot be in the future.")
MSG_EXTRA_CELLS = N_("This row has more cells than the header has columns.")

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


class ImportFileError(ValueError):
    """The file as a whole cannot be read (encoding, header, CSV syntax); nothing was imported."""


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


def _values(row: Sequence[Any], site_slug: str, local_time: _LocalTimes) -> list[Any]:
    """One visit (columns in _COLUMN_NAMES order) as export values, in EXPORT_COLUMNS order."""
    values = list(row[: len(_COLUMN_NAMES)])
    for i in _TIME_INDEXES:
        value = values[i]
        if value is not None:
            values[i] = local_time(value)
    length = values[_LENGTH_INDEX]
    if length is not None:
        values[_LENGTH_INDEX] = f"{Decimal(length):.1f}"
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
    now: datetime,
) -> AsyncIterator[bytes]:
    """A site's register for a local date range (None: all of it) as CSV or JSON bytes.

    Checks and audits on the first `anext()`, before any byte: pull the first chunk before
    promising a response.
    """
    if fmt not in FORMATS:
        raise ExportInvalid("format", MSG_FORMAT)
    if fmt == "csv" and delimiter not in DELIMITERS:
        raise ExportInvalid("delimiter", MSG_DELIMITER)
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
    await audit.log(db, actor, "register_exported", at=now, site_id=site.id, details=details)
    chunks = _csv_chunks if fmt == "csv" else _json_chunks
    async for chunk in chunks(db, where, site.slug, tz, delimiter):
        yield chunk


async def _csv_chunks(
    db: Database, where: list[ColumnElement[bool]], slug: str, tz: ZoneInfo, delimiter: str
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    # The BOM tells Excel the file is UTF-8; without it, "Zoë" arrives as "ZoÃ«".
    buffer.write("\ufeff")
    writer.writerow(EXPORT_COLUMNS)
    yield buffer.getvalue().encode()
    text_indexes = tuple(i + (i >= _SITE_INDEX) for i in _TEXT_INDEXES)
    local_time = _LocalTimes(tz)
    async for rows in _batches(db, where):
        buffer.seek(0)
        buffer.truncate()
        out = []
        for row in rows:
            values = _values(row, slug, local_time)
            for i in text_indexes:
                value = values[i]
                if value and value[0] in _CHECK_START:
                    values[i] = escape_cell(value)
            out.append(values)
        writer.writerows(out)  # None is written as an empty cell
        yield buffer.getvalue().encode()


async def _json_chunks(
    db: Database, where: list[ColumnElement[bool]], slug: str, tz: ZoneInfo, _delimiter: str
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


# --- import: reading the file -------------------------------------------------------------------

_DUTCH_DATETIME = re.compile(
    r"([0-9]{1,2})[-/]([0-9]{1,2})[-/]([0-9]{4})"
    r"(?:[ T]([0-9]{1,2})[:.]([0-9]{2})(?::([0-9]{2}))?)?"
)
_ISO_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_import_datetime(value: str, tz: ZoneInfo) -> datetime | None:
    """A time from an imported register, as an aware UTC datetime (None if unreadable).

    ISO 8601 with an offset is taken as written ("2026-07-14T21:30:00+02:00", also "Z");
    ISO without an offset and Dutch dates ("28-11-2026 21:30", "28-11-2026", day first) are
    read on the site's clock, a date alone as its midnight. Like the kiosk, a time skipped by
    the spring DST change is read with the offset before it, and a time that occurs twice in
    autumn as its first occurrence (an export writes the offset, so its times stay exact).
    """
    text = value.strip()
    dutch = _DUTCH_DATETIME.fullmatch(text)
    try:
        if dutch is not None:
            day, month, year, hour, minute, second = (int(p or 0) for p in dutch.groups())
            parsed = datetime(year, month, day, hour, minute, second)
        elif _ISO_START.match(text):
            parsed = datetime.fromisoformat(text)
        else:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz, fold=0)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _encoding(stream: IO[bytes]) -> str:
    """UTF-8 (a BOM is dropped) when the whole file decodes as UTF-8, else Windows-1252."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := stream.read(1 << 20):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        encoding = "cp1252"
    stream.seek(0)
    return encoding


def _header_cells(line: str, delimiter: str) -> list[str]:
    cells = next(csv.reader([line], delimiter=delimiter), [])
    return [c.strip().strip("\ufeff").strip().lower() for c in cells]


@dataclass
class _CsvFile:
    encoding: str
    delimiter: str
    columns: list[str]  # by position; "" for a column we do not read
    ignored: tuple[str, ...]
    records: Iterator[tuple[int, list[str]]]  # (line of the row's start, cells)


def _open_csv(source: bytes | IO[bytes]) -> _CsvFile:
    stream: IO[bytes] = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    encoding = _encoding(stream)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        first = text.readline()
        lines_before = 1
        delimiter = ""
        if first.lstrip("\ufeff").lower().startswith("sep="):
            # Excel's hint line: "sep=;" says what separates the cells.
            delimiter = first.lstrip("\ufeff")[4:5]
            first = text.readline()
            lines_before = 2
        if delimiter not in DELIMITERS:
            # The header names our columns: whichever delimiter finds more of them is the one.
            delimiter = max(
                DELIMITERS,
                key=lambda d: len(set(_header_cells(first, d)) & set(EXPORT_COLUMNS)),
            )
    except UnicodeDecodeError:
        raise ImportFileError("the file is neither UTF-8 nor Windows-1252 text") from None
    header = _header_cells(first, delimiter)
    if not any(header):
        raise ImportFileError("the file is empty: the first line must name the columns")
    duplicates = sorted({c for c in header if c and header.count(c) > 1})
    if duplicates:
        raise ImportFileError(f"columns named twice: {', '.join(duplicates)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ImportFileError(f"columns missing: {', '.join(missing)}")
    columns = [c if c in EXPORT_COLUMNS and c != "site" else "" for c in header]
    ignored = tuple(c for c in header if c and c not in EXPORT_COLUMNS)

    def records() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(text, delimiter=delimiter)
        line = lines_before + 1
        try:
            for cells in reader:
                yield line, cells
                line = lines_before + reader.line_num + 1
        except csv.Error as exc:
            raise ImportFileError(f"line {line}: {exc}") from None
        except UnicodeDecodeError:
            raise ImportFileError("the file is neither UTF-8 nor Windows-1252 text") from None

    name = "UTF-8" if encoding == "utf-8-sig" else "Windows-1252"
    return _CsvFile(name, delimiter, columns, ignored, records())


# --- import: checking and writing -----------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    line: int
    errors: dict[str, FieldError]  # column -> what is wrong ("" for the row as a whole)


@dataclass
class ImportReport:
    filename: str
    dry_run: bool
    encoding: str = ""
    delimiter: str = ""
    ignored_columns: tuple[str, ...] = ()
    rows: int = 0  # data rows read (empty rows are skipped)
    bad_rows: int = 0
    imported: int = 0  # rows written (0 in a dry run and whenever a row is bad)
    references_kept: int = 0  # rows that keep the reference in the file
    errors: list[RowError] = field(default_factory=list)  # the first MAX_REPORTED_ERRORS

    @property
    def ok(self) -> bool:
        return self.bad_rows == 0

    @property
    def errors_not_shown(self) -> int:
        return self.bad_rows - len(self.errors)


_REFERENCE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")


def _new_reference() -> str:
    """Like security.new_reference (40 random bits, Crockford base32), drawn in one call."""
    bits = int.from_bytes(secrets.token_bytes(5), "big")
    chars = "".join(REFERENCE_ALPHABET[(bits >> shift) & 31] for shift in range(35, -5, -5))
    return f"{chars[:4]}-{chars[4:]}"


class _Rows:
    """Turns the file's rows into insertable values for one site, collecting what is wrong."""

    def __init__(self, site: Site, csv_file: _CsvFile, report: ImportReport, now: datetime):
        self.site_id = site.id
        self.kinds = site.visit_kinds
        self.tz = ZoneInfo(site.timezone)
        self.file = csv_file
        self.report = report
        self.now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        batch: list[dict[str, Any]] = []
        for line, cells in self.file.records:
            if not any(cell.strip() for cell in cells):
                continue
            self.report.rows += 1
            values = self._row(line, cells)
            if values is not None and self.report.ok:
                batch.append(values)
            if len(batch) >= BATCH_SIZE:
                yield batch
                batch = []
        if batch and self.report.ok:  # after a bad row nothing is written: no need to try
            yield batch

    def _row(self, line: int, cells: list[str]) -> dict[str, Any] | None:
        columns = self.file.columns
        errors: dict[str, FieldError] = {}
        if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
            errors[""] = FieldError(MSG_EXTRA_CELLS)
        # A short row (trailing empty cells left out, as spreadsheets do) leaves fields empty.
        form = {
            name: unescape_cell(cell) for name, cell in zip(columns, cells, strict=False) if name
        }
        kind = form.get("kind", "").strip().lower()
        if not form.get("arrived_at", "").strip():
            errors["arrived_at"] = FieldError(MSG_ARRIVAL_REQUIRED)
        data, field_errors = validate_checkin(
            form,
            kind=kind,
            allowed_kinds=self.kinds,
            now=self.now,
            tz=self.tz,
            max_arrival_past=None,
            parse_datetime=parse_import_datetime,
        )
        for name, error in field_errors.items():
            errors.setdefault(name, error)
        departed_at = None
        departed_text = form.get("departed_at", "").strip()
        if departed_text:
            departed_at = parse_import_datetime(departed_text, self.tz)
            if departed_at is None:
                errors["departed_at"] = FieldError(MSG_DATETIME)
            elif data is not None and departed_at < data.arrived_at:
                errors["departed_at"] = FieldError(MSG_DEPARTED_BEFORE)
            elif departed_at > self.now + DEPARTURE_SLACK:
                errors["departed_at"] = FieldError(MSG_DEPARTED_FUTURE)
        if errors or data is None:
            self.report.bad_rows += 1
            if len(self.report.errors) < MAX_REPORTED_ERRORS:
                self.report.errors.append(RowError(line, errors))
            return None
        if not self.report.ok:
            return None  # nothing will be written; the row was only checked for the report
        reference = form.get("reference", "").strip().upper()
        source = form.get("source", "").strip().lower()
        # Nobody holds a private link to an imported visit (visit_row puts a random value
        # in its place) and it has no idempotency key.
        values = visits.visit_row(
            data,
            site_id=self.site_id,
            source=source if source in SOURCES else "staff",
            now=self.now,
            departed_at=departed_at,
        )
        values["reference"] = reference if _REFERENCE.fullmatch(reference) else None
        return values


async def _used_references(
    conn: AsyncConnection | AsyncSession, references: Sequence[str]
) -> set[str]:
    if not references:
        return set()
    result = await conn.execute(
        select(_visit.c.reference).where(_visit.c.reference.in_(references))
    )
    return set(result.scalars())


async def _assign_references(
    conn: AsyncConnection | AsyncSession,
    batch: list[dict[str, Any]],
    earlier: set[str] | None,
) -> int:
    """Keep each row's reference if it is free, else draw a new one; returns how many were kept.

    `earlier` holds the references of earlier batches of a dry run (an import writes those
    batches, so the database knows them).
    """
    taken: set[str] = set()
    needs_new: list[dict[str, Any]] = []
    for values in batch:
        reference = values["reference"]
        if reference is None or reference in taken or (earlier and reference in earlier):
            needs_new.append(values)
        else:
            taken.add(reference)
    kept = {id(v) for v in batch} - {id(v) for v in needs_new}
    while True:
        for values in needs_new:
            reference = _new_reference()
            while reference in taken or (earlier and reference in earlier):
                reference = _new_reference()
            values["reference"] = reference
            taken.add(reference)
        used = await _used_references(conn, [v["reference"] for v in batch])
        if not used:
            break
        # Kept references already in the register, or (rarely) a new one drawn twice.
        needs_new = [v for v in batch if v["reference"] in used]
        kept -= {id(v) for v in needs_new}
        taken -= used
    if earlier is not None:
        earlier.update(taken)
    return len(kept)


class _Abort(Exception):
    """A bad row was found: roll the import back."""


async def import_register(
    db: Database,
    actor: Actor,
    site_id: int,
    source: bytes | IO[bytes],
    *,
    filename: str,
    now: datetime,
    dry_run: bool = False,
) -> ImportReport:
    """Check (dry run) or import a CSV register into a site; all rows or none.

    Raises ImportFileError when the file cannot be read at all; bad rows are in the report.
    """
    site = await _site(db, actor, site_id, IMPORT_PERMISSION)
    csv_file = _open_csv(source)
    report = ImportReport(
        filename=filename,
        dry_run=dry_run,
        encoding=csv_file.encoding,
        delimiter=csv_file.delimiter,
        ignored_columns=csv_file.ignored,
    )
    rows = _Rows(site, csv_file, report, now)
    if dry_run:
        seen: set[str] = set()
        async with db.engine.connect() as conn:
            for batch in rows.batches():
                report.references_kept += await _assign_references(conn, batch, seen)
        return report
    try:
        async with db.write() as session:
            for batch in rows.batches():
                report.references_kept += await _assign_references(session, batch, None)
                await visits.insert_batch(session, batch)
                report.imported += len(batch)
            if not report.ok:
                raise _Abort
            await audit.record(
                session,
                actor,
                "register_imported",
                at=now,
                site_id=site.id,
                details={
                    "count": report.imported,
                    "file": filename[:200],
                    "references_kept": report.references_kept,
                },
            )
    except _Abort:
        report.imported = 0
    return report


__all__ = [
    "DELIMITERS",
    "EXPORT_COLUMNS",
    "FORMATS",
    "ExportInvalid",
    "ImportFileError",
    "ImportReport",
    "RowError",
    "escape_cell",
    "export_filename",
    "export_register",
    "import_register",
    "parse_import_datetime",
    "unescape_cell",
    "visit_record",
]
