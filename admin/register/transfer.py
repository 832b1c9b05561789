"""Export a site's register as a file, and import last season's register (CSV or .xlsx)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.response import Response, Template
from litestar.status_codes import HTTP_400_BAD_REQUEST

from admin.downloads import export_stream
from admin.forms import error_message, form_dates
from admin.web import ActorDep, ContextDep, Slug
from nightreg import i18n
from nightreg.i18n import N_
from nightreg.models import Site
from nightreg.services import import_staging, register_import, transfer
from nightreg.services.access import Actor
from nightreg.services.import_columns import FIELDS, SKIP
from nightreg.services.sites import site_for
from nightreg.vocabulary import KIND_LABELS
from nightreg.web import render_error_message

EXPORT = {"permission": "register.export"}
IMPORT = {"permission": "register.edit"}
# A season's register of a busy marina is a few megabytes; the kiosk's small limit is not for this.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# The page shows the first refused rows; the CLI and a fixed file show the rest.
ERRORS_SHOWN = 50

MSG_NO_FILE = N_("Please choose a CSV or Excel file.")
MSG_EXPIRED = N_("The uploaded file is no longer kept; please choose it again.")
# The mapping step reads at most this many columns' choices.
MAX_MAPPED_COLUMNS = 1_000
# The preview's columns, in this order, when the file fills them.
PREVIEW_FIELDS = (
    "arrived_at", "expected_departure_at", "departed_at", "persons", "guest_name", "residence",
    "country", "vessel_name", "registration", "mmsi", "length_m", "berth", "plate", "unit",
    "company", "notes",
)  # fmt: skip
MSG_UNREADABLE = N_("This file cannot be read: %(reason)s. Nothing was imported.")


def _export_form(params: Any) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """The export form's values as typed, the parsed values, and errors by field."""
    locale = i18n.get_locale()
    form = {
        "from": (params.get("from") or "").strip()[:20],
        "to": (params.get("to") or "").strip()[:20],
        "format": (params.get("format") or "csv").strip()[:10],
        # A spreadsheet in Dutch or German splits at semicolons, one in English at commas.
        "delimiter": params.get("delimiter") or transfer.DEFAULT_DELIMITERS.get(locale, ","),
        "sheet": "1" if params.get("sheet") else "",
    }
    parsed, errors = form_dates(form)
    return form, parsed, errors


def _export_page(site: Site, form: dict[str, str], errors: dict[str, str]) -> Template:
    return Template(
        template_name="admin/export.html",
        context={"site": site, "form": form, "errors": errors},
        status_code=HTTP_400_BAD_REQUEST if errors else 200,
    )


def _problems(report: register_import.ImportReport) -> list[tuple[int, str, str]]:
    """The first refused rows: (row, the file's column, what is wrong), for staff."""
    headers = {name: header for header, name in report.mapped}
    rows = []
    for row in report.errors[:ERRORS_SHOWN]:
        for name, problem in row.errors.items():
            message = register_import.row_message(problem, i18n.gettext)
            rows.append((row.line, headers.get(name, ""), message))
    return rows


def _shown(value: Any, tz: ZoneInfo) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return str(value)


def _preview(plan: register_import.FilePlan, tz: ZoneInfo) -> dict[str, Any]:
    """The mapping step's preview: the first rows as they would be stored, or what is wrong."""
    chosen = [c for c in plan.columns if c]
    fields = ["kind"] + [f for f in PREVIEW_FIELDS if f in chosen or f == "persons"]
    if "departed_at" in chosen and "expected_departure_at" not in fields:
        fields.insert(fields.index("departed_at"), "expected_departure_at")
    rows: list[tuple[int, list[str] | None, list[str]]] = []
    for line, values, errors in plan.preview:
        if values is None:
            messages = [register_import.row_message(e, i18n.gettext) for e in errors.values()]
            rows.append((line, None, messages))
        else:
            rows.append((line, [_shown(values.get(f), tz) for f in fields], []))
    samples: list[list[str]] = [[] for _ in plan.headers]
    for cells in plan.samples:
        for i, cell in enumerate(cells[: len(samples)]):
            cell = " ".join(cell.split())
            if cell and cell not in samples[i] and len(samples[i]) < 3:
                samples[i].append(cell[:40])
    return {"fields": fields, "rows": rows, "samples": samples}


def _labels(names: list[str]) -> list[str]:
    return [i18n.gettext(transfer.EXPORT_HEADERS[n]) for n in names]


def _import_page(
    site: Site,
    *,
    options: dict[str, Any] | None = None,
    report: register_import.ImportReport | None = None,
    plan: register_import.FilePlan | None = None,
    token: str = "",
    error: str | None = None,
    status_code: int | None = None,
) -> Template:
    options = options or {"dry_run": True, "update": False, "sheet": ""}
    failed = bool(error) or bool(report and not report.ok)
    context: dict[str, Any] = {
        "site": site,
        "options": options,
        "report": report,
        "problems": _problems(report) if report is not None else [],
        "hidden": 0 if report is None else report.bad_rows - min(len(report.errors), ERRORS_SHOWN),
        "error": error,
        "token": token,
        "plan": plan,
        "preview": _preview(plan, ZoneInfo(site.timezone)) if plan is not None else None,
        "field_choices": [(name, transfer.EXPORT_HEADERS[name]) for name in FIELDS],
        "labels": transfer.EXPORT_HEADERS,
        "kind_labels": KIND_LABELS,
        "usual": (site.usual_arrival_time, site.usual_departure_time),
        "twice_labels": _labels(plan.twice if plan else []),
        "missing_labels": _labels(plan.missing if plan else []),
    }
    return Template(
        template_name="admin/import.html",
        context=context,
        status_code=status_code or (HTTP_400_BAD_REQUEST if failed else 200),
    )


def _mapping_from(form: Any, plan_headers: list[str]) -> dict[str, str]:
    """The mapping step's choices: column i's select `col-i` -> {header: field or SKIP}."""
    mapping: dict[str, str] = {}
    for i, header in enumerate(plan_headers[:MAX_MAPPED_COLUMNS]):
        value = form.get(f"col-{i}")
        if not isinstance(value, str) or not value:
            continue
        if value == "skip":
            mapping[header] = SKIP
        elif value in FIELDS:
            mapping[header] = value
    return mapping


def _owner(actor: Actor) -> str:
    return actor.label


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
            sheet_locale=i18n.get_locale() if form["sheet"] else None,
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
        """Upload, map the columns, check (the default) or import: all rows or none.

        The upload is kept between the steps (nightreg.services.import_staging), so that the
        mapping step and "import it now" after a check need no second upload. The file is read
        in a worker thread: other requests keep being answered while a large one is imported.
        """
        site = await site_for(ctx.db, actor, slug, "register.edit")
        form = await request.form()
        dry_run, update = bool(form.get("dry_run")), bool(form.get("update"))
        sheet = str(form.get("sheet") or "").strip()[:100] or None
        options = {"dry_run": dry_run, "update": update, "sheet": sheet or ""}
        data_dir = ctx.settings.data_dir
        token = str(form.get("token") or "")
        staged = None
        if token:
            staged = await asyncio.to_thread(
                import_staging.find, data_dir, token, site_id=site.id, owner=_owner(actor)
            )
            if staged is None:
                message = error_message(MSG_EXPIRED)
                return _import_page(site, options=options, error=message)
        else:
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                return _import_page(site, options=options, error=error_message(MSG_NO_FILE))
            try:
                staged = await asyncio.to_thread(
                    import_staging.keep,
                    data_dir,
                    upload.file,
                    filename=upload.filename,
                    site_id=site.id,
                    owner=_owner(actor),
                )
            finally:
                await upload.close()
        mapping: dict[str, str] | None = None
        headers = form.getall("header", []) if hasattr(form, "getall") else []
        if headers:
            mapping = _mapping_from(form, [str(h) for h in headers])
        step = str(form.get("step") or "")
        now = ctx.clock.now()
        with staged.path.open("rb") as stream:
            try:
                if step == "preview":
                    plan = await register_import.inspect_file(
                        ctx.db, actor, site.id, stream, filename=staged.filename, now=now,
                        mapping=mapping, sheet=sheet,
                    )  # fmt: skip
                    return _import_page(
                        site, options=options, plan=plan, token=staged.token, status_code=200
                    )
                report = await register_import.import_register(
                    ctx.db, actor, site.id, stream, filename=staged.filename, now=now,
                    dry_run=dry_run, update=update, mapping=mapping,
                    sheet=sheet, ask=True, remember=mapping is not None,
                )  # fmt: skip
            except register_import.MappingNeeded as needed:
                return _import_page(
                    site, options=options, plan=needed.plan, token=staged.token, status_code=200
                )
            except register_import.ImportFileError as exc:
                await asyncio.to_thread(import_staging.discard, data_dir, staged.token)
                message = render_error_message(MSG_UNREADABLE, {"reason": str(exc)})
                return _import_page(site, options=options, error=message)
        if not report.dry_run or not report.ok:
            await asyncio.to_thread(import_staging.discard, data_dir, staged.token)
            return _import_page(site, options=options, report=report)
        return _import_page(site, options=options, report=report, token=staged.token)


ROUTES = [TransferController]
