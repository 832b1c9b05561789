"""The hub's pull API: signals of every site as they were (or will be) sent, and acknowledgements.

Only analysts' tokens (signals.view, signals.ack) may call it; the guard in admin/web.py
refuses every other role with a 403. The services (nightreg.services.hub_pull) write the
audit. admin/api/v1.py includes CONTROLLERS and EXCEPTION_HANDLERS in its router, so this module
must not import admin.api.v1 (the shared error shapes are in admin.api.common).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter

from admin.api.common import check_dates, doc, errors, invalid, invalid_example, validation_failed
from admin.web import ActorDep, ContextDep
from nightreg import hubsign
from nightreg.clock import utc_text
from nightreg.services import hub_pull
from nightreg.services.hub_pull import PullInvalid, SignalQuery, SignalRow
from nightreg.services.signals import SIGNAL_SCHEMA
from nightreg.settings import Settings

VIEW = {"permission": hub_pull.VIEW}
ACK = {"permission": hub_pull.ACK}
SCHEMA_MEDIA_TYPE = "application/schema+json"

_NOT_FOUND = "No signal has this id"
_INVALID_EXAMPLE = invalid_example(
    "A filter that cannot be used", "site", "No site has this short name or number."
)


def _errors(*statuses: int) -> dict[int, Any]:
    return errors(*statuses, not_found=_NOT_FOUND, invalid_example=_INVALID_EXAMPLE)


# --- the payload's schema in the OpenAPI document ------------------------------------------

# Schema's attributes by the JSON Schema keywords the payload's top level uses (the levels
# below are passed through as they are: they are JSON Schema already).
_SCHEMA_ATTRIBUTES = {"additionalProperties": "additional_properties"}
_NOT_INLINE = ("$schema", "$id", "title", "description")


def _payload_schema() -> dict[str, Any]:
    """SIGNAL_SCHEMA as the `extra` of a field: OpenAPI 3.1 schemas are JSON Schema 2020-12.

    The field is null for a withheld signal; a Raw holding `null` keeps the schema one object
    (an Optional would wrap it in a oneOf that a null matches twice)."""
    schema = {
        _SCHEMA_ATTRIBUTES.get(key, key): value
        for key, value in SIGNAL_SCHEMA.items()
        if key not in _NOT_INLINE
    }
    return {**schema, "type": ["object", "null"]}


Payload = Annotated[
    msgspec.Raw,
    msgspec.Meta(
        extra_json_schema={
            "title": "SignalPayload",
            "description": (
                "The signal exactly as the hub receives it by push: canonical JSON (sorted "
                "keys, no spaces, UTF-8), holding only what the sharing agreement allows; "
                "null when the signal is withheld. `signature` is over these bytes. Also "
                "served on its own at /api/v1/signals/schema."
            ),
            "extra": _payload_schema(),
        }
    ),
]


# --- the shapes ----------------------------------------------------------------------------


class SignalOut(msgspec.Struct):
    """One signal: its payload, where it came from, and how far its delivery got."""

    id: Annotated[str, doc("The signal's stable id (a UUID); the payload's `id`")]
    cursor: Annotated[
        int,
        doc(
            "The signal's place in the outbox (a whole number that grows with every signal). "
            "Pass the last one you received as `after` to continue after it",
            41,
        ),
    ]
    status: Annotated[
        Literal["pending", "delivered", "failed", "withheld"],
        doc(
            "pending: not yet received by the hub; delivered: pushed, or acknowledged after "
            "a pull; failed: the push was refused or ran out of retries (a pull still works); "
            "withheld: its sharing agreement ended before it left, so it never will (no "
            "payload, no signature; acknowledging it answers it under `withheld`)"
        ),
    ]
    created_at: Annotated[str, doc("When the flag was forwarded (UTC)", "2026-07-14T19:00:00Z")]
    site: Annotated[str, doc("The forwarding site's slug", "jachthaven-west")]
    rule: Annotated[str, doc("The flag's rule", "night_movement")]
    payload: Payload
    signature: Annotated[
        str | None,
        doc(
            "A detached signature over the payload's canonical bytes, in the form of the "
            "push's Nightreg-Signature header (keyid=…,t=<unix seconds of this answer>,v1=…); "
            "verify it as a pushed signal, over the payload re-encoded canonically. Null when "
            "the signal is withheld, or the sender has no hub secret (NIGHTREG_HUB_SECRET)",
            "keyid=k1,t=1795942351,v1=5d0c3a…",
        ),
    ] = None


class SignalList(msgspec.Struct):
    signals: list[SignalOut]
    next_after: Annotated[
        int | None, doc("Pass as `after` for the next page; null when this page is the last")
    ]


SignalId = Annotated[str, msgspec.Meta(min_length=1, max_length=hub_pull.MAX_UID_LENGTH)]


class AckIn(msgspec.Struct, forbid_unknown_fields=True):
    """The ids of the signals a pull received."""

    ids: Annotated[
        list[SignalId],
        msgspec.Meta(
            min_length=1,
            max_length=hub_pull.MAX_ACK,
            extra_json_schema={
                "description": f"1 to {hub_pull.MAX_ACK} signal ids",
                "examples": [["0b9f3c4e-8d1a-4c55-9e7b-2f6a1d3c8e90"]],
            },
        ),
    ]


class AckOut(msgspec.Struct):
    acknowledged: Annotated[list[str], doc("Marked delivered by this call")]
    already: Annotated[list[str], doc("Delivered before (pushed, or acknowledged earlier)")]
    withheld: Annotated[
        list[str],
        doc(
            "Never delivered and never will be: the agreement ended before it left. It stays "
            "withheld, and `unacknowledged=true` no longer lists it"
        ),
    ]
    unknown: Annotated[list[str], doc("No signal has this id")]


def signal_out(row: SignalRow, settings: Settings, now: int) -> SignalOut:
    """The signal as the API shows it, signed at `now` (unix seconds) when it has a payload."""
    if row.withheld:
        payload, signature = msgspec.Raw(b"null"), None
    else:
        # The stored text itself: the bytes the hub gets by push, not a re-encoding.
        body = row.body.encode()
        payload = msgspec.Raw(body)
        signature = (
            hubsign.signature_header(
                settings.hub_secret,
                settings.hub_signing_key_id,
                settings.installation_id,
                now,
                body,
            )
            if settings.hub_secret and settings.installation_id
            else None
        )
    return SignalOut(
        id=row.uid,
        cursor=row.id,
        status=row.status,  # type: ignore[arg-type]  # the table's CHECK and WITHHELD
        created_at=utc_text(row.created_at),
        site=row.site_slug,
        rule=row.rule,
        payload=payload,
        signature=signature,
    )


# --- errors --------------------------------------------------------------------------------


def _pull_invalid(_request: Request[Any, Any, Any], exc: PullInvalid) -> Response[Any]:
    # Messages are the English msgids: stable for programs, whatever the caller's language.
    return invalid({exc.field: exc.text})


# Like the rest of the API (admin/api/v1.py), and a body's missing field is named too rather
# than the body as a whole ("data").
_validation_failed = validation_failed(
    re.compile(r"(?:unknown|missing required) field `([^`]{1,64})`")
)


EXCEPTION_HANDLERS: dict[Any, Any] = {PullInvalid: _pull_invalid}


# --- the routes ----------------------------------------------------------------------------

FromDate = Annotated[
    date | None,
    QueryParameter(name="from", description="First local date the flag was forwarded on"),
]
ToDate = Annotated[
    date | None,
    QueryParameter(name="to", description="Last local date the flag was forwarded on, inclusive"),
]


class SignalsController(Controller):
    """The outbox as the hub pulls it."""

    path = "/signals"
    tags = ["signals"]
    exception_handlers = {ValidationException: _validation_failed}

    @get(
        "/",
        opt=VIEW,
        summary="Pull signals",
        description=(
            "Signals of every site, oldest first (by `cursor`), withheld ones included (status "
            "`withheld`, no payload). Pass the `cursor` of the last signal you received as "
            "`after` to continue; `next_after` is null on the last page. Cursors are handed "
            "out before a forwarding commits, so a signal can appear behind one you already "
            "have: a hub that must not miss any pulls with `unacknowledged=true` from the "
            "start, acknowledges what it got (POST /api/v1/signals/ack), and starts again from "
            "the start next time. `from` and `to` are dates in the installation's time zone "
            "(NIGHTREG_TIMEZONE, Europe/Amsterdam unless set), on the day the flag was "
            "forwarded. Each item carries a detached `signature` over its payload. Audited as "
            "signals_viewed."
        ),
        responses=_errors(401, 403, 422),
    )
    async def pull(
        self,
        ctx: ContextDep,
        actor: ActorDep,
        after: Annotated[
            int | None,
            QueryParameter(
                ge=0, le=hub_pull.MAX_ID, description="The cursor of the last signal seen"
            ),
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=hub_pull.MAX_LIMIT, description="Page size")
        ] = hub_pull.DEFAULT_LIMIT,
        unacknowledged: Annotated[
            bool,
            QueryParameter(
                description=(
                    "Only signals not yet delivered (pending, failed) and withheld ones the hub "
                    "has not acknowledged"
                )
            ),
        ] = False,
        site: Annotated[
            str | None, QueryParameter(max_length=63, description="A site's slug (or number)")
        ] = None,
        rule: Annotated[
            str | None, QueryParameter(max_length=32, description="A rule's code")
        ] = None,
        date_from: FromDate = None,
        date_to: ToDate = None,
    ) -> SignalList:
        check_dates({"from": date_from, "to": date_to})
        query = SignalQuery(
            site=site or None,
            rule=rule or None,
            date_from=date_from,
            date_to=date_to,
            statuses=hub_pull.UNACKNOWLEDGED if unacknowledged else (),
            after=after,
            limit=limit,
        )
        now = ctx.clock.now()
        page = await hub_pull.list_signals(ctx.db, actor, query, now=now, tz=ctx.settings.tz)
        signed_at = int(now.timestamp())
        return SignalList(
            signals=[signal_out(row, ctx.settings, signed_at) for row in page.rows],
            next_after=page.next_cursor,
        )

    @get(
        "/schema",
        opt=VIEW,
        media_type=SCHEMA_MEDIA_TYPE,
        summary="The payload's JSON Schema",
        description=(
            "JSON Schema (draft 2020-12) of a signal's payload, for the hub to validate. Needs "
            "the analyst token like the rest of /api/v1/signals. With `agreement`, the visit "
            "item requires exactly that agreement's visit fields."
        ),
        response_description="The JSON Schema of a signal's payload",
        responses=_errors(401, 403, 422),
    )
    async def schema(
        self,
        ctx: ContextDep,
        actor: ActorDep,
        agreement: Annotated[
            str | None,
            QueryParameter(max_length=100, description="A sharing agreement's reference"),
        ] = None,
    ) -> Response[dict[str, Any]]:
        schema = await hub_pull.payload_schema(ctx.db, actor, agreement or None)
        return Response(schema, media_type=SCHEMA_MEDIA_TYPE)

    @post(
        "/ack",
        opt=ACK,
        status_code=200,
        summary="Acknowledge pulled signals",
        description=(
            "Marks the signals delivered (by pull), so that the dispatcher stops pushing them "
            "and `unacknowledged=true` no longer lists them. Safe to repeat: a signal "
            "delivered before is listed under `already`, a withheld one (its agreement ended "
            "before it left) under `withheld` every time (it stays withheld, never delivered, "
            "and `unacknowledged=true` stops listing it), an id without a signal under "
            "`unknown`. Every id is in exactly one list. Audited as signals_acknowledged."
        ),
        responses=_errors(401, 403, 422),
    )
    async def acknowledge(self, ctx: ContextDep, actor: ActorDep, data: JSONBody[AckIn]) -> AckOut:
        done = await hub_pull.acknowledge(ctx.db, actor, data.ids, now=ctx.clock.now())
        return AckOut(
            acknowledged=done.acknowledged,
            already=done.already,
            withheld=done.withheld,
            unknown=done.unknown,
        )

    @get(
        "/{uid:str}",
        opt=VIEW,
        summary="Get a signal",
        description=(
            "One signal by its id, a withheld one too (status `withheld`, no payload). "
            "Audited as signal_viewed."
        ),
        responses=_errors(401, 403, 404),
    )
    async def get_signal(self, ctx: ContextDep, actor: ActorDep, uid: FromPath[str]) -> SignalOut:
        now = ctx.clock.now()
        detail = await hub_pull.get_signal(ctx.db, actor, uid, now=now)
        return signal_out(detail, ctx.settings, int(now.timestamp()))


CONTROLLERS: list[Any] = [SignalsController]
