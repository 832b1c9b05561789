"""The watchlist's keyed hashes: the scheme the hub shares, identifiers, and the import file."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from nightreg.services import watchlist
from nightreg.services.watchlist import WatchlistFileError, digest, identifiers_of

KEY = "shared-with-the-hub"
A = "a" * 64
B = "0123456789abcdef" * 4


def test_a_digest_is_the_hmac_sha256_of_the_prefixed_identifier_in_hex():
    expected = hmac.new(b"shared-with-the-hub", b"reg:NL123AB", hashlib.sha256).hexdigest()
    assert digest(KEY, "reg:NL123AB") == expected
    assert len(expected) == 64


def test_the_worked_example_in_the_module_docstring_is_right():
    example = hmac.new(b"hub-key", b"reg:NL123AB", "sha256").hexdigest()
    assert example in (watchlist.__doc__ or "")
    assert digest("hub-key", "reg:NL123AB") == example


def test_a_registration_typed_loosely_gives_the_same_digest_as_its_normal_form():
    (loose,) = identifiers_of("vessel", "nl-123 ab", None, None)
    (tidy,) = identifiers_of("vessel", "NL123AB", None, None)
    assert loose == tidy == "reg:NL123AB"
    assert digest(KEY, loose) == digest(KEY, tidy)


def test_a_boat_is_matched_by_registration_and_mmsi_a_car_by_plate_a_person_never():
    assert identifiers_of("vessel", "NL-123-AB", "244123456", None) == [
        "reg:NL123AB",
        "mmsi:244123456",
    ]
    assert identifiers_of("vessel", None, "244 123 456", None) == ["mmsi:244123456"]
    assert identifiers_of("vehicle", None, None, "12-abc-3") == ["plate:12ABC3"]
    assert identifiers_of("stay", "NL123AB", "244123456", "12ABC3") == []


def test_values_that_identify_nothing_give_no_identifier():
    assert watchlist.identifier("reg", " - / ") == ""
    assert watchlist.identifier("mmsi", "12345") == ""
    assert watchlist.identifier("plate", None) == ""
    with pytest.raises(ValueError, match="unknown identifier kind"):
        watchlist.identifier("person", "Jan")


def test_the_identifiers_match_the_subject_keys_the_rules_follow():
    from nightreg.validation import subject_key

    for kind, reg, mmsi, plate in (
        ("vessel", "nl 123-ab", None, None),
        ("vessel", None, "244123456", None),
        ("vehicle", None, None, "ab-12.cd"),
    ):
        key = subject_key(
            kind, registration=reg, mmsi=mmsi, plate=plate, guest_name="x", residence="y"
        )
        assert identifiers_of(kind, reg, mmsi, plate)[0] == key


def test_an_import_file_reads_digests_with_or_without_their_own_expiry():
    default = datetime(2027, 1, 1, tzinfo=UTC)
    lines = [
        "# from the hub, list 2026-11",
        "",
        A.upper(),
        f"{B},2026-12-31  # till the end of the year",
    ]
    entries = watchlist.parse_file(lines, default)
    assert entries == {A: default, B: datetime(2027, 1, 1, tzinfo=UTC)}


def test_an_expiry_with_a_time_is_read_as_utc_unless_it_names_a_zone():
    assert watchlist.parse_expiry("2026-12-31T18:00") == datetime(2026, 12, 31, 18, tzinfo=UTC)
    assert watchlist.parse_expiry("2026-12-31T18:00+01:00") == datetime(
        2026, 12, 31, 17, tzinfo=UTC
    )


def test_every_bad_line_of_an_import_file_is_reported_with_its_number():
    lines = [A, "not-a-digest", f"{B},tomorrow", "", f"{A},2026-01-01,extra", B]
    with pytest.raises(WatchlistFileError) as caught:
        watchlist.parse_file(lines, None)
    numbers = [number for number, _ in caught.value.errors]
    # Line 1 and 6 lack an expiry (no --expires), 2 is no digest, 3 no date, 5 too many fields.
    assert numbers == [1, 2, 3, 5, 6]
