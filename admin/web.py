"""Plumbing of the staff side: who is signed in and what their role allows.

The routers that put the pages behind this guard are in admin/routes.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath

from admin import navigation
from nightreg.context import AppContext
from nightreg.services import auth, sites, tokens, users
from nightreg.services.access import ANONYMOUS, AccessDenied, Actor
from nightreg.web import RateLimited, SignInRequired

# What every staff handler is given by name (Litestar's dependency injection): the app's
# context (settings, database, clock) and the signed-in actor.
ContextDep = NamedDependency[AppContext]
ActorDep = NamedDependency[Actor]
# The path parameters most staff pages take: a site's slug and a record's id. Handlers name
# them `slug` and `id`, as the route table does (`{id:int}`), though `id` shadows the builtin.
Slug = FromPath[str]
PathId = FromPath[int]

API_PREFIX = "/api/"
SESSION_COOKIE = "nightreg_session"
SECURE_SESSION_COOKIE = "__Host-nightreg_session"


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
        touch=not is_background_refresh(connection),
    )


# The query flag of a part that asks for itself again on a timer (Tonight's board, every 15
# seconds): such a request is nobody's activity and must not keep the session alive.
BACKGROUND_REFRESH = ("refresh", "auto")


def is_background_refresh(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    name, value = BACKGROUND_REFRESH
    return bool(connection.headers.get("hx-request")) and (
        connection.query_params.get(name) == value
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
    if actor.kind == "token" and actor.id is not None:
        # Counted for every instance at once on PostgreSQL (nightreg.ratelimit).
        ctx = app_context(connection)
        refused = await ctx.rate_limits.api_request(actor.id, ctx.clock.now())
        if refused is not None:
            raise RateLimited(refused.retry_after)
    if "permission" not in handler.opt:
        raise AccessDenied(f"{handler} declares no permission")
    permission = handler.opt["permission"]
    if permission is not None and not actor.can(permission):
        raise AccessDenied(permission)
    if not connection.url.path.startswith(API_PREFIX):
        await _prepare_navigation(connection, handler, actor)


async def _prepare_navigation(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, actor: Actor
) -> None:
    """What the layout's navigation needs: the sites this account works on (the hub's analyst
    works on their flags only) and the one it chose last; the menu itself is drawn from
    admin.navigation when the page knows its own site."""
    db = app_context(connection).db
    nav = "register.view" if actor.can("register.view") else "flags.view"
    nav_sites = await sites.sites_for(db, actor, nav)
    connection.state.nav_sites = nav_sites
    if connection.headers.get("hx-request") or actor.kind != "user" or actor.id is None:
        return  # a part of a page, or no account: no navigation drawn
    remembered = await users.chosen_site_id(db, actor.id) if len(nav_sites) > 1 else None
    route_name = handler.name or ""
    reverse = connection.app.route_reverse

    def draw(page_site: object = None) -> navigation.Menu:
        chosen = navigation.choose_site(nav_sites, page_site=page_site, remembered_id=remembered)
        return navigation.menu(
            actor, nav_sites, chosen=chosen, route_name=route_name, reverse=reverse
        )

    connection.state.menu = draw


def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    actor: Actor = getattr(request.state, "actor", ANONYMOUS)
    return actor
