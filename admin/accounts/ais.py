"""A marina's AIS card on the site's page: the harbour area (a circle or a polygon) and the
switch with its DPIA."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from admin.accounts.manage import _site_page
from admin.forms import error_messages
from admin.web import ActorDep, ContextDep, Slug
from nightreg.services.ais.harbour import MAX_POLYGON_TEXT, SHAPES, AisInvalid, change_ais
from nightreg.services.sites import site_for
from nightreg.web import form_text, see_other

FormBody = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
FIELDS = ("ais_area_lat", "ais_area_lon", "ais_area_radius_m", "ais_dpia_reference")


class SiteAisController(Controller):
    path = "/sites"

    @post("/{slug:str}/ais", name="admin:site-ais", opt={"permission": "sites.manage"})
    async def change(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug, data: FormBody
    ) -> Response[Any]:
        """Set the harbour area (whichever shape is filled in; with both, the one chosen) and
        switch AIS on (with a DPIA reference) or off; audited."""
        site = await site_for(ctx.db, actor, slug, "points.manage")
        form = {name: form_text(data, name, 250) for name in FIELDS}
        # A little over the limit, so that a longer paste is refused rather than cut.
        form["ais_area_polygon"] = form_text(data, "ais_area_polygon", MAX_POLYGON_TEXT + 1)
        shape = form_text(data, "ais_area_shape", 10)
        form["ais_area_shape"] = shape if shape in SHAPES else ""
        form["ais_enabled"] = "yes" if form_text(data, "ais_enabled", 3) == "yes" else "no"
        try:
            await change_ais(
                ctx.db,
                actor,
                slug,
                enabled=form["ais_enabled"] == "yes",
                dpia_reference=form["ais_dpia_reference"],
                lat=form["ais_area_lat"],
                lon=form["ais_area_lon"],
                radius_m=form["ais_area_radius_m"],
                polygon=form["ais_area_polygon"],
                shape=form["ais_area_shape"] or None,
                now=ctx.clock.now(),
            )
        except AisInvalid as invalid:
            return await _site_page(
                ctx,
                actor,
                site,
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
                extra={"ais_form": form, "ais_errors": error_messages(invalid.errors)},
            )
        return see_other(request, f"/admin/sites/{slug}?saved=ais#ais")


ROUTES = [SiteAisController]
