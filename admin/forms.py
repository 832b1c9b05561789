"""A staff form that did not validate: its messages, and the page again with them.

The services raise `nightreg.validation.Invalid` (or an older `*Invalid` with the same `errors`
by field name); a page shows each error next to its field, translated, with what was typed
kept. Some services give a bare msgid instead of a `FieldError`; both read the same here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from litestar import Request
from litestar.response import Template
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY

from nightreg.validation import FieldError
from nightreg.web import MSG_DATE, form_date, render_error_message


def error_message(error: FieldError | str) -> str:
    """One field's error as the page shows it: translated, its placeholders filled in."""
    if isinstance(error, str):
        return render_error_message(error, {})
    return render_error_message(error.message, dict(error.params))


def error_messages(errors: Mapping[str, FieldError | str]) -> dict[str, str]:
    """Every field's error as the page shows it, by field name."""
    return {name: error_message(error) for name, error in errors.items()}


def form_dates(
    form: Mapping[str, str], names: Iterable[str] = ("from", "to")
) -> tuple[dict[str, date | None], dict[str, str]]:
    """A form's date fields, each None when empty, and the message for each that is no date."""
    days: dict[str, date | None] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            days[name] = form_date(form[name])
        except ValueError:
            days[name] = None
            errors[name] = error_message(MSG_DATE)
    return days, errors


def done_notice(request: Request[Any, Any, Any], notices: Mapping[str, str]) -> str | None:
    """What a page says after a form redirected to it with `?<flag>=1` (the first flag set)."""
    flags = request.query_params
    return next((notice for flag, notice in notices.items() if flags.get(flag) == "1"), None)


def refused_status(errors: Mapping[str, object], conflict: str) -> int:
    """409 when the refusal is that the thing changed since the form was shown, else 422."""
    return HTTP_409_CONFLICT if conflict in errors else HTTP_422_UNPROCESSABLE_ENTITY


def rerender(
    template_name: str,
    context: Mapping[str, Any],
    errors: Mapping[str, FieldError | str] | None = None,
    *,
    status_code: int = HTTP_422_UNPROCESSABLE_ENTITY,
) -> Template:
    """The form's page again (422 unless told): `errors`, if given, as the context's "errors"."""
    if errors is not None:
        context = {**context, "errors": error_messages(errors)}
    return Template(template_name=template_name, context=dict(context), status_code=status_code)
