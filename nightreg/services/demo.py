"""Demo data for `nightreg serve --demo`: a marina, a business park, their points, an admin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import CheckinPoint, Site, User
from nightreg.services import sites, users

DEMO_ADMIN = "admin@demo.nachtregister.nl"


@dataclass(frozen=True)
class _DemoSite:
    slug: str
    name: str
    kind: str
    municipality: str
    contact: str
    points: tuple[tuple[str, bool], ...]  # (name, kiosk mode)


_DEMO_SITES = (
    _DemoSite(
        slug="jachthaven-zeemeeuw",
        name="Jachthaven De Zeemeeuw",
        kind="marina",
        municipality="Den Helder",
        contact="havenmeester@zeemeeuw.example, 0223 000 000",
        points=(("Havenkantoor", False), ("Steiger B", False), ("Kiosk havenkantoor", True)),
    ),
    _DemoSite(
        slug="bedrijvenpark-westpoort",
        name="Bedrijvenpark Westpoort",
        kind="business_park",
        municipality="Amsterdam",
        contact="parkmanagement@westpoort.example",
        points=(("Poort Noord", False), ("Receptie", True)),
    ),
)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    points: list[tuple[str, str, str]]  # (site name, point name, token)


async def seed_demo(db: Database, now: datetime) -> DemoLogin:
    """Create what is missing of the demo; the admin gets a fresh password each time."""
    for spec in _DEMO_SITES:
        async with db.read() as session:
            exists = await session.scalar(select(Site.id).where(Site.slug == spec.slug))
        if exists is None:
            await sites.create_site(
                db,
                slug=spec.slug,
                name=spec.name,
                kind=spec.kind,
                municipality=spec.municipality,
                contact=spec.contact,
                now=now,
            )
            for name, kiosk_mode in spec.points:
                await sites.add_point(
                    db, site_slug=spec.slug, name=name, kiosk_mode=kiosk_mode, now=now
                )
    password = secrets.token_urlsafe(12)
    async with db.read() as session:
        admin = await session.scalar(select(User.id).where(User.email == DEMO_ADMIN))
    if admin is None:
        await users.add_user(
            db,
            email=DEMO_ADMIN,
            password=password,
            role="admin",
            site_slugs=[s.slug for s in _DEMO_SITES],
            now=now,
        )
    else:
        await users.set_password(db, DEMO_ADMIN, password)
    slugs = [s.slug for s in _DEMO_SITES]
    async with db.read() as session:
        rows = (
            await session.execute(
                select(Site.name, CheckinPoint.name, CheckinPoint.token)
                .join(CheckinPoint, CheckinPoint.site_id == Site.id)
                .where(Site.slug.in_(slugs), CheckinPoint.is_active.is_(True))
                .order_by(Site.id, CheckinPoint.id)
            )
        ).all()
    return DemoLogin(email=DEMO_ADMIN, password=password, points=[(r[0], r[1], r[2]) for r in rows])
