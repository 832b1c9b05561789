"""The review queue pages: a site's flags, one flag with its evidence, and its review forms."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from babel.dates import format_timedelta
from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_422_UNPROCESSABLE_ENTITY

from admin.forms import error_message, error_messages, rerender
from admin.register.pages import TIME_FORMAT
from admin.web import ActorDep, ContextDep, PathId, Slug
from nightreg import i18n
from nightreg.context import AppContext
from nightreg.i18n import N_
from nightreg.models import Flag, Site
from nightreg.rules import RULES
from nightreg.rules.base import Rule
from nightreg.services import agreements, audit, flags, signals
from nightreg.services.access import Actor
from nightreg.services.flags import CursorInvalid, FlagDetail, FlagQuery, ReviewInvalid, Subject
from nightreg.services.sites import site_for
from nightreg.vocabulary import FLAG_STATUS_LABELS as STATUS_LABELS
from nightreg.vocabulary import KIND_LABELS
from nightreg.web import form_choices, form_int, form_text, page_or_part, see_other

FormBody = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
# A form as Litestar parses it: a repeated key (the queue's checkboxes) arrives as a list.
MultiFormBody = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

VIEW = {"permission": "flags.view"}
REVIEW = {"permission": "flags.review"}

# The queue's status filter: the default (open and watching), one status, or all of them.
STATUS_FILTERS = {
    "": N_("Open and watching"),
    **STATUS_LABELS,
    "all": N_("All"),
}
HISTORY_LABELS = {
    "flag_raised": N_("Raised"),
    "flag_grown": N_("New evidence"),
    "flag_reviewed": N_("Reviewed"),
}
ACTION_LABELS = {
    "dismiss": N_("Dismissed"),
    "watch": N_("Kept watching"),
    "forward": N_("Forwarded"),
}
MSG_CURSOR = N_("This list cannot be continued; please start again.")
MSG_WHOLE_SITE = N_("The whole site")
MSG_UNIT = N_("unit %(unit)s")
SIGNAL_STATUS_LABELS = {
    "pending": N_("Waiting to be delivered"),
    "delivered": N_("Delivered"),
    "failed": N_("Not delivered"),
}


# --- presentation ------------------------------------------------------------------------


def rule_title(flag: Flag, rule: Rule | None) -> str:
    return i18n.gettext(rule.title) if rule else flag.rule


def _translated(value: str) -> str:
    """A word, or a list of words ("boat low in the water, locks replaced"), translated."""
    whole = i18n.gettext(value)
    if whole != value or ", " not in value:
        return whole
    return ", ".join(i18n.gettext(part) for part in value.split(", "))


def reason_text(flag: Flag, rule: Rule | None) -> str:
    """The flag's sentence in the request's language; the stored English one if that fails."""
    if rule is None:
        return flag.reason
    params = flags.reason_params(flag)
    # Words among the parameters ("licence plate") are catalogue entries too; numbers,
    # units and names have no entry and stay as they are.
    shown = {k: _translated(v) if isinstance(v, str) and v else v for k, v in params.items()}
    try:
        return i18n.gettext(rule.reason_for(params)) % shown
    except (KeyError, TypeError, ValueError):
        return flag.reason


def _age(flag: Flag, now: datetime) -> str:
    """How long ago the flag was raised ("3 hours ago"), in the request's language."""
    return format_timedelta(flag.created_at - now, add_direction=True, locale=i18n.get_locale())


def subject_text(subject: Subject) -> str:
    """The subject as the queue names it: "Zeemeeuw · NL-123-AB", a plate, "unit B12"."""
    if subject.kind == "site":
        return i18n.gettext(MSG_WHOLE_SITE)
    if subject.unit:
        return i18n.gettext(MSG_UNIT) % {"unit": subject.unit}
    return " · ".join(part for part in (subject.name, subject.identifier) if part)


def _rows(page_rows: list[flags.FlagRow], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": row.flag.id,
            "subject": subject_text(row.subject),
            "subject_kind": row.subject.kind,
            "window_start": row.flag.window_start,
            "window_end": row.flag.window_end,
            "title": rule_title(row.flag, row.rule),
            "reason": reason_text(row.flag, row.rule),
            "score": row.flag.score,
            "status": row.flag.status,
            "age": _age(row.flag, now),
            "created_at": row.flag.created_at,
            "evidence": row.evidence,
        }
        for row in page_rows
    ]


def _history(events: list[audit.ShownEvent]) -> list[dict[str, Any]]:
    """Audit events as the flag page tells them: when, who, what, and the reason given."""
    entries = []
    for event in events:
        try:
            details = json.loads(event.details)
        except ValueError:
            details = {}
        if not isinstance(details, dict):
            details = {}
        try:
            visits = len(json.loads(event.object_ids))
        except (ValueError, TypeError):
            visits = 0
        label = HISTORY_LABELS.get(event.action)
        action = ACTION_LABELS.get(str(details.get("action", "")))
        entries.append(
            {
                "at": event.at,
                "actor": event.actor,
                "what": i18n.gettext(label) if label else event.action,
                "review": i18n.gettext(action) if action else "",
                "reason": details.get("reason") or "",
                "visits": visits if event.action in ("flag_raised", "flag_grown") else 0,
            }
        )
    return entries


def _detail_context(
    detail: FlagDetail,
    actor: Actor,
    *,
    errors: dict[str, str] | None = None,
    kept: dict[str, str] | None = None,
    reviewed: bool = False,
) -> dict[str, Any]:
    flag, rule = detail.flag, detail.rule
    return {
        "site": detail.site,
        "tz": detail.site.timezone,
        "time_format": TIME_FORMAT,
        "kind_labels": KIND_LABELS,
        "status_labels": STATUS_LABELS,
        "flag": flag,
        "title": rule_title(flag, rule),
        "reason": reason_text(flag, rule),
        "rationale": i18n.gettext(rule.rationale) if rule else "",
        "thresholds": [(i18n.gettext(label), value) for _n, label, value in detail.thresholds],
        "evidence": [
            {"visit": v, "link": actor.can("register.view", v.site_id), "tz": v.site.timezone}
            for v in detail.visits
        ],
        "other_sites": detail.other_sites,
        "evidence_withheld": flags.sees_restricted(actor),
        "history": _history(detail.history),
        "can_review": actor.can("flags.review", flag.site_id),
        "forwardable": bool(rule and rule.forwardable),
        "errors": errors or {},
        "kept": kept or {},
        "reviewed": reviewed,
        "review_action": ACTION_LABELS.get(_review_action(flag)),
        "signals": detail.signals,
        "signal_status_labels": SIGNAL_STATUS_LABELS,
    }


def _shown_visit(sent: dict[str, Any], tz: str) -> dict[str, Any]:
    """A visit of the draft as a person reads it: its times on the site's clock, not in UTC
    (the JSON below the table keeps them exactly as sent)."""
    shown = dict(sent)
    for name in ("arrived_at", "departed_at"):
        value = sent.get(name)
        if isinstance(value, str):
            try:
                at = datetime.fromisoformat(value)
            except ValueError:
                continue
            shown[name] = i18n.local_datetime(at, tz, TIME_FORMAT)
    return shown


def _preview_context(flag: Flag, draft: signals.Draft, actor: Actor) -> dict[str, Any]:
    """The forward page: the agreement, what is sent field by field, and the exact JSON."""
    rule = flags.rule_of(flag)
    sent = agreements.fields_of(draft.agreement) if draft.agreement else ()
    body = draft.body or {}
    visit_fields = [f for f in agreements.VISIT_FIELDS if f in sent]
    return {
        "flag": flag,
        "title": rule_title(flag, rule),
        "reason": reason_text(flag, rule),
        "agreement": draft.agreement,
        "can_read_agreement": actor.can("agreements.view"),
        "refused": error_message(draft.refused) if draft.refused else "",
        "sent": [i18n.gettext(agreements.FIELDS[f]) for f in sent],
        "not_sent": [
            i18n.gettext(label) for f, label in agreements.FIELDS.items() if f not in sent
        ],
        "body": body,
        "visit_columns": [(f, i18n.gettext(agreements.FIELDS[f])) for f in visit_fields],
        "visit_rows": [_shown_visit(v, draft.timezone) for v in body.get("visits", ())],
        "tz": draft.timezone,
        "body_json": json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True),
        "already": flag.status == "forwarded",
    }


def _review_action(flag: Flag) -> str:
    return {v: k for k, v in flags.ACTIONS.items()}.get(flag.status, "")


# --- pages -------------------------------------------------------------------------------


class SiteFlagsController(Controller):
    """A site's review queue, with filters; htmx asks for the rows alone."""

    path = "/sites/{slug:str}"

    @get("/flags", name="admin:flags", opt=VIEW)
    async def queue(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        site = await site_for(ctx.db, actor, slug, "flags.view")
        dismissed = form_int(request.query_params.get("dismissed"))
        return await _queue_page(request, ctx, actor, site, dismissed=dismissed)

    @post("/flags/dismiss", name="admin:flags-dismiss", opt=REVIEW)
    async def dismiss(
        self,
        request: HTMXRequest,
        ctx: ContextDep,
        actor: ActorDep,
        slug: Slug,
        data: MultiFormBody,
    ) -> Response[Any]:
        """Dismiss the chosen flags with one reason; each flag's review is audited."""
        site = await site_for(ctx.db, actor, slug, "flags.review")
        chosen = [int(v) for v in form_choices(data, "flag", flags.MAX_BULK + 1) if v.isdigit()]
        chosen = [i for i in chosen if len(str(i)) < 11]
        reason = form_text(data, "reason", flags.MAX_REVIEW_REASON * 2)
        try:
            done = await flags.dismiss_many(
                ctx.db, actor, site.id, chosen, reason, now=ctx.clock.now()
            )
        except ReviewInvalid as invalid:
            page = await _queue_page(
                request,
                ctx,
                actor,
                site,
                errors=error_messages(invalid.errors),
                bulk={"reason": reason, "chosen": chosen},
            )
            page.status_code = HTTP_422_UNPROCESSABLE_ENTITY
            return page
        back = {k: v for k in ("status", "rule", "subject") if (v := form_text(data, k, 40))}
        query = urlencode({**back, "dismissed": len(done.flag_ids)})
        return see_other(request, f"/admin/sites/{site.slug}/flags?{query}")


async def _queue_page(
    request: HTMXRequest,
    ctx: AppContext,
    actor: Actor,
    site: Site,
    *,
    dismissed: int | None = None,
    errors: dict[str, str] | None = None,
    bulk: dict[str, Any] | None = None,
) -> Template:
    """The queue as the filters in the query ask for it, with the bulk form's state."""
    params = request.query_params
    form = {name: (params.get(name) or "").strip()[:40] for name in ("status", "rule", "subject")}
    if form["status"] not in STATUS_FILTERS:
        form["status"] = ""
    rules = {
        code: rule
        for code, rule in RULES.items()
        if not rule.restricted or flags.sees_restricted(actor)
    }
    if form["rule"] not in rules:
        form["rule"] = ""
    if form["status"] == "all":
        statuses: tuple[str, ...] = flags.STATUSES
    elif form["status"]:
        statuses = (form["status"],)
    else:
        statuses = flags.DEFAULT_STATUSES
    cursor = (params.get("cursor") or "")[:200] or None
    query = FlagQuery(
        statuses=statuses,
        rule=form["rule"] or None,
        cursor=cursor,
        subject=form["subject"] or None,
    )
    now = ctx.clock.now()
    error = None
    try:
        page = await flags.list_flags(ctx.db, actor, site.id, query, now=now)
    except CursorInvalid:
        page, error = flags.FlagPage(rows=[], next_cursor=None), i18n.gettext(MSG_CURSOR)
    bulk = bulk or {}
    context = {
        "site": site,
        "tz": site.timezone,
        "time_format": TIME_FORMAT,
        "form": form,
        "kept": {k: v for k, v in form.items() if v},
        "rows": _rows(page.rows, now),
        "next_cursor": page.next_cursor,
        "is_next_page": bool(cursor),
        "error": error,
        "status_filters": STATUS_FILTERS,
        "status_labels": STATUS_LABELS,
        "rule_choices": sorted(
            ((code, i18n.gettext(rule.title)) for code, rule in rules.items()),
            key=lambda choice: choice[1].casefold(),
        ),
        "can_review": actor.can("flags.review", site.id),
        "max_reason": flags.MAX_REVIEW_REASON,
        "errors": errors or {},
        "bulk_reason": bulk.get("reason", ""),
        "chosen": set(bulk.get("chosen", ())),
        "dismissed": dismissed,
    }
    status = HTTP_400_BAD_REQUEST if error else 200
    return page_or_part(
        request, "admin/flags.html", "admin/_flag_rows.html", context, status=status
    )


class FlagPagesController(Controller):
    """One flag: why it was raised, the visits it rests on, its history, and its review."""

    path = "/flags/{id:int}"

    @get("/", name="admin:flag", opt=VIEW)
    async def show(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId
    ) -> Template:
        detail = await flags.get_flag(ctx.db, actor, id, now=ctx.clock.now())
        reviewed = request.query_params.get("reviewed") == "1"
        context = _detail_context(detail, actor, reviewed=reviewed)
        return Template(template_name="admin/flag.html", context=context)

    @get("/forward", name="admin:flag-forward", opt=REVIEW)
    async def forward(self, ctx: ContextDep, actor: ActorDep, id: PathId) -> Template:
        """Exactly what forwarding would send, under which agreement, before anyone confirms."""
        flag, draft = await flags.forward_preview(ctx.db, actor, id, now=ctx.clock.now())
        return Template(
            template_name="admin/flag_forward.html",
            context=_preview_context(flag, draft, actor),
        )

    @post("/review", name="admin:flag-review", opt=REVIEW)
    async def review(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId, data: FormBody
    ) -> Response[Any]:
        """Dismiss, keep watching or forward; a mistake comes back next to its field."""
        action = data.get("action") if isinstance(data.get("action"), str) else ""
        reason = data.get("reason") if isinstance(data.get("reason"), str) else ""
        action, reason = (action or "")[:20], (reason or "")[: flags.MAX_REVIEW_REASON * 2]
        try:
            await flags.review(ctx.db, actor, id, action, reason, now=ctx.clock.now())
        except ReviewInvalid as invalid:
            messages = error_messages(invalid.errors)
            # A reason's error belongs next to the reason field of the form that was sent.
            errors = {}
            if "reason" in messages:
                errors[action if action in flags.ACTIONS else "dismiss"] = messages["reason"]
            if "action" in messages:
                errors["action"] = messages["action"]
            detail = await flags.get_flag(ctx.db, actor, id, now=ctx.clock.now())
            context = _detail_context(
                detail, actor, errors=errors, kept={action: reason} if action else {}
            )
            return rerender("admin/flag.html", context)
        return see_other(request, f"/admin/flags/{id}?reviewed=1")


ROUTES = [SiteFlagsController, FlagPagesController]
