"""Subject requests (AVG): find a person's, boat's or car's visits and flags on one's own sites,
give them a subject-access report (a printable page and JSON), and erase them early.

The pages only translate and lay out; nightreg.services.subjects scopes, checks and audits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Response, Template
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
)

from admin.api.common import invalid
from admin.downloads import JSON, download
from admin.flags.pages import STATUS_LABELS as FLAG_STATUS_LABELS
from admin.flags.pages import reason_text, rule_title
from admin.forms import error_messages
from admin.register.pages import FIELD_LABELS, SOURCE_LABELS, TIME_FORMAT, display
from admin.web import ActorDep, ContextDep
from nightreg import i18n
from nightreg.clock import local_day
from nightreg.i18n import N_
from nightreg.models import Flag, Observation, Visit
from nightreg.rules import RULES
from nightreg.services import corrections, subjects
from nightreg.services.observations import INDICATORS
from nightreg.services.subjects import Blockers, Erased, EraseRefused, Found, SubjectInvalid
from nightreg.validation import FieldError
from nightreg.vocabulary import KIND_LABELS
from nightreg.web import form_choices, form_text

FormBody = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

MANAGE = {"permission": subjects.PERMISSION}
# Longer than the service's limits, so that it reports the length rather than a silent cut.
_QUERY_LIMIT = 1000
_REASON_LIMIT = 5000

# The fields a report shows of every visit before the kind's own (FIELD_LABELS has those).
META_LABELS = {
    "reference": N_("Reference"),
    "site": N_("Site"),
    "kind": N_("Kind"),
    "source": N_("Entered through"),
    "subject_key": N_("Subject key"),
    "created_at": N_("Entered"),
    "updated_at": N_("Last changed"),
}
OTHER_LABELS = {
    "id": N_("Number"),
    "point_id": N_("Check-in point (number)"),
}
COUNT_LABELS = {
    "visits": N_("Visits"),
    "notes": N_("Staff notes"),
    "observations": N_("Observations"),
    "sightings": N_("Gate camera sightings"),
    "flags": N_("Flags"),
    "signals": N_("Signals to the hub"),
}


def _query(request: Request[Any, Any, Any]) -> str:
    return (request.query_params.get("q") or "")[:_QUERY_LIMIT]


def _value(name: str, value: Any, tz: ZoneInfo) -> str:
    if isinstance(value, datetime):
        return i18n.local_datetime(value, tz, TIME_FORMAT)
    if name == "kind":
        return i18n.gettext(KIND_LABELS[value]) if value in KIND_LABELS else str(value)
    if name == "source":
        return i18n.gettext(SOURCE_LABELS[value]) if value in SOURCE_LABELS else str(value)
    return display(name, value, tz)


def visit_rows(visit: Visit) -> list[tuple[str, str]]:
    """Every field the report gives of a visit, labelled, in the site's time and language."""
    tz = ZoneInfo(visit.site.timezone)
    rows = [
        (i18n.gettext(META_LABELS["reference"]), visit.reference),
        (i18n.gettext(META_LABELS["site"]), visit.site.name),
    ]
    rows += [
        (i18n.gettext(META_LABELS[name]), _value(name, getattr(visit, name), tz))
        for name in ("kind", "source", "subject_key", "created_at", "updated_at")
    ]
    shown = {"reference", "site_id", *META_LABELS}
    for name in corrections.fields_for(visit.kind):
        rows.append((i18n.gettext(FIELD_LABELS[name]), _value(name, getattr(visit, name), tz)))
        shown.add(name)
    # Whatever else is stored (a field of another kind, the point): shown when it holds a value.
    for name in subjects.VISIT_FIELDS:
        value = getattr(visit, name)
        if name in shown or value is None or value == "":
            continue
        label = FIELD_LABELS.get(name) or OTHER_LABELS.get(name) or name
        rows.append((i18n.gettext(label), _value(name, value, tz)))
    return rows


def flag_row(flag: Flag, tz: ZoneInfo, evidence: list[int]) -> dict[str, Any]:
    rule = RULES.get(flag.rule)
    return {
        "id": flag.id,
        "title": rule_title(flag, rule),
        "reason": reason_text(flag, rule),
        "status": i18n.gettext(FLAG_STATUS_LABELS.get(flag.status, flag.status)),
        "created_at": i18n.local_datetime(flag.created_at, tz, TIME_FORMAT),
        "reviewed_at": i18n.local_datetime(flag.reviewed_at, tz, TIME_FORMAT),
        "window": (
            i18n.local_datetime(flag.window_start, tz, TIME_FORMAT),
            i18n.local_datetime(flag.window_end, tz, TIME_FORMAT),
        ),
        "evidence": evidence,
    }


def observation_row(observation: Observation, tz: ZoneInfo) -> dict[str, Any]:
    codes = observation.indicators if isinstance(observation.indicators, list) else []
    labels = [
        i18n.gettext(INDICATORS[c].label) if c in INDICATORS else str(c)
        for c in (codes if isinstance(codes, list) else [])
    ]
    return {
        "observed_at": i18n.local_datetime(observation.observed_at, tz, TIME_FORMAT),
        "location": observation.location,
        "indicators": labels,
        "text": observation.text,
    }


def _groups(found: Found) -> list[dict[str, Any]]:
    """The results by subject key, ready for the page (times in each site's zone)."""
    zones = {s.id: ZoneInfo(s.timezone) for s in found.sites}
    return [
        {
            "key": group.subject_key,
            "visits": group.visits,
            "flags": [
                flag_row(f, zones[f.site_id], found.evidence.get(f.id, [])) for f in group.flags
            ],
        }
        for group in found.groups
    ]


def _find_page(
    q: str,
    found: Found | None = None,
    errors: Mapping[str, str] | None = None,
    *,
    status_code: int = 200,
) -> Template:
    return Template(
        template_name="admin/subjects.html",
        context={
            "q": q,
            "found": found,
            "groups": _groups(found) if found else [],
            "errors": dict(errors or {}),
            "kind_labels": KIND_LABELS,
            "time_format": TIME_FORMAT,
            "max_query": subjects.MAX_QUERY,
            "max_visits": subjects.MAX_VISITS,
        },
        status_code=status_code,
    )


def _erase_page(
    q: str,
    *,
    found: Found | None = None,
    blockers: Blockers | None = None,
    reason: str = "",
    errors: Mapping[str, str] | None = None,
    erased: Erased | None = None,
    status_code: int = 200,
) -> Template:
    can_erase = bool(found and found.visits and not found.truncated and not blockers)
    return Template(
        template_name="admin/subject_erase.html",
        context={
            "q": q,
            "found": found,
            "groups": _groups(found) if found else [],
            "blockers": blockers,
            "rule_titles": {
                flag_id: i18n.gettext(RULES[rule].title) if rule in RULES else rule
                for flag_id, rule in (blockers.flags if blockers else ())
            },
            "reason": reason,
            "errors": dict(errors or {}),
            "erased": erased,
            "count_labels": COUNT_LABELS,
            "can_erase": can_erase,
            "kind_labels": KIND_LABELS,
            "time_format": TIME_FORMAT,
            "max_reason": subjects.MAX_REASON,
            "max_visits": subjects.MAX_VISITS,
        },
        status_code=status_code,
    )


def _bad_query(q: str, bad: SubjectInvalid) -> Template:
    """The search form again, with why this query cannot be used."""
    return _find_page(q, errors=error_messages(bad.errors), status_code=HTTP_400_BAD_REQUEST)


class SubjectController(Controller):
    """Staff with subject rights on a site: find, report, erase; only on their own sites."""

    path = "/subjects"

    @get("/", name="admin:subjects", opt=MANAGE)
    async def find(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Template:
        """The search form; with a query, every visit and flag it finds, by subject."""
        q = _query(request)
        if not q.strip():
            return _find_page("")
        try:
            found = await subjects.find(ctx.db, actor, q, now=ctx.clock.now())
        except SubjectInvalid as bad:
            return _bad_query(q, bad)
        return _find_page(q, found)

    @get("/report", name="admin:subject-report", opt=MANAGE)
    async def report_page(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Template:
        """The subject-access report to print (or save as PDF) and hand over."""
        q = _query(request)
        try:
            rep = await subjects.report(
                ctx.db, ctx.settings, actor, q, now=ctx.clock.now(), fmt="page"
            )
        except SubjectInvalid as bad:
            return _bad_query(q, bad)
        found = rep.found
        zones = {s.id: ZoneInfo(s.timezone) for s in found.sites}
        visits = [
            {
                "visit": v,
                "rows": visit_rows(v),
                "notes": [
                    (i18n.local_datetime(n.at, zones[v.site_id], TIME_FORMAT), n.text)
                    for n in rep.notes.get(v.id, [])
                ],
                "observations": [
                    observation_row(o, zones[v.site_id]) for o in rep.observations.get(v.id, [])
                ],
                "ais": [
                    (i18n.local_datetime(m.at, zones[v.site_id], TIME_FORMAT), m.direction)
                    for m in rep.ais.get(v.id, [])
                ],
            }
            for v in found.visits
        ]
        return Template(
            template_name="admin/subject_report.html",
            context={
                "q": q,
                "rep": rep,
                "found": found,
                "visits": visits,
                "flags": [
                    flag_row(f, zones[f.site_id], found.evidence.get(f.id, [])) for f in found.flags
                ],
                "references": {v.id: v.reference for v in found.visits},
                "tz": ctx.settings.tz,
                "time_format": TIME_FORMAT,
                "max_visits": subjects.MAX_VISITS,
            },
        )

    @get("/report.json", name="admin:subject-report-json", opt=MANAGE)
    async def report_json(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Response[Any]:
        """The same report as a JSON file; a bad query is a 422 with code `invalid`."""
        now = ctx.clock.now()
        try:
            rep = await subjects.report(
                ctx.db, ctx.settings, actor, _query(request), now=now, fmt="json"
            )
        except SubjectInvalid as bad:
            return invalid(error_messages(bad.errors))
        day = local_day(now, ctx.settings.tz).isoformat()
        return download(subjects.report_json(rep), f"subject-report-{day}.json", JSON, private=True)

    @get("/erase", name="admin:subject-erase-form", opt=MANAGE)
    async def erase_form(
        self, request: Request[Any, Any, Any], ctx: ContextDep, actor: ActorDep
    ) -> Template:
        """What an early erasure would delete, what stands in its way, and the reason field."""
        q = _query(request)
        try:
            found, blockers = await subjects.erase_preview(
                ctx.db, ctx.settings, actor, q, now=ctx.clock.now()
            )
        except SubjectInvalid as bad:
            return _bad_query(q, bad)
        return _erase_page(q, found=found, blockers=blockers)

    @post("/erase", name="admin:subject-erase", opt=MANAGE)
    async def erase(self, ctx: ContextDep, actor: ActorDep, data: FormBody) -> Template:
        """Erase the visits shown; refused (and why) by a hold, a flag, or a changed list."""
        q = form_text(data, "q", _QUERY_LIMIT)
        reason = form_text(data, "reason", _REASON_LIMIT)
        ids = form_choices(data, "visit", subjects.MAX_VISITS + 1)
        now = ctx.clock.now()
        try:
            erased = await subjects.erase(ctx.db, ctx.settings, actor, q, reason, ids, now=now)
        except SubjectInvalid as bad:
            errors = error_messages(bad.errors)
            if "q" in errors:
                return _find_page(q, errors=errors, status_code=HTTP_422_UNPROCESSABLE_ENTITY)
            # The list as it is now (audited as a search), with the message above it.
            found, blockers = await subjects.erase_preview(ctx.db, ctx.settings, actor, q, now=now)
            changed = bad.errors.get("visits") == FieldError(subjects.MSG_CHANGED)
            return _erase_page(
                q, found=found, blockers=blockers, reason=reason, errors=errors,
                status_code=HTTP_409_CONFLICT if changed else HTTP_422_UNPROCESSABLE_ENTITY,
            )  # fmt: skip
        except EraseRefused as refused:
            return _erase_page(
                q, found=refused.found, blockers=refused.blockers, reason=reason,
                status_code=HTTP_409_CONFLICT,
            )  # fmt: skip
        return _erase_page(q, erased=erased)


ROUTES = [SubjectController]
