"""Retention for the privacy officer and the admin: the policies in force, the next purge in
advance, the receipts of past purges, and a site's own periods.

Nothing here names a person: the pages show periods, counts and dates. Reading the preview is
audited all the same (counts only), so that the trail shows who looked ahead and when.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from babel.dates import format_date
from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from admin.forms import error_message, error_messages
from admin.web import ActorDep, ContextDep, PathId, Slug
from nightreg import i18n
from nightreg.clock import local_day
from nightreg.context import AppContext
from nightreg.i18n import N_
from nightreg.jobs import next_run
from nightreg.services import audit, retention
from nightreg.services import sites as site_service
from nightreg.services.access import Actor, NotFound
from nightreg.services.retention import CATEGORY_LABELS, Defaults, Policy, PolicyInvalid
from nightreg.settings import Settings
from nightreg.web import MSG_DATE, form_date, form_text, see_other

FormBody = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

VIEW = {"permission": retention.VIEW}
MANAGE = {"permission": retention.MANAGE}
TIME_FORMAT = "yyyy-MM-dd HH:mm"

# The preview's table by date lists days up to this many, months beyond.
MAX_DATE_ROWS = 31
# The categories whose due rows belong to a site and carry their own dates.
SITE_CATEGORIES = (
    "flags_open", "flags_dismissed", "flags_forwarded", "visits", "observations", "sightings",
)  # fmt: skip
# What the receipt's "oldest date kept" names.
OLDEST_LABELS = {
    "visits": N_("Oldest visit (arrival)"),
    "flags": N_("Oldest flag (raised)"),
    "observations": N_("Oldest observation"),
    "sightings": N_("Oldest gate camera sighting"),
    "audit_events": N_("Oldest audit event"),
    "aggregates": N_("Oldest aggregate (day)"),
}
FIELD_LABELS = {
    "visit_days": N_("Visits: days after departure"),
    "open_flag_days": N_("Open and watched flags: most days after they were raised"),
    "dismissed_flag_days": N_("Dismissed flags: days after the review"),
}

MSG_CHANGED = N_("The retention of %(site)s has been changed.")
MSG_AT_RANGE = N_("Please choose today or a later day, at most ten years ahead.")
MSG_CHECK = N_("Please check the fields marked below.")


# --- the receipt ----------------------------------------------------------------------------


def _receipt_view(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """A receipt as the pages show it: counts in the order of the purge, the total."""
    deleted = receipt.get("deleted") or {}
    counts = [(c, int(deleted.get(c) or 0)) for c in retention.CATEGORIES]
    oldest = receipt.get("oldest_kept") or {}
    return {
        "id": receipt["id"],
        "at": receipt["at"],
        "actor": receipt.get("actor", ""),
        "counts": counts,
        "deleted": dict(counts),
        "total": sum(n for _c, n in counts),
        "aggregated_visits": int(receipt.get("aggregated_visits") or 0),
        "oldest": [(key, oldest[key]) for key in OLDEST_LABELS if oldest.get(key)],
        "oldest_kept": {key: str(oldest[key]) for key in OLDEST_LABELS if oldest.get(key)},
        "finished": bool(receipt.get("finished", True)),
        "anchor": receipt.get("audit_anchor"),
        # The signed checkpoint of the audit chain the purge left: printed with the receipt,
        # it is a copy out of the database's reach (`nightreg audit verify --checkpoint`).
        "checkpoint": (
            json.dumps(receipt["checkpoint"], sort_keys=True, separators=(",", ":"))
            if receipt.get("checkpoint")
            else ""
        ),
        "details_erased": int(receipt.get("audit_details_erased") or 0),
    }


# --- the preview ----------------------------------------------------------------------------


@dataclass
class DateRow:
    label: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _month_label(day: date) -> str:
    return format_date(day, "LLLL y", locale=i18n.get_locale())


def _date_rows(result: retention.Preview) -> tuple[list[DateRow], bool]:
    """The due rows by the day their period began, or by month when there are many days."""
    per_day: dict[date, dict[str, int]] = {}
    for entry in result.categories:
        if entry.category not in SITE_CATEGORIES:
            continue
        for day, count in entry.by_date:
            cell = per_day.setdefault(day, {})
            cell[entry.category] = cell.get(entry.category, 0) + count
    if len(per_day) <= MAX_DATE_ROWS:
        return [DateRow(day.isoformat(), counts) for day, counts in sorted(per_day.items())], False
    months: dict[date, dict[str, int]] = {}
    for day, counts in per_day.items():
        cell = months.setdefault(day.replace(day=1), {})
        for category, count in counts.items():
            cell[category] = cell.get(category, 0) + count
    return [DateRow(_month_label(m), counts) for m, counts in sorted(months.items())], True


def _site_rows(result: retention.Preview, pols: Sequence[Policy]) -> list[dict[str, Any]]:
    """The sites with anything due, by name, with their counts per category."""
    rows = []
    for policy in pols:
        counts = {
            e.category: e.by_site.get(policy.site_id, 0)
            for e in result.categories
            if e.category in SITE_CATEGORIES
        }
        if any(counts.values()):
            rows.append({"policy": policy, "counts": counts, "total": sum(counts.values())})
    return rows


def _run_on(settings: Settings, day: date, now: datetime) -> datetime:
    """The purge's run on `day` (the first at or after that day's start, never before now)."""
    start = max(datetime.combine(day, time(0), tzinfo=settings.tz), now)
    return next_run(settings.purge_cron, settings, start) or start


# --- the policies ---------------------------------------------------------------------------


def _policy_form(policy: Policy) -> dict[str, str]:
    return {
        name: str(getattr(policy, name)) if name in policy.own else ""
        for name in retention.SITE_FIELDS
    }


async def _policy_of(ctx: AppContext, actor: Actor, slug: str) -> Policy:
    """The site's policy in force; NotFound for a slug no site has."""
    site = await site_service.site_for(ctx.db, actor, slug[:100], retention.MANAGE)
    for policy in await retention.policies(ctx.db, ctx.settings):
        if policy.site_id == site.id:
            return policy
    raise NotFound(slug)


def _site_page(
    ctx: AppContext,
    policy: Policy,
    form: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
    *,
    status_code: int = 200,
) -> Template:
    return Template(
        template_name="admin/retention_site.html",
        context={
            "policy": policy,
            "form": form,
            "errors": dict(errors or {}),
            "defaults": Defaults.of(ctx.settings),
            "fields": FIELD_LABELS,
            "max_days": retention.MAX_DAYS,
            "msg_check": MSG_CHECK,
        },
        status_code=status_code,
    )


class RetentionController(Controller):
    """How long data lives: auditors read, admins change a site's own periods."""

    path = "/retention"

    @get("/", name="admin:retention", opt=VIEW)
    async def overview(self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep) -> Template:
        """The defaults with their reasons, each site's policy, the next purge, the receipts."""
        now = ctx.clock.now()
        pols = await retention.policies(ctx.db, ctx.settings)
        receipts = await retention.receipts(ctx.db, actor)
        changed = request.query_params.get("changed", "")[:100]
        changed_site = next((p for p in pols if p.slug == changed), None)
        return Template(
            template_name="admin/retention.html",
            context={
                "defaults": Defaults.of(ctx.settings),
                "sign_in_failure_days": retention.SIGN_IN_FAILURE_DAYS,
                "policies": pols,
                "next_run": next_run(ctx.settings.purge_cron, ctx.settings, now),
                "cron": ctx.settings.purge_cron,
                "receipts": [_receipt_view(r) for r in receipts],
                "can_manage": actor.can(retention.MANAGE),
                "changed": changed_site,
                "msg_changed": MSG_CHANGED,
                "tz": ctx.settings.tz,
                "time_format": TIME_FORMAT,
            },
        )

    @get("/preview", name="admin:retention-preview", opt=VIEW)
    async def preview(self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep) -> Template:
        """What the next run (or the run on a chosen day) will delete; deletes nothing."""
        now = ctx.clock.now()
        settings = ctx.settings
        tz = settings.tz
        today = local_day(now, tz)
        chosen = (request.query_params.get("at") or "").strip()[:32]
        errors: dict[str, str] = {}
        at = next_run(settings.purge_cron, settings, now) or now
        if chosen:
            try:
                day = form_date(chosen)
            except ValueError:
                day = None
                errors["at"] = error_message(MSG_DATE)
            if day is not None:
                if today <= day <= today + timedelta(days=retention.MAX_DAYS):
                    at = _run_on(settings, day, now)
                else:
                    errors["at"] = error_message(MSG_AT_RANGE)
        result = await retention.preview(ctx.db, settings, at=at)
        await audit.log(
            ctx.db, actor, "retention_previewed", at=now,
            details={
                "at": at.isoformat(),
                "total": result.total,
                "counts": {e.category: e.count for e in result.categories},
                "held_visits": result.held_visits,
            },
        )  # fmt: skip
        pols = await retention.policies(ctx.db, settings)
        date_rows, by_month = _date_rows(result)
        dated = [c for c in SITE_CATEGORIES if any(r.counts.get(c) for r in date_rows)]
        return Template(
            template_name="admin/retention_preview.html",
            context={
                "result": result,
                "labels": CATEGORY_LABELS,
                "site_rows": _site_rows(result, pols),
                "site_categories": SITE_CATEGORIES,
                "date_rows": date_rows,
                "dated": dated,
                "by_month": by_month,
                "chosen": chosen if errors or not chosen else local_day(at, tz).isoformat(),
                "today": today.isoformat(),
                "errors": errors,
                "tz": tz,
                "time_format": TIME_FORMAT,
            },
            status_code=HTTP_422_UNPROCESSABLE_ENTITY if errors else 200,
        )

    @get("/receipts/{id:int}", name="admin:retention-receipt", opt=VIEW)
    async def receipt(self, ctx: ContextDep, actor: ActorDep, id: PathId) -> Template:
        """One purge receipt as a table: what went, what was counted first, what is oldest."""
        found = await retention.receipt(ctx.db, actor, id)
        return Template(
            template_name="admin/retention_receipt.html",
            context={
                "receipt": _receipt_view(found),
                "labels": CATEGORY_LABELS,
                "oldest_labels": OLDEST_LABELS,
                "tz": ctx.settings.tz,
                "time_format": TIME_FORMAT,
            },
        )

    @get("/sites/{slug:str}", name="admin:retention-site", opt=MANAGE)
    async def site_form(self, ctx: ContextDep, actor: ActorDep, slug: Slug) -> Template:
        """A site's own periods; an empty field follows the installation's default."""
        policy = await _policy_of(ctx, actor, slug)
        return _site_page(ctx, policy, _policy_form(policy))

    @post("/sites/{slug:str}", name="admin:retention-site-save", opt=MANAGE)
    async def site_save(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug, data: FormBody
    ) -> Response[Any]:
        """Save the site's periods (audited by the service); errors come back by their field."""
        policy = await _policy_of(ctx, actor, slug)
        form = {name: form_text(data, name, 20).strip() for name in retention.SITE_FIELDS}
        try:
            days = retention.parse_days(form)
        except PolicyInvalid as invalid:
            return _site_page(
                ctx,
                policy,
                form,
                error_messages(invalid.errors),
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
            )
        await retention.set_policy(ctx.db, actor, policy.site_id, days, now=ctx.clock.now())
        # The kiosk's privacy notice names the site's visit days; its points are cached.
        site_service.forget_cached_points()
        return see_other(request, f"/admin/retention?changed={policy.slug}#site-{policy.slug}")


ROUTES = [RetentionController]
