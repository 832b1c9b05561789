"""fast_craft_night: a RIB or speedboat moving between 23:00 and 05:00 site time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from nightreg.rules.fast_craft_night import RULE
from tests.unit.rule_facts import run, utc, visit


def test_a_rib_arriving_at_half_past_eleven_is_flagged_on_its_own() -> None:
    boat = visit(utc(2026, 2, 10, 22, 30), vessel_type="rib", stay=timedelta(hours=10))
    [finding] = run(RULE, [boat])
    assert finding.subject == "reg:NL123AB"
    assert finding.visit_ids == (boat.id,)
    assert finding.window_start == finding.window_end == boat.arrived_at
    assert finding.params == {"movements": 1}
    assert finding.score == 40


def test_a_speedboat_leaving_at_four_fifty_nine_is_flagged() -> None:
    boat = visit(utc(2026, 2, 10, 12), vessel_type="speedboat", departed_at=utc(2026, 2, 11, 3, 59))
    [finding] = run(RULE, [boat])
    assert finding.window_start == boat.departed_at


def test_arriving_and_leaving_at_night_is_one_finding_with_both_movements() -> None:
    boat = visit(utc(2026, 2, 10, 23), vessel_type="rib", departed_at=utc(2026, 2, 11, 2))
    [finding] = run(RULE, [boat])
    assert (finding.window_start, finding.window_end) == (boat.arrived_at, boat.departed_at)
    assert finding.params == {"movements": 2}
    assert finding.score == 60


@pytest.mark.parametrize(
    "at",
    [utc(2026, 2, 10, 21, 59), utc(2026, 2, 11, 4, 0), utc(2026, 7, 10, 20, 59)],
    ids=["22:59 winter", "05:00 winter", "22:59 summer"],
)
def test_a_rib_just_outside_the_night_is_not_flagged(at: datetime) -> None:
    assert run(RULE, [visit(at, vessel_type="rib")]) == []


def test_other_boats_and_vehicles_at_night_are_not_fast_craft() -> None:
    night = utc(2026, 2, 10, 23)
    sail = visit(night, vessel_type="sail")
    untyped = visit(night)
    van = visit(night, kind="vehicle", vessel_type="rib", subject_key="plate:AB123C")
    assert run(RULE, [sail, untyped, van]) == []


def test_each_visit_is_judged_on_its_own() -> None:
    first = visit(utc(2026, 2, 10, 23), vessel_type="rib")
    second = visit(utc(2026, 2, 12, 12), vessel_type="rib")
    third = visit(utc(2026, 2, 13, 1), vessel_type="speedboat", subject_key="mmsi:244123456")
    findings = run(RULE, [first, second, third])
    assert [(f.subject, f.visit_ids) for f in findings] == [
        ("reg:NL123AB", (first.id,)),
        ("mmsi:244123456", (third.id,)),
    ]


@pytest.mark.parametrize(
    ("at", "flagged"),
    [
        (utc(2026, 3, 28, 21, 59), False),  # 22:59 CET
        (utc(2026, 3, 28, 22, 0), True),  # 23:00 CET
        (utc(2026, 3, 29, 0, 30), True),  # 01:30 CET, just before the clocks go forward
        (utc(2026, 3, 29, 1, 30), True),  # 03:30 CEST: 02:30 does not exist that night
        (utc(2026, 3, 29, 2, 59), True),  # 04:59 CEST
        (utc(2026, 3, 29, 3, 0), False),  # 05:00 CEST (a fixed +1 would say 04:00)
        (utc(2026, 3, 29, 20, 59), False),  # 22:59 CEST
        (utc(2026, 3, 29, 21, 0), True),  # 23:00 CEST (a fixed +1 would say 22:00)
        (utc(2026, 10, 24, 21, 0), True),  # 23:00 CEST
        (utc(2026, 10, 25, 0, 30), True),  # the first 02:30 (CEST)
        (utc(2026, 10, 25, 1, 30), True),  # the second 02:30 (CET)
        (utc(2026, 10, 25, 3, 59), True),  # 04:59 CET
        (utc(2026, 10, 25, 4, 0), False),  # 05:00 CET
        (utc(2026, 10, 25, 21, 59), False),  # 22:59 CET (a fixed +2 would say 23:59)
        (utc(2026, 10, 25, 22, 0), True),  # 23:00 CET
    ],
)
def test_the_night_follows_the_site_clock_across_daylight_saving(
    at: datetime, flagged: bool
) -> None:
    assert bool(run(RULE, [visit(at, vessel_type="rib")])) is flagged


def test_a_site_can_ask_for_two_night_movements_on_one_visit() -> None:
    once = visit(utc(2026, 2, 10, 23), vessel_type="rib", departed_at=utc(2026, 2, 11, 12))
    twice = visit(utc(2026, 2, 10, 23), vessel_type="rib", departed_at=utc(2026, 2, 11, 2))
    findings = run(RULE, [once, twice], overrides={"count": 2})
    assert [f.visit_ids for f in findings] == [(twice.id,)]


def test_a_site_can_narrow_the_night() -> None:
    boat = visit(utc(2026, 2, 10, 22, 30), vessel_type="rib")  # 23:30
    assert run(RULE, [boat], overrides={"night_start_hour": 0}) == []
