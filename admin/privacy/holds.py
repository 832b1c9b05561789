"""Legal holds: the list, placing one, one hold with what it covers, its release."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template

from admin.forms import done_notice, refused_status, rerender
from admin.web import ActorDep, ContextDep, PathId
from nightreg.clock import local_day
from nightreg.context import AppContext
from nightreg.i18n import N_
from nightreg.services import holds
from nightreg.services.access import Actor
from nightreg.services.holds import HoldDetail, HoldInvalid
from nightreg.web import form_text, see_other

FormBody = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

VIEW = {"permission": holds.VIEW}
MANAGE = {"permission": holds.MANAGE}
TIME_FORMAT = "yyyy-MM-dd HH:mm"

MSG_PLACED = N_("The hold has been placed. Nothing it covers is purged while it is in force.")
MSG_RELEASED = N_("The hold has been released. What it covered is purged when its time is up.")
# Longer than any field's own limit, so that the service reports the length, not the cut.
_FIELD_LIMIT = 4000
# Room for MAX_REFERENCES references with their separators.
_REFS_LIMIT = 12 * holds.MAX_REFERENCES + 100
NEW, SHOW = "admin/hold_new.html", "admin/hold.html"
FIELDS = ("scope", "case_reference", "reason", "until", "refs", "subject", "site")


async def _new_context(ctx: AppContext, actor: Actor, form: Mapping[str, str]) -> dict[str, Any]:
    """The form's page, filled with `form`; no errors yet."""
    return {
        "form": form,
        "errors": {},
        "scopes": holds.SCOPES,
        "scope_labels": holds.SCOPE_LABELS,
        "sites": await holds.all_sites(ctx.db, actor),
        "max_case_reference": holds.MAX_CASE_REFERENCE,
        "max_reason": holds.MAX_REASON,
        "max_subject": holds.MAX_SUBJECT_KEY,
        "max_refs": _REFS_LIMIT,
        "tz": ctx.settings.tz,
        "today": local_day(ctx.clock.now(), ctx.settings.tz),
    }


def _hold_context(ctx: AppContext, actor: Actor, detail: HoldDetail) -> dict[str, Any]:
    """The hold's page with an empty release form and no notice."""
    return {
        "detail": detail,
        "hold": detail.hold,
        "scope_labels": holds.SCOPE_LABELS,
        "state_labels": holds.STATE_LABELS,
        "can_release": actor.can(holds.MANAGE) and detail.state == holds.IN_FORCE,
        "notice": None,
        "release_form": {"reason": ""},
        "errors": {},
        "max_release_reason": holds.MAX_RELEASE_REASON,
        "shown_limit": holds.SHOWN_REFERENCES,
        "tz": ctx.settings.tz,
        "time_format": TIME_FORMAT,
    }


class HoldController(Controller):
    """Legal holds: admins place and release them, auditors read them."""

    path = "/retention/holds"

    @get("/", name="admin:holds", opt=VIEW)
    async def list_holds(self, ctx: ContextDep, actor: ActorDep) -> Template:
        rows = await holds.list_holds(ctx.db, actor, now=ctx.clock.now(), tz=ctx.settings.tz)
        return Template(
            template_name="admin/holds.html",
            context={
                "rows": rows,
                "scope_labels": holds.SCOPE_LABELS,
                "state_labels": holds.STATE_LABELS,
                "can_manage": actor.can(holds.MANAGE),
                "tz": ctx.settings.tz,
                "time_format": TIME_FORMAT,
            },
        )

    @get("/new", name="admin:hold-new", opt=MANAGE)
    async def new_form(self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep) -> Template:
        """The form, filled from the query (scope, refs, subject, site) when another page
        links to it to "place a hold on these"."""
        query = request.query_params
        scope = query.get("scope") or ""
        refs = ", ".join(holds.parse_references((query.get("refs") or "")[:_REFS_LIMIT]))
        form = {
            "scope": scope if scope in holds.SCOPES else "",
            "case_reference": "",
            "reason": "",
            "until": "",
            "refs": refs,
            "subject": (query.get("subject") or "")[: holds.MAX_SUBJECT_KEY],
            "site": (query.get("site") or "")[:64],
        }
        if not form["scope"]:
            form["scope"] = "visits" if refs else "subject" if form["subject"] else (
                "site" if form["site"] else ""
            )  # fmt: skip
        return Template(template_name=NEW, context=await _new_context(ctx, actor, form))

    @post("/new", name="admin:hold-create", opt=MANAGE)
    async def create(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, data: FormBody
    ) -> Response[Any]:
        """Place the hold and show it; errors come back beside their fields."""
        form = {name: form_text(data, name, _FIELD_LIMIT) for name in FIELDS}
        form["refs"] = form_text(data, "refs", _REFS_LIMIT)
        try:
            hold = await holds.place(
                ctx.db,
                actor,
                scope=form["scope"],
                case_reference=form["case_reference"],
                reason=form["reason"],
                until=form["until"],
                site_slug=form["site"],
                subject_key=form["subject"],
                visit_references=form["refs"],
                now=ctx.clock.now(),
                tz=ctx.settings.tz,
            )
        except HoldInvalid as invalid:
            return rerender(NEW, await _new_context(ctx, actor, form), invalid.errors)
        return see_other(request, f"/admin/retention/holds/{hold.id}?placed=1")

    @get("/{id:int}", name="admin:hold", opt=VIEW)
    async def show(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId
    ) -> Template:
        """The hold, what it covers now; admins may release it here."""
        detail = await holds.get_hold(ctx.db, actor, id, now=ctx.clock.now(), tz=ctx.settings.tz)
        notice = done_notice(request, {"placed": MSG_PLACED, "released": MSG_RELEASED})
        context = {**_hold_context(ctx, actor, detail), "notice": notice}
        return Template(template_name=SHOW, context=context)

    @post("/{id:int}/release", name="admin:hold-release", opt=MANAGE)
    async def release(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId, data: FormBody
    ) -> Response[Any]:
        """Release it now, with a reason; a second release is refused with the page as it is."""
        reason = form_text(data, "reason", _FIELD_LIMIT)
        now, tz = ctx.clock.now(), ctx.settings.tz
        try:
            await holds.release(ctx.db, actor, id, reason, now=now, tz=tz)
        except HoldInvalid as invalid:
            detail = await holds.get_hold(ctx.db, actor, id, now=now, tz=tz)
            context = {**_hold_context(ctx, actor, detail), "release_form": {"reason": reason}}
            return rerender(
                SHOW, context, invalid.errors, status_code=refused_status(invalid.errors, "hold")
            )
        return see_other(request, f"/admin/retention/holds/{id}?released=1")


ROUTES = [HoldController]
