"""The staff password policy: twelve characters, and nothing everybody tries first."""

import pytest

from nightreg.passwords import MSG_COMMON, MSG_TOO_SHORT, check_password


@pytest.mark.parametrize(
    "password",
    ["harbour-lights-at-dusk-42", "Tide tables and a cold beer", "zeemeeuw-steiger-B-17"],
)
def test_a_long_uncommon_password_is_accepted(password: str):
    assert check_password(password) is None


def test_a_password_shorter_than_twelve_characters_is_refused():
    assert check_password("Kort-maar-2") == MSG_TOO_SHORT


@pytest.mark.parametrize(
    "password",
    [
        "password1234",  # a common word with digits after it
        "Wachtwoord2026!",  # Dutch, capitalised, with a year and a symbol
        "!!welkom123456",  # digits and symbols before it too
        "123456789012",  # a run of digits
        "qwertyuiop12",  # a keyboard row
        "zzzzzzzzzzzz",  # one character
        "welkomwelkom",  # a common word twice
        "abcdefghijklm",  # the alphabet
    ],
)
def test_a_common_or_guessable_password_is_refused(password: str):
    assert check_password(password) == MSG_COMMON


def test_the_account_name_is_no_password():
    assert check_password("havenmeester.noord", email="havenmeester.noord@haven.example") == (
        MSG_COMMON
    )
