"""A staff form that did not validate: its messages, and the page again with them.

The services raise `nightreg.validation.Invalid` (or an older `*Invalid` with the same `errors`
by field name); a page shows each error next to its field, translated, with what was typed
kept. Some services give a bare msgid instead of a `FieldError`; both read the same here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar.response import Template
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from nightreg.templating import render_error_message
from nightreg.validation import FieldError


def error_message(error: FieldError | str) -> str:
    """One field's error as the page shows it: translated, its placeholders filled in."""
    if isinstance(error, str):
        return render_error_message(error, {})
    return render_error_message(error.message, dict(error.params))


def error_messages(errors: Mapping[str, FieldError | str]) -> dict[str, str]:
    """Every field's error as the page shows it, by field name."""
    return {name: error_message(error) for name, error in errors.items()}


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
