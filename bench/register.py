"""Register benchmark: tonight, search, export and import on a register of a million visits.

    python bench/register.py --db sqlite|postgresql [--visits 1000000] [--sites 200]
                             [--big-site-visits 200000] [--samples 200] [--concurrency 4]
                             [--import-rows 100000] [--pg-url URL] [--no-analyze] [--keep]

Prepares a fresh database (an SQLite file in a temporary directory, or the `public` schema of
the PostgreSQL database `nightreg_bench`, dropped and recreated), migrates it with
`nightreg.migrate.upgrade` and seeds it with Core bulk inserts (executemany, 10,000 rows a
transaction): `--sites` sites with one check-in point each, and `--visits` visits over the last
two years, of which about 30-60 per site are present tonight. Site 1 is seeded big on purpose
(`--big-site-visits`), so that an export has a long stream to measure. Then ANALYZE.

Phases, all through the services as the app calls them (with an admin actor of all sites):

1. tonight: `tonight.tonight()` on random sites, sequentially and then with `--concurrency`
   tasks at once; p50/p95/p99;
2. search: `register_search.search()` on random sites, one batch per kind of query (a name fragment,
   a boat/car identifier fragment typed with odd case and dashes, a date range, a deep keyset
   page), plus two worst cases on the big site; p50/p95/p99 per kind;
3. export: `transfer.export_register()` as CSV and JSON of the largest ordinary site and of the
   big site (all of it, and its last year), each in a fresh subprocess so that its peak RSS is
   its own; rows/s, MB/s, peak RSS;
4. import: `register_import.import_register()` of the big site's first `--import-rows` exported rows
   into a new empty site, for real and as a dry run (each in a fresh subprocess); rows/s.

Targets (from the issue): tonight and search p95 <= 100 ms; export >= 100,000 rows/s with a
peak RSS <= 200 MB; import >= 20,000 rows/s. The exit status is 0 even when targets are missed,
2 when setup fails. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], the app is one up
    sys.path.insert(0, str(REPO))

from sqlalchemy import Table, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from bench.checkin import (  # noqa: E402
    DEFAULT_PG_URL,
    Latency,
    SetupError,
    background_load,
    reset_postgres,
)
from nightreg.db import Database, make_engine  # noqa: E402
from nightreg.models import CheckinPoint, Site, Visit  # noqa: E402
from nightreg.security import REFERENCE_ALPHABET  # noqa: E402
from nightreg.services import (  # noqa: E402
    audit,
    register_import,
    register_search,
    tonight,
    transfer,
)
from nightreg.services.access import Actor  # noqa: E402
from nightreg.validation import search_key, subject_key  # noqa: E402

# The services write keyed audit events; a bench without an app names the key itself.
audit.use_keyring(audit.Keyring.of(os.environ.get("NIGHTREG_SECRET_KEY") or "bench-" + "k" * 40))

BATCH = 10_000
TZ_NAME = "Europe/Amsterdam"
HISTORY_DAYS = 730

TARGET_P95_MS = 100.0
TARGET_EXPORT_ROWS_S = 100_000.0
TARGET_EXPORT_RSS_MB = 200.0
TARGET_IMPORT_ROWS_S = 20_000.0

_visit = cast(Table, Visit.__table__)
_site = cast(Table, Site.__table__)
_point = cast(Table, CheckinPoint.__table__)

FIRST_NAMES = (
    "Jan", "Piet", "Kees", "Anna", "Sanne", "Lotte", "Daan", "Sem", "Emma", "Julia", "Lucas",
    "Noah", "Mila", "Tess", "Bram", "Femke", "Hans", "Jürgen", "Klaus", "Heike", "Søren",
    "Ingrid", "Olivier", "Chloé", "Pierre", "Tom", "Sarah", "James", "Émilie", "Zoë",
)  # fmt: skip
LAST_NAMES = (
    "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder",
    "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Dijk", "Dekker", "Brouwer",
    "van der Berg", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois", "Lefèvre",
    "Smith", "Jones", "Williams", "Peeters", "Janssens", "Maes", "Nielsen", "Østergaard",
    "Johansson", "Andersson", "O'Brien", "van 't Hof",
)  # fmt: skip
TOWNS = (
    "Amsterdam", "Hoorn", "Enkhuizen", "Lelystad", "Harlingen", "Den Helder", "Rotterdam",
    "Utrecht", "Hamburg", "Bremen", "Kiel", "Antwerpen", "Gent", "Londen", "Lille", "Aarhus",
)  # fmt: skip
BOATS = (
    "Zeemeeuw", "Albatros", "Stormvogel", "Waterman", "Noordster", "Avontuur", "Vrijheid",
    "Windkracht", "Sea Spirit", "Blue Moon", "Aurora", "Odyssee", "Pelikaan", "Zwerver",
    "Fortuna", "Meeuwtje", "Kraken", "Nautilus", "Seeschwalbe", "Möwe", "L'Étoile",
)  # fmt: skip
COMPANIES = ("Bouwbedrijf Smit", "Transport Bos", "TechPark BV", "Logistiek Noord", "")
COUNTRIES = ("NL", "NL", "NL", "DE", "DE", "BE", "GB", "FR", "DK", "SE")
LETTERS = "BDFGHJKLNPRSTVXZ"
ID_TYPES = (None, None, "passport", "id_card", "driving_licence")
VESSEL_TYPES = ("sail", "sail", "motor", "motor", "rib", "other")
VEHICLE_TYPES = ("car", "car", "car", "van", "camper", "truck", "trailer", "motorcycle")


# --------------------------------------------------------------------------------- helpers


def latency_line(label: str, lat: Latency) -> str:
    return (
        f"  {label:<34} p50 {lat.p50:7.1f}  p95 {lat.p95:7.1f}  p99 {lat.p99:7.1f}  "
        f"max {lat.max:7.1f} ms   {lat.per_second:6.1f}/s  (n={lat.count})"
    )


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across execve, so a spawned child
    would report the parent's peak at the moment it forked.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# --------------------------------------------------------------------------------- setup


def prepare(args: argparse.Namespace, work_dir: Path) -> str:
    """A fresh, migrated, empty database; returns its URL."""
    from nightreg.migrate import upgrade

    if args.db == "sqlite":
        url = f"sqlite+aiosqlite:///{work_dir / 'nightreg.db'}"
    else:
        url = args.pg_url
        try:
            asyncio.run(reset_postgres(url))
        except SetupError:
            raise
        except Exception as exc:
            raise SetupError(f"cannot prepare PostgreSQL at {_redact(url)}: {exc}") from exc
    try:
        upgrade(url)
    except Exception as exc:
        raise SetupError(f"migration failed: {exc}") from exc
    return url


# --------------------------------------------------------------------------------- seeding


@dataclass
class SiteInfo:
    id: int
    slug: str
    kind: str
    visits: int = 0
    present: int = 0


@dataclass
class Seeded:
    now: datetime
    sites: list[SiteInfo]
    big: SiteInfo
    import_sites: list[SiteInfo]
    rows: int
    seconds: float
    generate_seconds: float
    analyze_seconds: float = 0.0
    db_bytes: int | None = None


def _reference(n: int) -> str:
    """A unique, random-looking reference for visit n (multiplication by an odd number is a
    bijection modulo 2**40), in the app's format XXXX-XXXX."""
    bits = (n * 0x9E3779B97F + 0x5DEECE66D) % 2**40
    chars = "".join(REFERENCE_ALPHABET[(bits >> shift) & 31] for shift in range(35, -5, -5))
    return f"{chars[:4]}-{chars[4:]}"


class VisitMaker:
    """Makes the rows: realistic enough names, boats, cars and times; deterministic per seed."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.n = 0

    def row(
        self, site: SiteInfo, point_id: int, arrived_at: datetime, present: bool
    ) -> dict[str, Any]:
        rng = self.rng
        self.n += 1
        n = self.n
        if site.kind == "marina":
            kind = "vessel" if rng.random() < 0.8 else "vehicle"
        else:
            kind = "vehicle" if rng.random() < 0.7 else "stay"
        first = rng.choice(FIRST_NAMES)
        guest_name = f"{first} {rng.choice(LAST_NAMES)}"
        residence = rng.choice(TOWNS)
        country = rng.choice(COUNTRIES)
        r = rng.random()
        source = "kiosk" if r < 0.8 else ("staff" if r < 0.95 else "api")
        vessel_name = registration = mmsi = flag = vessel_type = berth = None
        last_port = next_port = plate = plate_country = vehicle_type = unit = company = None
        length_m: Decimal | None = None
        if kind == "vessel":
            boat = rng.choice(BOATS)
            vessel_name = boat if rng.random() < 0.7 else f"{boat} {rng.randint(2, 4) * 'I'}"
            flag = rng.choice(COUNTRIES)
            if rng.random() < 0.9:
                registration = (
                    f"{flag}-{rng.randint(1000, 99999)}-{rng.choice(LETTERS)}{rng.choice(LETTERS)}"
                )
            if rng.random() < 0.3 or registration is None:
                mmsi = str(rng.randint(244_000_000, 244_999_999))
            vessel_type = rng.choice(VESSEL_TYPES)
            length_m = Decimal(rng.randint(50, 250)) / 10
            berth = f"{rng.choice('ABCDEF')}{rng.randint(1, 80)}"
            last_port = rng.choice(TOWNS)
            next_port = rng.choice(TOWNS) if rng.random() < 0.5 else None
        elif kind == "vehicle":
            plate = (
                f"{rng.randint(10, 99)}-{rng.choice(LETTERS)}{rng.choice(LETTERS)}"
                f"{rng.choice(LETTERS)}-{rng.randint(1, 9)}"
            )
            plate_country = "NL" if rng.random() < 0.8 else rng.choice(COUNTRIES)
            vehicle_type = rng.choice(VEHICLE_TYPES)
        if kind in ("vehicle", "stay") and site.kind == "business_park":
            company = rng.choice(COMPANIES) or None
            unit = f"Unit {rng.randint(1, 40)}" if rng.random() < 0.6 else None
        nights = rng.choice((1, 1, 1, 2, 2, 3, 4, 7, 14))
        if present:
            r = rng.random()
            if r < 0.05:  # overdue: should have left already
                expected = self.now - timedelta(minutes=rng.randint(30, 600))
                expected = max(expected, arrived_at + timedelta(hours=1))
            elif r < 0.25:  # leaving later today or early tomorrow
                expected = self.now + timedelta(minutes=rng.randint(30, 900))
            else:
                expected = self.now + timedelta(hours=rng.randint(12, 24 * 7))
            departed_at = None
        else:
            expected = arrived_at + timedelta(days=nights, hours=rng.randint(-6, 6))
            departed_at = expected + timedelta(minutes=rng.randint(-240, 120))
            ceiling = self.now - timedelta(minutes=5)
            departed_at = min(max(departed_at, arrived_at + timedelta(minutes=30)), ceiling)
        notes = None
        r = rng.random()
        if r < 0.05:
            notes = "Betaald voor twee nachten"
        elif r < 0.051:
            notes = '=HYPERLINK("http://example.org")'  # exercises the export's escaping
        digest = hashlib.sha256(b"bench-%d" % n).hexdigest()
        return {
            "reference": _reference(n),
            "site_id": site.id,
            "point_id": point_id if source == "kiosk" else None,
            "kind": kind,
            "source": source,
            "arrived_at": arrived_at,
            "expected_departure_at": expected,
            "departed_at": departed_at,
            "persons": rng.randint(1, 6),
            "guest_name": guest_name,
            "residence": residence,
            "country": country,
            "phone": f"+31 6 {rng.randint(10_000_000, 99_999_999)}" if r < 0.5 else None,
            "email": f"{n}@example.nl" if r < 0.3 else None,
            "id_document_type": rng.choice(ID_TYPES),
            "berth": berth,
            "vessel_name": vessel_name,
            "registration": registration,
            "mmsi": mmsi,
            "flag": flag,
            "vessel_type": vessel_type,
            "length_m": length_m,
            "last_port": last_port,
            "next_port": next_port,
            "plate": plate,
            "plate_country": plate_country,
            "vehicle_type": vehicle_type,
            "unit": unit,
            "company": company,
            "notes": notes,
            "subject_key": subject_key(
                kind,
                registration=registration,
                mmsi=mmsi,
                plate=plate,
                guest_name=guest_name,
                residence=residence,
            ),
            "search_key": search_key(guest_name, vessel_name, registration, mmsi, plate),
            "private_token_hash": digest,
            "idempotency_key": digest[:32] if source == "kiosk" else None,
            "request_fingerprint": None,
            "created_at": arrived_at,
            "updated_at": departed_at or arrived_at,
        }


def _rows(
    args: argparse.Namespace, sites: list[SiteInfo], points: dict[int, int], now: datetime
) -> Iterator[dict[str, Any]]:
    """All visits in order of arrival, as a live register would have received them."""
    maker = VisitMaker(args.seed, now)
    rng = random.Random(args.seed + 1)
    big, ordinary = sites[0], sites[1:]
    present = {s.id: rng.randint(30, 60) for s in sites}
    departed = max(0, args.visits - sum(present.values()))
    big_share = min(1.0, max(0, args.big_site_visits - present[big.id]) / max(departed, 1))
    start = now - timedelta(days=HISTORY_DAYS)
    span = (HISTORY_DAYS - 1) * 86400.0  # departed visits arrived at least a day ago
    step = span / max(departed, 1)
    for i in range(departed):
        site = big if (not ordinary or rng.random() < big_share) else rng.choice(ordinary)
        arrived = start + timedelta(seconds=i * step + rng.random() * step)
        site.visits += 1
        yield maker.row(site, points[site.id], arrived, present=False)
    # Those still here arrived in the last six days (some of them today), newest last.
    tonight = [
        (now - timedelta(minutes=rng.randint(5, 6 * 24 * 60)), s)
        for s in sites
        for _ in range(present[s.id])
    ]
    tonight.sort(key=lambda pair: pair[0])
    for arrived, site in tonight:
        site.visits += 1
        site.present += 1
        yield maker.row(site, points[site.id], arrived, present=True)


async def seed(url: str, args: argparse.Namespace) -> Seeded:
    now = datetime.now(UTC).replace(microsecond=0)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            site_rows = []
            for i in range(args.sites + 2):
                extra = i >= args.sites  # two empty sites the import phase fills
                kind = "marina" if (i == 0 or extra or i % 10 < 7) else "business_park"
                slug = f"import-{i - args.sites + 1}" if extra else f"site-{i + 1:03d}"
                site_rows.append(
                    {
                        "slug": slug,
                        "name": f"Bench {slug}",
                        "kind": kind,
                        "municipality": "Hoorn",
                        "timezone": TZ_NAME,
                        "contact": "havenmeester@example.nl",
                        "is_active": True,
                        "created_at": now - timedelta(days=HISTORY_DAYS + 1),
                    }
                )
            await conn.execute(insert(_site), site_rows)
            result = await conn.execute(select(_site.c.id, _site.c.slug, _site.c.kind))
            all_sites = sorted(
                (SiteInfo(id=r.id, slug=r.slug, kind=r.kind) for r in result), key=lambda s: s.id
            )
            await conn.execute(
                insert(_point),
                [
                    {
                        "site_id": s.id,
                        "name": "steiger-a",
                        "token": hashlib.sha256(f"point-{s.id}".encode()).hexdigest()[:32],
                        "kiosk_mode": False,
                        "is_active": True,
                        "created_at": now - timedelta(days=HISTORY_DAYS + 1),
                    }
                    for s in all_sites
                ],
            )
            result = await conn.execute(select(_point.c.site_id, _point.c.id))
            points = {r.site_id: r.id for r in result}
        sites = [s for s in all_sites if not s.slug.startswith("import-")]
        import_sites = [s for s in all_sites if s.slug.startswith("import-")]

        started = time.perf_counter()
        generating = 0.0
        rows = 0
        batch: list[dict[str, Any]] = []
        stream = _rows(args, sites, points, now)
        while True:
            t0 = time.perf_counter()
            batch = [row for _, row in zip(range(BATCH), stream, strict=False)]
            generating += time.perf_counter() - t0
            if not batch:
                break
            async with engine.begin() as conn:
                await conn.execute(insert(_visit), batch)
            rows += len(batch)
            if rows % 100_000 < BATCH:
                elapsed = time.perf_counter() - started
                print(f"  seeded {rows:>9,} visits  {elapsed:6.1f} s", flush=True)
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return Seeded(
        now=now,
        sites=sites,
        big=sites[0],
        import_sites=import_sites,
        rows=rows,
        seconds=seconds,
        generate_seconds=generating,
    )


async def analyze(url: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            if url.startswith("sqlite"):
                await conn.exec_driver_sql("ANALYZE")
                await conn.exec_driver_sql("PRAGMA optimize")
            else:
                await conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        await engine.dispose()


async def database_size(url: str) -> int | None:
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return cast(int, await conn.scalar(text("SELECT pg_database_size(current_database())")))
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------------- tonight / search


def bench_actor(site_ids: list[int]) -> Actor:
    return Actor(kind="user", id=1, name="bench", role="admin", site_ids=frozenset(site_ids))


async def timed_calls(
    calls: list[Callable[[], Awaitable[Any]]], concurrency: int
) -> tuple[list[float], float]:
    """Run the calls with `concurrency` tasks; (latency of each in seconds, wall time)."""
    latencies: list[float] = []
    queue = list(reversed(calls))

    async def worker() -> None:
        while queue:
            call = queue.pop()
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def _odd_case(text_: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text_)


def _fragment(value: str, rng: random.Random, min_len: int = 4) -> str:
    """A piece of a registration or plate as someone would type it: odd case, odd dashes."""
    chars = [c for c in value if c.isalnum()]
    length = min(len(chars), rng.randint(min_len, min_len + 2))
    start = rng.randint(0, len(chars) - length)
    piece = chars[start : start + length]
    out = []
    for i, c in enumerate(piece):
        if i and rng.random() < 0.3:
            out.append(rng.choice(("-", " ", "")))
        out.append(c.upper() if rng.random() < 0.5 else c.lower())
    return "".join(out)


@dataclass
class ReadResults:
    tonight: dict[str, Latency] = field(default_factory=dict)
    search: dict[str, Latency] = field(default_factory=dict)
    tonight_rows: float = 0.0
    search_rows: dict[str, float] = field(default_factory=dict)


async def read_phases(url: str, args: argparse.Namespace, seeded: Seeded) -> ReadResults:
    db = Database(url)
    out = ReadResults()
    rng = random.Random(args.seed + 2)
    sites = seeded.sites
    actor = bench_actor([s.id for s in sites] + [s.id for s in seeded.import_sites])
    now = datetime.now(UTC)
    tz = ZoneInfo(TZ_NAME)
    try:
        # --- tonight
        counts: list[int] = []

        def tonight_call(site_id: int) -> Callable[[], Awaitable[Any]]:
            async def call() -> None:
                result = await tonight.tonight(db, actor, site_id, now=now)
                counts.append(len(result.present) + len(result.arrived_today))

            return call

        for s in rng.sample(sites, min(5, len(sites))):  # warm-up: pools, statement caches
            await tonight_call(s.id)()
        counts.clear()
        print(f"tonight: {args.samples} calls, sequential …", flush=True)
        calls = [tonight_call(rng.choice(sites).id) for _ in range(args.samples)]
        lat, wall = await timed_calls(calls, 1)
        out.tonight["sequential"] = Latency.of(lat, wall)
        out.tonight_rows = sum(counts) / max(len(counts), 1)
        if args.concurrency > 1:
            print(f"tonight: {args.samples} calls, {args.concurrency} at a time …", flush=True)
            calls = [tonight_call(rng.choice(sites).id) for _ in range(args.samples)]
            lat, wall = await timed_calls(calls, args.concurrency)
            out.tonight[f"{args.concurrency} concurrent"] = Latency.of(lat, wall)

        # --- search: the inputs are picked first (untimed), then the calls are timed
        async def sample_visit(site: SiteInfo, depth: float) -> Any:
            offset = int(site.visits * depth)
            async with db.engine.connect() as conn:
                result = await conn.execute(
                    select(
                        _visit.c.id,
                        _visit.c.arrived_at,
                        _visit.c.registration,
                        _visit.c.plate,
                        _visit.c.mmsi,
                    )
                    .where(_visit.c.site_id == site.id)
                    .order_by(_visit.c.arrived_at.desc(), _visit.c.id.desc())
                    .limit(1)
                    .offset(offset)
                )
                return result.one()

        async def ident_query(site: SiteInfo) -> register_search.RegisterQuery:
            value = None
            while not value:  # a stay (business park) has neither registration nor plate
                row = await sample_visit(site, rng.random())
                value = row.registration or row.plate or row.mmsi
            return register_search.RegisterQuery(q=_fragment(value, rng))

        def name_query() -> register_search.RegisterQuery:
            last = rng.choice(LAST_NAMES)
            if rng.random() < 0.5:
                q = last  # "de Vries"
            else:
                plain = last.split()[-1]
                start = rng.randint(0, max(0, len(plain) - 4))
                q = plain[start : start + rng.randint(4, 6)]
            return register_search.RegisterQuery(q=_odd_case(q, rng))

        def period_query() -> register_search.RegisterQuery:
            start = (now - timedelta(days=rng.randint(14, HISTORY_DAYS))).astimezone(tz).date()
            return register_search.RegisterQuery(
                date_from=start, date_to=start + timedelta(days=13)
            )

        async def deep_query(site: SiteInfo, q: str = "") -> register_search.RegisterQuery:
            row = await sample_visit(site, rng.uniform(0.4, 0.9))
            cursor = register_search._encode_cursor("arrived_desc", row.arrived_at, row.id)
            return register_search.RegisterQuery(q=q, cursor=cursor)

        kinds: dict[str, list[tuple[int, register_search.RegisterQuery]]] = {}
        n = args.samples
        kinds["name"] = [(rng.choice(sites).id, name_query()) for _ in range(n)]
        kinds["name + period"] = []
        for _ in range(n):
            period = period_query()
            kinds["name + period"].append(
                (
                    rng.choice(sites).id,
                    register_search.RegisterQuery(
                        q=name_query().q, date_from=period.date_from, date_to=period.date_to
                    ),
                )
            )
        kinds["ident (odd case/dashes)"] = []
        for _ in range(n):
            site = rng.choice(sites)
            kinds["ident (odd case/dashes)"].append((site.id, await ident_query(site)))
        kinds["period (14 days)"] = [(rng.choice(sites).id, period_query()) for _ in range(n)]
        kinds["deep page (cursor)"] = []
        for _ in range(n):
            site = rng.choice(sites)
            kinds["deep page (cursor)"].append((site.id, await deep_query(site)))
        big = seeded.big
        worst = max(10, n // 4)
        kinds["BIG site: ident"] = [(big.id, await ident_query(big)) for _ in range(worst)]
        kinds["BIG site: name + deep page"] = [
            (big.id, await deep_query(big, name_query().q)) for _ in range(worst)
        ]

        for label, queries in kinds.items():
            found: list[int] = []

            def search_call(
                site_id: int, query: register_search.RegisterQuery, found: list[int] = found
            ) -> Callable[[], Awaitable[None]]:
                async def call() -> None:
                    page = await register_search.search(db, actor, site_id, query, now=now)
                    found.append(len(page.visits))

                return call

            for site_id, query in queries[:3]:  # warm-up
                await search_call(site_id, query)()
            found.clear()
            print(f"search: {label}, {len(queries)} calls …", flush=True)
            lat, wall = await timed_calls([search_call(s, q) for s, q in queries], 1)
            out.search[label] = Latency.of(lat, wall)
            out.search_rows[label] = sum(found) / max(len(found), 1)
    finally:
        await db.dispose()
    return out


# --------------------------------------------------------------------------------- export / import
# Each runs in a fresh (spawned) process: ru_maxrss is then the export's or import's own peak.


def _child_setup() -> tuple[float, float]:
    import gc

    gc.collect()
    return peak_rss_mb(), current_rss_mb()


def export_job(
    url: str,
    site_id: int,
    fmt: str,
    date_from: date | None,
    date_to: date | None,
    out_path: str | None,
) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        db = Database(url)
        actor = bench_actor([site_id])
        try:
            # Warm the engine (first connect, dialect init) outside the measured stream.
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            base_peak, base_now = _child_setup()
            sink = open(out_path, "wb") if out_path else None  # noqa: SIM115, ASYNC230
            nbytes = records = crlf = chunks = 0
            first_chunk = math.nan
            try:
                started = time.perf_counter()
                stream = transfer.export_register(
                    db, actor, site_id, date_from=date_from, date_to=date_to, fmt=fmt,
                    now=datetime.now(UTC),
                )  # fmt: skip
                async for chunk in stream:
                    if chunks == 0:
                        first_chunk = time.perf_counter() - started
                    chunks += 1
                    nbytes += len(chunk)
                    # A record's first key cannot occur inside a JSON string (its quotes
                    # would be escaped there); CSV rows end in CRLF, newlines in notes in LF.
                    records += chunk.count(b'{"reference": ')
                    crlf += chunk.count(b"\r\n")
                    if sink is not None:
                        sink.write(chunk)
                seconds = time.perf_counter() - started
            finally:
                if sink is not None:
                    sink.close()
        finally:
            await db.dispose()
        rows = crlf - 1 if fmt == "csv" else records
        return {
            "rows": rows,
            "bytes": nbytes,
            "chunks": chunks,
            "seconds": seconds,
            "first_chunk": first_chunk,
            "base_peak": base_peak,
            "base_now": base_now,
            "peak": peak_rss_mb(),
        }

    return asyncio.run(run())


def import_job(url: str, site_id: int, path: str, dry_run: bool) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        db = Database(url)
        actor = bench_actor([site_id])
        try:
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            base_peak, base_now = _child_setup()
            started = time.perf_counter()
            with open(path, "rb") as source:  # noqa: ASYNC230 (the service reads it synchronously)
                report = await register_import.import_register(
                    db, actor, site_id, source, filename=Path(path).name,
                    now=datetime.now(UTC), dry_run=dry_run,
                )  # fmt: skip
            seconds = time.perf_counter() - started
            async with db.engine.connect() as conn:
                in_db = await conn.scalar(
                    select(func.count()).select_from(_visit).where(_visit.c.site_id == site_id)
                )
        finally:
            await db.dispose()
        return {
            "rows": report.rows,
            "bad_rows": report.bad_rows,
            "imported": report.imported,
            "references_kept": report.references_kept,
            "first_error": str(report.errors[0]) if report.errors else "",
            "in_db": in_db,
            "seconds": seconds,
            "base_peak": base_peak,
            "base_now": base_now,
            "peak": peak_rss_mb(),
        }

    return asyncio.run(run())


def in_fresh_process(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


@dataclass
class TransferRun:
    label: str
    result: dict[str, Any]
    expected: int | None = None

    @property
    def rows_per_s(self) -> float:
        r = self.result
        return r["rows"] / r["seconds"] if r["seconds"] else math.nan


async def count_visits(url: str, site_id: int, since: datetime | None = None) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            stmt = select(func.count()).select_from(_visit).where(_visit.c.site_id == site_id)
            if since is not None:
                stmt = stmt.where((_visit.c.departed_at.is_(None)) | (_visit.c.departed_at > since))
            return cast(int, await conn.scalar(stmt))
    finally:
        await engine.dispose()


def export_phase(url: str, seeded: Seeded, work_dir: Path) -> tuple[list[TransferRun], Path]:
    ordinary = max(seeded.sites[1:] or seeded.sites, key=lambda s: s.visits)
    big = seeded.big
    tz = ZoneInfo(TZ_NAME)
    today = seeded.now.astimezone(tz).date()
    year_ago = today - timedelta(days=365)
    big_csv = work_dir / "big-site.csv"
    jobs: list[tuple[str, int, str, date | None, date | None, str | None]] = [
        (f"{ordinary.slug} (largest ordinary), all, CSV", ordinary.id, "csv", None, None, None),
        (f"{ordinary.slug} (largest ordinary), all, JSON", ordinary.id, "json", None, None, None),
        (f"{big.slug} (big), all 2 years, CSV", big.id, "csv", None, None, str(big_csv)),
        (f"{big.slug} (big), all 2 years, JSON", big.id, "json", None, None, None),
        (f"{big.slug} (big), last 365 days, CSV", big.id, "csv", year_ago, today, None),
    ]
    runs = []
    for label, site_id, fmt, date_from, date_to, out in jobs:
        print(f"export: {label} …", flush=True)
        since = None
        if date_from is not None:
            since = datetime.combine(date_from, datetime.min.time(), tz).astimezone(UTC)
        expected = asyncio.run(count_visits(url, site_id, since))
        result = in_fresh_process(export_job, url, site_id, fmt, date_from, date_to, out)
        runs.append(TransferRun(label, result, expected))
    return runs, big_csv


def import_phase(
    url: str, seeded: Seeded, big_csv: Path, rows: int, work_dir: Path
) -> list[TransferRun]:
    path = work_dir / f"import-{rows}.csv"
    with big_csv.open("rb") as source, path.open("wb") as target:
        for i, line in enumerate(source):  # no cell holds a line break: one row per line
            if i > rows:
                break
            target.write(line)
    runs = []
    first, second = seeded.import_sites
    for label, site, dry_run in (
        (f"{rows:,} rows into empty {first.slug}", first, False),
        (f"{rows:,} rows, dry run, into empty {second.slug}", second, True),
    ):
        print(f"import: {label} …", flush=True)
        result = in_fresh_process(import_job, url, site.id, str(path), dry_run)
        runs.append(TransferRun(label, result, rows))
    return runs


# --------------------------------------------------------------------------------- report


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(
    args: argparse.Namespace,
    url: str,
    started: datetime,
    background: float,
    seeded: Seeded,
    reads: ReadResults | None,
    exports: list[TransferRun],
    imports: list[TransferRun],
) -> None:
    import sqlalchemy

    w = print
    sizes = sorted(s.visits for s in seeded.sites[1:]) or [seeded.big.visits]
    present = sorted(s.present for s in seeded.sites)
    w("=" * 110)
    w("Nachtregister register benchmark")
    w("=" * 110)
    w(f"date            {started:%Y-%m-%d %H:%M:%S %Z}")
    w(f"database        {args.db}  ({_redact(url)})")
    w(
        f"machine         nproc {os.cpu_count()}, {platform.machine()}, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}, "
        f"SQLAlchemy {sqlalchemy.__version__}"
    )
    w(f"background      {background:.0f}% of all cores busy in the 2 s before the run")
    w(
        f"data            {seeded.rows:,} visits, {len(seeded.sites)} sites over {HISTORY_DAYS} "
        f"days; big site {seeded.big.slug}: {seeded.big.visits:,} visits; other sites "
        f"{sizes[0]:,}-{sizes[-1]:,} (median {sizes[len(sizes) // 2]:,}); present tonight "
        f"{present[0]}-{present[-1]} per site"
    )
    size = f"{seeded.db_bytes / 2**20:,.0f} MB" if seeded.db_bytes else "?"
    w(
        f"seeding         {seeded.seconds:.1f} s ({seeded.rows / seeded.seconds:,.0f} rows/s; of "
        f"which generating rows in Python {seeded.generate_seconds:.1f} s), Core executemany "
        f"{BATCH:,} rows/transaction; "
        + ("no ANALYZE" if args.no_analyze else f"ANALYZE {seeded.analyze_seconds:.1f} s")
        + f"; database size {size}"
    )
    w(f"samples         {args.samples} per kind, random sites; concurrency {args.concurrency}")
    w("")
    if reads is not None:
        w(f"Tonight (tonight.tonight; avg {reads.tonight_rows:.0f} visits listed per call)")
        for label, lat in reads.tonight.items():
            w(latency_line(label, lat))
        w("")
        w("Search (register_search.search, first page of 50 unless deep; sequential)")
        for label, lat in reads.search.items():
            w(latency_line(label, lat) + f"  avg {reads.search_rows[label]:.0f} rows")
        w("")
    w("Export (transfer.export_register, each in a fresh process; RSS = the process's peak)")
    for run in exports:
        r = run.result
        check = "" if run.expected is None or run.expected == r["rows"] else (
            f"  (!! expected {run.expected:,} rows)"
        )  # fmt: skip
        w(
            f"  {run.label:<44} {r['rows']:>8,} rows {r['bytes'] / 2**20:7.1f} MB "
            f"{r['seconds']:6.2f} s  {run.rows_per_s:>9,.0f} rows/s  "
            f"{r['bytes'] / 2**20 / r['seconds']:5.1f} MB/s  first chunk "
            f"{r['first_chunk'] * 1000:5.0f} ms  peak RSS {r['peak']:5.0f} MB "
            f"(+{r['peak'] - r['base_peak']:.0f} over {r['base_peak']:.0f} before){check}"
        )
    w("")
    w("Import (register_import.import_register, each in a fresh process)")
    for run in imports:
        r = run.result
        w(
            f"  {run.label:<44} {r['rows']:>8,} rows  {r['seconds']:6.2f} s  "
            f"{run.rows_per_s:>8,.0f} rows/s  imported {r['imported']:,}, bad {r['bad_rows']}, "
            f"references kept {r['references_kept']:,}, in db {r['in_db']:,}, peak RSS "
            f"{r['peak']:.0f} MB (+{r['peak'] - r['base_peak']:.0f})"
            + (f"  first error: {r['first_error']}" if r["first_error"] else "")
        )
    w("")
    w(f"Targets ({args.db})")
    lines: list[tuple[str, str, bool]] = []
    if reads is not None:
        for label, lat in reads.tonight.items():
            lines.append((f"tonight p95 <= 100 ms ({label})", f"{lat.p95:.1f} ms", lat.p95 <= 100))
        for label, lat in reads.search.items():
            lines.append((f"search p95 <= 100 ms ({label})", f"{lat.p95:.1f} ms", lat.p95 <= 100))
    for run in exports:
        lines.append(
            (f"export >= 100,000 rows/s ({run.label})", f"{run.rows_per_s:,.0f}/s",
             run.rows_per_s >= TARGET_EXPORT_ROWS_S)
        )  # fmt: skip
    if exports:
        peak = max(run.result["peak"] for run in exports)
        lines.append(
            (
                "export peak RSS <= 200 MB (worst run)",
                f"{peak:.0f} MB",
                peak <= TARGET_EXPORT_RSS_MB,
            )
        )
    for run in imports:
        ok = run.rows_per_s >= TARGET_IMPORT_ROWS_S and run.result["bad_rows"] == 0
        lines.append((f"import >= 20,000 rows/s ({run.label})", f"{run.rows_per_s:,.0f}/s", ok))
    for label, value, ok in lines:
        w(f"  {label:<72} {value:>12}   {_verdict(ok)}")
    w("=" * 110)


# --------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--visits", type=int, default=1_000_000, help="visits in all")
    parser.add_argument("--sites", type=int, default=200, help="sites (site 1 is the big one)")
    parser.add_argument(
        "--big-site-visits", type=int, default=200_000, help="visits of site 1 (of --visits)"
    )
    parser.add_argument("--samples", type=int, default=200, help="calls per kind of query")
    parser.add_argument("--concurrency", type=int, default=4, help="tasks for tonight's 2nd run")
    parser.add_argument("--import-rows", type=int, default=100_000, help="rows of the import file")
    parser.add_argument("--seed", type=int, default=20261128, help="random seed of the data")
    parser.add_argument("--no-analyze", action="store_true", help="skip ANALYZE after seeding")
    parser.add_argument("--skip", choices=("reads", "transfer"), action="append", default=[])
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="wiped! name must hold 'bench'")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.sites < 2 or args.visits < args.sites * 60 or args.samples < 1:
        parser.error("need --sites >= 2, --visits >= 60 per site and --samples >= 1")
    if args.import_rows > args.big_site_visits:
        parser.error("--import-rows comes from the big site's export: at most --big-site-visits")

    started = datetime.now(UTC)
    background = background_load()
    work_dir = Path(tempfile.mkdtemp(prefix="nightreg-register-bench-"))
    try:
        print(f"preparing {args.db} in {work_dir} …", flush=True)
        url = prepare(args, work_dir)
        print(f"seeding {args.visits:,} visits over {args.sites} sites …", flush=True)
        try:
            seeded = asyncio.run(seed(url, args))
        except Exception as exc:
            raise SetupError(f"seeding failed: {exc!r}") from exc
        if not args.no_analyze:
            t0 = time.perf_counter()
            asyncio.run(analyze(url))
            seeded.analyze_seconds = time.perf_counter() - t0
        seeded.db_bytes = asyncio.run(database_size(url))
        print(
            f"seeded in {seeded.seconds:.1f} s (+ ANALYZE {seeded.analyze_seconds:.1f} s)",
            flush=True,
        )
        reads = None if "reads" in args.skip else asyncio.run(read_phases(url, args, seeded))
        exports: list[TransferRun] = []
        imports: list[TransferRun] = []
        if "transfer" not in args.skip:
            exports, big_csv = export_phase(url, seeded, work_dir)
            imports = import_phase(url, seeded, big_csv, args.import_rows, work_dir)
        report(args, url, started, background, seeded, reads, exports, imports)
    except SetupError as exc:
        print(f"bench: setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
