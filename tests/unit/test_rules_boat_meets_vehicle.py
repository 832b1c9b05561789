"""boat_meets_vehicle: at a marina, a vehicle moving at night within half an hour of a boat."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from nightreg.rules.base import VisitFacts
from nightreg.rules.boat_meets_vehicle import RULE
from tests.unit.rule_facts import run, utc, vehicle, visit

NIGHT = utc(2026, 2, 10, 22, 10)  # 23:10 CET


def van(at: datetime, **kw: object) -> VisitFacts:
    kw.setdefault("site_kind", "marina")
    return vehicle(at, **kw)  # type: ignore[arg-type]


def test_a_van_arriving_twenty_minutes_before_a_boat_at_night_is_flagged() -> None:
    car, boat = van(NIGHT), visit(NIGHT + timedelta(minutes=20))
    [finding] = run(RULE, [car, boat])
    assert finding.subject == "plate:AB123C+reg:NL123AB"
    assert finding.visit_ids == tuple(sorted((car.id, boat.id)))
    assert finding.site_id == 1
    assert finding.params == {"minutes": 20}
    assert (finding.window_start, finding.window_end) == (car.arrived_at, boat.arrived_at)
    assert finding.score == 50


def test_exactly_thirty_minutes_apart_counts_and_thirty_one_does_not() -> None:
    car = van(NIGHT)
    assert len(run(RULE, [car, visit(NIGHT - timedelta(minutes=30))])) == 1
    assert run(RULE, [car, visit(NIGHT + timedelta(minutes=31))]) == []


@pytest.mark.parametrize(
    ("car_at", "flagged"),
    [
        (utc(2026, 2, 10, 20, 59), False),  # 21:59 CET
        (utc(2026, 2, 10, 21, 0), True),  # 22:00 CET
        (utc(2026, 2, 11, 4, 59), True),  # 05:59 CET
        (utc(2026, 2, 11, 5, 0), False),  # 06:00 CET
    ],
)
def test_the_vehicle_must_move_between_ten_at_night_and_six_in_the_morning(
    car_at: datetime, flagged: bool
) -> None:
    assert bool(run(RULE, [van(car_at), visit(car_at + timedelta(minutes=5))])) is flagged


def test_a_boat_leaving_as_a_van_leaves_counts() -> None:
    car = van(utc(2026, 2, 10, 12), departed_at=utc(2026, 2, 11, 1))
    boat = visit(utc(2026, 2, 9, 12), departed_at=utc(2026, 2, 11, 1, 10))
    [finding] = run(RULE, [car, boat])
    assert finding.params == {"minutes": 10}


def test_arriving_and_leaving_together_is_one_finding_naming_the_closest_moment() -> None:
    car = van(NIGHT, departed_at=NIGHT + timedelta(hours=4))
    boat = visit(NIGHT + timedelta(minutes=25), departed_at=NIGHT + timedelta(hours=4, minutes=2))
    [finding] = run(RULE, [car, boat])
    assert finding.params == {"minutes": 2}
    assert (finding.window_start, finding.window_end) == (NIGHT, boat.departed_at)


def test_each_pair_of_vehicle_and_boat_is_its_own_finding() -> None:
    car = van(NIGHT)
    boats = [visit(NIGHT + timedelta(minutes=m), subject_key=f"reg:B{m}") for m in (5, 10)]
    findings = run(RULE, [car, *boats])
    assert [f.subject for f in findings] == ["plate:AB123C+reg:B5", "plate:AB123C+reg:B10"]


def test_two_vehicles_or_two_boats_are_not_a_meeting() -> None:
    vans = [van(NIGHT), van(NIGHT + timedelta(minutes=5), plate="XY987Z")]
    boats = [visit(NIGHT), visit(NIGHT + timedelta(minutes=5), subject_key="reg:OTHER")]
    assert run(RULE, vans) == []
    assert run(RULE, boats) == []


def test_business_parks_are_not_looked_at() -> None:
    car = van(NIGHT, site_kind="business_park")
    boat = visit(NIGHT, site_kind="business_park")
    assert run(RULE, [car, boat]) == []


def test_the_night_follows_the_site_clock_on_the_spring_morning() -> None:
    # 29 March: 03:59 UTC is 05:59 CEST (night), 04:00 UTC is 06:00 CEST (day).
    assert len(run(RULE, [van(utc(2026, 3, 29, 3, 59)), visit(utc(2026, 3, 29, 4, 10))])) == 1
    assert run(RULE, [van(utc(2026, 3, 29, 4, 0)), visit(utc(2026, 3, 29, 4, 10))]) == []


def test_the_autumn_night_is_measured_in_real_minutes() -> None:
    # 02:10 CET on 25 October reads 40 minutes before 02:50 CEST but comes 20 minutes after it.
    car = van(utc(2026, 10, 25, 0, 50))  # 02:50 CEST
    near = visit(utc(2026, 10, 25, 1, 10))  # 02:10 CET, 20 real minutes later
    [finding] = run(RULE, [car, near])
    assert finding.params == {"minutes": 20}


def test_a_site_can_widen_the_gap_and_the_night() -> None:
    car, boat = van(utc(2026, 2, 10, 20)), visit(utc(2026, 2, 10, 20, 45))  # 21:00 CET
    assert run(RULE, [car, boat]) == []
    [finding] = run(RULE, [car, boat], overrides={"minutes": 60, "night_start_hour": 21})
    assert finding.params == {"minutes": 45}
