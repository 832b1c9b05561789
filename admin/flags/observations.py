"""The observation form: what staff saw on a visit or at a place, from the indicator checklist."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, get, post
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from admin.forms import error_messages
from admin.register.pages import TIME_FORMAT
from admin.web import ActorDep, ContextDep, Slug
from nightreg.context import AppContext
from nightreg.models import Site, Visit
from nightreg.services import observations, register
from nightreg.services.access import Actor, NotFound
from nightreg.services.observations import ObservationInvalid
from nightreg.services.sites import site_for
from nightreg.vocabulary import KIND_LABELS
from nightreg.web import form_int, see_other

ADD = {"permission": "observations.add"}


async def _visit(ctx: AppContext, actor: Actor, site: Site, visit_id: int | None) -> Visit | None:
    """The visit the observation is about, seen (and audited) like its page; of this site only."""
    if visit_id is None:
        return None
    visit = await register.get_visit(ctx.db, actor, visit_id, now=ctx.clock.now())
    if visit.site_id != site.id:
        raise NotFound(str(visit_id))
    return visit


def _page(
    site: Site,
    visit: Visit | None,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    status_code: int = 200,
) -> Template:
    return Template(
        template_name="admin/observation.html",
        context={
            "site": site,
            "visit": visit,
            "values": values,
            "errors": errors,
            "groups": observations.groups_for(site.kind),
            "kind_labels": KIND_LABELS,
            "tz": site.timezone,
            "time_format": TIME_FORMAT,
            "max_location": observations.MAX_LOCATION,
            "max_text": observations.MAX_TEXT,
        },
        status_code=status_code,
    )


class ObservationController(Controller):
    path = "/sites/{slug:str}/observations"

    @get("/new", name="admin:observation-new", opt=ADD)
    async def new(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        """An empty checklist; the time observed is now on the site's clock."""
        site = await site_for(ctx.db, actor, slug, observations.PERMISSION)
        visit = await _visit(ctx, actor, site, form_int(request.query_params.get("visit")))
        now = ctx.clock.now().astimezone(ZoneInfo(site.timezone))
        values = {"indicators": [], "location": "", "text": "",
                  "observed_at": now.strftime("%Y-%m-%dT%H:%M")}  # fmt: skip
        return _page(site, visit, values, {})

    @post("/new", name="admin:observation-add", opt=ADD)
    async def add(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Response[Any]:
        """Record it and go to its flag; errors come back next to their fields, as typed."""
        site = await site_for(ctx.db, actor, slug, observations.PERMISSION)
        form = await request.form()
        visit_id = form_int(_text(form.get("visit")) or request.query_params.get("visit"))
        values: dict[str, Any] = {
            "indicators": [v for v in form.getall("indicators", []) if isinstance(v, str)][:100],
            "location": _text(form.get("location"))[: observations.MAX_LOCATION * 2],
            "text": _text(form.get("text"))[: observations.MAX_TEXT * 2],
            "observed_at": _text(form.get("observed_at"))[:40],
        }
        try:
            added = await observations.add_observation(
                ctx.db,
                actor,
                site.id,
                visit_id,
                location=values["location"],
                indicators=values["indicators"],
                text=values["text"],
                observed_at=values["observed_at"],
                now=ctx.clock.now(),
            )
        except ObservationInvalid as invalid:
            visit = await _visit(ctx, actor, site, visit_id)
            return _page(
                site, visit, values, error_messages(invalid.errors),
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
            )  # fmt: skip
        return see_other(request, f"/admin/flags/{added.flag_id}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


ROUTES = [ObservationController]
