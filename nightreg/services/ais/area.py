"""A harbour area, a circle or a polygon, and how far a position lies inside or outside its edge.

Pure geometry in a local equirectangular projection (metres east and north of a point of the
area, east scaled by the cosine of its latitude): exact enough for a harbour's few kilometres,
and the same for both shapes. A signed distance to the edge is negative inside, positive
outside; the tracker's band at the edge (`margin_m`) is the same idea for both.

The polygon's geometry is written here rather than taken from shapely: ray casting for inside,
the nearest point of each edge for the distance, a pairwise test for crossing edges. That is
some thirty lines for at most a hundred corners, and no compiled dependency for the listener.
Longitudes are not wrapped at ±180°: a polygon across the antimeridian measures the width of
the world and is refused as too large (nightreg.services.ais.harbour).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

# The band around the edge: at least this (a GPS fix wanders 10-20 m).
MIN_MARGIN_M = 20.0
METRES_PER_DEGREE = 111_195.0

Point = tuple[float, float]  # metres east, metres north


class Area(Protocol):
    """What the tracker needs of a harbour area."""

    @property
    def margin_m(self) -> float:
        """Half the width of the band at the edge where a position is no evidence either way."""
        ...

    def signed_edge_distance_m(self, lat: float, lon: float) -> float:
        """Metres from the edge: negative inside, positive outside."""
        ...


@dataclass(frozen=True, slots=True)
class Circle:
    """A circle: centre in degrees, radius in metres."""

    lat: float
    lon: float
    radius_m: float

    @property
    def margin_m(self) -> float:
        """A tenth of the radius, at least MIN_MARGIN_M, at most half the radius."""
        return min(max(MIN_MARGIN_M, self.radius_m * 0.1), self.radius_m / 2)

    def distance_m(self, lat: float, lon: float) -> float:
        """Metres from the centre."""
        dy = (lat - self.lat) * METRES_PER_DEGREE
        dx = (lon - self.lon) * METRES_PER_DEGREE * math.cos(math.radians(self.lat))
        return math.hypot(dx, dy)

    def signed_edge_distance_m(self, lat: float, lon: float) -> float:
        return self.distance_m(lat, lon) - self.radius_m


@dataclass(frozen=True, slots=True)
class Polygon:
    """A polygon: its corners (lat, lon) in order around the area, the first not repeated.

    Projected once around the middle of its bounding box. `margin_m`: a tenth of the square
    root of its area (a circle's tenth of the radius, for a shape that has no radius), at
    least MIN_MARGIN_M, at most area / perimeter. That cap is half of 2·area/perimeter, which
    is a circle's radius and the radius of the largest circle inside a square, a triangle or
    any polygon that has an inscribed circle: so inside, a band's width away from every edge,
    is never empty, also in a narrow basin (where the band is narrower than 20 m).
    """

    vertices: tuple[tuple[float, float], ...]
    _lat0: float = field(init=False, repr=False, compare=False)
    _lon0: float = field(init=False, repr=False, compare=False)
    _kx: float = field(init=False, repr=False, compare=False)
    # Per edge: its start (x, y), its vector (ex, ey) and its squared length.
    _edges: tuple[tuple[float, float, float, float, float], ...] = field(
        init=False, repr=False, compare=False
    )
    area_m2: float = field(init=False, repr=False, compare=False)
    perimeter_m: float = field(init=False, repr=False, compare=False)
    margin_m: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.vertices) < 3:
            raise ValueError("a polygon has at least three corners")
        lats = [lat for lat, _lon in self.vertices]
        lons = [lon for _lat, lon in self.vertices]
        lat0, lon0 = (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2
        set_ = object.__setattr__
        set_(self, "_lat0", lat0)
        set_(self, "_lon0", lon0)
        set_(self, "_kx", METRES_PER_DEGREE * math.cos(math.radians(lat0)))
        points = self.points()
        edges = []
        twice_area = perimeter = 0.0
        for (ax, ay), (bx, by) in zip(points, points[1:] + points[:1], strict=True):
            ex, ey = bx - ax, by - ay
            edges.append((ax, ay, ex, ey, ex * ex + ey * ey))
            twice_area += ax * by - bx * ay  # the shoelace formula
            perimeter += math.hypot(ex, ey)
        area = abs(twice_area) / 2
        set_(self, "_edges", tuple(edges))
        set_(self, "area_m2", area)
        set_(self, "perimeter_m", perimeter)
        cap = area / perimeter if perimeter else 0.0
        set_(self, "margin_m", min(max(MIN_MARGIN_M, math.sqrt(area) / 10), cap))

    def project(self, lat: float, lon: float) -> Point:
        """Metres east and north of the middle of the bounding box."""
        return (lon - self._lon0) * self._kx, (lat - self._lat0) * METRES_PER_DEGREE

    def points(self) -> list[Point]:
        return [self.project(lat, lon) for lat, lon in self.vertices]

    def signed_edge_distance_m(self, lat: float, lon: float) -> float:
        x, y = self.project(lat, lon)
        inside = False
        nearest = math.inf
        for ax, ay, ex, ey, length2 in self._edges:
            px, py = x - ax, y - ay
            # Ray casting: a ray from the point towards +x crosses this edge (half-open in y,
            # so a ray through a corner counts it once).
            if (ay > y) != (ay + ey > y) and px < ex * py / ey:
                inside = not inside
            # The nearest point of the edge: the projection onto it, clamped to its ends.
            t = (px * ex + py * ey) / length2 if length2 else 0.0
            t = 0.0 if t < 0.0 else 1.0 if t > 1.0 else t
            dx, dy = px - t * ex, py - t * ey
            d2 = dx * dx + dy * dy
            if d2 < nearest:
                nearest = d2
        distance = math.sqrt(nearest)
        return -distance if inside else distance

    def extent_m(self) -> float:
        """The longest distance between two corners."""
        points = self.points()
        return max(
            math.hypot(ax - bx, ay - by)
            for i, (ax, ay) in enumerate(points)
            for bx, by in points[i + 1 :]
        )

    def crossing_edges(self) -> tuple[int, int] | None:
        """The first two edges (numbered from 1, edge 1 from the first corner to the second)
        that cross or touch, or that fold back onto each other at a corner; None for a simple
        polygon. All pairs: at most 4,950 for a hundred corners."""
        points = self.points()
        n = len(points)
        edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
        for i in range(n):
            a, b = edges[i]
            for j in range(i + 1, n):
                c, d = edges[j]
                if j == i + 1 or (i == 0 and j == n - 1):
                    # Neighbours share a corner; they are wrong only if they run back over
                    # each other (collinear, both leaving the shared corner the same way).
                    shared, p, q = (b, a, d) if j == i + 1 else (a, b, c)
                    if _orient(shared, p, q) == 0 and _dot(shared, p, q) > 0:
                        return i + 1, j + 1
                elif _segments_meet(a, b, c, d):
                    return i + 1, j + 1
        return None


def _orient(a: Point, b: Point, c: Point) -> float:
    """Twice the signed area of the triangle a, b, c: > 0 counter-clockwise, 0 collinear."""
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _dot(origin: Point, p: Point, q: Point) -> float:
    return (p[0] - origin[0]) * (q[0] - origin[0]) + (p[1] - origin[1]) * (q[1] - origin[1])


def _within_box(a: Point, b: Point, c: Point) -> bool:
    """c, collinear with a and b, lies on the segment a-b."""
    return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])


def _segments_meet(a: Point, b: Point, c: Point, d: Point) -> bool:
    """The segments a-b and c-d cross or touch."""
    d1, d2 = _orient(c, d, a), _orient(c, d, b)
    d3, d4 = _orient(a, b, c), _orient(a, b, d)
    if ((d1 > 0) != (d2 > 0) and d1 and d2) and ((d3 > 0) != (d4 > 0) and d3 and d4):
        return True
    return (
        (d1 == 0 and _within_box(c, d, a))
        or (d2 == 0 and _within_box(c, d, b))
        or (d3 == 0 and _within_box(a, b, c))
        or (d4 == 0 and _within_box(a, b, d))
    )


def distinct_corners(corners: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """The corners without one repeating the one before it (also the last repeating the
    first, as GeoJSON closes its rings)."""
    kept: list[tuple[float, float]] = []
    for corner in corners:
        if not kept or corner != kept[-1]:
            kept.append(corner)
    while len(kept) > 1 and kept[-1] == kept[0]:
        kept.pop()
    return tuple(kept)
