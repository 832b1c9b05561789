"""Sharing agreements: what may be passed to the hub, under which reference, until when.

Nothing leaves the system outside an agreement in force (DESIGN §3): forwarding a flag looks
up the agreement that covers its rule (`covering`) and builds the signal from the fields that
agreement allows, and nothing else (nightreg.services.signals).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.clock import local_day
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import SharingAgreement
from nightreg.rules import RULES
from nightreg.services import audit
from nightreg.services.access import Actor, NotFound
from nightreg.validation import MSG_TOO_LONG, FieldError, Invalid, clean_text

VIEW = "agreements.view"
MANAGE = "agreements.manage"

# The fields an agreement may allow, in the order a privacy officer reads them, with their
# labels. The rule and its reason go into every signal (the hub must know what it is looking
# at); the others only when the agreement names them. Visit fields are per evidence visit.
ALWAYS_SENT = ("rule", "reason")
FIELDS: dict[str, str] = {
    "rule": N_("Rule"),
    "reason": N_("Reason"),
    "score": N_("Score"),
    "site": N_("Site"),
    "arrived_at": N_("Arrival time"),
    "departed_at": N_("Departure time"),
    "vessel_name": N_("Vessel name"),
    "registration": N_("Registration"),
    "mmsi": N_("MMSI"),
    "flag": N_("Flag (country of the vessel)"),
    "vessel_type": N_("Vessel type"),
    "plate": N_("Licence plate"),
    "vehicle_type": N_("Vehicle type"),
    "persons": N_("Persons"),
    "guest_name": N_("Guest name"),
    "residence": N_("Place of residence"),
}
VISIT_FIELDS = (
    "arrived_at",
    "departed_at",
    "vessel_name",
    "registration",
    "mmsi",
    "flag",
    "vessel_type",
    "plate",
    "vehicle_type",
    "persons",
    "guest_name",
    "residence",
)
DEFAULT_KEEP_DAYS = 180
# The major versions of the signal format (`nightreg.signal/N`) this code can build, oldest
# first (nightreg.services.signals builds them; docs/hub.md, "Versions of the format"). An
# agreement names the newest its hub accepts (`max_schema`); a new agreement starts at 1, and
# an admin raises it once the hub says it reads a newer one.
SIGNAL_FORMATS = (1,)


def codes(value: object) -> tuple[str, ...]:
    """A list of codes as stored; anything else reads as none."""
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value)


def fields_of(agreement: SharingAgreement) -> tuple[str, ...]:
    """The fields a signal under this agreement carries, in FIELDS order, rule and reason too."""
    allowed = set(codes(agreement.fields)) | set(ALWAYS_SENT)
    return tuple(f for f in FIELDS if f in allowed)


def rules_of(agreement: SharingAgreement) -> tuple[str, ...]:
    return codes(agreement.rules)


def auto_rules_of(agreement: SharingAgreement) -> tuple[str, ...]:
    """Rules forwarded without a staff review: only those the agreement also covers."""
    covered = set(codes(agreement.rules))
    return tuple(r for r in codes(agreement.auto_rules) if r in covered)


def in_force(agreement: SharingAgreement, at: datetime, tz: ZoneInfo) -> bool:
    """Valid on the local day of `at` (both ends inclusive) and not ended before `at`."""
    day = local_day(at, tz)
    if day < agreement.valid_from:
        return False
    if agreement.valid_until is not None and day > agreement.valid_until:
        return False
    return agreement.ended_at is None or agreement.ended_at > at


@dataclass(frozen=True)
class Coverage:
    """The agreement a rule's flags go out under, or why there is none."""

    agreement: SharingAgreement | None
    # When there is none: the agreements that would cover the rule but are not in force
    # (ended, expired or not yet valid), newest first, so a refusal can name them.
    lapsed: tuple[SharingAgreement, ...] = ()


def choose(
    agreements: Sequence[SharingAgreement], rule: str, at: datetime, tz: ZoneInfo
) -> Coverage:
    """Of the agreements covering `rule`, the newest in force (latest valid_from, then id)."""
    covering = [a for a in agreements if rule in rules_of(a)]
    covering.sort(key=lambda a: (a.valid_from, a.id), reverse=True)
    for agreement in covering:
        if in_force(agreement, at, tz):
            return Coverage(agreement)
    return Coverage(None, tuple(sorted(covering, key=lambda a: _lapse_order(a, at, tz))))


def _lapse_order(agreement: SharingAgreement, at: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """Which lapsed agreement a refusal names first: the next to come into force, else the
    one whose last day in force is the most recent."""
    today = local_day(at, tz)
    if agreement.valid_from > today:
        return (0, agreement.valid_from.toordinal())
    last = agreement.valid_until or today
    if agreement.ended_at is not None:
        last = min(last, local_day(agreement.ended_at, tz))
    return (1, -last.toordinal())


async def all_agreements(session: AsyncSession) -> list[SharingAgreement]:
    """Every agreement: a handful per installation, so rules are matched in Python."""
    return list(await session.scalars(select(SharingAgreement).order_by(SharingAgreement.id)))


async def covering(session: AsyncSession, rule: str, at: datetime, tz: ZoneInfo) -> Coverage:
    return choose(await all_agreements(session), rule, at, tz)


@dataclass(frozen=True)
class NamedCoverage(Coverage):
    """The agreement a caller named by its reference, or why a flag cannot go under it.

    `found` says whether any agreement has the reference at all; `covers` whether one of them
    covers the rule (an agreement holds for every site: it names rules, not sites).
    """

    found: bool = False
    covers: bool = False
    reference: str = ""  # as the caller named it
    name: str = ""  # of the newest agreement with the reference, for a refusal to name it


async def named(
    session: AsyncSession, reference: str, rule: str, at: datetime, tz: ZoneInfo
) -> NamedCoverage:
    """The agreement with this reference under which `rule`'s flags may go now.

    The API and the command line forward under the agreement their caller names (and saw in
    the preview), rather than the one the page chooses. References are the partners' numbers
    and need not be unique: a renewed agreement may keep its number, so the newest of them in
    force that covers the rule is taken, as `choose` does.
    """
    wanted = reference.strip()
    found = [a for a in await all_agreements(session) if a.reference == wanted] if wanted else []
    coverage = choose(found, rule, at, tz)
    covers = any(rule in rules_of(a) for a in found)
    newest = max(found, key=lambda a: (a.valid_from, a.id), default=None)
    return NamedCoverage(
        coverage.agreement,
        coverage.lapsed,
        found=newest is not None,
        covers=covers,
        reference=wanted[:MAX_REFERENCE],
        name=newest.name if newest is not None else "",
    )


# --- states ----------------------------------------------------------------------------------

IN_FORCE, NOT_YET, EXPIRED, ENDED = "in_force", "not_yet", "expired", "ended"
STATES = (IN_FORCE, NOT_YET, EXPIRED, ENDED)
STATE_LABELS = {
    IN_FORCE: N_("In force"),
    NOT_YET: N_("Not yet in force"),
    EXPIRED: N_("Expired"),
    ENDED: N_("Ended"),
}


def state(agreement: SharingAgreement, at: datetime, tz: ZoneInfo) -> str:
    """in_force, not_yet, expired or ended at `at`: an agreement an admin ended is `ended`
    whatever its dates said."""
    if in_force(agreement, at, tz):
        return IN_FORCE
    if agreement.ended_at is not None and agreement.ended_at <= at:
        return ENDED
    if local_day(at, tz) < agreement.valid_from:
        return NOT_YET
    return EXPIRED


def forwardable_rules() -> tuple[str, ...]:
    """The rule codes an agreement may cover, in the catalogue's order (never `overdue`)."""
    return tuple(code for code, rule in RULES.items() if rule.forwardable)


# --- creating and ending ---------------------------------------------------------------------

MAX_NAME = 200
MAX_RECIPIENT = 200
MAX_REFERENCE = 100
MAX_END_REASON = 1000
MIN_KEEP_DAYS, MAX_KEEP_DAYS = 1, 3650

MSG_NAME = N_("Please enter a name for the agreement.")
MSG_RECIPIENT = N_("Please enter who receives the signals (the hub or partner).")
MSG_REFERENCE = N_("Please enter the agreement's reference (the partners' number for it).")
MSG_DATE = N_("Please enter a date like 2026-07-14.")
MSG_VALID_FROM = N_("Please enter the first day on which the agreement is in force.")
MSG_UNTIL_BEFORE = N_("The last day cannot be before the first day.")
MSG_UNTIL_PAST = N_("The last day has passed already: such an agreement would never be in force.")
MSG_RULES = N_("Please choose at least one rule whose flags may be forwarded.")
MSG_RULE_CHOICE = N_("Please choose rules from the list; flags of this rule are never forwarded.")
MSG_FIELD_CHOICE = N_("Please choose fields from the list.")
MSG_AUTO_NOT_COVERED = N_(
    "Automatic forwarding can only be chosen for rules the agreement covers: tick the rule "
    "above too, or untick it here."
)
MSG_KEEP_DAYS = N_("Please enter a number of days from 1 to 3650.")
MSG_MAX_SCHEMA = N_("Please choose a version of the signal format this installation can send.")
MSG_END_REASON = N_("Please say why the agreement ends.")
MSG_ALREADY_ENDED = N_("This agreement has been ended already; it cannot be ended twice.")


class AgreementInvalid(Invalid):
    """An agreement (or its end) that cannot be saved as submitted: errors by field name.

    Field names are the form's: name, recipient, reference, valid_from, valid_until, rules,
    fields, auto_rules, keep_days, max_schema (share_audit_checkpoints is a tick box); for an
    end, reason,
    or `agreement` when it has ended already.
    """


@dataclass(frozen=True)
class AgreementData:
    """A checked agreement, ready to be stored."""

    name: str
    recipient: str
    reference: str
    valid_from: date
    valid_until: date | None
    rules: tuple[str, ...]
    fields: tuple[str, ...]
    auto_rules: tuple[str, ...]
    keep_days: int
    # Signals carry the audit chain's newest signed checkpoint (issue 17, finding 4).
    share_audit_checkpoints: bool = False
    # The newest signal format its hub accepts (issue 18).
    max_schema: int = 1


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    return value if isinstance(value, str) else ""


def _choices(values: Mapping[str, Any], name: str) -> list[str]:
    """A group of ticked boxes: a list (or one string, or a tuple from the command line)."""
    value = values.get(name)
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [str(v) for v in items[:200] if v not in (None, "")]


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day(value: object) -> date | None:
    """A date, or text YYYY-MM-DD; None when empty; ValueError for anything else."""
    if isinstance(value, datetime):
        raise ValueError(value)
    if isinstance(value, date):
        return value
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return None
    if not _ISO_DAY.fullmatch(text):  # fromisoformat also takes 20260714 and 2026-W29-2
        raise ValueError(text)
    return date.fromisoformat(text)


def _required_text(
    values: Mapping[str, Any], name: str, limit: int, missing: str, errors: dict[str, FieldError]
) -> str:
    text = clean_text(_text(values, name), limit)
    if not text:
        errors[name] = FieldError(missing)
    elif len(text) > limit:
        errors[name] = FieldError(MSG_TOO_LONG, {"max": limit})
    return text


def _keep_days(value: object, errors: dict[str, FieldError]) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_KEEP_DAYS
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    else:
        text = value.strip() if isinstance(value, str) else ""
        number = int(text) if text.isdigit() and len(text) < 8 else None
    if number is None or not MIN_KEEP_DAYS <= number <= MAX_KEEP_DAYS:
        errors["keep_days"] = FieldError(MSG_KEEP_DAYS)
        return DEFAULT_KEEP_DAYS
    return number


def max_schema_of(value: object, errors: dict[str, FieldError]) -> int:
    """The newest signal format a hub accepts, as typed: empty means 1."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return SIGNAL_FORMATS[0]
    text = value.strip() if isinstance(value, str) else ""
    number: int | None = value if isinstance(value, int) and not isinstance(value, bool) else None
    if text.isascii() and text.isdigit() and len(text) < 4:
        number = int(text)
    if number not in SIGNAL_FORMATS:
        errors["max_schema"] = FieldError(MSG_MAX_SCHEMA)
        return SIGNAL_FORMATS[0]
    return number


def validate(values: Mapping[str, Any], *, today: date) -> AgreementData:
    """Check a submitted agreement field by field (a pure function); AgreementInvalid lists
    every field at fault.

    `today` is the local date of the installation: an agreement whose last day has passed
    would never be in force, and is refused rather than stored.

    Longer than most: one field after another in the form's order, each a few lines, so that
    the checks read as the form does.
    """
    errors: dict[str, FieldError] = {}
    name = _required_text(values, "name", MAX_NAME, MSG_NAME, errors)
    recipient = _required_text(values, "recipient", MAX_RECIPIENT, MSG_RECIPIENT, errors)
    reference = _required_text(values, "reference", MAX_REFERENCE, MSG_REFERENCE, errors)

    valid_from: date | None = None
    try:
        valid_from = _day(values.get("valid_from"))
        if valid_from is None:
            errors["valid_from"] = FieldError(MSG_VALID_FROM)
    except ValueError:
        errors["valid_from"] = FieldError(MSG_DATE)
    valid_until: date | None = None
    try:
        valid_until = _day(values.get("valid_until"))
    except ValueError:
        errors["valid_until"] = FieldError(MSG_DATE)
    if valid_until is not None:
        if valid_from is not None and valid_until < valid_from:
            errors["valid_until"] = FieldError(MSG_UNTIL_BEFORE)
        elif valid_until < today:
            errors["valid_until"] = FieldError(MSG_UNTIL_PAST)

    allowed_rules = forwardable_rules()
    chosen_rules = set(_choices(values, "rules"))
    if not chosen_rules:
        errors["rules"] = FieldError(MSG_RULES)
    elif not chosen_rules <= set(allowed_rules):
        errors["rules"] = FieldError(MSG_RULE_CHOICE)
    rules = tuple(code for code in allowed_rules if code in chosen_rules)

    chosen_fields = set(_choices(values, "fields"))
    if not chosen_fields <= set(FIELDS):
        errors["fields"] = FieldError(MSG_FIELD_CHOICE)
    chosen_fields |= set(ALWAYS_SENT)
    fields = tuple(code for code in FIELDS if code in chosen_fields)

    chosen_auto = set(_choices(values, "auto_rules"))
    if not chosen_auto <= set(allowed_rules):
        errors["auto_rules"] = FieldError(MSG_RULE_CHOICE)
    elif not chosen_auto <= chosen_rules:
        errors["auto_rules"] = FieldError(MSG_AUTO_NOT_COVERED)
    auto_rules = tuple(code for code in allowed_rules if code in chosen_auto)

    keep_days = _keep_days(values.get("keep_days"), errors)
    share_checkpoints = values.get("share_audit_checkpoints") in (True, "1", "on", "yes", "true")
    max_schema = max_schema_of(values.get("max_schema"), errors)
    if errors:
        raise AgreementInvalid(errors)
    assert valid_from is not None  # an error otherwise
    return AgreementData(
        name=name,
        recipient=recipient,
        reference=reference,
        valid_from=valid_from,
        valid_until=valid_until,
        rules=rules,
        fields=fields,
        auto_rules=auto_rules,
        keep_days=keep_days,
        share_audit_checkpoints=share_checkpoints,
        max_schema=max_schema,
    )


def as_record(agreement: SharingAgreement) -> dict[str, Any]:
    """The whole agreement as the audit trail keeps it (and the command line prints it)."""
    return {
        "id": agreement.id,
        "name": agreement.name,
        "recipient": agreement.recipient,
        "reference": agreement.reference,
        "valid_from": agreement.valid_from.isoformat(),
        "valid_until": agreement.valid_until.isoformat() if agreement.valid_until else None,
        "rules": list(rules_of(agreement)),
        "fields": list(fields_of(agreement)),
        "auto_rules": list(auto_rules_of(agreement)),
        "keep_days": agreement.keep_days,
        "share_audit_checkpoints": bool(agreement.share_audit_checkpoints),
        "max_schema": agreement.max_schema or 1,
        "created_at": agreement.created_at.isoformat() if agreement.created_at else None,
        "created_by": agreement.created_by,
        "ended_at": agreement.ended_at.isoformat() if agreement.ended_at else None,
        "ended_by": agreement.ended_by,
        "end_reason": agreement.end_reason,
    }


def _dump(codes_: Sequence[str]) -> list[str]:
    return list(codes_)


async def create(
    db: Database, actor: Actor, values: Mapping[str, Any], *, now: datetime, tz: ZoneInfo
) -> SharingAgreement:
    """Check and store a new agreement; audited (the whole agreement) in the same transaction.

    `values` are the form's fields as text (rules, fields and auto_rules as lists of codes);
    `tz` is the installation's time zone, whose dates the agreement's days are.
    """
    actor.require(MANAGE)
    data = validate(values, today=local_day(now, tz))
    async with db.write() as session:
        agreement = SharingAgreement(
            name=data.name,
            recipient=data.recipient,
            reference=data.reference,
            valid_from=data.valid_from,
            valid_until=data.valid_until,
            rules=_dump(data.rules),
            fields=_dump(data.fields),
            auto_rules=_dump(data.auto_rules),
            keep_days=data.keep_days,
            share_audit_checkpoints=data.share_audit_checkpoints,
            max_schema=data.max_schema,
            created_at=now,
            created_by=actor.label[:300],
        )
        session.add(agreement)
        await session.flush()
        await audit.record(
            session,
            actor,
            "agreement_created",
            at=now,
            object_type="agreement",
            object_id=agreement.id,
            details=as_record(agreement),
        )
    return agreement


async def end(
    db: Database, actor: Actor, agreement_id: int, reason: str, *, now: datetime
) -> SharingAgreement:
    """End an agreement now, with a reason; audited. It stays readable for good (signals name
    it); ending it twice is refused (AgreementInvalid on `agreement`)."""
    actor.require(MANAGE)
    cleaned = clean_text(reason if isinstance(reason, str) else "", MAX_END_REASON, multiline=True)
    async with db.write() as session:
        stmt = select(SharingAgreement).where(SharingAgreement.id == agreement_id)
        if not db.is_sqlite:  # two admins ending it at once: the second sees the first's end
            stmt = stmt.with_for_update()
        agreement = await session.scalar(stmt)
        if agreement is None:
            raise NotFound(f"agreement {agreement_id}")
        if agreement.ended_at is not None:
            raise AgreementInvalid({"agreement": FieldError(MSG_ALREADY_ENDED)})
        if not cleaned:
            raise AgreementInvalid({"reason": FieldError(MSG_END_REASON)})
        if len(cleaned) > MAX_END_REASON:
            raise AgreementInvalid({"reason": FieldError(MSG_TOO_LONG, {"max": MAX_END_REASON})})
        agreement.ended_at = now
        agreement.ended_by = actor.label[:300]
        agreement.end_reason = cleaned
        await session.flush()
        await audit.record(
            session,
            actor,
            "agreement_ended",
            at=now,
            object_type="agreement",
            object_id=agreement.id,
            details=as_record(agreement),
        )
    return agreement


async def set_max_schema(
    db: Database, actor: Actor, agreement_id: int, value: object, *, now: datetime
) -> SharingAgreement:
    """Change the newest signal format the agreement's hub accepts; audited (before, after).

    The only thing about an agreement that changes after it is made: the hub upgrades its
    receiver, and signals forwarded from then on are built in the newer format (those already
    in the outbox keep their bytes). An ended agreement is not changed.
    """
    actor.require(MANAGE)
    errors: dict[str, FieldError] = {}
    max_schema = max_schema_of(value, errors)
    if errors:
        raise AgreementInvalid(errors)
    async with db.write() as session:
        agreement = await session.get(SharingAgreement, agreement_id)
        if agreement is None:
            raise NotFound(f"agreement {agreement_id}")
        if agreement.ended_at is not None:
            raise AgreementInvalid({"agreement": FieldError(MSG_ALREADY_ENDED)})
        before = agreement.max_schema
        agreement.max_schema = max_schema
        await session.flush()
        await audit.record(
            session, actor, "agreement_changed", at=now, object_type="agreement",
            object_id=agreement.id,
            details={"reference": agreement.reference, "max_schema": [before, max_schema]},
        )  # fmt: skip
    return agreement


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementRow:
    agreement: SharingAgreement
    state: str


async def list_agreements(
    db: Database, actor: Actor, *, now: datetime, tz: ZoneInfo
) -> list[AgreementRow]:
    """Every agreement with its state at `now`: those in force first, then those still to
    come, then the expired and the ended; newest first within each.

    Agreements hold no personal data (who may receive what), so reading them is not audited.
    """
    actor.require(VIEW)
    async with db.read() as session:
        found = await all_agreements(session)
    rows = [AgreementRow(a, state(a, now, tz)) for a in found]
    rows.sort(key=lambda r: (STATES.index(r.state), -r.agreement.id))
    return rows


async def get(db: Database, actor: Actor, agreement_id: int) -> SharingAgreement:
    """One agreement, ended or not; NotFound when there is none with that id."""
    actor.require(VIEW)
    async with db.read() as session:
        agreement = await session.get(SharingAgreement, agreement_id)
    if agreement is None:
        raise NotFound(f"agreement {agreement_id}")
    return agreement
