"""The non-personal counts: nights by local date, persons per night, arrivals per day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from nightreg.services.aggregates import Counts, StayRow, contributions, nights

AMS = ZoneInfo("Europe/Amsterdam")


def at(text: str) -> datetime:
    """A local Amsterdam time, in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=AMS).astimezone(UTC)


def test_a_stay_across_a_month_end_has_its_nights_in_both_months():
    assert nights(at("2026-03-30 18:00"), at("2026-04-02 10:00"), AMS) == [
        date(2026, 3, 30),
        date(2026, 3, 31),
        date(2026, 4, 1),
    ]


def test_a_day_visit_spends_no_night():
    assert nights(at("2026-07-14 09:00"), at("2026-07-14 23:59"), AMS) == []


def test_a_night_is_a_local_date_even_when_utc_says_otherwise():
    # 00:30 in Amsterdam is still the previous day in UTC: the night is the local date's.
    assert nights(at("2026-07-15 00:30"), at("2026-07-16 08:00"), AMS) == [date(2026, 7, 15)]


def test_the_night_the_clocks_go_back_is_one_night():
    assert nights(at("2026-10-24 20:00"), at("2026-10-25 11:00"), AMS) == [date(2026, 10, 24)]


def test_a_departure_before_the_arrival_spends_no_night():
    assert nights(at("2026-07-14 20:00"), at("2026-07-13 08:00"), AMS) == []


def test_contributions_count_arrivals_on_their_day_and_persons_on_each_night():
    rows = [
        StayRow(1, "vessel", 3, at("2026-03-31 17:00"), at("2026-04-02 09:00")),
        StayRow(1, "vessel", 2, at("2026-03-31 10:00"), at("2026-03-31 16:00")),
        StayRow(1, "vehicle", 1, at("2026-04-01 22:00"), at("2026-04-02 06:00")),
        StayRow(2, "vessel", 4, at("2026-03-31 17:00"), at("2026-04-01 09:00")),
    ]

    counts = contributions(rows, {1: AMS, 2: AMS})

    assert counts == {
        (1, date(2026, 3, 31), "vessel"): Counts(visits=2, persons=5, overnight_stays=3),
        (1, date(2026, 4, 1), "vessel"): Counts(visits=0, persons=0, overnight_stays=3),
        (1, date(2026, 4, 1), "vehicle"): Counts(visits=1, persons=1, overnight_stays=1),
        (2, date(2026, 3, 31), "vessel"): Counts(visits=1, persons=4, overnight_stays=4),
    }


def test_overnight_stays_are_persons_times_nights():
    row = StayRow(1, "stay", 4, at("2026-08-01 15:00"), at("2026-08-08 11:00"))

    counts = contributions([row], {1: AMS})

    assert sum(c.overnight_stays for c in counts.values()) == 4 * 7
    assert sum(c.visits for c in counts.values()) == 1
