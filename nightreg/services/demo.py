"""Demo data for `nightreg serve --demo`: a marina, a business park, their points, an admin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from nightreg.db import Database
from nightreg.models import CheckinPoint, SharingAgreement, Site, User, Visit
from nightreg.services import agreements, scan, sites, users
from nightreg.services.access import CLI
from nightreg.services.checkin import check_in
from nightreg.validation import validate_checkin

DEMO_ADMIN = "admin@demo.nachtregister.nl"
DEMO_AGREEMENT = "DEMO-RIEC-NH-2026"


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


# A few guests so that "tonight" and the register have something to show: (kind, hours since
# arrival, hours until the expected departure, fields). One of them is overdue.
_DEMO_VISITS: dict[str, tuple[tuple[str, int, int, dict[str, str]], ...]] = {
    "marina": (
        (
            "vessel",
            26,
            20,
            {
                "guest_name": "Anneke Visser",
                "residence": "Enkhuizen",
                "vessel_name": "Zwerver",
                "berth": "A12",
                "registration": "NL-ENK-1204",
                "vessel_type": "sail",
                "length_m": "9.5",
                "flag": "NL",
            },
        ),
        (
            "vessel",
            3,
            40,
            {
                "guest_name": "Klaus Becker",
                "residence": "Emden",
                "vessel_name": "Möwe II",
                "berth": "A9",
                "mmsi": "211234560",
                "vessel_type": "motor",
                "flag": "DE",
                "country": "DE",
            },
        ),
        (
            "vessel",
            30,
            -2,
            {
                "guest_name": "Pieter Bakker",
                "residence": "Texel",
                "vessel_name": "Tesselaar",
                "berth": "B3",
                "registration": "TX-88",
                "vessel_type": "rib",
            },
        ),
        (
            "vehicle",
            2,
            14,
            {
                "guest_name": "Sanne de Groot",
                "residence": "Alkmaar",
                "plate": "G-123-BB",
                "plate_country": "NL",
                "vehicle_type": "car",
            },
        ),
    ),
    "business_park": (
        (
            "vehicle",
            5,
            8,
            {
                "guest_name": "Mohamed el Amrani",
                "residence": "Zaandam",
                "plate": "VX-481-K",
                "plate_country": "NL",
                "vehicle_type": "van",
                "company": "Koeltransport Noord",
                "unit": "Hal 4",
            },
        ),
        (
            "stay",
            20,
            30,
            {
                "guest_name": "Tomasz Nowak",
                "residence": "Haarlem",
                "unit": "Unit 12",
                "company": "Bouwbedrijf Kust",
            },
        ),
    ),
}


async def _demo_visits(db: Database, spec: _DemoSite, now: datetime) -> None:
    site = await sites.get_site(db, spec.slug)
    tz = ZoneInfo(site.timezone)
    for kind, hours_ago, hours_left, fields in _DEMO_VISITS[spec.kind]:
        arrived = now - timedelta(hours=hours_ago)
        form = {
            **fields,
            "persons": "2",
            "arrived_at": arrived.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "expected_departure_at": (now + timedelta(hours=hours_left))
            .astimezone(tz)
            .strftime("%Y-%m-%d %H:%M"),
        }
        # Validated like any check-in; the past arrival is checked against its own moment.
        data, errors = validate_checkin(
            form, kind=kind, allowed_kinds=site.visit_kinds, now=arrived, tz=tz
        )
        if data is None:  # a demo row that does not validate is a bug in this table
            raise ValueError(f"demo visit {fields['guest_name']}: {errors}")
        await check_in(
            db,
            site_id=site.id,
            point_id=None,
            data=data,
            now=arrived,
            secret_key=secrets.token_hex(16),
            source="staff",
        )


# Last summer's guests at the marina: their year is up, so the purge that runs at the first
# start folds them into the tourist-tax figures and leaves a receipt to read.
_LAST_SEASON = (
    ("Karel Hoekstra", "Lemmer", "Friesche Vrouw", "LM-12", 3, 2),
    ("Ineke Smit", "Volendam", "Palingboer", "VD-7", 2, 1),
    ("Bram Dekker", "Medemblik", "Windekind", "MB-301", 4, 3),
)


async def _demo_last_season(db: Database, now: datetime) -> None:
    site = await sites.get_site(db, "jachthaven-zeemeeuw")
    tz = ZoneInfo(site.timezone)
    for n, (name, residence, vessel, registration, persons, nights) in enumerate(_LAST_SEASON):
        arrived = (now - timedelta(days=380 - 2 * n)).astimezone(tz).replace(hour=16, minute=30)
        leaves = arrived + timedelta(days=nights, hours=-5)
        form = {
            "guest_name": name, "residence": residence, "vessel_name": vessel,
            "registration": registration, "vessel_type": "sail", "persons": str(persons),
            "arrived_at": arrived.strftime("%Y-%m-%d %H:%M"),
            "expected_departure_at": leaves.strftime("%Y-%m-%d %H:%M"),
        }  # fmt: skip
        data, errors = validate_checkin(
            form, kind="vessel", allowed_kinds=site.visit_kinds, now=arrived, tz=tz
        )
        if data is None:
            raise ValueError(f"demo visit {name}: {errors}")
        done = await check_in(
            db, site_id=site.id, point_id=None, data=data, now=arrived,
            secret_key=secrets.token_hex(16), source="staff",
        )  # fmt: skip
        async with db.write() as session:  # they left on the morning they said they would
            await session.execute(
                update(Visit).where(Visit.id == done.visit.id).values(departed_at=leaves)
            )


async def _demo_night_trip(db: Database, now: datetime) -> None:
    """A boat that came in at night and left before dawn: the scan's first flag to look at."""
    site = await sites.get_site(db, "jachthaven-zeemeeuw")
    tz = ZoneInfo(site.timezone)
    night = (now - timedelta(days=3)).astimezone(tz).replace(hour=23, minute=40, second=0)
    fields = {
        "guest_name": "Ruud Schaduw",
        "residence": "Den Oever",
        "vessel_name": "Nachtegaal",
        "registration": "NL-DO-666",
        "vessel_type": "speedboat",
        "persons": "3",
        "arrived_at": night.strftime("%Y-%m-%d %H:%M"),
        "expected_departure_at": (night + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M"),
    }
    data, errors = validate_checkin(
        fields, kind="vessel", allowed_kinds=site.visit_kinds, now=night, tz=tz
    )
    if data is None:
        raise ValueError(f"demo night trip: {errors}")
    result = await check_in(
        db, site_id=site.id, point_id=None, data=data, now=night,
        secret_key=secrets.token_hex(16), source="staff",
    )  # fmt: skip
    left = (night + timedelta(hours=4, minutes=30)).astimezone(UTC)
    async with db.write() as session:
        await session.execute(
            update(Visit)
            .where(Visit.id == result.visit.id)
            .values(departed_at=left, updated_at=left)
        )


# What the demo hub may receive: enough to act on a boat or a van, and no names or places of
# residence (an agreement that shares the minimum is the example worth copying).
_DEMO_AGREEMENT_FIELDS = (
    "score", "site", "arrived_at", "departed_at", "vessel_name", "registration", "mmsi",
    "vessel_type", "plate", "vehicle_type", "persons",
)  # fmt: skip


async def _demo_agreement(db: Database, now: datetime) -> None:
    """A sharing agreement in force, so that a demo flag can be forwarded and seen to leave."""
    async with db.read() as session:
        made = await session.scalar(
            select(SharingAgreement.id).where(SharingAgreement.reference == DEMO_AGREEMENT)
        )
    if made is not None:
        return
    tz = ZoneInfo("Europe/Amsterdam")
    await agreements.create(
        db,
        CLI,
        {
            "name": "Demo: convenant gegevensdeling RIEC Noord-Holland",
            "recipient": "RIEC Noord-Holland (Drugshub)",
            "reference": DEMO_AGREEMENT,
            "valid_from": now.astimezone(tz).date().isoformat(),
            "valid_until": "",
            "rules": list(agreements.forwardable_rules()),
            "fields": list(_DEMO_AGREEMENT_FIELDS),
            "auto_rules": ["watchlist_hit"],
            "keep_days": "180",
        },
        now=now,
        tz=tz,
    )


async def seed_demo(db: Database, now: datetime) -> DemoLogin:
    """Create what is missing of the demo; the admin gets a fresh password each time."""
    await _demo_agreement(db, now)
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
            await _demo_visits(db, spec, now)
            if spec.kind == "marina":
                await _demo_last_season(db, now)
                await _demo_night_trip(db, now)
                # The queue has something to review from the first minute.
                await scan.run_scan(db, now=now, full=True)
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
