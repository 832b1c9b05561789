"""The register pages: tonight, search, a visit (correct, check out, notes), walk-in, print."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_409_CONFLICT

from admin.forms import error_messages, form_dates, rerender
from admin.web import ActorDep, ContextDep, PathId, Slug
from nightreg import i18n, visit_status
from nightreg.context import AppContext
from nightreg.i18n import N_
from nightreg.models import Site, Visit
from nightreg.services import (
    audit,
    corrections,
    duplicates,
    police_print,
    register,
    register_search,
    rounds,
    tonight,
    users,
    walk_ins,
)
from nightreg.services.access import Actor, NotFound
from nightreg.services.ais import store as ais_store
from nightreg.services.corrections import EDITABLE_FIELDS
from nightreg.services.duplicates import DuplicateInvalid
from nightreg.services.presence import AlreadyPresent
from nightreg.services.register import QueryInvalid, VisitInvalid
from nightreg.services.register_search import RegisterQuery
from nightreg.services.sites import site_for
from nightreg.vocabulary import (
    ID_DOCUMENT_LABELS,
    ID_DOCUMENT_TYPES,
    KIND_LABELS,
    SOURCE_LABELS,
    SOURCE_SHORT_LABELS,
    SOURCES,
    VEHICLE_TYPE_LABELS,
    VEHICLE_TYPES,
    VESSEL_TYPE_LABELS,
    VESSEL_TYPES,
)
from nightreg.vocabulary import VISIT_STATUS_LABELS as STATUS_LABELS
from nightreg.web import form_date, page_or_part, see_other

FormBody = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

VIEW = {"permission": "register.view"}
EDIT = {"permission": "register.edit"}
EXPORT = {"permission": "register.export"}

FIELD_LABELS = {
    "guest_name": N_("Name"),
    "residence": N_("Place of residence"),
    "country": N_("Country"),
    "persons": N_("Persons"),
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "id_document_type": N_("ID document type"),
    "arrived_at": N_("Arrival"),
    "expected_departure_at": N_("Expected departure"),
    "departed_at": N_("Departure"),
    "notes": N_("Visitor's notes"),
    "vessel_name": N_("Name of the boat"),
    "registration": N_("Registration"),
    "mmsi": N_("MMSI"),
    "vessel_type": N_("Type of boat"),
    "length_m": N_("Length (m)"),
    "flag": N_("Flag"),
    "berth": N_("Berth"),
    "last_port": N_("Coming from"),
    "next_port": N_("Going to"),
    "plate": N_("Licence plate"),
    "plate_country": N_("Country of the plate"),
    "vehicle_type": N_("Type of vehicle"),
    "company": N_("Company"),
    "unit": N_("Unit"),
}
ACTION_LABELS = {
    "visit_created": N_("Entered"),
    "visit_corrected": N_("Corrected"),
    "visit_checked_out": N_("Checked out"),
    "visit_extended": N_("Stay extended by the visitor"),
    "visit_note_added": N_("Note added"),
    "visit_viewed": N_("Viewed"),
    "round_marked_seen": N_("Seen on the night round"),
    "round_marked_missing": N_("Not there on the night round"),
    "visit_merged": N_("Merged with visit %(ref)s"),
    "duplicate_kept": N_("Kept as a visit of its own"),
}
SOURCE_SHORT = SOURCE_SHORT_LABELS
SORT_LABELS = {
    "arrived_desc": N_("Newest arrival first"),
    "arrived_asc": N_("Oldest arrival first"),
    "name": N_("Name"),
}
_CHOICE_LABELS: dict[str, dict[str, str]] = {
    "vessel_type": VESSEL_TYPE_LABELS,
    "vehicle_type": VEHICLE_TYPE_LABELS,
    "id_document_type": ID_DOCUMENT_LABELS,
}
_COUNTRY_FIELDS = frozenset({"country", "flag", "plate_country"})
# Dates and times on staff pages: unambiguous in every language, and short enough for tables.
TIME_FORMAT = "yyyy-MM-dd HH:mm"
MSG_PERIOD = N_("Please enter dates like 2026-07-14, the first not after the second.")


# --- shared helpers ----------------------------------------------------------------------


def _form(data: Mapping[str, Any]) -> dict[str, str]:
    """A submitted form as plain strings; nothing but text, and not too many keys."""
    return {k: v for k, v in list(data.items())[:100] if isinstance(k, str) and isinstance(v, str)}


def display(name: str, value: Any, tz: ZoneInfo) -> str:
    """A field's value as a person reads it: local time, country name, label of a choice."""
    if value is None or value == "":
        return ""
    if name in ("arrived_at", "expected_departure_at", "departed_at"):
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        return i18n.local_datetime(value, tz, TIME_FORMAT)
    if name in _COUNTRY_FIELDS:
        return f"{i18n.country_name(str(value))} ({value})"
    if name in _CHOICE_LABELS and value in _CHOICE_LABELS[name]:
        return i18n.gettext(_CHOICE_LABELS[name][value])
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def _field_rows(visit: Visit, tz: ZoneInfo) -> list[tuple[str, str]]:
    return [
        (i18n.gettext(FIELD_LABELS[name]), display(name, getattr(visit, name), tz))
        for name in corrections.fields_for(visit.kind)
    ]


def _history(
    events: list[audit.ShownEvent], tz: ZoneInfo, names: dict[str, str]
) -> list[dict[str, Any]]:
    """Audit events as the visit page tells them: who, when, what, why, old -> new."""
    entries = []
    for event in events:
        try:
            details = json.loads(event.details)
        except ValueError:
            details = {}
        before = details.get("before") or {}
        after = details.get("after") or {}
        changes = [
            (
                i18n.gettext(FIELD_LABELS[name]) if name in FIELD_LABELS else str(name),
                display(name, before.get(name), tz),
                display(name, after.get(name), tz),
            )
            for name in after
        ]
        action = ACTION_LABELS.get(event.action)
        label = i18n.gettext(action) if action else event.action
        if event.action == duplicates.MERGED:
            label = label % {"ref": details.get("merged_reference", "")}
        entries.append(
            {
                "at": event.at,
                "code": event.action,
                "stamp": int(event.at.timestamp()),
                "actor": names.get(event.actor, event.actor),
                "action": label,
                "reason": details.get("reason", ""),
                "changes": changes,
            }
        )
    return entries


def _saved(entries: list[dict[str, Any]], saved: str) -> dict[str, Any] | None:
    """What the save just made did, for the message at the top of the visit page.

    `saved` is the time of the save (seconds), and the latest correction since then is this
    save's; "nothing" means the form held no change.
    """
    if saved == "nothing":
        return {"changes": []}
    if not saved.isdigit():
        return None
    since = int(saved)
    for entry in reversed(entries):
        if entry["code"] == "visit_corrected" and entry["stamp"] >= since:
            return {"changes": entry["changes"]}
    return {"changes": []}


def _base_context(site: Site) -> dict[str, Any]:
    return {
        "site": site,
        "tz": site.timezone,
        "time_format": TIME_FORMAT,
        "kind_labels": KIND_LABELS,
        "status_labels": STATUS_LABELS,
        "visit_status": visit_status.status,
        "source_labels": SOURCE_LABELS,
        "source_short": SOURCE_SHORT,
    }


def _local_input(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def _default_times(site: Site, kind: str, now: datetime) -> dict[str, str]:
    """Arrival now; a boat or overnight guest usually leaves the next day before noon, a
    vehicle at a business park the same day (as the kiosk proposes)."""
    tz = ZoneInfo(site.timezone)
    local_now = now.astimezone(tz)
    if kind == "vehicle" and site.kind == "business_park":
        departure = local_now + timedelta(hours=4)
    else:
        departure = datetime.combine(local_now.date() + timedelta(days=1), time(12), tz)
    return {
        "arrived_at": _local_input(local_now, tz),
        "expected_departure_at": _local_input(departure, tz),
    }


# Tonight's lists of what a sensor saw that the register lacks: the source, the kind of visit
# it becomes and the identifier it fills in (checked again on submit, like everything typed).
_FOUND = {
    "ais": ("vessel", "mmsi", re.compile(r"[0-9]{9}")),
    "camera": ("vehicle", "plate", re.compile(r"[^\x00-\x1f\x7f]{1,16}")),
}
_LOCAL_INPUT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")


def _found_by_sensor(params: Mapping[str, str], kind: str) -> dict[str, str]:
    """A boat from "on AIS, not in the register" or a vehicle from "on camera, not in the
    register": its identifier and when it came in."""
    found = params.get("found") or ""
    if found not in _FOUND or _FOUND[found][0] != kind:
        return {}
    _kind, field, pattern = _FOUND[found]
    values = {"found": found}
    identifier = (params.get(field) or "").strip()
    if pattern.fullmatch(identifier):
        values[field] = identifier
    arrived = (params.get("arrived_at") or "")[:16]
    if _LOCAL_INPUT.fullmatch(arrived):
        values["arrived_at"] = arrived
    return values


def _choices(labels: Mapping[str, str], codes: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(code, labels[code]) for code in codes]


def _form_context(site: Site, kind: str) -> dict[str, Any]:
    return {
        **_base_context(site),
        "kind": kind,
        "field_labels": FIELD_LABELS,
        "vessel_types": _choices(VESSEL_TYPE_LABELS, VESSEL_TYPES),
        "vehicle_types": _choices(VEHICLE_TYPE_LABELS, VEHICLE_TYPES),
        "id_document_types": _choices(ID_DOCUMENT_LABELS, ID_DOCUMENT_TYPES),
    }


# --- pages of a site ---------------------------------------------------------------------


class SiteRegisterController(Controller):
    """Tonight, the register, a walk-in and the police print of one site."""

    path = "/sites/{slug:str}"

    @get("/tonight", name="admin:tonight", opt=VIEW)
    async def tonight(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        """Who is here now; the board asks again every 15 seconds (htmx) and gets the partial."""
        site = await site_for(ctx.db, actor, slug, "register.view")
        now = ctx.clock.now()
        board = await tonight.tonight(ctx.db, actor, site.id, now=now)
        context = {
            **_base_context(site),
            "board": board,
            "now": now,
            "can_edit": actor.can("register.edit", site.id),
            "can_print": actor.can("register.export", site.id),
        }
        return page_or_part(request, "admin/tonight.html", "admin/_tonight_board.html", context)

    @get("/register", name="admin:register", opt=VIEW)
    async def register_page(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        """Search and filter the register; htmx asks for the results or the next rows only."""
        site = await site_for(ctx.db, actor, slug, "register.view")
        params = request.query_params
        form = {
            name: (params.get(name) or "").strip()[:100]
            for name in ("q", "from", "to", "kind", "status", "source", "sort", "duplicates")
        }
        form["duplicates"] = "1" if form["duplicates"] == "1" else ""
        dates, errors = form_dates(form)
        query = RegisterQuery(
            q=form["q"],
            date_from=dates["from"],
            date_to=dates["to"],
            kind=form["kind"] if form["kind"] in site.visit_kinds else None,
            status=form["status"] if form["status"] in visit_status.STATUSES else None,
            source=form["source"] if form["source"] in SOURCES else None,
            duplicates=form["duplicates"] == "1",
            sort=form["sort"] if form["sort"] in register_search.SORTS else "arrived_desc",
            cursor=(params.get("cursor") or None),
        )
        page: register_search.RegisterPage | None = None
        if not errors:
            try:
                page = await register_search.search(
                    ctx.db, actor, site.id, query, now=ctx.clock.now()
                )
            except QueryInvalid as invalid:
                field = {"date_to": "to", "date_from": "from"}.get(invalid.field, invalid.field)
                errors[field] = i18n.gettext(
                    N_("The end date must not be before the start date.")
                    if field == "to"
                    else N_("This search cannot be shown; please start again.")
                )
        kept = {k: v for k, v in form.items() if v}
        context = {
            **_base_context(site),
            "form": form,
            "kept": kept,
            "errors": errors,
            "visits": page.visits if page else [],
            "marks": page.marks if page else {},
            "next_cursor": page.next_cursor if page else None,
            "now": ctx.clock.now(),
            "is_next_page": bool(query.cursor),
            "sort_labels": SORT_LABELS,
            "statuses": visit_status.STATUSES,
            "sources": SOURCES,
        }
        status = HTTP_400_BAD_REQUEST if errors else 200
        return page_or_part(
            request, "admin/register.html", "admin/_register_results.html", context,
            status=status, more=("register-more", "admin/_register_rows.html"),
        )  # fmt: skip

    @get("/walk-in", name="admin:walk-in", opt=EDIT)
    async def walk_in_form(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        """An empty walk-in form for the chosen kind, arrival set to now on the site's clock."""
        site = await site_for(ctx.db, actor, slug, "register.edit")
        kind = request.query_params.get("kind") or ""
        if kind not in site.visit_kinds:
            kind = site.visit_kinds[0]
        values = {
            **_default_times(site, kind, ctx.clock.now()),
            "persons": "1",
            "idempotency_key": secrets.token_urlsafe(18),
            **_found_by_sensor(request.query_params, kind),
        }
        context = {**_form_context(site, kind), "values": values, "errors": {}}
        return Template(template_name="admin/walk_in.html", context=context)

    @post("/walk-in", name="admin:walk-in-submit", opt=EDIT)
    async def walk_in(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug, data: FormBody
    ) -> Response[Any]:
        """Enter the walk-in; errors come back next to their fields with what was typed."""
        site = await site_for(ctx.db, actor, slug, "register.edit")
        form = _form(data)
        form.pop("_csrf_token", None)
        # "Add anyway": the member of staff has seen the visit already present and adds this.
        add_anyway = form.pop("add_anyway", "") == "1"
        kind = form.get("kind", "")
        if kind not in site.visit_kinds:
            kind = site.visit_kinds[0]
        said = form.pop("found", "")
        found = said if said in _FOUND else None
        try:
            visit = await walk_ins.create_visit(
                ctx.db, actor, site.id, form, now=ctx.clock.now(), source="staff",
                watchlist_key=ctx.settings.watchlist_key, allow_duplicate=add_anyway,
                found=found,
            )  # fmt: skip
        except VisitInvalid as invalid:
            context = {**_form_context(site, kind), "values": form}
            return rerender("admin/walk_in.html", context, invalid.errors)
        except AlreadyPresent as present:
            # The open visit, shown (and audited as seen) so that staff can decide.
            open_visit = await register.get_visit(
                ctx.db, actor, present.visit_id, now=ctx.clock.now()
            )
            context = {**_form_context(site, kind), "values": form, "present": open_visit}
            return rerender("admin/walk_in.html", context, {}, status_code=HTTP_409_CONFLICT)
        return see_other(request, f"/admin/visits/{visit.id}?new=1")

    @get("/print", name="admin:print", opt=EXPORT)
    async def print_view(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, slug: Slug
    ) -> Template:
        """The register for the police on A4: a period, or who is present now."""
        site = await site_for(ctx.db, actor, slug, "register.export")
        form = {
            name: (request.query_params.get(name) or "").strip()[:10] for name in ("from", "to")
        }
        try:
            date_from, date_to = form_date(form["from"]), form_date(form["to"])
            if date_from and date_to and date_from > date_to:
                raise ValueError(form["to"])
        except ValueError:
            context = {**_base_context(site), "form": form, "out": None}
            context["error"] = i18n.gettext(
                N_("Please enter two dates, the first not after the second.")
            )
            return Template(
                template_name="admin/print.html", context=context, status_code=HTTP_400_BAD_REQUEST
            )
        # One date alone is a period of one day.
        if date_from and not date_to:
            date_to = date_from
        elif date_to and not date_from:
            date_from = date_to
        out = await police_print.print_register(
            ctx.db, actor, site.id, date_from=date_from, date_to=date_to, now=ctx.clock.now()
        )
        kinds = {v.kind for v in out.visits}
        context = {
            **_base_context(site),
            "form": form,
            "out": out,
            "error": None,
            "show_vessel": "vessel" in kinds,
            "show_vehicle": "vehicle" in kinds,
            "show_unit": bool(kinds & {"stay", "vehicle"}) and site.kind == "business_park",
            "id_document_labels": ID_DOCUMENT_LABELS,
            "printed_by": actor.name,
        }
        return Template(template_name="admin/print.html", context=context)


# --- one visit ---------------------------------------------------------------------------


class VisitPagesController(Controller):
    """A visit: everything it holds, its history, and what staff may do with it."""

    path = "/visits/{id:int}"

    async def _page(
        self,
        ctx: AppContext,
        actor: Actor,
        visit_id: int,
        *,
        note_error: str | None = None,
        note_text: str = "",
        new: bool = False,
        saved: str = "",
    ) -> dict[str, Any]:
        now = ctx.clock.now()
        visit = await register.get_visit(ctx.db, actor, visit_id, now=now)
        tz = ZoneInfo(visit.site.timezone)
        history = await register.visit_history(ctx.db, actor, visit.id)
        notes = await register.visit_notes(ctx.db, actor, visit.id)
        marks = await duplicates.of_visit(ctx.db, actor, visit.id)
        names = await users.display_names(
            ctx.db, [e.actor for e in history] + [n.author for n in notes]
        )
        entries = _history(history, tz, names)
        return {
            **_base_context(visit.site),
            "visit": visit,
            "status": visit_status.status(visit, now),
            "rows": _field_rows(visit, tz),
            "history": entries,
            "saved": _saved(entries, saved),
            "notes": notes,
            "names": names,
            "can_edit": actor.can("register.edit", visit.site_id),
            "note_error": note_error,
            "note_text": note_text,
            "new": new,
            "missed_rounds": await rounds.missed_rounds(ctx.db, actor, visit.id),
            # Read after get_visit, which checked the actor's scope and audited the view.
            "ais_movements": await ais_store.visit_movements(ctx.db, visit.id),
            "marks": marks,
            "dup_errors": {},
            "dup_reason": "",
        }

    @get("/", name="admin:visit", opt=VIEW)
    async def show(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId
    ) -> Response[Any]:
        query = request.query_params
        try:
            context = await self._page(
                ctx, actor, id, new=query.get("new") == "1", saved=query.get("saved", "")
            )
        except NotFound:
            # A visit merged into another: its address leads there.
            survivor = await duplicates.survivor_of(ctx.db, actor, id)
            if survivor is None:
                raise
            return see_other(request, f"/admin/visits/{survivor}")
        flags = request.query_params
        context["done"] = (
            i18n.gettext(N_("The two visits are now one."))
            if flags.get("merged") == "1"
            else i18n.gettext(N_("Both visits stay, each counted."))
            if flags.get("kept") == "1"
            else None
        )
        return Template(template_name="admin/visit.html", context=context)

    @post("/merge", name="admin:visit-merge", opt=EDIT)
    async def merge(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId
    ) -> Response[Any]:
        """Merge this possible duplicate into the visit it doubles; on to the survivor."""
        try:
            survivor = await duplicates.merge(ctx.db, actor, id, now=ctx.clock.now())
        except DuplicateInvalid as invalid:
            return await self._unresolved(ctx, actor, id, invalid)
        return see_other(request, f"/admin/visits/{survivor.id}?merged=1")

    @post("/keep-both", name="admin:visit-keep-both", opt=EDIT)
    async def keep_both(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId, data: FormBody
    ) -> Response[Any]:
        """Keep this possible duplicate as a visit of its own, with a reason."""
        reason = data.get("reason", "") if isinstance(data.get("reason"), str) else ""
        try:
            await duplicates.keep_both(ctx.db, actor, id, reason, now=ctx.clock.now())
        except DuplicateInvalid as invalid:
            return await self._unresolved(ctx, actor, id, invalid, reason=reason)
        return see_other(request, f"/admin/visits/{id}?kept=1")

    async def _unresolved(
        self,
        ctx: AppContext,
        actor: Actor,
        visit_id: int,
        invalid: DuplicateInvalid,
        *,
        reason: str = "",
    ) -> Template:
        """The visit's page again with why the merge or keep-both was not done."""
        context = await self._page(ctx, actor, visit_id)
        context["dup_errors"] = error_messages(invalid.errors)
        context["dup_reason"] = reason[: duplicates.MAX_REASON_LENGTH * 2]
        status = HTTP_409_CONFLICT if "duplicate" in invalid.errors else 422
        return rerender("admin/visit.html", context, status_code=status)

    @get("/correct", name="admin:visit-correct", opt=EDIT)
    async def correct_form(self, ctx: ContextDep, actor: ActorDep, id: PathId) -> Template:
        visit = await self._editable(ctx, actor, id)
        tz = ZoneInfo(visit.site.timezone)
        context = {
            **_form_context(visit.site, visit.kind),
            "visit": visit,
            "values": corrections.visit_form_values(visit, tz),
            "errors": {},
            "other_errors": {},
        }
        return Template(template_name="admin/visit_correct.html", context=context)

    @post("/correct", name="admin:visit-correct-submit", opt=EDIT)
    async def correct(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId, data: FormBody
    ) -> Response[Any]:
        """Correct with a mandatory reason; errors next to the fields, what was typed kept."""
        form = _form(data)
        changes = {k: v for k, v in form.items() if k in EDITABLE_FIELDS}
        now = ctx.clock.now()
        try:
            corrected = await corrections.correct_visit(
                ctx.db, actor, id, changes, form.get("reason", ""), now=now
            )
        except VisitInvalid as invalid:
            visit = await self._editable(ctx, actor, id)
            errors = error_messages(invalid.errors)
            shown = set(corrections.fields_for(visit.kind)) | {"reason"}
            context = {
                **_form_context(visit.site, visit.kind),
                "visit": visit,
                "values": {**corrections.visit_form_values(visit, ZoneInfo(visit.site.timezone)),
                           **form},
                "errors": errors,
                "other_errors": {k: v for k, v in errors.items() if k not in shown},
            }  # fmt: skip
            return rerender("admin/visit_correct.html", context)
        # Nothing changed, nothing written: the page says so rather than "saved".
        saved = str(int(now.timestamp())) if corrected.updated_at == now else "nothing"
        return see_other(request, f"/admin/visits/{id}?saved={saved}")

    @post("/checkout", name="admin:visit-checkout", opt=EDIT)
    async def checkout(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId
    ) -> Response[Any]:
        try:
            await corrections.check_out_visit(ctx.db, actor, id, now=ctx.clock.now())
        except VisitInvalid as invalid:
            # Its arrival still lies ahead: it cannot have left yet.
            context = await self._page(ctx, actor, id)
            context["checkout_error"] = error_messages(invalid.errors).get("departed_at")
            return rerender("admin/visit.html", context)
        return see_other(request, f"/admin/visits/{id}")

    @post("/notes", name="admin:visit-note", opt=EDIT)
    async def add_note(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId, data: FormBody
    ) -> Response[Any]:
        text = data.get("text", "") if isinstance(data.get("text"), str) else ""
        try:
            await corrections.add_note(ctx.db, actor, id, text, now=ctx.clock.now())
        except VisitInvalid as invalid:
            context = await self._page(
                ctx,
                actor,
                id,
                note_error=error_messages(invalid.errors).get("text"),
                note_text=text[: corrections.MAX_NOTE_LENGTH * 2],
            )
            return rerender("admin/visit.html", context)
        return see_other(request, f"/admin/visits/{id}#notes")

    async def _editable(self, ctx: AppContext, actor: Actor, visit_id: int) -> Visit:
        """The visit for its correction form: seen (and audited) like the visit page."""
        visit = await register.get_visit(ctx.db, actor, visit_id, now=ctx.clock.now())
        # get_visit checks the view permission; the form is for those who may also edit.
        actor.require("register.edit", visit.site_id)
        return visit


ROUTES = [SiteRegisterController, VisitPagesController]
