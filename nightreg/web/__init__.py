"""What every page, both sides and the app share about HTTP: hardening, the request's language,
form fields, the answers after a form, error pages and the 503 of a database fault.

Services know nothing of this package; kiosk/ and admin/ use it instead of each other.
"""

from nightreg.web.errors import RateLimited, SignInRequired, error_page, handle_error
from nightreg.web.forms import (
    MSG_DATE,
    form_choices,
    form_date,
    form_int,
    form_text,
    render_error_message,
    translated_errors,
)
from nightreg.web.hardening import harden
from nightreg.web.locale import request_locale
from nightreg.web.responses import page_or_part, see_other
from nightreg.web.unavailable import with_unavailable

__all__ = [
    "MSG_DATE",
    "RateLimited",
    "SignInRequired",
    "error_page",
    "form_choices",
    "form_date",
    "form_int",
    "form_text",
    "handle_error",
    "harden",
    "page_or_part",
    "render_error_message",
    "request_locale",
    "see_other",
    "translated_errors",
    "with_unavailable",
]
