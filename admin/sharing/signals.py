"""The analyst's pages: the signals forwarded to the hub, of every site, and one signal as sent.

What an analyst sees is what the hub got (or will get): each signal's payload, fixed under a
sharing agreement, and the outbox's record of its delivery; never the register behind it
(nightreg.services.hub_pull reads no visit).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, get
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template
from litestar.status_codes import HTTP_400_BAD_REQUEST

from admin.forms import form_dates
from admin.register.pages import TIME_FORMAT
from admin.web import ActorDep, ContextDep
from nightreg import i18n
from nightreg.i18n import N_
from nightreg.rules import RULES
from nightreg.services import hub_pull
from nightreg.services.agreements import FIELDS, VISIT_FIELDS
from nightreg.services.hub_pull import PullInvalid, SignalDetail, SignalQuery
from nightreg.vocabulary import SITE_KIND_LABELS
from nightreg.web import form_int, page_or_part, render_error_message

VIEW = {"permission": hub_pull.VIEW}
PAGE_SIZE = 50
FILTERS = ("site", "rule", "status", "from", "to")

STATUS_LABELS = {
    "pending": N_("Waiting to be delivered"),
    "delivered": N_("Delivered"),
    "failed": N_("Delivery failed"),
    # Stored as failed; never sent, never shown (nightreg.services.hub_pull).
    "withheld": N_("Withheld: the agreement ended before it was sent"),
}
DELIVERED_BY_LABELS = {"push": N_("sent to the hub"), "pull": N_("pulled by the hub")}
REVIEW_LABELS = {
    "staff": N_("Reviewed by staff before forwarding"),
    "automatic": N_("Forwarded automatically under the agreement"),
}
# The payload's members shown as facts, in this order, with their labels; `visits` is a table.
PAYLOAD_LABELS = {
    "id": N_("Signal id"),
    "forwarded_at": N_("Forwarded"),
    "agreement": N_("Agreement"),
    "review": N_("Review"),
    "rule": N_("Rule"),
    "reason": N_("Reason"),
    "score": N_("Score"),
    "site": N_("Site"),
    "visit_count": N_("Visits at this site"),
    "visits_elsewhere": N_("Visits at other sites (counted, not sent)"),
}
_TIME_MEMBERS = ("forwarded_at", "arrived_at", "departed_at")


# --- presentation ------------------------------------------------------------------------


def rule_title(code: str) -> str:
    rule = RULES.get(code)
    return i18n.gettext(rule.title) if rule else code


def _time(value: object, tz: ZoneInfo) -> str:
    """A payload's UTC time ("2026-07-14T19:00:00Z") on the installation's clock."""
    if not isinstance(value, str):
        return ""
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if at.tzinfo is None:
        return value
    return i18n.local_datetime(at, tz, TIME_FORMAT)


def _text(value: object) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _fact(name: str, value: object, tz: ZoneInfo) -> str:
    """One top-level member of a payload as a person reads it."""
    if name in _TIME_MEMBERS:
        return _time(value, tz)
    if name == "agreement" and isinstance(value, dict):
        return "{name} ({reference}) · {recipient}".format(
            name=value.get("name", ""),
            reference=value.get("reference", ""),
            recipient=value.get("recipient", ""),
        )
    if name == "review" and isinstance(value, str):
        label = REVIEW_LABELS.get(value)
        return i18n.gettext(label) if label else value
    if name == "rule" and isinstance(value, str):
        return f"{rule_title(value)} ({value})"
    if name == "site" and isinstance(value, dict):
        kind = SITE_KIND_LABELS.get(str(value.get("kind", "")))
        parts = [str(value.get("name", "")), i18n.gettext(kind) if kind else ""]
        parts.append(str(value.get("municipality", "")))
        return " · ".join(p for p in parts if p)
    if name == "score":
        return f"{_text(value)} / 100"
    return _text(value)


def _visit_cell(name: str, value: object, tz: ZoneInfo) -> str:
    if value is None or value == "":
        return "–"
    if name in _TIME_MEMBERS:
        return _time(value, tz)
    if name == "flag" and isinstance(value, str):
        return f"{i18n.country_name(value)} ({value})"
    return _text(value)


def payload_view(payload: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """A payload as the page reads it: facts, the visits' table, and anything unforeseen."""
    facts = [
        (i18n.gettext(label), _fact(name, payload[name], tz))
        for name, label in PAYLOAD_LABELS.items()
        if name in payload
    ]
    raw_visits = payload.get("visits")
    visits = [v for v in raw_visits if isinstance(v, dict)] if isinstance(raw_visits, list) else []
    present = {key for visit in visits for key in visit}
    columns = [name for name in VISIT_FIELDS if name in present]
    columns += sorted(key for key in present if key not in VISIT_FIELDS)
    # Members this page does not know (a newer schema) are shown as they are, not hidden.
    known = {*PAYLOAD_LABELS, "schema", "visits"}
    facts += [(name, _text(payload[name])) for name in payload if name not in known]
    return {
        "facts": facts,
        "columns": [(i18n.gettext(FIELDS[n]) if n in FIELDS else n) for n in columns],
        "visits": [[_visit_cell(n, visit.get(n), tz) for n in columns] for visit in visits],
        "has_visits": "visits" in payload,
    }


def _rows(rows: list[hub_pull.SignalRow]) -> list[dict[str, Any]]:
    return [
        {
            "uid": row.uid,
            "created_at": row.created_at,
            "site": row.site_name,
            "rule": rule_title(row.rule),
            "reason": str(row.payload.get("reason", "")),
            "status": row.status,
            "delivered_by": row.delivered_by,
        }
        for row in rows
    ]


def _filters(params: Any) -> tuple[dict[str, str], dict[str, str], dict[str, date | None]]:
    form = {name: (params.get(name) or "").strip()[:64] for name in FILTERS}
    if form["status"] not in hub_pull.STATUSES:
        form["status"] = ""
    if form["rule"] not in RULES:
        form["rule"] = ""
    dates, errors = form_dates(form)
    return form, errors, dates


# --- pages -------------------------------------------------------------------------------


class SignalPagesController(Controller):
    """The signals forwarded to the hub; htmx asks for the results or the next rows only."""

    path = "/signals"

    @get("/", name="admin:signals", opt=VIEW)
    async def signals(self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep) -> Template:
        params = request.query_params
        form, errors, dates = _filters(params)
        before = form_int(params.get("before"))
        query = SignalQuery(
            site=form["site"] or None,
            rule=form["rule"] or None,
            date_from=dates["from"],
            date_to=dates["to"],
            statuses=(form["status"],) if form["status"] else (),
            before=before,
            newest_first=True,
            limit=PAGE_SIZE,
        )
        page = None
        if not errors:
            try:
                page = await hub_pull.list_signals(
                    ctx.db, actor, query, now=ctx.clock.now(), tz=ctx.settings.tz
                )
            except PullInvalid as invalid:
                errors[invalid.field] = render_error_message(invalid.message, invalid.params)
        kept = {k: v for k, v in form.items() if v}
        context = {
            "form": form,
            "kept": kept,
            "errors": errors,
            "rows": _rows(page.rows) if page else [],
            "next_before": page.next_cursor if page else None,
            "is_next_page": before is not None,
            "sites": await hub_pull.signal_sites(ctx.db, actor),
            "rule_choices": sorted(
                ((code, rule_title(code)) for code in hub_pull.rule_choices()),
                key=lambda choice: choice[1].casefold(),
            ),
            "statuses": hub_pull.STATUSES,
            "status_labels": STATUS_LABELS,
            "delivered_by_labels": DELIVERED_BY_LABELS,
            "tz": ctx.settings.tz,
            "time_format": TIME_FORMAT,
        }
        status = HTTP_400_BAD_REQUEST if errors else 200
        return page_or_part(
            request, "admin/signals.html", "admin/signals_results.html", context,
            status=status, more=("signal-more", "admin/signals_rows.html"),
        )  # fmt: skip

    @get("/{uid:str}", name="admin:signal", opt=VIEW)
    async def signal(self, ctx: ContextDep, actor: ActorDep, uid: FromPath[str]) -> Template:
        detail: SignalDetail = await hub_pull.get_signal(ctx.db, actor, uid, now=ctx.clock.now())
        tz = ctx.settings.tz
        context = {
            "signal": detail,
            "payload": payload_view(detail.payload, tz),
            "rule": rule_title(detail.rule),
            "status_labels": STATUS_LABELS,
            "delivered_by_labels": DELIVERED_BY_LABELS,
            "tz": tz,
            "time_format": TIME_FORMAT,
        }
        return Template(template_name="admin/signals_detail.html", context=context)


ROUTES = [SignalPagesController]
