"""Scan benchmark: the rules over a million visits with planted patterns, full and incremental.

    python bench/scan.py --db sqlite|postgresql [--visits 1000000] [--sites 200]
                         [--plants 40] [--new-visits 10000] [--ais-movements 10000]
                         [--sightings 100000]
                         [--pg-url URL] [--keep]

Prepares a fresh database like bench/register.py (an SQLite file in a temporary directory, or
the `public` schema of the PostgreSQL database `nightreg_bench`, dropped and recreated) and
seeds it with a register that looks like a real one: about 150,000 regular boats, cars and
guests over `--sites` sites (70 % marinas) and two years. Ordinary visits stay at least a night,
arrive and leave between 08:00 and 20:00 local time and mostly at their home site, so that
ordinary traffic raises few flags, as in a real harbour. Into that it plants `--plants`
instances of every pattern the rules look for (night movements, a RIB at night, short stays,
site hopping, a renamed boat, a van meeting a boat, night traffic at a unit, overnight stays
in a unit, overdue visits and an arrival surge), each with a known set of visits.

Phases:
1. full scan (`scan.run_scan(full=True)` and `scan.run_overdue`), timed;
2. the same full scan again: it must create nothing (idempotent), timed;
3. `--new-visits` new visits (with new plants among them), `--ais-movements` AIS movements
   (entries and exits: most matched to new boats' visits, some a night trip the register does
   not show, the rest of MMSIs with no visit) and `--sightings` gate camera sightings at the
   business parks (issue 19), then an incremental scan, timed;
4. the check: every planted pattern must be in a flag of its rule holding its visits.

Targets (from the issue): full scan <= 60 s, incremental scan after 10,000 new visits <= 3 s
(<= 5 s with 100,000 sightings added too),
every planted pattern found. The exit status is 0 even when targets are missed, 1 when a
planted pattern is not found, 2 when setup fails.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], the app is one up
    sys.path.insert(0, str(REPO))

from sqlalchemy import Table, func, insert, select, text  # noqa: E402
from sqlalchemy.dialects import postgresql, sqlite  # noqa: E402

from bench.checkin import DEFAULT_PG_URL, SetupError, fresh_database  # noqa: E402
from bench.register import _reference  # noqa: E402
from nightreg.db import Database, make_engine  # noqa: E402
from nightreg.models import AisMovement, Flag, Sighting, Site, Visit, flag_visit  # noqa: E402
from nightreg.services import audit, scan  # noqa: E402
from nightreg.validation import search_key, subject_key  # noqa: E402

# The scan writes keyed audit events; a bench without an app names the key itself.
audit.use_keyring(audit.Keyring.of(os.environ.get("NIGHTREG_SECRET_KEY") or "bench-" + "k" * 40))

TZ = ZoneInfo("Europe/Amsterdam")
HISTORY_DAYS = 730
BATCH = 10_000
TARGET_FULL_S = 60.0
TARGET_INCREMENTAL_S = 3.0
# With the gate cameras' sightings added before it (issue 19).
TARGET_INCREMENTAL_WITH_SOURCES_S = 5.0

_visit = cast(Table, Visit.__table__)
_ais = cast(Table, AisMovement.__table__)
_site = cast(Table, Site.__table__)
_sighting = cast(Table, Sighting.__table__)

FIRST = ("Jan", "Piet", "Anna", "Sanne", "Kees", "Lotte", "Willem", "Eva", "Bram", "Fenna")
LAST = ("de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Bos", "Mulder", "Dekker")
BOATS = ("Zeemeeuw", "Albatros", "Noordster", "Waterlelie", "Avontuur", "Zwerver", "Meander")
LETTERS = "BDFGHJKLNPRSTVXZ"


@dataclass
class Subject:
    n: int
    kind: str
    home: int  # site index
    guest: str
    residence: str
    registration: str | None = None
    mmsi: str | None = None
    vessel_name: str | None = None
    vessel_type: str | None = None
    plate: str | None = None
    unit: str | None = None


@dataclass
class Plant:
    rule: str
    references: list[str] = field(default_factory=list)


@dataclass
class World:
    now: datetime
    site_ids: list[int]
    site_kinds: list[str]
    plants: list[Plant] = field(default_factory=list)
    counter: int = 0


def local(day: datetime, hour: int, minute: int = 0) -> datetime:
    """`day`'s local date at hour:minute in Amsterdam, as UTC."""
    wall = day.astimezone(TZ)
    return datetime(wall.year, wall.month, wall.day, hour, minute, tzinfo=TZ).astimezone(UTC)


class Maker:
    def __init__(self, world: World, seed: int) -> None:
        self.world = world
        self.rng = random.Random(seed)
        self.subjects: list[Subject] = []

    def subject(self, kind: str, home: int) -> Subject:
        rng = self.rng
        n = len(self.subjects) + 1
        s = Subject(
            n=n,
            kind=kind,
            home=home,
            guest=f"{rng.choice(FIRST)} {rng.choice(LAST)} {n}",
            residence=rng.choice(("Hoorn", "Enkhuizen", "Edam", "Volendam", "Den Helder")),
        )
        if kind == "vessel":
            s.registration = f"NL-{n:06d}-{rng.choice(LETTERS)}{rng.choice(LETTERS)}"
            s.mmsi = f"244{n:06d}" if rng.random() < 0.3 else None
            s.vessel_name = f"{rng.choice(BOATS)} {n}"
            s.vessel_type = rng.choice(("sail", "sail", "motor", "motor", "fishing"))
        elif kind == "vehicle":
            s.plate = f"{n % 90 + 10}-{LETTERS[n % 16]}{LETTERS[n // 16 % 16]}-{n // 256:04d}"
        if kind in ("vehicle", "stay") and self.world.site_kinds[home] == "business_park":
            s.unit = f"Unit {rng.randint(1, 60)}"
        self.subjects.append(s)
        return s

    def row(
        self,
        s: Subject,
        site: int,
        arrived: datetime,
        departed: datetime | None,
        *,
        expected: datetime | None = None,
        updated: datetime | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        self.world.counter += 1
        n = self.world.counter
        values = {
            "registration": s.registration,
            "mmsi": s.mmsi,
            "vessel_name": s.vessel_name,
            "vessel_type": s.vessel_type,
            "plate": s.plate,
            "unit": s.unit,
        }
        values.update(overrides)
        digest = hashlib.sha256(b"scan-bench-%d" % n).hexdigest()
        return {
            "reference": _reference(n),
            "site_id": self.world.site_ids[site],
            "point_id": None,
            "kind": s.kind,
            "source": "staff",
            "arrived_at": arrived,
            "expected_departure_at": expected or departed or arrived + timedelta(days=1),
            "departed_at": departed,
            "persons": 2,
            "guest_name": s.guest,
            "residence": s.residence,
            "country": "NL",
            "phone": None,
            "email": None,
            "id_document_type": None,
            "berth": None,
            "length_m": None,
            "flag": "NL" if s.kind == "vessel" else None,
            "last_port": None,
            "next_port": None,
            "plate_country": "NL" if s.kind == "vehicle" else None,
            "vehicle_type": "van" if s.kind == "vehicle" else None,
            "company": None,
            "notes": None,
            "subject_key": subject_key(
                s.kind,
                registration=values["registration"],
                mmsi=values["mmsi"],
                plate=values["plate"],
                guest_name=s.guest,
                residence=s.residence,
            ),
            "search_key": search_key(
                s.guest,
                values["vessel_name"],
                values["registration"],
                values["mmsi"],
                values["plate"],
            ),
            "private_token_hash": digest,
            "idempotency_key": None,
            "request_fingerprint": None,
            "created_at": arrived,
            "updated_at": updated or departed or arrived,
            **values,
        }


def ordinary_visits(
    maker: Maker, count: int, start: datetime, days: int = HISTORY_DAYS - 3
) -> Iterator[dict[str, Any]]:
    """Overnight stays by day: arrive and leave between 08:00 and 20:00, mostly at home."""
    world, rng = maker.world, maker.rng
    sites = len(world.site_ids)
    pool: list[Subject] = []
    for i in range(max(1, count // 7)):
        home = i % sites
        marina = world.site_kinds[home] == "marina"
        kinds = (
            ("vessel", "vessel", "vessel", "vehicle") if marina else ("vehicle",) * 19 + ("stay",)
        )
        pool.append(maker.subject(rng.choice(kinds), home))
    span = days
    for i in range(count):
        s = pool[rng.randrange(len(pool))]
        site = s.home
        if s.kind == "vessel" and rng.random() < 0.03:
            # A touring boat now and then, at another marina of the region.
            site = rng.randrange(sites)
            if world.site_kinds[site] != "marina":
                site = s.home
        day = start + timedelta(days=span * i / count)
        arrived = local(day, rng.randint(8, 19), rng.randint(0, 59))
        # People who sleep in a unit are one-offs in ordinary traffic: one night.
        nights = 1 if s.kind == "stay" else rng.choice((1, 1, 1, 2, 2, 3, 7))
        departed: datetime | None = local(
            arrived + timedelta(days=nights), rng.randint(8, 19), rng.randint(0, 59)
        )
        expected = departed
        if departed is not None and departed > world.now - timedelta(hours=1):
            departed = None  # still here
        yield maker.row(s, site, arrived, departed, expected=expected)


def planted(maker: Maker, count: int, base: datetime, tag: str) -> Iterator[dict[str, Any]]:
    """`count` instances of every pattern, starting around `base`; recorded in world.plants."""
    world, rng = maker.world, maker.rng

    def at(day: datetime, days: int, hour: int, minute: int = 0) -> datetime:
        return local(day + timedelta(days=days), hour, minute)

    marinas = [i for i, k in enumerate(world.site_kinds) if k == "marina"]
    parks = [i for i, k in enumerate(world.site_kinds) if k == "business_park"]

    def plant(rule: str, rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        world.plants.append(Plant(f"{rule}", [r["reference"] for r in rows]))
        yield from rows

    for i in range(count):
        day = base + timedelta(days=rng.randint(0, 20), hours=i % 5)
        m = marinas[(i * 7 + len(tag)) % len(marinas)]
        p = parks[(i * 3 + len(tag)) % len(parks)]
        boat = maker.subject("vessel", m)
        yield from plant(
            "night_movement",
            [
                maker.row(boat, m, local(day, 23, 30), local(day + timedelta(days=1), 10)),
                maker.row(boat, m, at(day, 5, 12), at(day, 6, 3, 15)),
            ],
        )  # fmt: skip
        rib = maker.subject("vessel", m)
        rib.vessel_type = "rib"
        yield from plant(
            "fast_craft_night",
            [maker.row(rib, m, local(day, 2, 40), local(day + timedelta(days=1), 11))],
        )
        van = maker.subject("vehicle", m)
        yield from plant(
            "short_stay_repeat",
            [
                maker.row(van, m, at(day, d, 10), at(day, d, 13)) for d in (0, 6, 12)
            ],
        )  # fmt: skip
        hopper = maker.subject("vessel", m)
        others = [marinas[(marinas.index(m) + k) % len(marinas)] for k in (0, 1, 2)]
        yield from plant(
            "site_hopping",
            [
                maker.row(hopper, site, at(day, 2 * k, 17), at(day, 2 * k + 1, 9))
                for k, site in enumerate(others)
            ],
        )  # fmt: skip
        renamed = maker.subject("vessel", m)
        yield from plant(
            "identity_change",
            [
                maker.row(renamed, m, local(day, 14), local(day + timedelta(days=2), 11)),
                maker.row(
                    renamed, m, local(day + timedelta(days=40), 14),
                    local(day + timedelta(days=42), 11), vessel_name=f"Nieuwe Naam {renamed.n}",
                ),
            ],
        )  # fmt: skip
        meeting_boat = maker.subject("vessel", m)
        meeting_van = maker.subject("vehicle", m)
        yield from plant(
            "boat_meets_vehicle",
            [
                maker.row(meeting_boat, m, local(day, 23, 20), local(day + timedelta(days=1), 11)),
                maker.row(meeting_van, m, local(day, 23, 35), local(day + timedelta(days=1), 0, 5)),
            ],
        )  # fmt: skip
        unit = f"Hal {tag}{i}"
        callers = [maker.subject("vehicle", p) for _ in range(3)]
        yield from plant(
            "unit_night_traffic",
            [
                maker.row(c, p, at(day, 3 * k, 23, 10), at(day, 3 * k + 1, 1), unit=unit)
                for k, c in enumerate(callers)
            ],
        )  # fmt: skip
        sleeper = maker.subject("stay", p)
        loods = f"Loods {tag}{i}"
        yield from plant(
            "repeat_overnight_unit",
            [
                maker.row(sleeper, p, at(day, 2 * k, 20), at(day, 2 * k + 1, 7), unit=loods)
                for k in range(3)
            ],
        )  # fmt: skip
    # Overdue: present, expected two days ago.
    for i in range(count):
        m = marinas[i % len(marinas)]
        late = maker.subject("vessel", m)
        arrived = world.now - timedelta(days=5, hours=i % 7)
        yield from plant(
            "overdue",
            [maker.row(late, m, arrived, None, expected=world.now - timedelta(days=2))],
        )
    # One arrival surge per batch of plants: 40 arrivals at one marina on one day.
    m = marinas[len(tag) % len(marinas)]
    surge_day = base + timedelta(days=25)
    rows = []
    for k in range(40):
        guest = maker.subject("vessel", m)
        arrived = local(surge_day, 9 + k % 10, k)
        rows.append(maker.row(guest, m, arrived, arrived + timedelta(days=1)))
    yield from plant("arrival_surge", rows)


async def insert_rows(url: str, rows: Iterator[dict[str, Any]]) -> int:
    engine = make_engine(url)
    total = 0
    try:
        while True:
            batch = [row for _, row in zip(range(BATCH), rows, strict=False)]
            if not batch:
                break
            async with engine.begin() as conn:
                await conn.execute(insert(_visit), batch)
            total += len(batch)
            if total % 100_000 < BATCH:
                print(f"  inserted {total:>9,} visits", flush=True)
    finally:
        await engine.dispose()
    return total


async def seed_sites(url: str, sites: int, now: datetime) -> tuple[list[int], list[str]]:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(_site),
                [
                    {
                        "slug": f"site-{i + 1:03d}",
                        "name": f"Scan bench {i + 1}",
                        "kind": "marina" if i % 10 < 7 else "business_park",
                        "municipality": "Hoorn",
                        "timezone": "Europe/Amsterdam",
                        "contact": "",
                        "rule_thresholds": {},
                        "is_active": True,
                        "created_at": now - timedelta(days=HISTORY_DAYS + 1),
                    }
                    for i in range(sites)
                ],
            )
            result = (
                await conn.execute(select(_site.c.id, _site.c.kind).order_by(_site.c.id))
            ).all()
    finally:
        await engine.dispose()
    return [r.id for r in result], [r.kind for r in result]


async def add_ais_movements(
    db: Database, count: int, at: datetime, rng: random.Random, trips: int = 50
) -> int:
    """About `count` AIS movements written at `at`, as a harbour's receiver would give them:
    the new boats' entries at their arrival and exits at their departure (the register shows
    those; nothing to flag), `trips` of them also a night trip out and back during the stay
    (which night_movement counts), and a fifth of MMSIs with no visit."""
    if count <= 0:
        return 0
    async with db.read() as session:
        boats = (
            await session.execute(
                select(Visit.id, Visit.site_id, Visit.mmsi, Visit.arrived_at, Visit.departed_at)
                .where(Visit.updated_at == at, Visit.kind == "vessel")
                .order_by(Visit.id)
            )
        ).all()
    rows: list[dict[str, Any]] = []

    def add(site_id: int, mmsi: str, direction: str, when: datetime, visit_id: int | None) -> None:
        rows.append({"site_id": site_id, "mmsi": mmsi, "direction": direction, "at": when,
                     "visit_id": visit_id, "recorded_at": at})  # fmt: skip

    for n, (visit_id, site_id, mmsi, arrived, departed) in enumerate(boats):
        if len(rows) + 4 > count * 0.8:
            break
        mmsi = mmsi or f"{rng.randrange(10**9):09d}"
        add(site_id, mmsi, "in", arrived - timedelta(minutes=10), visit_id)
        if departed is not None:
            add(site_id, mmsi, "out", departed + timedelta(minutes=10), visit_id)
        if n < trips:
            night = local(arrived, 0) + timedelta(days=1)
            add(site_id, mmsi, "out", night + timedelta(minutes=90), visit_id)
            add(site_id, mmsi, "in", night + timedelta(minutes=200), visit_id)
    site_ids = sorted({r[1] for r in boats}) or [1]
    while len(rows) < count:
        add(rng.choice(site_ids), f"{rng.randrange(10**9):09d}", rng.choice(("in", "out")),
            at - timedelta(minutes=rng.randrange(1, 20_000)), None)  # fmt: skip
    # Two visits of one boat may share a night: the same movement is written once.
    dialect: Any = sqlite if db.is_sqlite else postgresql
    written = 0
    async with db.write() as session:
        for start in range(0, len(rows), 1000):
            result = await session.execute(
                dialect.insert(_ais)
                .values(rows[start : start + 1000])
                .on_conflict_do_nothing()
                .returning(_ais.c.id)
            )
            written += len(result.all())
    return written


async def insert_sightings(
    url: str, count: int, now: datetime, received: datetime, seed: int
) -> int:
    """`count` gate camera sightings at the business parks, received at `received`: a busy
    day's reads since the last scan, seen over the last 24 hours, by day (07:00 to 20:00
    UTC) but for one in fifty at night; half of plates the parks' vehicle visits have, half
    of strangers."""
    if count <= 0:
        return 0
    rng = random.Random(seed)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            parks = list(
                await conn.scalars(select(_site.c.id).where(_site.c.kind == "business_park"))
            )
            known = (
                await conn.execute(
                    select(_visit.c.site_id, _visit.c.subject_key)
                    .where(_visit.c.kind == "vehicle", _visit.c.site_id.in_(parks))
                    .distinct()
                    .limit(20_000)
                )
            ).all()
        day = now.replace(hour=0, minute=0, second=0) - timedelta(days=1)

        def seen() -> datetime:
            if rng.random() < 0.02:  # 22:00 to 04:00 UTC
                return day + timedelta(hours=22, seconds=rng.randrange(6 * 3600))
            at = day + timedelta(hours=7, seconds=rng.randrange(13 * 3600))
            return at if at <= now else at - timedelta(days=1)

        total = 0
        while total < count:
            rows = []
            for i in range(total, min(count, total + BATCH)):
                if known and i % 2 == 0:
                    site_id, key = known[rng.randrange(len(known))]
                else:
                    site_id, key = rng.choice(parks), f"plate:ZZ{i:07d}"
                rows.append({
                    "site_id": site_id, "camera": f"gate-{i % 3}",
                    "seen_at": seen() + timedelta(microseconds=i % 1_000_000),
                    "direction": "in" if i % 2 else "out", "plate": key[6:],
                    "subject_key": key, "received_at": received,
                })  # fmt: skip
            async with engine.begin() as conn:
                await conn.execute(insert(_sighting), rows)
            total += len(rows)
    finally:
        await engine.dispose()
    return total


async def analyze(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def check_plants(db: Database, plants: list[Plant]) -> dict[str, tuple[int, int]]:
    """Per rule: (planted, found in a flag of that rule holding all its visits)."""
    result: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    async with db.read() as session:
        for plant in plants:
            ids = set(
                (
                    await session.scalars(
                        select(Visit.id).where(Visit.reference.in_(plant.references))
                    )
                ).all()
            )
            flag_ids = (
                await session.execute(
                    select(flag_visit.c.flag_id, func.count())
                    .join(Flag, Flag.id == flag_visit.c.flag_id)
                    .where(Flag.rule == plant.rule, flag_visit.c.visit_id.in_(ids))
                    .group_by(flag_visit.c.flag_id)
                )
            ).all()
            result[plant.rule][0] += 1
            if any(count == len(ids) for _flag, count in flag_ids):
                result[plant.rule][1] += 1
    return {rule: (a, b) for rule, (a, b) in sorted(result.items())}


async def count_flags(db: Database) -> dict[str, int]:
    async with db.read() as session:
        rows = (await session.execute(select(Flag.rule, func.count()).group_by(Flag.rule))).all()
    return dict(sorted(rows))


async def run(url: str, args: argparse.Namespace) -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    site_ids, site_kinds = await seed_sites(url, args.sites, now)
    world = World(now=now, site_ids=site_ids, site_kinds=site_kinds)
    maker = Maker(world, args.seed)
    start = now - timedelta(days=HISTORY_DAYS)
    t0 = time.perf_counter()
    plants_base = now - timedelta(days=200)

    # The plants are generated first (so their count is known), the ordinary visits after.
    rows = list(planted(maker, args.plants, plants_base, "a"))
    planted_rows = len(rows)
    seeded = await insert_rows(url, iter(rows))
    seeded += await insert_rows(url, ordinary_visits(maker, args.visits - planted_rows, start))
    seed_s = time.perf_counter() - t0
    await analyze(url)
    print(f"seeded {seeded:,} visits ({planted_rows:,} planted) in {seed_s:.0f} s", flush=True)

    db = Database(url)
    try:
        t0 = time.perf_counter()
        full = await scan.run_scan(db, now=now, full=True)
        overdue = await scan.run_overdue(db, now=now)
        full_s = time.perf_counter() - t0
        print(f"full scan:        {full_s:6.1f} s  ({full.line()}; {overdue.line()})", flush=True)
        print(f"  phases (s): {full.phases}", flush=True)

        t0 = time.perf_counter()
        again = await scan.run_scan(db, now=now, full=True)
        again_s = time.perf_counter() - t0
        print(f"full scan again:  {again_s:6.1f} s  ({again.line()})", flush=True)
        print(f"  phases (s): {again.phases}", flush=True)

        # New visits: ordinary ones and a new batch of plants, written "now".
        since = now
        later = now + timedelta(minutes=5)
        new_plants_base = now - timedelta(days=30)
        new_rows = list(planted(maker, max(1, args.plants // 4), new_plants_base, "b"))
        new_rows += list(
            ordinary_visits(
                maker, args.new_visits - len(new_rows), now - timedelta(days=40), days=38
            )
        )
        for row in new_rows:
            row["updated_at"] = later
        added = await insert_rows(url, iter(new_rows))
        ais_added = await add_ais_movements(db, args.ais_movements, later, random.Random(args.seed))
        sightings = await insert_sightings(url, args.sightings, now, later, args.seed)
        t0 = time.perf_counter()
        incremental = await scan.run_scan(db, now=later, since=since)
        incremental_s = time.perf_counter() - t0
        await scan.run_overdue(db, now=later)
        print(
            f"incremental scan: {incremental_s:6.2f} s  after {added:,} new visits and "
            f"{ais_added:,} AIS movements and {sightings:,} sightings ({incremental.line()})",
            flush=True,
        )
        print(f"  phases (s): {incremental.phases}", flush=True)
        found = await check_plants(db, world.plants)
        flags = await count_flags(db)
    finally:
        await db.dispose()

    print()
    print(f"conditions: {args.db}, {seeded + added:,} visits over {args.sites} sites and "
          f"{HISTORY_DAYS} days; {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores; scan and database on the same machine")  # fmt: skip
    print(f"{'rule':<24}{'planted':>9}{'found':>7}{'flags':>8}")
    missing = 0
    for rule, (planted_n, found_n) in found.items():
        missing += planted_n - found_n
        print(f"{rule:<24}{planted_n:>9}{found_n:>7}{flags.get(rule, 0):>8}")
    print()
    print(f"full scan        {full_s:6.2f} s   target <= {TARGET_FULL_S:.0f} s   "
          f"{'OK' if full_s <= TARGET_FULL_S else 'MISSED'}")  # fmt: skip
    target = TARGET_INCREMENTAL_WITH_SOURCES_S if sightings else TARGET_INCREMENTAL_S
    print(f"incremental scan {incremental_s:6.2f} s   target <= {target:.0f} s   "
          f"{'OK' if incremental_s <= target else 'MISSED'}"
          f"{f' (with {sightings:,} sightings)' if sightings else ''}")  # fmt: skip
    print(f"idempotent       second full scan created {again.created}, grew {again.grown}   "
          f"{'OK' if again.created == again.grown == 0 else 'MISSED'}")  # fmt: skip
    print(f"planted patterns {'all found' if not missing else f'{missing} NOT FOUND'}")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--visits", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--plants", type=int, default=40, help="instances of each pattern")
    parser.add_argument("--new-visits", type=int, default=10_000)
    parser.add_argument("--ais-movements", type=int, default=10_000)
    parser.add_argument(
        "--sightings", type=int, default=100_000,
        help="gate camera sightings added before the incremental scan (0: none)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="wiped! name must hold 'bench'")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="nightreg-scan-bench-"))
    try:
        url = fresh_database(args.db, args.pg_url, work_dir)
    except (SetupError, Exception) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(url, args))
    finally:
        if args.keep:
            print(f"kept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
