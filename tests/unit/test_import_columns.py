"""What an imported spreadsheet's headers and cells mean: header mapping, dates, kinds."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from nightreg.i18n import LOCALES
from nightreg.services.import_columns import (
    FIELDS,
    cell_text,
    guess_columns,
    infer_kind,
    missing_fields,
    normalise_header,
    parse_datetime,
    parse_mapping_pairs,
    read_kind,
)
from nightreg.services.import_files import open_file
from nightreg.services.transfer import EXPORT_COLUMNS, sheet_headers

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DUTCH_SHEET = [
    "Datum aankomst", "Datum vertrek", "Naam schipper", "Woonplaats", "Naam schip",
    "Registratie", "Lengte (m)", "Aantal personen", "Ligplaats",
]  # fmt: skip


def test_the_dutch_headers_of_an_old_register_map_themselves():
    assert guess_columns(DUTCH_SHEET, {}) == [
        "arrived_at", "departed_at", "guest_name", "residence", "vessel_name",
        "registration", "length_m", "persons", "berth",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Naam", "guest_name"), ("GAST", "guest_name"), ("plaats", "residence"),
        ("Aankomstdatum", "arrived_at"), ("Bootnaam", "vessel_name"), ("Schip", "vessel_name"),
        ("Rompnummer", "registration"), ("Personen", "persons"), ("Box", "berth"),
        ("Steiger", "berth"), ("Opmerkingen", "notes"), ("Skipper name", "guest_name"),
        ("Place of residence", "residence"), ("Arrival date", "arrived_at"),
        ("Boat name", "vessel_name"), ("Hull number", "registration"), ("Length", "length_m"),
        ("Number of persons", "persons"), ("Mooring", "berth"), ("Remarks", "notes"),
        ("Gastname", "guest_name"), ("Wohnort", "residence"), ("Ankunft", "arrived_at"),
        ("Abreise", "departed_at"), ("Schiffsname", "vessel_name"), ("Länge (m)", "length_m"),
        ("Anzahl Personen", "persons"), ("Liegeplatz", "berth"), ("Bemerkungen", "notes"),
        ("E-Mail", "email"), ("Kennzeichen Auto", "plate"), ("guest_name", "guest_name"),
    ],
)  # fmt: skip
def test_usual_synonyms_in_three_languages_are_recognised(header: str, field: str):
    assert guess_columns([header], {}) == [field]


def test_kenteken_is_the_boats_registration_beside_a_boat_name_and_a_plate_elsewhere():
    assert guess_columns(["Naam schip", "Kenteken"], {}) == ["vessel_name", "registration"]
    assert guess_columns(["Naam", "Kenteken"], {}) == ["guest_name", "plate"]
    assert guess_columns(["Naam schip", "Registratie", "Kenteken"], {})[2] == "plate"


def test_an_unknown_header_is_a_question_and_a_remembered_choice_answers_it():
    assert guess_columns(["Naam", "Betaald?"], {}) == ["guest_name", None]
    assert guess_columns(["Naam", "Betaald?"], {"betaald": ""}) == ["guest_name", ""]
    assert guess_columns(["Wie"], {"wie": "guest_name"}) == ["guest_name"]


@pytest.mark.parametrize("locale", LOCALES)
def test_the_exports_headers_in_every_language_read_back_as_its_columns(locale: str):
    columns = guess_columns(sheet_headers(locale), {})
    assert columns == [c if c != "site" else "" for c in EXPORT_COLUMNS]


def test_a_file_needs_arrival_name_residence_and_a_departure():
    assert missing_fields(["arrived_at", "guest_name", "residence", "departed_at"]) == []
    assert missing_fields(["guest_name"]) == ["arrived_at", "residence", "expected_departure_at"]


def test_headers_fold_accents_case_and_units():
    assert normalise_header("  Länge (m) ") == "lange"
    assert normalise_header("E-Mail") == "e mail"
    assert normalise_header("Straße") == "strasse"


def test_map_pairs_name_a_field_or_skip_and_refuse_anything_else():
    assert parse_mapping_pairs(["Naam schipper=guest_name", "Box = berth", "Kleur=skip"]) == {
        "naam schipper": "guest_name",
        "box": "berth",
        "kleur": "",
    }
    with pytest.raises(ValueError, match="not a field"):
        parse_mapping_pairs(["Naam=naam"])
    with pytest.raises(ValueError, match="HEADER=FIELD"):
        parse_mapping_pairs(["guest_name"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("28-11-2026 21:30", datetime(2026, 11, 28, 20, 30, tzinfo=UTC)),
        ("28-11-2026 21.30", datetime(2026, 11, 28, 20, 30, tzinfo=UTC)),
        ("1-7-2026 9:05", datetime(2026, 7, 1, 7, 5, tzinfo=UTC)),
        ("01/07/2026 09:05:30", datetime(2026, 7, 1, 7, 5, 30, tzinfo=UTC)),
        ("01.07.2026 09:05", datetime(2026, 7, 1, 7, 5, tzinfo=UTC)),
        ("2026-07-01 09:05", datetime(2026, 7, 1, 7, 5, tzinfo=UTC)),
        ("2026-07-01T09:05:00+02:00", datetime(2026, 7, 1, 7, 5, tzinfo=UTC)),
        ("2026-07-01T07:05:00Z", datetime(2026, 7, 1, 7, 5, tzinfo=UTC)),
        ("01-07-26 09:05", datetime(2026, 7, 1, 7, 5, tzinfo=UTC)),
    ],
)
def test_common_dutch_german_and_iso_dates_are_read_on_the_sites_clock(
    text: str, expected: datetime
):
    assert parse_datetime(text, AMSTERDAM) == expected


def test_a_date_without_a_time_takes_the_usual_hour():
    assert parse_datetime("28-11-2026", AMSTERDAM, time(14, 0)) == datetime(
        2026, 11, 28, 13, 0, tzinfo=UTC
    )
    assert parse_datetime("2026-07-01", AMSTERDAM, time(12, 0)) == datetime(
        2026, 7, 1, 10, 0, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["", "gisteren", "31-02-2026", "2026-13-01", "14/07", "7"])
def test_an_unreadable_date_is_none(text: str):
    assert parse_datetime(text, AMSTERDAM) is None


@pytest.mark.parametrize(
    ("row", "kind"),
    [
        ({"vessel_name": "Zeemeeuw"}, "vessel"),
        ({"registration": "NL-1-AB"}, "vessel"),
        ({"mmsi": "244123456"}, "vessel"),
        ({"plate": "12-ABC-3"}, "vehicle"),
        ({"guest_name": "Jan", "unit": "B4"}, "stay"),
        ({"vessel_name": " "}, "stay"),
    ],
)
def test_a_rows_kind_is_told_by_its_cells(row: dict[str, str], kind: str):
    assert infer_kind(row) == kind


@pytest.mark.parametrize(
    ("cell", "kind"), [("Boot", "vessel"), ("vessel", "vessel"), ("Fahrzeug", "vehicle"),
                       ("Overnachting", "stay"), ("raket", "raket")]
)  # fmt: skip
def test_a_kind_cell_may_be_written_as_people_write_it(cell: str, kind: str):
    assert read_kind(cell) == kind


def test_spreadsheet_cells_become_the_text_a_csv_would_hold():
    assert cell_text(datetime(2026, 7, 1, 9, 5)) == "2026-07-01 09:05:00"
    assert cell_text(datetime(2026, 7, 1), dates_only=True) == "2026-07-01"
    assert cell_text(9.5) == "9.5"
    assert cell_text(2.0) == "2"
    assert cell_text(None) == ""


@pytest.mark.parametrize(("delimiter", "encoding"), [(";", "cp1252"), ("\t", "utf-8-sig")])
def test_a_dutch_sheet_is_read_with_its_delimiter_and_encoding(delimiter: str, encoding: str):
    text = delimiter.join(DUTCH_SHEET) + "\r\n" + delimiter.join(
        ["1-7-2026", "3-7-2026", "Zoë", "Hoorn", "Eend", "NL-1", "9,5", "", "B3"]
    ) + "\r\n"  # fmt: skip
    opened = open_file(text.encode(encoding))
    assert opened.delimiter == delimiter
    assert opened.encoding == ("Windows-1252" if encoding == "cp1252" else "UTF-8")
    assert opened.headers == DUTCH_SHEET
    assert next(opened.records) == (2, ["1-7-2026", "3-7-2026", "Zoë", "Hoorn", "Eend", "NL-1",
                                        "9,5", "", "B3"])  # fmt: skip


def test_every_field_has_a_distinct_export_header_in_every_language():
    for locale in LOCALES:
        headers = sheet_headers(locale)
        folded = [normalise_header(h) for h in headers]
        assert len(set(folded)) == len(folded), locale
    assert "site" not in FIELDS
