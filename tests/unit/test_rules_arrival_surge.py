"""arrival_surge: more arrivals in one local date than the same weekday's eight-week baseline."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import pytest

from nightreg.rules.arrival_surge import MIN_BASELINE, RULE, poisson_tail
from nightreg.rules.base import NightCount
from tests.unit.rule_facts import run, utc

DAY = date(2026, 6, 10)  # a Wednesday


def history(per_day: int, before: date = DAY, weeks: int = 8) -> list[NightCount]:
    """`per_day` arrivals on every date of the `weeks` weeks before `before`."""
    return [
        NightCount(site_id=7, night=before - timedelta(days=d), arrivals=per_day)
        for d in range(1, 7 * weeks + 1)
    ]


def surge(count: int, on: date = DAY, base: int = 2) -> list[NightCount]:
    return [*history(base, on), NightCount(site_id=7, night=on, arrivals=count)]


def test_a_day_with_nine_arrivals_where_two_are_usual_is_a_surge() -> None:
    [finding] = run(RULE, surge(9))
    assert finding.subject == "site:7"
    assert finding.site_id == 7
    assert finding.visit_ids == ()
    assert finding.params == {"arrivals": 9, "date": "2026-06-10", "baseline": "2.0", "weeks": 8}
    # Midnight to midnight in Amsterdam summer time.
    assert (finding.window_start, finding.window_end) == (utc(2026, 6, 9, 22), utc(2026, 6, 10, 22))
    assert finding.score == 50


def test_eight_arrivals_where_two_are_usual_could_be_chance() -> None:
    # P(X >= 8 | 2) is about 0.0011, just above one in a thousand.
    assert run(RULE, surge(8)) == []


def test_the_baseline_is_the_same_weekday_only() -> None:
    # Busy Wednesdays make ten arrivals on a Wednesday ordinary, however quiet other days are.
    counts = [n for n in history(0) if n.night.weekday() != DAY.weekday()]
    counts += [NightCount(7, DAY - timedelta(weeks=w), 10) for w in range(1, 9)]
    assert run(RULE, [*counts, NightCount(7, DAY, 10)]) == []


def test_missing_dates_count_as_no_arrivals() -> None:
    # Only the date eight weeks back is known: the other seven Wednesdays count as zero.
    counts = [NightCount(7, DAY - timedelta(weeks=8), 8), NightCount(7, DAY, 9)]
    [finding] = run(RULE, counts)
    assert finding.params["baseline"] == "1.0"


def test_a_date_is_judged_only_when_the_input_reaches_back_eight_weeks() -> None:
    short = [NightCount(7, DAY - timedelta(weeks=8) + timedelta(days=1), 1), NightCount(7, DAY, 50)]
    assert run(RULE, short) == []


def test_fewer_than_five_arrivals_are_never_a_surge() -> None:
    quiet = [NightCount(7, DAY - timedelta(weeks=8), 0)]
    generous = {"p_max_per_million": 999_999}
    assert run(RULE, [*quiet, NightCount(7, DAY, 4)], overrides=generous) == []
    assert len(run(RULE, [*quiet, NightCount(7, DAY, 5)], overrides=generous)) == 1


def test_the_baseline_floor_keeps_an_empty_weekday_from_making_any_arrival_impossible() -> None:
    quiet = [NightCount(7, DAY - timedelta(weeks=8), 0)]
    # With a baseline of 0 any arrival would have chance 0; the floor of 0.5 gives 4 arrivals
    # a chance of about 0.0018, which is not a surge, and 5 about 0.00017, which is.
    assert MIN_BASELINE == 0.5
    assert run(RULE, [*quiet, NightCount(7, DAY, 4)], overrides={"min_arrivals": 1}) == []
    [finding] = run(RULE, [*quiet, NightCount(7, DAY, 5)])
    assert finding.params["baseline"] == "0.5"


def test_counts_for_one_date_given_twice_are_added() -> None:
    counts = [*history(2), NightCount(7, DAY, 5), NightCount(7, DAY, 4)]
    assert run(RULE, counts)[0].params["arrivals"] == 9


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [
        (date(2026, 3, 29), utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)),  # a 23-hour day
        (date(2026, 10, 25), utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)),  # a 25-hour day
    ],
)
def test_the_window_is_the_local_date_on_the_days_the_clocks_change(day, start, end) -> None:  # type: ignore[no-untyped-def]
    [finding] = run(RULE, surge(12, on=day))
    assert (finding.window_start, finding.window_end) == (start, end)


def test_the_time_zone_is_the_site_s() -> None:
    [finding] = run(RULE, surge(12), tz=ZoneInfo("UTC"))
    assert finding.window_start == utc(2026, 6, 10)
    assert finding.window_start.tzinfo is UTC


def test_a_bigger_surge_scores_higher() -> None:
    assert run(RULE, surge(20))[0].score > run(RULE, surge(9))[0].score


def test_a_site_can_loosen_the_chance() -> None:
    assert len(run(RULE, surge(8), overrides={"p_max_per_million": 5000})) == 1


def test_the_poisson_tail_matches_known_values() -> None:
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 2.0) == pytest.approx(0.864665, rel=1e-5)
    assert poisson_tail(8, 2.0) == pytest.approx(0.00109672, rel=1e-5)
    assert poisson_tail(5, 0.5) == pytest.approx(0.000172116, rel=1e-5)
    assert 0 < poisson_tail(60, 1.0) < 1e-70
