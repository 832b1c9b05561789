"""AIS, without a database: sentences built with pyais's encoder go through the decoder and
the tracker; positions become entries and exits, debounced at the edge, and bad input of every
kind is counted and skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nightreg.rules import night_movement
from nightreg.services.ais.area import Circle, Polygon
from nightreg.services.ais.listen import Feed, Source
from nightreg.services.ais.nmea import Decoder
from nightreg.services.ais.tracker import Tracker
from tests.ais_sentences import (
    CENTRE,
    RADIUS_M,
    at_distance,
    at_offset,
    broken_checksum,
    l_corners,
    offset,
    position,
    static,
)
from tests.unit.rule_facts import run, utc, visit

T0 = datetime(2026, 7, 14, 20, 0, tzinfo=UTC).timestamp()
BOAT = 244_123_456
AREA = Circle(*CENTRE, RADIUS_M)


def feed(**kw: object) -> Feed:
    return Feed(1, AREA, min_interval=0.0, **kw)  # type: ignore[arg-type]


def trip(f: Feed, mmsi: int, distances: list[float], start: float = T0, step: float = 30) -> None:
    for i, metres in enumerate(distances):
        f.line(at_distance(mmsi, metres, start + i * step).encode(), start + i * step)


# --- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [1, 2, 3, 18])
def test_position_reports_of_class_a_and_b_are_decoded_with_their_tag_block_time(kind: int):
    decoder = Decoder()

    found = decoder.feed(at_distance(BOAT, 0, T0, kind=kind).encode(), received=T0 + 999)

    assert found is not None
    assert (found.mmsi, found.at) == ("244123456", T0)
    assert found.lat == pytest.approx(CENTRE[0], abs=1e-4)


def test_a_sentence_without_a_tag_block_takes_the_time_of_reception():
    found = Decoder().feed(position(BOAT, *CENTRE).encode(), received=T0 + 5)

    assert found is not None
    assert found.at == T0 + 5


def test_a_multi_part_static_message_is_reassembled_and_counted_not_kept():
    decoder = Decoder()
    first, second = static(BOAT)

    assert decoder.feed(first.encode(), T0) is None
    assert decoder.feed(second.encode(), T0) is None

    assert decoder.counts["fragments"] == 2
    assert decoder.counts["other_types"] == 1  # the whole message, once: no position in it


def test_bad_checksums_garbage_truncated_and_unknown_sentences_are_counted_and_skipped():
    decoder = Decoder()
    good = position(BOAT, *CENTRE)
    lines = [
        broken_checksum(good),
        "garbage \x00\xff",
        good[:30],  # truncated
        "!AIVDM,1,1,,A,1,0*00",
        "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47",
        "\\c:17840*00\\" + good,  # a tag block with a wrong checksum: reception time
        "\\unterminated tag block",
        "!AIVDM," + "1" * 1000,
        static(BOAT)[1],  # a second part without its first
    ]

    results = [decoder.feed(line.encode(errors="surrogateescape"), T0) for line in lines]

    assert [r for r in results if r is not None] == [results[5]]
    assert results[5] is not None
    assert results[5].at == T0
    assert decoder.counts["bad_checksum"] == 1
    assert decoder.counts["corrupt"] >= 4
    assert decoder.counts["not_ais"] == 1
    assert decoder.bad_tags == 1


def test_a_flood_beyond_the_rate_limit_is_counted_and_dropped():
    f = feed(rate_limit=100)
    line = position(BOAT, *CENTRE).encode()

    for _ in range(1000):
        f.line(line, T0)

    assert f.counts["flood"] == 900
    assert f.counts["positions"] == 100


def test_positions_of_one_boat_closer_than_the_interval_are_not_decoded_again():
    decoder = Decoder(min_interval=10)

    kept = [decoder.feed(at_distance(BOAT, 0, T0 + s).encode(), 0) for s in range(0, 30, 2)]

    assert sum(1 for k in kept if k is not None) == 3
    assert decoder.counts["throttled"] == 12


def test_a_source_is_udp_or_tcp_with_a_host_and_a_port():
    assert str(Source.parse("udp://127.0.0.1:10110")) == "udp://127.0.0.1:10110"
    for bad in ("127.0.0.1:10110", "http://x:1", "udp://:1", "tcp://host:99999"):
        with pytest.raises(ValueError, match=r"udp://HOST:PORT|out of range"):
            Source.parse(bad)


# --- entries and exits ----------------------------------------------------------------------


def test_a_boat_that_comes_in_and_goes_out_again_makes_one_entry_and_one_exit():
    f = feed()

    trip(f, BOAT, [2000, 1200, 600, 100, 50, 0, 0, 0, 100, 600, 1200, 2000, 3000])

    moves = [(t.direction, t.at) for t in f.take()]
    assert [d for d, _at in moves] == ["in", "out"]
    assert moves[0][1] == T0 + 3 * 30  # the first report inside
    assert moves[1][1] == T0 + 9 * 30  # the first report outside


def test_a_boat_moored_at_the_edge_does_not_flap():
    f = feed()
    trip(f, BOAT, [0, 0, 0])  # inside first
    f.take()
    # Fixes wander across the circle: some in the band at the edge, some just beyond it on
    # either side, never three in a row (nor two minutes) outside.
    wobble = [RADIUS_M - 45, RADIUS_M + 45, RADIUS_M + 10, RADIUS_M - 10, RADIUS_M + 50] * 20

    trip(f, BOAT, wobble, start=T0 + 100)

    assert f.take() == []
    assert f.tracker.side("244123456") == "in"


def test_at_a_polygon_s_edge_a_moored_boat_does_not_flap_and_a_crossing_one_is_recorded_once():
    harbour = Polygon(tuple(l_corners()))  # the L: its margin is 52 m
    f = Feed(1, harbour, min_interval=0.0)
    moored, crossing, in_the_notch = 244_000_001, 244_000_002, 244_000_003
    # Moored on the notch's west edge (east 0), inside first; then its fixes wander across
    # that edge, some in the band, some beyond it on either side, never three in a row (nor
    # two minutes) outside.
    wobble = [-60, 60, 10, -10, 70] * 20
    lines = [at_offset(moored, 150, -150, T0 + i * 30) for i in range(3)]
    lines += [at_offset(moored, 150, east, T0 + 100 + i * 30) for i, east in enumerate(wobble)]
    # From the sea in the north into the L's west arm, its fixes 30 m apart across the edge.
    lines += [at_offset(crossing, north, -150, T0 + i * 10) for i, north in
              enumerate(range(600, 0, -30))]  # fmt: skip
    # Lying in the notch, which a circle around the same corners would count as inside.
    lines += [at_offset(in_the_notch, 150, 150, T0 + i * 30) for i in range(20)]

    for line in lines:
        f.line(line.encode(), 0)

    moves = [(t.mmsi, t.direction) for t in f.take()]
    assert moves == [("244000001", "in"), ("244000002", "in")]
    assert f.tracker.side("244000001") == "in"
    assert f.tracker.side("244000003") == "out"


def test_one_stray_fix_outside_is_not_an_exit():
    f = feed()
    trip(f, BOAT, [0, 0, 0, 2000, 0, 0, 2000, 0, 0])

    assert [t.direction for t in f.take()] == ["in"]


def test_a_boat_first_seen_outside_is_not_recorded_and_one_known_inside_not_again():
    f = Feed(1, AREA, min_interval=0.0, known={"244000002": "in"})
    trip(f, 244_000_001, [5000, 4000, 3000, 2500])
    trip(f, 244_000_002, [0, 10, 0, 20])

    assert f.take() == []


def test_a_tracker_forgets_boats_outside_it_has_not_heard_for_an_hour_but_not_those_inside():
    tracker = Tracker(AREA, reports=1)
    tracker.observe("244000001", *offset(5000), T0)
    tracker.observe("244000002", *offset(0), T0)

    assert tracker.forget(T0 + 7200) == 1
    assert tracker.side("244000002") == "in"


# --- night_movement with AIS ----------------------------------------------------------------


def test_a_night_trip_out_and_back_that_the_register_does_not_show_raises_night_movement():
    # In on the 14th at 18:00 (Amsterdam 20:00), still present; AIS saw it leave at 01:30 and
    # come back at 04:10 (local), which the register does not show.
    stay = visit(
        utc(2026, 7, 14, 18),
        mmsi="244123456",
        ais=(
            (utc(2026, 7, 14, 18, 5), "in"),  # the arrival itself: not counted again
            (utc(2026, 7, 14, 23, 30), "out"),
            (utc(2026, 7, 15, 2, 10), "in"),
        ),
    )

    (finding,) = run(night_movement.RULE, [stay])

    assert finding.params == {"count": 2, "days": 14, "reason": "ais", "ais": 2}
    reason = night_movement.RULE.reason_for(finding.params) % dict(finding.params)
    assert "source: AIS for 2 of them" in reason


def test_ais_movements_at_the_registered_arrival_and_departure_are_not_counted_twice():
    stay = visit(
        utc(2026, 7, 14, 22, 30),  # 00:30 local: one night movement
        departed_at=utc(2026, 7, 16, 12),
        mmsi="244123456",
        ais=((utc(2026, 7, 14, 22, 10), "in"), (utc(2026, 7, 16, 12, 20), "out")),
    )

    assert run(night_movement.RULE, [stay]) == []


def test_the_register_alone_still_flags_without_naming_ais():
    first = visit(utc(2026, 7, 14, 23), stay=timedelta(hours=10))
    second = visit(utc(2026, 7, 16, 23), stay=timedelta(hours=10))

    (finding,) = run(night_movement.RULE, [first, second])

    assert "reason" not in finding.params
