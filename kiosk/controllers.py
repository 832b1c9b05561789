"""The visitor's pages: choose, fill in, confirm; then view or end the visit by private link."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
from nightreg.models import Visit
from nightreg.qr import qr_svg
from nightreg.security import new_idempotency_key
from nightreg.services.checkin import (
    MAX_OWN_VISITS,
    ReplayRefused,
    check_in,
    check_out,
    extend_stay,
    own_visits,
    request_fingerprint,
    visit_by_private_token,
)
from nightreg.services.sites import PointInfo, point_by_token
from nightreg.validation import CheckinData, Invalid, validate_checkin
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
from nightreg.web import render_error_message, translated_errors
from nightreg.web.errors import ERROR_PAGES, error_page

REMEMBER_COOKIE = "nightreg_remember"
# Over https the cookie is bound to this origin; a __Host- cookie must have Path=/.
SECURE_REMEMBER_COOKIE = "__Host-nightreg_remember"
REMEMBER_MAX_AGE = 365 * 24 * 3600

# What "remember my boat/car" keeps on the visitor's phone: who and what, never when, never
# notes. Beside them, under OWN_VISITS, the private links of the last few visits checked in
# from this phone with "remember me": so that the phone of a visitor who is still here offers
# "extend my stay" and "check out" instead of a second visit of the same boat (issue 15).
REMEMBERED_FIELDS = (
    "guest_name", "residence", "country", "persons", "phone", "email", "id_document_type",
    "berth", "vessel_name", "registration", "mmsi", "flag", "vessel_type", "length_m",
    "last_port", "next_port", "plate", "plate_country", "vehicle_type", "unit", "company",
)  # fmt: skip
OWN_VISITS = "_visits"

# The form's fields in the order the page shows them, with the labels the error summary uses
# (the same texts as the labels on the form).
FIELD_LABELS: dict[str, str] = {
    "kind": N_("What are you registering?"),
    "vessel_name": N_("Name of the boat"),
    "registration": N_("Registration or hull number"),
    "mmsi": N_("MMSI number"),
    "plate": N_("Licence plate"),
    "guest_name": N_("Your name"),
    "residence": N_("Place of residence"),
    "persons": N_("Number of persons"),
    "arrived_at": N_("Arrival"),
    "expected_departure_at": N_("Expected departure"),
    "vessel_type": N_("Type of boat"),
    "length_m": N_("Length in metres (optional)"),
    "flag": N_("Flag (optional)"),
    "berth": N_("Berth (optional)"),
    "last_port": N_("Coming from (optional)"),
    "next_port": N_("Going to (optional)"),
    "plate_country": N_("Country of the plate (optional)"),
    "vehicle_type": N_("Type of vehicle"),
    "company": N_("Company (optional)"),
    "unit": N_("Unit (optional)"),
    "country": N_("Country"),
    "phone": N_("Phone (optional)"),
    "email": N_("E-mail (optional)"),
    "id_document_type": N_("Identity document shown (optional)"),
    "notes": N_("Notes (optional)"),
}
# What sits behind "More details": every field a visitor may leave empty.
OPTIONAL_FIELDS = frozenset(
    {
        "vessel_type", "length_m", "flag", "berth", "last_port", "next_port", "plate_country",
        "vehicle_type", "company", "unit", "country", "phone", "email", "id_document_type",
        "notes",
    }
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


def _cookie(request: Request, ctx: AppContext, point: PointInfo) -> dict[str, Any]:
    """What this phone's remembered-visitor cookie holds; a kiosk tablet remembers nobody."""
    if point.kiosk_mode:
        return {}
    name, _path = _remember_cookie(ctx)
    value = ctx.remember_box.open(request.cookies.get(name), REMEMBER_MAX_AGE)
    return value if isinstance(value, dict) else {}


def _remembered(request: Request, ctx: AppContext, point: PointInfo) -> dict[str, dict[str, str]]:
    return {
        kind: {k: str(v) for k, v in fields.items() if k in REMEMBERED_FIELDS}
        for kind, fields in _cookie(request, ctx, point).items()
        if kind in KINDS_BY_SITE_KIND[point.site_kind] and isinstance(fields, dict)
    }


def _own_tokens(cookie: dict[str, Any]) -> list[str]:
    tokens = cookie.get(OWN_VISITS)
    if not isinstance(tokens, list):
        return []
    return [t for t in tokens if isinstance(t, str)][:MAX_OWN_VISITS]


async def _present_here(
    request: Request, ctx: AppContext, point: PointInfo
) -> list[tuple[Visit, str]]:
    """This phone's own visits at the point's site that are not checked out, with their links."""
    tokens = _own_tokens(_cookie(request, ctx, point))
    found = await own_visits(ctx.db, tokens)
    return [(v, t) for v, t in found if v.site_id == point.site_id and v.departed_at is None]


def _error_summary(errors: dict[str, str]) -> list[tuple[str, str, str]]:
    """(field, label, message) of each refused field, in the form's order, for the summary."""
    order = {name: i for i, name in enumerate(FIELD_LABELS)}
    return [
        (name, i18n.gettext(FIELD_LABELS.get(name, name)), message)
        for name, message in sorted(errors.items(), key=lambda e: order.get(e[0], len(order)))
        if message
    ]


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
    errors = errors or {}
    return {
        "point": point,
        "retention_days": retention_days,
        "kind": kind,
        "kinds": KINDS_BY_SITE_KIND[point.site_kind],
        "kind_labels": KIND_LABELS,
        "values": values,
        "errors": errors,
        "error_summary": _error_summary(errors),
        # An optional field the visitor got wrong must be in sight: its disclosure opens.
        "more_open": bool(OPTIONAL_FIELDS & {k for k, v in errors.items() if v}),
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


def _visit_context(visit: Visit, vtoken: str) -> dict[str, Any]:
    """What every page of one visit shows: the visit on its site's clock and its labels."""
    return {
        "visit": visit,
        "site": visit.site,
        "tz": visit.site.timezone,
        "vtoken": vtoken,
        "kind_labels": KIND_LABELS,
        "vessel_type_labels": VESSEL_TYPE_LABELS,
        "vehicle_type_labels": VEHICLE_TYPE_LABELS,
    }


def _already(point: PointInfo, visit: Visit, vtoken: str, *, status: int = 200) -> Template:
    """The visitor is here already: extend the stay or check out, instead of a second visit."""
    context = _visit_context(visit, vtoken)
    context["point"] = point
    context["kind"] = visit.kind
    return Template(template_name="kiosk/already.html", context=context, status_code=status)


def _own_present(own: list[tuple[Visit, str]], data: CheckinData) -> tuple[Visit, str] | None:
    """This phone's open visit of the same boat, car or guest, if it has one at the site."""
    return next(((v, t) for v, t in own if v.subject_key == data.subject_key), None)


class CheckinController(Controller):
    path = "/k"

    @get("/{token:str}", name="kiosk:start")
    async def start(
        self,
        request: Request,
        ctx: NamedDependency[AppContext],
        token: FromPath[str],
        kind: FromQuery[str | None] = None,
        another: FromQuery[bool] = False,
    ) -> Template:
        """The point's page: choose what to register, or the form for the chosen kind.

        A phone whose own visit here is still open sees that visit (extend, check out) instead
        of the form for another of the same kind, unless the visitor asked for another.
        """
        point = await _point_or_404(ctx, token)
        remembered = _remembered(request, ctx, point)
        kinds = KINDS_BY_SITE_KIND[point.site_kind]
        present = await _present_here(request, ctx, point)
        if kind not in kinds:
            return Template(
                template_name="kiosk/start.html",
                context={
                    "point": point,
                    "kinds": kinds,
                    "kind_labels": KIND_LABELS,
                    "remembered": {
                        k: fields
                        for k, fields in remembered.items()
                        if not any(v.kind == k for v, _t in present)
                    },
                    "present": present,
                    "remembers": bool(remembered or present),
                    "tz": point.tz,
                    "idempotency_key": new_idempotency_key(),
                    "idle_seconds": ctx.settings.kiosk_idle_seconds,
                },
            )
        assert kind is not None
        mine = next(((v, t) for v, t in present if v.kind == kind), None)
        if mine is not None and not another and not request.headers.get("hx-request"):
            return _already(point, *mine)
        fields = {} if another else remembered.get(kind, {})
        values = {"persons": "1", **fields, **_default_times(kind, ctx.clock.now(), point)}
        values["idempotency_key"] = new_idempotency_key()
        context = _form_context(
            point, kind, values, remembered=bool(fields),
            retention_days=point.site_retention_days or ctx.settings.retention_visit_days,
        )  # fmt: skip
        context["idle_seconds"] = ctx.settings.kiosk_idle_seconds
        template = (
            "kiosk/_kind_swap.html" if request.headers.get("hx-request") else "kiosk/form.html"
        )
        return Template(template_name=template, context=context)

    @post("/{token:str}", name="kiosk:submit")
    async def submit(
        self, request: Request, ctx: NamedDependency[AppContext], token: FromPath[str]
    ) -> Response:
        """Validate and register; errors come back next to their fields, with the input kept.

        The form's language buttons post here too (`relabel`): the same form comes back in the
        chosen language with everything typed, and nothing is checked or registered.
        """
        point = await _point_or_404(ctx, token)
        form = _form_data(await request.form())
        return await self._register(request, ctx, point, form, relabel=bool(form.get("relabel")))

    @post("/{token:str}/again", name="kiosk:again")
    async def again(
        self, request: Request, ctx: NamedDependency[AppContext], token: FromPath[str]
    ) -> Response:
        """One tap: check in again with what this phone remembers, arrival now."""
        point = await _point_or_404(ctx, token)
        posted = _form_data(await request.form())
        kind = posted.get("kind", "")
        fields = _remembered(request, ctx, point).get(kind)
        if fields is None:
            return Redirect(path=f"/k/{point.token}", status_code=303)
        form = {
            "persons": "1",
            **fields,
            **_default_times(kind, ctx.clock.now(), point),
            "kind": kind,
            "idempotency_key": posted.get("idempotency_key", ""),
            "remember": "on",
        }
        return await self._register(request, ctx, point, form, relabel=False)

    async def _register(
        self,
        request: Request,
        ctx: AppContext,
        point: PointInfo,
        form: dict[str, str],
        *,
        relabel: bool,
    ) -> Response:
        # Longer than most: the one place where a visitor's form becomes a visit, with every
        # outcome (rate limit, honeypot, errors, own open visit, replay, kiosk tablet, remember
        # me) in order.
        kind = form.get("kind", "")
        kinds = KINDS_BY_SITE_KIND[point.site_kind]
        shown_kind = kind if kind in kinds else kinds[0]
        values = {k: v for k, v in form.items() if k not in ("_csrf_token", "relabel")}
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

        if relabel:
            return form_again(200)
        client = request.client.host if request.client else "unknown"
        refused = await ctx.rate_limits.check_in(client, point.id, ctx.clock.now())
        if refused is not None:
            page = form_again(
                HTTP_429_TOO_MANY_REQUESTS,
                banner=ERROR_PAGES[429][0],
                hint=N_("Please wait a minute and try again. What you typed has been kept."),
            )
            page.headers["Retry-After"] = str(refused.retry_after)
            return page
        if form.get("website"):
            # The honeypot: a field people never see, which form-filling robots fill in.
            return form_again(HTTP_400_BAD_REQUEST, banner=ERROR_PAGES[400][0])
        now = ctx.clock.now()
        data, errors = validate_checkin(form, kind=kind, allowed_kinds=kinds, now=now, tz=point.tz)
        if data is None:
            return form_again(HTTP_422_UNPROCESSABLE_ENTITY, errors=translated_errors(errors))
        mine = _own_present(await _present_here(request, ctx, point), data)
        if mine is not None:
            # The same boat, car or guest, checked in from this very phone and still here.
            return _already(point, *mine)
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
        if form.get("remember") == "on":
            kept = dict(_cookie(request, ctx, point))
            kept[data.kind] = {f: values[f] for f in REMEMBERED_FIELDS if values.get(f)}
            own = [t for t in _own_tokens(kept) if t != result.private_token]
            kept[OWN_VISITS] = [result.private_token, *own][:MAX_OWN_VISITS]
            name, path = _remember_cookie(ctx)
            response.set_cookie(
                name, ctx.remember_box.seal(kept), max_age=REMEMBER_MAX_AGE,
                path=path, httponly=True, secure=ctx.settings.https, samesite="lax",
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


async def _visit_or_404(ctx: AppContext, vtoken: str) -> Visit:
    visit = await visit_by_private_token(ctx.db, vtoken)
    if visit is None:
        raise NotFoundException()
    return visit


def _extend_page(visit: Visit, vtoken: str, value: str, error: str | None = None) -> Template:
    context = _visit_context(visit, vtoken)
    context.update(value=value, error=error)
    status = HTTP_422_UNPROCESSABLE_ENTITY if error else 200
    return Template(template_name="kiosk/extend.html", context=context, status_code=status)


class VisitController(Controller):
    """The private link: one visit, seen, extended and ended by whoever holds the link."""

    path = "/k/v"

    @get("/{vtoken:str}", name="kiosk:visit")
    async def show(
        self,
        ctx: NamedDependency[AppContext],
        vtoken: FromPath[str],
        new: FromQuery[bool] = False,
        out: FromQuery[bool] = False,
        extended: FromQuery[bool] = False,
    ) -> Template:
        visit = await _visit_or_404(ctx, vtoken)
        link = f"{ctx.settings.base_url}/k/v/{vtoken}"
        context = _visit_context(visit, vtoken)
        context.update(link=link, qr=_qr_markup(link), new=new, just_out=out, extended=extended)
        return Template(template_name="kiosk/visit.html", context=context)

    @get("/{vtoken:str}/checkout", name="kiosk:checkout-confirm")
    async def confirm_checkout(
        self, ctx: NamedDependency[AppContext], vtoken: FromPath[str]
    ) -> Response:
        """Check out only on purpose: the visitor confirms first."""
        visit = await _visit_or_404(ctx, vtoken)
        if visit.departed_at is not None:
            return Redirect(path=f"/k/v/{vtoken}", status_code=303)
        return Template(template_name="kiosk/checkout.html", context=_visit_context(visit, vtoken))

    @post("/{vtoken:str}/checkout", name="kiosk:checkout")
    async def checkout(self, ctx: NamedDependency[AppContext], vtoken: FromPath[str]) -> Redirect:
        visit = await check_out(ctx.db, vtoken, ctx.clock.now())
        if visit is None:
            raise NotFoundException()
        return Redirect(path=f"/k/v/{vtoken}?out=1", status_code=303)

    @get("/{vtoken:str}/extend", name="kiosk:extend-form")
    async def extend_form(
        self, ctx: NamedDependency[AppContext], vtoken: FromPath[str]
    ) -> Response:
        """A new expected departure; one more day is the usual wish, so it is offered."""
        visit = await _visit_or_404(ctx, vtoken)
        if visit.departed_at is not None:
            return Redirect(path=f"/k/v/{vtoken}", status_code=303)
        proposed = max(visit.expected_departure_at, ctx.clock.now()) + timedelta(days=1)
        return _extend_page(visit, vtoken, _local_input(proposed, ZoneInfo(visit.site.timezone)))

    @post("/{vtoken:str}/extend", name="kiosk:extend")
    async def extend(
        self, request: Request, ctx: NamedDependency[AppContext], vtoken: FromPath[str]
    ) -> Response:
        form = _form_data(await request.form())
        typed = form.get("expected_departure_at", "")[:40]
        try:
            visit = await extend_stay(ctx.db, vtoken, typed, now=ctx.clock.now())
        except Invalid as invalid:
            shown = await _visit_or_404(ctx, vtoken)
            error = invalid.errors["expected_departure_at"]
            message = render_error_message(error.message, dict(error.params))
            return _extend_page(shown, vtoken, typed, message)
        if visit is None:
            raise NotFoundException()
        return Redirect(path=f"/k/v/{vtoken}?extended=1", status_code=303)


# HTML pages for people, not part of the JSON API the schema describes.
kiosk_router = Router(
    path="/",
    route_handlers=[CheckinController, VisitController, BrandingController],
    include_in_schema=False,
    # validate_checkin removes control characters from what it keeps, and a visitor's form
    # comes back with what was typed: the app-wide refusal (nightreg.web) would lose it.
    opt={"cleans_control_characters": True},
)
