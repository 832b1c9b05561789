"""Gate cameras: the per-site switch, sightings posted by a camera system, and what they show.

A camera system posts plate reads with a `sensor` token (`POST /api/v1/sites/{slug}/sightings`,
admin/api/sightings.py). Nothing is stored for a site whose cameras are switched off; switching
them on takes the reference of the DPIA that covers them (docs/privacy.md). A sighting is
matched to the register by the plate's key, as a vehicle visit has it (`plate:AB123C`), and by
time: a visit of that plate at that site *covers* a sighting from MATCH_SLACK before its
arrival until MATCH_SLACK after its departure (while it is present: until now). Covered
sightings are evidence for the rules (nightreg.services.scan.sightings); the others, seen at
night, are Tonight's "on camera, not in the register".
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Sighting, Site, Visit
from nightreg.rules import unit_night_traffic
from nightreg.services import audit
from nightreg.services.access import Actor
from nightreg.services.sites import apply_site_changes, scoped_site
from nightreg.validation import has_pictograph_or_control, normalise_identifier, subject_key

POST = "sightings.post"
MANAGE = "sites.manage"
VIEW = "register.view"

# At most this many sightings in one request: a camera system that fell behind sends its
# backlog in several.
MAX_BATCH = 500
# A camera's clock may run a little ahead of the server's; more than this is a wrong clock.
FUTURE_SKEW = timedelta(minutes=5)
# Unmatched sightings live 28 days (the usual limit for camera recordings): an older one
# would be purged at once, so it is refused.
UNMATCHED_DAYS = 28
# A car is read at the gate a few minutes before its driver checks in, and after check-out.
MATCH_SLACK = timedelta(minutes=30)
# Tonight looks this far back before the night began for vehicles that came in and stayed.
LOOKBACK = timedelta(hours=24)
DIRECTIONS = ("in", "out")
MAX_CAMERA = 64
MAX_PLATE = 16
MAX_DPIA = 100
_PLATE_KEY = re.compile(r"[A-Z0-9]{2,12}")

MSG_DPIA = N_("Please enter the reference of the DPIA that covers the gate cameras.")
MSG_DPIA_LONG = N_("Please use at most 100 characters.")


class SourceOff(Exception):
    """The site's gate cameras are switched off: no sighting is stored."""


class BatchInvalid(ValueError):
    """A request that holds no sightings, or too many: a stable code and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CamerasInvalid(ValueError):
    """The switch cannot be set as asked: msgids by field name."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# --- the switch --------------------------------------------------------------------------


async def set_cameras(
    db: Database, actor: Actor, slug: str, *, enabled: bool, dpia_reference: str, now: datetime
) -> dict[str, Any]:
    """Switch a site's gate cameras on (with the DPIA's reference) or off; audited as
    site_changed. Switching off keeps the reference, and keeps the sightings already stored
    (they follow retention)."""
    actor.require(MANAGE)
    reference = " ".join(dpia_reference.split())
    errors: dict[str, str] = {}
    if len(reference) > MAX_DPIA:
        errors["cameras_dpia_reference"] = MSG_DPIA_LONG
    elif enabled and not reference:
        errors["cameras_dpia_reference"] = MSG_DPIA
    if errors:
        raise CamerasInvalid(errors)
    async with db.write() as session:
        site = await scoped_site(session, actor, MANAGE, slug=slug)
        wanted = {"cameras_enabled": enabled, "cameras_dpia_reference": reference}
        if not enabled and not reference:
            wanted.pop("cameras_dpia_reference")
        return await apply_site_changes(session, actor, site, wanted, now=now)


# --- posting sightings -------------------------------------------------------------------


@dataclass(frozen=True)
class ItemError:
    """One sighting of a request refused: its position, a stable code, the field, why."""

    index: int
    code: str
    field: str
    message: str


@dataclass
class PostResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    errors: list[ItemError] = field(default_factory=list)


def plate_key(plate: str) -> str | None:
    """The plate's subject key as a vehicle visit has it ("plate:AB123C"), or None when the
    camera's read is no plate (the kiosk's own test of a plate)."""
    if not plate or len(plate) > MAX_PLATE or has_pictograph_or_control(plate):
        return None
    if not _PLATE_KEY.fullmatch(normalise_identifier(plate)):
        return None
    return subject_key(
        "vehicle", registration=None, mmsi=None, plate=plate, guest_name="", residence=""
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # A time without an offset could be any clock's: the API asks for UTC with its offset.
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _check(index: int, item: Mapping[str, object], now: datetime) -> dict[str, Any] | ItemError:
    """One sighting's row, or the first thing wrong with it."""
    plate = item.get("plate")
    plate = plate.strip() if isinstance(plate, str) else ""
    key = plate_key(plate)
    if key is None:
        return ItemError(
            index, "bad_plate", "plate", "Please send the plate as read, e.g. AB-123-C."
        )
    at = _time(item.get("time"))
    if at is None:
        return ItemError(
            index, "bad_time", "time",
            "Please send the time as ISO 8601 with an offset, e.g. 2026-07-14T23:12:05Z.",
        )  # fmt: skip
    if at > now + FUTURE_SKEW:
        return ItemError(index, "future_time", "time", "The time lies in the future.")
    if at < now - timedelta(days=UNMATCHED_DAYS):
        return ItemError(
            index, "too_old", "time", f"The time lies more than {UNMATCHED_DAYS} days back."
        )
    camera = item.get("camera")
    camera = camera.strip() if isinstance(camera, str) else ""
    if not camera or len(camera) > MAX_CAMERA or has_pictograph_or_control(camera):
        message = f"Please send the camera's id (1 to {MAX_CAMERA} characters)."
        return ItemError(index, "bad_camera", "camera", message)
    direction = item.get("direction")
    if direction not in DIRECTIONS:
        return ItemError(index, "bad_direction", "direction", 'The direction is "in" or "out".')
    return {
        "camera": camera,
        "seen_at": at,
        "direction": direction,
        "plate": plate,
        "subject_key": key,
    }


def _insert(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: a repeat stores nothing and says so.

    Executed with the rows as parameters (SQLAlchemy's "insertmanyvalues"): one cached
    statement, not one compiled for each batch's values."""
    conflict = ["site_id", "camera", "seen_at", "subject_key"]
    stmt: Any = (postgresql if dialect == "postgresql" else sqlite).insert(Sighting)
    return stmt.on_conflict_do_nothing(index_elements=conflict).returning(Sighting.id)


async def record_sightings(
    db: Database, actor: Actor, slug: str, items: Sequence[Mapping[str, object]], *, now: datetime
) -> PostResult:
    """Store a camera system's sightings at one of its sites; see the module docstring.

    Each item is checked on its own: the valid ones are stored, the others come back with
    their index and a stable code. A sighting stored before (same camera, time and plate)
    counts as a duplicate and is not stored again. Audited as sightings_received with the
    counts (the plates are in the table, not in the trail).
    """
    actor.require(POST)
    if not items:
        raise BatchInvalid("empty", "Please send at least one sighting.")
    if len(items) > MAX_BATCH:
        raise BatchInvalid("batch_too_large", f"Please send at most {MAX_BATCH} sightings.")
    result = PostResult(received=len(items))
    rows: dict[tuple[str, datetime, str], dict[str, Any]] = {}
    for index, item in enumerate(items):
        checked = _check(index, item, now)
        if isinstance(checked, ItemError):
            result.errors.append(checked)
        else:
            # A repeat inside the request is a duplicate too.
            rows.setdefault(
                (checked["camera"], checked["seen_at"], checked["subject_key"]), checked
            )
    async with db.write() as session:
        site = await scoped_site(session, actor, POST, slug=slug)
        if not site.cameras_enabled:
            raise SourceOff(site.slug)
        stored: list[int] = []
        if rows:
            values = [{**row, "site_id": site.id, "received_at": now} for row in rows.values()]
            dialect = "sqlite" if db.is_sqlite else "postgresql"
            stored = list((await session.execute(_insert(dialect), values)).scalars())
        result.stored = len(stored)
        result.duplicates = result.received - len(result.errors) - result.stored
        await audit.record(
            session, actor, "sightings_received", at=now, site_id=site.id,
            object_type="sighting",
            details={"received": result.received, "stored": result.stored,
                     "duplicates": result.duplicates, "refused": len(result.errors)},
        )  # fmt: skip
    return result


# --- matching and the night --------------------------------------------------------------


def covers(
    arrived_at: datetime,
    departed_at: datetime | None,
    at: datetime,
    now: datetime,
) -> bool:
    """Whether a visit (of the sighting's plate and site) covers a sighting at `at`."""
    end = departed_at if departed_at is not None else max(now, arrived_at)
    return arrived_at - MATCH_SLACK <= at <= end + MATCH_SLACK


def night_hours(site: Site) -> tuple[int, int]:
    """When the site's night begins and ends (hours on its clock): unit_night_traffic's
    thresholds for the site, the night the rules about vehicles read."""
    thresholds = unit_night_traffic.RULE.resolve(
        (site.rule_thresholds or {}).get(unit_night_traffic.CODE)
    )
    return thresholds["night_start_hour"], thresholds["night_end_hour"]


def night_began(now: datetime, tz: ZoneInfo, start_hour: int) -> datetime:
    """When the latest night to have begun by `now` began (UTC): tonight's after the start
    hour, last night's before it (so that the morning still shows the night just past)."""
    local_now = now.astimezone(tz)
    day = local_now.date() if local_now.hour >= start_hour else local_now.date() - timedelta(days=1)
    return datetime(day.year, day.month, day.day, start_hour, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class CameraVehicle:
    """A plate the gate cameras saw on the park at night with no visit in the register."""

    plate: str
    subject_key: str
    first_seen_at: datetime  # the first sighting that put it on the park at night
    last_seen_at: datetime
    last_direction: str
    last_camera: str
    sighting_ids: tuple[int, ...]

    @property
    def on_the_park(self) -> bool:
        return self.last_direction == "in"


def off_register(
    sightings: Iterable[Sighting],
    visits: Iterable[tuple[str, datetime, datetime | None]],
    *,
    night_start: datetime,
    now: datetime,
) -> list[CameraVehicle]:
    """The plates on the park at night (in after the night began, or not out before it)
    that no visit covers; pure, for Tonight and its tests. `visits`: (subject key, arrival,
    departure) of the site's vehicle visits of those plates."""
    by_plate: dict[str, list[Sighting]] = defaultdict(list)
    for s in sorted(sightings, key=lambda s: (s.seen_at, s.id)):
        if s.seen_at <= now:
            by_plate[s.subject_key].append(s)
    stays: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for key, arrived_at, departed_at in visits:
        stays[key].append((arrived_at, departed_at))
    found = []
    for key, seen in by_plate.items():
        before = [s for s in seen if s.seen_at < night_start]
        during = [s for s in seen if s.seen_at >= night_start]
        at_night = during[:]
        if before and before[-1].direction == "in":
            at_night.insert(0, before[-1])  # came in before the night and did not go out
        if not at_night:
            continue
        if any(
            covers(arrived, departed, s.seen_at, now)
            for s in at_night
            for arrived, departed in stays[key]
        ):
            continue
        last = seen[-1]
        found.append(
            CameraVehicle(
                plate=last.plate, subject_key=key, first_seen_at=at_night[0].seen_at,
                last_seen_at=last.seen_at, last_direction=last.direction,
                last_camera=last.camera, sighting_ids=tuple(s.id for s in at_night),
            )
        )  # fmt: skip
    return sorted(found, key=lambda v: (v.first_seen_at, v.plate))


async def not_in_register(
    session: AsyncSession, site: Site, *, now: datetime
) -> list[CameraVehicle]:
    """Tonight's "on camera, not in the register" for a site whose cameras are on."""
    if not site.cameras_enabled:
        return []
    start_hour, _end_hour = night_hours(site)
    night_start = night_began(now, ZoneInfo(site.timezone), start_hour)
    sightings = list(
        await session.scalars(
            select(Sighting).where(
                Sighting.site_id == site.id,
                Sighting.seen_at >= night_start - LOOKBACK,
                Sighting.seen_at <= now,
            )
        )
    )
    keys = sorted({s.subject_key for s in sightings})
    visits: list[tuple[str, datetime, datetime | None]] = []
    for start in range(0, len(keys), 500):
        rows = await session.execute(
            select(Visit.subject_key, Visit.arrived_at, Visit.departed_at).where(
                Visit.site_id == site.id, Visit.subject_key.in_(keys[start : start + 500])
            )
        )
        visits += [(k, a, d) for k, a, d in rows.all()]
    return off_register(sightings, visits, night_start=night_start, now=now)
