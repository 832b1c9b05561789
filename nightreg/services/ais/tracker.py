"""The debouncing that turns positions in and around a site's harbour area into entries and exits.

Pure: positions in, transitions out; nothing here is stored. Per MMSI the tracker keeps in
memory only which side of the edge it was last confirmed on and the run of reports since it
seemed to cross; a position itself is forgotten as soon as it has been counted.

Debouncing, so that a boat moored at the edge does not flap in and out:
- a margin (hysteresis) around the edge of the area, a circle or a polygon
  (nightreg.services.ais.area): inside means at least `margin` within the edge, outside at
  least `margin` beyond it; a report in the band between is no evidence either way;
- a crossing counts once `reports` reports in a row (ignoring those in the band) are on the
  new side, or the first and the latest of such a run lie `seconds` apart. The transition's
  time is the first report on the new side.

An MMSI first seen inside the area entered it then; first seen outside, it is no business of
the harbour's and nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nightreg.services.ais.area import Area

REPORTS = 3
SECONDS = 120.0
# The state of an MMSI not heard for this long (seconds) is forgotten, unless it is inside.
FORGET_SECONDS = 3600.0
# Beyond this many MMSIs outside, the longest-silent are forgotten first (a flood).
MAX_TRACKED = 50_000


@dataclass(frozen=True, slots=True)
class Transition:
    mmsi: str
    direction: str  # "in" | "out"
    at: float  # seconds since the epoch, UTC


class _State:
    __slots__ = ("candidate", "confirmed", "count", "heard", "since")

    def __init__(self, confirmed: str | None, heard: float) -> None:
        self.confirmed = confirmed
        self.candidate: str | None = None
        self.count = 0
        self.since = 0.0
        self.heard = heard


class Tracker:
    """Per-MMSI debouncing over one area. `known`: the side each MMSI was last recorded on
    (a restarted listener does not record again the boats already inside)."""

    def __init__(
        self,
        area: Area,
        *,
        reports: int = REPORTS,
        seconds: float = SECONDS,
        known: Mapping[str, str] | None = None,
    ) -> None:
        self.area = area
        self.reports = reports
        self.seconds = seconds
        self._margin = area.margin_m
        self._states: dict[str, _State] = {
            mmsi: _State(side, 0.0) for mmsi, side in (known or {}).items()
        }

    def side(self, mmsi: str) -> str | None:
        state = self._states.get(mmsi)
        return state.confirmed if state else None

    def __len__(self) -> int:
        return len(self._states)

    def observe(self, mmsi: str, lat: float, lon: float, at: float) -> Transition | None:
        distance = self.area.signed_edge_distance_m(lat, lon)
        state = self._states.get(mmsi)
        if state is None:
            state = self._states[mmsi] = _State(None, at)
        state.heard = at
        if distance <= -self._margin:
            side = "in"
        elif distance > self._margin:
            side = "out"
        else:
            return None  # in the band at the edge: no evidence either way
        if side == state.confirmed:
            state.candidate = None
            state.count = 0
            return None
        if state.candidate != side:
            state.candidate, state.count, state.since = side, 1, at
        else:
            state.count += 1
        if state.count < self.reports and at - state.since < self.seconds:
            return None
        before = state.confirmed
        state.confirmed, state.candidate, state.count = side, None, 0
        if before is None and side == "out":
            return None
        return Transition(mmsi, side, state.since)

    def forget(self, now: float) -> int:
        """Forget MMSIs outside (or unsure) not heard for FORGET_SECONDS, and the longest
        silent beyond MAX_TRACKED; those inside stay. How many were forgotten."""
        gone = [
            mmsi
            for mmsi, s in self._states.items()
            if s.confirmed != "in" and now - s.heard > FORGET_SECONDS
        ]
        for mmsi in gone:
            del self._states[mmsi]
        excess = len(self._states) - MAX_TRACKED
        if excess > 0:
            outside = sorted(
                (s.heard, mmsi) for mmsi, s in self._states.items() if s.confirmed != "in"
            )
            for _heard, mmsi in outside[:excess]:
                del self._states[mmsi]
            gone.extend(m for _h, m in outside[:excess])
        return len(gone)
