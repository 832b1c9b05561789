"""The body of a signal, a pure function of the flag, its visits and the agreement: only the
agreed fields ever appear, whatever the agreement and whatever the visits hold."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nightreg.models import Flag, SharingAgreement, Site, Visit
from nightreg.services.agreements import ALWAYS_SENT, FIELDS, VISIT_FIELDS, Coverage, choose
from nightreg.services.signals import (
    MSG_AGREEMENT_ENDED,
    MSG_AGREEMENT_EXPIRED,
    MSG_AGREEMENT_NOT_YET,
    MSG_NO_AGREEMENT,
    SIGNAL_SCHEMA,
    build_body,
    encode,
    refusal,
    schema_for,
    schema_version,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 7, 14, 19, 0, tzinfo=UTC)
# Everything a visit can hold that no agreement may ever send.
NEVER_SENT = ("phone", "email", "country", "plate_country", "notes", "id_document_type", "unit")
# What the envelope carries whatever the agreement says.
ENVELOPE = {
    "schema", "id", "forwarded_at", "agreement", "review", "rule", "reason",
    "visit_count", "visits_elsewhere",
}  # fmt: skip

text = st.text(min_size=1, max_size=30)


def an_agreement(fields: list[str], **kwargs: object) -> SharingAgreement:
    values: dict[str, object] = {
        "id": 1, "name": "Convenant", "recipient": "RIEC", "reference": "RIEC-1",
        "valid_from": date(2026, 1, 1), "valid_until": None, "rules": ["night_movement"],
        "fields": list(fields), "auto_rules": [], "keep_days": 180, "ended_at": None,
    }  # fmt: skip
    values.update(kwargs)
    return SharingAgreement(**values)


def a_flag() -> Flag:
    return Flag(
        id=7, site_id=3, rule="night_movement", score=70,
        reason="Arrived or left at night 3 times within 14 days.",
    )  # fmt: skip


def a_site() -> Site:
    return Site(id=3, slug="zeehaven", name="Zeehaven", kind="marina", municipality="Den Helder")


@st.composite
def visits(draw: st.DrawFn) -> Visit:
    arrived = NOW - timedelta(minutes=draw(st.integers(0, 60 * 24 * 30)))
    return Visit(
        id=draw(st.integers(1, 10**6)),
        kind=draw(st.sampled_from(["vessel", "vehicle", "stay"])),
        arrived_at=arrived,
        departed_at=draw(st.none() | st.just(arrived + timedelta(hours=3))),
        persons=draw(st.integers(1, 99)),
        guest_name=draw(text),
        residence=draw(text),
        vessel_name=draw(st.none() | text),
        registration=draw(st.none() | text),
        mmsi=draw(st.none() | st.from_regex(r"\A2[0-9]{8}\Z")),
        flag=draw(st.none() | st.sampled_from(["NL", "DE", "BE"])),
        vessel_type=draw(st.none() | st.sampled_from(["sail", "motor", "rib"])),
        plate=draw(st.none() | text),
        vehicle_type=draw(st.none() | st.sampled_from(["car", "van"])),
        # Fields no agreement can name: a body that carried any of them would leak.
        phone="+31612345678",
        email="geheim@example.org",
        country="NL",
        plate_country="NL",
        notes="Geheime notitie",
        id_document_type="passport",
        unit="B12",
    )


@settings(max_examples=200, deadline=None)
@given(
    allowed=st.lists(st.sampled_from(list(FIELDS)), unique=True),
    evidence=st.lists(visits(), max_size=4),
    elsewhere=st.integers(0, 5),
)
def test_a_body_never_holds_a_field_outside_its_agreement(
    allowed: list[str], evidence: list[Visit], elsewhere: int
):
    agreement = an_agreement(allowed)
    body = build_body(
        uid="00000000-0000-4000-8000-000000000001", agreement=agreement, flag=a_flag(),
        site=a_site(), visits=evidence, elsewhere=elsewhere, forwarded_at=NOW, review="staff",
    )  # fmt: skip

    granted = set(allowed) | set(ALWAYS_SENT)
    optional = set(body) - ENVELOPE
    assert optional <= {"score", "site", "visits"}
    assert ("score" in body) == ("score" in granted)
    assert ("site" in body) == ("site" in granted)
    visit_fields = granted & set(VISIT_FIELDS)
    if visit_fields:
        assert len(body["visits"]) == len(evidence)
        for sent in body["visits"]:
            assert set(sent) == visit_fields
    else:
        assert "visits" not in body
    encoded = encode(body)
    for secret in ("+31612345678", "geheim@example.org", "Geheime notitie", "passport", "B12"):
        assert secret not in encoded
    jsonschema.validate(json.loads(encoded), SIGNAL_SCHEMA)


def test_a_body_is_encoded_the_same_way_every_time():
    agreement = an_agreement(["score"])
    body = build_body(
        uid="00000000-0000-4000-8000-000000000002", agreement=agreement, flag=a_flag(),
        site=a_site(), visits=[], elsewhere=0, forwarded_at=NOW, review="automatic",
    )  # fmt: skip

    assert encode(body) == encode(json.loads(encode(body)))
    assert encode(body).startswith('{"agreement":')  # keys sorted, no spaces
    assert " " not in encode({"a": 1, "b": [1, 2]})


# --- which agreement, and why none -------------------------------------------------------


def test_the_newest_agreement_in_force_that_covers_the_rule_is_chosen():
    old = an_agreement([], id=1, valid_from=date(2025, 1, 1))
    new = an_agreement([], id=2, valid_from=date(2026, 1, 1))
    other = an_agreement([], id=3, valid_from=date(2026, 6, 1), rules=["overdue"])

    assert choose([old, new, other], "night_movement", NOW, AMSTERDAM).agreement is new


def test_an_agreement_holds_through_its_last_local_day():
    last_day = an_agreement([], valid_until=date(2026, 7, 14))
    # 23:59 on 14 July in Amsterdam is 21:59 UTC; a minute past midnight it has ended.
    assert choose([last_day], "night_movement", datetime(2026, 7, 14, 21, 59, tzinfo=UTC),
                  AMSTERDAM).agreement is last_day  # fmt: skip
    assert choose([last_day], "night_movement", datetime(2026, 7, 14, 22, 1, tzinfo=UTC),
                  AMSTERDAM).agreement is None  # fmt: skip


def test_the_refusal_says_no_agreement_covers_the_rule_when_none_does():
    error = refusal(Coverage(None), "night_movement", NOW, AMSTERDAM)
    assert error.message == MSG_NO_AGREEMENT
    assert error.params == {"rule": "night_movement"}


def test_the_refusal_names_an_expired_an_ended_and_a_future_agreement():
    expired = an_agreement([], valid_until=date(2026, 6, 30))
    ended = an_agreement([], ended_at=NOW - timedelta(days=1))
    future = an_agreement([], valid_from=date(2026, 8, 1))

    assert refusal(Coverage(None, (expired,)), "r", NOW, AMSTERDAM).message == (
        MSG_AGREEMENT_EXPIRED
    )
    assert refusal(Coverage(None, (ended,)), "r", NOW, AMSTERDAM).params["date"] == "2026-07-13"
    assert refusal(Coverage(None, (future,)), "r", NOW, AMSTERDAM).message == (
        MSG_AGREEMENT_NOT_YET
    )
    assert refusal(Coverage(None, (ended,)), "r", NOW, AMSTERDAM).message == MSG_AGREEMENT_ENDED


def test_the_refusal_names_the_agreement_that_lapsed_last_or_the_next_to_start():
    long_ago = an_agreement([], id=1, valid_from=date(2025, 1, 1), ended_at=datetime(
        1970, 1, 1, tzinfo=UTC))  # fmt: skip
    last_month = an_agreement([], id=2, valid_from=date(2020, 1, 1), valid_until=date(2026, 6, 30))
    next_month = an_agreement([], id=3, valid_from=date(2026, 8, 1))

    lapsed = choose([long_ago, last_month], "night_movement", NOW, AMSTERDAM).lapsed
    upcoming = choose([long_ago, last_month, next_month], "night_movement", NOW, AMSTERDAM)

    assert lapsed == (last_month, long_ago)
    assert upcoming.lapsed[0] is next_month


# The parameters of the rules' reasons that are counts, periods, dates or codes, not a value a
# visitor gave: anything else in a reason could carry a field the agreement does not share.
NOT_A_VISIT_VALUE = {
    "count", "days", "nights", "hours", "minutes", "sites", "vehicles", "arrivals", "date",
    "baseline", "weeks", "what", "identifier", "indicators", "reason", "ais",
}  # fmt: skip


def _cases() -> list[tuple[str, str | None]]:
    from nightreg.rules import RULES

    return [(code, None) for code in RULES] + [
        (code, variant) for code, rule in RULES.items() for variant in rule.variants
    ]


@pytest.mark.parametrize(("code", "variant"), _cases())
def test_no_rule_s_reason_carries_a_visit_value_under_an_agreement_that_shares_nothing(
    code: str, variant: str | None
):
    """Issue 17, finding 8: "Overnight stays in unit HAL7JDEVRIES0612345678…" went to the hub
    under an agreement that shares no unit."""
    from nightreg.rules import RULES

    rule = RULES[code]
    sentence = rule.variants[variant] if variant else rule.reason
    names = set(re.findall(r"%\((\w+)\)s", sentence))
    params: dict[str, object] = {name: f"marker-{name}-0612345678" for name in names}
    if variant:
        params["reason"] = variant
    flag = Flag(
        id=7, site_id=3, rule=code, score=70, reason=rule.reason_for(params) % params,
        reason_params=params,
    )  # fmt: skip
    body = build_body(
        uid="00000000-0000-4000-8000-000000000001", agreement=an_agreement([], rules=[code]),
        flag=flag, site=a_site(), visits=[], elsewhere=0, forwarded_at=NOW, review="staff",
    )  # fmt: skip
    leaked = {name for name in names if f"marker-{name}-" in body["reason"]}
    assert leaked <= NOT_A_VISIT_VALUE, body["reason"]
    assert body["reason"]


CHECKPOINT = {
    "v": 1, "at": "2026-07-14T19:00:00+00:00", "head_id": 41, "head_hash": "a" * 64,
    "count": 41, "keyless_through_id": 0, "key_id": "hk-0123456789ab", "signature": "b" * 64,
}  # fmt: skip


def test_a_body_carries_the_audit_checkpoint_only_when_its_agreement_shares_them():
    """Issue 17, finding 4: the hub keeps a copy of the sender's audit chain's checkpoint."""
    bodies = {}
    for shares in (True, False):
        bodies[shares] = build_body(
            uid="00000000-0000-4000-8000-000000000003",
            agreement=an_agreement([], share_audit_checkpoints=shares), flag=a_flag(),
            site=a_site(), visits=[], elsewhere=0, forwarded_at=NOW, review="staff",
            checkpoint=CHECKPOINT,
        )  # fmt: skip

    assert bodies[True]["audit_checkpoint"] == CHECKPOINT
    jsonschema.validate(bodies[True], SIGNAL_SCHEMA)
    assert "audit_checkpoint" not in bodies[False]
    assert set(bodies[False]) == ENVELOPE


def test_visits_go_in_arrival_order_whatever_order_they_come_in():
    early, late, same = (
        Visit(id=i, arrived_at=NOW - timedelta(hours=h), persons=1, guest_name=f"G{i}")
        for i, h in ((1, 30), (2, 2), (3, 2))
    )

    body = build_body(
        uid="00000000-0000-4000-8000-000000000003", agreement=an_agreement(["guest_name"]),
        flag=a_flag(), site=a_site(), visits=[late, same, early], elsewhere=0,
        forwarded_at=NOW, review="staff",
    )  # fmt: skip

    # Equal arrivals keep the order they were given in (the register's: by id).
    assert [v["guest_name"] for v in body["visits"]] == ["G1", "G2", "G3"]


def test_agreed_but_empty_visit_fields_arrive_as_null_and_keep_to_the_schema():
    visit = Visit(id=1, arrived_at=NOW, departed_at=None, persons=1, guest_name=None, mmsi=None)
    agreement = an_agreement(["departed_at", "guest_name", "mmsi", "persons"])

    body = build_body(
        uid="00000000-0000-4000-8000-000000000004", agreement=agreement, flag=a_flag(),
        site=a_site(), visits=[visit], elsewhere=0, forwarded_at=NOW, review="staff",
    )  # fmt: skip

    assert body["visits"] == [{"departed_at": None, "guest_name": None, "mmsi": None, "persons": 1}]
    jsonschema.validate(body, schema_for(agreement))


@pytest.mark.parametrize("max_schema", [1, 7])
def test_a_body_is_built_in_the_newest_format_its_hub_accepts(max_schema: int):
    agreement = an_agreement([], max_schema=max_schema)

    body = build_body(
        uid="00000000-0000-4000-8000-000000000005", agreement=agreement, flag=a_flag(),
        site=a_site(), visits=[], elsewhere=0, forwarded_at=NOW, review="staff",
    )  # fmt: skip

    # Only version 1 exists: a hub that would read version 7 still gets 1.
    assert body["schema"] == "nightreg.signal/1"
    assert schema_version(agreement) == 1
