"""Sharing agreements as pure functions: validation, the days they are in force, which one
covers a rule, and the plain-language summary a privacy officer signs off."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nightreg import i18n
from nightreg.models import SharingAgreement
from nightreg.rules import RULES
from nightreg.services.agreement_summary import Section, summary
from nightreg.services.agreements import (
    DEFAULT_KEEP_DAYS,
    ENDED,
    EXPIRED,
    FIELDS,
    IN_FORCE,
    MSG_AUTO_NOT_COVERED,
    MSG_DATE,
    MSG_FIELD_CHOICE,
    MSG_KEEP_DAYS,
    MSG_NAME,
    MSG_RECIPIENT,
    MSG_REFERENCE,
    MSG_RULE_CHOICE,
    MSG_RULES,
    MSG_UNTIL_BEFORE,
    MSG_UNTIL_PAST,
    MSG_VALID_FROM,
    NOT_YET,
    AgreementInvalid,
    auto_rules_of,
    choose,
    fields_of,
    forwardable_rules,
    in_force,
    state,
    validate,
)
from nightreg.validation import MSG_TOO_LONG

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
TODAY = date(2026, 11, 29)


def agreement(
    *,
    id: int = 1,
    rules: Sequence[str] = ("night_movement",),
    fields: Sequence[str] = ("score",),
    auto_rules: Sequence[str] = (),
    valid_from: date = date(2026, 12, 1),
    valid_until: date | None = date(2027, 11, 30),
    ended_at: datetime | None = None,
    keep_days: int = 180,
    **extra: Any,
) -> SharingAgreement:
    return SharingAgreement(
        id=id,
        name=extra.pop("name", "Signalen aan het Drugshub"),
        recipient=extra.pop("recipient", "RIEC Noord-Holland"),
        reference=extra.pop("reference", "RIEC-NH-2026-014"),
        valid_from=valid_from,
        valid_until=valid_until,
        rules=list(rules),
        fields=list(fields),
        auto_rules=list(auto_rules),
        keep_days=keep_days,
        created_at=datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
        created_by="user:1 admin@test.example",
        ended_at=ended_at,
        **extra,
    )


def form(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Signalen aan het Drugshub",
        "recipient": "RIEC Noord-Holland",
        "reference": "RIEC-NH-2026-014",
        "valid_from": "2026-12-01",
        "valid_until": "2027-11-30",
        "rules": ["night_movement", "watchlist_hit"],
        "fields": ["score", "site", "vessel_name"],
        "auto_rules": ["watchlist_hit"],
        "keep_days": "90",
    }
    values.update(changes)
    return values


def errors_of(values: dict[str, Any], today: date = TODAY) -> dict[str, tuple[str, dict[str, Any]]]:
    with pytest.raises(AgreementInvalid) as caught:
        validate(values, today=today)
    return {name: (e.message, dict(e.params)) for name, e in caught.value.errors.items()}


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """The summary speaks the request's language; these tests read the English source."""
    before = i18n.get_locale()
    i18n.set_locale("en")
    yield
    i18n.set_locale(before)


# --- validation ------------------------------------------------------------------------------


def test_a_complete_form_becomes_an_agreement_with_rule_and_reason_always_among_its_fields():
    data = validate(form(), today=TODAY)

    assert data.name == "Signalen aan het Drugshub"
    assert data.valid_from == date(2026, 12, 1)
    assert data.valid_until == date(2027, 11, 30)
    assert data.rules == ("night_movement", "watchlist_hit")
    assert data.fields == ("rule", "reason", "score", "site", "vessel_name")
    assert data.auto_rules == ("watchlist_hit",)
    assert data.keep_days == 90


def test_text_is_cleaned_and_choices_come_out_in_the_catalogues_order_without_duplicates():
    data = validate(
        form(
            name="  Signalen\taan   het Drugshub ",
            rules=["watchlist_hit", "night_movement", "watchlist_hit"],
            fields=["residence", "score", "score"],
        ),
        today=TODAY,
    )

    assert data.name == "Signalen aan het Drugshub"
    assert data.rules == ("night_movement", "watchlist_hit")
    assert data.fields == ("rule", "reason", "score", "residence")


def test_every_missing_field_is_named_at_once():
    errors = errors_of(
        {"name": "", "recipient": " ", "reference": "", "valid_from": "", "rules": []}
    )

    assert errors == {
        "name": (MSG_NAME, {}),
        "recipient": (MSG_RECIPIENT, {}),
        "reference": (MSG_REFERENCE, {}),
        "valid_from": (MSG_VALID_FROM, {}),
        "rules": (MSG_RULES, {}),
    }


def test_texts_longer_than_their_column_are_refused_with_the_limit():
    errors = errors_of(form(name="x" * 201, recipient="y" * 201, reference="z" * 101))

    assert errors["name"] == (MSG_TOO_LONG, {"max": 200})
    assert errors["recipient"] == (MSG_TOO_LONG, {"max": 200})
    assert errors["reference"] == (MSG_TOO_LONG, {"max": 100})


@pytest.mark.parametrize("value", ["1-12-2026", "2026-13-01", "20261201", "morgen", "2026-W49-1"])
def test_a_day_that_is_not_yyyy_mm_dd_is_refused(value: str):
    errors = errors_of(form(valid_from=value, valid_until=value))

    assert errors["valid_from"] == (MSG_DATE, {})
    assert errors["valid_until"] == (MSG_DATE, {})


def test_the_last_day_may_be_the_first_day_but_not_before_it():
    same = validate(form(valid_from="2026-12-01", valid_until="2026-12-01"), today=TODAY)
    errors = errors_of(form(valid_from="2026-12-01", valid_until="2026-11-30"))

    assert same.valid_until == same.valid_from
    assert errors == {"valid_until": (MSG_UNTIL_BEFORE, {})}


def test_an_agreement_without_a_last_day_is_open_ended():
    assert validate(form(valid_until=""), today=TODAY).valid_until is None


def test_an_agreement_whose_last_day_has_passed_is_refused_but_one_ending_today_is_not():
    errors = errors_of(form(valid_from="2026-01-01", valid_until="2026-11-28"))
    today = validate(form(valid_from="2026-01-01", valid_until="2026-11-29"), today=TODAY)

    assert errors == {"valid_until": (MSG_UNTIL_PAST, {})}
    assert today.valid_until == TODAY


def test_a_first_day_in_the_past_is_fine_for_an_agreement_signed_earlier():
    assert validate(form(valid_from="2025-01-01"), today=TODAY).valid_from == date(2025, 1, 1)


def test_rules_must_be_forwardable_rules_of_the_catalogue():
    overdue = errors_of(form(rules=["night_movement", "overdue"], auto_rules=[]))
    unknown = errors_of(form(rules=["night_movement", "nationality"], auto_rules=[]))

    assert overdue == {"rules": (MSG_RULE_CHOICE, {})}
    assert unknown == {"rules": (MSG_RULE_CHOICE, {})}
    assert "overdue" not in forwardable_rules()
    assert set(forwardable_rules()) == {c for c, r in RULES.items() if r.forwardable}


def test_fields_must_come_from_the_fixed_list():
    errors = errors_of(form(fields=["score", "phone"]))

    assert errors == {"fields": (MSG_FIELD_CHOICE, {})}


def test_an_agreement_may_share_nothing_but_the_rule_and_its_reason():
    assert validate(form(fields=[]), today=TODAY).fields == ("rule", "reason")


def test_automatic_forwarding_only_for_rules_the_agreement_covers():
    not_covered = errors_of(form(rules=["night_movement"], auto_rules=["watchlist_hit"]))
    never = errors_of(form(auto_rules=["overdue"]))

    assert not_covered == {"auto_rules": (MSG_AUTO_NOT_COVERED, {})}
    assert never == {"auto_rules": (MSG_RULE_CHOICE, {})}


@pytest.mark.parametrize("value", ["0", "3651", "-5", "twee", "1.5", True])
def test_keep_days_is_a_whole_number_from_1_to_3650(value: object):
    assert errors_of(form(keep_days=value)) == {"keep_days": (MSG_KEEP_DAYS, {})}


@pytest.mark.parametrize(("value", "days"), [("", DEFAULT_KEEP_DAYS), (None, DEFAULT_KEEP_DAYS),
                                             ("1", 1), ("3650", 3650), (30, 30)])  # fmt: skip
def test_keep_days_defaults_when_empty_and_takes_its_bounds(value: object, days: int):
    assert validate(form(keep_days=value), today=TODAY).keep_days == days


def test_a_form_from_the_command_line_may_give_dates_and_a_single_rule():
    data = validate(
        form(valid_from=date(2026, 12, 1), valid_until=None, rules="watchlist_hit"),
        today=TODAY,
    )

    assert data.valid_from == date(2026, 12, 1)
    assert data.valid_until is None
    assert data.rules == ("watchlist_hit",)


# --- the stored lists ------------------------------------------------------------------------


def test_fields_of_always_adds_rule_and_reason_and_keeps_the_fixed_order():
    shared = fields_of(agreement(fields=["residence", "score"]))

    assert shared == ("rule", "reason", "score", "residence")


def test_automatic_rules_outside_the_agreements_rules_do_not_count():
    stored = agreement(rules=["night_movement"], auto_rules=["watchlist_hit", "night_movement"])

    assert auto_rules_of(stored) == ("night_movement",)


# --- the days an agreement is in force (Europe/Amsterdam, both ends inclusive) ---------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # 1 December starts at 23:00 UTC the evening before (CET, UTC+1)
        (datetime(2026, 11, 30, 22, 59, 59, tzinfo=UTC), False),
        (datetime(2026, 11, 30, 23, 0, tzinfo=UTC), True),
        # the whole of 30 November 2027 is included, until 23:00 UTC
        (datetime(2027, 11, 30, 22, 59, 59, tzinfo=UTC), True),
        (datetime(2027, 11, 30, 23, 0, tzinfo=UTC), False),
    ],
)
def test_an_agreement_is_in_force_from_its_first_to_its_last_local_day(at: datetime, expected):
    assert in_force(agreement(), at, AMSTERDAM) is expected


def test_in_summer_the_local_day_ends_at_22_utc():
    summer = agreement(valid_from=date(2026, 7, 1), valid_until=date(2026, 7, 14))

    assert in_force(summer, datetime(2026, 7, 14, 21, 59, tzinfo=UTC), AMSTERDAM)
    assert not in_force(summer, datetime(2026, 7, 14, 22, 0, tzinfo=UTC), AMSTERDAM)
    assert not in_force(summer, datetime(2026, 6, 30, 21, 59, tzinfo=UTC), AMSTERDAM)
    assert in_force(summer, datetime(2026, 6, 30, 22, 0, tzinfo=UTC), AMSTERDAM)


def test_an_agreement_without_a_last_day_stays_in_force():
    open_ended = agreement(valid_until=None)

    assert in_force(open_ended, datetime(2040, 1, 1, tzinfo=UTC), AMSTERDAM)


def test_an_ended_agreement_is_out_of_force_from_the_moment_it_ended():
    ended_at = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
    ended = agreement(ended_at=ended_at)

    assert in_force(ended, ended_at - timedelta(microseconds=1), AMSTERDAM)
    assert not in_force(ended, ended_at, AMSTERDAM)
    assert not in_force(ended, ended_at + timedelta(days=1), AMSTERDAM)


def test_the_state_names_why_an_agreement_is_not_in_force():
    ended_at = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)

    assert state(agreement(), datetime(2026, 11, 30, 12, tzinfo=UTC), AMSTERDAM) == NOT_YET
    assert state(agreement(), datetime(2027, 1, 1, 12, tzinfo=UTC), AMSTERDAM) == IN_FORCE
    assert state(agreement(), datetime(2027, 12, 1, 12, tzinfo=UTC), AMSTERDAM) == EXPIRED
    ended = agreement(ended_at=ended_at)
    assert state(ended, datetime(2027, 3, 1, 9, tzinfo=UTC), AMSTERDAM) == IN_FORCE
    assert state(ended, datetime(2027, 3, 1, 10, tzinfo=UTC), AMSTERDAM) == ENDED
    # ended before it ever came into force, or after it had expired: ended either way
    withdrawn = agreement(ended_at=datetime(2026, 11, 29, 12, tzinfo=UTC))
    assert state(withdrawn, datetime(2026, 11, 30, 12, tzinfo=UTC), AMSTERDAM) == ENDED
    assert state(withdrawn, datetime(2028, 1, 1, tzinfo=UTC), AMSTERDAM) == ENDED


# --- which agreement covers a rule -----------------------------------------------------------

JAN_2027 = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


def test_choose_takes_the_newest_agreement_in_force_that_covers_the_rule():
    old = agreement(id=1, valid_from=date(2026, 1, 1), valid_until=None)
    new = agreement(id=2, valid_from=date(2026, 12, 1))
    other_rule = agreement(id=3, valid_from=date(2027, 1, 1), rules=["watchlist_hit"])

    coverage = choose([old, new, other_rule], "night_movement", JAN_2027, AMSTERDAM)

    assert coverage.agreement is new
    assert coverage.lapsed == ()


def test_of_two_agreements_from_the_same_day_the_later_made_wins():
    first = agreement(id=4)
    second = agreement(id=5)

    assert choose([second, first], "night_movement", JAN_2027, AMSTERDAM).agreement is second


def test_choose_passes_over_ended_and_expired_agreements_to_one_in_force():
    ended = agreement(id=7, valid_from=date(2027, 1, 1), ended_at=JAN_2027 - timedelta(days=1))
    older = agreement(id=6, valid_from=date(2026, 6, 1), valid_until=None)

    assert choose([older, ended], "night_movement", JAN_2027, AMSTERDAM).agreement is older


def test_without_one_in_force_choose_lists_the_lapsed_agreements_newest_first():
    expired = agreement(id=1, valid_from=date(2025, 1, 1), valid_until=date(2025, 12, 31))
    ended = agreement(id=2, valid_from=date(2026, 1, 1), ended_at=JAN_2027 - timedelta(days=3))
    coming = agreement(id=3, valid_from=date(2027, 6, 1))
    unrelated = agreement(id=4, valid_from=date(2026, 1, 1), rules=["site_hopping"])

    coverage = choose([expired, ended, coming, unrelated], "night_movement", JAN_2027, AMSTERDAM)

    assert coverage.agreement is None
    assert coverage.lapsed == (coming, ended, expired)


def test_no_agreement_for_a_rule_means_no_coverage_and_nothing_lapsed():
    coverage = choose([agreement()], "site_hopping", JAN_2027, AMSTERDAM)

    assert coverage.agreement is None
    assert coverage.lapsed == ()


# --- the summary -----------------------------------------------------------------------------


def section(sections: list[Section], key: str) -> Section:
    return next(s for s in sections if s.key == key)


def texts(part: Section) -> str:
    """A section as plain text: paragraphs and list items, one per line."""
    lines = []
    for block in part.blocks:
        if block.text:
            lines.append(block.text)
        lines += [f"{i.term}: {i.detail}" if i.detail else i.term for i in block.items]
    return "\n".join(lines)


def items(part: Section, index: int) -> list[str]:
    return [i.term for i in part.blocks[index].items]


def test_the_summary_has_its_sections_in_reading_order():
    keys = [s.key for s in summary(agreement(), AMSTERDAM)]

    assert keys == ["parties", "rules", "fields", "review", "retention", "delivery", "audit"]
    assert all(s.heading for s in summary(agreement(), AMSTERDAM))


def test_the_summary_says_who_receives_under_which_reference_and_on_which_days():
    parties = texts(section(summary(agreement(), AMSTERDAM), "parties"))

    assert "RIEC Noord-Holland receives signals" in parties
    assert "“Signalen aan het Drugshub”" in parties
    assert "RIEC-NH-2026-014" in parties
    assert "from 1 December 2026 until 30 November 2027, both days included" in parties
    assert "Europe/Amsterdam" in parties


def test_an_open_ended_agreement_says_it_holds_until_it_is_ended():
    parties = texts(section(summary(agreement(valid_until=None), AMSTERDAM), "parties"))

    assert "from 1 December 2026, with no last day, until an administrator ends it" in parties


def test_an_ended_agreement_says_when_by_whom_and_why():
    ended = agreement(
        ended_at=datetime(2027, 2, 28, 23, 30, tzinfo=UTC),  # 1 March, 00:30 in Amsterdam
        ended_by="user:1 admin@test.example",
        end_reason="Vervangen door RIEC-NH-2027-003.",
    )

    parties = texts(section(summary(ended, AMSTERDAM), "parties"))

    assert "ended on 1 March 2027 by user:1 admin@test.example" in parties
    assert "Vervangen door RIEC-NH-2027-003." in parties


def test_the_summary_names_each_rule_with_its_rationale_and_the_rules_left_out():
    rules = section(
        summary(agreement(rules=["night_movement", "site_hopping"]), AMSTERDAM), "rules"
    )
    night, hopping = RULES["night_movement"], RULES["site_hopping"]

    assert items(rules, 0) == [night.title, hopping.title]
    assert [i.detail for i in rules.blocks[0].items] == [night.rationale, hopping.rationale]
    left_out = rules.blocks[1].text
    assert RULES["watchlist_hit"].title in left_out
    assert night.title not in left_out
    assert RULES["overdue"].title not in left_out  # never forwardable: said in general
    assert "never forwarded under any agreement" in texts(rules)


def test_the_summary_lists_exactly_the_fields_sent_and_every_field_not_sent():
    stored = agreement(fields=["score", "vessel_name", "registration"])

    fields = section(summary(stored, AMSTERDAM), "fields")

    shared = items(fields, 0)
    withheld = next(b for b in fields.blocks if "never sent" in b.text)
    assert shared == ["Rule", "Reason", "Score", "Vessel name", "Registration"]
    assert [i.term for i in withheld.items] == [
        FIELDS[c] for c in FIELDS if c not in {"rule", "reason", "score", "vessel_name",
                                                "registration"}
    ]  # fmt: skip
    assert "Guest name" in [i.term for i in withheld.items]
    text = texts(fields)
    assert "Vessel name and Registration are given for each visit" in text
    assert "No other data from the register ever leaves" in text


def test_an_agreement_sharing_no_visit_fields_says_only_a_count_of_visits_goes():
    fields = texts(section(summary(agreement(fields=["score"]), AMSTERDAM), "fields"))

    assert "No data about the visits themselves is sent" in fields


def test_the_summary_says_a_person_reviews_every_flag_when_nothing_goes_automatically():
    review = texts(section(summary(agreement(), AMSTERDAM), "review"))

    assert "reviews every flag" in review
    assert "nothing is forwarded automatically" in review
    assert "preview of exactly what will be sent" in review


def test_the_summary_names_the_rules_that_go_without_review_and_those_that_do_not():
    stored = agreement(rules=["night_movement", "watchlist_hit"], auto_rules=["watchlist_hit"])

    review = section(summary(stored, AMSTERDAM), "review")

    assert items(review, 0) == [RULES["watchlist_hit"].title]
    assert "without a staff review" in review.blocks[0].text
    assert "Flags of Night movements are forwarded only after a staff member" in texts(review)


def test_the_summary_says_how_long_the_sender_keeps_it_in_days():
    one = texts(section(summary(agreement(keep_days=1), AMSTERDAM), "retention"))
    many = texts(section(summary(agreement(keep_days=90), AMSTERDAM), "retention"))

    assert "for at most 1 day after forwarding" in one
    assert "for at most 90 days after forwarding" in many


def test_the_summary_describes_signed_delivery_pulling_and_the_audit_trail():
    sections = summary(agreement(), AMSTERDAM)
    delivery = texts(section(sections, "delivery"))
    audit = texts(section(sections, "audit"))

    assert "HTTPS POST" in delivery
    assert "HMAC-SHA256" in delivery
    assert "Idempotency-Key" in delivery
    assert "fetch the signals itself" in delivery
    assert "Every forward is recorded in the audit trail" in audit


def test_the_summary_speaks_the_language_of_the_request():
    i18n.set_locale("de")

    parties = texts(section(summary(agreement(), AMSTERDAM), "parties"))

    assert "1. Dezember 2026" in parties  # dates follow the language even before translation


def test_a_rule_this_version_does_not_know_stays_visible_in_the_summary():
    rules = section(summary(agreement(rules=["retired_rule"]), AMSTERDAM), "rules")

    assert items(rules, 0) == ["retired_rule"]
