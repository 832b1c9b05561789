"""create_app(): the Litestar application with the kiosk, the staff side and shared plumbing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, NotFoundException
from litestar.plugins.htmx import HTMXPlugin
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.template.config import TemplateConfig

from nightreg import __version__, i18n
from nightreg.clock import Clock
from nightreg.context import AppContext
from nightreg.security import derive_key
from nightreg.settings import Settings
from nightreg.templating import make_template_engine
from nightreg.unavailable import with_unavailable
from nightreg.validation import N_
from nightreg.web import harden

STATIC_DIR = Path(__file__).parent / "static"
LANG_COOKIE = "nightreg_lang"
# Over https every cookie is bound to this origin (__Host-: Secure, Path=/, no Domain).
SECURE_LANG_COOKIE = "__Host-nightreg_lang"

log = logging.getLogger("nightreg")


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


async def _set_locale(request: Request) -> None:
    # Must be async: Litestar runs a sync hook in a worker thread, whose ContextVar is lost.
    i18n.set_locale(request_locale(request))
    _requested_lang.set(request.query_params.get("lang") in i18n.LOCALES)


# PostgreSQL's integer: a larger id in a page's path names no row, and asking the database for
# one fails with an overflow instead of finding nothing. (The API checks its own ids.)
ROW_ID_MAX = 2**31 - 1


async def _before_request(request: Request) -> None:
    await _set_locale(request)
    if not request.url.path.startswith("/api/") and any(
        isinstance(v, int) and not 0 <= v <= ROW_ID_MAX for v in request.path_params.values()
    ):
        raise NotFoundException()


def _keep_language_choice(settings: Settings) -> Callable[[Response], Awaitable[Response]]:
    """A language picked on the page (?lang=) is kept in a cookie for the next pages."""

    async def after_request(response: Response) -> Response:
        chosen = i18n.get_locale()
        if chosen in i18n.LOCALES and _requested_lang.get():
            response.set_cookie(
                SECURE_LANG_COOKIE if settings.https else LANG_COOKIE, chosen,
                max_age=365 * 24 * 3600, path="/", httponly=True,
                secure=settings.https, samesite="lax",
            )  # fmt: skip
        return response

    return after_request


@get("/health", media_type=MediaType.JSON)
async def health(ctx: NamedDependency[AppContext]) -> Response[dict[str, str]]:
    """200 when the database answers, 503 when it does not (for load balancers and Docker)."""
    if await ctx.db.ping():
        return Response({"status": "ok"}, status_code=HTTP_200_OK)
    return Response({"status": "database unreachable"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)


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
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def _status_of(exc: Exception) -> int:
    from nightreg.services.access import AccessDenied, NotFound

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
    return Response(
        {
            "code": API_ERROR_CODES.get(status, "error"),
            "message": message or HTTPStatus(status).phrase,
            "field": field,
        },
        status_code=status,
    )


def _error_handler(request: Request, exc: Exception) -> Response:
    """Pages answer errors with a page in the visitor's language; the API with JSON."""
    from admin.web import SignInRequired
    from kiosk.controllers import error_page

    if isinstance(exc, SignInRequired):
        target = "/admin/sign-in?" + urlencode({"next": request.url.path})
        if request.headers.get("hx-request"):
            return Response(content=None, status_code=200, headers={"HX-Redirect": target})
        return Redirect(target)
    status = _status_of(exc)
    if status >= 500:
        log.exception("unhandled error on %s", request.method, exc_info=exc)
    path = request.url.path
    if path.startswith(("/api/", "/health", "/schema")):
        response: Response = _api_error(exc, status)
    else:
        i18n.set_locale(request_locale(request))
        if path.startswith("/admin"):
            response = _staff_error_page(request, status)
        else:
            response = error_page(request, status)
    if status == HTTPStatus.REQUEST_TIMEOUT:
        # The rest of a body that came too slowly may still be on its way: end the connection.
        response.headers["Connection"] = "close"
    return response


_STAFF_ERRORS = {
    403: (N_("Not allowed"), N_("Your account may not open this page.")),
    404: (
        N_("Not found"),
        N_("There is no such page, or it belongs to a site you do not work on."),
    ),
}


def _staff_error_page(request: Request, status: int) -> Response:
    from kiosk.controllers import error_page

    if status not in _STAFF_ERRORS or not hasattr(request.state, "actor"):
        return error_page(request, status)
    title, message = _STAFF_ERRORS[status]
    return Template(
        template_name="admin/error.html",
        context={"title": i18n.gettext(title), "message": i18n.gettext(message)},
        status_code=status,
    )


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, run_scheduler: bool = False
) -> Litestar:
    from admin import TEMPLATE_DIRS as ADMIN_TEMPLATE_DIRS
    from admin.api.v1 import openapi_config
    from admin.web import api_router, staff_router
    from kiosk.controllers import kiosk_router

    settings = settings or Settings.from_env()
    ctx = AppContext.from_settings(settings, clock)

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        # One machine: the scheduled jobs run inside the server (each run takes its lease).
        scheduler = None
        if run_scheduler:
            from nightreg.jobs import make_scheduler

            scheduler = make_scheduler(ctx.db, settings, ctx.clock)
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            await ctx.visit_writer.close()
            await ctx.db.dispose()

    csrf = CSRFConfig(
        secret=derive_key(settings.secret_key, "csrf").hex(),
        # __Host- binds the cookie to this exact origin; browsers accept it only when Secure.
        cookie_name="__Host-csrftoken" if settings.https else "nightreg_csrf",
        cookie_secure=settings.https,
        cookie_httponly=True,
        cookie_samesite="lax",
        exclude=["/api/", "/health", "/schema"],
    )
    kiosk_dir = Path(__file__).parent.parent / "kiosk" / "templates"
    template_dirs = [kiosk_dir, *ADMIN_TEMPLATE_DIRS]
    app = Litestar(
        route_handlers=[
            health,
            kiosk_router,
            staff_router(),
            api_router(),
            create_static_files_router(path="/static", directories=[STATIC_DIR]),
        ],
        dependencies={"ctx": Provide(lambda: ctx, use_cache=True, sync_to_thread=False)},
        state=State({"ctx": ctx}),
        lifespan=[lifespan],
        before_request=_before_request,
        after_request=_keep_language_choice(settings),
        csrf_config=csrf,
        template_config=TemplateConfig(instance=make_template_engine(template_dirs)),
        compression_config=CompressionConfig(backend="gzip", gzip_compress_level=6),
        plugins=[HTMXPlugin()],
        # A database that is down or full: a friendly 503 (JSON on the API), logged once a minute.
        exception_handlers={Exception: with_unavailable(_error_handler)},
        openapi_config=openapi_config(__version__),
        request_max_body_size=settings.max_body_bytes,
        debug=settings.debug,
    )
    return harden(app, https=settings.https, body_timeout_seconds=settings.body_timeout_seconds)
