"""Translations that follow the request: a ContextVar holds the locale, gettext reads it."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pycountry
from babel import Locale
from babel.dates import format_datetime, format_skeleton, format_time
from babel.support import NullTranslations, Translations


def N_(message: str) -> str:  # noqa: N802 - the name Babel's extractor looks for
    """Mark a msgid for extraction; translation happens when the message is shown."""
    return message


LOCALES = ("nl", "en", "de")
# A visitor whose browser asks for none of ours more likely reads English than Dutch.
DEFAULT_LOCALE = "en"
LOCALE_NAMES = {"nl": "Nederlands", "en": "English", "de": "Deutsch"}
CATALOG_DIR = Path(__file__).parent

_current: ContextVar[str] = ContextVar("nightreg_locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> NullTranslations:
    return Translations.load(str(CATALOG_DIR), [locale], domain="messages")


def set_locale(locale: str) -> None:
    _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def get_locale() -> str:
    return _current.get()


def gettext(message: str, **variables: object) -> str:
    text = translations(_current.get()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations(_current.get()).ungettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


def negotiate(accept_language: str | None) -> str:
    """Pick one of our locales from an Accept-Language header, best quality first."""
    if not accept_language:
        return DEFAULT_LOCALE
    weighted: list[tuple[float, str]] = []
    for part in accept_language.split(",")[:20]:
        lang, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if lang:
            weighted.append((quality, lang.strip()))
    preferred = [lang for _q, lang in sorted(weighted, key=lambda w: -w[0])]
    found = Locale.negotiate(preferred, list(LOCALES), sep="-")
    return str(found) if found else DEFAULT_LOCALE


@cache
def countries(locale: str) -> tuple[tuple[str, str], ...]:
    """(ISO alpha-2 code, name in the locale) for every country, sorted by that name."""
    territories = Locale.parse(locale).territories
    pairs = [(c.alpha_2, territories.get(c.alpha_2, c.name)) for c in pycountry.countries]
    return tuple(sorted(pairs, key=lambda p: p[1].casefold()))


def country_name(code: str | None) -> str:
    if not code:
        return ""
    return str(Locale.parse(get_locale()).territories.get(code, code))


# How dates and times are written in each language. English is British English: a British or
# Irish boater, and most Europeans who read English, take 12/5/26 for the 12th of May and
# read "23:15" without trouble; Babel's plain "en" is American (month first, AM/PM).
FORMAT_LOCALES = {"nl": "nl_NL", "en": "en_GB", "de": "de_DE"}


def format_locale() -> str:
    """The Babel locale that dates, times and numbers of this request are written in."""
    return FORMAT_LOCALES.get(get_locale(), get_locale())


def _when(local: datetime, locale: str) -> str:
    glue = str(Locale.parse(locale).datetime_formats["medium"])
    day = format_skeleton("MMMEd", local, locale=locale)
    return glue.replace("{1}", day).replace("{0}", format_time(local, "HH:mm", locale=locale))


def local_datetime(value: datetime | None, tz: str | ZoneInfo, fmt: str = "medium") -> str:
    """A stored UTC time as the site's clock shows it, in the visitor's language.

    `fmt` is one of Babel's names ("short", "medium", ...) or a CLDR pattern; "when" is a
    weekday, day, month and 24-hour time ("Tue 13 May, 12:00"), for a sentence.
    """
    if value is None:
        return ""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    local = value.astimezone(zone)
    if fmt == "when":
        return _when(local, format_locale())
    return format_datetime(local, format=fmt, locale=format_locale())
