"""Reading an imported register: a CSV (any of our delimiters and encodings) or an .xlsx sheet.

Both give the header's cells and then the rows, a row at a time, as text, with the row's number
as a spreadsheet shows it (the header is row 1): the import never holds the whole file.

CSV: UTF-8 (a BOM is dropped) when the whole file decodes as UTF-8, else Windows-1252 (older
Excel); `;`, `,` or a tab between cells, whichever splits the header into the most columns the
import recognises (then the most columns), or what an Excel "sep=;" first line says.
XLSX: openpyxl in read-only mode (rows are streamed from the zip), the first sheet or the one
named; formulas give their last computed value; a date cell that shows no time is a date alone.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from nightreg.services.import_columns import cell_text, known_headers, normalise_header

DELIMITERS = (";", ",", "\t")
# Far more than the export's columns plus any a spreadsheet adds; a header beyond it is no
# register (and 100,000 columns would cost every row a list of that length).
MAX_COLUMNS = 1_000
_ZIP_MAGIC = b"PK\x03\x04"


class ImportFileError(ValueError):
    """The file as a whole cannot be read (encoding, header, CSV syntax); nothing was imported."""


@dataclass
class SheetFile:
    """An opened file: what it is, its header and an iterator over its rows."""

    format: str  # "CSV" | "Excel"
    encoding: str  # "UTF-8" | "Windows-1252" | "" (Excel)
    delimiter: str  # "" for Excel
    sheet: str  # the sheet read ("" for CSV)
    headers: list[str]
    records: Iterator[tuple[int, list[str]]]  # (row number as a spreadsheet shows it, cells)
    _close: list[Callable[[], Any]] = field(default_factory=list)

    def close(self) -> None:
        """Let go of the file (the caller's stream itself stays open)."""
        for close in self._close:
            close()
        self._close.clear()


def open_file(source: bytes | IO[bytes], *, sheet: str | None = None) -> SheetFile:
    """Open a CSV or an .xlsx file (told by its first bytes, not its name)."""
    stream: IO[bytes] = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    start = stream.read(4)
    stream.seek(0)
    if start == _ZIP_MAGIC:
        return _open_xlsx(stream, sheet)
    return _open_csv(stream)


def _check_header(headers: list[str]) -> list[str]:
    if len(headers) > MAX_COLUMNS:
        raise ImportFileError(
            f"the header names {len(headers)} columns; a register has at most {MAX_COLUMNS}"
        )
    while headers and not headers[-1]:
        headers.pop()  # a spreadsheet's empty columns at the right
    if not any(headers):
        raise ImportFileError("the file is empty: the first row must name the columns")
    return headers


# --- CSV --------------------------------------------------------------------------------------


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
    """The header's cells, or None when the line is no CSV (a cell over the csv module's field
    limit, 128 KiB, raises csv.Error: a file error, not a server error)."""
    try:
        cells = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return None
    return [c.strip().strip("\ufeff").strip() for c in cells]


def _delimiter_score(line: str, delimiter: str) -> tuple[int, int]:
    cells = _header_cells(line, delimiter) or []
    known = known_headers()
    return sum(normalise_header(c) in known for c in cells), len(cells)


def _open_csv(stream: IO[bytes]) -> SheetFile:
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
            delimiter = max(DELIMITERS, key=lambda d: _delimiter_score(first, d))
    except UnicodeDecodeError:
        raise ImportFileError("the file is neither UTF-8 nor Windows-1252 text") from None
    header = _header_cells(first, delimiter)
    if header is None:
        raise ImportFileError("the header row cannot be read: a column name is too long")
    headers = _check_header(header)

    def records() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(text, delimiter=delimiter)
        line = lines_before + 1
        try:
            for cells in reader:
                yield line, cells
                line = lines_before + reader.line_num + 1
        except csv.Error as exc:
            raise ImportFileError(f"row {line}: {exc}") from None
        except UnicodeDecodeError:
            raise ImportFileError("the file is neither UTF-8 nor Windows-1252 text") from None

    name = "UTF-8" if encoding == "utf-8-sig" else "Windows-1252"
    return SheetFile("CSV", name, delimiter, "", headers, records(), [text.detach])


# --- XLSX -------------------------------------------------------------------------------------


def _row_texts(cells: tuple[Any, ...]) -> list[str]:
    texts = []
    for cell in cells:
        value = getattr(cell, "value", None)
        if value is None:
            texts.append("")
            continue
        dates_only = False
        if getattr(cell, "is_date", False):
            number_format = str(getattr(cell, "number_format", "") or "").lower()
            dates_only = "h" not in number_format
        texts.append(cell_text(value, dates_only=dates_only))
    return texts


def _open_xlsx(stream: IO[bytes], sheet: str | None) -> SheetFile:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"this is not an Excel workbook we can read ({exc})") from None
    try:
        if sheet:
            if sheet not in workbook.sheetnames:
                names = ", ".join(workbook.sheetnames)
                raise ImportFileError(f"the workbook has no sheet {sheet!r} (it has: {names})")
            worksheet = workbook[sheet]
        else:
            worksheet = workbook.worksheets[0]
        rows = enumerate(worksheet.iter_rows(), start=1)
        header: list[str] = []
        header_row = 0
        for number, cells in rows:
            if len(cells) > MAX_COLUMNS:
                _check_header([""] * len(cells))
            header = [t.strip() for t in _row_texts(cells)]
            if any(header):
                header_row = number
                break
        headers = _check_header(header)
    except ImportFileError:
        workbook.close()
        raise
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        workbook.close()
        raise ImportFileError(f"this is not an Excel workbook we can read ({exc})") from None

    def records() -> Iterator[tuple[int, list[str]]]:
        try:
            for number, cells in rows:
                yield number, _row_texts(cells)
        except (KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ImportFileError(f"row {header_row}+: the workbook is damaged ({exc})") from None

    return SheetFile("Excel", "", "", worksheet.title, headers, records(), [workbook.close])


__all__ = ["DELIMITERS", "MAX_COLUMNS", "ImportFileError", "SheetFile", "open_file"]
