"""Reading form and query fields, and showing a validation message in the request's language."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from nightreg import i18n
from nightreg.i18n import N_
from nightreg.validation import FieldError

MSG_DATE = N_("Please enter a date like 2026-07-14.")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def form_date(value: str | None) -> date | None:
    """A date from a form or query field: None when empty, ValueError unless YYYY-MM-DD."""
    value = (value or "").strip()
    if not value:
        return None
    if not _ISO_DATE.fullmatch(value):  # fromisoformat also takes 20260714 and week dates
        raise ValueError(value)
    day = date.fromisoformat(value)
    # A day a register can hold: the date arithmetic around it (a day either side, time zones)
    # must not run off the calendar's ends.
    if not 1900 <= day.year <= 9998:
        raise ValueError(value)
    return day


def form_text(data: Mapping[str, Any], name: str, limit: int = 300) -> str:
    """One text field; of a repeated key the first value counts, and long input is cut."""
    value = data.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return value[:limit] if isinstance(value, str) else ""


def form_choices(data: Mapping[str, Any], name: str, most: int = 500) -> list[str]:
    """The ticked boxes of a group (one value arrives as a string, several as a list)."""
    value = data.get(name, [])
    items = value if isinstance(value, list) else [value]
    return [v[:100] for v in items[:most] if isinstance(v, str) and v]


def form_int(value: str | None) -> int | None:
    """A whole number from a query field (an id, a keyset position), else None."""
    return int(value) if value and value.isdigit() and len(value) < 12 else None


def render_error_message(message: str, params: dict[str, Any]) -> str:
    """Translate a validation msgid and fill in its placeholders."""
    text = i18n.gettext(message)
    return text % params if params else text


def translated_errors(errors: Mapping[str, FieldError]) -> dict[str, str]:
    """A validation error's messages by field, each in the request's language."""
    return {name: render_error_message(e.message, dict(e.params)) for name, e in errors.items()}
