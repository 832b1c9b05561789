"""The JSON API v1: sites, the register, one visit, corrections, check-out and the CSV export;
the review of a flag (admin/api/flags.py) and the hub's pull (admin/api/signals.py).

The same services as the staff pages answer every call, so the API checks roles and sites and
writes the audit exactly as the pages do. A bearer token stands for the caller (see
nightreg.services.tokens); the staff guard in admin/web.py resolves it before any handler runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, Router, get, patch, post
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, Example, SecurityScheme
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_201_CREATED, HTTP_409_CONFLICT

from admin.api import flags as api_flags
from admin.api import sightings as api_sightings
from admin.api import signals as api_signals
from admin.api.common import QUERY_FIELDS, check_dates, invalid, row_id, validation_failed
from admin.api.common import doc as _doc
from admin.api.common import errors as _errors
from admin.downloads import export_stream
from admin.web import ActorDep, ContextDep, PathId, Slug
from nightreg.models import Site, Visit
from nightreg.services import corrections, register, register_search, sites, transfer, walk_ins
from nightreg.services.presence import AlreadyPresent
from nightreg.services.register import QueryInvalid, VisitInvalid
from nightreg.services.register_search import RegisterQuery
from nightreg.services.transfer import ExportInvalid
from nightreg.validation import FieldError

PATH = "/api/v1"
BEARER = "BearerToken"

VIEW = {"permission": "register.view"}
EDIT = {"permission": "register.edit"}
EXPORT = {"permission": "register.export"}

# Times a client sends may carry an offset; the register's forms read the site's wall clock.
_TIME_FIELDS = ("arrived_at", "expected_departure_at", "departed_at")

MSG_REPEATED_HOUR = (
    "This time lies in the hour that repeats when the clocks go back; "
    "the register reads that hour as its first occurrence. Send the first occurrence or a "
    "time outside that hour."
)
MSG_TIME_OFFSET = "Please send an ISO 8601 date and time, e.g. 2026-07-14T21:30:00+02:00."


Kind = Literal["vessel", "vehicle", "stay"]
Source = Literal["kiosk", "staff", "api", "round"]
Status = Literal["present", "departed", "overdue"]
Sort = Literal["arrived_desc", "arrived_asc", "name"]
# `from` is a keyword in Python: the handlers call the dates date_from and date_to.
FromDate = Annotated[
    date | None, QueryParameter(name="from", description="First local date (YYYY-MM-DD)")
]
ToDate = Annotated[
    date | None, QueryParameter(name="to", description="Last local date (YYYY-MM-DD), inclusive")
]
_Q_EXAMPLE = [Example(value="zeemeeuw")]
_STATUS_DOC = "overdue: present, and past the expected departure"


# --- the shapes ----------------------------------------------------------------------------


class SiteOut(msgspec.Struct):
    slug: Annotated[str, _doc("The site's name in URLs", "jachthaven-west")]
    name: str
    kind: Literal["marina", "business_park"]
    municipality: str
    timezone: Annotated[str, _doc("IANA time zone of the site's clock", "Europe/Amsterdam")]


class VisitOut(msgspec.Struct, kw_only=True):
    """One visit in the export's vocabulary (the same columns as register.csv), plus its id.

    Times are ISO 8601 with the offset of the site's time zone.
    """

    id: int
    reference: Annotated[str, _doc("What the visitor was shown", "K7QX-M2PD")]
    site: Annotated[str, _doc("The site's slug")]
    kind: Kind
    source: Source
    arrived_at: Annotated[str, _doc("Arrival", "2026-07-14T21:30:00+02:00")]
    expected_departure_at: Annotated[str, _doc("Expected departure", "2026-07-16T11:00:00+02:00")]
    departed_at: Annotated[str | None, _doc("Departure; null while present")]
    persons: int
    guest_name: str
    residence: Annotated[str, _doc("Place of residence", "Den Helder")]
    country: Annotated[str | None, _doc("ISO 3166-1 alpha-2", "NL")]
    id_document_type: Literal["passport", "id_card", "driving_licence", "other"] | None
    phone: str | None
    email: str | None
    berth: str | None
    vessel_name: str | None
    registration: str | None
    mmsi: str | None
    flag: str | None
    vessel_type: str | None
    length_m: Annotated[str | None, _doc("Length in metres as a decimal string", "9.5")]
    last_port: str | None
    next_port: str | None
    plate: str | None
    plate_country: str | None
    vehicle_type: str | None
    unit: str | None
    company: str | None
    notes: str | None


class VisitPage(msgspec.Struct):
    visits: list[VisitOut]
    next_cursor: Annotated[
        str | None, _doc("Pass as `cursor` for the next page; null on the last page")
    ]


# Fields a client sends as text, numbers or null: the kiosk's validation reads them all and
# answers with every problem at once (so none of them is required by the schema itself).
Text = str | None
TimeText = Annotated[
    str | None,
    _doc(
        "ISO 8601 with an offset, or a local time on the site's clock",
        "2026-07-14T21:30:00+02:00",
    ),
]


class VisitIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new visit (a walk-in through the API), checked with the kiosk's rules.

    Always needed: kind, guest_name, residence, expected_departure_at, persons. A vessel also
    needs vessel_name and a registration or an MMSI; a vehicle its plate. An arrival may lie up
    to 7 days back; without one the visit arrives now.
    """

    kind: Annotated[Text, _doc("vessel, vehicle or stay (as the site allows)", "vessel")] = None
    guest_name: Annotated[Text, _doc("The guest's name", "Jan de Vries")] = None
    residence: Annotated[Text, _doc("Place of residence", "Den Helder")] = None
    arrived_at: TimeText = None
    expected_departure_at: TimeText = None
    persons: Annotated[int | str | None, _doc("1 to 99", 2)] = None
    country: Annotated[Text, _doc("ISO 3166-1 alpha-2", "NL")] = None
    id_document_type: Annotated[Text, _doc("passport, id_card, driving_licence or other")] = None
    phone: Text = None
    email: Text = None
    berth: Text = None
    vessel_name: Annotated[Text, _doc("Name of the boat", "Zeemeeuw")] = None
    registration: Annotated[Text, _doc("Registration or IMO number", "NL-123-AB")] = None
    mmsi: Annotated[Text, _doc("9 digits", "244123456")] = None
    flag: Text = None
    vessel_type: Annotated[
        Text, _doc("sail, motor, rib, speedboat, fishing, commercial or other")
    ] = None
    length_m: Annotated[float | str | None, _doc("Metres, 1 to 100", 9.5)] = None
    last_port: Text = None
    next_port: Text = None
    plate: Annotated[Text, _doc("Licence plate", "AB-123-C")] = None
    plate_country: Text = None
    vehicle_type: Annotated[Text, _doc("car, van, truck, trailer, camper, motorcycle or other")] = (
        None
    )
    unit: Text = None
    company: Text = None
    notes: Text = None
    idempotency_key: Annotated[
        Text,
        _doc("Up to 64 characters: sending the same key again returns the first visit"),
    ] = None
    allow_duplicate: Annotated[
        bool,
        _doc(
            "Register the visit even though its boat (registration or MMSI), vehicle (plate) "
            "or guest is present at the site now; without it such a visit is refused with 409 "
            "`already_present` and the open visit's id",
            True,
        ),
    ] = False


class AlreadyPresentError(msgspec.Struct):
    """The visit's boat, vehicle or guest is present at the site now (409)."""

    code: Annotated[str, _doc("Always `already_present`", "already_present")]
    message: str
    visit_id: Annotated[int, _doc("The open visit of the same subject at this site", 1234)]
    field: str | None = None


class CorrectionIn(msgspec.Struct, forbid_unknown_fields=True):
    """Fields to change (export vocabulary; null empties a field) and why."""

    changes: Annotated[
        dict[str, str | int | float | None],
        _doc("Field name to new value", {"guest_name": "Jan de Vries", "persons": 3}),
    ] = msgspec.field(default_factory=dict)
    reason: Annotated[str, _doc("Required: why the entry is corrected", "typo in the name")] = ""


class CheckoutIn(msgspec.Struct, forbid_unknown_fields=True):
    departed_at: Annotated[
        Text,
        _doc(
            "When the visit ended (ISO 8601, or local on the site's clock); default now",
            "2026-07-15T09:30:00+02:00",
        ),
    ] = None


# --- errors --------------------------------------------------------------------------------


def _error_text(error: FieldError) -> str:
    # Messages are the English msgids: stable for programs, whatever the caller's language.
    return error.message % error.params if error.params else error.message


def _visit_invalid(_request: Request[Any, Any, Any], exc: VisitInvalid) -> Response[Any]:
    return invalid({name: _error_text(error) for name, error in exc.errors.items()})


def _already_present(
    _request: Request[Any, Any, Any], exc: AlreadyPresent
) -> Response[AlreadyPresentError]:
    return Response(
        AlreadyPresentError(
            code="already_present",
            message=(
                "This boat, vehicle or guest is present at the site already; send "
                '"allow_duplicate": true to register another visit anyway.'
            ),
            visit_id=exc.visit_id,
        ),
        status_code=HTTP_409_CONFLICT,
    )


def _query_invalid(_request: Request[Any, Any, Any], exc: QueryInvalid) -> Response[Any]:
    return invalid({QUERY_FIELDS.get(exc.field, exc.field): exc.message})


def _export_invalid(_request: Request[Any, Any, Any], exc: ExportInvalid) -> Response[Any]:
    return invalid({exc.field: exc.message})


# Litestar's own checks of parameters and bodies: a named field is 422, like ours.
_validation_failed = validation_failed(re.compile(r"unknown field `([^`]{1,64})`"))


# --- translating between the API and the services ------------------------------------------


def site_out(site: Site) -> SiteOut:
    return SiteOut(
        slug=site.slug,
        name=site.name,
        kind=site.kind,  # type: ignore[arg-type]  # the table's CHECK holds it to the Literal
        municipality=site.municipality,
        timezone=site.timezone,
    )


def visit_out(visit: Visit, site: Site) -> VisitOut:
    record = transfer.visit_record(visit, site.slug, ZoneInfo(site.timezone))
    return msgspec.convert({"id": visit.id, **record}, VisitOut)


def _local_time(name: str, text: str, tz: ZoneInfo) -> str:
    """A time with an offset as the site's wall-clock time that the forms read; else as sent."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return text  # not ISO 8601: the form's own check names the field
    if parsed.tzinfo is None:
        return text
    local = parsed.astimezone(tz)
    if local.fold:
        # The forms read a repeated hour as its first occurrence: an hour off, said rather
        # than stored.
        raise VisitInvalid({name: FieldError(MSG_REPEATED_HOUR)})
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")


def form_value(name: str, value: object, tz: ZoneInfo) -> str:
    """One value of a JSON body as the text a form field would carry."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # no field takes it; the validation says so
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return _local_time(name, text, tz) if name in _TIME_FIELDS else text


def _as_form(values: Mapping[str, object], tz: ZoneInfo) -> dict[str, str]:
    return {name: form_value(name, value, tz) for name, value in values.items()}


def _departure(text: str | None, tz: ZoneInfo) -> datetime | None:
    if text is None or not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise VisitInvalid({"departed_at": FieldError(MSG_TIME_OFFSET)}) from None
    if parsed.tzinfo is None:
        # On the site's clock, a repeated hour read as its first occurrence (like the forms).
        parsed = parsed.replace(tzinfo=tz, fold=0)
    return parsed.astimezone(UTC)


# --- the routes ----------------------------------------------------------------------------


class SitesController(Controller):
    """The token's sites and their registers."""

    path = "/sites"
    tags = ["sites", "register"]

    @get(
        "/",
        opt=VIEW,
        summary="List the token's sites",
        description="The active sites whose register the token may read, by name.",
        responses=_errors(401, 403),
    )
    async def list_sites(self, ctx: ContextDep, actor: ActorDep) -> list[SiteOut]:
        return [site_out(s) for s in await sites.sites_for(ctx.db, actor, "register.view")]

    @get(
        "/{slug:str}/visits",
        opt=VIEW,
        summary="Search a site's register",
        description=(
            "One page of visits with the register's filters. `q` matches names, vessel names, "
            "registrations, MMSI numbers and plates, ignoring case, spaces and dashes. `from` "
            "and `to` are local dates (inclusive): a visit matches when its stay overlaps them. "
            "Pass `next_cursor` back as `cursor` for the next page. Audited as a register view."
        ),
        responses=_errors(401, 403, 404, 422),
    )
    async def list_visits(
        self,
        ctx: ContextDep,
        actor: ActorDep,
        slug: Slug,
        q: Annotated[str, QueryParameter(description="Search text", examples=_Q_EXAMPLE)] = "",
        date_from: FromDate = None,
        date_to: ToDate = None,
        kind: FromQuery[Kind | None] = None,
        status: Annotated[Status | None, QueryParameter(description=_STATUS_DOC)] = None,
        source: FromQuery[Source | None] = None,
        sort: FromQuery[Sort] = "arrived_desc",
        cursor: Annotated[str | None, QueryParameter(max_length=400)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=register_search.MAX_LIMIT)] = 50,
    ) -> VisitPage:
        check_dates({"from": date_from, "to": date_to})
        site = await sites.site_for(ctx.db, actor, slug, "register.view")
        query = RegisterQuery(
            q=q,
            date_from=date_from,
            date_to=date_to,
            kind=kind,
            status=status,
            source=source,
            sort=sort,
            cursor=cursor or None,
            limit=limit,
        )
        page = await register_search.search(ctx.db, actor, site.id, query, now=ctx.clock.now())
        return VisitPage(
            visits=[visit_out(v, site) for v in page.visits], next_cursor=page.next_cursor
        )

    @post(
        "/{slug:str}/visits",
        opt=EDIT,
        status_code=HTTP_201_CREATED,
        summary="Register a visit",
        description=(
            "A walk-in entered through the API (source `api`), validated like the kiosk's form; "
            "a 422 lists every field at fault. Audited as visit_created; a repeated "
            "`idempotency_key` answers with the visit made the first time, audited as "
            "visit_viewed. A boat (registration or MMSI), vehicle (plate) or guest present at "
            "the site now is refused with 409 `already_present` and the open visit's id, "
            'unless the body says `"allow_duplicate": true`.'
        ),
        responses={
            **_errors(401, 403, 404, 422),
            HTTP_409_CONFLICT: ResponseSpec(
                AlreadyPresentError,
                description="The boat, vehicle or guest is present at the site already",
                generate_examples=False,
            ),
        },
    )
    async def create_visit(
        self, ctx: ContextDep, actor: ActorDep, slug: Slug, data: JSONBody[VisitIn]
    ) -> VisitOut:
        site = await sites.site_for(ctx.db, actor, slug, "register.edit")
        values = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        allow_duplicate = values.pop("allow_duplicate", False) is True
        form = _as_form(values, ZoneInfo(site.timezone))
        visit = await walk_ins.create_visit(
            ctx.db, actor, site.id, form, now=ctx.clock.now(), source="api",
            watchlist_key=ctx.settings.watchlist_key, allow_duplicate=allow_duplicate,
        )  # fmt: skip
        return visit_out(visit, visit.site)

    @get(
        "/{slug:str}/register.csv",
        opt=EXPORT,
        media_type="text/csv",
        response_description="The register as CSV, UTF-8 with a BOM",
        summary="Export a site's register as CSV",
        description=(
            "The register for a local date range (without dates: all of it), UTF-8 with a BOM "
            "so that Excel reads it, in the export's columns; streamed. Audited as "
            "register_exported."
        ),
        responses=_errors(401, 403, 404, 422),
    )
    async def register_csv(
        self,
        ctx: ContextDep,
        actor: ActorDep,
        slug: Slug,
        date_from: FromDate = None,
        date_to: ToDate = None,
        delimiter: Annotated[
            Literal[",", ";"],
            QueryParameter(description="`;` for Excel in Dutch or German"),
        ] = ",",
    ) -> Stream:
        check_dates({"from": date_from, "to": date_to})
        site = await sites.site_for(ctx.db, actor, slug, "register.export")
        chunks = transfer.export_register(
            ctx.db,
            actor,
            site.id,
            date_from=date_from,
            date_to=date_to,
            fmt="csv",
            delimiter=delimiter,
            now=ctx.clock.now(),
        )
        filename = transfer.export_filename(site.slug, date_from, date_to, "csv")
        return await export_stream(chunks, filename, media_type="text/csv")


class VisitsController(Controller):
    """One visit: read it, correct it, check it out."""

    path = "/visits"
    tags = ["visits"]

    @get(
        "/{id:int}",
        opt=VIEW,
        summary="Get a visit",
        description="Audited as visit_viewed.",
        responses=_errors(401, 403, 404),
    )
    async def get_visit(
        self,
        ctx: ContextDep,
        actor: ActorDep,
        id: PathId,
    ) -> VisitOut:
        visit = await register.get_visit(ctx.db, actor, row_id(id), now=ctx.clock.now())
        return visit_out(visit, visit.site)

    @patch(
        "/{id:int}",
        opt=EDIT,
        summary="Correct a visit",
        description=(
            "Changes the given fields, re-checked with the kiosk's rules; a reason is required. "
            "Kind and source cannot change. Audited as visit_corrected with the old and new "
            "values of the changed fields."
        ),
        responses=_errors(401, 403, 404, 422),
    )
    async def correct_visit(
        self,
        ctx: ContextDep,
        actor: ActorDep,
        id: PathId,
        data: JSONBody[CorrectionIn],
    ) -> VisitOut:
        now = ctx.clock.now()
        # Read first: the answer shows the visit, and its site's clock reads the times sent.
        visit = await register.get_visit(ctx.db, actor, row_id(id), now=now)
        changes = _as_form(data.changes, ZoneInfo(visit.site.timezone))
        corrected = await corrections.correct_visit(
            ctx.db, actor, visit.id, changes, data.reason, now=now
        )
        return visit_out(corrected, visit.site)

    @post(
        "/{id:int}/checkout",
        opt=EDIT,
        status_code=200,
        summary="Check a visit out",
        description=(
            "Records the departure (now, or `departed_at`). A visit already checked out stays "
            "as it is. Audited as visit_checked_out."
        ),
        responses=_errors(401, 403, 404, 422),
    )
    async def check_out(
        self,
        ctx: ContextDep,
        actor: ActorDep,
        id: PathId,
        data: JSONBody[CheckoutIn | None] = None,
    ) -> VisitOut:
        now = ctx.clock.now()
        visit = await register.get_visit(ctx.db, actor, row_id(id), now=now)
        tz = ZoneInfo(visit.site.timezone)
        departed_at = _departure(data.departed_at if data else None, tz)
        done = await corrections.check_out_visit(
            ctx.db, actor, visit.id, now=now, departed_at=departed_at
        )
        return visit_out(done, visit.site)


api_router = Router(
    path=PATH,
    route_handlers=[
        SitesController,
        VisitsController,
        *api_flags.CONTROLLERS,
        *api_signals.CONTROLLERS,
        *api_sightings.CONTROLLERS,
    ],
    security=[{BEARER: []}],
    exception_handlers={
        VisitInvalid: _visit_invalid,
        AlreadyPresent: _already_present,
        QueryInvalid: _query_invalid,
        ExportInvalid: _export_invalid,
        ValidationException: _validation_failed,
        **api_flags.EXCEPTION_HANDLERS,
        **api_signals.EXCEPTION_HANDLERS,
        **api_sightings.EXCEPTION_HANDLERS,
    },
)


def openapi_config(version: str) -> OpenAPIConfig:
    """The schema at /schema (JSON; also /schema/openapi.json), with the bearer scheme.

    No browser UI: the ones Litestar ships load their scripts from a CDN, which the
    Content-Security-Policy refuses and a staff machine should not need.
    """
    return OpenAPIConfig(
        title="Nachtregister API",
        version=version,
        description=(
            "The night register's JSON API. Authenticate with `Authorization: Bearer nrt_…` "
            "(`nightreg token add`). Errors are JSON with a stable `code`, a `message` and "
            "the `field` at fault."
        ),
        path="/schema",
        render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="nrt_…",
                    description="An API token made with `nightreg token add`.",
                )
            }
        ),
    )
