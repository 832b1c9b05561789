"""create_app(): the Litestar application with the kiosk, the staff side and shared plumbing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.plugins.htmx import HTMXPlugin
from litestar.response import File
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.template.config import TemplateConfig

from nightreg import __version__, routes
from nightreg.clock import Clock
from nightreg.context import AppContext
from nightreg.security import derive_key
from nightreg.services import readiness
from nightreg.services.throttle import write_refusals
from nightreg.settings import Settings
from nightreg.templating import make_template_engine
from nightreg.web import handle_error, harden, with_unavailable
from nightreg.web.control_characters import refuse_control_characters
from nightreg.web.locale import keep_language_choice, set_request_locale
from nightreg.web.metrics import metrics_page

STATIC_DIR = Path(__file__).parent / "static"


# PostgreSQL's integer: a larger id in a page's path names no row, and asking the database for
# one fails with an overflow instead of finding nothing. (The API checks its own ids.)
ROW_ID_MAX = 2**31 - 1


# The JSON API (bearer tokens, no cookies), the health and readiness checks, the metrics and the
# API schema.
CSRF_EXEMPT_PATHS = [r"^/api/", r"^/health$", r"^/ready$", r"^/metrics$", r"^/schema(/|$)"]


async def _before_request(request: Request) -> None:
    await set_request_locale(request)
    if not request.url.path.startswith("/api/") and any(
        isinstance(v, int) and not 0 <= v <= ROW_ID_MAX for v in request.path_params.values()
    ):
        raise NotFoundException()
    await refuse_control_characters(request)


@get("/health", media_type=MediaType.JSON)
async def health(ctx: NamedDependency[AppContext]) -> Response[dict[str, str]]:
    """200 when the database answers, 503 when it does not (for load balancers and Docker)."""
    if await ctx.db.ping():
        return Response({"status": "ok"}, status_code=HTTP_200_OK)
    return Response({"status": "database unreachable"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)


@get("/ready", media_type=MediaType.JSON)
async def ready(ctx: NamedDependency[AppContext]) -> Response[dict[str, str]]:
    """200 when the database answers and is at this release's migrations, else 503 and why
    (for a load balancer: an instance whose schema is not its own takes no traffic)."""
    found = await readiness.check(ctx.db)
    if found.ready:
        return Response({"status": "ready", "migrations": found.revision}, status_code=HTTP_200_OK)
    return Response(
        {"status": "not ready", "reason": found.reason},
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "10"},
    )


@get(["/favicon.ico", "/apple-touch-icon.png"], include_in_schema=False, sync_to_thread=False)
def icon(request: Request) -> File:
    """The icons browsers ask for at the site's root, from the static folder."""
    return File(STATIC_DIR / request.url.path.lstrip("/"), content_disposition_type="inline")


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, run_scheduler: bool = False
) -> Litestar:
    settings = settings or Settings.from_env()
    settings.require_strong_secret_key()
    settings.require_hub_sender()
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
            try:
                # The refused sign-ins counted since their last audit event.
                await write_refusals(ctx.db, ctx.refusals, ctx.clock.now(), everything=True)
            finally:
                await ctx.db.dispose()

    csrf = CSRFConfig(
        secret=derive_key(settings.secret_key, "csrf").hex(),
        # __Host- binds the cookie to this exact origin; browsers accept it only when Secure.
        cookie_name="__Host-csrftoken" if settings.https else "nightreg_csrf",
        cookie_secure=settings.https,
        cookie_httponly=True,
        cookie_samesite="lax",
        # Litestar searches these patterns anywhere in the path: anchored, a site slug such as
        # `health-campus` or `api` cannot switch the check off for that site's pages.
        exclude=CSRF_EXEMPT_PATHS,
    )
    app = Litestar(
        route_handlers=[
            health,
            metrics_page,
            ready,
            icon,
            *routes.route_handlers(),
            create_static_files_router(path="/static", directories=[STATIC_DIR]),
        ],
        dependencies={"ctx": Provide(lambda: ctx, use_cache=True, sync_to_thread=False)},
        state=State({"ctx": ctx}),
        lifespan=[lifespan],
        before_request=_before_request,
        after_request=keep_language_choice(https=settings.https),
        csrf_config=csrf,
        template_config=TemplateConfig(instance=make_template_engine(routes.template_dirs())),
        compression_config=CompressionConfig(backend="gzip", gzip_compress_level=6),
        plugins=[HTMXPlugin()],
        # A database that is down or full: a friendly 503 (JSON on the API), logged once a minute.
        exception_handlers={Exception: with_unavailable(handle_error)},
        openapi_config=routes.api_schema(__version__),
        request_max_body_size=settings.max_body_bytes,
        debug=settings.debug,
    )
    return harden(app, https=settings.https, body_timeout_seconds=settings.body_timeout_seconds)
