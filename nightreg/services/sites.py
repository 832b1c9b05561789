"""Sites and their check-in points: create, look up by QR token, rotate."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, fields
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from nightreg.db import Database
from nightreg.models import SITE_KINDS, CheckinPoint, Site
from nightreg.security import new_point_token
from nightreg.services.access import GLOBAL_PERMISSIONS, AccessDenied, Actor, NotFound

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
    site_retention_days: int

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
    if not SLUG_RE.match(slug):
        raise SiteError(f"slug {slug!r}: use lower-case letters, digits and dashes")
    if kind not in SITE_KINDS:
        raise SiteError(f"kind {kind!r}: use one of {', '.join(SITE_KINDS)}")
    if not name.strip():
        raise SiteError("name: must not be empty")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SiteError(f"timezone {timezone!r}: unknown time zone") from None
    site = Site(
        slug=slug,
        name=name.strip(),
        kind=kind,
        municipality=municipality.strip(),
        contact=contact.strip(),
        timezone=timezone,
        retention_days=365,
        is_active=True,
        created_at=now,
    )
    try:
        async with db.write() as session:
            session.add(site)
    except IntegrityError:
        raise SiteError(f"a site with slug {slug!r} exists already") from None
    return site


async def get_site(db: Database, slug: str) -> Site:
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == slug))
    if site is None:
        raise SiteError(f"no site with slug {slug!r}")
    return site


async def add_point(
    db: Database, *, site_slug: str, name: str, now: datetime, kiosk_mode: bool = False
) -> CheckinPoint:
    site = await get_site(db, site_slug)
    if not name.strip():
        raise SiteError("point name: must not be empty")
    point = CheckinPoint(
        site_id=site.id,
        name=name.strip(),
        token=new_point_token(),
        kiosk_mode=kiosk_mode,
        is_active=True,
        created_at=now,
    )
    try:
        async with db.write() as session:
            session.add(point)
    except IntegrityError:
        raise SiteError(f"site {site_slug!r} has a point named {name!r} already") from None
    return point


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
    """Give the point a new token: the old URL and every poster showing it stop working at once."""
    point = await get_point(db, site_slug, name)
    async with db.write() as session:
        point = await session.merge(point)
        point.token = new_point_token()
        point.rotated_at = now
    forget_cached_points()
    return point


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
        Site.retention_days,
    )
    .join(Site, CheckinPoint.site_id == Site.id)
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


async def site_for(db: Database, actor: Actor, slug: str, permission: str) -> Site:
    """One site by slug, if `actor` holds `permission` there.

    Raises AccessDenied when the role lacks the permission altogether, and NotFound when the
    site does not exist or is not one of the actor's: a stranger cannot probe for slugs.
    """
    if not actor.can(permission):
        raise AccessDenied(permission)
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == slug))
    if site is None or not actor.can(permission, site.id):
        raise NotFound(slug)
    return site
