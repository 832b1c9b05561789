"""A site's AIS setting: the harbour area (a circle) and the switch with its DPIA reference.

AIS is off on every site until an admin switches it on, and switching on asks for the
reference of the data-protection impact assessment (DPIA) that covers it: the reference is
kept with the setting, shown on the site's page and in the processing record. Every change
is one audited `site_changed` event (nightreg.services.sites.record_site_changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Site
from nightreg.services.access import Actor, NotFound
from nightreg.services.ais.tracker import Area
from nightreg.services.sites import record_site_changes
from nightreg.validation import FieldError, Invalid, clean_text

MIN_RADIUS_M = 50
MAX_RADIUS_M = 20_000
MAX_DPIA = 200

MSG_LAT = N_("Enter the latitude of the harbour's centre in degrees, like 52.6421.")
MSG_LON = N_("Enter the longitude of the harbour's centre in degrees, like 5.0603.")
MSG_RADIUS = N_("Enter the radius in whole metres, from %(min)s to %(max)s.")
MSG_AREA_NEEDED = N_("AIS needs the harbour area first: its centre and radius.")
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


def parse_area(
    lat: str | float | None, lon: str | float | None, radius_m: str | float | None
) -> tuple[tuple[float, float, int] | None, dict[str, FieldError]]:
    """The area typed into the form (all three empty: none); errors by field."""
    if all(v is None or (isinstance(v, str) and not v.strip()) for v in (lat, lon, radius_m)):
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
    return (round(la, 6), round(lo, 6), int(r)), errors


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
    keep_area: bool = False,
) -> dict[str, Any]:
    """Set the area, the switch and the DPIA reference (None: leave as is); the changes.

    `keep_area`: the area is not part of this change (the command line's switch alone).
    """
    actor.require("sites.manage")
    errors: dict[str, FieldError] = {}
    area, area_errors = (None, {}) if keep_area else parse_area(lat, lon, radius_m)
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
        wanted: dict[str, Any] = {}
        if not keep_area:
            wanted.update(
                ais_area_lat=area[0] if area else None,
                ais_area_lon=area[1] if area else None,
                ais_area_radius_m=area[2] if area else None,
            )
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
            has_area = area is not None if not keep_area else site.ais_area_radius_m is not None
            if not has_area and not area_errors:
                errors["ais_area_lat"] = FieldError(MSG_AREA_NEEDED)
        if errors:
            raise AisInvalid(errors)
        changes = {
            field: {"before": getattr(site, field), "after": value}
            for field, value in wanted.items()
            if getattr(site, field) != value
        }
        for field, change in changes.items():
            setattr(site, field, change["after"])
        await record_site_changes(session, actor, site, changes, now=now)
    return changes


def area_of(site: Site) -> Area | None:
    if site.ais_area_lat is None or site.ais_area_lon is None or not site.ais_area_radius_m:
        return None
    return Area(site.ais_area_lat, site.ais_area_lon, float(site.ais_area_radius_m))


async def harbour(db: Database, slug: str) -> HarbourSetting:
    """The site's AIS setting (NotFound for no such site)."""
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == slug))
    if site is None:
        raise NotFound(slug)
    return HarbourSetting(site.id, site.slug, site.ais_enabled, area_of(site))
