"""The auditor's pages: the audit trail, filtered, exported as CSV, and its chain verified."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Stream, Template

from admin.downloads import export_stream
from admin.web import ActorDep, ContextDep
from nightreg.context import AppContext
from nightreg.services import audit, audit_checkpoints
from nightreg.services.sites import sites_for
from nightreg.web import form_date, form_int

ACTIONS = (
    "sign_in",
    "sign_in_failed",
    "sign_in_throttled",
    "sign_out",
    "password_changed",
    "password_change_failed",
    "password_reset_issued",
    "password_reset_used",
    "user_created",
    "user_changed",
    "site_access_granted",
    "site_access_revoked",
    "site_created",
    "site_changed",
    "point_created",
    "point_changed",
    "point_rotated",
    "token_created",
    "token_revoked",
    "tonight_viewed",
    "sightings_received",
    "sightings_viewed",
    "register_viewed",
    "visit_viewed",
    "visit_created",
    "visit_corrected",
    "visit_checked_out",
    "visit_extended",
    "visit_note_added",
    "register_printed",
    "register_exported",
    "register_imported",
    "audit_viewed",
    "audit_exported",
    "flag_raised",
    "flag_grown",
    "flags_viewed",
    "flag_viewed",
    "flag_reviewed",
    "flags_exported",
    "observation_added",
    "watchlist_imported",
    "job_run_requested",
    "agreement_created",
    "agreement_ended",
    "agreement_changed",
    "signal_previewed",
    "signal_queued",
    "signal_delivered",
    "signal_failed",
    "signals_viewed",
    "signal_viewed",
    "signals_acknowledged",
    "insight_viewed",
    "insight_exported",
    "purge_completed",
    "retention_policy_changed",
    "retention_previewed",
    "hold_placed",
    "hold_released",
    "holds_viewed",
    "hold_viewed",
    "tourist_tax_viewed",
    "tourist_tax_exported",
    "subject_searched",
    "subject_exported",
    "subject_erased",
    "subject_erase_refused",
    "watchlist_evidence_erased",
    "two_factor_enabled",
    "two_factor_disabled",
    "two_factor_reset",
    "recovery_code_used",
)


def _date(value: str | None) -> date | None:
    """The audit filters ignore a date they cannot read rather than refuse the page."""
    try:
        return form_date(value)
    except ValueError:
        return None


def event_query(
    request: Request[Any, Any, Any], ctx: AppContext
) -> tuple[audit.EventQuery, dict[str, str]]:
    """The filters of the page's form (dates are local to the installation's time zone)."""
    params = request.query_params
    tz = ctx.settings.tz
    day_from, day_to = _date(params.get("from")), _date(params.get("to"))
    query = audit.EventQuery(
        actor=(params.get("actor") or "").strip()[:100],
        site_id=form_int(params.get("site")),
        action=action if (action := params.get("action") or "") in ACTIONS else "",
        date_from=datetime.combine(day_from, time(), tz) if day_from else None,
        date_to=datetime.combine(day_to + timedelta(days=1), time(), tz) if day_to else None,
        before_id=form_int(params.get("before")),
    )
    form = {
        "actor": query.actor,
        "site": str(query.site_id or ""),
        "action": query.action,
        "from": day_from.isoformat() if day_from else "",
        "to": day_to.isoformat() if day_to else "",
    }
    return query, form


class AuditController(Controller):
    path = "/audit"

    @get("/", name="admin:audit", opt={"permission": "audit.view"})
    async def trail(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Template:
        query, form = event_query(request, ctx)
        events, next_before = await audit.search_events(ctx.db, actor, query, now=ctx.clock.now())
        context = {
            "events": events,
            "next_before": next_before,
            "form": form,
            "actions": ACTIONS,
            # An admin reads only their own sites' events (nightreg.services.audit._readable).
            "sites": [
                site
                for site in await sites_for(ctx.db, actor, "audit.view")
                if audit.reads_all(actor) or site.id in actor.site_ids
            ],
            "tz": ctx.settings.tz,
        }
        if request.headers.get("hx-request") and request.headers.get("hx-target") == "audit-more":
            return Template(template_name="admin/_audit_rows.html", context=context)
        return Template(template_name="admin/audit.html", context=context)

    @get("/export.csv", name="admin:audit-export", opt={"permission": "audit.view"})
    async def export(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Stream:
        query, _form = event_query(request, ctx)
        chunks = audit.export_events(ctx.db, actor, query, now=ctx.clock.now())
        stamp = ctx.clock.now().strftime("%Y%m%d-%H%M")
        return await export_stream(chunks, f"audit-{stamp}.csv")

    @get("/verify", name="admin:audit-verify", opt={"permission": "audit.view"})
    async def verify(self, ctx: ContextDep, actor: ActorDep) -> Template:
        result = await audit_checkpoints.verify(ctx.db, ctx.settings)
        await audit.log(
            ctx.db,
            actor,
            "audit_viewed",
            at=ctx.clock.now(),
            details={"verify": "intact" if result.intact else "broken"},
        )
        return Template(template_name="admin/audit_verify.html", context={"result": result})


ROUTES = [AuditController]
