"""The outbox: a forwarded flag becomes a signal for the hub, built under a sharing agreement.

A signal's body is fixed when the flag is forwarded: canonical JSON holding only what the
agreement allows, plus the rule, its reason and the signal's stable id. The dispatcher
(nightreg.services.dispatch) sends those exact bytes, however often it has to try, and the
hub may pull them instead (nightreg.services.hub_pull). The signal is written in the same
transaction as the flag's status change, so a forwarded flag always has its signal and a
signal never exists for a flag that was not forwarded.

What a signal carries of the evidence: the visits at the flag's own site (the site's staff
decided to forward them), and only a count of evidence visits at other sites, whose staff
did not. Under an agreement that shares audit checkpoints it also carries the audit chain's
signed checkpoint, taken in the transaction that queues it (issue 17, finding 4).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.clock import local_day, utc_text
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Flag, SharingAgreement, Signal, Site, Visit, flag_visit
from nightreg.rules import RULES
from nightreg.services import audit, audit_checkpoints
from nightreg.services.access import SYSTEM, Actor, NotFound
from nightreg.services.agreements import (
    SIGNAL_FORMATS,
    VISIT_FIELDS,
    Coverage,
    NamedCoverage,
    all_agreements,
    auto_rules_of,
    choose,
    covering,
    fields_of,
    in_force,
    named,
)
from nightreg.validation import FieldError

SCHEMA_ID = "nightreg.signal/1"
REVIEW = "flags.review"
MSG_NOT_FORWARDABLE = N_("Flags of this rule are for the site only and are never forwarded.")

MSG_NO_AGREEMENT = N_(
    "No sharing agreement covers the rule “%(rule)s”: an admin must add one before such "
    "flags can be forwarded."
)
MSG_AGREEMENT_ENDED = N_(
    "The sharing agreement “%(agreement)s” (%(reference)s) that covers this rule was ended "
    "on %(date)s; nothing can be forwarded under it."
)
MSG_AGREEMENT_EXPIRED = N_(
    "The sharing agreement “%(agreement)s” (%(reference)s) that covers this rule expired "
    "on %(date)s; nothing can be forwarded under it."
)
MSG_AGREEMENT_NOT_YET = N_(
    "The sharing agreement “%(agreement)s” (%(reference)s) that covers this rule comes into "
    "force on %(date)s; nothing can be forwarded under it before then."
)
MSG_ALREADY_FORWARDED = N_(
    "This flag has already been forwarded; it can be forwarded again when new evidence reopens it."
)
MSG_AGREEMENT_UNKNOWN = N_("No sharing agreement has the reference “%(reference)s”.")
MSG_AGREEMENT_NOT_COVERING = N_(
    "The sharing agreement “%(agreement)s” (%(reference)s) does not cover the rule "
    "“%(rule)s”: flags of this rule cannot be forwarded under it."
)

# Why a flag cannot be forwarded, for programs (the API's error codes, the command line).
NOT_FORWARDABLE = "not_forwardable"
NO_AGREEMENT = "no_agreement"
AGREEMENT_NOT_FOUND = "agreement_not_found"
AGREEMENT_NOT_COVERING = "agreement_not_covering"
AGREEMENT_NOT_IN_FORCE = "agreement_not_in_force"


class ForwardRefused(Exception):
    """Forwarding is not allowed now; `error` says why in words for the reviewer, `code` for
    programs (one of the codes above)."""

    def __init__(self, error: FieldError, code: str = NO_AGREEMENT) -> None:
        super().__init__(error.message % error.params if error.params else error.message)
        self.error = error
        self.code = code


# --- the body ------------------------------------------------------------------------------

# The versioning policy (docs/hub.md, "Versions of the format"): a member added to the format
# keeps its `schema` value, and hubs ignore members they do not know, so the schema below
# leaves `additionalProperties` open. Anything else (a member removed, renamed, retyped or
# given another meaning) is a new major version, built only for agreements whose hub accepts
# it (SharingAgreement.max_schema). SCHEMA_VERSIONS holds every version the code can build.
SCHEMA_PREFIX = "nightreg.signal/"
SCHEMA_VERSIONS = SIGNAL_FORMATS
SCHEMA_ID = f"{SCHEMA_PREFIX}1"

_TIME = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601, with Z"}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_OPEN = (
    "Later releases may add members here without changing `schema`: ignore members you do not know."
)

SIGNAL_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://nightreg.invalid/schema/signal-1.json",
    "title": "Nachtregister signal",
    "description": (
        "One flag forwarded to the hub under a sharing agreement. Optional members are "
        "present only when the agreement allows that field; nothing the agreement does not "
        "allow is ever sent. " + _OPEN + " A change that is not an addition comes as a new "
        "`schema` value, sent only to a hub whose agreement accepts it."
    ),
    "type": "object",
    "required": [
        "schema",
        "id",
        "forwarded_at",
        "agreement",
        "review",
        "rule",
        "reason",
        "visit_count",
        "visits_elsewhere",
    ],
    "properties": {
        "schema": {
            "const": SCHEMA_ID,
            "description": "The format's major version; the same for every signal built in it.",
        },
        "id": {
            "type": "string",
            "format": "uuid",
            "description": "The signal's stable id; also the Idempotency-Key of every delivery.",
        },
        "forwarded_at": _TIME,
        "agreement": {
            "type": "object",
            "description": _OPEN,
            "required": ["reference", "name", "recipient"],
            "properties": {
                "reference": {"type": "string"},
                "name": {"type": "string"},
                "recipient": {"type": "string"},
            },
        },
        "review": {
            "enum": ["staff", "automatic"],
            "description": "staff: a person reviewed the flag; automatic: the agreement "
            "forwards this rule without review.",
        },
        "rule": {"type": "string", "description": "The rule's code (docs: the rule catalogue)."},
        "reason": {"type": "string", "description": "The flag's one-sentence reason, English."},
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "site": {
            "type": "object",
            "description": "The site the flag is filed at (the forwarding site). " + _OPEN,
            "required": ["slug", "name", "kind", "municipality"],
            "properties": {
                "slug": {"type": "string"},
                "name": {"type": "string"},
                "kind": {"enum": ["marina", "business_park"]},
                "municipality": {"type": "string"},
            },
        },
        "visit_count": {
            "type": "integer",
            "minimum": 0,
            "description": "Evidence visits at the forwarding site.",
        },
        "visits_elsewhere": {
            "type": "integer",
            "minimum": 0,
            "description": "Evidence visits at other sites: counted, never sent.",
        },
        "audit_checkpoint": {
            "type": "object",
            "description": (
                "When the agreement says so: the newest signed checkpoint of the sender's audit "
                "trail when the flag was forwarded. Keep it: saved as one line of a file, the "
                "sender's `nightreg audit verify --checkpoint FILE` shows whether its trail "
                "was cut off or rewritten since. No personal data. Keep it whole, members you "
                "do not know included."
            ),
            "required": [
                "v",
                "at",
                "head_id",
                "head_hash",
                "count",
                "keyless_through_id",
                "key_id",
                "signature",
            ],
            "properties": {
                "v": {"const": 1},
                "at": {"type": "string", "description": "When it was taken (ISO 8601)."},
                "head_id": {"type": "integer", "minimum": 0},
                "head_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "count": {"type": "integer", "minimum": 0},
                "keyless_through_id": {"type": "integer", "minimum": 0},
                "key_id": {"type": "string"},
                "signature": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
        },
        "visits": {
            "type": "array",
            "description": (
                "Present when the agreement allows any visit field: the evidence visits at the "
                "forwarding site in arrival order (oldest first; visits that arrived at the "
                "same moment in the order they were registered). Every item has the same "
                "members: exactly the visit fields the agreement allows."
            ),
            "items": {
                "type": "object",
                "description": (
                    "One visit with the fields the agreement allows. Every allowed member is "
                    "present; its value is null when the register holds nothing for it "
                    "(arrived_at and persons are never empty). `required` is empty here "
                    "because it depends on the agreement: /api/v1/signals/schema?agreement="
                    "REFERENCE answers this schema with that agreement's visit fields "
                    "required. " + _OPEN
                ),
                "required": [],
                "properties": {
                    "arrived_at": _TIME,
                    "departed_at": {**_TIME, "type": ["string", "null"]},
                    "vessel_name": _TEXT_OR_NULL,
                    "registration": _TEXT_OR_NULL,
                    "mmsi": {"type": ["string", "null"], "pattern": "^[0-9]{9}$"},
                    "flag": {
                        "type": ["string", "null"],
                        "description": "ISO 3166-1 alpha-2 country of the vessel's flag.",
                    },
                    "vessel_type": _TEXT_OR_NULL,
                    "plate": _TEXT_OR_NULL,
                    "vehicle_type": _TEXT_OR_NULL,
                    "persons": {"type": "integer", "minimum": 1},
                    "guest_name": _TEXT_OR_NULL,
                    "residence": _TEXT_OR_NULL,
                },
            },
        },
    },
}


def schema_for(agreement: SharingAgreement | None = None) -> dict[str, Any]:
    """SIGNAL_SCHEMA, or with an agreement its stricter twin: the visit item requires exactly
    the agreement's visit fields (every item carries them all, null when empty)."""
    if agreement is None:
        return SIGNAL_SCHEMA
    allowed = set(fields_of(agreement))
    properties = dict(SIGNAL_SCHEMA["properties"])
    visits = dict(properties["visits"])
    visits["items"] = {
        **visits["items"],
        "required": [name for name in VISIT_FIELDS if name in allowed],
    }
    properties["visits"] = visits
    return {**SIGNAL_SCHEMA, "properties": properties}


def schema_version(agreement: SharingAgreement) -> int:
    """The format a signal under `agreement` is built in: the newest its hub accepts."""
    accepted = [v for v in SCHEMA_VERSIONS if v <= (agreement.max_schema or 1)]
    return max(accepted) if accepted else SCHEMA_VERSIONS[0]


def _visit_value(visit: Visit, name: str) -> Any:
    value = getattr(visit, name)
    if isinstance(value, datetime):
        return utc_text(value)
    return value


def build_body(
    *,
    uid: str,
    agreement: SharingAgreement,
    flag: Flag,
    site: Site,
    visits: Sequence[Visit],
    elsewhere: int,
    forwarded_at: datetime,
    review: str,
    checkpoint: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The signal as the hub receives it: only the agreement's fields (a pure function), and
    the audit chain's `checkpoint` when the agreement shares checkpoints.

    Visits go in arrival order (a stable sort: equal arrivals keep the caller's order, which
    is the register's), each with every field the agreement allows, None (null) when empty.
    """
    allowed = set(fields_of(agreement))
    body: dict[str, Any] = {
        "schema": f"{SCHEMA_PREFIX}{schema_version(agreement)}",
        "id": uid,
        "forwarded_at": utc_text(forwarded_at),
        "agreement": {
            "reference": agreement.reference,
            "name": agreement.name,
            "recipient": agreement.recipient,
        },
        "review": review,
        "rule": flag.rule,
        "reason": _shared_reason(flag, allowed),
        "visit_count": len(visits),
        "visits_elsewhere": elsewhere,
    }
    if "score" in allowed:
        body["score"] = flag.score
    if "site" in allowed:
        body["site"] = {
            "slug": site.slug,
            "name": site.name,
            "kind": site.kind,
            "municipality": site.municipality,
        }
    if checkpoint is not None and agreement.share_audit_checkpoints:
        body["audit_checkpoint"] = dict(checkpoint)
    visit_fields = [name for name in VISIT_FIELDS if name in allowed]
    if visit_fields:
        body["visits"] = [
            {name: _visit_value(visit, name) for name in visit_fields}
            for visit in sorted(visits, key=lambda visit: visit.arrived_at)
        ]
    return body


def _shared_reason(flag: Flag, allowed: set[str]) -> str:
    """The flag's reason as the agreement allows it: built again from its parameters when one
    of them is a field the agreement does not share (issue 17, finding 8)."""
    rule = RULES.get(flag.rule)
    if rule is None:
        return flag.reason
    if not rule.reason_fields:
        return flag.reason
    params = flag.reason_params if isinstance(flag.reason_params, dict) else None
    if params is None:
        return rule.title
    return rule.shared_reason(params, allowed)


def encode(body: Mapping[str, Any]) -> str:
    """Canonical JSON: the bytes signed and sent, the same on every attempt."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- forwarding ----------------------------------------------------------------------------


def refusal_code(coverage: Coverage) -> str:
    """The code of `refusal`'s answer."""
    if isinstance(coverage, NamedCoverage):
        if not coverage.found:
            return AGREEMENT_NOT_FOUND
        if not coverage.covers:
            return AGREEMENT_NOT_COVERING
    return AGREEMENT_NOT_IN_FORCE if coverage.lapsed else NO_AGREEMENT


def refusal(coverage: Coverage, rule: str, at: datetime, tz: ZoneInfo) -> FieldError:
    """Why nothing can be forwarded for `rule`, naming the agreement that lapsed, if any."""
    if isinstance(coverage, NamedCoverage) and not (coverage.found and coverage.covers):
        if not coverage.found:
            return FieldError(MSG_AGREEMENT_UNKNOWN, {"reference": coverage.reference})
        return FieldError(
            MSG_AGREEMENT_NOT_COVERING,
            {"agreement": coverage.name, "reference": coverage.reference, "rule": rule},
        )
    if not coverage.lapsed:
        return FieldError(MSG_NO_AGREEMENT, {"rule": rule})
    agreement = coverage.lapsed[0]
    params: dict[str, str | int] = {"agreement": agreement.name, "reference": agreement.reference}
    if agreement.ended_at is not None and agreement.ended_at <= at:
        day = local_day(agreement.ended_at, tz)
        return FieldError(MSG_AGREEMENT_ENDED, {**params, "date": day.isoformat()})
    if agreement.valid_from > local_day(at, tz):
        return FieldError(
            MSG_AGREEMENT_NOT_YET, {**params, "date": agreement.valid_from.isoformat()}
        )
    until = agreement.valid_until.isoformat() if agreement.valid_until else ""
    return FieldError(MSG_AGREEMENT_EXPIRED, {**params, "date": until})


async def _evidence(session: AsyncSession, flag: Flag) -> tuple[list[Visit], int]:
    """The flag's evidence visits at its own site, and how many it has elsewhere."""
    ids = select(flag_visit.c.visit_id).where(flag_visit.c.flag_id == flag.id)
    visits = list(
        await session.scalars(
            select(Visit)
            .where(Visit.id.in_(ids), Visit.site_id == flag.site_id)
            .order_by(Visit.arrived_at, Visit.id)
        )
    )
    total = await session.scalar(
        select(func.count()).select_from(flag_visit).where(flag_visit.c.flag_id == flag.id)
    )
    return visits, int(total or 0) - len(visits)


@dataclass(frozen=True)
class Draft:
    """What forwarding a flag would send now, or why it cannot."""

    agreement: SharingAgreement | None
    body: dict[str, Any] | None
    refused: FieldError | None
    visit_ids: tuple[int, ...] = ()
    timezone: str = "UTC"  # the flag's site's: a page shows the draft's times on its clock
    code: str = ""  # when refused: why, for programs (NOT_FORWARDABLE, AGREEMENT_NOT_FOUND, ...)


async def _draft(
    session: AsyncSession,
    flag: Flag,
    *,
    now: datetime,
    review: str,
    uid: str,
    reference: str | None = None,
) -> Draft:
    """The signal `flag` would make now: under the agreement with `reference` when the caller
    names one (the API, the command line), else under the one that covers its rule."""
    site = await session.get(Site, flag.site_id)
    if site is None:
        raise NotFound(f"site {flag.site_id}")
    tz = ZoneInfo(site.timezone)
    rule = RULES.get(flag.rule)
    if rule is None or not rule.forwardable:
        return Draft(None, None, FieldError(MSG_NOT_FORWARDABLE), code=NOT_FORWARDABLE)
    if reference is None:
        coverage = await covering(session, flag.rule, now, tz)
    else:
        coverage = await named(session, reference, flag.rule, now, tz)
    if coverage.agreement is None:
        error = refusal(coverage, flag.rule, now, tz)
        return Draft(None, None, error, timezone=site.timezone, code=refusal_code(coverage))
    visits, elsewhere = await _evidence(session, flag)
    checkpoint = None
    if coverage.agreement.share_audit_checkpoints:
        checkpoint = (await audit_checkpoints.take_in(session, now=now)).as_dict()
    body = build_body(
        uid=uid, agreement=coverage.agreement, flag=flag, site=site, visits=visits,
        elsewhere=elsewhere, forwarded_at=now, review=review, checkpoint=checkpoint,
    )  # fmt: skip
    return Draft(coverage.agreement, body, None, tuple(v.id for v in visits), site.timezone)


async def preview(
    db: Database, actor: Actor, flag: Flag, *, now: datetime, reference: str | None = None
) -> Draft:
    """What forwarding `flag` (already scoped by the caller) would send, under the agreement
    with `reference` if one is named; the read is audited.

    The id in a preview is a placeholder: the real one is made when the flag is forwarded.
    """
    actor.require(REVIEW, flag.site_id)
    async with db.read() as session:
        draft = await _draft(
            session, flag, now=now, review="staff", uid=str(uuid.UUID(int=0)), reference=reference
        )
    if draft.body is not None:
        await audit.log(
            db, actor, "signal_previewed", at=now, site_id=flag.site_id, object_type="flag",
            object_id=flag.id, object_ids=list(draft.visit_ids),
            details={"agreement": draft.agreement.reference if draft.agreement else ""},
        )  # fmt: skip
    return draft


async def queue(
    session: AsyncSession,
    actor: Actor,
    flag: Flag,
    *,
    now: datetime,
    review: str = "staff",
    reference: str | None = None,
) -> Signal:
    """Write the flag's signal into the outbox, inside the caller's transaction.

    Raises ForwardRefused when no agreement in force covers the rule (or the one named by
    `reference` is unknown, does not cover it or is not in force; or the rule is never
    forwarded). The caller sets the flag's status; the signal is pending and due at once.
    """
    uid = str(uuid.uuid4())
    draft = await _draft(session, flag, now=now, review=review, uid=uid, reference=reference)
    if draft.refused is not None or draft.body is None or draft.agreement is None:
        raise ForwardRefused(
            draft.refused or FieldError(MSG_NO_AGREEMENT, {"rule": flag.rule}),
            draft.code or NO_AGREEMENT,
        )
    signal = Signal(
        uid=uid, flag_id=flag.id, agreement_id=draft.agreement.id, site_id=flag.site_id,
        rule=flag.rule, body=encode(draft.body), status="pending", created_at=now,
        forwarded_by=actor.label[:300], attempts=0, next_attempt_at=now,
    )  # fmt: skip
    session.add(signal)
    await session.flush()
    await audit.record(
        session, actor, "signal_queued", at=now, site_id=flag.site_id, object_type="signal",
        object_id=signal.id, object_ids=list(draft.visit_ids),
        details={
            "uid": uid, "flag": flag.id, "rule": flag.rule, "review": review,
            "agreement": draft.agreement.reference,
            "fields": list(fields_of(draft.agreement)),
            **_checkpoint_sent(draft.body),
        },
    )  # fmt: skip
    return signal


def _checkpoint_sent(body: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint a signal carries, as its `signal_queued` event names it."""
    checkpoint = body.get("audit_checkpoint")
    if not checkpoint:
        return {}
    return {"checkpoint": {"head_id": checkpoint["head_id"], "count": checkpoint["count"]}}


async def auto_forward(session: AsyncSession, flag_ids: Sequence[int], *, now: datetime) -> int:
    """Forward, without review, the open flags whose rule an agreement in force names for it.

    Called inside the transaction that raised (or reopened) the flags; returns how many
    went. Agreements are few: they are read once per call.
    """
    if not flag_ids:
        return 0
    agreements = await all_agreements(session)
    auto = {rule for a in agreements for rule in auto_rules_of(a)}
    if not auto:
        return 0
    flags = list(
        await session.scalars(
            select(Flag).where(Flag.id.in_(flag_ids), Flag.rule.in_(auto), Flag.status == "open")
        )
    )
    sent = 0
    for flag in flags:
        site = await session.get(Site, flag.site_id)
        if site is None:
            continue
        coverage = choose(agreements, flag.rule, now, ZoneInfo(site.timezone))
        if coverage.agreement is None or flag.rule not in auto_rules_of(coverage.agreement):
            continue
        await queue(session, SYSTEM, flag, now=now, review="automatic")
        flag.status = "forwarded"
        flag.reviewed_by = f"automatic ({coverage.agreement.reference})"[:300]
        flag.reviewed_at = now
        flag.review_reason = None
        await audit.record(
            session, SYSTEM, "flag_reviewed", at=now, site_id=flag.site_id,
            object_type="flag", object_id=flag.id,
            details={"action": "forward", "reason": "", "from": "open", "to": "forwarded",
                     "automatic": coverage.agreement.reference},
        )  # fmt: skip
        sent += 1
    return sent


async def signals_of_flag(session: AsyncSession, flag_id: int) -> list[Signal]:
    """The flag's signals, newest first (its page shows what went and whether it arrived)."""
    return list(
        await session.scalars(
            select(Signal).where(Signal.flag_id == flag_id).order_by(Signal.id.desc())
        )
    )


MSG_WITHHELD = "not sent: the agreement {reference} was no longer in force at delivery"


_UNDELIVERED = Signal.status.in_(("pending", "failed"))


async def withhold_lapsed(db: Database, *, now: datetime) -> int:
    """Withhold the undelivered signals whose agreement is no longer in force; how many.

    Nothing leaves the system outside an agreement in force (DESIGN §3): a signal queued the
    day before its agreement ended is not delivered the day after, by push or by pull. A
    failed one (the hub refused it) is withheld too, since a pull would still hand it out.
    The dispatcher calls this at the start of every run, a pull before it reads.
    """
    async with db.read() as session:
        pairs = (
            await session.execute(
                select(Signal.agreement_id, Signal.site_id)
                .where(_UNDELIVERED, Signal.withheld.is_(False))
                .distinct()
            )
        ).all()
        if not pairs:
            return 0
        agreements = {a.id: a for a in await all_agreements(session)}
        sites = select(Site.id, Site.timezone).where(Site.id.in_({s for _a, s in pairs}))
        zones: dict[int, str] = {row.id: row.timezone for row in await session.execute(sites)}
    lapsed = [
        (agreement_id, site_id)
        for agreement_id, site_id in pairs
        if not in_force(agreements[agreement_id], now, ZoneInfo(zones[site_id]))
    ]
    withheld = 0
    for agreement_id, site_id in lapsed:
        reference = agreements[agreement_id].reference
        async with db.write() as session:
            ids = list(
                await session.scalars(
                    select(Signal.id).where(
                        _UNDELIVERED,
                        Signal.withheld.is_(False),
                        Signal.agreement_id == agreement_id,
                        Signal.site_id == site_id,
                    )
                )
            )
            if not ids:
                continue
            await session.execute(
                update(Signal)
                .where(Signal.id.in_(ids), _UNDELIVERED)
                .values(
                    status="failed",
                    withheld=True,
                    last_error=MSG_WITHHELD.format(reference=reference),
                )
            )
            await audit.record(
                session, SYSTEM, "signals_withheld", at=now, site_id=site_id,
                object_type="agreement", object_id=agreement_id, object_ids=ids,
                details={"agreement": reference, "count": len(ids)},
            )  # fmt: skip
            withheld += len(ids)
    return withheld


class RetryRefused(Exception):
    """A signal that cannot be sent again; `message` says why."""

    def __init__(self, message: str, params: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.params = params or {}


# Said by the exception (logs, the CLI); the Jobs page says only that it cannot be done.
MSG_RETRY_NOT_FAILED = "only a signal that was not delivered can be sent again"
MSG_RETRY_WITHHELD = "withheld: its agreement is no longer in force, so it is never sent"


async def retry(db: Database, actor: Actor, uid: str, *, now: datetime) -> Signal:
    """Send a failed signal again at the next dispatch (after the hub fixed its side).

    The same bytes and the same id go out, so the hub can still drop a copy it has. A
    withheld signal stays withheld: its agreement no longer allows it to leave. Audited with
    the error it failed with.
    """
    actor.require("jobs.manage")
    async with db.write() as session:
        signal = await session.scalar(select(Signal).where(Signal.uid == uid[:36]))
        if signal is None:
            raise NotFound(f"signal {uid[:36]}")
        if signal.status != "failed":
            raise RetryRefused(MSG_RETRY_NOT_FAILED)
        if signal.withheld:
            raise RetryRefused(MSG_RETRY_WITHHELD)
        error = signal.last_error
        signal.status = "pending"
        signal.next_attempt_at = now
        await audit.record(
            session, actor, "signal_retried", at=now, site_id=signal.site_id,
            object_type="signal", object_id=signal.id,
            details={"uid": signal.uid, "error": error or ""},
        )  # fmt: skip
    return signal
