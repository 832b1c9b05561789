"""The night round's order: boats by pier and berth, berths being whatever people typed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from nightreg.models import Visit
from nightreg.services.rounds import (
    Boat,
    berth_sort_key,
    group_by_pier,
    natural_key,
    pier_of,
    trailing_misses,
)


@pytest.mark.parametrize(
    ("berth", "pier"),
    [
        ("A12", "A"),
        ("a9", "a"),
        ("B-3", "B"),
        ("B 3", "B"),
        ("Steiger 2-14", "Steiger 2"),
        ("Oost/7", "Oost"),
        ("H1.12", "H1"),
        ("12", ""),
        ("12-3", "12"),
        ("  C7 ", "C"),
        ("A12-", "A"),
        ("", ""),
        (None, ""),
        ("Ö5", "Ö"),
    ],
)
def test_a_berths_pier_is_what_comes_before_its_last_separator_or_its_leading_letters(
    berth: str | None, pier: str
) -> None:
    assert pier_of(berth) == pier


def test_numbers_in_a_berth_sort_as_numbers_so_a12_comes_after_a9() -> None:
    berths = ["A12", "B1", "A9", "a10", "A-11", "B 02", "A1"]

    assert sorted(berths, key=berth_sort_key) == ["A1", "A9", "a10", "A-11", "A12", "B1", "B 02"]


def test_boats_without_a_berth_come_last_and_berths_without_a_pier_first() -> None:
    berths = [None, "A2", "", "7", "A1", "12"]

    assert sorted(berths, key=berth_sort_key) == ["7", "12", "A1", "A2", None, ""]


def test_the_order_does_not_depend_on_the_order_the_boats_came_in() -> None:
    berths = [f"{pier}{n}" for pier in "ABC" for n in range(1, 25)] + [
        "Steiger 2-3",
        "Steiger 10-1",
    ]
    shuffled = berths[:]
    random.Random(4).shuffle(shuffled)

    assert sorted(shuffled, key=berth_sort_key) == sorted(berths, key=berth_sort_key)
    assert sorted(["Steiger 10-1", "Steiger 2-3"], key=berth_sort_key)[0] == "Steiger 2-3"


def test_a_natural_key_ignores_case_and_separators() -> None:
    assert natural_key("A-12") == natural_key("a12") == natural_key("A 12")
    assert natural_key("A9") < natural_key("A10")


def boat(berth: str | None, name: str = "Boot") -> Boat:
    return Boat(visit=Visit(berth=berth, vessel_name=name), mark=None)


def test_boats_are_grouped_by_pier_whatever_its_case_with_the_unberthed_apart() -> None:
    piers = group_by_pier(
        [boat("b2"), boat("A10"), boat(None, "Zwerver"), boat("a9"), boat("B1"), boat("5")]
    )

    assert [(p.name, p.has_berths, [b.visit.berth for b in p.boats]) for p in piers] == [
        ("", True, ["5"]),
        ("a", True, ["a9", "A10"]),
        ("B", True, ["B1", "b2"]),
        ("", False, [None]),
    ]


T0 = datetime(2026, 7, 14, 19, 0, tzinfo=UTC)


def night(n: int) -> datetime:
    return T0 + timedelta(days=n)


def test_the_misses_since_a_boat_was_last_seen_count_with_each_rounds_last_mark() -> None:
    marks = [
        (1, night(0), "seen", night(0), 1),
        (2, night(1), "missing", night(1), 2),
        # changed its mind on the same round: the last mark counts
        (3, night(2), "seen", night(2), 3),
        (3, night(2), "missing", night(2) + timedelta(minutes=5), 4),
    ]

    assert trailing_misses(list(reversed(marks))) == [night(1), night(2)]
    assert trailing_misses([*marks, (4, night(3), "seen", night(3), 5)]) == []
    assert trailing_misses([]) == []
