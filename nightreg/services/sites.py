"""Sites and their check-in points: create, change, look up by QR token, rotate."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import CheckinPoint, RetentionPolicy, Site
from nightreg.security import new_point_token
from nightreg.services import audit
from nightreg.services.access import CLI, GLOBAL_PERMISSIONS, AccessDenied, Actor, NotFound
from nightreg.vocabulary import SITE_KINDS

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class SiteError(ValueError):
    """A site or point cannot be created or found; the message says why."""


@dataclass(frozen=True)
class PointInfo:
    """What the kiosk needs of a point, detached from any session."""

    id: int
    name: str
    token: str
    kiosk_mode: bool
    site_id: int
    site_slug: str
    site_name: str
    site_kind: str
    site_municipality: str
    site_contact: str
    site_timezone: str
    # The site's own visit retention, or None for the installation's default.
    site_retention_days: int | None
    # Branding (nightreg.services.branding): the accent colour and the logo's version.
    site_accent: str | None = None
    site_logo_version: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.site_timezone)


def kiosk_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/k/{token}"


async def create_site(
    db: Database,
    *,
    slug: str,
    name: str,
    kind: str,
    now: datetime,
    municipality: str = "",
    contact: str = "",
    timezone: str = "Europe/Amsterdam",
) -> Site:
    """`nightreg site add` and the demo: add_site (checked and audited) as the operator."""
    try:
        return await add_site(
            db,
            CLI,
            slug=slug,
            name=name,
            kind=kind,
            timezone=timezone,
            municipality=municipality,
            contact=contact,
            now=now,
        )
    except SiteInvalid as invalid:
        if invalid.errors.get("slug") == MSG_SLUG_TAKEN:
            raise SiteError(f"a site with slug {slug!r} exists already") from None
        raise


async def get_site(db: Database, slug: str) -> Site:
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == slug))
    if site is None:
        raise SiteError(f"no site with slug {slug!r}")
    return site


async def add_point(
    db: Database, *, site_slug: str, name: str, now: datetime, kiosk_mode: bool = False
) -> CheckinPoint:
    """`nightreg point add` and the demo: create_point (checked and audited) as the operator."""
    site = await get_site(db, site_slug)
    return await create_point(db, CLI, site, name=name, kiosk_mode=kiosk_mode, now=now)


async def get_point(db: Database, site_slug: str, name: str) -> CheckinPoint:
    async with db.read() as session:
        point = await session.scalar(
            select(CheckinPoint)
            .join(Site)
            .where(Site.slug == site_slug, CheckinPoint.name == name)
            .options(joinedload(CheckinPoint.site))
        )
    if point is None:
        raise SiteError(f"site {site_slug!r} has no point named {name!r}")
    return point


async def rotate_point(db: Database, site_slug: str, name: str, now: datetime) -> CheckinPoint:
    """`nightreg point rotate`: rotate (audited) as the operator, the point found by name."""
    point = await get_point(db, site_slug, name)
    return await rotate(db, CLI, point.id, now=now)


async def list_points(db: Database) -> list[CheckinPoint]:
    async with db.read() as session:
        result = await session.scalars(
            select(CheckinPoint)
            .options(joinedload(CheckinPoint.site))
            .order_by(CheckinPoint.site_id, CheckinPoint.id)
        )
        return list(result)


# A QR scan and its submit ask for the same point within a minute, and a busy evening asks
# for the same few points all the time: a short cache saves a query per page. Rotating a point
# in this process clears it at once; other instances notice within POINT_CACHE_SECONDS.
POINT_CACHE_SECONDS = 2.0
_point_cache: dict[str, tuple[float, PointInfo | None]] = {}

_POINT_BY_TOKEN = (
    select(
        CheckinPoint.id,
        CheckinPoint.name,
        CheckinPoint.token,
        CheckinPoint.kiosk_mode,
        Site.id,
        Site.slug,
        Site.name,
        Site.kind,
        Site.municipality,
        Site.contact,
        Site.timezone,
        RetentionPolicy.visit_days,
        Site.accent_colour,
        Site.logo_version,
    )
    .join(Site, CheckinPoint.site_id == Site.id)
    .outerjoin(RetentionPolicy, RetentionPolicy.site_id == Site.id)
    .where(
        CheckinPoint.token == bindparam("token"),
        CheckinPoint.is_active.is_(True),
        Site.is_active.is_(True),
    )
)


_POINT_FIELDS = [f.name for f in fields(PointInfo)]  # the order of the columns above


def forget_cached_points() -> None:
    _point_cache.clear()


async def point_by_token(db: Database, token: str) -> PointInfo | None:
    """The active point behind a kiosk URL, or None for unknown, rotated or disabled tokens."""
    if not token or len(token) > 64:
        return None
    now = time.monotonic()
    cached = _point_cache.get(token)
    if cached is not None and now - cached[0] < POINT_CACHE_SECONDS:
        return cached[1]
    async with db.engine.connect() as conn:
        row = (await conn.execute(_POINT_BY_TOKEN, {"token": token})).first()
    point = PointInfo(**dict(zip(_POINT_FIELDS, row, strict=True))) if row is not None else None
    if len(_point_cache) > 10_000:
        _point_cache.clear()
    _point_cache[token] = (now, point)
    return point


async def sites_for(db: Database, actor: Actor, permission: str) -> list[Site]:
    """The active sites on which `actor` holds `permission`, by name."""
    stmt = select(Site).where(Site.is_active.is_(True)).order_by(Site.name)
    if not (actor.kind == "cli" or permission in GLOBAL_PERMISSIONS):
        stmt = stmt.where(Site.id.in_(actor.sites_for(permission)))
    elif not actor.can(permission):
        return []
    async with db.read() as session:
        return list(await session.scalars(stmt))


async def scoped_site(
    session: AsyncSession,
    actor: Actor,
    permission: str,
    *,
    site_id: int | None = None,
    slug: str | None = None,
) -> Site:
    """One site by id or slug, if `actor` holds `permission` there.

    Raises AccessDenied when the role lacks the permission altogether, and NotFound when the
    site does not exist or is not one of the actor's: a stranger cannot probe for sites.
    """
    if not actor.can(permission):
        raise AccessDenied(permission)
    if site_id is not None:
        site = await session.get(Site, site_id)
    else:
        site = await session.scalar(select(Site).where(Site.slug == slug))
    if site is None or not actor.can(permission, site.id):
        raise NotFound(str(slug if site_id is None else site_id))
    return site


async def site_for(db: Database, actor: Actor, slug: str, permission: str) -> Site:
    """One site by slug, if `actor` holds `permission` there (see scoped_site)."""
    async with db.read() as session:
        return await scoped_site(session, actor, permission, slug=slug)


# --- the staff pages: sites and points changed by an Actor, every change audited ----------------

MSG_NAME = N_("Please enter a name.")
MSG_NAME_LONG = N_("Please use at most 120 characters.")
MSG_SLUG = N_(
    "Please use 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit."
)
MSG_SLUG_TAKEN = N_("There is a site with this short name already.")
MSG_KIND = N_("Please choose the kind of site.")
MSG_TIMEZONE = N_("Please enter a time zone like Europe/Amsterdam.")
MSG_ACTIVE = N_("Please choose whether it is in use.")
MSG_HOUR = N_("Please enter a time like 14:00.")
MSG_POINT_TAKEN = N_("This site has a check-in point with this name already.")
MSG_TEXT_LONG = N_("Please use at most 200 characters.")


class SiteInvalid(SiteError):
    """A site or point form has mistakes: msgids by field name."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


@dataclass(frozen=True)
class ManagedSite:
    site: Site
    points: int  # active check-in points
    can_manage_points: bool  # the site page is open to the actor


def _check_name(errors: dict[str, str], name: str, field: str = "name") -> str:
    name = " ".join(name.split())
    if not name:
        errors[field] = MSG_NAME
    elif len(name) > 120:
        errors[field] = MSG_NAME_LONG
    return name


def _check_text(errors: dict[str, str], field: str, value: str) -> str:
    value = value.strip()
    if len(value) > 200:
        errors[field] = MSG_TEXT_LONG
    return value


def _check_hour(errors: dict[str, str], field: str, value: str) -> str:
    """A time of day as "HH:MM" (also typed "9.30" or "9:30")."""
    match = re.fullmatch(r"([0-9]{1,2})[:.]([0-9]{2})", value.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        errors[field] = MSG_HOUR
        return value
    return f"{int(match[1]):02d}:{match[2]}"


def _check_timezone(errors: dict[str, str], timezone: str) -> str:
    timezone = timezone.strip()
    try:
        if not timezone or len(timezone) > 64:
            raise ValueError(timezone)
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = MSG_TIMEZONE
    return timezone


async def managed_sites(db: Database, actor: Actor) -> tuple[list[ManagedSite], bool]:
    """The sites the actor manages, disabled ones included, and whether it manages all.

    An admin sees every site (sites.manage is global); a harbour master the sites on which
    it holds points.manage; anyone else is refused.
    """
    everything = actor.can("sites.manage")
    mine = actor.sites_for("points.manage")
    if not everything and not mine:
        raise AccessDenied("points.manage")
    counts = (
        select(CheckinPoint.site_id, func.count().label("n"))
        .where(CheckinPoint.is_active.is_(True))
        .group_by(CheckinPoint.site_id)
        .subquery()
    )
    stmt = (
        select(Site, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.site_id == Site.id)
        .order_by(Site.name, Site.slug)
    )
    if not everything:
        stmt = stmt.where(Site.id.in_(mine))
    async with db.read() as session:
        rows = (await session.execute(stmt)).all()
    return [
        ManagedSite(site, int(n), actor.can("points.manage", site.id)) for site, n in rows
    ], everything


async def add_site(
    db: Database,
    actor: Actor,
    *,
    slug: str,
    name: str,
    kind: str,
    timezone: str,
    municipality: str = "",
    contact: str = "",
    now: datetime,
) -> Site:
    """A new site, from the admin's form: errors by field, the event in the same transaction."""
    actor.require("sites.manage")
    errors: dict[str, str] = {}
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        errors["slug"] = MSG_SLUG
    name = _check_name(errors, name)
    if kind not in SITE_KINDS:
        errors["kind"] = MSG_KIND
    timezone = _check_timezone(errors, timezone)
    municipality = _check_text(errors, "municipality", municipality)
    contact = _check_text(errors, "contact", contact)
    if errors:
        raise SiteInvalid(errors)
    site = Site(
        slug=slug,
        name=name,
        kind=kind,
        municipality=municipality,
        contact=contact,
        timezone=timezone,
        is_active=True,
        created_at=now,
    )
    try:
        async with db.write() as session:
            session.add(site)
            await session.flush()
            await audit.record(
                session,
                actor,
                "site_created",
                at=now,
                site_id=site.id,
                object_type="site",
                object_id=site.id,
                details={"slug": slug, "name": name, "kind": kind, "timezone": timezone},
            )
    except IntegrityError:
        raise SiteInvalid({"slug": MSG_SLUG_TAKEN}) from None
    return site


async def change_site(
    db: Database,
    actor: Actor,
    slug: str,
    *,
    name: str,
    municipality: str,
    contact: str,
    active: bool | None,
    now: datetime,
    usual_arrival_time: str | None = None,
    usual_departure_time: str | None = None,
) -> dict[str, Any]:
    """Rename a site, change its notice details, or disable it (its QR codes stop working).

    The usual arrival and departure hours ("14:00"; None leaves them) are what an imported
    date without a time takes.
    """
    actor.require("sites.manage")
    errors: dict[str, str] = {}
    name = _check_name(errors, name)
    municipality = _check_text(errors, "municipality", municipality)
    contact = _check_text(errors, "contact", contact)
    hours = {
        field: _check_hour(errors, field, value)
        for field, value in (
            ("usual_arrival_time", usual_arrival_time),
            ("usual_departure_time", usual_departure_time),
        )
        if value is not None
    }
    if active is None:
        errors["active"] = MSG_ACTIVE
    async with db.write() as session:
        site = await session.scalar(select(Site).where(Site.slug == slug))
        if site is None:
            raise NotFound(slug)
        if errors:
            raise SiteInvalid(errors)
        wanted: dict[str, Any] = {
            "name": name,
            "municipality": municipality,
            "contact": contact,
            "is_active": active,
            **hours,
        }
        changes = await apply_site_changes(session, actor, site, wanted, now=now)
    forget_cached_points()
    return changes


async def apply_site_changes(
    session: AsyncSession, actor: Actor, site: Site, wanted: Mapping[str, Any], *, now: datetime
) -> dict[str, dict[str, Any]]:
    """Set the site's settings to the wanted values and record those that changed in one
    `site_changed` event; the changes (field → before/after)."""
    changes = {
        name: {"before": getattr(site, name), "after": value}
        for name, value in wanted.items()
        if getattr(site, name) != value
    }
    for name, change in changes.items():
        setattr(site, name, change["after"])
    await record_site_changes(session, actor, site, changes, now=now)
    return changes


async def record_site_changes(
    session: AsyncSession,
    actor: Actor,
    site: Site,
    changes: Mapping[str, Mapping[str, Any]],
    *,
    now: datetime,
) -> None:
    """One `site_changed` event for a site's settings that changed (field → before/after);
    nothing when nothing changed."""
    if changes:
        await audit.record(
            session,
            actor,
            "site_changed",
            at=now,
            site_id=site.id,
            object_type="site",
            object_id=site.id,
            details={"slug": site.slug, "changes": dict(changes)},
        )


async def site_points(db: Database, actor: Actor, site: Site) -> list[CheckinPoint]:
    """The check-in points of a site, disabled ones included, by name."""
    actor.require("points.manage", site.id)
    async with db.read() as session:
        return list(
            await session.scalars(
                select(CheckinPoint)
                .where(CheckinPoint.site_id == site.id)
                .order_by(CheckinPoint.name, CheckinPoint.id)
            )
        )


async def point_for(db: Database, actor: Actor, point_id: int) -> CheckinPoint:
    """One point with its site, if the actor manages points there (else NotFound)."""
    if not actor.can("points.manage"):
        raise AccessDenied("points.manage")
    async with db.read() as session:
        point = await session.scalar(
            select(CheckinPoint)
            .where(CheckinPoint.id == point_id)
            .options(joinedload(CheckinPoint.site))
        )
    if point is None or not actor.can("points.manage", point.site_id):
        raise NotFound(str(point_id))
    return point


async def create_point(
    db: Database, actor: Actor, site: Site, *, name: str, kiosk_mode: bool, now: datetime
) -> CheckinPoint:
    """A new check-in point (a new QR code) on a site the actor manages."""
    actor.require("points.manage", site.id)
    errors: dict[str, str] = {}
    name = _check_name(errors, name)
    if errors:
        raise SiteInvalid(errors)
    point = CheckinPoint(
        site_id=site.id,
        name=name,
        token=new_point_token(),
        kiosk_mode=kiosk_mode,
        is_active=True,
        created_at=now,
    )
    try:
        async with db.write() as session:
            session.add(point)
            await session.flush()
            await audit.record(
                session,
                actor,
                "point_created",
                at=now,
                site_id=site.id,
                object_type="point",
                object_id=point.id,
                details={"name": name, "kiosk_mode": kiosk_mode},
            )
    except IntegrityError:
        raise SiteInvalid({"name": MSG_POINT_TAKEN}) from None
    return point


async def change_point(
    db: Database,
    actor: Actor,
    point_id: int,
    *,
    name: str,
    kiosk_mode: bool,
    active: bool | None,
    now: datetime,
) -> dict[str, Any]:
    """Rename a point, switch its kiosk mode, disable or enable it; returns what changed."""
    point = await point_for(db, actor, point_id)
    errors: dict[str, str] = {}
    name = _check_name(errors, name)
    if active is None:
        errors["active"] = MSG_ACTIVE
    if errors:
        raise SiteInvalid(errors)
    wanted: dict[str, Any] = {"name": name, "kiosk_mode": kiosk_mode, "is_active": active}
    try:
        async with db.write() as session:
            current = await session.get(CheckinPoint, point.id)
            if current is None:
                raise NotFound(str(point_id))
            changes = {
                field: {"before": getattr(current, field), "after": value}
                for field, value in wanted.items()
                if getattr(current, field) != value
            }
            for field, change in changes.items():
                setattr(current, field, change["after"])
            if changes:
                await session.flush()
                await audit.record(
                    session,
                    actor,
                    "point_changed",
                    at=now,
                    site_id=point.site_id,
                    object_type="point",
                    object_id=point.id,
                    details={"changes": changes},
                )
    except IntegrityError:
        raise SiteInvalid({"name": MSG_POINT_TAKEN}) from None
    forget_cached_points()
    return changes


async def rotate(db: Database, actor: Actor, point_id: int, *, now: datetime) -> CheckinPoint:
    """A new token for a point: its old QR code and posters stop working at once."""
    point = await point_for(db, actor, point_id)
    async with db.write() as session:
        current = await session.get(CheckinPoint, point.id)
        if current is None:
            raise NotFound(str(point_id))
        current.token = new_point_token()
        current.rotated_at = now
        await audit.record(
            session,
            actor,
            "point_rotated",
            at=now,
            site_id=point.site_id,
            object_type="point",
            object_id=point.id,
            details={"name": current.name},
        )
    forget_cached_points()
    point.token, point.rotated_at = current.token, current.rotated_at
    return point
