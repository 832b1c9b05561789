"""overdue: still present a day after the expected departure, judged at `now`."""

from __future__ import annotations

from datetime import timedelta

from nightreg.rules.overdue import RULE
from tests.unit.rule_facts import run, utc, visit

EXPECTED = utc(2026, 8, 3, 10)


def test_a_visit_still_present_a_day_after_its_expected_departure_is_overdue() -> None:
    late = visit(utc(2026, 8, 1, 12), expected_departure_at=EXPECTED)
    [finding] = run(RULE, [late], now=EXPECTED + timedelta(hours=30))
    assert finding.subject == f"visit:{late.id}"
    assert finding.visit_ids == (late.id,)
    assert finding.params == {"hours": 30}
    assert (finding.window_start, finding.window_end) == (EXPECTED, EXPECTED + timedelta(days=1))
    assert finding.score == 20


def test_exactly_a_day_late_is_overdue_and_a_minute_less_is_not() -> None:
    late = visit(utc(2026, 8, 1, 12), expected_departure_at=EXPECTED)
    assert len(run(RULE, [late], now=EXPECTED + timedelta(hours=24))) == 1
    assert run(RULE, [late], now=EXPECTED + timedelta(hours=23, minutes=59)) == []


def test_a_visit_that_left_is_never_overdue() -> None:
    left = visit(utc(2026, 8, 1, 12), expected_departure_at=EXPECTED, departed_at=EXPECTED)
    assert run(RULE, [left], now=EXPECTED + timedelta(days=30)) == []


def test_overdue_is_operational_and_never_forwarded() -> None:
    assert RULE.forwardable is False
    assert RULE.scope == "visit"


def test_a_site_can_be_stricter() -> None:
    late = visit(utc(2026, 8, 1, 12), expected_departure_at=EXPECTED)
    [finding] = run(RULE, [late], now=EXPECTED + timedelta(hours=3), overrides={"hours": 2})
    assert finding.params == {"hours": 3}
    assert finding.window_end == EXPECTED + timedelta(hours=2)
