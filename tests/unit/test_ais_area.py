"""The harbour area as a circle or a polygon: signed distances to the edge, a concave harbour,
the margin, and the polygon as an admin types or pastes it (lines, `;`, GeoJSON in lon/lat
order), refused when it crosses itself, is too small, too wide or has too few corners."""

from __future__ import annotations

import json
import math

import pytest

from nightreg.services.ais.area import Circle, Polygon, distinct_corners
from nightreg.services.ais.harbour import (
    MSG_AREA_ONE,
    MSG_CORNER,
    MSG_CORNERS,
    MSG_GEOJSON,
    MSG_GEOJSON_CORNER,
    MSG_GEOJSON_HOLES,
    MSG_POLYGON_CROSSES,
    MSG_POLYGON_SMALL,
    MSG_POLYGON_WIDE,
    parse_area,
    parse_polygon,
)
from tests.ais_sentences import CENTRE, l_corners, l_geojson, l_polygon_text, offset

FIELD = "ais_area_polygon"


def square(half: float) -> Polygon:
    """A square of 2 * half metres around the centre, corners counter-clockwise."""
    return Polygon(
        tuple(offset(n, e) for n, e in ((-half, -half), (-half, half), (half, half), (half, -half)))
    )


def error_of(text: str) -> tuple[str, dict[str, str | int]]:
    polygon, errors = parse_polygon(text)
    assert polygon is None
    return errors[FIELD].message, errors[FIELD].params


# --- geometry --------------------------------------------------------------------------------


def test_inside_a_square_the_distance_to_the_nearest_edge_is_negative():
    area = square(300)

    assert area.signed_edge_distance_m(*offset(0, 0)) == pytest.approx(-300, abs=0.5)
    assert area.signed_edge_distance_m(*offset(250, 0)) == pytest.approx(-50, abs=0.5)
    assert area.signed_edge_distance_m(*offset(-290, 280)) == pytest.approx(-10, abs=0.5)


def test_outside_a_square_the_distance_is_positive_to_the_nearest_edge_or_corner():
    area = square(300)

    assert area.signed_edge_distance_m(*offset(350, 0)) == pytest.approx(50, abs=0.5)
    assert area.signed_edge_distance_m(*offset(340, 330)) == pytest.approx(50, abs=0.5)


def test_a_circle_s_signed_distance_is_its_distance_from_the_centre_less_the_radius():
    area = Circle(*CENTRE, 300)

    assert area.signed_edge_distance_m(*offset(100)) == pytest.approx(-200, abs=0.5)
    assert area.signed_edge_distance_m(*offset(0, 400)) == pytest.approx(100, abs=0.5)


def test_the_notch_of_a_concave_harbour_is_outside_though_its_corners_surround_it():
    harbour = Polygon(tuple(l_corners()))

    assert harbour.signed_edge_distance_m(*offset(150, 150)) == pytest.approx(150, abs=0.5)
    assert harbour.signed_edge_distance_m(*offset(150, -150)) == pytest.approx(-150, abs=0.5)
    assert harbour.signed_edge_distance_m(*offset(-150, 150)) == pytest.approx(-150, abs=0.5)
    # In the notch near the inner corner: the nearer of the notch's two edges.
    assert harbour.signed_edge_distance_m(*offset(30, 40)) == pytest.approx(30, abs=0.5)


def test_a_position_level_with_a_corner_is_counted_inside_or_outside_once():
    harbour = Polygon(tuple(l_corners()))

    # A ray towards the east from these points passes exactly through the inner corner (0, 0)
    # or along the notch's lower edge.
    assert harbour.signed_edge_distance_m(*offset(0, -100)) < 0
    assert harbour.signed_edge_distance_m(*offset(0, -400)) > 0


def test_the_margin_is_a_tenth_of_the_root_of_the_area_at_least_20_m_and_narrow_basins_less():
    large = square(300)  # 36 ha
    small = square(50)  # 1 ha: a tenth of 100 m is under 20 m
    canal = Polygon(tuple(offset(n, e) for n, e in ((0, 0), (0, 1000), (24, 1000), (24, 0))))

    assert large.margin_m == pytest.approx(60, abs=0.1)
    assert small.margin_m == 20
    # 24 m wide: the margin is area / perimeter (about 12 m), so its middle is still inside.
    assert canal.margin_m == pytest.approx(24_000 / 2048, abs=0.1)
    middle = canal.signed_edge_distance_m(*offset(12, 500))
    assert middle <= -canal.margin_m


def test_a_corner_repeated_one_after_the_other_and_the_closing_corner_are_dropped():
    a, b, c = (52.0, 5.0), (52.0, 5.01), (52.01, 5.01)

    assert distinct_corners([a, b, b, c, a]) == (a, b, c)


# --- the polygon as typed ----------------------------------------------------------------------


def test_corners_are_read_one_per_line_or_separated_by_semicolons():
    by_line, errors = parse_polygon(l_polygon_text("\n") + "\n\n")
    by_semicolon, _ = parse_polygon(l_polygon_text(" ; "))
    by_space, _ = parse_polygon("\n".join(f"{lat} {lon}" for lat, lon in l_corners()))

    assert errors == {}
    assert by_line is not None
    assert by_line.vertices == tuple(l_corners())
    assert by_line == by_semicolon == by_space
    assert by_line.area_m2 == pytest.approx(270_000, rel=1e-3)


def test_geojson_gives_longitude_first_and_its_closing_corner_is_dropped():
    feature = json.loads(l_geojson())
    as_feature, errors = parse_polygon(l_geojson())
    as_geometry, _ = parse_polygon(json.dumps(feature["geometry"]))
    as_collection, _ = parse_polygon(
        json.dumps({"type": "FeatureCollection", "features": [feature]})
    )

    assert errors == {}
    assert as_feature is not None
    assert as_feature.vertices == tuple(l_corners())  # (lat, lon), six corners
    assert feature["geometry"]["coordinates"][0][0] == [l_corners()[0][1], l_corners()[0][0]]
    assert as_feature == as_geometry == as_collection


def test_geojson_with_a_hole_or_without_a_polygon_is_refused():
    ring = json.loads(l_geojson())["geometry"]["coordinates"][0]
    holed = {"type": "Polygon", "coordinates": [ring, [*ring[:4], ring[0]]]}
    line = {"type": "LineString", "coordinates": ring}
    # Its third corner written latitude first, and 52.64° east with 95° north is no place.
    off_the_globe = {"type": "Polygon", "coordinates": [[*ring[:2], [52.64, 95.0], *ring[3:]]]}

    assert error_of(json.dumps(holed))[0] == MSG_GEOJSON_HOLES
    assert error_of(json.dumps(line))[0] == MSG_GEOJSON
    assert error_of("{not json")[0] == MSG_GEOJSON
    assert error_of("[" * 5000)[0] == MSG_GEOJSON
    assert error_of(json.dumps(off_the_globe)) == (MSG_GEOJSON_CORNER, {"number": 3})


def test_a_polygon_whose_edges_cross_is_refused_naming_the_edges():
    a, b, c, d = offset(0, 0), offset(0, 400), offset(400, 0), offset(400, 400)
    bow_tie = ";".join(f"{lat}, {lon}" for lat, lon in (a, b, c, d))

    # Edge 2 runs from the second corner to the third, edge 4 from the fourth to the first.
    assert error_of(bow_tie) == (MSG_POLYGON_CROSSES, {"first": 2, "second": 4})


def test_a_polygon_that_touches_itself_or_folds_back_on_an_edge_is_refused():
    # A figure eight through one corner twice, and a spike running back along its own edge.
    eight = [(0, 0), (0, 300), (300, 300), (300, 600), (600, 600), (600, 300), (300, 300), (300, 0)]
    spike = [(0, 0), (0, 400), (0, 200), (300, 200), (300, 0)]

    for corners in (eight, spike):
        text = "\n".join("{}, {}".format(*offset(n, e)) for n, e in corners)
        assert error_of(text)[0] == MSG_POLYGON_CROSSES


def test_corners_that_are_no_positions_are_refused_by_number():
    good = l_polygon_text().splitlines()

    decimal_comma = "\n".join([*good[:2], "52,6405 5,0600", *good[3:]])
    swapped_far = "\n".join([*good[:1], "5.06, 152.64", *good[2:]])

    assert error_of(decimal_comma) == (MSG_CORNER, {"number": 3})
    assert error_of(swapped_far)[0] == MSG_POLYGON_WIDE  # a place, just not this harbour
    assert error_of("52.64, 5.06, 3") == (MSG_CORNER, {"number": 1})
    assert error_of("91, 5\n52, 5\n52, 6") == (MSG_CORNER, {"number": 1})
    assert error_of("52, 5\nnan, 5\n52, 6") == (MSG_CORNER, {"number": 2})


def test_a_polygon_needs_3_to_100_corners():
    circle_of_101 = "\n".join(
        "{:.6f}, {:.6f}".format(*offset(900 * math.cos(i / 101 * 2 * math.pi),
                                         900 * math.sin(i / 101 * 2 * math.pi)))
        for i in range(101)
    )  # fmt: skip

    assert error_of("52.6, 5.0; 52.61, 5.0; 52.6, 5.0")[0] == MSG_CORNERS
    assert error_of(circle_of_101) == (MSG_CORNERS, {"min": 3, "max": 100, "count": 101})


def test_a_polygon_smaller_than_a_50_m_circle_or_wider_than_40_km_is_refused():
    tiny = square(40)  # 80 m by 80 m: 0.64 ha, a 50 m circle is 0.79 ha
    huge = Polygon((offset(0, 0), offset(0, 30_000), offset(30_000, 0)))

    def text(area: Polygon) -> str:
        return "\n".join(f"{lat:.6f}, {lon:.6f}" for lat, lon in area.vertices)

    assert error_of(text(tiny)) == (MSG_POLYGON_SMALL, {"min": 50})
    assert error_of(text(huge)) == (MSG_POLYGON_WIDE, {"max": 40})
    assert parse_polygon(text(square(45)))[1] == {}


def test_a_paste_longer_than_the_limit_is_refused_before_it_is_read():
    polygon, errors = parse_polygon("52.6, 5.0\n" * 3000)

    assert polygon is None
    assert errors[FIELD].params == {"max": 20_000}


# --- a circle or a polygon ---------------------------------------------------------------------


def test_whichever_shape_is_filled_in_is_used_and_both_need_a_choice():
    polygon = l_polygon_text()

    only_polygon, _ = parse_area(None, "", "", "", polygon)
    only_circle, _ = parse_area("polygon", "52.64", "5.06", "300", "  ")
    both, errors = parse_area(None, "52.64", "5.06", "300", polygon)
    chosen, _ = parse_area("polygon", "52.64", "5.06", "300", polygon)
    neither = parse_area(None, "", "", "", "")

    assert isinstance(only_polygon, Polygon)
    assert only_circle == Circle(52.64, 5.06, 300)
    assert both is None
    assert errors["ais_area_shape"].message == MSG_AREA_ONE
    assert chosen == only_polygon
    assert neither == (None, {})
