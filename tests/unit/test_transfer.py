"""Pure parts of export and import: formula escaping, reading times, recognising a file."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from nightreg.services.import_columns import parse_datetime as parse_import_datetime
from nightreg.services.import_files import ImportFileError
from nightreg.services.import_files import open_file as _open_csv
from nightreg.services.transfer import escape_cell, unescape_cell

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize("cell", ['=HYPERLINK("x")', "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"])
def test_a_cell_a_spreadsheet_would_run_gets_an_apostrophe(cell: str):
    assert escape_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Jan de Vries", "+31 6 1234 5678", "-", "", "'t Haventje"])
def test_names_and_phone_numbers_are_left_alone(cell: str):
    assert escape_cell(cell) == cell


@pytest.mark.parametrize(
    "cell", ["=1+1", "'=1+1", "''=x", "+31 6 1234 5678", "'t Haventje", "Zoë", "-", "'"]
)
def test_unescaping_undoes_escaping_exactly(cell: str):
    assert unescape_cell(escape_cell(cell)) == cell


def test_an_iso_time_with_an_offset_is_taken_as_written():
    assert parse_import_datetime("2026-07-14T21:30:00+02:00", AMSTERDAM) == datetime(
        2026, 7, 14, 19, 30, tzinfo=UTC
    )


def test_a_dutch_time_without_offset_is_read_on_the_sites_clock():
    assert parse_import_datetime("28-11-2026 21:30", AMSTERDAM) == datetime(
        2026, 11, 28, 20, 30, tzinfo=UTC
    )
    assert parse_import_datetime("28-11-2026", AMSTERDAM) == datetime(
        2026, 11, 27, 23, 0, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["", "gisteren", "31-02-2026", "2026-13-01", "14/07"])
def test_an_unreadable_time_is_none(text: str):
    assert parse_import_datetime(text, AMSTERDAM) is None


def test_a_semicolon_file_from_excel_is_recognised_with_its_encoding():
    data = "kind;arrived_at;expected_departure_at;persons;guest_name;residence\r\n".encode(
        "cp1252"
    ) + "vessel;1-7-2026;2-7-2026;2;Zoë;Hoorn\r\n".encode("cp1252")
    opened = _open_csv(data)
    assert (opened.encoding, opened.delimiter) == ("Windows-1252", ";")
    assert next(opened.records)[1][4] == "Zoë"


def test_an_excel_sep_line_and_a_bom_are_understood():
    data = (
        "\ufeffsep=,\r\nkind,arrived_at,expected_departure_at,persons,guest_name,residence,colour\r\n"
        "vessel,2026-07-01,2026-07-02,2,Jan,Hoorn,blue\r\n"
    ).encode()
    opened = _open_csv(data)
    assert (opened.encoding, opened.delimiter) == ("UTF-8", ",")
    assert opened.headers[-1] == "colour"
    assert [line for line, _cells in opened.records] == [3]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b";;;\r\nx;y\r\n", "empty"),
        (b"PK\x03\x04not a zip", "not an Excel workbook"),
    ],
)
def test_a_file_that_cannot_be_a_register_is_refused_as_a_whole(data: bytes, problem: str):
    with pytest.raises(ImportFileError, match=problem):
        _open_csv(data)


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "Australia/Lord_Howe", "America/St_Johns"])
def test_local_times_match_a_plain_conversion_across_offset_changes(zone: str):
    from datetime import timedelta

    from nightreg.services.transfer import _LocalTimes

    tz = ZoneInfo(zone)
    local_time = _LocalTimes(tz)
    start = datetime(2026, 3, 27, 0, 7, 13)  # naive UTC, as SQLite answers
    for step in range(0, 60 * 24 * 240, 97):  # every 97 minutes for 240 days, both changes
        naive = start + timedelta(minutes=step)
        aware = naive.replace(tzinfo=UTC)
        expected = aware.astimezone(tz).isoformat(timespec="seconds")
        assert local_time(naive) == expected
        assert local_time(aware.astimezone(tz)) == expected  # an aware value in another zone
