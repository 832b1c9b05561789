"""short_stay_repeat: three visits under six hours within thirty days, at any sites."""

from __future__ import annotations

from datetime import datetime, timedelta

from nightreg.rules.base import VisitFacts
from nightreg.rules.short_stay_repeat import RULE
from tests.unit.rule_facts import run, utc, visit

START = utc(2026, 5, 4, 10)
FIVE_HOURS = timedelta(hours=5)


def stays(*offsets: timedelta, stay: timedelta = FIVE_HOURS, **kw: object) -> list[VisitFacts]:
    return [visit(START + offset, stay=stay, **kw) for offset in offsets]  # type: ignore[arg-type]


def days(n: float) -> timedelta:
    return timedelta(days=n)


def test_three_short_visits_in_a_month_are_flagged_with_all_three() -> None:
    visits = stays(days(0), days(10), days(20))
    [finding] = run(RULE, visits)
    assert finding.subject == "reg:NL123AB"
    assert finding.visit_ids == tuple(v.id for v in visits)
    assert (finding.window_start, finding.window_end) == (START, START + days(20))
    assert finding.params == {"count": 3, "hours": 6, "days": 30}
    assert finding.score == 40


def test_two_short_visits_are_errands() -> None:
    assert run(RULE, stays(days(0), days(10))) == []


def test_a_visit_of_six_hours_and_a_minute_is_not_short() -> None:
    visits = stays(days(0), days(10)) + stays(days(20), stay=timedelta(hours=6, minutes=1))
    assert run(RULE, visits) == []


def test_a_visit_of_exactly_six_hours_is_not_shorter_than_six_hours() -> None:
    visits = stays(days(0), days(10)) + stays(days(20), stay=timedelta(hours=6))
    assert run(RULE, visits) == []


def test_a_visit_of_five_hours_fifty_nine_is_short() -> None:
    visits = stays(days(0), days(10)) + stays(days(20), stay=timedelta(hours=5, minutes=59))
    assert len(run(RULE, visits)) == 1


def test_a_visit_still_present_has_no_length_yet() -> None:
    open_visit = visit(START + days(20))
    assert run(RULE, [*stays(days(0), days(10)), open_visit]) == []


def test_the_third_arrival_exactly_thirty_days_after_the_first_still_counts() -> None:
    assert len(run(RULE, stays(days(0), days(15), days(30)))) == 1


def test_the_third_arrival_a_minute_past_thirty_days_does_not() -> None:
    assert run(RULE, stays(days(0), days(15), days(30) + timedelta(minutes=1))) == []


def test_short_visits_at_different_sites_count_together() -> None:
    visits = [
        visit(START + days(i * 5), stay=FIVE_HOURS, site_id=i + 1, site_kind=kind)
        for i, kind in enumerate(("marina", "marina", "business_park"))
    ]
    [finding] = run(RULE, visits)
    assert finding.site_id is None  # the scan files it at the latest visit's site


def test_a_pattern_that_keeps_going_is_one_finding_that_grows() -> None:
    visits = stays(days(0), days(10), days(20), days(35), days(50))
    [finding] = run(RULE, visits)
    assert len(finding.visit_ids) == 5
    assert finding.params["count"] == 5
    assert finding.score == 60


def test_patterns_far_apart_are_separate_findings() -> None:
    visits = stays(days(0), days(1), days(2), days(100), days(101), days(102))
    assert [len(f.visit_ids) for f in run(RULE, visits)] == [3, 3]


def test_the_order_of_the_input_does_not_matter() -> None:
    visits = stays(days(0), days(10), days(20))
    assert run(RULE, visits) == run(RULE, list(reversed(visits)))


def test_a_site_can_lower_the_count_and_lengthen_what_is_short() -> None:
    visits = stays(days(0), days(10), stay=timedelta(hours=7))
    assert run(RULE, visits) == []
    [finding] = run(RULE, visits, overrides={"count": 2, "hours": 8})
    assert finding.params == {"count": 2, "hours": 8, "days": 30}


def test_a_stay_across_the_spring_clock_change_is_measured_in_real_hours() -> None:
    # 23:30 CET to 06:15 CEST reads as 6 h 45 on the wall clock but lasted 5 h 45.
    arrived: datetime = utc(2026, 3, 28, 22, 30)
    visits = [
        visit(arrived - days(20), stay=FIVE_HOURS),
        visit(arrived - days(10), stay=FIVE_HOURS),
        visit(arrived, departed_at=utc(2026, 3, 29, 4, 15)),
    ]
    assert len(run(RULE, visits)) == 1
