"""Sign in (with its second step), sign out, one's own password and second factor, reset links,
and the staff home page."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_429_TOO_MANY_REQUESTS,
)
from markupsafe import Markup

from admin import navigation
from admin.forms import error_message, error_messages
from admin.web import ActorDep, ContextDep, client_address, session_cookie_name
from nightreg.context import AppContext
from nightreg.i18n import gettext
from nightreg.jobs import crontabs, next_run
from nightreg.qr import qr_svg
from nightreg.services import auth, twofactor, users
from nightreg.services import home as home_figures
from nightreg.services.access import Actor
from nightreg.services.twofactor import TwoFactorInvalid
from nightreg.vocabulary import JOB_LABELS

FormBody = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def safe_next(target: str | None) -> str:
    """Only a staff page of this site may be the destination after signing in."""
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return "/admin/"


# The half-done sign-in (password right, second step to come) lives in a cookie of its own: it
# opens no page but the second step's, and expires after auth.PENDING_VALID.
PENDING_COOKIE = "nightreg_sign_in"
SECURE_PENDING_COOKIE = "__Host-nightreg_sign_in"
NO_STORE = {"Cache-Control": "no-store"}
STAGE_PAGES = {auth.STAGE_CODE: "/admin/sign-in/code", auth.STAGE_ENROL: "/admin/sign-in/enrol"}


def pending_cookie_name(ctx: AppContext) -> str:
    return SECURE_PENDING_COOKIE if ctx.settings.https else PENDING_COOKIE


def _set_session(response: Redirect | Template, ctx: AppContext, token: str) -> None:
    response.set_cookie(
        session_cookie_name(ctx),
        token,
        max_age=ctx.settings.session_absolute_hours * 3600,
        path="/",
        secure=ctx.settings.https,
        httponly=True,
        samesite="lax",
    )


async def _pause_if_refused(ctx: AppContext, outcome: auth.SignInOutcome) -> None:
    """An attempt refused because of the wait is answered late (see sign_in_refusal_pause_ms):
    an attacker who waits for each answer cannot keep the server busy with refusals."""
    if outcome.retry_after and ctx.settings.sign_in_refusal_pause_ms:
        await asyncio.sleep(ctx.settings.sign_in_refusal_pause_ms / 1000)


def _throttled(outcome: auth.SignInOutcome, default: str) -> tuple[str, int, dict[str, str] | None]:
    """The message, status and headers of a failed sign-in step."""
    message = gettext(outcome.message or default)
    if outcome.retry_after:
        message = message % {"seconds": outcome.retry_after}
        return message, HTTP_429_TOO_MANY_REQUESTS, {"Retry-After": str(outcome.retry_after)}
    return message, HTTP_400_BAD_REQUEST, None


def enrolment_page(
    enrolment: twofactor.Enrolment, *, at_sign_in: bool, error: str | None = None
) -> Template:
    """The enrolment page: the QR code of the otpauth:// URI and the secret in groups of four.

    At sign-in (the second step of a sign-in that requires it) or from the account's own
    two-factor page; with `error` (a msgid) again after a wrong code.
    """
    secret = enrolment.secret
    context = {
        "qr": Markup(qr_svg(enrolment.uri, gettext("QR code for your authenticator app"))),  # noqa: S704
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "email": enrolment.email,
        "issuer": twofactor.ISSUER,
        "action": "/admin/sign-in/enrol" if at_sign_in else "/admin/two-factor/enrol",
        "error": error_message(error) if error else None,
        "at_sign_in": at_sign_in,
    }
    return Template(
        template_name="admin/two_factor_enrol.html",
        context=context,
        status_code=HTTP_400_BAD_REQUEST if error else 200,
        headers=NO_STORE,
    )


class SignInController(Controller):
    path = "/"

    @get("/sign-in", name="admin:sign-in", opt={"public": True})
    async def sign_in_page(self, request: Request[Any, Any, Any]) -> Template:
        return Template(
            template_name="admin/sign_in.html",
            context={
                "next": safe_next(request.query_params.get("next")),
                "email": "",
                "error": gettext(auth.MSG_PENDING_EXPIRED)
                if request.query_params.get("expired") == "1"
                else None,
            },
        )

    @post("/sign-in", name="admin:sign-in-submit", opt={"public": True})
    async def sign_in(
        self, request: Request[Any, Any, Any], ctx: ContextDep, data: FormBody
    ) -> Template | Redirect:
        cookie = session_cookie_name(ctx)
        outcome = await auth.sign_in(
            ctx.db,
            email=data.get("email", ""),
            password=data.get("password", "")[:1024],
            address=client_address(request),
            now=ctx.clock.now(),
            secret_key=ctx.settings.secret_key,
            two_factor_roles=ctx.settings.two_factor_roles,
            next_page=safe_next(data.get("next")),
            previous_token=request.cookies.get(cookie),
            refusals=ctx.refusals,
        )
        if outcome.pending and outcome.stage:
            # The password was right; the second step (a code, or enrolment) comes first.
            response = Redirect(STAGE_PAGES[outcome.stage], status_code=303)
            response.set_cookie(
                pending_cookie_name(ctx),
                outcome.pending,
                max_age=int(auth.PENDING_VALID.total_seconds()),
                path="/",
                secure=ctx.settings.https,
                httponly=True,
                samesite="lax",
            )
            return response
        if outcome.session_token is None:
            await _pause_if_refused(ctx, outcome)
            message, status, headers = _throttled(outcome, auth.MSG_BAD_CREDENTIALS)
            return Template(
                template_name="admin/sign_in.html",
                context={
                    "next": safe_next(data.get("next")),
                    "email": data.get("email", "")[:254],
                    "error": message,
                },
                status_code=status,
                headers=headers,
            )
        response = Redirect(safe_next(data.get("next")))
        _set_session(response, ctx, outcome.session_token)
        return response

    @post("/sign-out", name="admin:sign-out", opt={"permission": None})
    async def sign_out(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Redirect:
        cookie = session_cookie_name(ctx)
        await auth.sign_out(ctx.db, actor, request.cookies.get(cookie), now=ctx.clock.now())
        # The night round's marks waiting for a signal live in this browser's storage: they go
        # with the session (ASVS 14.3.1); the round's page says how many are still waiting.
        response = Redirect("/admin/sign-in", headers={"Clear-Site-Data": '"storage"'})
        response.delete_cookie(cookie, path="/")
        return response


class SecondStepController(Controller):
    """Between the password and the session: a code, or (for a role that must have a second
    factor) enrolment. Public pages, but each needs the half-done sign-in's cookie."""

    path = "/sign-in"

    @staticmethod
    async def _pending(
        request: Request[Any, Any, Any], ctx: AppContext, stage: str
    ) -> auth.PendingSignIn | None:
        pending = await auth.pending_sign_in(
            ctx.db,
            request.cookies.get(pending_cookie_name(ctx)),
            secret_key=ctx.settings.secret_key,
            now=ctx.clock.now(),
        )
        return pending if pending is not None and pending.stage == stage else None

    @staticmethod
    def _expired() -> Redirect:
        return Redirect("/admin/sign-in?expired=1", status_code=303)

    def _signed_in(
        self, response: Redirect | Template, ctx: AppContext, token: str
    ) -> Redirect | Template:
        _set_session(response, ctx, token)
        response.delete_cookie(pending_cookie_name(ctx), path="/")
        return response

    @get("/code", name="admin:sign-in-code", opt={"public": True})
    async def code_page(
        self, request: Request[Any, Any, Any], ctx: ContextDep
    ) -> Template | Redirect:
        if await self._pending(request, ctx, auth.STAGE_CODE) is None:
            return self._expired()
        return Template(
            template_name="admin/two_factor_code.html", context={"error": None}, headers=NO_STORE
        )

    @post("/code", name="admin:sign-in-code-submit", opt={"public": True})
    async def code(
        self, request: Request[Any, Any, Any], ctx: ContextDep, data: FormBody
    ) -> Template | Redirect:
        pending = await self._pending(request, ctx, auth.STAGE_CODE)
        if pending is None:
            return self._expired()
        outcome = await auth.complete_sign_in(
            ctx.db,
            pending,
            data.get("code", "")[:80],
            secret_key=ctx.settings.secret_key,
            address=client_address(request),
            now=ctx.clock.now(),
            previous_token=request.cookies.get(session_cookie_name(ctx)),
            refusals=ctx.refusals,
        )
        if outcome.session_token is None:
            await _pause_if_refused(ctx, outcome)
            message, status, headers = _throttled(outcome, twofactor.MSG_CODE_OR_RECOVERY)
            return Template(
                template_name="admin/two_factor_code.html",
                context={"error": message},
                status_code=status,
                headers={**NO_STORE, **(headers or {})},
            )
        return self._signed_in(Redirect(safe_next(pending.next_page)), ctx, outcome.session_token)

    @get("/enrol", name="admin:sign-in-enrol", opt={"public": True})
    async def enrol_page(
        self, request: Request[Any, Any, Any], ctx: ContextDep
    ) -> Template | Redirect:
        pending = await self._pending(request, ctx, auth.STAGE_ENROL)
        if pending is None:
            return self._expired()
        enrolment = await twofactor.begin_enrolment(
            ctx.db, pending.user.id, secret_key=ctx.settings.secret_key
        )
        if enrolment is None:
            return self._expired()
        return enrolment_page(enrolment, at_sign_in=True)

    @post("/enrol", name="admin:sign-in-enrol-submit", opt={"public": True})
    async def enrol(
        self, request: Request[Any, Any, Any], ctx: ContextDep, data: FormBody
    ) -> Template | Redirect:
        pending = await self._pending(request, ctx, auth.STAGE_ENROL)
        if pending is None:
            return self._expired()
        try:
            outcome, codes = await auth.enrol_and_sign_in(
                ctx.db,
                pending,
                data.get("code", "")[:80],
                secret_key=ctx.settings.secret_key,
                address=client_address(request),
                now=ctx.clock.now(),
                previous_token=request.cookies.get(session_cookie_name(ctx)),
            )
        except TwoFactorInvalid as invalid:
            enrolment = await twofactor.begin_enrolment(
                ctx.db, pending.user.id, secret_key=ctx.settings.secret_key
            )
            if enrolment is None:
                return self._expired()
            return enrolment_page(enrolment, at_sign_in=True, error=invalid.errors["code"])
        assert outcome.session_token is not None
        page = Template(
            template_name="admin/two_factor_codes.html",
            context={"codes": codes, "next": safe_next(pending.next_page)},
            headers=NO_STORE,
        )
        return self._signed_in(page, ctx, outcome.session_token)


class TwoFactorController(Controller):
    """One's own second factor: switch it on (QR code, first code, recovery codes) or off."""

    path = "/two-factor"

    @staticmethod
    async def _status_page(
        ctx: AppContext,
        actor: Actor,
        *,
        error: str | None = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        notice: str | None = None,
    ) -> Template:
        state = await twofactor.status(ctx.db, actor.id, ctx.settings.two_factor_roles)
        return Template(
            template_name="admin/two_factor.html",
            context={
                "state": state,
                "error": error,
                "notice": notice,
                "tz": ctx.settings.tz,
                "time_format": "yyyy-MM-dd HH:mm",
            },
            status_code=status_code,
            headers=headers,
        )

    @get("/", name="admin:two-factor", opt={"permission": None})
    async def page(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Template:
        notice = None
        if request.query_params.get("off") == "1":
            notice = gettext("Two-factor sign-in is switched off.")
        return await self._status_page(ctx, actor, notice=notice)

    @get("/enrol", name="admin:two-factor-enrol", opt={"permission": None})
    async def enrol_page(self, ctx: ContextDep, actor: ActorDep) -> Template | Redirect:
        enrolment = await twofactor.begin_enrolment(
            ctx.db, actor.id, secret_key=ctx.settings.secret_key
        )
        if enrolment is None:  # on already
            return Redirect("/admin/two-factor", status_code=303)
        return enrolment_page(enrolment, at_sign_in=False)

    @post("/enrol", name="admin:two-factor-enrol-submit", opt={"permission": None})
    async def enrol(self, ctx: ContextDep, actor: ActorDep, data: FormBody) -> Template | Redirect:
        try:
            codes = await twofactor.confirm_enrolment(
                ctx.db,
                actor,
                actor.id,
                data.get("code", "")[:80],
                secret_key=ctx.settings.secret_key,
                now=ctx.clock.now(),
            )
        except TwoFactorInvalid as invalid:
            enrolment = await twofactor.begin_enrolment(
                ctx.db, actor.id, secret_key=ctx.settings.secret_key
            )
            if enrolment is None:
                return Redirect("/admin/two-factor", status_code=303)
            return enrolment_page(enrolment, at_sign_in=False, error=invalid.errors["code"])
        return Template(
            template_name="admin/two_factor_codes.html",
            context={"codes": codes, "next": "/admin/two-factor"},
            headers=NO_STORE,
        )

    @post("/disable", name="admin:two-factor-disable", opt={"permission": None})
    async def disable(
        self, ctx: ContextDep, actor: ActorDep, data: FormBody
    ) -> Template | Redirect:
        try:
            await twofactor.disable(
                ctx.db,
                actor,
                data.get("code", "")[:80],
                secret_key=ctx.settings.secret_key,
                required_roles=ctx.settings.two_factor_roles,
                now=ctx.clock.now(),
            )
        except TwoFactorInvalid as invalid:
            message = error_message(invalid.errors["code"])
            if invalid.retry_after:
                message = message % {"seconds": invalid.retry_after}
            return await self._status_page(
                ctx,
                actor,
                error=message,
                status_code=HTTP_429_TOO_MANY_REQUESTS
                if invalid.retry_after
                else HTTP_400_BAD_REQUEST,
                headers={"Retry-After": str(invalid.retry_after)} if invalid.retry_after else None,
            )
        return Redirect("/admin/two-factor?off=1", status_code=303)


class AccountController(Controller):
    path = "/"

    @get("/", name="admin:home", opt={"permission": None})
    async def home(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Template:
        """What needs doing, for this account's role (nightreg.services.home)."""
        now = ctx.clock.now()
        nav_sites = request.state.nav_sites
        chosen = await users.chosen_site_id(ctx.db, actor.id) if actor.id is not None else None
        # The chosen site first: the one the account works on now.
        ordered = sorted(nav_sites, key=lambda s: s.id != chosen)
        figures = await home_figures.home(
            ctx.db, actor, ordered, now=now, tz=ctx.settings.tz,
            job_names=list(crontabs(ctx.settings)), checkpoint_dir=ctx.settings.checkpoint_dir,
        )  # fmt: skip
        purge_cron = crontabs(ctx.settings).get("purge")
        return Template(
            template_name="admin/home.html",
            context={
                "home": figures,
                "sites": ordered,
                "now": now,
                "tz": ctx.settings.tz,
                "next_purge": next_run(purge_cron, ctx.settings, now) if purge_cron else None,
                "job_labels": JOB_LABELS,
            },
        )

    @post("/site-choice", name="admin:site-choose", opt={"permission": None})
    async def choose_site(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep, data: FormBody
    ) -> Redirect:
        """The site switcher: remember the site, and show the same work for it."""
        slug = data.get("site", "")
        chosen = next((s for s in request.state.nav_sites if s.slug == slug), None)
        target = safe_next(data.get("next"))
        if chosen is None:  # not one of the account's sites: nothing to remember
            return Redirect(target, status_code=303)
        await users.choose_site(ctx.db, actor, chosen.id)
        route = data.get("route", "")
        if any(entry.route == route for entry in navigation.NAVIGATION if entry.section == "site"):
            with contextlib.suppress(Exception):
                target = request.app.route_reverse(route, slug=chosen.slug)
        return Redirect(target, status_code=303)

    @get("/password", name="admin:password", opt={"permission": None})
    async def password_page(self) -> Template:
        return Template(template_name="admin/password.html", context={"errors": {}, "done": False})

    @post("/password", name="admin:password-submit", opt={"permission": None})
    async def change_password(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep, data: FormBody
    ) -> Template:
        try:
            errors = await auth.change_password(
                ctx.db,
                actor,
                current=data.get("current", "")[:1024],
                new=data.get("new", "")[:1024],
                repeat=data.get("repeat", "")[:1024],
                keep_token=request.cookies.get(session_cookie_name(ctx)),
                now=ctx.clock.now(),
            )
        except auth.TooManyAttempts as throttled:
            wait = throttled.retry_after
            return Template(
                template_name="admin/password.html",
                context={
                    "errors": {"current": gettext(auth.MSG_THROTTLED) % {"seconds": wait}},
                    "done": False,
                },
                status_code=HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(wait)},
            )
        return Template(
            template_name="admin/password.html",
            context={"errors": error_messages(errors), "done": not errors},
            status_code=HTTP_400_BAD_REQUEST if errors else 200,
        )


class ResetController(Controller):
    """The one-time link an admin passes on: the account holder sets a new password."""

    path = "/reset"

    @get("/{token:str}", name="admin:reset", opt={"public": True})
    async def reset_page(self, ctx: ContextDep, token: FromPath[str]) -> Template:
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
        self, request: Request[Any, Any, Any], ctx: ContextDep, token: FromPath[str], data: FormBody
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
                "errors": error_messages(errors),
                "done": not errors,
            },
            status_code=HTTP_400_BAD_REQUEST if errors else 200,
        )


ROUTES = [
    SignInController,
    SecondStepController,
    TwoFactorController,
    AccountController,
    ResetController,
]
