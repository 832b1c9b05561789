"""Plumbing of the staff side: who is signed in, what their role allows, the admin router."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from litestar import Request, Router
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Response, Template

from nightreg.context import AppContext
from nightreg.services import auth, sites, tokens
from nightreg.services.access import ANONYMOUS, AccessDenied, Actor
from nightreg.validation import N_

API_PREFIX = "/api/"
SESSION_COOKIE = "nightreg_session"
SECURE_SESSION_COOKIE = "__Host-nightreg_session"


class SignInRequired(NotAuthorizedException):
    """An anonymous request for a staff page: the answer is the sign-in page."""


def session_cookie_name(ctx: AppContext) -> str:
    # __Host- ties the cookie to this origin and path /; browsers only take it over https.
    return SECURE_SESSION_COOKIE if ctx.settings.https else SESSION_COOKIE


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return connection.client.host if connection.client else ""


def app_context(connection: ASGIConnection[Any, Any, Any, Any]) -> AppContext:
    ctx: AppContext = connection.app.state["ctx"]
    return ctx


async def resolve_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor | None:
    """The actor behind a request: a bearer token under /api/, a session cookie elsewhere."""
    ctx = app_context(connection)
    now = ctx.clock.now()
    address = client_address(connection)
    if connection.url.path.startswith(API_PREFIX):
        scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return None
        return await tokens.actor_for_token(ctx.db, credentials.strip(), now=now, address=address)
    return await auth.session_actor(
        ctx.db,
        connection.cookies.get(session_cookie_name(ctx)),
        now=now,
        idle=timedelta(minutes=ctx.settings.session_idle_minutes),
        absolute=timedelta(hours=ctx.settings.session_absolute_hours),
        address=address,
    )


async def staff_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Sign-in and role check for every staff page and API call.

    Each handler declares `opt={"permission": ...}` (a key of access.PERMISSIONS, or None for
    any signed-in account) or `opt={"public": True}`. A handler that declares neither is
    refused: forgetting the declaration must not open a page. Site scoping happens in the
    services' queries, not here.
    """
    if handler.opt.get("public"):
        connection.state.actor = Actor(kind="anonymous", address=client_address(connection))
        return
    actor = await resolve_actor(connection)
    if actor is None:
        if connection.url.path.startswith(API_PREFIX):
            raise NotAuthorizedException("a valid bearer token is required")
        raise SignInRequired()
    connection.state.actor = actor
    if "permission" not in handler.opt:
        raise AccessDenied(f"{handler} declares no permission")
    permission = handler.opt["permission"]
    if permission is not None and not actor.can(permission):
        raise AccessDenied(permission)
    if not connection.url.path.startswith(API_PREFIX):
        # The layout's navigation: the sites this account works on (the hub's analyst works
        # on their flags only).
        nav = "register.view" if actor.can("register.view") else "flags.view"
        connection.state.nav_sites = await sites.sites_for(app_context(connection).db, actor, nav)


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


def page_or_part(
    request: HTMXRequest,
    page: str,
    part: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    more: tuple[str, str] | None = None,
) -> Template:
    """The whole page, or for htmx only the part it swaps in.

    `more` is (the target id of a "more" row, the template of the rows alone) for lists
    that page on; a history restore asks for the whole page again.
    """
    htmx = request.htmx
    if htmx and not htmx.history_restore_request:
        name = more[1] if more and htmx.target == more[0] else part
        return Template(template_name=name, context=context, status_code=status)
    return Template(template_name=page, context=context, status_code=status)


def see_other(request: HTMXRequest, path: str) -> Response[Any]:
    """After a form is done: a 303 to `path`, or htmx's own redirect for an htmx request."""
    if request.htmx:
        return ClientRedirect(redirect_to=path)
    return Redirect(path=path, status_code=303)


def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    actor: Actor = getattr(request.state, "actor", ANONYMOUS)
    return actor


def _route_handlers() -> list[Any]:
    from admin.accounts import auth as auth_pages
    from admin.accounts import manage as manage_pages
    from admin.flags import export as flag_export_pages
    from admin.flags import observations as observation_pages
    from admin.flags import pages as flag_pages
    from admin.operations import audit as audit_pages
    from admin.operations import jobs as job_pages
    from admin.privacy import holds as hold_pages
    from admin.privacy import retention as retention_pages
    from admin.privacy import subjects as subject_pages
    from admin.register import pages as register_pages
    from admin.register import tourist_tax as tourist_tax_pages
    from admin.register import transfer as transfer_pages
    from admin.sharing import agreements as agreement_pages
    from admin.sharing import insight as insight_pages
    from admin.sharing import signals as signal_pages

    handlers: list[Any] = [
        *auth_pages.ROUTES,
        *audit_pages.ROUTES,
        *register_pages.ROUTES,
        *manage_pages.ROUTES,
        *transfer_pages.ROUTES,
        *flag_pages.ROUTES,
        *flag_export_pages.ROUTES,
        *observation_pages.ROUTES,
        *job_pages.ROUTES,
        *agreement_pages.ROUTES,
        *signal_pages.ROUTES,
        *insight_pages.ROUTES,
        *retention_pages.ROUTES,
        *hold_pages.ROUTES,
        *subject_pages.ROUTES,
        *tourist_tax_pages.ROUTES,
    ]
    return handlers


def staff_router() -> Router:
    """Everything under /admin; kept out of the API schema (pages, not an interface)."""
    return Router(
        path="/admin",
        route_handlers=_route_handlers(),
        guards=[staff_guard],
        dependencies={"actor": Provide(provide_actor, sync_to_thread=False)},
        include_in_schema=False,
    )


def api_router() -> Router:
    """The JSON API under /api/v1, behind the same guard with bearer tokens."""
    from admin.api.v1 import api_router as v1

    return Router(
        path="/",
        route_handlers=[v1],
        guards=[staff_guard],
        dependencies={"actor": Provide(provide_actor, sync_to_thread=False)},
    )
