"""What every rule is made of: plain visit facts in, findings out, and the helpers they share.

Rules are pure functions. They get `VisitFacts` (or, for `arrival_surge`, nightly counts), a
dict of thresholds and the current time, and return `Finding`s; they never touch the
database, the clock or a setting. The scan (nightreg.services.scan) narrows the register down
with set-based queries and hands each rule only the visits that could match.

`VisitFacts` deliberately has no country, flag, plate country or place of residence: a rule
cannot score what it is never given (DESIGN §5). tests/unit/test_rules_fairness.py checks it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")

Thresholds = Mapping[str, int]


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """One visit as the rules see it: identifiers normalised, times aware and in UTC."""

    id: int
    site_id: int
    site_kind: str  # "marina" | "business_park"
    tz: ZoneInfo  # the site's time zone: nights are the site's nights
    kind: str  # "vessel" | "vehicle" | "stay"
    subject_key: str  # reg:…, mmsi:…, plate:… or person:… (nightreg.validation.subject_key)
    arrived_at: datetime
    expected_departure_at: datetime
    departed_at: datetime | None = None
    registration: str | None = None  # normalise_identifier(registration)
    mmsi: str | None = None
    plate: str | None = None  # normalise_identifier(plate)
    vessel_name: str | None = None  # fold_name(vessel_name)
    vessel_type: str | None = None
    guest: str = ""  # fold_name(guest_name)
    unit: str | None = None  # normalise_identifier(unit or company): whom a vehicle visits
    # The visit's AIS movements (time, "in" | "out"), when its site listens to AIS: the
    # harbour area entered or left, as the boat's own transponder showed it.
    ais: tuple[tuple[datetime, str], ...] = ()
    # A vehicle's reads by the site's gate cameras that this visit covers (issue 19): times
    # it went in or out beside what the register says. Empty where the site has none.
    camera_sightings: tuple[datetime, ...] = ()

    def movements(self) -> Iterable[tuple[datetime, str]]:
        """The visit's arrival and, once it left, its departure."""
        yield self.arrived_at, "arrival"
        if self.departed_at is not None:
            yield self.departed_at, "departure"

    def unregistered_ais(self, grace: timedelta) -> Iterable[tuple[datetime, str]]:
        """AIS movements the register does not show: not the entry at its arrival nor the exit
        at its departure (within `grace`), but a trip out and back during the stay."""
        for at, direction in self.ais:
            if direction == "in" and abs(at - self.arrived_at) <= grace:
                continue
            if (
                direction == "out"
                and self.departed_at is not None
                and abs(at - self.departed_at) <= grace
            ):
                continue
            yield at, direction

    def movements_seen(self) -> Iterable[tuple[datetime, str]]:
        """The register's movements and the gate cameras' sightings ("camera")."""
        yield from self.movements()
        for at in self.camera_sightings:
            yield at, "camera"


@dataclass(frozen=True, slots=True)
class NightCount:
    """Arrivals at one site on one local date (for `arrival_surge`)."""

    site_id: int
    night: date
    arrivals: int


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a rule found: the visits it rests on, a score, and its reason's parameters.

    `site_id` is set by rules that look at one site; for rules that follow a subject across
    sites the scan files the flag at the site of the latest visit.
    """

    rule: str
    subject: str
    visit_ids: tuple[int, ...]
    window_start: datetime
    window_end: datetime
    score: int
    params: Mapping[str, str | int] = field(default_factory=dict)
    site_id: int | None = None


@dataclass(frozen=True, slots=True)
class Threshold:
    name: str
    default: int
    # What the number means, for the documentation and the site's settings page.
    label: str


Evaluate = Callable[..., list[Finding]]

# What a signal's reason says in place of a value its agreement does not share.
NOT_SHARED = "(not shared)"


@dataclass(frozen=True, kw_only=True)
class Rule:
    """What every rule has: a stable code, its explanation, and the thresholds a site can tune.

    A rule is one of two kinds: a `ScannedRule`, which the scan evaluates over the register, or
    a `FiledRule`, which something outside the scan files (a check-in, a member of staff).
    """

    code: str
    # What the rule looks at: "subject" (one boat, car or person across sites), "site" (all
    # visits of one site in a period), "visit" (one visit), "counts" (nightly arrival counts)
    # or "external" (raised by a check-in or by staff, not by the scan).
    scope: str
    title: str
    rationale: str
    # One sentence with %(name)s parameters from Finding.params; translated on the pages.
    reason: str
    thresholds: tuple[Threshold, ...] = ()
    # A rule that finds two kinds of thing says which in Finding.params["reason"]: the key of
    # its sentence here (each one whole, so that it translates as a whole).
    variants: Mapping[str, str] = field(default_factory=dict)
    # Operational rules (overdue) are for the harbour master only and never go to the hub.
    forwardable: bool = True
    # Watchlist hits are shown only to analysts.
    restricted: bool = False
    # The reason's parameters that carry a visit's own value, by the agreement field that
    # would have to be shared for it to travel in a signal's reason (which is always sent).
    # A parameter named here whose field is not shared is replaced by NOT_SHARED.
    reason_fields: Mapping[str, str] = field(default_factory=dict)

    def shared_reason(self, params: Mapping[str, object], shared: Iterable[str]) -> str:
        """The (English) reason with every parameter the agreement does not share withheld."""
        allowed = set(shared)
        values = {
            name: NOT_SHARED if self.reason_fields.get(name, "") not in ("", *allowed) else value
            for name, value in params.items()
        }
        try:
            return self.reason_for(values) % values
        except (KeyError, TypeError, ValueError):
            return self.title  # parameters that no longer fit the sentence: the neutral title

    def reason_for(self, params: Mapping[str, object]) -> str:
        """The (untranslated) sentence for a finding with these parameters."""
        variant = params.get("reason")
        return self.variants.get(variant, self.reason) if isinstance(variant, str) else self.reason

    @property
    def defaults(self) -> dict[str, int]:
        return {t.name: t.default for t in self.thresholds}

    def resolve(self, overrides: Mapping[str, object] | None) -> dict[str, int]:
        """The defaults with a site's overrides on top; unknown or invalid values are ignored."""
        values = self.defaults
        for name, value in (overrides or {}).items():
            if name in values and isinstance(value, int) and not isinstance(value, bool):
                values[name] = value
        return values


def local(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz)


def in_window(at: datetime, tz: ZoneInfo, start_hour: int, end_hour: int) -> bool:
    """Whether `at` falls between start_hour and end_hour on the site's clock.

    A window that wraps midnight (23 to 5) means hour >= 23 or hour < 5. Using the local
    wall clock keeps the window right on the nights the clocks change.
    """
    hour = local(at, tz).hour
    if start_hour <= end_hour:
        return start_hour <= hour < end_hour
    return hour >= start_hour or hour < end_hour


def night_of(at: datetime, tz: ZoneInfo, end_hour: int) -> date:
    """The local date of the evening a night belongs to: 02:00 on the 5th is the 4th's night."""
    wall = local(at, tz)
    return (wall - timedelta(days=1)).date() if wall.hour < end_hour else wall.date()


def clusters(
    events: Sequence[tuple[datetime, T]], *, count: int, window: timedelta
) -> list[list[tuple[datetime, T]]]:
    """Groups of events where at least `count` fall within `window` of each other.

    Every event that is part of some qualifying window is kept; qualifying windows that
    overlap or chain (the next starts within `window` of the last event) form one group, so
    a pattern that keeps going grows one finding instead of starting a new one each time.
    The events must be sorted by time.
    """
    if count < 1 or len(events) < count:
        return []
    marked = [False] * len(events)
    for i in range(len(events) - count + 1):
        if events[i + count - 1][0] - events[i][0] <= window:
            for k in range(i, i + count):
                marked[k] = True
    groups: list[list[tuple[datetime, T]]] = []
    for event, keep in zip(events, marked, strict=True):
        if not keep:
            continue
        if groups and event[0] - groups[-1][-1][0] <= window:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def score(base: int, found: int, needed: int, step: int = 10) -> int:
    """A score from 0 to 100: `base` at the threshold, `step` more for each event above it."""
    return max(0, min(100, base + step * (found - needed)))


def fold_name(value: str | None) -> str | None:
    """A vessel or guest name as a key: case, accents and spacing do not make a new name."""
    if not value:
        return None
    plain = value.casefold()
    if not plain.isascii():  # NFKD leaves ASCII as it is: only fold what has accents
        decomposed = unicodedata.normalize("NFKD", plain)
        plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.replace("-", " ").split()) or None


@dataclass(frozen=True, kw_only=True)
class ScannedRule(Rule):
    """A rule the scan evaluates: its pure function over what the scan's query narrowed down.

    The query lives beside the scan (nightreg.services.scan.candidates), not here: rules
    never touch the database.
    """

    evaluate: Evaluate


@dataclass(frozen=True, kw_only=True)
class FiledRule(Rule):
    """A rule filed from outside the scan: by a check-in (watchlist hits) or by staff
    (observations). It has no function to evaluate and no thresholds."""

    scope: str = "external"
