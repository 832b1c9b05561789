"""Export a site's flags with their evidence visits as a file (CSV or JSON), for park security."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Response, Template
from litestar.status_codes import HTTP_400_BAD_REQUEST

from admin.downloads import export_stream
from admin.flags.pages import STATUS_LABELS
from admin.forms import error_message, form_dates
from admin.web import ActorDep, ContextDep, Slug
from nightreg.models import Site
from nightreg.services import flag_export
from nightreg.services.sites import site_for
from nightreg.services.transfer import ExportInvalid

EXPORT = {"permission": "flags.export"}
# The statuses one may export by; "" is every status.
STATUS_CHOICES = ("", "open", "watching", "forwarded", "dismissed", "expired")


def _form(params: Any) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """The form's values as typed, the parsed values, and errors by field."""
    form = {
        "from": (params.get("from") or "").strip()[:20],
        "to": (params.get("to") or "").strip()[:20],
        "status": (params.get("status") or "").strip()[:20],
        "format": (params.get("format") or "csv").strip()[:10],
    }
    dates, errors = form_dates(form)
    parsed: dict[str, Any] = {"status": form["status"] or None, **dates}
    return form, parsed, errors


def _page(site: Site, form: dict[str, str], errors: dict[str, str]) -> Template:
    return Template(
        template_name="admin/flag_export.html",
        context={
            "site": site,
            "form": form,
            "errors": errors,
            "statuses": STATUS_CHOICES,
            "status_labels": STATUS_LABELS,
        },
        status_code=HTTP_400_BAD_REQUEST if errors else 200,
    )


class FlagExportController(Controller):
    path = "/sites/{slug:str}/flags/export"

    @get("/", name="admin:flag-export", opt=EXPORT)
    async def export_form(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        site = await site_for(ctx.db, actor, slug, flag_export.PERMISSION)
        form, _parsed, _errors = _form(request.query_params)
        return _page(site, form, {})

    @get("/download", name="admin:flag-export-download", opt=EXPORT)
    async def download(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Response[Any]:
        """The file, streamed; a bad value comes back as the form with its message."""
        site = await site_for(ctx.db, actor, slug, flag_export.PERMISSION)
        form, parsed, errors = _form(request.query_params)
        if errors:
            return _page(site, form, errors)
        chunks = flag_export.export_flags(
            ctx.db,
            actor,
            site.id,
            date_from=parsed["from"],
            date_to=parsed["to"],
            status=parsed["status"],
            fmt=form["format"],
            now=ctx.clock.now(),
        )
        fmt = form["format"]
        filename = flag_export.export_filename(
            site.slug, parsed["from"], parsed["to"], parsed["status"], fmt
        )
        try:
            return await export_stream(chunks, filename, fmt=fmt)
        except ExportInvalid as exc:
            return _page(site, form, {exc.field: error_message(exc.message)})


ROUTES = [FlagExportController]
