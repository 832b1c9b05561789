"""A site's AIS setting: the harbour area (a circle or a polygon) and the switch with its DPIA
reference.

AIS is off on every site until an admin switches it on, and switching on asks for the
reference of the data-protection impact assessment (DPIA) that covers it: the reference is
kept with the setting, shown on the site's page and in the processing record. Every change
is one audited `site_changed` event (nightreg.services.sites.apply_site_changes).

The area is a circle (`ais_area_lat`, `ais_area_lon`, `ais_area_radius_m`) or a polygon
(`ais_area_polygon`: its corners as JSON, `[[lat, lon], ...]`), never both: setting one clears
the other. A polygon is typed one corner per line (`lat, lon`, or separated by `;`) or pasted
as GeoJSON (a Polygon, a Feature with one, or a FeatureCollection of one such Feature; GeoJSON
gives longitude first).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Site
from nightreg.services.access import Actor, NotFound
from nightreg.services.ais.area import Area, Circle, Polygon, distinct_corners
from nightreg.services.sites import apply_site_changes
from nightreg.validation import FieldError, Invalid, clean_text

MIN_RADIUS_M = 50
MAX_RADIUS_M = 20_000
MAX_DPIA = 200
# A polygon: from a triangle to a hundred corners, at least as large as the smallest circle
# and at most as wide as the largest one.
MIN_CORNERS = 3
MAX_CORNERS = 100
MIN_POLYGON_M2 = math.pi * MIN_RADIUS_M**2
MAX_EXTENT_M = 2 * MAX_RADIUS_M
# Pasted GeoJSON of a hundred corners with full precision and a few properties fits easily.
MAX_POLYGON_TEXT = 20_000
SHAPES = ("circle", "polygon")

MSG_LAT = N_("Enter the latitude of the harbour's centre in degrees, like 52.6421.")
MSG_LON = N_("Enter the longitude of the harbour's centre in degrees, like 5.0603.")
MSG_RADIUS = N_("Enter the radius in whole metres, from %(min)s to %(max)s.")
MSG_AREA_NEEDED = N_("AIS needs the harbour area first: a circle or a polygon.")
MSG_AREA_ONE = N_("Both a circle and a polygon are filled in: choose which one to keep.")
MSG_POLYGON_LONG = N_("At most %(max)s characters: give the corners only.")
MSG_CORNER = N_(
    "Corner %(number)s is not a latitude and longitude in degrees with a decimal point, "
    "like 52.6421, 5.0603."
)
MSG_GEOJSON = N_(
    "This GeoJSON holds no single polygon: paste a Polygon, or a Feature with a Polygon."
)
MSG_GEOJSON_HOLES = N_("The polygon has holes: give only its outer edge.")
MSG_GEOJSON_CORNER = N_(
    "Corner %(number)s is not a position in degrees (GeoJSON gives longitude first, then latitude)."
)
MSG_CORNERS = N_("A harbour polygon has %(min)s to %(max)s corners; this one has %(count)s.")
MSG_POLYGON_WIDE = N_(
    "The polygon is more than %(max)s km across: draw it around the harbour, not the coast."
)
MSG_POLYGON_SMALL = N_(
    "The polygon is smaller than a circle of %(min)s m: draw it around the basins and the entrance."
)
MSG_POLYGON_CROSSES = N_(
    "Edges %(first)s and %(second)s of the polygon cross or touch: give the corners in order "
    "around the harbour."
)
MSG_DPIA = N_("Switching AIS on needs the reference of the DPIA that covers it.")
MSG_DPIA_LONG = N_("At most %(max)s characters.")
MSG_MARINA = N_("AIS is for marinas; this site is a business park.")


class AisInvalid(Invalid):
    """The AIS form has mistakes (FieldErrors by field name)."""


@dataclass(frozen=True)
class HarbourSetting:
    site_id: int
    slug: str
    enabled: bool
    area: Area | None


def _number(raw: str | float | None) -> float | None:
    if isinstance(raw, (int, float)):
        return float(raw)
    text = (raw or "").strip().replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _blank(value: str | float | None) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_circle(
    lat: str | float | None, lon: str | float | None, radius_m: str | float | None
) -> tuple[Circle | None, dict[str, FieldError]]:
    """The circle typed into the form (all three empty: none); errors by field."""
    if all(_blank(v) for v in (lat, lon, radius_m)):
        return None, {}
    errors: dict[str, FieldError] = {}
    la, lo, r = _number(lat), _number(lon), _number(radius_m)
    if la is None or not -90 <= la <= 90:
        errors["ais_area_lat"] = FieldError(MSG_LAT)
    if lo is None or not -180 <= lo <= 180:
        errors["ais_area_lon"] = FieldError(MSG_LON)
    if r is None or r != int(r) or not MIN_RADIUS_M <= r <= MAX_RADIUS_M:
        errors["ais_area_radius_m"] = FieldError(
            MSG_RADIUS, {"min": MIN_RADIUS_M, "max": MAX_RADIUS_M}
        )
    if errors or la is None or lo is None or r is None:
        return None, errors
    return Circle(round(la, 6), round(lo, 6), int(r)), errors


_PAIR_SEPARATOR = re.compile(r"\s*,\s*|\s+")


def _position(lat: object, lon: object) -> tuple[float, float] | None:
    """A latitude and a longitude in degrees (numbers, not booleans, in range), or None."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon)):
        return None
    la, lo = float(lat), float(lon)  # type: ignore[arg-type]
    return (la, lo) if -90 <= la <= 90 and -180 <= lo <= 180 else None


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _listed_corners(text: str) -> tuple[list[tuple[float, float]], FieldError | None]:
    """Corners typed one per line, or separated by `;`: `lat, lon` (or `lat lon`)."""
    corners: list[tuple[float, float]] = []
    pieces = (p.strip() for p in re.split(r"[;\n]", text))
    for number, piece in enumerate((p for p in pieces if p), start=1):
        values = [_float(part) for part in _PAIR_SEPARATOR.split(piece)]
        corner = _position(*values) if len(values) == 2 else None
        if corner is None:
            return [], FieldError(MSG_CORNER, {"number": number})
        corners.append(corner)
    return corners, None


def _geojson_corners(text: str) -> tuple[list[tuple[float, float]], FieldError | None]:
    """The outer ring of a GeoJSON Polygon, of a Feature with one, or of a FeatureCollection
    of one such Feature; GeoJSON's positions are [longitude, latitude(, altitude)]."""
    try:
        geometry = json.loads(text)
    except (ValueError, RecursionError):
        return [], FieldError(MSG_GEOJSON)
    if isinstance(geometry, dict) and geometry.get("type") == "FeatureCollection":
        features = geometry.get("features")
        geometry = features[0] if isinstance(features, list) and len(features) == 1 else None
    if isinstance(geometry, dict) and geometry.get("type") == "Feature":
        geometry = geometry.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        return [], FieldError(MSG_GEOJSON)
    rings = geometry.get("coordinates")
    if not isinstance(rings, list) or not rings or not isinstance(rings[0], list):
        return [], FieldError(MSG_GEOJSON)
    if len(rings) > 1:
        return [], FieldError(MSG_GEOJSON_HOLES)
    corners: list[tuple[float, float]] = []
    for number, position in enumerate(rings[0], start=1):
        ok = isinstance(position, list) and 2 <= len(position) <= 3
        corner = _position(position[1], position[0]) if ok else None
        if corner is None:
            return [], FieldError(MSG_GEOJSON_CORNER, {"number": number})
        corners.append(corner)
    return corners, None


def parse_polygon(text: str | None) -> tuple[Polygon | None, dict[str, FieldError]]:
    """The polygon typed or pasted into the form (empty: none); errors by field.

    Refused: fewer than MIN_CORNERS or more than MAX_CORNERS corners (a corner repeating the
    one before it, like GeoJSON's closing corner, is dropped first), a polygon whose edges
    cross or touch, one smaller than a circle of MIN_RADIUS_M or wider than MAX_EXTENT_M.
    """
    raw = (text or "").strip()
    if not raw:
        return None, {}
    field = "ais_area_polygon"
    if len(raw) > MAX_POLYGON_TEXT:
        return None, {field: FieldError(MSG_POLYGON_LONG, {"max": MAX_POLYGON_TEXT})}
    parse = _geojson_corners if raw.startswith(("{", "[")) else _listed_corners
    corners, error = parse(raw)
    if error is not None:
        return None, {field: error}
    kept = distinct_corners([(round(lat, 6), round(lon, 6)) for lat, lon in corners])
    if not MIN_CORNERS <= len(kept) <= MAX_CORNERS:
        params: dict[str, str | int] = {"min": MIN_CORNERS, "max": MAX_CORNERS, "count": len(kept)}
        return None, {field: FieldError(MSG_CORNERS, params)}
    polygon = Polygon(kept)
    if polygon.extent_m() > MAX_EXTENT_M:
        return None, {field: FieldError(MSG_POLYGON_WIDE, {"max": MAX_EXTENT_M // 1000})}
    crossing = polygon.crossing_edges()
    if crossing is not None:
        edges: dict[str, str | int] = {"first": crossing[0], "second": crossing[1]}
        return None, {field: FieldError(MSG_POLYGON_CROSSES, edges)}
    if polygon.area_m2 < MIN_POLYGON_M2:
        return None, {field: FieldError(MSG_POLYGON_SMALL, {"min": MIN_RADIUS_M})}
    return polygon, {}


def parse_area(
    shape: str | None,
    lat: str | float | None,
    lon: str | float | None,
    radius_m: str | float | None,
    polygon: str | None,
) -> tuple[Area | None, dict[str, FieldError]]:
    """The area of the form: whichever of the circle and the polygon was given; both given,
    the one `shape` chooses (`circle` or `polygon`; no choice is a mistake). Neither given: no
    area. The form works without JavaScript, so both shapes' fields arrive every time."""
    circle_given = not all(_blank(v) for v in (lat, lon, radius_m))
    polygon_given = not _blank(polygon)
    if circle_given and polygon_given:
        if shape not in SHAPES:
            return None, {"ais_area_shape": FieldError(MSG_AREA_ONE)}
    else:
        shape = "polygon" if polygon_given else "circle"
    if shape == "polygon":
        return parse_polygon(polygon)
    return parse_circle(lat, lon, radius_m)


def polygon_json(polygon: Polygon) -> str:
    """The stored form of a polygon's corners: `[[lat, lon], ...]`."""
    return json.dumps([[lat, lon] for lat, lon in polygon.vertices], separators=(",", ":"))


def area_columns(area: Area | None) -> dict[str, Any]:
    """The site's area columns for this area: one shape set, the other cleared."""
    circle = area if isinstance(area, Circle) else None
    return {
        "ais_area_lat": circle.lat if circle else None,
        "ais_area_lon": circle.lon if circle else None,
        "ais_area_radius_m": int(circle.radius_m) if circle else None,
        "ais_area_polygon": polygon_json(area) if isinstance(area, Polygon) else None,
    }


async def change_ais(
    db: Database,
    actor: Actor,
    slug: str,
    *,
    enabled: bool | None,
    dpia_reference: str | None,
    lat: str | float | None,
    lon: str | float | None,
    radius_m: str | float | None,
    now: datetime,
    polygon: str | None = None,
    shape: str | None = None,
    keep_area: bool = False,
) -> dict[str, Any]:
    """Set the area, the switch and the DPIA reference (None: leave as is); the changes.

    The area is a circle (lat, lon, radius_m) or a polygon (its text, see parse_polygon):
    whichever is given, `shape` choosing when both are (see parse_area). Setting one clears
    the other. `keep_area`: the area is not part of this change (the command line's switch alone).
    """
    actor.require("sites.manage")
    errors: dict[str, FieldError] = {}
    area: Area | None = None
    if not keep_area:
        area, area_errors = parse_area(shape, lat, lon, radius_m, polygon)
        errors.update(area_errors)
    reference = None
    if dpia_reference is not None:
        reference = clean_text(dpia_reference, MAX_DPIA * 2)
        if len(reference) > MAX_DPIA:
            errors["ais_dpia_reference"] = FieldError(MSG_DPIA_LONG, {"max": MAX_DPIA})
    async with db.write() as session:
        site = await session.scalar(select(Site).where(Site.slug == slug))
        if site is None:
            raise NotFound(slug)
        actor.require("sites.manage", site.id)
        wanted: dict[str, Any] = {} if keep_area else area_columns(area)
        if reference is not None:
            wanted["ais_dpia_reference"] = reference
        if enabled is not None:
            wanted["ais_enabled"] = enabled
        switched_on = wanted.get("ais_enabled", site.ais_enabled)
        if switched_on:
            if site.kind != "marina":
                errors["ais_enabled"] = FieldError(MSG_MARINA)
            if not wanted.get("ais_dpia_reference", site.ais_dpia_reference):
                errors.setdefault("ais_dpia_reference", FieldError(MSG_DPIA))
            has_area = area is not None if not keep_area else area_of(site) is not None
            area_fields = ("ais_area_shape", "ais_area_lat", "ais_area_polygon")
            if not has_area and not any(f in errors for f in area_fields):
                errors["ais_area_lat"] = FieldError(MSG_AREA_NEEDED)
        if errors:
            raise AisInvalid(errors)
        return await apply_site_changes(session, actor, site, wanted, now=now)


def area_of(site: Site) -> Area | None:
    """The site's harbour area as stored, if it has one."""
    if site.ais_area_polygon:
        return Polygon(tuple((lat, lon) for lat, lon in json.loads(site.ais_area_polygon)))
    if site.ais_area_lat is None or site.ais_area_lon is None or not site.ais_area_radius_m:
        return None
    return Circle(site.ais_area_lat, site.ais_area_lon, float(site.ais_area_radius_m))


async def harbour(db: Database, slug: str) -> HarbourSetting:
    """The site's AIS setting (NotFound for no such site)."""
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == slug))
    if site is None:
        raise NotFound(slug)
    return HarbourSetting(site.id, site.slug, site.ais_enabled, area_of(site))
