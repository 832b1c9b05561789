"""Sign in, sign out, one's own password, reset links, and the staff home page."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_429_TOO_MANY_REQUESTS,
)

from admin.web import client_address, session_cookie_name
from nightreg.context import AppContext
from nightreg.i18n import gettext
from nightreg.services import auth
from nightreg.services.access import Actor
from nightreg.services.sites import sites_for

FormBody = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def safe_next(target: str | None) -> str:
    """Only a staff page of this site may be the destination after signing in."""
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return "/admin/"


def _errors(errors: dict[str, str]) -> dict[str, str]:
    return {field: gettext(message) for field, message in errors.items()}


class SignInController(Controller):
    path = "/"

    @get("/sign-in", name="admin:sign-in", opt={"public": True})
    async def sign_in_page(self, request: Request[Any, Any, Any]) -> Template:
        return Template(
            template_name="admin/sign_in.html",
            context={
                "next": safe_next(request.query_params.get("next")),
                "email": "",
                "error": None,
            },
        )

    @post("/sign-in", name="admin:sign-in-submit", opt={"public": True})
    async def sign_in(
        self, request: Request[Any, Any, Any], ctx: NamedDependency[AppContext], data: FormBody
    ) -> Template | Redirect:
        cookie = session_cookie_name(ctx)
        outcome = await auth.sign_in(
            ctx.db,
            email=data.get("email", ""),
            password=data.get("password", "")[:1024],
            address=client_address(request),
            now=ctx.clock.now(),
            previous_token=request.cookies.get(cookie),
        )
        if outcome.session_token is None:
            message = gettext(outcome.message or auth.MSG_BAD_CREDENTIALS)
            if outcome.retry_after:
                message = message % {"seconds": outcome.retry_after}
            return Template(
                template_name="admin/sign_in.html",
                context={
                    "next": safe_next(data.get("next")),
                    "email": data.get("email", "")[:254],
                    "error": message,
                },
                status_code=HTTP_429_TOO_MANY_REQUESTS
                if outcome.retry_after
                else HTTP_400_BAD_REQUEST,
                headers={"Retry-After": str(outcome.retry_after)} if outcome.retry_after else None,
            )
        response = Redirect(safe_next(data.get("next")))
        response.set_cookie(
            cookie,
            outcome.session_token,
            max_age=ctx.settings.session_absolute_hours * 3600,
            path="/",
            secure=ctx.settings.https,
            httponly=True,
            samesite="lax",
        )
        return response

    @post("/sign-out", name="admin:sign-out", opt={"permission": None})
    async def sign_out(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[AppContext],
        actor: NamedDependency[Actor],
    ) -> Redirect:
        cookie = session_cookie_name(ctx)
        await auth.sign_out(ctx.db, actor, request.cookies.get(cookie), now=ctx.clock.now())
        response = Redirect("/admin/sign-in")
        response.delete_cookie(cookie, path="/")
        return response


class AccountController(Controller):
    path = "/"

    @get("/", name="admin:home", opt={"permission": None})
    async def home(
        self, ctx: NamedDependency[AppContext], actor: NamedDependency[Actor]
    ) -> Template | Redirect:
        register_sites = await sites_for(ctx.db, actor, "register.view")
        if len(register_sites) == 1 and not actor.can("users.manage"):
            return Redirect(f"/admin/sites/{register_sites[0].slug}/tonight")
        # The hub's analyst has no register: their sites are those of their flags.
        shown = register_sites or await sites_for(ctx.db, actor, "flags.view")
        return Template(template_name="admin/home.html", context={"sites": shown})

    @get("/password", name="admin:password", opt={"permission": None})
    async def password_page(self) -> Template:
        return Template(template_name="admin/password.html", context={"errors": {}, "done": False})

    @post("/password", name="admin:password-submit", opt={"permission": None})
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[AppContext],
        actor: NamedDependency[Actor],
        data: FormBody,
    ) -> Template:
        errors = await auth.change_password(
            ctx.db,
            actor,
            current=data.get("current", "")[:1024],
            new=data.get("new", "")[:1024],
            repeat=data.get("repeat", "")[:1024],
            keep_token=request.cookies.get(session_cookie_name(ctx)),
            now=ctx.clock.now(),
        )
        return Template(
            template_name="admin/password.html",
            context={"errors": _errors(errors), "done": not errors},
            status_code=HTTP_400_BAD_REQUEST if errors else 200,
        )


class ResetController(Controller):
    """The one-time link an admin passes on: the account holder sets a new password."""

    path = "/reset"

    @get("/{token:str}", name="admin:reset", opt={"public": True})
    async def reset_page(self, ctx: NamedDependency[AppContext], token: FromPath[str]) -> Template:
        account = await auth.reset_account(ctx.db, token, now=ctx.clock.now())
        return Template(
            template_name="admin/reset.html",
            context={
                "email": account.email if account else None,
                "errors": {} if account else {"link": gettext(auth.MSG_RESET_INVALID)},
                "done": False,
            },
            status_code=200 if account else HTTP_400_BAD_REQUEST,
        )

    @post("/{token:str}", name="admin:reset-submit", opt={"public": True})
    async def reset(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[AppContext],
        token: FromPath[str],
        data: FormBody,
    ) -> Template:
        account = await auth.reset_account(ctx.db, token, now=ctx.clock.now())
        errors = await auth.use_reset(
            ctx.db,
            token,
            new=data.get("new", "")[:1024],
            repeat=data.get("repeat", "")[:1024],
            address=client_address(request),
            now=ctx.clock.now(),
        )
        return Template(
            template_name="admin/reset.html",
            context={
                "email": account.email if account else None,
                "errors": _errors(errors),
                "done": not errors,
            },
            status_code=HTTP_400_BAD_REQUEST if errors else 200,
        )


ROUTES = [SignInController, AccountController, ResetController]
