"""Import a register from CSV (last season's sheet), all rows or none.

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
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Site, Visit
from nightreg.security import REFERENCE_ALPHABET
from nightreg.services import audit, visits
from nightreg.services.access import Actor
from nightreg.services.sites import scoped_site
from nightreg.services.transfer import DELIMITERS, EXPORT_COLUMNS, unescape_cell
from nightreg.validation import MSG_DATETIME, FieldError, validate_checkin
from nightreg.vocabulary import SOURCES

IMPORT_PERMISSION = "register.edit"
BATCH_SIZE = 2000  # rows of an import per insert

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
# Far more than the export's columns plus any a spreadsheet adds; a header beyond it is no
# register (and 100,000 columns would cost every row a list of that length).
MAX_COLUMNS = 1_000
# A departure in the file may lie a little ahead of this server's clock (clocks differ).
DEPARTURE_SLACK = timedelta(minutes=5)

MSG_ARRIVAL_REQUIRED = N_("Please enter the arrival.")
MSG_DEPARTED_BEFORE = N_("The departure must not be before the arrival.")
MSG_DEPARTED_FUTURE = N_("The departure cannot be in the future.")
MSG_EXTRA_CELLS = N_("This row has more cells than the header has columns.")

_visit = cast(Table, Visit.__table__)


class ImportFileError(ValueError):
    """The file as a whole cannot be read (encoding, header, CSV syntax); nothing was imported."""


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


def _header_cells(line: str, delimiter: str) -> list[str] | None:
    """The header's column names, or None when the line is no CSV (a cell over the csv
    module's field limit, 128 KiB, raises csv.Error: a file error, not a server error)."""
    try:
        cells = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return None
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
                key=lambda d: len(set(_header_cells(first, d) or ()) & set(EXPORT_COLUMNS)),
            )
    except UnicodeDecodeError:
        raise ImportFileError("the file is neither UTF-8 nor Windows-1252 text") from None
    header = _header_cells(first, delimiter)
    if header is None:
        raise ImportFileError("the header line cannot be read: a column name is too long")
    if len(header) > MAX_COLUMNS:
        raise ImportFileError(
            f"the header names {len(header)} columns; a register has at most {MAX_COLUMNS}"
        )
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
    async with db.read() as session:
        site = await scoped_site(session, actor, IMPORT_PERMISSION, site_id=site_id)
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
    "ImportFileError",
    "ImportReport",
    "RowError",
    "import_register",
    "parse_import_datetime",
]
