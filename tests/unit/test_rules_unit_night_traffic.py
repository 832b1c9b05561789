"""unit_night_traffic: many brief vehicle calls at a unit in one day, or night calls on 3 nights."""

from __future__ import annotations

from datetime import datetime, timedelta

from nightreg.rules.base import VisitFacts
from nightreg.rules.unit_night_traffic import RULE
from tests.unit.rule_facts import run, utc, vehicle

DAY = utc(2026, 6, 10, 8)  # 10:00 CEST


def call(at: datetime, plate: str = "AB123C", minutes: int = 10, **kw: object) -> VisitFacts:
    kw.setdefault("unit", "A12")
    return vehicle(at, plate=plate, stay=timedelta(minutes=minutes), **kw)


def busy_day(vehicles: int, minutes: int = 10, **kw: object) -> list[VisitFacts]:
    return [
        call(DAY + timedelta(minutes=20 * i), plate=f"P{i}", minutes=minutes, **kw)
        for i in range(vehicles)
    ]


def test_ten_vehicles_calling_briefly_in_one_day_are_flagged() -> None:
    visits = busy_day(10)
    [finding] = run(RULE, visits)
    assert finding.subject == "unit:A12"
    assert finding.site_id == 1
    assert finding.visit_ids == tuple(v.id for v in visits)
    assert finding.params == {"unit": "A12", "vehicles": 10, "minutes": 10, "reason": "busy_day"}
    assert finding.score == 50


def test_nine_vehicles_are_an_ordinary_day() -> None:
    assert run(RULE, busy_day(9)) == []


def test_a_median_stay_of_thirty_minutes_is_not_under_thirty() -> None:
    assert run(RULE, busy_day(10, minutes=30)) == []
    assert len(run(RULE, busy_day(10, minutes=29))) == 1


def test_the_median_is_over_the_vehicles_that_left() -> None:
    still_there = [vehicle(DAY + timedelta(hours=h), plate=f"Q{h}", unit="A12") for h in range(4)]
    visits = busy_day(6) + still_there
    [finding] = run(RULE, visits)
    assert finding.params["vehicles"] == 10


def test_one_vehicle_calling_ten_times_is_one_vehicle() -> None:
    visits = [call(DAY + timedelta(minutes=20 * i), plate="SAME") for i in range(10)]
    assert run(RULE, visits) == []


def test_the_day_is_the_site_s_local_day() -> None:
    # Five calls before and five after local midnight (22:00 UTC in summer) are two days.
    evening = utc(2026, 6, 10, 19)  # 21:00 CEST, before the night window
    visits = [call(evening + timedelta(minutes=10 * i), plate=f"E{i}") for i in range(5)]
    morning = utc(2026, 6, 11, 5)  # 07:00 CEST
    visits += [call(morning + timedelta(minutes=10 * i), plate=f"M{i}") for i in range(5)]
    assert run(RULE, visits) == []


def night_calls(*starts: datetime, **kw: object) -> list[VisitFacts]:
    return [call(at, plate=f"N{i}", **kw) for i, at in enumerate(starts)]  # type: ignore[arg-type]


def test_vehicles_calling_at_night_on_three_nights_in_two_weeks_are_flagged() -> None:
    visits = night_calls(utc(2026, 6, 1, 21), utc(2026, 6, 5, 22), utc(2026, 6, 9, 1))
    [finding] = run(RULE, visits)
    assert finding.subject == "unit:A12"
    assert finding.params == {"unit": "A12", "nights": 3, "days": 14, "reason": "nights"}
    assert finding.visit_ids == tuple(v.id for v in visits)
    assert finding.window_start == visits[0].arrived_at
    assert finding.window_end == visits[-1].departed_at


def test_two_nights_are_not_enough_however_many_calls_they_hold() -> None:
    # 23:00 and 02:00 CEST are the same night.
    visits = night_calls(utc(2026, 6, 1, 21), utc(2026, 6, 2, 0), utc(2026, 6, 5, 21))
    assert run(RULE, visits) == []


def test_night_means_from_ten_to_six() -> None:
    # 21:59 and 06:00 CEST (a ten-minute call) are outside the night.
    visits = night_calls(utc(2026, 6, 1, 19, 49), utc(2026, 6, 3, 4), utc(2026, 6, 5, 20))
    assert run(RULE, visits) == []
    visits = night_calls(utc(2026, 6, 1, 19, 51), utc(2026, 6, 3, 3, 59), utc(2026, 6, 5, 20))
    assert len(run(RULE, visits)) == 1


def test_the_third_night_must_fall_within_fourteen_days() -> None:
    first = utc(2026, 6, 1, 21)
    on_edge = night_calls(first, first + timedelta(days=7), first + timedelta(days=14))
    assert len(run(RULE, on_edge)) == 1
    past = night_calls(first, first + timedelta(days=7), first + timedelta(days=14, minutes=1))
    assert run(RULE, past) == []


def test_a_night_across_the_spring_clock_change_is_one_night() -> None:
    # 22:30 CET on 28 March and 05:30 CEST on 29 March belong to the night of 28 March.
    visits = night_calls(utc(2026, 3, 28, 21, 30), utc(2026, 3, 29, 3, 30), utc(2026, 3, 31, 21))
    assert run(RULE, visits) == []
    visits += night_calls(utc(2026, 4, 2, 21), site_id=1)
    assert run(RULE, visits)[0].params["nights"] == 3


def test_only_vehicles_with_a_unit_at_a_business_park_are_looked_at() -> None:
    assert run(RULE, busy_day(10, site_kind="marina")) == []
    assert run(RULE, busy_day(10, unit=None)) == []
    people = [
        call(DAY + timedelta(minutes=i), plate=f"P{i}", kind="stay", subject_key=f"person:{i}")
        for i in range(10)
    ]
    assert run(RULE, people) == []


def test_units_are_judged_apart() -> None:
    visits = busy_day(5, unit="A12") + busy_day(5, unit="B7")
    assert run(RULE, visits) == []


def test_a_site_can_lower_both_clauses() -> None:
    assert len(run(RULE, busy_day(5), overrides={"vehicles": 5})) == 1
    two = night_calls(utc(2026, 6, 1, 21), utc(2026, 6, 5, 21))
    assert len(run(RULE, two, overrides={"nights": 2})) == 1
