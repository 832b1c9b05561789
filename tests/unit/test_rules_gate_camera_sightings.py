"""Gate camera sightings as evidence (issue 19): unit_night_traffic and boat_meets_vehicle count
the times the cameras saw a registered vehicle, and their reasons name the camera."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from nightreg.rules import boat_meets_vehicle, unit_night_traffic
from nightreg.rules.base import VisitFacts
from tests.unit.rule_facts import run, utc, vehicle, visit

DAY = utc(2026, 6, 10, 8)  # 10:00 CEST
NIGHT = utc(2026, 2, 10, 22, 10)  # 23:10 CET


def day_call(days: int, *camera_hours: int) -> VisitFacts:
    """A ten-minute call by day, with the camera's reads at these UTC hours of that day."""
    at = DAY + timedelta(days=days)
    reads = tuple(at.replace(hour=h) for h in camera_hours)
    return vehicle(at, unit="A12", stay=timedelta(minutes=10), camera_sightings=reads)


def test_vehicles_seen_at_night_only_by_the_camera_make_unit_night_traffic() -> None:
    # The register shows calls by day; the camera saw the same vehicles at 01:00 CEST.
    visits = [day_call(d, 23) for d in (0, 2, 4)]
    [finding] = run(unit_night_traffic.RULE, visits)
    assert finding.params["reason"] == "nights_camera"
    assert finding.params["nights"] == 3
    assert "gate camera" in unit_night_traffic.RULE.reason_for(finding.params)
    assert finding.visit_ids == tuple(sorted(v.id for v in visits))


def test_without_sightings_the_same_calls_by_day_are_nothing() -> None:
    assert run(unit_night_traffic.RULE, [day_call(d) for d in (0, 2, 4)]) == []


def test_night_calls_the_register_shows_keep_the_plain_reason() -> None:
    night = utc(2026, 6, 10, 23)  # 01:00 CEST
    visits = [vehicle(night + timedelta(days=d), unit="A12", stay=timedelta(minutes=10))
              for d in (0, 2, 4)]  # fmt: skip
    [finding] = run(unit_night_traffic.RULE, visits)
    assert finding.params["reason"] == "nights"


def test_a_boat_meeting_a_van_the_camera_saw_at_night_names_the_camera() -> None:
    # The van's visit says it came by day and stayed; the camera saw it go out at 23:10.
    van = vehicle(NIGHT - timedelta(hours=8), site_kind="marina", camera_sightings=(NIGHT,))
    boat = visit(NIGHT + timedelta(minutes=12))
    [finding] = run(boat_meets_vehicle.RULE, [van, boat])
    assert finding.params == {"minutes": 12, "reason": "camera"}
    assert "gate camera" in boat_meets_vehicle.RULE.reason_for(finding.params)
    assert finding.visit_ids == tuple(sorted((van.id, boat.id)))


def test_the_reason_names_the_camera_only_when_its_sighting_was_the_closest() -> None:
    van = vehicle(NIGHT, site_kind="marina", camera_sightings=(NIGHT + timedelta(minutes=25),))
    boat = visit(NIGHT + timedelta(minutes=5))
    [finding] = run(boat_meets_vehicle.RULE, [van, boat])
    assert finding.params == {"minutes": 5}


def test_sightings_never_carry_a_country() -> None:
    # The facts a rule gets hold times only: no plate country, no camera, no direction.
    fact = replace(vehicle(NIGHT), camera_sightings=(NIGHT,))
    assert all(isinstance(at, type(NIGHT)) for at in fact.camera_sightings)
    assert not any("country" in name for name in VisitFacts.__dataclass_fields__)
