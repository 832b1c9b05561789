"""Staff observations: what someone saw on a visit or at a place, raised as an `observation` flag.

The checklist follows the published indicator lists for harbours and business parks: stable
codes (stored, exported, tested) with English labels translated on the page. An observation and
its flag are written in one transaction, with the audit event; the flag rests on the visit (if
any) and explains itself with the indicators' English labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Observation, Visit
from nightreg.rules.base import Finding
from nightreg.services import audit, flagging
from nightreg.services.access import Actor, NotFound
from nightreg.services.sites import scoped_site
from nightreg.validation import (
    MSG_CHOICE,
    MSG_DATETIME,
    MSG_TOO_LONG,
    FieldError,
    Invalid,
    clean_text,
    parse_local_datetime,
)

PERMISSION = "observations.add"
RULE = "observation"
MAX_LOCATION = 120
MAX_TEXT = 2000
# An observation is written down the same night or a few days later, not months on.
MAX_OBSERVED_PAST = timedelta(days=30)
# Clocks differ a little between the phone that filled the form and the server.
OBSERVED_SLACK = timedelta(minutes=5)
# A single indicator is worth a look; each further one makes the picture clearer.
BASE_SCORE = 40
SCORE_PER_EXTRA_INDICATOR = 10
MAX_SCORE = 80

MSG_NOTHING_OBSERVED = N_("Please tick at least one indicator or describe what you saw.")
MSG_LOCATION_REQUIRED = N_("Please say where you saw it: a berth, quay, unit or building.")
MSG_OBSERVED_FUTURE = N_("The time cannot be in the future.")
MSG_OBSERVED_PAST = N_("Please enter a time within the last 30 days.")
# The flag's reason when only a description was given (the description stays on the site).
LABEL_DESCRIBED = N_("something described in the observation")


@dataclass(frozen=True)
class Indicator:
    code: str
    label: str  # English msgid, translated on the page


@dataclass(frozen=True)
class IndicatorGroup:
    code: str
    title: str
    kinds: frozenset[str]  # the site kinds whose checklist shows this group
    indicators: tuple[Indicator, ...]


_BOTH = frozenset({"marina", "business_park"})

INDICATOR_GROUPS: tuple[IndicatorGroup, ...] = (
    IndicatorGroup(
        "water",
        N_("On the water and at the berth"),
        frozenset({"marina"}),
        (
            Indicator("no_navigation_lights", N_("Sailing without navigation lights")),
            Indicator("ais_switched_off", N_("AIS switched off or not used")),
            Indicator("boat_low_in_water", N_("Boat low in the water")),
            Indicator("crew_unfamiliar", N_("Crew unfamiliar with boats")),
            Indicator("name_changed", N_("Name or number painted over or changed")),
            Indicator("transfers_at_sea", N_("Transfers between boats at sea or at night")),
            Indicator(
                "unusual_fuel_equipment", N_("Unusual fuel or equipment (extra jerrycans, GPS)")
            ),
            Indicator("loading_at_night", N_("Loading or unloading at night or at an odd spot")),
            Indicator("boat_unsuited", N_("A boat that does not fit its stated use")),
        ),
    ),
    IndicatorGroup(
        "premises",
        N_("At the units and buildings"),
        frozenset({"business_park"}),
        (
            Indicator("vans_against_unit", N_("Vans parked against a unit")),
            Indicator("windows_blacked_out", N_("Taped or blacked-out windows")),
            Indicator("chemical_smells", N_("Chemical smells")),
            Indicator("humming_hoses", N_("Humming or hoses from a building")),
            Indicator("drums_carried", N_("Jerrycans, drums or IBCs carried in or out")),
            Indicator("locks_replaced", N_("Locks replaced")),
            Indicator("unusual_waste", N_("Unusual waste")),
            Indicator("heavy_electricity", N_("Heavy electricity use")),
            Indicator("no_visible_business", N_("A rented unit without visible business")),
        ),
    ),
    IndicatorGroup(
        "behaviour",
        N_("Behaviour, anywhere on the site"),
        _BOTH,
        (
            Indicator("cameras_patrols", N_("Interest in cameras or patrols")),
            Indicator("cash_large", N_("Cash payment in large sums")),
            Indicator("odd_hours", N_("Coming and going at odd hours")),
            Indicator("lookout", N_("Someone keeping watch")),
            Indicator("avoids_contact", N_("Avoids staff or gives vague answers")),
            Indicator("shields_view", N_("Shields goods or a space from view")),
        ),
    ),
)

INDICATORS: dict[str, Indicator] = {
    i.code: i for group in INDICATOR_GROUPS for i in group.indicators
}


def groups_for(site_kind: str) -> list[IndicatorGroup]:
    """The checklist of a site of this kind: its own groups first, then the shared ones."""
    return [g for g in INDICATOR_GROUPS if site_kind in g.kinds]


def codes_for(site_kind: str) -> frozenset[str]:
    return frozenset(i.code for g in groups_for(site_kind) for i in g.indicators)


class ObservationInvalid(Invalid):
    """What was submitted does not validate: errors by field name, as the register's forms."""


@dataclass(frozen=True)
class Added:
    observation_id: int
    flag_id: int
    flag_created: bool  # False: the visit's observation flag already existed and was kept


def score(indicator_count: int) -> int:
    return min(MAX_SCORE, BASE_SCORE + SCORE_PER_EXTRA_INDICATOR * max(0, indicator_count - 1))


def place_subject(site_id: int, location: str) -> str:
    """The subject of an observation not about one visit: the place, written down one way."""
    return f"place:{site_id}:{' '.join(location.casefold().split())}"


def _observed_at(
    value: str | datetime | None, tz: ZoneInfo, now: datetime, errors: dict[str, FieldError]
) -> datetime:
    if value is None or (isinstance(value, str) and not value.strip()):
        return now
    parsed = parse_local_datetime(value, tz) if isinstance(value, str) else value
    if parsed is None:
        errors["observed_at"] = FieldError(MSG_DATETIME)
        return now
    if parsed > now + OBSERVED_SLACK:
        errors["observed_at"] = FieldError(MSG_OBSERVED_FUTURE)
    elif parsed < now - MAX_OBSERVED_PAST:
        errors["observed_at"] = FieldError(MSG_OBSERVED_PAST)
    return parsed


def _indicators(codes: Iterable[str], site_kind: str, errors: dict[str, FieldError]) -> list[str]:
    allowed = codes_for(site_kind)
    chosen: list[str] = []
    for code in codes:
        if code not in allowed:
            errors["indicators"] = FieldError(MSG_CHOICE)
        elif code not in chosen:
            chosen.append(code)
    # The checklist's order, whatever order the form sent them in.
    order = [i.code for g in groups_for(site_kind) for i in g.indicators]
    return sorted(chosen, key=order.index)


async def add_observation(
    db: Database,
    actor: Actor,
    site_id: int,
    visit_id: int | None,
    *,
    location: str,
    indicators: Iterable[str],
    text: str,
    observed_at: str | datetime | None,
    now: datetime,
) -> Added:
    """Record what `actor` saw and raise its flag, in one write transaction (audited).

    `observed_at` is the site's wall-clock time as typed ("2026-07-14T21:30"), an aware
    datetime, or None for now. Raises ObservationInvalid with errors by field, NotFound when
    the site or the visit is not the actor's (or the visit is of another site), AccessDenied
    when the role may not record observations.
    """
    # Longer than most: validation, the write, the flag and the audit must happen in one
    # transaction.
    async with db.write() as session:
        site = await scoped_site(session, actor, PERMISSION, site_id=site_id)
        visit: Visit | None = None
        if visit_id is not None:
            visit = await session.scalar(
                select(Visit).where(Visit.id == visit_id, Visit.site_id == site.id)
            )
            if visit is None:
                raise NotFound(str(visit_id))
        errors: dict[str, FieldError] = {}
        codes = _indicators(indicators, site.kind, errors)
        clean_location = clean_text(location, MAX_LOCATION)
        if len(clean_location) > MAX_LOCATION:
            errors["location"] = FieldError(MSG_TOO_LONG, {"max": MAX_LOCATION})
        elif visit is None and not clean_location:
            errors["location"] = FieldError(MSG_LOCATION_REQUIRED)
        clean = clean_text(text, MAX_TEXT, multiline=True)
        if len(clean) > MAX_TEXT:
            errors["text"] = FieldError(MSG_TOO_LONG, {"max": MAX_TEXT})
        elif not codes and not clean and "indicators" not in errors:
            errors["indicators"] = FieldError(MSG_NOTHING_OBSERVED)
        at = _observed_at(observed_at, ZoneInfo(site.timezone), now, errors)
        if errors:
            raise ObservationInvalid(errors)

        observation = Observation(
            site_id=site.id,
            visit_id=visit.id if visit else None,
            location=clean_location,
            indicators=codes,
            text=clean,
            observed_at=at,
            author=actor.label[:300],
            created_at=now,
        )
        session.add(observation)
        await session.flush()
        labels = [INDICATORS[c].label for c in codes] or [LABEL_DESCRIBED]
        finding = Finding(
            rule=RULE,
            subject=visit.subject_key if visit else place_subject(site.id, clean_location),
            visit_ids=(visit.id,) if visit else (),
            window_start=at,
            window_end=at,
            score=score(len(codes)),
            params={"indicators": ", ".join(labels)},
        )
        recorded = await flagging.record(
            session, finding, site_id=site.id, now=now, actor=actor, observation_id=observation.id
        )
        await audit.record(
            session, actor, "observation_added", at=now, site_id=site.id,
            object_type="observation", object_id=observation.id,
            object_ids=(visit.id,) if visit else (),
            details={"indicators": codes, "flag_id": recorded.flag_id, "location": clean_location},
        )  # fmt: skip
        return Added(observation.id, recorded.flag_id, recorded.created)
