"""create_app(): the Litestar application with the kiosk, the staff side and shared plumbing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path

from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.plugins.htmx import HTMXPlugin
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.template.config import TemplateConfig

from nightreg import i18n
from nightreg.clock import Clock
from nightreg.context import AppContext
from nightreg.security import derive_key
from nightreg.settings import Settings
from nightreg.templating import make_template_engine
from nightreg.web import RequestLogMiddleware, SecurityHeadersMiddleware

STATIC_DIR = Path(__file__).parent / "static"
LANG_COOKIE = "nightreg_lang"

log = logging.getLogger("nightreg")


def request_locale(request: Request) -> str:
    """?lang= wins, then the visitor's earlier choice (cookie), then the browser's languages."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in i18n.LOCALES:
            return str(candidate)
    return i18n.negotiate(request.headers.get("accept-language"))


# Set per request: whether the visitor picked a language on this very request (?lang=).
_requested_lang: ContextVar[bool] = ContextVar("nightreg_requested_lang", default=False)


async def _set_locale(request: Request) -> None:
    # Must be async: Litestar runs a sync hook in a worker thread, whose ContextVar is lost.
    i18n.set_locale(request_locale(request))
    _requested_lang.set(request.query_params.get("lang") in i18n.LOCALES)


def _keep_language_choice(settings: Settings) -> Callable[[Response], Awaitable[Response]]:
    """A language picked on the page (?lang=) is kept in a cookie for the next pages."""

    async def after_request(response: Response) -> Response:
        chosen = i18n.get_locale()
        if chosen in i18n.LOCALES and _requested_lang.get():
            response.set_cookie(
                LANG_COOKIE, chosen, max_age=365 * 24 * 3600, path="/", httponly=True,
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


def _error_handler(request: Request, exc: Exception) -> Response:
    """Pages answer errors with a page in the visitor's language; the API with JSON."""
    from kiosk.controllers import error_page

    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status >= 500:
        log.exception("unhandled error on %s", request.method, exc_info=exc)
    if request.url.path.startswith(("/api/", "/health", "/schema")):
        detail = exc.detail if isinstance(exc, HTTPException) else "Internal server error"
        return Response({"status_code": status, "detail": detail}, status_code=status)
    i18n.set_locale(request_locale(request))
    return error_page(request, status)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> Litestar:
    from kiosk.controllers import kiosk_router

    settings = settings or Settings.from_env()
    ctx = AppContext.from_settings(settings, clock)

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
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
    admin_dir = Path(__file__).parent.parent / "admin" / "templates"
    return Litestar(
        route_handlers=[
            health,
            kiosk_router,
            create_static_files_router(path="/static", directories=[STATIC_DIR]),
        ],
        dependencies={"ctx": Provide(lambda: ctx, use_cache=True, sync_to_thread=False)},
        state=State({"ctx": ctx}),
        lifespan=[lifespan],
        before_request=_set_locale,
        after_request=_keep_language_choice(settings),
        csrf_config=csrf,
        template_config=TemplateConfig(instance=make_template_engine([kiosk_dir, admin_dir])),
        compression_config=CompressionConfig(backend="gzip", gzip_compress_level=6),
        plugins=[HTMXPlugin()],
        middleware=[RequestLogMiddleware(), SecurityHeadersMiddleware(https=settings.https)],
        exception_handlers={HTTPException: _error_handler, Exception: _error_handler},
        request_max_body_size=settings.max_body_bytes,
        debug=settings.debug,
    )
