"""The tourist-tax return's pure parts: months, nights split at a month end, persons × nights,
day visits, the aggregates added to the live register, and the CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from nightreg.services import aggregates, tourist_tax
from nightreg.services.aggregates import Counts, StayRow
from nightreg.services.tourist_tax import Month, MonthInvalid

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MARINA_KINDS = ("vessel", "vehicle")
SITE = 7


def at(text: str, tz: ZoneInfo = AMSTERDAM) -> datetime:
    """A local time at the site, as the register stores it (UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)


def stay(arrived: str, ends: str, *, persons: int = 2, kind: str = "vessel", site: int = SITE):
    return StayRow(site, kind, persons, at(arrived), at(ends))


def figures(month: str, *stays: StayRow, archived=(), kinds=MARINA_KINDS, tz=AMSTERDAM):
    return tourist_tax.compute(SITE, kinds, Month.parse(month), tz, stays, archived)


# --- months -----------------------------------------------------------------------------------


def test_a_month_is_read_as_year_dash_month_and_knows_its_days():
    month = Month.parse(" 2028-02 ")
    assert str(month) == "2028-02"
    assert month.first == date(2028, 2, 1)
    assert month.next_first == date(2028, 3, 1)
    assert len(month.days) == 29
    assert Month.parse("2026-12").next_first == date(2027, 1, 1)


@pytest.mark.parametrize("text", ["", "2026", "2026-13", "2026-00", "2026-7", "26-07", "juli",
                                  "2026-07-01", "２０２６-07", "2026-07; drop"])  # fmt: skip
def test_anything_but_a_month_like_2026_07_is_refused_with_a_message(text: str):
    with pytest.raises(MonthInvalid) as refused:
        Month.parse(text)
    assert refused.value.message == tourist_tax.MSG_MONTH


@pytest.mark.parametrize("text", ["0001-01", "1969-12", "3000-01", "9999-12"])
def test_a_month_far_outside_any_register_is_refused(text: str):
    with pytest.raises(MonthInvalid) as refused:
        Month.parse(text)
    assert refused.value.message == tourist_tax.MSG_MONTH_RANGE


def test_the_default_month_is_the_last_full_one():
    assert Month.previous(date(2026, 7, 14)) == Month(2026, 6)
    assert Month.previous(date(2026, 1, 1)) == Month(2025, 12)
    assert Month.previous(date(2026, 3, 31)) == Month(2026, 2)


# --- the counting ------------------------------------------------------------------------------


def test_a_stay_across_a_month_end_counts_its_nights_in_both_months():
    # Three persons, nights of 30 and 31 March and 1 April: 6 stays in March, 3 in April.
    boat = stay("2026-03-30 15:00", "2026-04-02 11:00", persons=3)
    march = figures("2026-03", boat)
    april = figures("2026-04", boat)
    assert march.total == Counts(visits=1, persons=3, overnight_stays=6)
    assert april.total == Counts(visits=0, persons=0, overnight_stays=3)
    assert [d.total.overnight_stays for d in march.days[-2:]] == [3, 3]
    assert april.days[0].total.overnight_stays == 3
    assert sum(d.total.overnight_stays for d in april.days[1:]) == 0


def test_a_day_visit_counts_as_a_visit_with_its_persons_but_no_night():
    day_trip = stay("2026-05-10 09:00", "2026-05-10 18:00", persons=4)
    result = figures("2026-05", day_trip)
    assert result.total == Counts(visits=1, persons=4, overnight_stays=0)


def test_overnight_stays_are_persons_times_nights():
    week = stay("2026-06-01 14:00", "2026-06-08 10:00", persons=5)
    couple = stay("2026-06-03 20:00", "2026-06-05 09:00", persons=2, kind="vehicle")
    result = figures("2026-06", week, couple)
    assert result.by_kind["vessel"] == Counts(visits=1, persons=5, overnight_stays=35)
    assert result.by_kind["vehicle"] == Counts(visits=1, persons=2, overnight_stays=4)
    assert result.total == Counts(visits=2, persons=7, overnight_stays=39)
    assert result.days[3].total.overnight_stays == 5 + 2  # the night of 4 June


def test_the_nights_are_the_sites_local_dates_not_utc_dates():
    # Arrives 23:30 on 31 May in Amsterdam (21:30 UTC), leaves on 1 June: a May night.
    late = stay("2026-05-31 23:30", "2026-06-01 10:00", persons=2)
    assert figures("2026-05", late).total == Counts(visits=1, persons=2, overnight_stays=2)
    assert figures("2026-06", late).total == Counts()
    # The same moments in Auckland fall on 1 June: no May at all, a day visit in June.
    auckland = ZoneInfo("Pacific/Auckland")
    assert figures("2026-05", late, tz=auckland).total == Counts()
    assert figures("2026-06", late, tz=auckland).total == Counts(visits=1, persons=2)


def test_a_stay_that_covers_the_whole_month_counts_every_night_but_no_arrival():
    season = stay("2026-01-20 12:00", "2026-03-05 12:00", persons=1)
    assert figures("2026-02", season).total == Counts(visits=0, persons=0, overnight_stays=28)


def test_other_sites_visits_are_left_out():
    elsewhere = stay("2026-06-01 14:00", "2026-06-03 10:00", site=SITE + 1)
    assert figures("2026-06", elsewhere).total == Counts()


def test_the_aggregates_of_the_month_are_added_and_shown_apart():
    live = stay("2026-06-10 14:00", "2026-06-12 10:00", persons=2)
    kept = [
        (date(2026, 6, 2), "vessel", Counts(visits=3, persons=7, overnight_stays=9)),
        (date(2026, 6, 2), "vehicle", Counts(visits=1, persons=1, overnight_stays=0)),
        (date(2026, 7, 1), "vessel", Counts(visits=5, persons=5, overnight_stays=5)),  # July
    ]
    result = figures("2026-06", live, archived=kept)
    assert result.total == Counts(visits=5, persons=10, overnight_stays=13)
    assert result.archived == Counts(visits=4, persons=8, overnight_stays=9)
    assert result.days[1].by_kind["vessel"] == Counts(visits=3, persons=7, overnight_stays=9)


def test_live_and_aggregated_counts_of_the_same_visits_agree():
    """What the purge writes for a visit is exactly what the live register counted for it."""
    stays = [
        stay("2026-03-30 15:00", "2026-04-02 11:00", persons=3),
        stay("2026-03-31 08:00", "2026-03-31 17:00", persons=1, kind="vehicle"),
        stay("2026-03-01 00:30", "2026-03-29 23:59", persons=2),
    ]
    written = aggregates.contributions(stays, {SITE: AMSTERDAM})
    kept = [(day, kind, counts) for (_site, day, kind), counts in written.items()]
    for month in ("2026-03", "2026-04"):
        from_register = figures(month, *stays)
        from_aggregates = figures(month, archived=kept)
        assert from_aggregates.archived == from_register.total
        assert replace(from_aggregates, archived=Counts()) == from_register


def test_a_kind_the_site_does_not_offer_still_gets_its_own_row():
    unit = stay("2026-06-01 14:00", "2026-06-02 10:00", kind="stay")
    result = figures("2026-06", unit)
    assert result.kinds == ("vessel", "vehicle", "stay")
    assert result.by_kind["stay"].overnight_stays == 2


def test_the_csv_has_a_bom_a_row_per_day_and_the_total():
    boat = stay("2026-02-27 15:00", "2026-03-02 11:00", persons=3)
    data = tourist_tax.to_csv(figures("2026-02", boat))
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == [
        "day", "visits", "persons", "overnight_stays",
        "vessel_visits", "vessel_persons", "vessel_overnight_stays",
        "vehicle_visits", "vehicle_persons", "vehicle_overnight_stays",
    ]  # fmt: skip
    assert len(rows) == 1 + 28 + 1
    assert rows[27][:4] == ["2026-02-27", "1", "3", "3"]
    assert rows[-1] == ["total", "1", "3", "6", "1", "3", "6", "0", "0", "0"]
