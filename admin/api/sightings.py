"""The gate cameras' API: a camera system posts plate reads (sightings) with a `sensor` token.

See nightreg.services.sightings for what is stored and how it meets the register.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK, HTTP_409_CONFLICT

from admin.api.common import HTTP_422, ApiError
from admin.api.common import doc as _doc
from admin.api.common import errors as _errors
from admin.web import ActorDep, ContextDep, Slug
from nightreg.services import sightings
from nightreg.services.sightings import BatchInvalid, SourceOff

POST = {"permission": sightings.POST}

Direction = Literal["in", "out"]


class SightingIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One plate read at a gate. Every field is checked on its own: a bad one refuses this
    sighting (with its index and a code), not the others."""

    plate: Annotated[str | None, _doc("The plate as the camera read it", "AB-123-C")] = None
    time: Annotated[
        str | None,
        _doc("When, ISO 8601 with an offset (UTC preferred)", "2026-07-14T23:12:05Z"),
    ] = None
    camera: Annotated[str | None, _doc("The camera's own id, 1 to 64 characters", "gate-north")] = (
        None
    )
    direction: Annotated[str | None, _doc("`in` or `out`", "in")] = None


class SightingsIn(SightingIn, kw_only=True, forbid_unknown_fields=True):
    """Either one sighting (its fields at the top) or a batch of them in `sightings`."""

    sightings: Annotated[
        list[SightingIn] | None,
        _doc(f"A batch of 1 to {sightings.MAX_BATCH} sightings; the top-level fields stay empty"),
    ] = None


class SightingError(msgspec.Struct):
    index: Annotated[int, _doc("The sighting's position in the batch (0 for a single one)", 3)]
    code: Annotated[
        str,
        _doc(
            "bad_plate, bad_time, future_time (more than 5 minutes ahead), too_old (more than "
            "28 days back), bad_camera or bad_direction",
            "bad_plate",
        ),
    ]
    field: str
    message: str


class SightingsOut(msgspec.Struct):
    received: Annotated[int, _doc("Sightings in the request")]
    stored: Annotated[int, _doc("New sightings stored")]
    duplicates: Annotated[
        int,
        _doc(
            "Sightings stored before (same camera, time and plate): acknowledged, not stored again"
        ),
    ]
    errors: list[SightingError]


_SINGLE = {"plate": "AB-123-C", "time": "2026-07-14T23:12:05Z", "camera": "gate-north",
           "direction": "in"}  # fmt: skip
_BATCH = {
    "sightings": [
        _SINGLE,
        {"plate": "12-XYZ-3", "time": "2026-07-14T23:14:40+02:00", "camera": "gate-north",
         "direction": "out"},
        {"plate": "🚗", "time": "2026-07-14T23:15:00Z", "camera": "gate-north", "direction": "in"},
    ]
}  # fmt: skip
_BATCH_ANSWER = {
    "received": 3, "stored": 2, "duplicates": 0,
    "errors": [{"index": 2, "code": "bad_plate", "field": "plate",
                "message": "Please send the plate as read, e.g. AB-123-C."}],
}  # fmt: skip


def _source_off(_request: Request[Any, Any, Any], _exc: SourceOff) -> Response[ApiError]:
    return Response(
        ApiError(
            code="source_off",
            message="The gate cameras of this site are switched off: an admin switches them "
            "on on the site's page, with the reference of the DPIA that covers them.",
        ),
        status_code=HTTP_409_CONFLICT,
    )


def _batch_invalid(_request: Request[Any, Any, Any], exc: BatchInvalid) -> Response[ApiError]:
    return Response(
        ApiError(code=exc.code, message=exc.message, field="sightings"), status_code=HTTP_422
    )


class SightingsController(Controller):
    """Sightings from a site's gate cameras."""

    path = "/sites"
    tags = ["gate cameras"]

    @post(
        "/{slug:str}/sightings",
        opt=POST,
        status_code=HTTP_200_OK,
        summary="Post gate-camera sightings",
        description=(
            "For a gate camera system's token (role `sensor`, `nightreg token add NAME --role "
            "sensor --site SLUG`), on its own sites only. One sighting, or a batch of up to "
            f"{sightings.MAX_BATCH} in `sightings`. Idempotent per camera, time and plate: a "
            "sighting sent again is counted under `duplicates` and not stored twice, so a "
            "camera system may resend a batch it is unsure of. Each sighting is checked on its "
            "own: the valid ones are stored, the others listed in `errors` with their index "
            "and a stable code. 200 when at least one was stored or acknowledged, 422 (same "
            "shape) when none was. The site's gate cameras must be switched on: otherwise 409 "
            "`source_off`. Audited as sightings_received (counts)."
        ),
        responses={
            **_errors(401, 403, 404),
            HTTP_200_OK: ResponseSpec(
                SightingsOut,
                description="What was stored, acknowledged and refused",
                generate_examples=False,
                examples=[Example(summary="A batch with one bad plate", value=_BATCH_ANSWER)],
            ),
            HTTP_409_CONFLICT: ResponseSpec(
                ApiError,
                description="The site's gate cameras are switched off (`source_off`)",
                generate_examples=False,
            ),
            HTTP_422: ResponseSpec(
                SightingsOut,
                description=(
                    "No sighting could be stored (each listed in `errors`); or an empty or too "
                    "large batch (an error with code `empty` or `batch_too_large`)"
                ),
                generate_examples=False,
            ),
        },
    )
    async def post_sightings(
        self,
        ctx: ContextDep,
        actor: ActorDep,
        slug: Slug,
        data: Annotated[
            SightingsIn,
            Body(
                examples=[
                    Example(summary="One sighting", value=_SINGLE),
                    Example(summary="A batch", value=_BATCH),
                ]
            ),
        ],
    ) -> Response[SightingsOut]:
        single = msgspec.structs.asdict(data)
        batch = single.pop("sightings")
        if batch is not None and any(v is not None for v in single.values()):
            raise BatchInvalid(
                "invalid", "Please send one sighting or a batch in `sightings`, not both."
            )
        items = [msgspec.structs.asdict(s) for s in batch] if batch is not None else [single]
        result = await sightings.record_sightings(ctx.db, actor, slug, items, now=ctx.clock.now())
        out = SightingsOut(
            received=result.received,
            stored=result.stored,
            duplicates=result.duplicates,
            errors=[SightingError(e.index, e.code, e.field, e.message) for e in result.errors],
        )
        nothing = result.errors and result.stored + result.duplicates == 0
        return Response(out, status_code=HTTP_422 if nothing else HTTP_200_OK)


CONTROLLERS = [SightingsController]
EXCEPTION_HANDLERS: dict[Any, Any] = {
    SourceOff: _source_off,
    BatchInvalid: _batch_invalid,
}
