"""The admin's pages: staff accounts, sites, and the check-in points (QR codes) of a site."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any

from babel.numbers import format_decimal
from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_400_BAD_REQUEST,
    HTTP_422_UNPROCESSABLE_ENTITY,
)

from admin.downloads import download
from admin.forms import done_notice, error_messages
from admin.web import ActorDep, ContextDep, PathId, Slug, session_cookie_name
from nightreg import i18n
from nightreg.context import AppContext
from nightreg.i18n import N_
from nightreg.models import Site, User
from nightreg.qr import POSTER_FORMATS, poster
from nightreg.services import auth, branding, sightings, sites, twofactor, users
from nightreg.services.access import Actor, NotFound
from nightreg.services.ais.area import Polygon
from nightreg.services.ais.harbour import area_of
from nightreg.services.branding import BrandingInvalid
from nightreg.services.sightings import CamerasInvalid
from nightreg.services.sites import SiteInvalid, kiosk_url, site_for
from nightreg.services.twofactor import TwoFactorInvalid
from nightreg.services.users import AccountInvalid
from nightreg.validation import FieldError
from nightreg.vocabulary import ROLE_LABELS, ROLES, SITE_KIND_LABELS, SITE_KINDS
from nightreg.web import form_choices, form_int, form_text, see_other

# A form as Litestar parses it: a repeated key (the sites' checkboxes) arrives as a list.
FormBody = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

USERS = {"permission": "users.manage"}
SITES = {"permission": "sites.manage"}
# A site's usual hours: what an imported date without a time takes.
HOUR_FIELDS = ("usual_arrival_time", "usual_departure_time")
POINTS = {"permission": "points.manage"}
# The sites list decides inside: all sites for an admin, one's own for a harbour master.
SIGNED_IN = {"permission": None}

ROLE_HINTS = {
    "admin": N_("Accounts, sites and check-in points; the register of its own sites."),
    "harbour_master": N_("The register and the check-in points of its own sites."),
    "security": N_("Reads the register of its own sites; reviews and exports their flags."),
    "analyst": N_("The hub's watchlist hits and the flags its sites forwarded; no register."),
    "auditor": N_("Reads the audit trail of all sites."),
}
POSTER_TYPES = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "pdf": "application/pdf",
}
TIME_FORMAT = "yyyy-MM-dd HH:mm"
# A logo's upload: the image's own limit (branding.MAX_LOGO_BYTES) and the form around it;
# a larger body is refused before it is read (413).
MAX_BRANDING_BODY = 3 * 1024 * 1024
NO_STORE = {"Cache-Control": "no-store"}
# Cards of the site's page that say "saved" themselves (`?saved=NAME`).
SAVED_CARDS = ("branding", "ais", "cameras")


# --- form helpers ------------------------------------------------------------------------


def _active(data: Mapping[str, Any]) -> bool | None:
    return {"yes": True, "no": False}.get(form_text(data, "active", 3))


def _reset_url(ctx: AppContext, token: str) -> str:
    return f"{ctx.settings.base_url.rstrip('/')}/admin/reset/{token}"


# --- accounts ----------------------------------------------------------------------------


class UsersController(Controller):
    """Staff accounts: who may sign in, with which role, on which sites."""

    path = "/users"

    async def _form_page(
        self,
        ctx: AppContext,
        actor: Actor,
        *,
        user: User | None,
        form: dict[str, Any],
        errors: Mapping[str, str] | None = None,
        reset_link: str | None = None,
        notice: str | None = None,
        status_code: int = HTTP_200_OK,
    ) -> Template:
        all_sites, _everything = await sites.managed_sites(ctx.db, actor)
        context = {
            "user": user,
            "form": form,
            "errors": error_messages(errors or {}),
            "roles": ROLES,
            "role_labels": ROLE_LABELS,
            "role_hints": ROLE_HINTS,
            "sites": [m.site for m in all_sites],
            "reset_link": reset_link,
            "notice": notice,
            "is_self": user is not None and user.id == actor.id,
            "two_factor_required": user is not None and user.role in ctx.settings.two_factor_roles,
            "tz": ctx.settings.tz,
            "time_format": TIME_FORMAT,
        }
        return Template(
            template_name="admin/user_form.html",
            context=context,
            status_code=status_code,
            headers=NO_STORE if reset_link else None,
        )

    @staticmethod
    def _user_values(user: User) -> dict[str, Any]:
        return {
            "email": user.email,
            "role": user.role,
            "sites": [s.slug for s in user.sites],
            "active": "yes" if user.is_active else "no",
        }

    @get("/", name="admin:users", opt=USERS)
    async def list_users(self, ctx: ContextDep, actor: ActorDep) -> Template:
        accounts = await users.list_users(ctx.db, actor)
        context = {
            "users": accounts,
            "role_labels": ROLE_LABELS,
            "tz": ctx.settings.tz,
            "time_format": TIME_FORMAT,
        }
        return Template(template_name="admin/users.html", context=context)

    @get("/new", name="admin:user-new", opt=USERS)
    async def new_form(self, ctx: ContextDep, actor: ActorDep) -> Template:
        form = {"email": "", "role": "", "sites": [], "password": ""}
        return await self._form_page(ctx, actor, user=None, form=form)

    @post("/new", name="admin:user-create", opt=USERS)
    async def create(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, data: FormBody
    ) -> Response[Any]:
        """Create an account; without a password, its one-time reset link is shown once."""
        email, role, site_slugs = (
            form_text(data, "email", 300),
            form_text(data, "role", 30),
            form_choices(data, "sites"),
        )
        form: dict[str, Any] = {"email": email, "role": role, "sites": site_slugs}
        try:
            user, token = await users.create_user(
                ctx.db,
                actor,
                email=email,
                role=role,
                site_slugs=site_slugs,
                password=form_text(data, "password", 1024),
                now=ctx.clock.now(),
            )
        except AccountInvalid as invalid:
            return await self._form_page(
                ctx,
                actor,
                user=None,
                form=form,  # the password is never sent back
                errors=invalid.errors,
                status_code=HTTP_400_BAD_REQUEST,
            )
        if token is None:
            return see_other(request, f"/admin/users/{user.id}?created=1")
        user = await users.get_user(ctx.db, actor, user.id)
        return await self._form_page(
            ctx,
            actor,
            user=user,
            form=self._user_values(user),
            reset_link=_reset_url(ctx, token),
            notice=N_("The account has been created."),
        )

    @get("/{id:int}", name="admin:user", opt=USERS)
    async def edit_form(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId
    ) -> Template:
        user = await users.get_user(ctx.db, actor, id)
        notice = done_notice(
            request,
            {
                "created": N_("The account has been created."),
                "saved": N_("The changes have been saved."),
                "two_factor_reset": N_(
                    "The second factor has been reset and the account has been signed out. "
                    "It sets one up again at its next sign-in."
                ),
            },
        )
        return await self._form_page(
            ctx, actor, user=user, form=self._user_values(user), notice=notice
        )

    @post("/{id:int}", name="admin:user-change", opt=USERS)
    async def change(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId, data: FormBody
    ) -> Response[Any]:
        """Change role, sites, active; the account's sessions end so that it holds at once."""
        role, site_slugs = form_text(data, "role", 30), form_choices(data, "sites")
        form: dict[str, Any] = {
            "role": role,
            "sites": site_slugs,
            "active": form_text(data, "active", 3),
        }
        try:
            await users.change_user(
                ctx.db,
                actor,
                id,
                role=role,
                site_slugs=site_slugs,
                active=_active(data),
                now=ctx.clock.now(),
            )
        except AccountInvalid as invalid:
            user = await users.get_user(ctx.db, actor, id)
            return await self._form_page(
                ctx,
                actor,
                user=user,
                form={**form, "email": user.email},
                errors=invalid.errors,
                status_code=HTTP_400_BAD_REQUEST,
            )
        return see_other(request, f"/admin/users/{id}?saved=1")

    @post("/{id:int}/reset", name="admin:user-reset", opt=USERS)
    async def reset(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId
    ) -> Template:
        """A one-time link to set a new password, shown once (issue_reset audits it); the
        account's sessions end (an admin's own: all but this one)."""
        user = await users.get_user(ctx.db, actor, id)
        token = await auth.issue_reset(
            ctx.db,
            actor,
            user.id,
            now=ctx.clock.now(),
            keep_token=request.cookies.get(session_cookie_name(ctx)),
        )
        return await self._form_page(
            ctx, actor, user=user, form=self._user_values(user), reset_link=_reset_url(ctx, token)
        )

    @post("/{id:int}/two-factor-reset", name="admin:user-two-factor-reset", opt=USERS)
    async def reset_two_factor(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId
    ) -> Response[Any]:
        """Take the account's second factor away (a lost phone); its sessions end (audited)."""
        user = await users.get_user(ctx.db, actor, id)
        try:
            await twofactor.reset(ctx.db, actor, user.id, now=ctx.clock.now())
        except TwoFactorInvalid as invalid:
            return await self._form_page(
                ctx,
                actor,
                user=user,
                form=self._user_values(user),
                errors=invalid.errors,
                status_code=HTTP_400_BAD_REQUEST,
            )
        return see_other(request, f"/admin/users/{id}?two_factor_reset=1")


# --- sites and their points --------------------------------------------------------------


def _site_form(site: Site) -> dict[str, str]:
    return {
        "name": site.name,
        "municipality": site.municipality,
        "contact": site.contact,
        "active": "yes" if site.is_active else "no",
        "usual_arrival_time": site.usual_arrival_time,
        "usual_departure_time": site.usual_departure_time,
    }


def _point_form(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": form_text(data, "name", 200),
        "kiosk_mode": bool(form_text(data, "kiosk_mode", 3)),
        "active": form_text(data, "active", 3),
    }


async def _sites_page(
    ctx: AppContext,
    actor: Actor,
    *,
    new_form: dict[str, str] | None = None,
    new_errors: Mapping[str, str] | None = None,
    edit_slug: str | None = None,
    edit_form: dict[str, str] | None = None,
    edit_errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    status_code: int = HTTP_200_OK,
) -> Template:
    managed, everything = await sites.managed_sites(ctx.db, actor)
    context = {
        "managed": managed,
        "everything": everything,
        "kinds": SITE_KINDS,
        "kind_labels": SITE_KIND_LABELS,
        "new_form": new_form or {"slug": "", "name": "", "kind": "", "timezone": "Europe/Amsterdam",
                                 "municipality": "", "contact": ""},
        "new_errors": error_messages(new_errors or {}),
        "edit_slug": edit_slug,
        "edit_form": edit_form,
        "edit_errors": error_messages(edit_errors or {}),
        "notice": notice,
    }  # fmt: skip
    return Template(template_name="admin/sites.html", context=context, status_code=status_code)


def _ais_polygon(site: Site) -> dict[str, Any] | None:
    """A marina's stored polygon for its AIS card: its corners (as the form takes them, one
    per line) and its area in hectares."""
    area = area_of(site) if site.kind == "marina" else None
    if not isinstance(area, Polygon):
        return None
    locale = i18n.get_locale()
    return {
        "corners": len(area.vertices),
        "hectares": format_decimal(area.area_m2 / 10_000, format="#,##0.0", locale=locale),
        "text": "\n".join(f"{lat}, {lon}" for lat, lon in area.vertices),
    }


async def _site_page(
    ctx: AppContext,
    actor: Actor,
    site: Site,
    *,
    point_form: dict[str, Any] | None = None,
    point_errors: Mapping[str, str] | None = None,
    edit_point: int | None = None,
    edit_point_form: dict[str, Any] | None = None,
    edit_point_errors: Mapping[str, str] | None = None,
    site_form: dict[str, str] | None = None,
    site_errors: Mapping[str, str] | None = None,
    rotated: int | None = None,
    notice: str | None = None,
    branding_form: dict[str, str] | None = None,
    branding_errors: Mapping[str, FieldError | str] | None = None,
    branding_saved: bool = False,
    status_code: int = HTTP_200_OK,
    extra: Mapping[str, Any] | None = None,
) -> Template:
    """The site's page; `extra`: the context of a card of its own (AIS, gate cameras): its
    form and errors after a refused post, whether it was just saved."""
    points = await sites.site_points(ctx.db, actor, site)
    base_url = ctx.settings.base_url
    context = {
        "site": site,
        "points": points,
        "urls": {p.id: kiosk_url(base_url, p.token) for p in points},
        "kind_labels": SITE_KIND_LABELS,
        "formats": POSTER_FORMATS,
        "can_edit_site": actor.can("sites.manage"),
        "point_form": point_form or {"name": "", "kiosk_mode": False},
        "point_errors": error_messages(point_errors or {}),
        "edit_point": edit_point,
        "edit_point_form": edit_point_form,
        "edit_point_errors": error_messages(edit_point_errors or {}),
        "site_form": site_form or _site_form(site),
        "site_errors": error_messages(site_errors or {}),
        "rotated": rotated,
        "notice": notice,
        "tz": site.timezone,
        "time_format": TIME_FORMAT,
        "grants": await users.site_grants(ctx.db, site.id),
        "branding_form": branding_form or {"accent": site.accent_colour or ""},
        "branding_errors": error_messages(branding_errors or {}),
        "branding_saved": branding_saved,
        "brand_logo": branding.logo_url(site.id, site.logo_version) if site.logo_version else None,
        "ais_polygon": _ais_polygon(site),
        **(extra or {}),
    }
    return Template(template_name="admin/site.html", context=context, status_code=status_code)


class SitesController(Controller):
    """Sites: the admin creates, renames and disables them; a harbour master sees its own."""

    path = "/sites"

    @get("/", name="admin:sites", opt=SIGNED_IN)
    async def list_sites(self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep) -> Template:
        notice = None
        if request.query_params.get("created"):
            notice = N_("The site has been created.")
        elif request.query_params.get("saved"):
            notice = N_("The changes have been saved.")
        return await _sites_page(ctx, actor, notice=notice)

    @post("/", name="admin:site-create", opt=SITES)
    async def create(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, data: FormBody
    ) -> Response[Any]:
        form = {
            name: form_text(data, name)
            for name in ("slug", "name", "kind", "timezone", "municipality", "contact")
        }
        try:
            site = await sites.add_site(
                ctx.db,
                actor,
                slug=form["slug"],
                name=form["name"],
                kind=form["kind"],
                timezone=form["timezone"],
                municipality=form["municipality"],
                contact=form["contact"],
                now=ctx.clock.now(),
            )
        except SiteInvalid as invalid:
            return await _sites_page(
                ctx, actor, new_form=form, new_errors=invalid.errors, status_code=400
            )
        return see_other(request, f"/admin/sites?created={site.slug}#site-{site.slug}")

    @get("/{slug:str}", name="admin:site", opt=POINTS)
    async def show(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        """A site's check-in points: add, rename, disable, rotate, posters."""
        site = await site_for(ctx.db, actor, slug, "points.manage")
        params = request.query_params
        saved = params.get("saved")
        notice = N_("The changes have been saved.") if saved and saved not in SAVED_CARDS else None
        return await _site_page(
            ctx,
            actor,
            site,
            rotated=form_int(params.get("rotated")),
            notice=notice,
            branding_saved=saved == "branding",
            extra={"ais_saved": saved == "ais", "cameras_saved": saved == "cameras"},
        )

    @post("/{slug:str}/cameras", name="admin:site-cameras", opt=SITES)
    async def change_cameras(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug, data: FormBody
    ) -> Response[Any]:
        """Switch the site's gate cameras on (with the DPIA's reference) or off; audited.

        On the site's page, like the branding: for an admin of the site's own.
        """
        site = await site_for(ctx.db, actor, slug, "points.manage")
        form = {
            "cameras_enabled": "yes" if form_text(data, "cameras_enabled", 3) == "yes" else "no",
            "cameras_dpia_reference": form_text(data, "cameras_dpia_reference", 200),
        }
        try:
            await sightings.set_cameras(
                ctx.db,
                actor,
                slug,
                enabled=form["cameras_enabled"] == "yes",
                dpia_reference=form["cameras_dpia_reference"],
                now=ctx.clock.now(),
            )
        except CamerasInvalid as invalid:
            return await _site_page(
                ctx,
                actor,
                site,
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
                extra={"cameras_form": form, "cameras_errors": error_messages(invalid.errors)},
            )
        return see_other(request, f"/admin/sites/{slug}?saved=cameras#cameras")

    @post(
        "/{slug:str}/branding",
        name="admin:site-branding",
        opt=SITES,
        request_max_body_size=MAX_BRANDING_BODY,
    )
    async def change_branding(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Response[Any]:
        """A new logo (checked and re-encoded), its removal, or the accent colour; audited.

        Like the site's page that holds the form (and its posters), only for an admin of the
        site's own.
        """
        actor.require("sites.manage")
        site = await site_for(ctx.db, actor, slug, "points.manage")
        data = await request.form()
        form = {"accent": form_text(data, "accent", 20)}
        errors: dict[str, FieldError] = {}
        logo = None
        upload = data.get("logo")
        if isinstance(upload, UploadFile) and upload.filename:
            try:
                raw = await upload.read(branding.MAX_LOGO_BYTES + 1)
            finally:
                await upload.close()
            try:
                # Decoding and drawing an image takes a moment of CPU: not on the event loop.
                logo = await asyncio.to_thread(
                    branding.clean_logo,
                    raw,
                    filename=upload.filename,
                    content_type=upload.content_type or "",
                )
            except BrandingInvalid as invalid:
                errors.update(invalid.errors)
        try:
            branding.normalise_accent(form["accent"])
        except BrandingInvalid as invalid:
            errors.update(invalid.errors)
        if not errors:
            await branding.change_branding(
                ctx.db,
                actor,
                slug,
                accent=form["accent"],
                logo=logo,
                remove_logo=bool(form_text(data, "remove_logo", 3)),
                now=ctx.clock.now(),
            )
            return see_other(request, f"/admin/sites/{slug}?saved=branding#branding")
        return await _site_page(
            ctx,
            actor,
            site,
            branding_form=form,
            branding_errors=errors,
            status_code=HTTP_422_UNPROCESSABLE_ENTITY,
        )

    @post("/{slug:str}", name="admin:site-change", opt=SITES)
    async def change(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug, data: FormBody
    ) -> Response[Any]:
        """Rename a site or disable it; an admin may do so on every site."""
        form = {
            name: form_text(data, name) for name in ("name", "municipality", "contact", "active")
        }
        hours = {name: form_text(data, name, 10) for name in HOUR_FIELDS if name in data}
        form.update(hours)
        try:
            await sites.change_site(
                ctx.db,
                actor,
                slug,
                name=form["name"],
                municipality=form["municipality"],
                contact=form["contact"],
                active=_active(data),
                now=ctx.clock.now(),
                **hours,
            )
        except SiteInvalid as invalid:
            site = await site_for(ctx.db, actor, slug, "sites.manage")
            if actor.can("points.manage", site.id):
                return await _site_page(
                    ctx, actor, site, site_form=form, site_errors=invalid.errors, status_code=400
                )
            return await _sites_page(
                ctx,
                actor,
                edit_slug=slug,
                edit_form=form,
                edit_errors=invalid.errors,
                status_code=HTTP_400_BAD_REQUEST,
            )
        if form_text(data, "back", 10) == "site" and actor.can("points.manage"):
            site = await site_for(ctx.db, actor, slug, "sites.manage")
            if actor.can("points.manage", site.id):
                return see_other(request, f"/admin/sites/{slug}?saved=1")
        return see_other(request, f"/admin/sites?saved={slug}#site-{slug}")

    @post("/{slug:str}/points", name="admin:point-create", opt=POINTS)
    async def add_point(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug, data: FormBody
    ) -> Response[Any]:
        site = await site_for(ctx.db, actor, slug, "points.manage")
        form = _point_form(data)
        try:
            point = await sites.create_point(
                ctx.db,
                actor,
                site,
                name=form["name"],
                kiosk_mode=form["kiosk_mode"],
                now=ctx.clock.now(),
            )
        except SiteInvalid as invalid:
            return await _site_page(
                ctx,
                actor,
                site,
                point_form=form,
                point_errors=invalid.errors,
                status_code=HTTP_400_BAD_REQUEST,
            )
        return see_other(request, f"/admin/sites/{slug}?saved=1#point-{point.id}")


class PointsController(Controller):
    """One check-in point: rename, kiosk mode, disable, a new QR code, its poster."""

    path = "/points/{id:int}"

    @post("/", name="admin:point-change", opt=POINTS)
    async def change(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId, data: FormBody
    ) -> Response[Any]:
        point = await sites.point_for(ctx.db, actor, id)
        form = _point_form(data)
        try:
            await sites.change_point(
                ctx.db,
                actor,
                id,
                name=form["name"],
                kiosk_mode=form["kiosk_mode"],
                active=_active(data),
                now=ctx.clock.now(),
            )
        except SiteInvalid as invalid:
            return await _site_page(
                ctx,
                actor,
                point.site,
                edit_point=id,
                edit_point_form=form,
                edit_point_errors=invalid.errors,
                status_code=HTTP_400_BAD_REQUEST,
            )
        return see_other(request, f"/admin/sites/{point.site.slug}?saved=1#point-{id}")

    @post("/rotate", name="admin:point-rotate", opt=POINTS)
    async def rotate(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId
    ) -> Response[Any]:
        """A new token: the old QR code stops working; the page shows the new URL."""
        point = await sites.rotate(ctx.db, actor, id, now=ctx.clock.now())
        return see_other(request, f"/admin/sites/{point.site.slug}?rotated={id}#point-{id}")

    # Litestar matches a parameter only as a whole path segment: "poster.{fmt}" cannot route.
    @get("/poster/{fmt:str}", name="admin:point-poster", opt=POINTS)
    async def poster(
        self, ctx: ContextDep, actor: ActorDep, id: PathId, fmt: FromPath[str]
    ) -> Response[bytes]:
        """The printable A4 poster of the point's QR code, as SVG, PNG or PDF."""
        point = await sites.point_for(ctx.db, actor, id)
        if fmt not in POSTER_TYPES:
            raise NotFound(fmt)
        url = kiosk_url(ctx.settings.base_url, point.token)
        # Drawing the poster takes a moment of CPU: not on the event loop.
        logo = await branding.logo_of(ctx.db, point.site.id) if point.site.logo_version else None
        data = await asyncio.to_thread(
            partial(
                poster,
                url,
                point.site.name,
                point.name,
                fmt,
                logo=logo.data if logo else None,
                accent=point.site.accent_colour,
            )
        )
        filename = f"poster-{point.site.slug}-{point.id}.{fmt}"
        return download(data, filename, POSTER_TYPES[fmt], private=True)


ROUTES = [UsersController, SitesController, PointsController]
