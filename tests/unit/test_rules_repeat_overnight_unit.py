"""repeat_overnight_unit: overnight stays in one business-park unit on 3 nights in 2 weeks."""

from __future__ import annotations

from datetime import datetime, timedelta

from nightreg.rules.base import VisitFacts
from nightreg.rules.repeat_overnight_unit import RULE
from tests.unit.rule_facts import run, utc, visit

EVENING = utc(2026, 6, 1, 18)  # 20:00 CEST on Monday 1 June
NOW = utc(2027, 1, 1)


def stay(arrived_at: datetime, departed_at: datetime | None, **kw: object) -> VisitFacts:
    kw.setdefault("unit", "A12")
    kw.setdefault("site_kind", "business_park")
    return visit(arrived_at, departed_at=departed_at, kind="stay", subject_key="person:jan", **kw)  # type: ignore[arg-type]


def night(day_offset: int, **kw: object) -> VisitFacts:
    """From 20:00 on the given evening to 08:00 the next morning (summer time)."""
    start = EVENING + timedelta(days=day_offset)
    return stay(start, start + timedelta(hours=12), **kw)


def test_one_stay_over_three_nights_is_flagged() -> None:
    long_stay = stay(EVENING, EVENING + timedelta(days=2, hours=12))
    [finding] = run(RULE, [long_stay], NOW)
    assert finding.subject == "unit:A12"
    assert finding.visit_ids == (long_stay.id,)
    assert finding.site_id == 1
    assert finding.params == {"unit": "A12", "nights": 3, "days": 14}
    # The checks at 02:00 CEST (00:00 UTC) on 2, 3 and 4 June.
    assert (finding.window_start, finding.window_end) == (utc(2026, 6, 2), utc(2026, 6, 4))
    assert finding.score == 50


def test_three_separate_nights_by_different_people_in_one_unit_are_flagged() -> None:
    visits = [night(0), night(4), night(9)]
    [finding] = run(RULE, visits, NOW)
    assert finding.visit_ids == tuple(v.id for v in visits)


def test_two_nights_are_a_late_job() -> None:
    assert run(RULE, [night(0), night(5)], NOW) == []


def test_two_stays_in_the_same_night_are_one_night() -> None:
    assert run(RULE, [night(0), night(0), night(5)], NOW) == []


def test_being_there_at_two_in_the_morning_is_what_makes_a_night() -> None:
    check = utc(2026, 6, 2)  # 02:00 CEST
    gone_before = stay(EVENING, check - timedelta(minutes=1))
    came_after = stay(check + timedelta(minutes=1), check + timedelta(hours=6))
    assert run(RULE, [gone_before, came_after, night(4), night(6)], NOW) == []
    came_at_one = stay(check - timedelta(hours=1), check + timedelta(hours=6))
    assert len(run(RULE, [came_at_one, night(4), night(6)], NOW)) == 1


def test_the_third_night_must_fall_within_fourteen_days() -> None:
    assert len(run(RULE, [night(0), night(7), night(14)], NOW)) == 1
    assert run(RULE, [night(0), night(7), night(15)], NOW) == []


def test_a_stay_not_yet_ended_covers_the_nights_up_to_now() -> None:
    open_stay = stay(EVENING, None)
    assert run(RULE, [open_stay], now=utc(2026, 6, 4) - timedelta(minutes=1)) == []
    [finding] = run(RULE, [open_stay], now=utc(2026, 6, 4) + timedelta(minutes=1))
    assert finding.params["nights"] == 3


def test_units_vehicles_and_marinas_are_kept_apart() -> None:
    assert run(RULE, [night(0, unit="A12"), night(1, unit="B7"), night(2, unit="A12")], NOW) == []
    assert run(RULE, [night(0, unit=None), night(1, unit=None), night(2, unit=None)], NOW) == []
    marina = [night(d, site_kind="marina") for d in range(3)]
    assert run(RULE, marina, NOW) == []
    vans = [visit(EVENING + timedelta(days=d), stay=timedelta(hours=12), kind="vehicle",
                  unit="A12", site_kind="business_park") for d in range(3)]  # fmt: skip
    assert run(RULE, vans, NOW) == []


def test_the_spring_night_is_checked_at_three_summer_time() -> None:
    # 02:00 does not exist on 29 March 2026; the check falls at 01:00 UTC (03:00 CEST).
    evening = utc(2026, 3, 28, 20)  # 21:00 CET
    left_at_half_past_one = stay(evening, utc(2026, 3, 29, 0, 30))  # 01:30 CET
    left_at_half_past_three = stay(evening, utc(2026, 3, 29, 1, 30))  # 03:30 CEST
    others = [
        stay(utc(2026, 3, 30, 19), utc(2026, 3, 31, 6)),
        stay(utc(2026, 4, 1, 19), utc(2026, 4, 2, 6)),
    ]
    assert run(RULE, [left_at_half_past_one, *others], NOW) == []
    [finding] = run(RULE, [left_at_half_past_three, *others], NOW)
    assert finding.window_start == utc(2026, 3, 29, 1)


def test_the_autumn_night_is_checked_at_the_first_two_o_clock() -> None:
    # 02:00 happens twice on 25 October 2026; the check is the first, 00:00 UTC (CEST).
    evening = utc(2026, 10, 24, 18)
    others = [
        stay(utc(2026, 10, 26, 19), utc(2026, 10, 27, 6)),
        stay(utc(2026, 10, 28, 19), utc(2026, 10, 29, 6)),
    ]
    left_between = stay(evening, utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    [finding] = run(RULE, [left_between, *others], NOW)
    assert finding.window_start == utc(2026, 10, 25, 0)


def test_a_site_can_ask_for_more_nights() -> None:
    assert run(RULE, [night(0), night(1), night(2)], NOW, overrides={"nights": 4}) == []
