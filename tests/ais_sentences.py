"""AIS sentences for tests and benchmarks, built with pyais's encoder."""

from __future__ import annotations

import json
import math
from functools import reduce
from operator import xor

from pyais import encode_dict

# The test harbour: a circle of 300 m around the Hoorn marina's basin.
CENTRE = (52.6405, 5.0600)
RADIUS_M = 300
METRES_PER_DEGREE = 111_195.0
# The same harbour as a polygon: an L of 600 m by 600 m with the north-east quarter cut out
# (the notch), in metres (north, east) from the centre, in order around it. 27 ha; margin 52 m.
L_CORNERS_M = ((-300, -300), (-300, 300), (0, 300), (0, 0), (300, 0), (300, -300))


def offset(metres_north: float, metres_east: float = 0.0) -> tuple[float, float]:
    """A point this far from the centre."""
    lat = CENTRE[0] + metres_north / METRES_PER_DEGREE
    lon = CENTRE[1] + metres_east / (METRES_PER_DEGREE * math.cos(math.radians(CENTRE[0])))
    return lat, lon


def l_corners() -> list[tuple[float, float]]:
    """The L's corners in degrees (lat, lon), six decimals as the site stores them."""
    return [(round(lat, 6), round(lon, 6)) for lat, lon in (offset(n, e) for n, e in L_CORNERS_M)]


def l_polygon_text(separator: str = "\n") -> str:
    """The L as the site's form and `--polygon` take it: `lat, lon` per corner."""
    return separator.join(f"{lat}, {lon}" for lat, lon in l_corners())


def l_geojson() -> str:
    """The L as a GeoJSON Feature: [longitude, latitude], the ring closed."""
    ring = [[lon, lat] for lat, lon in l_corners()]
    return json.dumps(
        {
            "type": "Feature",
            "properties": {"name": "Hoorn"},
            "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
        }
    )


def tagged(sentence: str, at: float) -> str:
    """The sentence behind an NMEA 4.0 tag block with its time (`c:`)."""
    body = f"c:{int(at)}"
    return f"\\{body}*{reduce(xor, body.encode(), 0):02X}\\{sentence}"


def position(mmsi: int, lat: float, lon: float, *, kind: int = 1, seq: int = 0) -> str:
    """A position report (types 1, 2, 3 or 18) as one sentence."""
    data = {"type": kind, "mmsi": mmsi, "lat": lat, "lon": lon, "speed": 2.5}
    return encode_dict(data, sentence_type="VDM", radio_channel="A", seq_id=seq)[0]


def at_distance(mmsi: int, metres: float, at: float, *, kind: int = 1) -> str:
    lat, lon = offset(metres)
    return tagged(position(mmsi, lat, lon, kind=kind), at)


def at_offset(mmsi: int, north: float, east: float, at: float) -> str:
    """A position report this far from the centre, with its time."""
    return tagged(position(mmsi, *offset(north, east)), at)


def static(mmsi: int, name: str = "ZEEMEEUW", *, seq: int = 1) -> list[str]:
    """Static and voyage data (type 5): two sentences."""
    data = {"type": 5, "mmsi": mmsi, "shipname": name, "callsign": "PD1234", "destination": "HOORN"}
    return encode_dict(data, sentence_type="VDM", radio_channel="A", seq_id=seq)


def broken_checksum(sentence: str) -> str:
    body, _star, checksum = sentence.rpartition("*")
    return f"{body}*{(int(checksum, 16) ^ 0x5A):02X}"
