"""The agreement in plain language, as the agreement's page shows it for a privacy officer to
read, print and sign off: who receives what and when, which rules, which fields (and which
never), who decides, how long the sender keeps it, how signals travel, what is recorded.

The prose is here, beside the structure the page renders (`Section`, `Block`, `Item`:
admin's agreement template lays them out); nightreg.services.agreements holds the use-cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.lists import format_list

from nightreg.clock import local_day
from nightreg.i18n import N_, get_locale, gettext, ngettext
from nightreg.models import SharingAgreement
from nightreg.rules import RULES
from nightreg.services.agreements import (
    FIELDS,
    VISIT_FIELDS,
    auto_rules_of,
    fields_of,
    forwardable_rules,
    rules_of,
)

# What a field holds where its label alone does not say, for the agreement's summary.
FIELD_NOTES: dict[str, str] = {
    "rule": N_("which rule raised the flag"),
    "reason": N_("the flag's one-sentence explanation, in English"),
    "score": N_("from 0 to 100, how strongly the pattern shows"),
    "site": N_("the site's name, short name, kind and municipality"),
}


@dataclass(frozen=True)
class Item:
    """One line of a list in the summary: a term (a rule's title, a field) and what it means."""

    term: str
    detail: str = ""


@dataclass(frozen=True)
class Block:
    """A paragraph, or a list when `items` is set (then `text` may introduce it)."""

    text: str = ""
    items: tuple[Item, ...] = ()


@dataclass(frozen=True)
class Section:
    key: str  # stable: parties, rules, fields, review, retention, delivery, audit
    heading: str
    blocks: tuple[Block, ...]


def _date_text(day: date) -> str:
    # "1 December 2026" rather than the American "December 1, 2026": the partners are Dutch.
    locale = get_locale()
    return format_date(day, format="long", locale="en_GB" if locale == "en" else locale)


def _list_text(items: Sequence[str]) -> str:
    locale = get_locale()
    return format_list(list(items), locale="en_GB" if locale == "en" else locale)


def _rule_title(code: str) -> str:
    rule = RULES.get(code)
    return gettext(rule.title) if rule else code


def _field_item(code: str) -> Item:
    note = FIELD_NOTES.get(code)
    return Item(gettext(FIELDS[code]), gettext(note) if note else "")


def _rule_items(rule_codes: Sequence[str]) -> tuple[Item, ...]:
    items = []
    for code in rule_codes:
        rule = RULES.get(code)
        if rule is None:  # stored by a version that knew it; kept visible, never hidden
            items.append(
                Item(code, gettext("A rule this version of the night register does not know."))
            )
        else:
            items.append(Item(gettext(rule.title), gettext(rule.rationale)))
    return tuple(items)


def _parties(agreement: SharingAgreement, tz: ZoneInfo) -> Section:
    blocks = [
        Block(
            gettext(
                "Under this agreement %(recipient)s receives signals from this night register: "
                "flags that a rule raised about visits, with the data listed below and nothing "
                "else.",
                recipient=agreement.recipient,
            )
        ),
        Block(
            gettext(
                "The agreement is called “%(name)s”; its reference is %(reference)s. Every "
                "signal names that reference.",
                name=agreement.name,
                reference=agreement.reference,
            )
        ),
    ]
    start = _date_text(agreement.valid_from)
    if agreement.valid_until is not None:
        validity = gettext(
            "It is in force from %(start)s until %(end)s, both days included; outside those "
            "days nothing is forwarded under it.",
            start=start,
            end=_date_text(agreement.valid_until),
        )
    else:
        validity = gettext(
            "It is in force from %(start)s, with no last day, until an administrator ends it; "
            "before that day nothing is forwarded under it.",
            start=start,
        )
    blocks.append(
        Block(validity + " " + gettext("Days are counted in the time zone %(tz)s.", tz=tz.key))
    )
    if agreement.ended_at is not None:
        blocks.append(
            Block(
                gettext(
                    "It was ended on %(date)s by %(who)s, with this reason: %(reason)s. "
                    "Nothing is forwarded under it since.",
                    date=_date_text(local_day(agreement.ended_at, tz)),
                    who=agreement.ended_by or "",
                    reason=agreement.end_reason or "",
                )
            )
        )
    return Section("parties", gettext("Who receives what"), tuple(blocks))


def _rules(agreement: SharingAgreement) -> Section:
    covered = rules_of(agreement)
    others = [code for code in forwardable_rules() if code not in covered]
    blocks = [
        Block(
            gettext(
                "Only flags of these rules can be forwarded under this agreement. Each rule "
                "looks at behaviour, never at who a person is:"
            ),
            _rule_items(covered),
        )
    ]
    if others:
        blocks.append(
            Block(
                gettext(
                    "Flags of these rules are never forwarded under this agreement: %(rules)s.",
                    rules=_list_text([_rule_title(code) for code in others]),
                )
            )
        )
    blocks.append(
        Block(
            gettext(
                "Operational flags, such as a visitor who stayed past their expected "
                "departure, are for the site only and are never forwarded under any agreement."
            )
        )
    )
    return Section("rules", gettext("Which flags"), tuple(blocks))


def _fields(agreement: SharingAgreement) -> Section:
    shared = fields_of(agreement)
    withheld = [code for code in FIELDS if code not in shared]
    blocks = [
        Block(
            gettext("A signal carries exactly these fields of the flag and its visits:"),
            tuple(_field_item(code) for code in shared),
        )
    ]
    per_visit = [code for code in VISIT_FIELDS if code in shared]
    if per_visit:
        blocks.append(
            Block(
                gettext(
                    "%(fields)s are given for each visit the flag rests on at the site that "
                    "forwards it. Of visits at other sites only their number is sent.",
                    fields=_list_text([gettext(FIELDS[code]) for code in per_visit]),
                )
            )
        )
    else:
        blocks.append(
            Block(
                gettext(
                    "No data about the visits themselves is sent: only how many visits the "
                    "flag rests on."
                )
            )
        )
    blocks.append(
        Block(
            gettext(
                "Every signal also carries its own id, the time it was forwarded, this "
                "agreement's name, recipient and reference, whether a person reviewed it, and "
                "how many visits the flag rests on."
            )
        )
    )
    if withheld:
        blocks.append(
            Block(
                gettext("These fields are never sent under this agreement:"),
                tuple(Item(gettext(FIELDS[code])) for code in withheld),
            )
        )
    blocks.append(
        Block(
            gettext(
                "No other data from the register ever leaves under this agreement: not the "
                "visitor's country, contact details, identity document, berth or notes."
            )
        )
    )
    return Section("fields", gettext("Which data"), tuple(blocks))


def _review(agreement: SharingAgreement) -> Section:
    automatic = auto_rules_of(agreement)
    reviewed = [code for code in rules_of(agreement) if code not in automatic]
    preview = gettext(
        "Before forwarding, the staff member sees a preview of exactly what will be sent."
    )
    if not automatic:
        blocks = [
            Block(
                gettext(
                    "A staff member of the site reviews every flag and decides whether to "
                    "forward it; nothing is forwarded automatically."
                )
                + " "
                + preview
            )
        ]
    else:
        blocks = [
            Block(
                gettext(
                    "Flags of these rules are forwarded automatically as soon as they are "
                    "raised, without a staff review:"
                ),
                _rule_items(automatic),
            )
        ]
        if reviewed:
            blocks.append(
                Block(
                    gettext(
                        "Flags of %(rules)s are forwarded only after a staff member of the "
                        "site has reviewed them.",
                        rules=_list_text([_rule_title(code) for code in reviewed]),
                    )
                    + " "
                    + preview
                )
            )
    return Section("review", gettext("Who decides"), tuple(blocks))


def _retention(agreement: SharingAgreement) -> Section:
    # The agreement's term; the retention job (issue 6) is what enforces it.
    text = ngettext(
        "Under this agreement, what was forwarded (each signal and the flag it came from) may "
        "be kept by this night register for at most %(num)s day after forwarding.",
        "Under this agreement, what was forwarded (each signal and the flag it came from) may "
        "be kept by this night register for at most %(num)s days after forwarding.",
        agreement.keep_days,
    )
    return Section("retention", gettext("How long the sender keeps it"), (Block(text),))


def _delivery() -> Section:
    return Section(
        "delivery",
        gettext("How signals travel"),
        (
            Block(
                gettext(
                    "Signals are sent to the hub by HTTPS POST. Each request is signed with "
                    "HMAC-SHA256 over a timestamp and the exact body, with a secret shared only "
                    "with the hub, and names the key it was signed with, so that the hub can "
                    "check that it came from this night register unchanged."
                )
            ),
            Block(
                gettext(
                    "Each signal has a stable id, sent as its Idempotency-Key: a signal that "
                    "has to be sent again after a failure is never counted twice, and none is "
                    "lost."
                )
            ),
            Block(
                gettext(
                    "Instead of receiving them, the hub may fetch the signals itself over the "
                    "night register's API with an analyst's token, and acknowledge each one."
                )
            ),
        ),
    )


def _audit(agreement: SharingAgreement) -> Section:
    blocks = [
        Block(
            gettext(
                "Every forward is recorded in the audit trail: which flag, under which "
                "agreement, with which fields, by whom (or automatically) and when. So are "
                "the making and the ending of this agreement."
            )
        ),
        Block(
            gettext(
                "The privacy officer can read the audit trail and this agreement at any "
                "time; the audit trail is chained so that a changed or removed entry shows."
            )
        ),
    ]
    if agreement.share_audit_checkpoints:
        blocks.append(
            Block(
                gettext(
                    "Each signal also carries the newest signed checkpoint of the audit trail "
                    "(the number and fingerprint of its last entry, how many entries it has had "
                    "and when): kept by the recipient, it shows later whether entries were "
                    "removed or rewritten here. A checkpoint holds no personal data."
                )
            )
        )
    return Section("audit", gettext("What is recorded"), tuple(blocks))


def summary(agreement: SharingAgreement, tz: ZoneInfo) -> list[Section]:
    """The agreement in plain language, for a privacy officer to read and sign off.

    A pure function of the agreement and the installation's time zone, in the language of
    the current request (nightreg.i18n): who receives what and when, which rules with their
    rationale, exactly which fields (and which never), who decides, how long the sender keeps
    it, how signals travel and what the audit trail records.
    """
    return [
        _parties(agreement, tz),
        _rules(agreement),
        _fields(agreement),
        _review(agreement),
        _retention(agreement),
        _delivery(),
        _audit(agreement),
    ]
