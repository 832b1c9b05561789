"""Import a register from a spreadsheet (last season's sheet, or our own export): idempotent,
all rows or none.

The file: a CSV or an .xlsx sheet (nightreg.services.import_files). Its columns are recognised by
their headers in Dutch, English or German, or mapped by staff (nightreg.services.import_columns);
the mapping staff chose is remembered per site. Each row passes the kiosk's validation (no limit
on how long ago the arrival was: a register is history), plus departed_at, after the spreadsheet
habits are undone: a date without a time takes the site's usual arrival or departure hour, an
empty persons cell is 1, a row without a kind column gets its kind from its cells, and a file
with only a departure column uses it as the expected departure too (a departure still ahead is
only expected). Row errors are written for the member of staff who imports ("row 14: the
residence is empty"), not in the visitor's voice.

Idempotent: a row whose visit is already in the site's register (the same reference, or the same
subject arriving in the same minute), or earlier in the same file, is not imported again; with
`update` its stored values are replaced by the file's where they differ (the columns the file
has; a departure is never taken away), each changed visit audited as `visit_corrected` with
before and after. Re-importing a site's own export imports nothing. A reference that another
site uses is replaced by a new one; `source` is kept when it is one of kiosk/staff/api, else
"staff". Imported visits get a random private-link hash nobody holds, no idempotency key.

All or nothing, in one pass, off the event loop: the file is read and the rows checked in a
worker thread (a large file: in worker processes, MAX_WORKERS of them each checking every
other chunk, so that the parsing holds neither the app's interpreter lock nor its core), a
batch ahead of the database, which checks the batch against the register and inserts it in
one write transaction (a savepoint a batch: a drawn reference the register holds already is
drawn again; on PostgreSQL a COPY; on SQLite the driver's executemany); each distinct text of a
column is checked once an import (validation.FormMemo: a register repeats its names, towns,
dates and lengths); once a bad row is seen nothing more is written, every
further row is still checked for the report, and the transaction is rolled back. A dry run does
the same checks without writing. `register_imported` (counts, file name) is written in the same
transaction. Memory stays flat: rows are streamed; a dry run keeps only the keys of the rows it
has seen (a real import finds those in the register). On SQLite the write lock is held for the
whole import: kiosk check-ins wait that long (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import multiprocessing
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import IO, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import String, Table, any_, bindparam, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Site, Visit
from nightreg.security import REFERENCE_ALPHABET
from nightreg.services import audit, visits
from nightreg.services.access import Actor
from nightreg.services.import_columns import (
    FIELDS,
    SKIP,
    guess_columns,
    infer_kind,
    known_headers,
    mapping_problems,
    missing_fields,
    normalise_header,
    parse_datetime,
    parse_hour,
    read_kind,
)
from nightreg.services.import_files import ImportFileError, SheetFile, open_file
from nightreg.services.sites import scoped_site
from nightreg.services.transfer import unescape_cell
from nightreg.validation import FieldError, FormMemo, validate_checkin
from nightreg.vocabulary import SOURCES

IMPORT_PERMISSION = "register.edit"
# Rows of an import per insert. Small enough that the event loop's share of a batch (checking
# it against the register, preparing the insert) is a few milliseconds: other requests wait
# no longer than that.
BATCH_SIZE = 500
# A file this large is read and checked by worker processes (up to MAX_WORKERS, one a core),
# in chunks of PROCESS_BATCH_SIZE rows, instead of a thread of the app: the parsing then
# shares neither the app's interpreter lock nor its core, so other requests are answered as
# quickly during an import as without one. Small files (most uploads, the tests) are not
# worth a process.
PROCESS_MIN_BYTES = 1_000_000
PROCESS_BATCH_SIZE = 2_000
MAX_WORKERS = 2
WORKER_NICENESS = 0
# A season's register repeats its dates: each distinct date text is parsed once an import.
PARSED_CACHE_SIZE = 4096
PREVIEW_ROWS = 20  # rows the mapping step shows as they would be stored

# A bad file should not fill memory with its report: further bad rows are counted, not kept.
MAX_REPORTED_ERRORS = 10_000
# A departure in the file may lie a little ahead of this server's clock (clocks differ).
DEPARTURE_SLACK = timedelta(minutes=5)
DEFAULT_ARRIVAL_TIME = time(14, 0)
DEFAULT_DEPARTURE_TIME = time(12, 0)
# Cells quoted in a row error are cut to this length.
QUOTE_LENGTH = 40

# Row errors for the member of staff who imports, by the visitor's message they stand for.
MSG_ARRIVAL_EMPTY = N_("the arrival is empty")
MSG_DEPARTED_BEFORE = N_("the departure is before the arrival")
MSG_DEPARTED_FUTURE = N_("the departure “%(value)s” is still to come")
MSG_EXTRA_CELLS = N_("the row has more cells than the header has columns")
MSG_NO_KIND = N_(
    "no boat name, registration, MMSI or licence plate tells what kind of visit this is, and"
    " this site registers no overnight stays"
)
MSG_DATE = N_("the %(field)s “%(value)s” is not a date (write 28-11-2026 or 28-11-2026 21:30)")
MSG_FALLBACK = N_("%(field)s: %(problem)s")
STAFF_MESSAGES: dict[str, str] = {
    "Please enter your name.": N_("the name is empty"),
    "Please enter your place of residence.": N_("the residence is empty"),
    "Please enter when you expect to leave.": N_("the departure is empty"),
    "Please choose what you are registering.": N_(
        "the kind “%(value)s” is not one this site registers"
    ),
    "Please use at most %(max)s characters.": N_("the %(field)s is longer than %(max)s characters"),
    "Please enter a date and time like 2026-07-14 21:30.": MSG_DATE,
    "The arrival must be within the last 7 days.": N_("the arrival is too long ago"),
    "The arrival cannot be more than a day ahead.": N_(
        "the arrival “%(value)s” is more than a day ahead"
    ),
    "The expected departure must be after the arrival.": N_(
        "the departure is not after the arrival"
    ),
    "The expected departure must be within a year of the arrival.": N_(
        "the stay is longer than a year"
    ),
    "Please enter a number of persons from 1 to 99.": N_(
        "the number of persons “%(value)s” is not a number from 1 to 99"
    ),
    "Please choose a country from the list.": N_(
        "the %(field)s “%(value)s” is not a two-letter country code such as NL"
    ),
    "Please enter a valid e-mail address.": N_("the e-mail address “%(value)s” is not valid"),
    "Please enter a valid phone number.": N_("the phone number “%(value)s” is not valid"),
    "Please choose an option from the list.": N_(
        "the %(field)s “%(value)s” is not one of its choices"
    ),
    "Please enter the name of the boat.": N_("the boat has no name"),
    "Please enter the registration or the MMSI number.": N_(
        "the boat has neither a registration nor an MMSI"
    ),
    "An MMSI number has 9 digits, starting with 201 to 775.": N_(
        "the MMSI “%(value)s” is not 9 digits starting with 201 to 775"
    ),
    "This IMO number is not valid; please check it.": N_(
        "the IMO number “%(value)s” has a wrong check digit"
    ),
    "Please enter a length from 1 to 100 metres.": N_(
        "the length “%(value)s” is not 1 to 100 metres"
    ),
    "Please enter the licence plate.": N_("the vehicle has no licence plate"),
    "Please enter a valid licence plate.": N_("the licence plate “%(value)s” is not valid"),
}
# How a row error names a field (lower case, inside a sentence).
FIELD_WORDS: dict[str, str] = {
    "reference": N_("reference"),
    "kind": N_("kind"),
    "source": N_("source"),
    "arrived_at": N_("arrival"),
    "expected_departure_at": N_("expected departure"),
    "departed_at": N_("departure"),
    "persons": N_("number of persons"),
    "guest_name": N_("name"),
    "residence": N_("residence"),
    "country": N_("country"),
    "id_document_type": N_("ID document type"),
    "phone": N_("phone number"),
    "email": N_("e-mail address"),
    "berth": N_("berth"),
    "vessel_name": N_("boat's name"),
    "registration": N_("registration"),
    "mmsi": N_("MMSI"),
    "flag": N_("flag"),
    "vessel_type": N_("type of boat"),
    "length_m": N_("length"),
    "last_port": N_("last port"),
    "next_port": N_("next port"),
    "plate": N_("licence plate"),
    "plate_country": N_("country of the plate"),
    "vehicle_type": N_("type of vehicle"),
    "unit": N_("unit"),
    "company": N_("company"),
    "notes": N_("notes"),
}

_visit = cast(Table, Visit.__table__)
# What --update compares and may replace: a visit's fields (not its reference, kind or source).
_UPDATABLE = tuple(f for f in FIELDS if f not in ("reference", "kind", "source"))
_STORED = (_visit.c.id, _visit.c.site_id, _visit.c.reference, _visit.c.subject_key,
           _visit.c.arrived_at, _visit.c.kind)  # fmt: skip
# The lookups of each batch, built once; their lists are expanding parameters (no per-value
# coercion of a 500-value IN list on the event loop).
_BY_REFERENCE = select(*_STORED).where(
    _visit.c.reference.in_(bindparam("references", expanding=True))
)
_BY_SUBJECT = select(*_STORED).where(
    _visit.c.site_id == bindparam("site_id"),
    _visit.c.subject_key.in_(bindparam("subjects", expanding=True)),
    _visit.c.arrived_at >= bindparam("low", type_=_visit.c.arrived_at.type),
    _visit.c.arrived_at < bindparam("high", type_=_visit.c.arrived_at.type),
)
# On PostgreSQL each list is one array parameter instead: a statement of 2,000 parameters is
# planned generically from its sixth execution on (asyncpg prepares it once), and the generic
# plan compares every visit of the batch's days with each of the 2,000 values in turn (160-240
# ms a batch instead of 5-10).
_TEXTS = postgresql.ARRAY(String)
_BY_REFERENCE_PG = select(*_STORED).where(
    _visit.c.reference == any_(bindparam("references", type_=_TEXTS))
)
_BY_SUBJECT_PG = select(*_STORED).where(
    _visit.c.site_id == bindparam("site_id"),
    _visit.c.subject_key == any_(bindparam("subjects", type_=_TEXTS)),
    _visit.c.arrived_at >= bindparam("low", type_=_visit.c.arrived_at.type),
    _visit.c.arrived_at < bindparam("high", type_=_visit.c.arrived_at.type),
)
_REFERENCES_USED = select(_visit.c.reference).where(
    _visit.c.reference.in_(bindparam("references", expanding=True))
)
# Rows an import remembers (hashes) to write one batch while it sorts the next: ~10 MB, twice
# that when the file has references.
OVERLAP_MAX_ROWS = 150_000
# Attempts at inserting a batch whose drawn references clash with the register's.
_INSERT_ATTEMPTS = 5
_PARAMS = "__params__"  # a row's driver parameters (visits.BulkRows), made in the worker thread
_KEYED = ("kind", "guest_name", "residence", "vessel_name", "registration", "mmsi", "plate")


class MappingNeeded(ImportFileError):
    """The file's columns need a person's choice (the mapping step): unknown headers, a field
    named by two columns, or a field the register needs that no column fills."""

    def __init__(self, plan: FilePlan) -> None:
        super().__init__("the columns need to be mapped")
        self.plan = plan


@dataclass
class FilePlan:
    """A file's header and what the import makes of each column."""

    filename: str
    format: str
    encoding: str
    delimiter: str
    sheet: str
    headers: list[str]
    columns: list[str | None]  # field, SKIP, or None: not recognised
    samples: list[list[str]] = field(default_factory=list)  # the first rows' cells
    preview: list[tuple[int, dict[str, Any] | None, dict[str, FieldError]]] = field(
        default_factory=list
    )  # (row, stored values or None, errors)

    @property
    def unknown(self) -> list[str]:
        return [h for h, c in zip(self.headers, self.columns, strict=True) if c is None]

    @property
    def twice(self) -> list[str]:
        return mapping_problems(self.columns)

    @property
    def missing(self) -> list[str]:
        return missing_fields(self.columns)

    @property
    def ready(self) -> bool:
        return not (self.unknown or self.twice or self.missing)


@dataclass(frozen=True)
class RowError:
    line: int  # the row's number as a spreadsheet shows it (the header is row 1)
    errors: dict[str, FieldError]  # field -> what is wrong, for staff ("" for the whole row)


@dataclass
class ImportReport:
    filename: str
    dry_run: bool
    update: bool = False
    format: str = "CSV"
    encoding: str = ""
    delimiter: str = ""
    sheet: str = ""
    ignored_columns: tuple[str, ...] = ()
    mapped: tuple[tuple[str, str], ...] = ()  # (header, field) of every column read
    rows: int = 0  # data rows read (empty rows are skipped)
    bad_rows: int = 0
    new: int = 0  # rows not in the register yet (imported, or to be imported)
    existing: int = 0  # rows already in the register (or earlier in the file)
    updated: int = 0  # of those, visits whose stored values the file changes (with `update`)
    imported: int = 0  # rows written (0 in a dry run and whenever a row is bad)
    references_kept: int = 0  # new rows that keep the reference in the file
    errors: list[RowError] = field(default_factory=list)  # the first MAX_REPORTED_ERRORS

    @property
    def ok(self) -> bool:
        return self.bad_rows == 0

    @property
    def errors_not_shown(self) -> int:
        return self.bad_rows - len(self.errors)


_REFERENCE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
_DATE_ONLY = re.compile(r"[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}")
_DATE_ONLY_LENGTH = 12  # the longest text _DATE_ONLY matches


def _new_reference(bits: int | None = None) -> str:
    """Like security.new_reference (40 random bits, Crockford base32)."""
    if bits is None:
        bits = int.from_bytes(secrets.token_bytes(5), "big")
    chars = "".join(REFERENCE_ALPHABET[(bits >> shift) & 31] for shift in range(35, -5, -5))
    return f"{chars[:4]}-{chars[4:]}"


# Base32 of 5 random bytes is 8 characters of 5 bits each, most significant first, as
# _new_reference draws them: only the alphabet differs.
_BASE32_TO_REFERENCE = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
                                       REFERENCE_ALPHABET.encode())  # fmt: skip


def _new_references(count: int) -> Iterator[str]:
    """`count` new references from one draw of random bytes (base32 at C speed)."""
    pool = base64.b32encode(secrets.token_bytes(5 * count)).translate(_BASE32_TO_REFERENCE)
    text = pool.decode("ascii")
    for start in range(0, 8 * count, 8):
        yield f"{text[start : start + 4]}-{text[start + 4 : start + 8]}"


def _minute(at: datetime) -> int:
    return int(at.timestamp()) // 60


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_LENGTH else text[: QUOTE_LENGTH - 1] + "…"


def staff_error(name: str, error: FieldError, value: str) -> FieldError:
    """A validation error in the words of staff: "the residence is empty"."""
    params: dict[str, str | int] = {**error.params, "value": _quote(value)}
    params["field"] = FIELD_WORDS.get(name, name)
    message = STAFF_MESSAGES.get(error.message)
    if message is None:
        return FieldError(MSG_FALLBACK, {**params, "problem": error.message})
    return FieldError(message, params)


def row_message(error: FieldError, translate: Callable[[str], str] = str) -> str:
    """A row error as text, its field's name and any inner message translated too."""
    params = dict(error.params)
    for name in ("field", "problem"):
        if isinstance(params.get(name), str):
            params[name] = translate(str(params[name]))
    text = translate(error.message)
    try:
        return text % params if params else text
    except (KeyError, ValueError, TypeError):
        return text


@dataclass(frozen=True)
class SiteFacts:
    """What reading a site's rows needs of the site (picklable: a worker process gets it)."""

    id: int
    visit_kinds: tuple[str, ...]
    timezone: str
    usual_arrival_time: str
    usual_departure_time: str

    @classmethod
    def of(cls, site: Site) -> SiteFacts:
        return cls(
            id=site.id,
            visit_kinds=tuple(site.visit_kinds),
            timezone=site.timezone,
            usual_arrival_time=site.usual_arrival_time,
            usual_departure_time=site.usual_departure_time,
        )


@dataclass
class _Chunk:
    """A batch of the file's rows as read and checked: what the report counts of them, and
    the values of the good ones (None once a bad row was seen: nothing more is written)."""

    number: int  # 0, 1, 2, ... in the file's order
    rows: int = 0
    bad_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    values: list[dict[str, Any]] | None = None


class _Rows:
    """Turns the file's rows into insertable values for one site, collecting what is wrong."""

    def __init__(
        self, site: SiteFacts, opened: SheetFile, columns: Sequence[str], now: datetime
    ) -> None:
        self.site_id = site.id
        self.kinds = site.visit_kinds
        self.tz = ZoneInfo(site.timezone)
        self.arrival_time = parse_hour(site.usual_arrival_time) or DEFAULT_ARRIVAL_TIME
        self.departure_time = parse_hour(site.usual_departure_time) or DEFAULT_DEPARTURE_TIME
        self.file = opened
        self.columns = list(columns)
        self.width = len(self.columns)
        self.has = set(self.columns)
        self.now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
        self.parse = lru_cache(maxsize=PARSED_CACHE_SIZE)(parse_datetime)
        self.memo = FormMemo()  # each distinct text of a column is checked once
        # A real import also turns each row into the driver's parameters here, in the worker
        # thread or process (visits.BulkRows), so that the event loop only hands them on.
        self.bulk: visits.BulkRows | None = None

    def chunks(self, size: int, part: int = 0, parts: int = 1) -> Iterator[_Chunk]:
        """The file's rows in chunks of `size` non-empty rows. With `parts` > 1 only every
        parts-th chunk from `part` on is checked (the others are only counted through): each of
        `parts` worker processes reads the whole file and checks its share."""
        bad = False  # a bad row was seen (by this reader): no more values
        number = 0
        chunk = _Chunk(0, values=[])
        tokens = self._tokens(size)
        for line, cells in self.file.records:
            if not "".join(cells).strip():
                continue  # an empty row
            if chunk.rows >= size:
                if number % parts == part:
                    yield chunk
                number += 1
                chunk = _Chunk(number, values=None if bad else [])
            chunk.rows += 1
            if number % parts != part:
                continue
            values, errors = self.row(cells, next(tokens))
            if errors:
                bad = True
                chunk.bad_rows += 1
                chunk.values = None
                if len(chunk.errors) < MAX_REPORTED_ERRORS:
                    chunk.errors.append(RowError(line, errors))
            elif values is not None and chunk.values is not None:
                chunk.values.append(values)
        if chunk.rows and number % parts == part:
            yield chunk

    @staticmethod
    def _tokens(size: int) -> Iterator[str]:
        """Private-link hashes nobody holds (visits.visit_row's random value), drawn `size` at
        a time."""
        while True:
            pool = secrets.token_bytes(32 * size).hex()
            for start in range(0, 64 * size, 64):
                yield pool[start : start + 64]

    def _complete(self, form: dict[str, str], name: str, default: time) -> None:
        """A date without a time gets the site's usual hour, so validation reads it as such."""
        text = form.get(name, "").strip()
        if text and len(text) <= _DATE_ONLY_LENGTH and _DATE_ONLY.fullmatch(text):
            form[name] = f"{text} {default.hour:02d}:{default.minute:02d}"

    def row(
        self, cells: list[str], token_hash: str | None = None
    ) -> tuple[dict[str, Any] | None, dict[str, FieldError]]:
        """One row's insertable values (visits.visit_row), or its errors for staff.

        `token_hash`: the visit's private-link hash (random; else visit_row draws one)."""
        errors: dict[str, FieldError] = {}
        if len(cells) > self.width and any(c.strip() for c in cells[self.width :]):
            errors[""] = FieldError(MSG_EXTRA_CELLS)
        # A short row (trailing empty cells left out, as spreadsheets do) leaves fields empty.
        form = dict(zip(self.columns, cells, strict=False))
        form.pop(SKIP, None)
        if "'" in "".join(cells):  # an apostrophe somewhere: maybe one escape_cell added
            form = {name: unescape_cell(cell) if cell[:1] == "'" else cell
                    for name, cell in form.items()}  # fmt: skip
        kind = read_kind(form.get("kind", "")) if "kind" in self.has else infer_kind(form)
        if not form.get("persons", "").strip():
            form["persons"] = "1"
        self._complete(form, "arrived_at", self.arrival_time)
        self._complete(form, "expected_departure_at", self.departure_time)
        self._complete(form, "departed_at", self.departure_time)
        departed_text = form.get("departed_at", "").strip()
        departed_at = None
        if departed_text:
            departed_at = self.parse(departed_text, self.tz)
        if "expected_departure_at" not in self.has:
            # Only a departure column: it is also when the guest was expected to leave, and a
            # departure still to come is only expected.
            form["expected_departure_at"] = departed_text
            if departed_at is not None and departed_at > self.now + DEPARTURE_SLACK:
                departed_text, departed_at = "", None
        if not form.get("arrived_at", "").strip():
            errors["arrived_at"] = FieldError(MSG_ARRIVAL_EMPTY)
        data, field_errors = validate_checkin(
            form,
            kind=kind,
            allowed_kinds=self.kinds,
            now=self.now,
            tz=self.tz,
            max_arrival_past=None,
            parse_datetime=self.parse,
            memo=self.memo,
        )
        for name, error in field_errors.items():
            if name in errors:
                continue
            if name == "kind" and "kind" not in self.has:
                errors[name] = FieldError(MSG_NO_KIND)
            else:
                errors[name] = staff_error(name, error, form.get(name, ""))
        if departed_text:
            if departed_at is None:
                errors.setdefault(
                    "departed_at",
                    FieldError(MSG_DATE, {"field": FIELD_WORDS["departed_at"],
                                          "value": _quote(departed_text)}),
                )  # fmt: skip
            elif data is not None and departed_at < data.arrived_at:
                errors["departed_at"] = FieldError(MSG_DEPARTED_BEFORE)
            elif departed_at > self.now + DEPARTURE_SLACK:
                errors["departed_at"] = FieldError(
                    MSG_DEPARTED_FUTURE, {"value": _quote(departed_text)}
                )
        if errors or data is None:
            return None, errors
        reference = form.get("reference", "").strip().upper()
        source = form.get("source", "").strip().lower()
        # Nobody holds a private link to an imported visit (a random value, from _tokens or
        # drawn by visit_row, stands in its place) and it has no idempotency key.
        values = visits.visit_row(
            data,
            site_id=self.site_id,
            source=source if source in SOURCES else "staff",
            now=self.now,
            departed_at=departed_at,
            private_token_hash=token_hash,
        )
        values["reference"] = reference if reference and _REFERENCE.fullmatch(reference) else None
        if self.bulk is not None:
            values[_PARAMS] = self.bulk.params(values)
        return values, {}


# --- the file and its columns -----------------------------------------------------------------


def _plan(opened: SheetFile, filename: str, remembered: Mapping[str, str]) -> FilePlan:
    return FilePlan(
        filename=filename,
        format=opened.format,
        encoding=opened.encoding,
        delimiter=opened.delimiter,
        sheet=opened.sheet,
        headers=opened.headers,
        columns=guess_columns(opened.headers, remembered),
    )


def _describe_problems(plan: FilePlan) -> str:
    parts = []
    if plan.unknown:
        parts.append("columns not recognised: " + ", ".join(plan.unknown))
    if plan.twice:
        parts.append("fields named by two columns: " + ", ".join(plan.twice))
    if plan.missing:
        parts.append("no column for: " + ", ".join(plan.missing))
    return "; ".join(parts)


def _remembered(site: Site, mapping: Mapping[str, str] | None) -> dict[str, str]:
    stored = site.import_mapping if isinstance(site.import_mapping, dict) else {}
    return {**stored, **{normalise_header(k): v for k, v in (mapping or {}).items()}}


async def _site(db: Database, actor: Actor, site_id: int) -> Site:
    async with db.read() as session:
        return await scoped_site(session, actor, IMPORT_PERMISSION, site_id=site_id)


def _inspect(
    source: bytes | IO[bytes], site: Site, filename: str, mapping: Mapping[str, str] | None,
    sheet: str | None, now: datetime,
) -> FilePlan:  # fmt: skip
    """The plan of a file with the first rows as they would be stored (runs in a thread)."""
    opened = open_file(source, sheet=sheet)
    try:
        plan = _plan(opened, filename, _remembered(site, mapping))
        columns = [c or SKIP for c in plan.columns]
        rows = _Rows(SiteFacts.of(site), opened, columns, now)
        for line, cells in opened.records:
            if not any(c.strip() for c in cells):
                continue
            plan.samples.append(cells[: len(columns)])
            values, errors = rows.row(cells)
            plan.preview.append((line, values, errors))
            if len(plan.preview) >= PREVIEW_ROWS:
                break
    finally:
        opened.close()
    return plan


async def inspect_file(
    db: Database,
    actor: Actor,
    site_id: int,
    source: bytes | IO[bytes],
    *,
    filename: str,
    now: datetime,
    mapping: Mapping[str, str] | None = None,
    sheet: str | None = None,
) -> FilePlan:
    """What the import makes of a file's columns, and its first rows as they would be stored.

    `mapping` (header -> field or SKIP) goes before the site's remembered mapping and the
    recognised headers. Raises ImportFileError when the file cannot be read at all.
    """
    site = await _site(db, actor, site_id)
    return await asyncio.to_thread(_inspect, source, site, filename, mapping, sheet, now)


async def remember_mapping(
    db: Database, actor: Actor, site_id: int, mapping: Mapping[str, str]
) -> None:
    """Keep staff's choices for a site's columns (by normalised header) for the next file."""
    chosen = {normalise_header(k): v for k, v in mapping.items() if v in FIELDS or v == SKIP}
    if not chosen:
        return
    known = known_headers()
    async with db.write() as session:
        site = await scoped_site(session, actor, IMPORT_PERMISSION, site_id=site_id)
        stored = dict(site.import_mapping) if isinstance(site.import_mapping, dict) else {}
        # What the import recognises by itself needs no remembering (unless it overrides an
        # earlier choice).
        chosen = {k: v for k, v in chosen.items() if k and (known.get(k) != v or k in stored)}
        if all(stored.get(k) == v for k, v in chosen.items()):
            return
        stored.update(chosen)
        site.import_mapping = stored


# --- the register: what is there already ------------------------------------------------------


@dataclass
class _Seen:
    """Rows of this file seen by a dry run (which writes nothing, so the register cannot tell):
    hashes of their references and subjects, a few bytes a row."""

    references: set[int] = field(default_factory=set)
    subjects: set[int] = field(default_factory=set)


async def _stored_matches(
    conn: AsyncConnection | AsyncSession, site_id: int, batch: list[dict[str, Any]], pg: bool
) -> tuple[dict[str, Any], dict[tuple[str, int], Any]]:
    """Visits the batch's references name (any site), and this site's visits of the batch's
    subjects arriving in the batch's minutes."""
    references = [v["reference"] for v in batch if v["reference"]]
    by_reference: dict[str, Any] = {}
    if references:
        result = await conn.execute(
            _BY_REFERENCE_PG if pg else _BY_REFERENCE, {"references": references}
        )
        by_reference = {row.reference: row for row in result}
    subjects = list({v["subject_key"] for v in batch})
    arrivals = [v["arrived_at"] for v in batch]
    low = min(arrivals).replace(second=0, microsecond=0)
    high = max(arrivals).replace(second=0, microsecond=0) + timedelta(minutes=1)
    result = await conn.execute(
        _BY_SUBJECT_PG if pg else _BY_SUBJECT,
        {"site_id": site_id, "subjects": subjects, "low": low, "high": high},
    )
    by_subject = {(row.subject_key, _minute(row.arrived_at)): row for row in result}
    return by_reference, by_subject


def _assign_references(batch: list[dict[str, Any]], taken: set[str]) -> int:
    """Keep each new row's reference if it is free, else draw one; returns how many were kept.

    `taken` holds the references the batch may not use besides the register's (references in
    other sites, earlier rows of a dry run). The register is not asked about the drawn ones: a
    clash (once in ~10^12 draws) fails the batch's insert, which is then drawn again
    (`_Importer._insert`). One query a batch less, and no query whose plan depends on how
    many visits the planner thinks the table holds.
    """
    kept = 0
    drawn = _new_references(len(batch))
    for values in batch:
        reference = values["reference"]
        if reference is None or reference in taken:
            reference = next(drawn)
            while reference in taken:
                reference = _new_reference()
        else:
            kept += 1
        values["reference"] = reference
        taken.add(reference)
    return kept


def _audit_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _changes(
    stored: Mapping[str, Any], values: Mapping[str, Any], fields: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The file's values that differ from the stored ones: (before, after) for the audit."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name in fields:
        new = values.get(name)
        old = stored[name]
        if name == "departed_at" and new is None:
            continue  # an import never takes a departure away
        if isinstance(old, datetime) and isinstance(new, datetime):
            if old.astimezone(UTC) == new.astimezone(UTC):
                continue
        elif isinstance(old, Decimal) or isinstance(new, Decimal):
            if old is not None and new is not None and Decimal(old) == Decimal(new):
                continue
        elif old == new:
            continue
        before[name] = _audit_value(old)
        after[name] = _audit_value(new)
    return before, after


class _Importer:
    """Sorts each batch into new rows and rows already there, and writes (unless a dry run)."""

    def __init__(
        self, db: Database, actor: Actor, site: Site, report: ImportReport, fields: Sequence[str],
        now: datetime,
    ) -> None:  # fmt: skip
        self.db = db
        self.actor = actor
        self.site = site
        self.report = report
        self.fields = [f for f in _UPDATABLE if f in fields]
        self.now = now
        self.seen = _Seen()
        self.whole_file = False  # sort() reads on a connection that does not see the writes
        self.bulk: visits.BulkRows | None = None

    async def batch(
        self, conn: AsyncConnection | AsyncSession, batch: list[dict[str, Any]]
    ) -> None:
        """Sort a batch and write it (unless a dry run), on one connection."""
        new, known = await self.sort(conn, batch)
        await self.write(conn, new, known)

    async def sort(
        self, conn: AsyncConnection | AsyncSession, batch: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]]]:
        """The batch's new rows (references assigned) and the rows already there (with the id
        of their visit), counted into the report. `conn` reads the register: the writing
        session itself, or (`whole_file`) another connection that does not see this import's
        rows, which are then told apart by the hashes of the file's rows seen so far."""
        by_reference, by_subject = await _stored_matches(
            conn, self.site.id, batch, self.db.engine.dialect.name == "postgresql"
        )
        dry = self.report.dry_run
        seen = self.seen
        new: list[dict[str, Any]] = []
        known: list[tuple[int, dict[str, Any]]] = []
        taken: set[str] = set()  # references of other sites: these rows get new ones
        for values in batch:
            reference = values["reference"]
            subject = (values["subject_key"], _minute(values["arrived_at"]))
            stored = by_reference.get(reference) if reference else None
            if stored is not None and stored.site_id != self.site.id:
                taken.add(reference)
                stored = None
            if stored is None:
                stored = by_subject.get(subject)
            if stored is not None:
                known.append((stored.id, values))
                continue
            # Earlier in this file: the register shows those to the writing session, except
            # within this batch; a dry run and a reading connection remember them.
            subject_hash = hash(subject)
            reference_hash = hash(reference) if reference else None
            if subject_hash in seen.subjects or (
                reference_hash is not None and reference_hash in seen.references
            ):
                self.report.existing += 1
                continue
            seen.subjects.add(subject_hash)
            if reference_hash is not None:
                seen.references.add(reference_hash)
            new.append(values)
        if not dry and not self.whole_file:
            self.seen = _Seen()  # the register holds this batch from now on
        self.report.existing += len(known)
        self.report.new += len(new)
        if new and dry:
            # Nothing is written: only whether the file's references could be kept matters.
            self.report.references_kept += sum(
                1 for v in new if v["reference"] and v["reference"] not in taken
            )
        elif new:
            self.report.references_kept += _assign_references(new, taken)
        return new, known

    async def write(
        self,
        conn: AsyncConnection | AsyncSession,
        new: list[dict[str, Any]],
        known: list[tuple[int, dict[str, Any]]],
    ) -> None:
        """Update the rows already there (with --update) and insert the new ones."""
        dry = self.report.dry_run
        if known and self.report.update:
            await self._update(conn, known)
        if not dry and new and self.report.ok:
            assert isinstance(conn, AsyncSession)
            await self._insert(conn, new)
            self.report.imported += len(new)

    async def _insert(self, session: AsyncSession, new: list[dict[str, Any]]) -> None:
        """Insert the batch's new rows, in a savepoint: should a drawn reference be taken
        already (the unique index says so), the batch is rolled back and those drawn again."""
        for attempt in range(_INSERT_ATTEMPTS):
            try:
                async with session.begin_nested():
                    if self.bulk is None:
                        await visits.insert_batch(session, new)
                    else:
                        index = self.bulk.reference_index
                        for values in new:
                            values[_PARAMS][index] = values["reference"]
                        await self.bulk.insert(session, [values[_PARAMS] for values in new])
                return
            except IntegrityError:
                if attempt == _INSERT_ATTEMPTS - 1:
                    raise
                references = [v["reference"] for v in new]
                result = await session.execute(_REFERENCES_USED, {"references": references})
                used = set(result.scalars())
                if not used:
                    raise  # not a reference: nothing to draw again
                mine = set(references)
                for values in new:
                    if values["reference"] in used:
                        reference = _new_reference()
                        while reference in mine or reference in used:
                            reference = _new_reference()
                        values["reference"] = reference
                        mine.add(reference)

    async def _update(
        self, conn: AsyncConnection | AsyncSession, known: list[tuple[int, dict[str, Any]]]
    ) -> None:
        """Replace stored values with the file's where they differ, one audit event a visit."""
        ids = list({visit_id for visit_id, _values in known})
        columns = [_visit.c.id, _visit.c.kind, *(_visit.c[f] for f in _UPDATABLE)]
        result = await conn.execute(select(*columns).where(_visit.c.id.in_(ids)))
        stored_rows = {row.id: row._asdict() for row in result}
        events: list[dict[str, Any]] = []
        done: set[int] = set()
        for visit_id, values in known:
            stored = stored_rows[visit_id]
            if visit_id in done or stored["kind"] != values["kind"]:
                continue  # a boat in the file that is a car in the register is no update
            before, after = _changes(stored, values, self.fields)
            if not after:
                continue
            done.add(visit_id)
            self.report.updated += 1
            if self.report.dry_run or not self.report.ok:
                continue
            changed = {name: values.get(name) for name in after}
            merged = {**stored, **changed}
            changed.update(visits.keys_of({n: merged.get(n) for n in _KEYED}))
            changed["updated_at"] = self.now
            await conn.execute(update(_visit).where(_visit.c.id == visit_id).values(**changed))
            events.append(
                {
                    "action": "visit_corrected",
                    "at": self.now,
                    "site_id": self.site.id,
                    "object_type": "visit",
                    "object_id": visit_id,
                    "details": {
                        "reason": f"import {self.report.filename[:200]}",
                        "before": before,
                        "after": after,
                    },
                }
            )
        if events:
            assert isinstance(conn, AsyncSession)
            await audit.record_many(conn, self.actor, events)


class _Abort(Exception):
    """A bad row was found: roll the import back."""


async def _in_thread(rows: _Rows) -> AsyncIterator[_Chunk]:
    """The file's chunks, each read and checked in a worker thread while the caller writes the
    one before: the event loop never parses, and the file is read a chunk ahead."""
    iterator = rows.chunks(BATCH_SIZE)
    pending = asyncio.ensure_future(asyncio.to_thread(next, iterator, None))
    try:
        while True:
            chunk = await pending
            if chunk is None:
                return
            pending = asyncio.ensure_future(asyncio.to_thread(next, iterator, None))
            yield chunk
    finally:
        if not pending.done():
            await asyncio.wait([pending])


@dataclass(frozen=True)
class _Job:
    """What a worker process needs to read and check its share of a file."""

    path: str
    sheet: str | None
    site: SiteFacts
    columns: tuple[str, ...]
    now: datetime
    dialect: str | None  # "sqlite+aiosqlite" etc. for the driver's parameters; None: a dry run
    keep: tuple[str, ...] | None  # the values the importer needs (None: all of them)
    size: int
    part: int
    parts: int


@dataclass(frozen=True)
class _Failed:
    """A worker process could not go on: the error to raise in the app."""

    error: Exception


# What the importer reads of a row, unless it updates stored visits (then it needs them all).
_KEEP_DRY = ("reference", "subject_key", "arrived_at")
_KEEP_WRITE = (*_KEEP_DRY, _PARAMS)


def _work(job: _Job, pipe: Connection) -> None:
    """A worker process: read the file, check its share of the chunks, send them in order;
    then None. Nice, so that the app's own process keeps answering first."""
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    try:
        with open(job.path, "rb") as stream:
            opened = open_file(stream, sheet=job.sheet)
            try:
                rows = _Rows(job.site, opened, job.columns, job.now)
                if job.dialect is not None:
                    rows.bulk = visits.BulkRows(make_url(job.dialect + "://").get_dialect()())
                keep = job.keep
                for chunk in rows.chunks(job.size, job.part, job.parts):
                    if keep is not None and chunk.values:
                        chunk.values = [{k: v[k] for k in keep} for v in chunk.values]
                    pipe.send(chunk)
            finally:
                opened.close()
        pipe.send(None)
    except Exception as exc:
        failed = exc if isinstance(exc, ImportFileError) else RuntimeError(repr(exc))
        with contextlib.suppress(OSError, ValueError):
            pipe.send(_Failed(failed))
    finally:
        pipe.close()


_CONTEXT: ForkServerContext | None = None


def _context() -> ForkServerContext:
    """Worker processes come from a fork server that has imported this module: a fork of a
    clean process (not of the app with its threads and connections), without the start-up
    cost of a fresh interpreter for every import."""
    global _CONTEXT
    if _CONTEXT is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        _CONTEXT = context
    return _CONTEXT


def _worker_count() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def _file_path(source: bytes | IO[bytes]) -> str | None:
    """The path of a file large enough to be read by worker processes; else None."""
    if isinstance(source, bytes | bytearray):
        return None
    name = getattr(source, "name", None)
    if not isinstance(name, str):
        return None
    try:
        return name if os.path.getsize(name) >= PROCESS_MIN_BYTES else None
    except OSError:
        return None


def _start(jobs: list[_Job]) -> list[tuple[BaseProcess, Connection]]:
    context = _context()
    started: list[tuple[BaseProcess, Connection]] = []
    try:
        for job in jobs:
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_work, args=(job, sender), daemon=True)
            process.start()
            sender.close()
            started.append((process, receiver))
    except BaseException:
        _stop(started)
        raise
    return started


def _stop(workers: list[tuple[BaseProcess, Connection]]) -> None:
    for process, receiver in workers:
        receiver.close()
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()


def _receive(receiver: Connection) -> _Chunk | _Failed | None:
    try:
        return cast("_Chunk | _Failed | None", receiver.recv())
    except EOFError:
        return _Failed(RuntimeError("an import worker process ended without a word"))


async def _in_processes(jobs: list[_Job]) -> AsyncIterator[_Chunk]:
    """The file's chunks from worker processes, in the file's order (chunk n from worker
    n % len(jobs)). The pipes hold a chunk or so each: memory stays flat."""
    workers = await asyncio.to_thread(_start, jobs)
    pending: asyncio.Future[_Chunk | _Failed | None] | None = None
    try:
        number = 0
        pending = asyncio.ensure_future(asyncio.to_thread(_receive, workers[0][1]))
        while True:
            chunk = await pending
            pending = None
            if isinstance(chunk, _Failed):
                raise chunk.error
            if chunk is None:
                return
            if chunk.number != number:
                raise RuntimeError(f"import worker sent chunk {chunk.number}, not {number}")
            number += 1
            receiver = workers[number % len(workers)][1]
            pending = asyncio.ensure_future(asyncio.to_thread(_receive, receiver))
            yield chunk
    finally:
        if pending is not None and not pending.done():
            for process, _receiver in workers:
                process.kill()  # unblocks a receive that waits on it
            await asyncio.wait([pending])
        await asyncio.to_thread(_stop, workers)


def _chunks(rows: _Rows, source: bytes | IO[bytes], job: _Job | None) -> AsyncIterator[_Chunk]:
    if job is None:
        return _in_thread(rows)
    parts = _worker_count()
    return _in_processes(
        [dataclasses.replace(job, part=part, parts=parts) for part in range(parts)]
    )


async def _sort_and_write(
    db: Database, importer: _Importer, session: AsyncSession, chunks: AsyncIterator[_Chunk]
) -> None:
    """Sort each batch while the one before is written: the register is read on a connection
    of its own, so that the database inserts batch n (its indexes: most of an import's time on
    PostgreSQL) while this process reads and sorts batch n + 1. Rows of the file already
    written are told apart by the importer's memory of the file (`whole_file`), as a dry run's.
    That memory is a few dozen bytes a row: past OVERLAP_MAX_ROWS rows the import goes on one
    batch after the other, the writing session reading the register (which then holds every
    row written so far), so that memory stays flat however long the file.
    Without --update only: updating a row compares it with what the register holds."""
    importer.whole_file = True
    writing: asyncio.Future[None] | None = None
    try:
        async with db.engine.connect() as register:
            async for chunk in chunks:
                if (batch := _apply(importer.report, chunk)) is None:
                    continue
                if not importer.whole_file:
                    await importer.batch(session, batch)
                    continue
                new, _known = await importer.sort(register, batch)
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(importer.write(session, new, []))
                if len(importer.seen.subjects) >= OVERLAP_MAX_ROWS:
                    await writing
                    writing = None
                    importer.whole_file = False
                    importer.seen = _Seen()
        if writing is not None:
            await writing
    finally:
        if writing is not None:
            if not writing.done():
                # Not cancelled: the session's rollback must not meet a statement half sent.
                await asyncio.wait([writing])
            if not writing.cancelled():
                writing.exception()  # retrieved: the error being raised already says enough


def _apply(report: ImportReport, chunk: _Chunk) -> list[dict[str, Any]] | None:
    """Count a chunk into the report; its values if they are to be sorted and written."""
    report.rows += chunk.rows
    report.bad_rows += chunk.bad_rows
    room = MAX_REPORTED_ERRORS - len(report.errors)
    if room > 0:
        report.errors.extend(chunk.errors[:room])
    return chunk.values if report.ok and chunk.values else None


async def import_register(
    db: Database,
    actor: Actor,
    site_id: int,
    source: bytes | IO[bytes],
    *,
    filename: str,
    now: datetime,
    dry_run: bool = False,
    update: bool = False,
    mapping: Mapping[str, str] | None = None,
    sheet: str | None = None,
    ask: bool = False,
    remember: bool = False,
) -> ImportReport:
    """Check (dry run) or import a register file into a site; all rows or none.

    `mapping` (header -> field or SKIP) goes before the site's remembered mapping and the
    recognised headers; with `remember` it is kept for the site. Columns nobody recognised are
    skipped and named in the report, or, with `ask`, raise MappingNeeded (the page's mapping
    step). Raises ImportFileError when the file cannot be read at all (MappingNeeded when a
    field is named twice or one the register needs is missing); bad rows are in the report.
    """
    site = await _site(db, actor, site_id)
    opened = await asyncio.to_thread(open_file, source, sheet=sheet)
    try:
        plan = _plan(opened, filename, _remembered(site, mapping))
        if (ask and not plan.ready) or plan.twice or plan.missing:
            if ask:
                opened.close()
                raise MappingNeeded(
                    await asyncio.to_thread(_inspect, source_again(source), site, filename,
                                            mapping, sheet, now)
                )  # fmt: skip
            raise ImportFileError(_describe_problems(plan))
        if remember and mapping:
            await remember_mapping(db, actor, site.id, mapping)
        columns = [c or SKIP for c in plan.columns]
        report = ImportReport(
            filename=filename,
            dry_run=dry_run,
            update=update,
            format=opened.format,
            encoding=opened.encoding,
            delimiter=opened.delimiter,
            sheet=opened.sheet,
            ignored_columns=tuple(h for h, c in zip(plan.headers, plan.columns, strict=True)
                                  if c is None),
            mapped=tuple((h, c) for h, c in zip(plan.headers, columns, strict=True) if c),
        )  # fmt: skip
        rows = _Rows(SiteFacts.of(site), opened, columns, now)
        importer = _Importer(db, actor, site, report, columns, now)
        dialect = db.engine.dialect
        if not dry_run:
            rows.bulk = importer.bulk = visits.BulkRows(dialect)
        path = _file_path(source)
        job = None
        if path is not None:
            job = _Job(
                path=path, sheet=sheet, site=SiteFacts.of(site), columns=tuple(columns),
                now=now, dialect=None if dry_run else f"{dialect.name}+{dialect.driver}",
                keep=None if update else (_KEEP_DRY if dry_run else _KEEP_WRITE),
                size=PROCESS_BATCH_SIZE, part=0, parts=1,
            )  # fmt: skip
        if dry_run:
            async with db.engine.connect() as conn:
                async for chunk in _chunks(rows, source, job):
                    if (batch := _apply(report, chunk)) is not None:
                        await importer.batch(conn, batch)
            return report
        try:
            async with db.write() as session:
                if update:
                    async for chunk in _chunks(rows, source, job):
                        if (batch := _apply(report, chunk)) is not None:
                            await importer.batch(session, batch)
                else:
                    await _sort_and_write(db, importer, session, _chunks(rows, source, job))
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
                        "existing": report.existing,
                        "updated": report.updated,
                    },
                )
        except _Abort:
            report.imported = 0
            report.updated = 0
        return report
    finally:
        opened.close()


def source_again(source: bytes | IO[bytes]) -> bytes | IO[bytes]:
    """The same file from its start (a stream is read again)."""
    if not isinstance(source, bytes | bytearray):
        source.seek(0)
    return source


__all__ = [
    "FilePlan",
    "ImportFileError",
    "ImportReport",
    "MappingNeeded",
    "RowError",
    "import_register",
    "inspect_file",
    "parse_datetime",
    "remember_mapping",
    "row_message",
    "staff_error",
]
