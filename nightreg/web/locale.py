"""The request's language: ?lang= wins, then the visitor's earlier choice, then the browser's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from litestar import Request, Response

from nightreg import i18n

LANG_COOKIE = "nightreg_lang"
# Over https every cookie is bound to this origin (__Host-: Secure, Path=/, no Domain).
SECURE_LANG_COOKIE = "__Host-nightreg_lang"


def request_locale(request: Request) -> str:
    """?lang= wins, then the visitor's earlier choice (cookie), then the browser's languages."""
    for candidate in (
        request.query_params.get("lang"),
        request.cookies.get(SECURE_LANG_COOKIE) or request.cookies.get(LANG_COOKIE),
    ):
        if candidate in i18n.LOCALES:
            return str(candidate)
    return i18n.negotiate(request.headers.get("accept-language"))


# Set per request: whether the visitor picked a language on this very request (?lang=).
_requested_lang: ContextVar[bool] = ContextVar("nightreg_requested_lang", default=False)


async def set_request_locale(request: Request) -> None:
    """Translate this request's answer into its language (a before-request hook)."""
    # Must be async: Litestar runs a sync hook in a worker thread, whose ContextVar is lost.
    i18n.set_locale(request_locale(request))
    _requested_lang.set(request.query_params.get("lang") in i18n.LOCALES)


def keep_language_choice(*, https: bool) -> Callable[[Response], Awaitable[Response]]:
    """A language picked on the page (?lang=) is kept in a cookie for the next pages."""

    async def after_request(response: Response) -> Response:
        chosen = i18n.get_locale()
        if chosen in i18n.LOCALES and _requested_lang.get():
            response.set_cookie(
                SECURE_LANG_COOKIE if https else LANG_COOKIE, chosen,
                max_age=365 * 24 * 3600, path="/", httponly=True,
                secure=https, samesite="lax",
            )  # fmt: skip
        return response

    return after_request
