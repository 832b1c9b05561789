"""site_hopping: three sites within seven days, or two within twelve hours."""

from __future__ import annotations

from datetime import timedelta

from nightreg.rules.base import VisitFacts
from nightreg.rules.site_hopping import RULE
from tests.unit.rule_facts import run, utc, visit

START = utc(2026, 6, 1, 9)


def at(offset: timedelta, site_id: int) -> VisitFacts:
    return visit(START + offset, site_id=site_id, stay=timedelta(hours=1))


def test_three_sites_in_six_days_are_flagged_with_the_week_clause() -> None:
    visits = [at(timedelta(days=0), 1), at(timedelta(days=3), 2), at(timedelta(days=6), 3)]
    [finding] = run(RULE, visits)
    assert finding.subject == "reg:NL123AB"
    assert finding.visit_ids == tuple(v.id for v in visits)
    assert finding.params == {"sites": 3, "days": 7, "reason": "days"}
    assert (finding.window_start, finding.window_end) == (START, START + timedelta(days=6))
    assert finding.score == 50


def test_three_sites_in_exactly_seven_days_still_count() -> None:
    visits = [at(timedelta(days=0), 1), at(timedelta(days=3), 2), at(timedelta(days=7), 3)]
    assert len(run(RULE, visits)) == 1


def test_three_sites_in_seven_days_and_a_minute_do_not() -> None:
    visits = [
        at(timedelta(days=0), 1),
        at(timedelta(days=3), 2),
        at(timedelta(days=7, minutes=1), 3),
    ]
    assert run(RULE, visits) == []


def test_two_sites_within_eleven_hours_are_flagged_with_the_quick_clause() -> None:
    visits = [at(timedelta(0), 1), at(timedelta(hours=11), 2)]
    [finding] = run(RULE, visits)
    assert finding.params == {"sites": 2, "hours": 12, "reason": "hours"}
    assert finding.visit_ids == tuple(v.id for v in visits)


def test_two_sites_twelve_hours_and_a_minute_apart_are_not() -> None:
    assert run(RULE, [at(timedelta(0), 1), at(timedelta(hours=12, minutes=1), 2)]) == []


def test_coming_back_to_the_same_site_is_not_hopping() -> None:
    visits = [at(timedelta(hours=h), 1) for h in range(0, 48, 4)]
    assert run(RULE, visits) == []


def test_a_quick_hop_inside_a_week_long_pattern_is_not_a_second_finding() -> None:
    visits = [
        at(timedelta(0), 1),
        at(timedelta(hours=2), 2),
        at(timedelta(days=4), 3),
    ]
    [finding] = run(RULE, visits)
    assert finding.params == {"sites": 3, "days": 7, "reason": "days"}
    assert len(finding.visit_ids) == 3


def test_a_quick_hop_outside_the_week_pattern_is_its_own_finding() -> None:
    visits = [
        at(timedelta(0), 1),
        at(timedelta(days=3), 2),
        at(timedelta(days=6), 3),
        at(timedelta(days=30), 4),
        at(timedelta(days=30, hours=5), 5),
    ]
    findings = run(RULE, visits)
    assert [f.params["reason"] for f in findings] == ["days", "hours"]
    assert findings[1].visit_ids == (visits[3].id, visits[4].id)


def test_only_the_arrival_counts_not_how_long_the_visit_lasted() -> None:
    first = visit(START, site_id=1, stay=timedelta(days=10))
    second = visit(START + timedelta(days=9, hours=23), site_id=2, stay=timedelta(hours=1))
    assert run(RULE, [first, second]) == []


def test_a_site_can_change_both_clauses() -> None:
    visits = [at(timedelta(0), 1), at(timedelta(days=3), 2)]
    assert run(RULE, visits) == []
    [finding] = run(RULE, visits, overrides={"sites": 2})
    assert finding.params == {"sites": 2, "days": 7, "reason": "days"}
    quick = [at(timedelta(0), 1), at(timedelta(hours=20), 2)]
    [finding] = run(RULE, quick, overrides={"quick_hours": 24, "sites": 9})
    assert finding.params == {"sites": 2, "hours": 24, "reason": "hours"}


def test_twelve_hours_across_the_autumn_clock_change_are_real_hours() -> None:
    # 20:00 CEST on 24 October to 07:30 CET next morning: 11 h 30 on the wall, 12 h 30 real.
    first = visit(utc(2026, 10, 24, 18), site_id=1)
    second = visit(utc(2026, 10, 25, 6, 30), site_id=2)
    assert run(RULE, [first, second]) == []
    earlier = visit(utc(2026, 10, 25, 5, 30), site_id=2)  # 06:30 CET: 11 h 30 real
    assert len(run(RULE, [first, earlier])) == 1
