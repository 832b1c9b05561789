"""Identifiers that mean something: Dutch plates in their RDW side-code form, and no
pictographs or control characters in a registration, plate or MMSI (issue 15, point 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nightreg import i18n
from nightreg.validation import (
    _DUTCH_SIDE_CODES,
    MSG_DEPARTURE_BEFORE,
    MSG_DEPARTURE_FAR,
    MSG_DEPARTURE_PAST,
    MSG_IDENTIFIER_SYMBOLS,
    dutch_plate,
    dutch_side_code,
    has_pictograph_or_control,
    search_key,
    validate_checkin,
    validate_new_departure,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 7, 14, 19, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "side_code", "shown"),
    [
        ("ab1234", 1, "AB-12-34"),
        ("1234ab", 2, "12-34-AB"),
        ("12ab34", 3, "12-AB-34"),
        ("ab12cd", 4, "AB-12-CD"),
        ("abcd12", 5, "AB-CD-12"),
        ("12abcd", 6, "12-AB-CD"),
        ("12abc3", 7, "12-ABC-3"),
        ("1abc23", 8, "1-ABC-23"),
        ("ab123c", 9, "AB-123-C"),
        ("a123bc", 10, "A-123-BC"),
        ("abc12d", 11, "ABC-12-D"),
        ("a12bcd", 12, "A-12-BCD"),
        ("1ab234", 13, "1-AB-234"),
        ("123ab4", 14, "123-AB-4"),
    ],
)
def test_each_side_code_is_recognised_and_written_as_the_rdw_writes_it(
    typed: str, side_code: int, shown: str
) -> None:
    assert dutch_side_code(typed) == side_code
    assert dutch_plate(typed) == shown


@pytest.mark.parametrize("typed", ["12 abc 3", "12-ABC-3", "12.abc.3", " 12abc3 ", "12–ABC–3"])
def test_dashes_spaces_and_case_do_not_matter(typed: str) -> None:
    assert dutch_plate(typed) == "12-ABC-3"


@pytest.mark.parametrize(
    "typed", ["", "ABC", "1234567", "AB-12-3", "B-AB-1234", "ABCDEFG", "12ABC34"]
)
def test_what_fits_no_side_code_is_not_a_dutch_plate(typed: str) -> None:
    assert dutch_plate(typed) is None
    assert dutch_side_code(typed) is None


def test_no_two_side_codes_share_a_shape_so_a_plate_s_shape_names_its_side_code() -> None:
    shapes = [layout.replace("-", "") for _code, layout in _DUTCH_SIDE_CODES]
    assert len(set(shapes)) == len(shapes) == 14
    assert [code for code, _layout in _DUTCH_SIDE_CODES] == list(range(1, 15))


def test_a_plate_s_search_key_ignores_dashes_and_case_as_before() -> None:
    assert search_key(None, None, None, None, "12-ABC-3") == search_key(
        None, None, None, None, "12abc3"
    )


@pytest.mark.parametrize(
    "value",
    [
        "NL-123-AB 🚤",
        "NL\u200d123",  # zero-width joiner
        "NL 123\ufe0f",  # emoji variation selector
        "AB\x00123",
        "AB\t123",
        "AB\x1b[31m",
        "①②③",
        "AB™",
        "🇳🇱123",  # regional indicators (a flag)
    ],
)
def test_pictographs_and_control_characters_are_found(value: str) -> None:
    assert has_pictograph_or_control(value)


@pytest.mark.parametrize("value", ["NL-123-AB", "Ö-AB 12", "Λ-1234", "IMO 9074729", "H/12.3", ""])
def test_letters_digits_and_punctuation_of_any_script_are_fine(value: str) -> None:
    assert not has_pictograph_or_control(value)


def _vehicle(**fields: str) -> dict[str, str]:
    return {
        "guest_name": "Piet Bakker",
        "residence": "Zaandam",
        "persons": "1",
        "expected_departure_at": "2026-07-15T12:00",
        **fields,
    }


def test_a_dutch_or_countryless_plate_is_stored_in_side_code_form_a_foreign_one_as_typed() -> None:
    def stored(**fields: str) -> str | None:
        data, errors = validate_checkin(
            _vehicle(**fields), kind="vehicle", allowed_kinds=("vehicle",), now=NOW, tz=AMSTERDAM
        )
        assert data is not None, errors
        return data.plate

    assert stored(plate="12abc3") == "12-ABC-3"
    assert stored(plate="12abc3", plate_country="NL") == "12-ABC-3"
    assert stored(plate="12abc3", plate_country="BE") == "12abc3"
    assert stored(plate="M AB 1234") == "M AB 1234"  # fits no side code


@pytest.mark.parametrize("field", ["registration", "mmsi"])
def test_a_vessel_identifier_with_an_emoji_is_refused_with_its_own_message(field: str) -> None:
    form = {
        "vessel_name": "Zeemeeuw",
        "registration": "NL-123-AB",
        "guest_name": "Jan",
        "residence": "Hoorn",
        "persons": "2",
        "expected_departure_at": "2026-07-15T12:00",
        field: "244123456 ⚓",
    }
    data, errors = validate_checkin(
        form, kind="vessel", allowed_kinds=("vessel",), now=NOW, tz=AMSTERDAM
    )
    assert data is None
    assert errors[field].message == MSG_IDENTIFIER_SYMBOLS


def test_a_new_departure_follows_the_check_in_s_rules_and_lies_ahead() -> None:
    arrived = NOW - timedelta(hours=1)

    def judge(text: str) -> str | None:
        departure, error = validate_new_departure(text, arrived_at=arrived, now=NOW, tz=AMSTERDAM)
        assert (departure is None) == (error is not None)
        return error.message if error else None

    assert judge("2026-07-16T11:00") is None
    assert judge("2026-07-14T19:30") == MSG_DEPARTURE_BEFORE  # 17:30 UTC, before the arrival
    assert judge("2026-07-14T20:30") == MSG_DEPARTURE_PAST  # after the arrival, before now
    assert judge("2027-07-16T11:00") == MSG_DEPARTURE_FAR


@pytest.mark.parametrize(
    ("locale", "short", "when"),
    [
        ("en", "12/05/2026, 23:15", "Tue 12 May, 23:15"),
        ("nl", "12-05-2026, 23:15", "di 12 mei, 23:15"),
        ("de", "12.05.26, 23:15", "Di., 12. Mai, 23:15"),
    ],
)
def test_dates_are_written_day_first_on_a_24_hour_clock_on_the_site_s_time(
    locale: str, short: str, when: str
) -> None:
    at = datetime(2026, 5, 12, 21, 15, tzinfo=UTC)  # 23:15 in Amsterdam
    i18n.set_locale(locale)
    try:
        assert i18n.local_datetime(at, "Europe/Amsterdam", "short") == short
        assert i18n.local_datetime(at, AMSTERDAM, "when") == when
    finally:
        i18n.set_locale(i18n.DEFAULT_LOCALE)
