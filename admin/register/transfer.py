"""Export a site's register as a file, and import last season's register from a CSV."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.response import Response, Template
from litestar.status_codes import HTTP_400_BAD_REQUEST

from admin.downloads import export_stream
from admin.forms import error_message, form_dates
from admin.web import ActorDep, ContextDep, Slug
from nightreg.i18n import N_
from nightreg.models import Site
from nightreg.services import register_import, transfer
from nightreg.services.sites import site_for
from nightreg.web import render_error_message

EXPORT = {"permission": "register.export"}
IMPORT = {"permission": "register.edit"}
# A season's register of a busy marina is a few megabytes; the kiosk's small limit is not for this.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# The page shows the first refused rows; the CLI and a fixed file show the rest.
ERRORS_SHOWN = 50

MSG_NO_FILE = N_("Please choose a CSV file.")
MSG_UNREADABLE = N_("This file cannot be read: %(reason)s. Nothing was imported.")


def _export_form(params: Any) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """The export form's values as typed, the parsed values, and errors by field."""
    form = {
        "from": (params.get("from") or "").strip()[:20],
        "to": (params.get("to") or "").strip()[:20],
        "format": (params.get("format") or "csv").strip()[:10],
        "delimiter": params.get("delimiter") or ",",
    }
    parsed, errors = form_dates(form)
    return form, parsed, errors


def _export_page(site: Site, form: dict[str, str], errors: dict[str, str]) -> Template:
    return Template(
        template_name="admin/export.html",
        context={"site": site, "form": form, "errors": errors},
        status_code=HTTP_400_BAD_REQUEST if errors else 200,
    )


def _import_page(
    site: Site,
    *,
    dry_run: bool = True,
    report: register_import.ImportReport | None = None,
    error: str | None = None,
) -> Template:
    rows = []
    if report is not None:
        for row in report.errors[:ERRORS_SHOWN]:
            for column, problem in row.errors.items():
                rows.append(
                    (row.line, column, render_error_message(problem.message, problem.params))
                )
    return Template(
        template_name="admin/import.html",
        context={
            "site": site,
            "dry_run": dry_run,
            "report": report,
            "problems": rows,
            "hidden": 0
            if report is None
            else report.bad_rows - min(len(report.errors), ERRORS_SHOWN),
            "error": error,
            "columns": transfer.EXPORT_COLUMNS,
            "required": register_import.REQUIRED_COLUMNS,
        },
        status_code=HTTP_400_BAD_REQUEST if error or (report and not report.ok) else 200,
    )


class TransferController(Controller):
    path = "/sites/{slug:str}"

    @get("/export", name="admin:export", opt=EXPORT)
    async def export_form(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        site = await site_for(ctx.db, actor, slug, "register.export")
        form, _parsed, _errors = _export_form(request.query_params)
        return _export_page(site, form, {})

    @get("/export/download", name="admin:export-download", opt=EXPORT)
    async def download(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Response[Any]:
        """The file, streamed; a bad period or format comes back as the form with its message."""
        site = await site_for(ctx.db, actor, slug, "register.export")
        form, parsed, errors = _export_form(request.query_params)
        if errors:
            return _export_page(site, form, errors)
        chunks = transfer.export_register(
            ctx.db,
            actor,
            site.id,
            date_from=parsed["from"],
            date_to=parsed["to"],
            fmt=form["format"],
            delimiter=form["delimiter"],
            now=ctx.clock.now(),
        )
        fmt = form["format"]
        filename = transfer.export_filename(site.slug, parsed["from"], parsed["to"], fmt)
        try:
            return await export_stream(chunks, filename, fmt=fmt)
        except transfer.ExportInvalid as exc:
            return _export_page(site, form, {exc.field: error_message(exc.message)})

    @get("/import", name="admin:import", opt=IMPORT)
    async def import_form(self, ctx: ContextDep, actor: ActorDep, slug: Slug) -> Template:
        site = await site_for(ctx.db, actor, slug, "register.edit")
        return _import_page(site)

    @post("/import", name="admin:import-upload", opt=IMPORT, request_max_body_size=MAX_UPLOAD_BYTES)
    async def upload(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        """Check (dry run, the default) or import the uploaded file: all rows or none."""
        site = await site_for(ctx.db, actor, slug, "register.edit")
        form = await request.form()
        dry_run = bool(form.get("dry_run"))
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return _import_page(site, dry_run=dry_run, error=error_message(MSG_NO_FILE))
        try:
            report = await register_import.import_register(
                ctx.db,
                actor,
                site.id,
                upload.file,
                filename=upload.filename,
                now=ctx.clock.now(),
                dry_run=dry_run,
            )
        except register_import.ImportFileError as exc:
            message = render_error_message(MSG_UNREADABLE, {"reason": str(exc)})
            return _import_page(site, dry_run=dry_run, error=message)
        finally:
            await upload.close()
        return _import_page(site, dry_run=dry_run, report=report)


ROUTES = [TransferController]
