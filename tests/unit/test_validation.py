"""Unit tests of the check-in form's validation and normalisation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from nightreg import validation as v
from nightreg.validation import (
    MAX_LENGTHS,
    MSG_IDENTIFIER_SYMBOLS,
    CheckinData,
    FieldError,
    clean_text,
    is_valid_mmsi,
    normalise_identifier,
    normalise_person,
    parse_local_datetime,
    subject_key,
    validate_checkin,
)
from nightreg.vocabulary import KINDS

NOW = datetime(2026, 7, 14, 19, 0, tzinfo=UTC)  # 21:00 in Amsterdam (summer time)
AMS = ZoneInfo("Europe/Amsterdam")

COMMON = {
    "guest_name": "Jan de Vries",
    "residence": "Amsterdam",
    "persons": "2",
    "expected_departure_at": "2026-07-16T10:00",
}
BY_KIND = {
    "vessel": {"vessel_name": "Zeemeeuw", "registration": "NL-123 AB"},
    "vehicle": {"plate": "12-ABC-3"},
    "stay": {"unit": "B12"},
}
VESSEL_FIELDS = (
    "berth",
    "vessel_name",
    "registration",
    "mmsi",
    "flag",
    "vessel_type",
    "length_m",
    "last_port",
    "next_port",
)
VEHICLE_FIELDS = ("plate", "plate_country", "vehicle_type")
EVERYTHING = {
    **COMMON,
    "country": "NL",
    "phone": "+31 6 12345678",
    "email": "jan@example.nl",
    "id_document_type": "passport",
    "berth": "A12",
    "vessel_name": "Zeemeeuw",
    "registration": "NL-123 AB",
    "mmsi": "244123456",
    "flag": "NL",
    "vessel_type": "sail",
    "length_m": "9,5",
    "last_port": "Enkhuizen",
    "next_port": "Hoorn",
    "plate": "12-ABC-3",
    "plate_country": "NL",
    "vehicle_type": "car",
    "unit": "B12",
    "company": "Bakkerij Jansen",
    "notes": "Arriving late.",
}


def form_for(kind: str = "vessel", **fields: str) -> dict[str, str]:
    return {**COMMON, **BY_KIND[kind], **fields}


def check(
    form: dict[str, str], kind: str = "vessel", *, allowed: tuple[str, ...] = KINDS
) -> tuple[CheckinData | None, dict[str, FieldError]]:
    return validate_checkin(form, kind=kind, allowed_kinds=allowed, now=NOW, tz=AMS)


def valid(form: dict[str, str], kind: str = "vessel") -> CheckinData:
    data, errors = check(form, kind)
    assert errors == {}
    assert data is not None
    return data


def errors_of(form: dict[str, str], kind: str = "vessel") -> dict[str, FieldError]:
    data, errors = check(form, kind)
    assert data is None
    assert errors
    return errors


def message_of(form: dict[str, str], field: str, kind: str = "vessel") -> str:
    return errors_of(form, kind)[field].message


# --- whole forms -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_minimal_form_of_every_kind_is_accepted(kind: str) -> None:
    data = valid(form_for(kind), kind)
    assert data.kind == kind
    assert data.guest_name == "Jan de Vries"
    assert data.residence == "Amsterdam"
    assert data.persons == 2


def test_a_complete_vessel_form_is_cleaned_into_typed_data() -> None:
    data = valid(dict(EVERYTHING), "vessel")
    assert data.arrived_at == NOW
    assert data.expected_departure_at == datetime(2026, 7, 16, 8, 0, tzinfo=UTC)
    assert data.country == "NL"
    assert data.phone == "+31 6 12345678"
    assert data.email == "jan@example.nl"
    assert data.id_document_type == "passport"
    assert data.berth == "A12"
    assert data.vessel_name == "Zeemeeuw"
    assert data.registration == "NL-123 AB"
    assert data.mmsi == "244123456"
    assert data.flag == "NL"
    assert data.vessel_type == "sail"
    assert data.length_m == Decimal("9.5")
    assert (data.last_port, data.next_port) == ("Enkhuizen", "Hoorn")
    assert data.notes == "Arriving late."
    assert data.subject_key == "reg:NL123AB"


def test_a_vessel_ignores_the_vehicle_and_stay_fields() -> None:
    data = valid(dict(EVERYTHING), "vessel")
    assert (data.plate, data.plate_country, data.vehicle_type) == (None, None, None)
    assert (data.unit, data.company) == (None, None)


def test_a_vehicle_keeps_its_own_fields_and_ignores_the_vessel_fields() -> None:
    data = valid(dict(EVERYTHING), "vehicle")
    assert (data.plate, data.plate_country, data.vehicle_type) == ("12-ABC-3", "NL", "car")
    assert (data.unit, data.company) == ("B12", "Bakkerij Jansen")
    assert all(getattr(data, name) is None for name in VESSEL_FIELDS)
    assert data.subject_key == "plate:12ABC3"


def test_a_stay_ignores_both_vessel_and_vehicle_fields() -> None:
    data = valid(dict(EVERYTHING), "stay")
    assert all(getattr(data, name) is None for name in VESSEL_FIELDS + VEHICLE_FIELDS)
    assert (data.unit, data.company) == ("B12", "Bakkerij Jansen")
    assert data.subject_key == "person:jan de vries|amsterdam"


def test_fields_of_another_kind_are_not_validated_either() -> None:
    form = form_for("stay", mmsi="nonsense", plate="#", length_m="9000", berth="x" * 500)
    assert valid(form, "stay").berth is None


@pytest.mark.parametrize("kind", KINDS)
def test_optional_fields_left_empty_become_none(kind: str) -> None:
    empty = {name: "" for name in EVERYTHING if name not in COMMON and name not in BY_KIND[kind]}
    data = valid({**form_for(kind), **empty}, kind)
    for name in ("country", "phone", "email", "id_document_type", "notes"):
        assert getattr(data, name) is None


def test_an_empty_form_reports_every_missing_field_at_once() -> None:
    errors = errors_of({}, "vessel")
    assert set(errors) == {
        "guest_name",
        "residence",
        "expected_departure_at",
        "persons",
        "vessel_name",
        "registration",
    }


def test_errors_in_several_fields_are_all_reported() -> None:
    form = form_for("vessel", persons="0", email="nope", mmsi="123", length_m="0", country="XX")
    errors = errors_of(form, "vessel")
    assert {"persons", "email", "mmsi", "length_m", "country"} <= set(errors)


def test_every_error_message_renders_with_its_own_parameters() -> None:
    form = dict.fromkeys(EVERYTHING, "%(max)s" + "x" * 600)
    for kind in KINDS:
        for error in errors_of(form, kind).values():
            # The template fills placeholders only when there are parameters.
            text = error.message % error.params if error.params else error.message
            assert "%(" not in text


# --- kind ----------------------------------------------------------------------------------


def test_a_kind_the_site_does_not_offer_is_refused() -> None:
    data, errors = check(form_for("vessel"), "vessel", allowed=("vehicle", "stay"))
    assert data is None
    assert errors["kind"].message == "Please choose what you are registering."


@pytest.mark.parametrize("kind", ["", "boat", "VESSEL", "stay ", "\x00"])
def test_an_unknown_kind_is_refused_without_raising(kind: str) -> None:
    data, errors = check(form_for("vessel"), kind)
    assert data is None
    assert errors["kind"].message == "Please choose what you are registering."


# --- required fields and lengths -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("guest_name", "Please enter your name."),
        ("residence", "Please enter your place of residence."),
        ("expected_departure_at", "Please enter when you expect to leave."),
        ("persons", "Please enter a number of persons from 1 to 99."),
    ],
)
@pytest.mark.parametrize("absent", ["missing", "", "   ", "\x00\t\u200b"])
def test_a_required_field_that_is_missing_or_blank_is_reported(
    field: str, message: str, absent: str
) -> None:
    form = form_for("stay")
    if absent == "missing":
        del form[field]
    else:
        form[field] = absent
    assert message_of(form, field, "stay") == message


TEXT_FIELDS_BY_KIND = [
    ("guest_name", "stay"),
    ("residence", "stay"),
    ("phone", "stay"),
    ("email", "stay"),
    ("notes", "stay"),
    ("unit", "stay"),
    ("company", "stay"),
    ("berth", "vessel"),
    ("vessel_name", "vessel"),
    ("registration", "vessel"),
    ("last_port", "vessel"),
    ("next_port", "vessel"),
    ("plate", "vehicle"),
    ("unit", "vehicle"),
    ("company", "vehicle"),
]


@pytest.mark.parametrize(("field", "kind"), TEXT_FIELDS_BY_KIND)
def test_a_text_longer_than_its_maximum_gets_a_length_error(field: str, kind: str) -> None:
    limit = MAX_LENGTHS[field]
    errors = errors_of(form_for(kind, **{field: "x" * (limit + 1)}), kind)
    assert errors[field] == FieldError("Please use at most %(max)s characters.", {"max": limit})


@pytest.mark.parametrize(
    ("field", "kind", "value"),
    [
        ("guest_name", "stay", "J" * 100),
        ("residence", "stay", "A" * 100),
        ("unit", "stay", "U" * 40),
        ("notes", "stay", "n" * 500),
        ("vessel_name", "vessel", "V" * 80),
        ("berth", "vessel", "B" * 20),
        ("plate", "vehicle", "AB-12-CD-34-EF-56"[:16]),
    ],
)
def test_a_text_exactly_at_its_maximum_is_accepted(field: str, kind: str, value: str) -> None:
    assert len(value) == MAX_LENGTHS[field]
    data = valid(form_for(kind, **{field: value}), kind)
    assert getattr(data, field) == value


def test_the_length_is_counted_after_cleaning() -> None:
    name = "  Jan" + "\x00" * 300 + "   de   Vries  "
    assert valid(form_for("stay", guest_name=name), "stay").guest_name == "Jan de Vries"


def test_a_ten_thousand_character_name_gets_a_length_error_not_an_exception() -> None:
    errors = errors_of(form_for("stay", guest_name="a" * 10_000), "stay")
    assert errors["guest_name"].params == {"max": 100}


# --- dates and times -----------------------------------------------------------------------


def test_an_empty_arrival_means_now() -> None:
    assert valid(form_for("stay", arrived_at=""), "stay").arrived_at == NOW


def test_an_arrival_is_read_on_the_sites_clock_and_stored_in_utc() -> None:
    data = valid(form_for("stay", arrived_at="2026-07-14T18:15"), "stay")
    assert data.arrived_at == datetime(2026, 7, 14, 16, 15, tzinfo=UTC)
    assert data.arrived_at.tzinfo is UTC


@pytest.mark.parametrize(
    "typed",
    ["2026-07-14T18:15", "2026-07-14 18:15", "2026-07-14T18:15:00", "2026-07-14 18:15:00.000"],
)
def test_the_browser_and_typed_date_formats_are_understood(typed: str) -> None:
    assert parse_local_datetime(typed, AMS) == datetime(2026, 7, 14, 16, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "tomorrow",
        "2026-07-14",
        "21:30",
        "14-07-2026 21:30",
        "2026/07/14 21:30",
        "2026-02-30T10:00",
        "2026-07-14T24:00",
        "2026-07-14T21:60",
        "2026-07-14T21:30+02:00",
        "２０２６-07-14T21:30",
        "2026-07-14T21:30" + "0" * 10_000,
        "0001-01-01T00:00",
        "2026-07-14T21:30\x00",
    ],
)
def test_an_unparseable_date_gives_none(typed: str) -> None:
    # 0001-01-01 00:00 in Amsterdam falls before the first day a datetime can hold in UTC.
    assert parse_local_datetime(typed, AMS) is None


@pytest.mark.parametrize("field", ["arrived_at", "expected_departure_at"])
@pytest.mark.parametrize(
    "typed", ["tomorrow", "14-07-2026", "2026-13-01T10:00", "0001-01-01T00:00"]
)
def test_an_unparseable_date_in_the_form_asks_for_the_example_format(
    field: str, typed: str
) -> None:
    errors = errors_of(form_for("stay", **{field: typed}), "stay")
    assert errors[field].message == "Please enter a date and time like 2026-07-14 21:30."


def test_a_time_skipped_by_the_spring_dst_change_is_read_as_summer_time() -> None:
    # On 29 March 2026 Amsterdam's clocks jump from 02:00 to 03:00; 02:30 means 03:30 CEST.
    parsed = parse_local_datetime("2026-03-29T02:30", AMS)
    assert parsed == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert parsed == parse_local_datetime("2026-03-29T03:30", AMS)


def test_a_time_that_occurs_twice_in_autumn_is_taken_as_the_first_occurrence() -> None:
    # On 25 October 2026 02:00-03:00 happens twice; the first time is still summer time.
    assert parse_local_datetime("2026-10-25T02:30", AMS) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("typed", "utc"),
    [
        ("2026-01-10T12:00", datetime(2026, 1, 10, 11, 0, tzinfo=UTC)),
        ("2026-07-10T12:00", datetime(2026, 7, 10, 10, 0, tzinfo=UTC)),
        ("2026-03-29T01:59", datetime(2026, 3, 29, 0, 59, tzinfo=UTC)),
        ("2026-03-29T03:00", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        ("2026-10-25T03:00", datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),
    ],
)
def test_amsterdam_winter_and_summer_time_are_both_converted(typed: str, utc: datetime) -> None:
    assert parse_local_datetime(typed, AMS) == utc


def test_a_stay_across_the_autumn_dst_change_keeps_its_wall_clock_times() -> None:
    now = datetime(2026, 10, 24, 18, 0, tzinfo=UTC)
    form = form_for("stay", arrived_at="2026-10-24T20:00", expected_departure_at="2026-10-25T10:00")
    data, errors = validate_checkin(form, kind="stay", allowed_kinds=KINDS, now=now, tz=AMS)
    assert errors == {}
    assert data is not None
    assert data.arrived_at == datetime(2026, 10, 24, 18, 0, tzinfo=UTC)
    assert data.expected_departure_at == datetime(2026, 10, 25, 9, 0, tzinfo=UTC)


def test_an_arrival_up_to_seven_days_ago_is_accepted() -> None:
    assert valid(form_for("stay", arrived_at="2026-07-07T21:00"), "stay").arrived_at == (
        NOW - timedelta(days=7)
    )


def test_an_arrival_more_than_seven_days_ago_is_refused() -> None:
    form = form_for("stay", arrived_at="2026-07-07T20:59")
    assert message_of(form, "arrived_at", "stay") == "The arrival must be within the last 7 days."


def test_an_arrival_up_to_a_day_ahead_is_accepted() -> None:
    form = form_for("stay", arrived_at="2026-07-15T21:00", expected_departure_at="2026-07-16T10:00")
    assert valid(form, "stay").arrived_at == NOW + timedelta(days=1)


def test_an_arrival_more_than_a_day_ahead_is_refused() -> None:
    form = form_for("stay", arrived_at="2026-07-15T21:01", expected_departure_at="2026-07-20T10:00")
    assert message_of(form, "arrived_at", "stay") == "The arrival cannot be more than a day ahead."


@pytest.mark.parametrize(
    ("arrived", "departure"),
    [
        ("", "2026-07-14T21:00"),
        ("", "2026-07-14T20:00"),
        ("2026-07-14T12:00", "2026-07-14T11:59"),
    ],
)
def test_a_departure_not_after_the_arrival_is_refused(arrived: str, departure: str) -> None:
    form = form_for("stay", arrived_at=arrived, expected_departure_at=departure)
    assert (
        message_of(form, "expected_departure_at", "stay")
        == "The expected departure must be after the arrival."
    )


def test_a_departure_a_minute_after_the_arrival_is_accepted() -> None:
    form = form_for("stay", expected_departure_at="2026-07-14T21:01")
    assert valid(form, "stay").expected_departure_at == NOW + timedelta(minutes=1)


def test_a_departure_up_to_366_days_after_the_arrival_is_accepted() -> None:
    form = form_for("stay", arrived_at="2026-07-14T12:00", expected_departure_at="2027-07-15T12:00")
    data = valid(form, "stay")
    assert data.expected_departure_at - data.arrived_at == timedelta(days=366)


def test_a_departure_more_than_366_days_after_the_arrival_is_refused() -> None:
    form = form_for("stay", arrived_at="2026-07-14T12:00", expected_departure_at="2027-07-15T12:01")
    assert "expected_departure_at" in errors_of(form, "stay")


def test_a_departure_is_checked_against_an_arrival_that_is_itself_out_of_range() -> None:
    form = form_for("stay", arrived_at="2026-07-01T12:00", expected_departure_at="2026-06-30T12:00")
    assert set(errors_of(form, "stay")) == {"arrived_at", "expected_departure_at"}


def test_a_departure_is_not_compared_with_an_unreadable_arrival() -> None:
    form = form_for("stay", arrived_at="yesterday")
    assert set(errors_of(form, "stay")) == {"arrived_at"}


# --- persons -------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "persons"), [("1", 1), ("99", 99), (" 3 ", 3), ("04", 4)])
def test_a_number_of_persons_from_1_to_99_is_accepted(typed: str, persons: int) -> None:
    assert valid(form_for("stay", persons=typed), "stay").persons == persons


@pytest.mark.parametrize(
    "typed", ["0", "100", "-1", "+2", "two", "1.5", "2,0", "٣", "1_0", "1e1", "9" * 5000]
)
def test_a_number_of_persons_outside_1_to_99_is_refused(typed: str) -> None:
    form = form_for("stay", persons=typed)
    assert message_of(form, "persons", "stay") == "Please enter a number of persons from 1 to 99."


# --- countries -----------------------------------------------------------------------------

COUNTRY_FIELDS = [("country", "stay"), ("flag", "vessel"), ("plate_country", "vehicle")]


@pytest.mark.parametrize(("field", "kind"), COUNTRY_FIELDS)
@pytest.mark.parametrize(("typed", "stored"), [("NL", "NL"), ("de", "DE"), (" be ", "BE")])
def test_a_country_code_is_accepted_in_any_case_and_stored_upper_case(
    field: str, kind: str, typed: str, stored: str
) -> None:
    assert getattr(valid(form_for(kind, **{field: typed}), kind), field) == stored


@pytest.mark.parametrize(("field", "kind"), COUNTRY_FIELDS)
@pytest.mark.parametrize("typed", ["XX", "NLD", "Netherlands", "N", "1", "ÑL", "EU"])
def test_an_unknown_country_is_refused(field: str, kind: str, typed: str) -> None:
    form = form_for(kind, **{field: typed})
    assert message_of(form, field, kind) == "Please choose a country from the list."


# --- e-mail and phone ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "email", ["jan@example.nl", "j.de.vries+haven@mail.example.co.uk", "Jan@Voorbeeld.NL"]
)
def test_a_plausible_email_address_is_accepted_as_typed(email: str) -> None:
    assert valid(form_for("stay", email=email), "stay").email == email


@pytest.mark.parametrize(
    "email",
    [
        "jan",
        "jan@",
        "@example.nl",
        "jan@example",
        "jan@example.n",
        "jan@@example.nl",
        "jan de vries@example.nl",
        "jan@example..nl",
        "jan@.nl",
        "jan@example.nl.",
    ],
)
def test_an_implausible_email_address_is_refused(email: str) -> None:
    form = form_for("stay", email=email)
    assert message_of(form, "email", "stay") == "Please enter a valid e-mail address."


@pytest.mark.parametrize(
    "phone", ["0612345678", "+31 6 12345678", "06-12345678", "+31 (0)20 123 4567", "123456"]
)
def test_a_plausible_phone_number_is_accepted(phone: str) -> None:
    assert valid(form_for("stay", phone=phone), "stay").phone == phone


@pytest.mark.parametrize(
    "phone",
    [
        "12345",
        "1" * 21,
        "06.12345678",
        "06/12345678",
        "bel me",
        "+31 6 1234567x",
        "31+612345678",
        "٠٦١٢٣٤٥٦٧٨",
    ],
)
def test_an_implausible_phone_number_is_refused(phone: str) -> None:
    form = form_for("stay", phone=phone)
    assert message_of(form, "phone", "stay") == "Please enter a valid phone number."


# --- choices and identity documents --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "kind", "options"),
    [
        ("id_document_type", "stay", v.ID_DOCUMENT_TYPES),
        ("vessel_type", "vessel", v.VESSEL_TYPES),
        ("vehicle_type", "vehicle", v.VEHICLE_TYPES),
    ],
)
def test_every_option_of_a_choice_is_accepted(
    field: str, kind: str, options: tuple[str, ...]
) -> None:
    for option in options:
        assert getattr(valid(form_for(kind, **{field: option}), kind), field) == option


@pytest.mark.parametrize(
    ("field", "kind"),
    [("id_document_type", "stay"), ("vessel_type", "vessel"), ("vehicle_type", "vehicle")],
)
@pytest.mark.parametrize("typed", ["bsn", "Passport", "yacht", "x" * 1000, "cars\x00"])
def test_a_choice_outside_its_list_is_refused(field: str, kind: str, typed: str) -> None:
    form = form_for(kind, **{field: typed})
    assert message_of(form, field, kind) == "Please choose an option from the list."


def test_id_numbers_and_bsns_in_the_form_are_never_kept() -> None:
    secrets = {
        "id_number": "NX1234567",
        "document_number": "SPECI2014",
        "bsn": "111222333",
        "id_document_number": "IDN98765",
    }
    data = valid({**form_for("stay", id_document_type="id_card"), **secrets}, "stay")
    kept = dataclasses.asdict(data)
    assert not set(secrets) & set(kept)
    assert not any(secret in str(value) for secret in secrets.values() for value in kept.values())
    assert data.id_document_type == "id_card"


def test_the_visit_data_has_no_field_for_an_id_number() -> None:
    names = {f.name for f in dataclasses.fields(CheckinData)}
    assert not {n for n in names if "number" in n or "bsn" in n}


# --- vessels -------------------------------------------------------------------------------


def test_a_vessel_needs_a_name() -> None:
    form = form_for("vessel", vessel_name=" ")
    assert message_of(form, "vessel_name") == "Please enter the name of the boat."


@pytest.mark.parametrize("registration", ["", "  ", "--", " / "])
def test_a_vessel_needs_a_registration_or_an_mmsi(registration: str) -> None:
    form = form_for("vessel", registration=registration, mmsi="")
    errors = errors_of(form)
    assert errors["registration"].message == "Please enter the registration or the MMSI number."
    assert "mmsi" not in errors


def test_a_vessel_with_only_an_mmsi_is_accepted_and_followed_by_its_mmsi() -> None:
    data = valid(form_for("vessel", registration="", mmsi="244 123 456"))
    assert data.registration is None
    assert data.mmsi == "244123456"
    assert data.subject_key == "mmsi:244123456"


def test_a_registration_of_separators_only_is_not_kept() -> None:
    data = valid(form_for("vessel", registration="-/-", mmsi="244123456"))
    assert data.registration is None
    assert data.subject_key == "mmsi:244123456"


def test_a_vessel_with_both_is_followed_by_its_registration() -> None:
    data = valid(form_for("vessel", registration="nl 123 ab", mmsi="244123456"))
    assert data.registration == "nl 123 ab"
    assert data.subject_key == "reg:NL123AB"


@pytest.mark.parametrize("mmsi", ["244123456", "201000000", "775999999", "244 12 34 56"])
def test_an_mmsi_with_a_maritime_identification_digit_is_accepted(mmsi: str) -> None:
    assert valid(form_for("vessel", mmsi=mmsi)).mmsi == mmsi.replace(" ", "")


@pytest.mark.parametrize(
    "mmsi",
    [
        "200999999",
        "776000000",
        "123456789",
        "024412345",
        "970123456",
        "24412345",
        "24412345a",
        "２４４１２３４５６",
        "24412-345",
    ],
)
def test_an_mmsi_outside_the_maritime_identification_range_is_refused(mmsi: str) -> None:
    assert message_of(form_for("vessel", mmsi=mmsi), "mmsi") == (
        "An MMSI number has 9 digits, starting with 201 to 775."
    )


def test_an_mmsi_with_too_many_digits_gets_a_length_error() -> None:
    errors = errors_of(form_for("vessel", mmsi="2441234567"))
    assert errors["mmsi"].params == {"max": 9}
    assert "registration" not in errors


def test_an_invalid_mmsi_does_not_also_ask_for_a_registration() -> None:
    errors = errors_of(form_for("vessel", registration="", mmsi="123"))
    assert set(errors) == {"mmsi"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("244123456", True),
        ("201000000", True),
        ("775000000", True),
        ("200000000", False),
        ("776000000", False),
        ("24412345", False),
        ("2441234567", False),
        ("", False),
        ("24412345\n", False),
        ("٢٤٤١٢٣٤٥٦", False),
    ],
)
def test_is_valid_mmsi_checks_length_digits_and_mid(value: str, expected: bool) -> None:
    assert is_valid_mmsi(value) is expected


@pytest.mark.parametrize("registration", ["IMO 9074729", "imo9074729", "IMO: 9074729"])
def test_a_valid_imo_number_is_accepted_as_registration(registration: str) -> None:
    data = valid(form_for("vessel", registration=registration))
    assert data.registration == registration
    assert data.subject_key == "reg:IMO9074729"


@pytest.mark.parametrize("registration", ["IMO 9074728", "imo 1234568", "IMO9074720"])
def test_an_imo_number_with_a_wrong_check_digit_is_refused(registration: str) -> None:
    errors = errors_of(form_for("vessel", registration=registration, mmsi="244123456"))
    assert errors["registration"].message == "This IMO number is not valid; please check it."


@pytest.mark.parametrize("registration", ["9074728", "IMO 123", "HOLLAND 1234567", "NL-IMO-42"])
def test_a_registration_that_is_not_written_as_an_imo_number_is_not_checked_as_one(
    registration: str,
) -> None:
    assert valid(form_for("vessel", registration=registration)).registration == registration


@pytest.mark.parametrize(
    ("typed", "length"),
    [
        ("12,5", Decimal("12.5")),
        ("12.5", Decimal("12.5")),
        ("12", Decimal("12.0")),
        ("1", Decimal("1.0")),
        ("100", Decimal("100.0")),
        ("12.34", Decimal("12.3")),
        ("12,35", Decimal("12.4")),
        (" 9,95 ", Decimal("10.0")),
    ],
)
def test_a_length_is_kept_to_one_decimal_and_a_comma_is_understood(
    typed: str, length: Decimal
) -> None:
    stored = valid(form_for("vessel", length_m=typed)).length_m
    assert stored == length
    assert stored is not None
    assert stored.as_tuple().exponent == -1


@pytest.mark.parametrize(
    "typed",
    [
        "0",
        "0.9",
        "100.1",
        "101",
        "-5",
        "12 m",
        "12,5m",
        "twelve",
        "1.2.3",
        "1e2",
        "NaN",
        "Infinity",
        ",5",
        "1" * 5000,
    ],
)
def test_a_length_outside_1_to_100_metres_is_refused(typed: str) -> None:
    form = form_for("vessel", length_m=typed)
    assert message_of(form, "length_m") == "Please enter a length from 1 to 100 metres."


def test_a_berth_is_kept_for_a_vessel_but_not_for_a_vehicle_or_stay() -> None:
    assert valid(form_for("vessel", berth="A12")).berth == "A12"
    assert valid(form_for("vehicle", berth="A12"), "vehicle").berth is None
    assert valid(form_for("stay", berth="A12"), "stay").berth is None


def test_a_unit_is_kept_for_a_vehicle_or_stay_but_not_for_a_vessel() -> None:
    assert valid(form_for("vessel", unit="B3")).unit is None
    assert valid(form_for("vehicle", unit="B3"), "vehicle").unit == "B3"
    assert valid(form_for("stay", unit="B3"), "stay").unit == "B3"


# --- vehicles ------------------------------------------------------------------------------


def test_a_vehicle_needs_a_licence_plate() -> None:
    form = form_for("vehicle", plate="")
    assert message_of(form, "plate", "vehicle") == "Please enter the licence plate."


@pytest.mark.parametrize(
    ("plate", "kept"),
    [
        ("12-ABC-3", "12-ABC-3"),
        ("ab 12 cd", "AB-12-CD"),  # a Dutch side code: kept as the RDW writes it
        ("LÖ-AB 123", "LÖ-AB 123"),
        ("B-MW 1234", "B-MW 1234"),
        ("AB", "AB"),
        ("ABCDEF123456", "ABCDEF123456"),
        ("ＮＬ１２", "ＮＬ１２"),
    ],
)
def test_a_plausible_licence_plate_is_accepted_as_typed_or_in_its_dutch_form(
    plate: str, kept: str
) -> None:
    form = form_for("vehicle", plate=plate, plate_country="")
    assert valid(form, "vehicle").plate == kept


@pytest.mark.parametrize("plate", ["A", "--A--", "ABCDEFG1234567", "12#AB", "Ω-123"])
def test_an_implausible_licence_plate_is_refused(plate: str) -> None:
    form = form_for("vehicle", plate=plate)
    assert message_of(form, "plate", "vehicle") == "Please enter a valid licence plate."


@pytest.mark.parametrize("plate", ["AB 12 😀", "AB\x0012", "AB\u200b12"])
def test_a_plate_with_an_emoji_or_an_invisible_character_is_refused_as_such(plate: str) -> None:
    form = form_for("vehicle", plate=plate)
    assert message_of(form, "plate", "vehicle") == MSG_IDENTIFIER_SYMBOLS


# --- notes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_notes_are_optional_for_every_kind_and_keep_their_line_breaks(kind: str) -> None:
    notes = "Late arrival.\r\n\r\n\r\n\r\nDog\ton board.  "
    assert valid(form_for(kind, notes=notes), kind).notes == "Late arrival.\n\nDog on board."


# --- subject keys --------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["NL-123 ab", "nl123AB", " NL.123/AB ", "nl_123_ab", "NL–123–AB"])
def test_the_same_boat_typed_differently_gets_the_same_key(typed: str) -> None:
    assert valid(form_for("vessel", registration=typed)).subject_key == "reg:NL123AB"


@pytest.mark.parametrize("typed", ["12-ABC-3", "12abc3", "12 ABC 3"])
def test_the_same_car_typed_differently_gets_the_same_key(typed: str) -> None:
    assert valid(form_for("vehicle", plate=typed), "vehicle").subject_key == "plate:12ABC3"


@pytest.mark.parametrize(
    ("name", "residence"),
    [
        ("Jan de Vries", "Amsterdam"),
        ("  JAN  DE  VRIES ", "amsterdam"),
        ("Ján dé Vriës", "Ámsterdam"),
    ],
)
def test_the_same_person_typed_differently_gets_the_same_key(name: str, residence: str) -> None:
    form = form_for("stay", guest_name=name, residence=residence)
    assert valid(form, "stay").subject_key == "person:jan de vries|amsterdam"


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("nl-123 ab", "NL123AB"),
        ("a.b/c_d-e f:g", "ABCDEFG"),
        ("lö-ab 12", "LOAB12"),
        ("ｎｌ１２", "NL12"),
        ("", ""),
        ("- / .", ""),
    ],
)
def test_normalise_identifier_upper_cases_and_drops_separators(value: str, normalised: str) -> None:
    assert normalise_identifier(value) == normalised


@pytest.mark.parametrize(
    ("name", "residence", "key"),
    [
        ("Jan de Vries", "Amsterdam", "person:jan de vries|amsterdam"),
        ("José  Núñez", "Zürich", "person:jose nunez|zurich"),
        ("Hans Straße", "Köln", "person:hans strasse|koln"),
        ("A|B", "C", "person:a b|c"),
    ],
)
def test_normalise_person_folds_case_accents_and_spaces(
    name: str, residence: str, key: str
) -> None:
    assert normalise_person(name, residence) == key


def test_a_person_key_stays_short_enough_for_its_column() -> None:
    # NFKD spreads some ligatures over many characters.
    assert len(normalise_person("\ufdfa" * 100, "\ufdfa" * 100)) <= 240


@pytest.mark.parametrize(
    ("kind", "fields", "key"),
    [
        ("vessel", {"registration": "NL-1", "mmsi": "244123456"}, "reg:NL1"),
        ("vessel", {"registration": None, "mmsi": "244123456"}, "mmsi:244123456"),
        ("vessel", {"registration": "", "mmsi": "244123456"}, "mmsi:244123456"),
        ("vehicle", {"plate": "ab-12"}, "plate:AB12"),
        ("stay", {"plate": "ab-12", "registration": "X"}, "person:jan|hoorn"),
    ],
)
def test_subject_key_follows_the_kinds_identifier(
    kind: str, fields: dict[str, str | None], key: str
) -> None:
    args: dict[str, str | None] = {"registration": None, "mmsi": None, "plate": None, **fields}
    assert subject_key(kind, guest_name="Jan", residence="Hoorn", **args) == key


def test_subject_key_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        subject_key("ufo", registration=None, mmsi=None, plate=None, guest_name="", residence="")


# --- cleaning text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        (None, ""),
        ("", ""),
        ("  Jan   de Vries  ", "Jan de Vries"),
        ("Jan\x00de\x00 Vries", "Jande Vries"),
        ("Jan\tde\nVries\r", "Jan de Vries"),
        ("Jan\r\n\r\nde Vries", "Jan de Vries"),
        ("Jan\x07\x1b[31m", "Jan[31m"),
        ("Jan\u200b\u200e\u202e de\ufeff Vries", "Jan de Vries"),
        ("Jan\u00a0de\u2003Vries", "Jan de Vries"),
        ("Jan\ue000 de Vries", "Jan de Vries"),
        ("Jan\ud800 de Vries", "Jan de Vries"),
        ("Jose\u0301", "José"),
        ("Zoe\u0308", "Zoë"),
    ],
)
def test_clean_text_removes_controls_and_collapses_whitespace(
    raw: str | None, cleaned: str
) -> None:
    assert clean_text(raw, 100) == cleaned


def test_clean_text_composes_to_nfc() -> None:
    assert clean_text("e\u0301", 10) == "\u00e9"


def test_clean_text_does_not_truncate_to_the_maximum() -> None:
    assert clean_text("x" * 150, 100) == "x" * 150


def test_clean_text_keeps_line_breaks_only_for_multiline_fields() -> None:
    assert clean_text("a\n\n\n\nb\r\nc ", 100, multiline=True) == "a\n\nb\nc"
    assert clean_text("a\n\n\n\nb\r\nc ", 100) == "a b c"


def test_nul_bytes_and_controls_are_removed_from_every_stored_field() -> None:
    # Identifiers are the exception: they are refused instead (the test after this one).
    dirty = {
        name: value if name in IDENTIFIERS else value[:1] + "\x00\x01\x1f\x7f\u200b" + value[1:]
        for name, value in EVERYTHING.items()
    }
    for kind in KINDS:
        data = valid(dirty, kind)
        for value in dataclasses.asdict(data).values():
            if isinstance(value, str):
                assert not any(c in value for c in "\x00\x01\x1f\x7f\u200b")


IDENTIFIERS = ("registration", "mmsi", "plate")


@pytest.mark.parametrize("name", IDENTIFIERS)
def test_an_identifier_with_a_control_character_is_refused_rather_than_cleaned(name: str) -> None:
    kind = "vehicle" if name == "plate" else "vessel"
    value = EVERYTHING[name]
    form = {**EVERYTHING, name: value[:1] + "\x00" + value[1:]}
    assert errors_of(form, kind)[name].message == MSG_IDENTIFIER_SYMBOLS


# --- hostile input -------------------------------------------------------------------------

NASTY = [
    "\x00" * 1000,
    "a" * 100_000,
    "😀" * 5000,
    "\ud800\udfff",
    "%(max)s %s %",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "\u202e\u2066\u2069",
    "ﷺ" * 300,
    "9" * 10_000,
    "2026-07-14T21:30" * 1000,
]


@pytest.mark.parametrize("kind", [*KINDS, "other"])
@pytest.mark.parametrize("nasty", NASTY)
def test_hostile_input_in_any_field_never_raises(kind: str, nasty: str) -> None:
    form = dict.fromkeys([*EVERYTHING, "arrived_at", "kind", "bsn"], nasty)
    data, errors = check(form, kind)
    assert (data is None) == bool(errors)
    assert all(isinstance(e, FieldError) for e in errors.values())


@pytest.mark.parametrize("nasty", NASTY)
@pytest.mark.parametrize("field", list(EVERYTHING))
def test_hostile_input_in_a_single_field_never_raises(nasty: str, field: str) -> None:
    for kind in KINDS:
        check({**EVERYTHING, field: nasty}, kind)


# --- the import's memo (FormMemo) -----------------------------------------------------------

# Forms whose fields repeat, good and bad values mixed, as an imported register's rows do.
MEMO_VARIANTS = {
    "guest_name": ("Jan de Vries", "", "  ", "x" * 101, "Zoë\u200b Müller"),
    "residence": ("Hoorn", "", "Den\tHelder"),
    "persons": ("2", "", "0", "100", "zwei"),
    "country": ("NL", "nl", "XX", "Nederland", ""),
    "email": ("jan@example.nl", "jan@", ""),
    "phone": ("+31 6 12345678", "12", ""),
    "id_document_type": ("passport", "bsn", ""),
    "berth": ("A12", "x" * 21, ""),
    "vessel_name": ("Zeemeeuw", "", "L'Étoile"),
    "registration": ("NL-123 AB", "IMO 9074729", "IMO 1234567", "--", "NL\U0001f600", ""),
    "mmsi": ("244123456", "123", "2441234567", "244 123 456", ""),
    "flag": ("DE", "ZZ", ""),
    "vessel_type": ("sail", "zeppelin", ""),
    "length_m": ("9,5", "9.55", "0,5", "101", "lang", ""),
    "plate": ("12abc3", "AB-12-CD", "!!", "x" * 17, ""),
    "plate_country": ("NL", "DE", "QQ", ""),
    "notes": ("betaald", "a\r\n\r\n\r\nb", "", "lang " * 30),
    "unit": ("B12", ""),
}


def memo_forms(count: int) -> list[tuple[str, dict[str, str]]]:
    forms = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        form = form_for(kind)
        for n, (name, choices) in enumerate(MEMO_VARIANTS.items()):
            form[name] = choices[(i * (n + 1) + n) % len(choices)]
        form["last_port"] = f"Haven {i}"  # every form its own
        forms.append((kind, form))
    return forms


def test_a_form_memo_gives_every_form_the_same_values_and_errors_as_checking_it_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(v.FormMemo, "MEMO_SIZE", 16)  # cleared, and given up, along the way
    memo = v.FormMemo()
    for kind, form in memo_forms(600):
        alone = validate_checkin(form, kind=kind, allowed_kinds=KINDS, now=NOW, tz=AMS)
        remembered = validate_checkin(
            form, kind=kind, allowed_kinds=KINDS, now=NOW, tz=AMS, memo=memo
        )
        assert remembered == alone
    assert any(not f.on for f in memo.fields.values())  # some field's texts never repeated


def test_checkin_data_made_without_its_init_equals_one_made_with_it() -> None:
    data = valid(form_for("vessel", **{k: EVERYTHING[k] for k in VESSEL_FIELDS}))
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(CheckinData)}
    made = CheckinData(**fields)
    assert made == data
    assert hash(made) == hash(data)
    assert vars(made) == vars(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.persons = 3  # type: ignore[misc]
