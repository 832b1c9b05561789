"""The visitor's pages: choose, fill in, confirm; then view or end the visit by private link."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
)
from markupsafe import Markup

from kiosk.branding import BrandingController
from nightreg import i18n
from nightreg.context import AppContext
from nightreg.i18n import N_
from nightreg.qr import qr_svg
from nightreg.security import new_idempotency_key
from nightreg.services.checkin import (
    ReplayRefused,
    check_in,
    check_out,
    request_fingerprint,
    visit_by_private_token,
)
from nightreg.services.sites import PointInfo, point_by_token
from nightreg.validation import validate_checkin
from nightreg.vocabulary import (
    ID_DOCUMENT_LABELS,
    ID_DOCUMENT_TYPES,
    KIND_LABELS,
    KINDS_BY_SITE_KIND,
    VEHICLE_TYPE_LABELS,
    VEHICLE_TYPES,
    VESSEL_TYPE_LABELS,
    VESSEL_TYPES,
)
from nightreg.web import translated_errors
from nightreg.web.errors import ERROR_PAGES, error_page

REMEMBER_COOKIE = "nightreg_remember"
# Over https the cookie is bound to this origin; a __Host- cookie must have Path=/.
SECURE_REMEMBER_COOKIE = "__Host-nightreg_remember"
REMEMBER_MAX_AGE = 365 * 24 * 3600

# What "remember my boat/car" keeps on the visitor's phone: who and what, never when, never
# the private link, never notes.
REMEMBERED_FIELDS = (
    "guest_name", "residence", "country", "persons", "phone", "email", "id_document_type",
    "berth", "vessel_name", "registration", "mmsi", "flag", "vessel_type", "length_m",
    "last_port", "next_port", "plate", "plate_country", "vehicle_type", "unit", "company",
)  # fmt: skip


def _qr_markup(url: str) -> Markup:
    """The QR code of a private link, to embed in the page as it is.

    qr_svg builds the SVG from the QR matrix and escapes its label; nothing a visitor typed
    reaches it, so it needs no escaping.
    """
    return Markup(qr_svg(url, label=i18n.gettext("Your link")))  # noqa: S704


def _local_input(value: datetime, tz: Any) -> str:
    """A UTC time as the value of an <input type=datetime-local> on the site's clock."""
    return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def _default_times(kind: str, now: datetime, point: PointInfo) -> dict[str, str]:
    """Arrival now; a boat or overnight guest usually leaves the next day before noon, a
    vehicle at a business park the same day."""
    local_now = now.astimezone(point.tz)
    if kind == "vehicle" and point.site_kind == "business_park":
        departure = local_now + timedelta(hours=4)
    else:
        departure = datetime.combine(local_now.date() + timedelta(days=1), time(12), point.tz)
    return {
        "arrived_at": _local_input(local_now, point.tz),
        "expected_departure_at": _local_input(departure, point.tz),
    }


def _remember_cookie(ctx: AppContext) -> tuple[str, str]:
    """The cookie's name and path: origin-bound over https, limited to the kiosk over http."""
    return (SECURE_REMEMBER_COOKIE, "/") if ctx.settings.https else (REMEMBER_COOKIE, "/k")


def _remembered(request: Request, ctx: AppContext, point: PointInfo) -> dict[str, dict[str, str]]:
    if point.kiosk_mode:
        return {}
    name, _path = _remember_cookie(ctx)
    value = ctx.remember_box.open(request.cookies.get(name), REMEMBER_MAX_AGE)
    if not value:
        return {}
    return {
        kind: {k: str(v) for k, v in fields.items() if k in REMEMBERED_FIELDS}
        for kind, fields in value.items()
        if kind in KINDS_BY_SITE_KIND[point.site_kind] and isinstance(fields, dict)
    }


def _form_context(
    point: PointInfo,
    kind: str,
    values: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    banner: str | None = None,
    banner_hint: str | None = None,
    remembered: bool = False,
    retention_days: int,
) -> dict[str, Any]:
    return {
        "point": point,
        "retention_days": retention_days,
        "kind": kind,
        "kinds": KINDS_BY_SITE_KIND[point.site_kind],
        "kind_labels": KIND_LABELS,
        "values": values,
        "errors": errors or {},
        "banner": banner,
        "banner_hint": banner_hint,
        "remembered": remembered,
        "vessel_types": [(c, VESSEL_TYPE_LABELS[c]) for c in VESSEL_TYPES],
        "vehicle_types": [(c, VEHICLE_TYPE_LABELS[c]) for c in VEHICLE_TYPES],
        "id_document_types": [(c, ID_DOCUMENT_LABELS[c]) for c in ID_DOCUMENT_TYPES],
    }


async def _point_or_404(ctx: AppContext, token: str) -> PointInfo:
    point = await point_by_token(ctx.db, token)
    if point is None:
        raise NotFoundException()
    return point


def _form_data(raw: Any) -> dict[str, str]:
    """The submitted form as plain strings; of a repeated key the first value counts."""
    data: dict[str, str] = {}
    for key, value in raw.multi_items():
        if isinstance(value, str) and key not in data and len(data) < 100:
            data[key] = value
    return data


class CheckinController(Controller):
    path = "/k"

    @get("/{token:str}", name="kiosk:start")
    async def start(
        self,
        request: Request,
        ctx: NamedDependency[AppContext],
        token: FromPath[str],
        kind: FromQuery[str | None] = None,
    ) -> Template:
        """The point's page: choose what to register, or the form for the chosen kind."""
        point = await _point_or_404(ctx, token)
        remembered = _remembered(request, ctx, point)
        kinds = KINDS_BY_SITE_KIND[point.site_kind]
        if kind not in kinds:
            return Template(
                template_name="kiosk/start.html",
                context={
                    "point": point,
                    "kinds": kinds,
                    "kind_labels": KIND_LABELS,
                    "remembered": remembered,
                    "idle_seconds": ctx.settings.kiosk_idle_seconds,
                },
            )
        assert kind is not None
        values = {**remembered.get(kind, {}), **_default_times(kind, ctx.clock.now(), point)}
        values["idempotency_key"] = new_idempotency_key()
        context = _form_context(
            point, kind, values, remembered=kind in remembered,
            retention_days=point.site_retention_days or ctx.settings.retention_visit_days,
        )  # fmt: skip
        context["idle_seconds"] = ctx.settings.kiosk_idle_seconds
        template = (
            "kiosk/_kind_fields.html" if request.headers.get("hx-request") else "kiosk/form.html"
        )
        return Template(template_name=template, context=context)

    @post("/{token:str}", name="kiosk:submit")
    async def submit(
        self, request: Request, ctx: NamedDependency[AppContext], token: FromPath[str]
    ) -> Response:
        """Validate and register; errors come back next to their fields, with the input kept."""
        # Longer than most: the one place where a visitor's form becomes a visit, with every
        # outcome (rate limit, honeypot, errors, replay, kiosk tablet, remember me) in order.
        point = await _point_or_404(ctx, token)
        form = _form_data(await request.form())
        kind = form.get("kind", "")
        kinds = KINDS_BY_SITE_KIND[point.site_kind]
        shown_kind = kind if kind in kinds else kinds[0]
        values = {k: v for k, v in form.items() if k != "_csrf_token"}
        if not values.get("idempotency_key") or len(values["idempotency_key"]) > 64:
            values["idempotency_key"] = new_idempotency_key()

        def form_again(status: int, *, errors: dict[str, str] | None = None,
                       banner: str | None = None, hint: str | None = None) -> Template:  # fmt: skip
            context = _form_context(
                point, shown_kind, values, errors=errors, banner=banner, banner_hint=hint,
                retention_days=point.site_retention_days or ctx.settings.retention_visit_days,
            )  # fmt: skip
            context["idle_seconds"] = ctx.settings.kiosk_idle_seconds
            return Template(template_name="kiosk/form.html", context=context, status_code=status)

        client = request.client.host if request.client else "unknown"
        if not ctx.address_limiter.hit(f"addr:{client}") or not ctx.point_limiter.hit(
            f"point:{point.id}"
        ):
            return form_again(
                HTTP_429_TOO_MANY_REQUESTS,
                banner=ERROR_PAGES[429][0],
                hint=N_("Please wait a minute and try again. What you typed has been kept."),
            )
        if form.get("website"):
            # The honeypot: a field people never see, which form-filling robots fill in.
            return form_again(HTTP_400_BAD_REQUEST, banner=ERROR_PAGES[400][0])
        now = ctx.clock.now()
        data, errors = validate_checkin(form, kind=kind, allowed_kinds=kinds, now=now, tz=point.tz)
        if data is None:
            return form_again(
                HTTP_422_UNPROCESSABLE_ENTITY,
                errors=translated_errors(errors),
                banner=N_("Please check the fields marked below."),
            )
        try:
            result = await check_in(
                ctx.db,
                writer=ctx.visit_writer,
                site_id=point.site_id,
                point_id=point.id,
                data=data,
                now=now,
                secret_key=ctx.settings.secret_key,
                idempotency_key=values["idempotency_key"],
                fingerprint=request_fingerprint(form),
                watchlist_key=ctx.settings.watchlist_key,
            )
        except ReplayRefused:
            return error_page(request, HTTP_409_CONFLICT, start_url=f"/k/{point.token}")
        link = f"/k/v/{result.private_token}"
        if point.kiosk_mode:
            # On a shared tablet the link must not end up in the browser's history: show it
            # once, as a QR code for the visitor's own phone, then go back to the start.
            return Template(
                template_name="kiosk/kiosk_done.html",
                context={
                    "point": point,
                    "visit": result.visit,
                    "qr": _qr_markup(ctx.settings.base_url + link),
                    "idle_seconds": ctx.settings.kiosk_idle_seconds,
                },
            )
        response: Response = (
            ClientRedirect(redirect_to=link + "?new=1")
            if request.headers.get("hx-request")
            else Redirect(path=link + "?new=1", status_code=303)
        )
        secure = ctx.settings.https
        if form.get("remember") == "on":
            kept = _remembered(request, ctx, point)
            kept[data.kind] = {f: values[f] for f in REMEMBERED_FIELDS if values.get(f)}
            name, path = _remember_cookie(ctx)
            response.set_cookie(
                name, ctx.remember_box.seal(kept), max_age=REMEMBER_MAX_AGE,
                path=path, httponly=True, secure=secure, samesite="lax",
            )  # fmt: skip
        return response

    @post("/{token:str}/validate/{field:str}", name="kiosk:validate")
    async def validate_field(
        self,
        request: Request,
        ctx: NamedDependency[AppContext],
        token: FromPath[str],
        field: FromPath[str],
    ) -> Template:
        """htmx: the error message of one field as the visitor leaves it (or none)."""
        point = await _point_or_404(ctx, token)
        form = _form_data(await request.form())
        _data, errors = validate_checkin(
            form,
            kind=form.get("kind", ""),
            allowed_kinds=KINDS_BY_SITE_KIND[point.site_kind],
            now=ctx.clock.now(),
            tz=point.tz,
        )
        # Only the field just left is judged: the visitor has not reached the others yet.
        message = translated_errors(errors).get(field) if form.get(field) is not None else None
        return Template(
            template_name="kiosk/_field_error.html",
            context={"name": field[:40], "error": message},
        )

    @post("/forget", name="kiosk:forget")
    async def forget(self, request: Request, ctx: NamedDependency[AppContext]) -> Response:
        """Clear what this phone remembers; go back to where the visitor was."""
        target = request.query_params.get("next", "")
        if not target.startswith("/k/") or "//" in target or "\\" in target:
            target = "/k/forgotten"
        response: Response = Redirect(path=target, status_code=303)
        name, path = _remember_cookie(ctx)
        # Not delete_cookie(): a browser ignores a __Host- cookie's removal unless it is Secure.
        response.set_cookie(
            name, "", max_age=0, path=path, secure=ctx.settings.https, httponly=True,
            samesite="lax",
        )  # fmt: skip
        return response

    @get("/forgotten", name="kiosk:forgotten")
    async def forgotten(self) -> Template:
        return Template(template_name="kiosk/forgotten.html")


class VisitController(Controller):
    """The private link: one visit, seen and ended by whoever holds the link."""

    path = "/k/v"

    @get("/{vtoken:str}", name="kiosk:visit")
    async def show(
        self,
        ctx: NamedDependency[AppContext],
        vtoken: FromPath[str],
        new: FromQuery[bool] = False,
        out: FromQuery[bool] = False,
    ) -> Template:
        visit = await visit_by_private_token(ctx.db, vtoken)
        if visit is None:
            raise NotFoundException()
        link = f"{ctx.settings.base_url}/k/v/{vtoken}"
        return Template(
            template_name="kiosk/visit.html",
            context={
                "visit": visit,
                "site": visit.site,
                "tz": visit.site.timezone,
                "link": link,
                "vtoken": vtoken,
                "qr": _qr_markup(link),
                "new": new,
                "just_out": out,
                "kind_labels": KIND_LABELS,
                "vessel_type_labels": VESSEL_TYPE_LABELS,
                "vehicle_type_labels": VEHICLE_TYPE_LABELS,
            },
        )

    @post("/{vtoken:str}/checkout", name="kiosk:checkout")
    async def checkout(self, ctx: NamedDependency[AppContext], vtoken: FromPath[str]) -> Redirect:
        visit = await check_out(ctx.db, vtoken, ctx.clock.now())
        if visit is None:
            raise NotFoundException()
        return Redirect(path=f"/k/v/{vtoken}?out=1", status_code=303)


# HTML pages for people, not part of the JSON API the schema describes.
kiosk_router = Router(
    path="/",
    route_handlers=[CheckinController, VisitController, BrandingController],
    include_in_schema=False,
    # validate_checkin removes control characters from what it keeps, and a visitor's form
    # comes back with what was typed: the app-wide refusal (nightreg.web) would lose it.
    opt={"cleans_control_characters": True},
)
