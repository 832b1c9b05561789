"""Sharing agreements: the list, a new one, one agreement as a summary to sign off, its end."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template

from admin.forms import done_notice, refused_status, rerender
from admin.web import ActorDep, ContextDep, PathId
from nightreg.clock import local_day
from nightreg.context import AppContext
from nightreg.i18n import N_
from nightreg.models import SharingAgreement
from nightreg.rules import RULES
from nightreg.services import agreement_summary, agreements
from nightreg.services.access import Actor
from nightreg.services.agreements import AgreementInvalid
from nightreg.web import form_choices, form_text, see_other

# A form as Litestar parses it: a repeated key (the checkboxes) arrives as a list.
FormBody = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

VIEW = {"permission": agreements.VIEW}
MANAGE = {"permission": agreements.MANAGE}
TIME_FORMAT = "yyyy-MM-dd HH:mm"
NEW, SHOW = "admin/agreements_new.html", "admin/agreements_show.html"

MSG_CREATED = N_("The agreement has been made. Read its summary below before it is signed off.")
MSG_ENDED = N_("The agreement has been ended. Nothing is forwarded under it any more.")
# Longer than any field's own limit, so that the service reports the length, not the cut.
_FIELD_LIMIT = 2000


def _rule_choices() -> list[tuple[str, str, str]]:
    """(code, title msgid, rationale msgid) of every rule an agreement may cover."""
    return [
        (code, RULES[code].title, RULES[code].rationale) for code in agreements.forwardable_rules()
    ]


def _new_context(ctx: AppContext, form: Mapping[str, Any]) -> dict[str, Any]:
    """The form's page, filled with `form`; no errors yet."""
    return {
        "form": form,
        "errors": {},
        "rules": _rule_choices(),
        "fields": agreements.FIELDS,
        "always_sent": agreements.ALWAYS_SENT,
        "visit_fields": agreements.VISIT_FIELDS,
        "max_name": agreements.MAX_NAME,
        "max_recipient": agreements.MAX_RECIPIENT,
        "max_reference": agreements.MAX_REFERENCE,
        "min_keep_days": agreements.MIN_KEEP_DAYS,
        "max_keep_days": agreements.MAX_KEEP_DAYS,
        "tz": ctx.settings.tz,
    }


def _agreement_context(
    ctx: AppContext, actor: Actor, agreement: SharingAgreement
) -> dict[str, Any]:
    """The agreement's summary with an empty end form and no notice."""
    tz = ctx.settings.tz
    return {
        "agreement": agreement,
        "state": agreements.state(agreement, ctx.clock.now(), tz),
        "state_labels": agreements.STATE_LABELS,
        "sections": agreement_summary.summary(agreement, tz),
        "can_end": actor.can(agreements.MANAGE) and agreement.ended_at is None,
        "notice": None,
        "end_form": {"reason": ""},
        "errors": {},
        "max_end_reason": agreements.MAX_END_REASON,
        "tz": tz,
        "time_format": TIME_FORMAT,
    }


class AgreementController(Controller):
    """What may be passed to the hub: admins make and end agreements, auditors read them."""

    path = "/agreements"

    @get("/", name="admin:agreements", opt=VIEW)
    async def list_agreements(self, ctx: ContextDep, actor: ActorDep) -> Template:
        tz = ctx.settings.tz
        rows = await agreements.list_agreements(ctx.db, actor, now=ctx.clock.now(), tz=tz)
        return Template(
            template_name="admin/agreements.html",
            context={
                "rows": rows,
                "state_labels": agreements.STATE_LABELS,
                "rules": RULES,
                "rules_of": agreements.rules_of,
                "can_manage": actor.can(agreements.MANAGE),
                "tz": tz,
            },
        )

    @get("/new", name="admin:agreement-new", opt=MANAGE)
    async def new_form(self, ctx: ContextDep) -> Template:
        """An empty agreement starting today, with a staff review for every rule."""
        today = local_day(ctx.clock.now(), ctx.settings.tz)
        form = {
            "name": "",
            "recipient": "",
            "reference": "",
            "valid_from": today.isoformat(),
            "valid_until": "",
            "rules": [],
            "fields": [],
            "auto_rules": [],
            "keep_days": str(agreements.DEFAULT_KEEP_DAYS),
            "share_audit_checkpoints": "",
            "max_schema": str(agreements.SIGNAL_FORMATS[0]),
        }
        return Template(template_name=NEW, context=_new_context(ctx, form))

    @post("/new", name="admin:agreement-create", opt=MANAGE)
    async def create(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, data: FormBody
    ) -> Response[Any]:
        """Make the agreement and show its summary; errors come back beside their fields."""
        form: dict[str, Any] = {
            name: form_text(data, name, _FIELD_LIMIT)
            for name in (
                "name", "recipient", "reference", "valid_from", "valid_until", "keep_days",
                "share_audit_checkpoints", "max_schema",
            )
        }  # fmt: skip
        for name in ("rules", "fields", "auto_rules"):
            form[name] = form_choices(data, name, 200)
        try:
            agreement = await agreements.create(
                ctx.db, actor, form, now=ctx.clock.now(), tz=ctx.settings.tz
            )
        except AgreementInvalid as invalid:
            return rerender(NEW, _new_context(ctx, form), invalid.errors)
        return see_other(request, f"/admin/agreements/{agreement.id}?created=1")

    @get("/{id:int}", name="admin:agreement", opt=VIEW)
    async def show(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId
    ) -> Template:
        """The agreement as a plain-language summary, printable; admins may end it here."""
        agreement = await agreements.get(ctx.db, actor, id)
        notice = done_notice(request, {"created": MSG_CREATED, "ended": MSG_ENDED})
        context = {**_agreement_context(ctx, actor, agreement), "notice": notice}
        return Template(template_name=SHOW, context=context)

    @post("/{id:int}/end", name="admin:agreement-end", opt=MANAGE)
    async def end(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, id: PathId, data: FormBody
    ) -> Response[Any]:
        """End it now, with a reason; a second end is refused with the page as it is."""
        reason = form_text(data, "reason", _FIELD_LIMIT)
        try:
            await agreements.end(ctx.db, actor, id, reason, now=ctx.clock.now())
        except AgreementInvalid as invalid:
            agreement = await agreements.get(ctx.db, actor, id)
            context = {**_agreement_context(ctx, actor, agreement), "end_form": {"reason": reason}}
            status_code = refused_status(invalid.errors, "agreement")
            return rerender(SHOW, context, invalid.errors, status_code=status_code)
        return see_other(request, f"/admin/agreements/{id}?ended=1")


ROUTES = [AgreementController]
