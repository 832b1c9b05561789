"""AIS sentences for tests and benchmarks, built with pyais's encoder."""

from __future__ import annotations

import math
from functools import reduce
from operator import xor

from pyais import encode_dict

# The test harbour: a circle of 300 m around the Hoorn marina's basin.
CENTRE = (52.6405, 5.0600)
RADIUS_M = 300
METRES_PER_DEGREE = 111_195.0


def offset(metres_north: float, metres_east: float = 0.0) -> tuple[float, float]:
    """A point this far from the centre."""
    lat = CENTRE[0] + metres_north / METRES_PER_DEGREE
    lon = CENTRE[1] + metres_east / (METRES_PER_DEGREE * math.cos(math.radians(CENTRE[0])))
    return lat, lon


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


def static(mmsi: int, name: str = "ZEEMEEUW", *, seq: int = 1) -> list[str]:
    """Static and voyage data (type 5): two sentences."""
    data = {"type": 5, "mmsi": mmsi, "shipname": name, "callsign": "PD1234", "destination": "HOORN"}
    return encode_dict(data, sentence_type="VDM", radio_channel="A", seq_id=seq)


def broken_checksum(sentence: str) -> str:
    body, _star, checksum = sentence.rpartition("*")
    return f"{body}*{(int(checksum, 16) ^ 0x5A):02X}"
