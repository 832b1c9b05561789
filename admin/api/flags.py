"""The review of a flag through the API: dismiss, keep watching, forward, and the forward's preview.

For security companies' own systems (issue 18, item 9): the same services as the flag's page
(nightreg.services.flags, .signals) decide, scope and audit; only a forward names its
agreement by reference, and a review that would leave the flag as it is answers 409 rather
than being recorded twice (a program retries). admin/api/v1.py includes CONTROLLERS and
EXCEPTION_HANDLERS in its router, so this module must not import admin.api.v1.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, QueryParameter
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
)

from admin.api.common import ApiError, doc, errors, row_id, validation_failed
from admin.web import ActorDep, ContextDep, PathId
from nightreg.clock import utc_text
from nightreg.models import Flag
from nightreg.services import agreements, flags, signals
from nightreg.services.flags import ReviewInvalid

REVIEW = {"permission": flags.REVIEW}

_NOT_FOUND = "No such flag, or not one of the token's sites"
_AGREEMENT_EXAMPLE = "RIEC-NH-2026-01"

# The status of each refusal's code; any other code is a 422.
_STATUS = {
    flags.BAD_ACTION: HTTP_400_BAD_REQUEST,
    flags.ALREADY_REVIEWED: HTTP_409_CONFLICT,
}
# Which problem a refusal names when a request has several: the action's first.
_FIELD_ORDER = ("action", "agreement", "reason")


# --- the shapes ----------------------------------------------------------------------------


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    """A review: what to do with the flag, why, and under which agreement a forward goes."""

    action: Annotated[
        str,
        msgspec.Meta(
            max_length=20,
            extra_json_schema={
                "description": (
                    "`dismiss` (a reason is required), `watch` (keep watching) or `forward` "
                    "(to the hub, under `agreement`); anything else is a 400 `bad_action`"
                ),
                "examples": ["dismiss", "watch", "forward"],
            },
        ),
    ] = ""
    reason: Annotated[
        Annotated[str, msgspec.Meta(max_length=flags.MAX_REVIEW_REASON * 4)] | None,
        msgspec.Meta(
            extra_json_schema={
                "description": (
                    f"Why (up to {flags.MAX_REVIEW_REASON} characters): required to dismiss, "
                    "optional otherwise; stays in this register, never sent to the hub"
                ),
                "examples": ["Known charter boat of the harbour; crew checked"],
            },
        ),
    ] = None
    agreement: Annotated[
        Annotated[str, msgspec.Meta(max_length=agreements.MAX_REFERENCE * 2)] | None,
        msgspec.Meta(
            extra_json_schema={
                "description": (
                    "For `forward`, required: the reference of the sharing agreement to forward "
                    "under (as the preview showed it); ignored otherwise"
                ),
                "examples": [_AGREEMENT_EXAMPLE],
            },
        ),
    ] = None


_REVIEW_EXAMPLES = [
    Example(
        summary="Dismiss, with a reason",
        value={"action": "dismiss", "reason": "Known charter boat of the harbour; crew checked"},
    ),
    Example(summary="Keep watching", value={"action": "watch"}),
    Example(
        summary="Forward under an agreement",
        value={
            "action": "forward",
            "agreement": _AGREEMENT_EXAMPLE,
            "reason": "Seen at night three times this week",
        },
    ),
]


class FlagOut(msgspec.Struct):
    """A flag after its review."""

    id: int
    rule: Annotated[str, doc("The rule's code", "night_movement")]
    status: Annotated[
        str,
        doc("open, watching, dismissed, forwarded or expired", "forwarded"),
    ]
    score: Annotated[int, doc("0 to 100", 60)]
    reviewed_at: Annotated[str | None, doc("UTC, ISO 8601", "2026-07-14T19:00:00Z")]
    reviewed_by: Annotated[str | None, doc("Who reviewed it, as the audit trail names them")]
    review_reason: str | None


class AgreementOut(msgspec.Struct):
    reference: Annotated[str, doc("The partners' number for it", _AGREEMENT_EXAMPLE)]
    name: Annotated[str, doc("Its name", "Convenant gegevensdeling Drugshub")]
    recipient: Annotated[str, doc("Who receives the signal", "RIEC Noord-Holland (Drugshub)")]
    keep_days: Annotated[int, doc("How long this register keeps a forwarded flag", 180)]


class PreviewOut(msgspec.Struct):
    """What forwarding the flag under the agreement would send now; nothing is sent yet."""

    flag: Annotated[int, doc("The flag's id", 1234)]
    agreement: AgreementOut
    fields_sent: Annotated[
        list[str], doc("The fields the agreement shares", ["rule", "reason", "registration"])
    ]
    fields_not_sent: Annotated[
        list[str], doc("The fields it does not share: never sent", ["guest_name", "residence"])
    ]
    payload: Annotated[
        dict[str, Any],
        doc(
            "The signal as the hub would receive it (its schema: /api/v1/signals/schema), "
            "holding only what the agreement shares; its `id` is a placeholder of zeros, the "
            "real one is made when the flag is forwarded"
        ),
    ]


def flag_out(flag: Flag) -> FlagOut:
    return FlagOut(
        id=flag.id,
        rule=flag.rule,
        status=flag.status,
        score=flag.score,
        reviewed_at=utc_text(flag.reviewed_at) if flag.reviewed_at else None,
        reviewed_by=flag.reviewed_by,
        review_reason=flag.review_reason,
    )


def preview_out(flag: Flag, draft: signals.Draft) -> PreviewOut:
    assert draft.agreement is not None  # refused otherwise
    assert draft.body is not None
    sent = agreements.fields_of(draft.agreement)
    return PreviewOut(
        flag=flag.id,
        agreement=AgreementOut(
            reference=draft.agreement.reference,
            name=draft.agreement.name,
            recipient=draft.agreement.recipient,
            keep_days=draft.agreement.keep_days,
        ),
        fields_sent=list(sent),
        fields_not_sent=[f for f in agreements.FIELDS if f not in sent],
        payload=draft.body,
    )


# --- errors --------------------------------------------------------------------------------


def _review_invalid(_request: Request[Any, Any, Any], exc: ReviewInvalid) -> Response[ApiError]:
    field = next((f for f in _FIELD_ORDER if f in exc.errors), next(iter(exc.errors)))
    error, code = exc.errors[field], exc.codes[field]
    # Messages are the English msgids: stable for programs, whatever the caller's language.
    message = error.message % error.params if error.params else error.message
    return Response(
        ApiError(code=code, message=message, field=field),
        status_code=_STATUS.get(code, HTTP_422_UNPROCESSABLE_ENTITY),
    )


# Like the rest of the API: a body's unknown field is named rather than the body as a whole.
_validation_failed = validation_failed(re.compile(r"unknown field `([^`]{1,64})`"))

EXCEPTION_HANDLERS: dict[Any, Any] = {ReviewInvalid: _review_invalid}


def _refusals(*codes: str) -> str:
    return "Codes: " + ", ".join(f"`{c}`" for c in codes) + "."


def _error_spec(description: str, *examples: tuple[str, str, str, str | None]) -> ResponseSpec:
    return ResponseSpec(
        ApiError,
        description=description,
        generate_examples=False,
        examples=[
            Example(summary=summary, value={"code": code, "message": message, "field": field})
            for summary, code, message, field in examples
        ],
    )


_BAD_ACTION = (
    "An action that is not dismiss, watch or forward",
    flags.BAD_ACTION,
    "Please choose an option from the list.",
    "action",
)
_ALREADY = (
    "The flag was forwarded already",
    flags.ALREADY_REVIEWED,
    signals.MSG_ALREADY_FORWARDED,
    "action",
)
_NOT_IN_FORCE = (
    "The agreement has ended",
    signals.AGREEMENT_NOT_IN_FORCE,
    "The sharing agreement “Convenant gegevensdeling Drugshub” (RIEC-NH-2026-01) that covers "
    "this rule was ended on 2026-07-01; nothing can be forwarded under it.",
    "agreement",
)
_UNKNOWN = (
    "No agreement has this reference",
    signals.AGREEMENT_NOT_FOUND,
    "No sharing agreement has the reference “RIEC-NH-2099”.",
    "agreement",
)
_REASON = (
    "A dismissal without a reason",
    flags.REASON_REQUIRED,
    flags.MSG_DISMISS_REASON,
    "reason",
)
_AGREEMENT_CODES = (
    flags.AGREEMENT_REQUIRED,
    signals.AGREEMENT_NOT_FOUND,
    signals.AGREEMENT_NOT_COVERING,
    signals.AGREEMENT_NOT_IN_FORCE,
    signals.NOT_FORWARDABLE,
)


# --- the routes ----------------------------------------------------------------------------


class FlagReviewController(Controller):
    """Review a flag of one of the token's sites, as its page does."""

    path = "/flags"
    tags = ["flags"]
    exception_handlers = {ValidationException: _validation_failed}

    @post(
        "/{id:int}/review",
        opt=REVIEW,
        status_code=200,
        summary="Review a flag: dismiss, keep watching or forward",
        description=(
            "The flag page's review for programs, with the same rules and the same audit: "
            "`dismiss` needs a `reason`; `watch` keeps the flag on the queue; `forward` writes "
            "the flag's signal for the hub under the sharing agreement named by `agreement` "
            "(its reference), which must be in force and cover the flag's rule (an agreement "
            "holds for every site), with only the fields it shares: GET the forward-preview "
            "first to see exactly what goes. Roles that review flags on the page (admin, "
            "harbour_master, security, analyst) may call it, for flags of the token's sites; "
            "any other flag is a 404, whether it exists or not. A review that would leave the "
            "flag as it is (a forwarded flag forwarded, a dismissed one dismissed, a watched "
            "one watched) is a 409 `already_reviewed`, so a retried request reviews once. "
            "Audited as flag_reviewed, and a forward also as signal_queued."
        ),
        responses={
            **errors(401, 403, 404, not_found=_NOT_FOUND),
            HTTP_400_BAD_REQUEST: _error_spec(
                "An unknown action (`bad_action`), or a request that cannot be read", _BAD_ACTION
            ),
            HTTP_409_CONFLICT: _error_spec(
                "The flag is already as the review would leave it. "
                + _refusals("already_reviewed"),
                _ALREADY,
            ),
            HTTP_422_UNPROCESSABLE_ENTITY: _error_spec(
                "The review cannot be done as sent. "
                + _refusals(flags.REASON_REQUIRED, *_AGREEMENT_CODES, flags.INVALID),
                _REASON,
                _UNKNOWN,
                _NOT_IN_FORCE,
            ),
        },
    )
    async def review(
        self,
        ctx: ContextDep,
        actor: ActorDep,
        id: PathId,
        data: Annotated[ReviewIn, Body(examples=_REVIEW_EXAMPLES)],
    ) -> FlagOut:
        # Only a forward names an agreement; "" (none sent) is refused as agreement_required.
        agreement = (data.agreement or "") if data.action == "forward" else None
        flag = await flags.review(
            ctx.db, actor, row_id(id), data.action, data.reason or "", now=ctx.clock.now(),
            agreement=agreement, refuse_repeat=True,
        )  # fmt: skip
        return flag_out(flag)

    @get(
        "/{id:int}/forward-preview",
        opt=REVIEW,
        summary="Preview forwarding a flag under an agreement",
        description=(
            "Exactly what `forward` under the agreement would send now, as the flag page shows "
            "it before anyone confirms: the agreement, the fields it shares and those it does "
            "not, and the signal's payload holding only the shared fields. Nothing is sent. "
            "Refused with the codes `forward` would answer. Audited as signal_previewed."
        ),
        responses={
            **errors(401, 403, 404, not_found=_NOT_FOUND),
            HTTP_409_CONFLICT: _error_spec(
                "The flag was forwarded already. " + _refusals("already_reviewed"), _ALREADY
            ),
            HTTP_422_UNPROCESSABLE_ENTITY: _error_spec(
                "Nothing can be forwarded under this agreement. "
                + _refusals(*_AGREEMENT_CODES, flags.INVALID),
                _UNKNOWN,
                _NOT_IN_FORCE,
            ),
        },
    )
    async def forward_preview(
        self,
        ctx: ContextDep,
        actor: ActorDep,
        id: PathId,
        agreement: Annotated[
            str | None,
            QueryParameter(
                max_length=agreements.MAX_REFERENCE * 2,
                description="The agreement's reference (required)",
                examples=[Example(value=_AGREEMENT_EXAMPLE)],
            ),
        ] = None,
    ) -> PreviewOut:
        flag, draft = await flags.forward_preview(
            ctx.db, actor, row_id(id), now=ctx.clock.now(), agreement=agreement or "",
            refuse_repeat=True,
        )  # fmt: skip
        return preview_out(flag, draft)


CONTROLLERS: list[Any] = [FlagReviewController]
