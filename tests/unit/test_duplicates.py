"""Possible duplicates, the pure parts: what a merge keeps, who is counted once, and the
tourist tax's nights of a subject checked in twice."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nightreg.services.aggregates import Counts, StayRow, contributions
from nightreg.services.corrections import fields_for
from nightreg.services.duplicates import merged_values
from nightreg.services.presence import doubled

AMS = ZoneInfo("Europe/Amsterdam")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=AMS).astimezone(UTC)


def boat(visit_id: int, created: str, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(fields_for("vessel"))
    values.update(
        id=visit_id,
        created_at=at(created),
        guest_name="Jan de Vries",
        residence="Hoorn",
        persons=2,
        vessel_name="Zeemeeuw",
        registration="NL-123-AB",
        arrived_at=at(created),
        expected_departure_at=at("2026-07-16 11:00"),
        departed_at=None,
    )
    values.update(fields)
    return values


def test_a_merge_keeps_the_earliest_arrival_and_the_newer_visits_details():
    survivor = boat(1, "2026-07-14 20:45", berth="A12", length_m=Decimal("11.5"))
    newer = boat(
        2, "2026-07-14 21:10", guest_name="Piet Smit", persons=3, arrived_at=at("2026-07-14 19:00"),
        expected_departure_at=at("2026-07-17 11:00"),
    )  # fmt: skip

    changes = merged_values("vessel", survivor, newer)

    assert changes == {
        "guest_name": "Piet Smit",
        "persons": 3,
        "arrived_at": at("2026-07-14 19:00"),
        "expected_departure_at": at("2026-07-17 11:00"),
    }  # the berth and length the newer one left empty stay as they were


def test_the_newer_visit_is_the_one_written_later_whichever_survives():
    survivor = boat(5, "2026-07-14 22:00", guest_name="Later")
    other = boat(4, "2026-07-14 20:00", guest_name="Earlier", phone="+31 6 1")

    changes = merged_values("vessel", survivor, other)

    assert "guest_name" not in changes  # the survivor is the newer: its name stays
    assert changes == {"phone": "+31 6 1", "arrived_at": at("2026-07-14 20:00")}


def test_a_merged_visit_is_present_while_either_is_and_else_left_at_the_later_departure():
    one = boat(1, "2026-07-14 20:00", departed_at=at("2026-07-15 09:00"))
    two = boat(2, "2026-07-14 21:00")

    assert "departed_at" not in merged_values("vessel", two, one)
    assert merged_values("vessel", one, two)["departed_at"] is None
    three = boat(3, "2026-07-14 21:30", departed_at=at("2026-07-15 10:00"))
    assert merged_values("vessel", one, three)["departed_at"] == at("2026-07-15 10:00")


def test_a_possible_duplicate_is_not_counted_while_the_visit_it_doubles_is_there_too():
    marks = {2: 1, 5: 4}

    assert doubled([1, 2, 3], marks) == {2}
    assert doubled([2, 3, 5], marks) == set()  # their visits are not among them
    assert doubled([], marks) == set()


def test_a_subject_checked_in_twice_counts_one_arrival_and_each_night_once():
    first = StayRow(1, "vessel", 2, at("2026-07-14 20:45"), at("2026-07-16 11:00"), 10)
    again = StayRow(1, "vessel", 3, at("2026-07-14 20:55"), at("2026-07-18 11:00"), 11, 10)
    third = StayRow(1, "vessel", 4, at("2026-07-15 08:00"), at("2026-07-18 11:00"), 12, 10)

    counts = contributions([again, first, third], {1: AMS})

    assert counts[(1, at("2026-07-14 12:00").date(), "vessel")] == Counts(1, 2, 2)
    assert counts[(1, at("2026-07-15 12:00").date(), "vessel")] == Counts(0, 0, 2)
    # The nights only the later check-ins spend, once each: the first of them counts.
    assert counts[(1, at("2026-07-16 12:00").date(), "vessel")] == Counts(0, 0, 3)
    assert counts[(1, at("2026-07-17 12:00").date(), "vessel")] == Counts(0, 0, 3)


def test_a_possible_duplicate_of_a_visit_counted_elsewhere_adds_only_its_own_nights():
    kept = StayRow(1, "vessel", 2, at("2026-07-14 20:45"), at("2026-07-16 11:00"), 10)
    gone = StayRow(1, "vessel", 2, at("2026-07-14 21:00"), at("2026-07-17 11:00"), 11, 10)

    counts = contributions([gone], {1: AMS}, context=[kept])

    assert counts == {(1, at("2026-07-16 12:00").date(), "vessel"): Counts(0, 0, 2)}
    # Without its visit to compare with, it counts as any visit does.
    alone = contributions([gone], {1: AMS})
    assert alone[(1, at("2026-07-14 12:00").date(), "vessel")] == Counts(1, 2, 2)
