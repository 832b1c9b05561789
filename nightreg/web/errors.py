"""How the application answers an error: a page in the visitor's language, or the API's JSON.

Pages under /admin get the staff side's error page where one exists, every other page the
visitor's friendly page that reveals nothing; /api/, /health, /ready and /schema get JSON with a
stable code. A database that is down or full is answered before this (nightreg.web.unavailable).

The pages are the sides' own templates (kiosk/error.html, admin/error.html), named here as
strings: they wear each side's layout, and nothing here imports either side.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, TooManyRequestsException
from litestar.response import Redirect, Template

from nightreg import i18n
from nightreg.i18n import N_
from nightreg.services.access import AccessDenied, NotFound
from nightreg.web.control_characters import MSG_CONTROL_CHARACTER, ControlCharacterRefused
from nightreg.web.locale import request_locale

log = logging.getLogger("nightreg")


class SignInRequired(NotAuthorizedException):
    """An anonymous request for a staff page: the answer is the sign-in page."""


class RateLimited(TooManyRequestsException):
    """Over a rate limit (nightreg.ratelimit): 429 with Retry-After; on the API with the code
    `rate_limited`."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            detail=f"too many requests with this token; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


ERROR_PAGES = {
    400: (N_("We could not process this form."), N_("Please go back and try again.")),
    403: (
        N_("This form has expired."),
        N_("Please reload the page and fill it in again. Nothing was registered."),
    ),
    404: (
        N_("This page does not exist."),
        N_("The QR code may have been replaced. Please ask the harbour office or the reception."),
    ),
    405: (N_("We could not process this request."), N_("Please go back and try again.")),
    409: (
        N_("This form was sent before."),
        N_("To register a new visit, please start again."),
    ),
    413: (N_("The form is too large."), N_("Please shorten your notes and try again.")),
    429: (
        N_("Too many check-ins from here."),
        N_("Please wait a minute and try again."),
    ),
    500: (
        N_("Something went wrong on our side."),
        N_("Please try again in a moment, or ask the harbour office."),
    ),
}


def error_page(
    request: Request, status: int, *, start_url: str | None = None, hint: str | None = None
) -> Response:
    """A friendly page for an error, in the visitor's language, revealing nothing."""
    title, default_hint = ERROR_PAGES.get(status, ERROR_PAGES[500 if status >= 500 else 400])
    hint = hint or default_hint
    return Template(
        template_name="kiosk/error.html",
        context={"title": title, "hint": hint, "status": status, "start_url": start_url},
        status_code=status,
    )


# The stable error codes of the JSON API, by status.
API_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def _status_of(exc: Exception) -> int:
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, AccessDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, RecursionError) and "deserializ" in str(exc):
        # msgspec's answer to JSON nested thousands deep: the request is bad, not the server.
        return 400
    return 500


def _api_error(exc: Exception, status: int) -> Response[dict[str, Any]]:
    message = exc.detail if isinstance(exc, HTTPException) and status < 500 else None
    field = None
    extra = getattr(exc, "extra", None)
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        # Litestar's validation errors name the parameter or body key that was wrong.
        field = extra[0].get("key")
        message = f"{message}: {extra[0].get('message', '')}".strip(": ")
    if status == 403 and not message:
        message = "this token may not do that"
    limited = isinstance(exc, RateLimited)
    return Response(
        {
            "code": API_ERROR_CODES.get(status, "error"),
            "message": message or HTTPStatus(status).phrase,
            "field": field,
        },
        status_code=status,
        headers=exc.headers if limited and isinstance(exc, HTTPException) else None,
    )


def handle_error(request: Request, exc: Exception) -> Response:
    """Pages answer errors with a page in the visitor's language; the API with JSON."""
    if isinstance(exc, SignInRequired):
        target = "/admin/sign-in?" + urlencode({"next": request.url.path})
        if request.headers.get("hx-request"):
            return Response(content=None, status_code=200, headers={"HX-Redirect": target})
        return Redirect(target)
    status = _status_of(exc)
    if status >= 500:
        log.exception("unhandled error on %s", request.method, exc_info=exc)
    path = request.url.path
    if path.startswith(("/api/", "/health", "/ready", "/schema")):
        response: Response = _api_error(exc, status)
    else:
        i18n.set_locale(request_locale(request))
        if isinstance(exc, ControlCharacterRefused):
            response = error_page(request, status, hint=MSG_CONTROL_CHARACTER)
        elif path.startswith("/admin"):
            response = _staff_error_page(request, status, exc)
        else:
            response = error_page(request, status)
    if status == HTTPStatus.REQUEST_TIMEOUT:
        # The rest of a body that came too slowly may still be on its way: end the connection.
        response.headers["Connection"] = "close"
    return response


# The staff side's errors, in the staff's words: what happened and what to do next.
_STAFF_ERRORS = {
    400: (
        N_("The form could not be read"),
        N_("Go back, check what you entered and send it again."),
    ),
    403: (N_("Not allowed"), N_("Your account may not open this page.")),
    404: (
        N_("Not found"),
        N_("There is no such page, or it belongs to a site you do not work on."),
    ),
    405: (N_("That did not work"), N_("This page cannot be used that way. Go back and try again.")),
    409: (
        N_("Already sent"),
        N_("This form was sent before and nothing was saved twice. Reload to see the state."),
    ),
    413: (N_("Too large"), N_("The form or file is larger than allowed. Send a smaller one.")),
    429: (N_("Too many requests"), N_("Wait a minute and try again.")),
    500: (
        N_("Something went wrong"),
        N_("The error was logged. Try again soon; if it persists, tell your administrator."),
    ),
}
# A refused form (CSRF): the session's form token no longer matches.
_STAFF_FORM_EXPIRED = (
    N_("The form has expired"),
    N_("Reload the page and send the form again. Nothing was saved."),
)


def _staff_error_page(request: Request, status: int, exc: Exception) -> Response:
    """Every error under /admin in the staff's voice, also where no page matched the path."""
    if status == 403 and not isinstance(exc, AccessDenied):
        title, message = _STAFF_FORM_EXPIRED
    else:
        title, message = _STAFF_ERRORS.get(status, _STAFF_ERRORS[500 if status >= 500 else 400])
    return Template(
        template_name="admin/error.html",
        context={"title": i18n.gettext(title), "message": i18n.gettext(message), "status": status},
        status_code=status,
    )
