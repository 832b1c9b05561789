"""The choice of language, and names shown in it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nightreg import i18n
from nightreg.templating import country_options


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("nl-BE", "nl"),
        ("fr-FR,fr;q=0.9,de;q=0.5", "de"),
        ("fr-FR", "en"),
        ("en;q=0.1,nl;q=0.9", "nl"),
        ("", "en"),
        (None, "en"),
        ("de;q=bogus,,,nl", "nl"),
    ],
)
def test_the_language_follows_the_browsers_preferences(header: str | None, expected: str):
    assert i18n.negotiate(header) == expected


def test_a_time_is_shown_on_the_sites_clock_in_the_visitors_language():
    i18n.set_locale("nl")
    shown = i18n.local_datetime(datetime(2026, 7, 14, 19, 0, tzinfo=UTC), "Europe/Amsterdam")
    assert "21:00" in shown
    assert "jul" in shown


def test_country_names_are_translated_and_sorted():
    german = dict(i18n.countries("de"))
    assert german["DE"] == "Deutschland"
    assert german["NL"] == "Niederlande"
    names = [name for _code, name in i18n.countries("nl")]
    assert names == sorted(names, key=str.casefold)


def test_a_country_list_marks_the_chosen_country_and_only_that_one():
    i18n.set_locale("de")
    html = str(country_options("NL"))
    assert '<option value="NL" selected>Niederlande</option>' in html
    assert html.count(" selected") == 1
    assert '<option value="DE">Deutschland</option>' in html
    assert " selected" not in str(country_options(None))
    assert " selected" not in str(country_options("<script>"))
