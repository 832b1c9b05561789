"""AIS replay benchmark: a million NMEA sentences of a busy harbour through the listener.

    python bench/ais.py --db sqlite|postgresql [--sentences 1000000] [--boats 600]
                        [--min-interval 10] [--polygon CORNERS] [--pg-url URL] [--keep]

Prepares a fresh database (an SQLite file in a temporary directory, or the `public` schema of
the PostgreSQL database `nightreg_bench_ais`, dropped and recreated: its name must hold
"bench"), migrates it, and creates a marina with AIS switched on (a 400 m harbour area; with
`--polygon N`, a regular polygon of N corners on that circle instead) and a visit for a third
of the boats. It then writes a recorded log like a receiver's: `--boats`
boats, each sending a position report every 2 to 30 seconds (class A and B, types 1, 3 and
18) as it lies outside, sails in, lies at its berth (some on the area's edge) and leaves
again; among them static data (type 5, two parts), base-station reports (type 4), sentences
with broken checksums, truncated ones and garbage, each line behind an NMEA 4.0 tag block
with its time. The log is replayed with `nightreg ais replay`'s code (read line by line,
decoded with pyais, debounced, the entries and exits written and matched to visits).

Prints the rate (sentences a second), the resident memory at the start, after each 100,000
sentences and at its peak, what the lines were counted as, and the movements written.
Target (issue 19): >= 20,000 sentences/s with flat memory.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import reduce
from operator import xor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], the app is one up
    sys.path.insert(0, str(REPO))

from pyais import encode_dict  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.checkin import SetupError, fresh_database  # noqa: E402
from nightreg.clock import FrozenClock  # noqa: E402
from nightreg.db import Database  # noqa: E402
from nightreg.models import AisMovement, Site, Visit  # noqa: E402
from nightreg.services import audit  # noqa: E402
from nightreg.services.access import CLI  # noqa: E402
from nightreg.services.ais.harbour import change_ais  # noqa: E402
from nightreg.services.ais.listen import replay  # noqa: E402

audit.use_keyring(audit.Keyring.of(os.environ.get("NIGHTREG_SECRET_KEY") or "bench-" + "k" * 40))

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/nightreg_bench_ais"
TARGET_RATE = 20_000
CENTRE = (52.6405, 5.0600)
RADIUS_M = 400
SLUG = "ais-bench"
START = datetime(2026, 7, 14, 4, 0, tzinfo=UTC).timestamp()
# A boat's way in and out, in metres from the centre; the berth (0, 150) or the edge (400).
TRACK = (3000, 2500, 2000, 1500, 1000, 700, 500, 300, 150, 0)


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def point(metres: float, bearing: float) -> tuple[float, float]:
    north = metres * math.cos(bearing)
    east = metres * math.sin(bearing)
    lat = CENTRE[0] + north / 111_195.0
    lon = CENTRE[1] + east / (111_195.0 * math.cos(math.radians(CENTRE[0])))
    return lat, lon


def tag(at: float) -> bytes:
    body = f"s:bench,c:{int(at)}".encode()
    return b"\\" + body + b"*%02X\\" % reduce(xor, body, 0)


def write_log(path: Path, sentences: int, boats: int, rng: random.Random) -> dict[str, int]:
    """The receiver's log; what was planted, by kind."""
    mmsis = [244_000_000 + i for i in range(boats)]
    pool: dict[int, list[bytes]] = {}
    for mmsi in mmsis:
        kind = rng.choice((1, 1, 3, 18))
        bearing = rng.random() * 2 * math.pi
        pool[mmsi] = [
            encode_dict(
                {"type": kind, "mmsi": mmsi, "lat": lat, "lon": lon, "speed": 4.0},
                sentence_type="VDM",
            )[0].encode()
            for lat, lon in (point(m, bearing) for m in (*TRACK, RADIUS_M - 10, RADIUS_M + 10))
        ]
    statics = {
        m: [
            s.encode()
            for s in encode_dict(
                {"type": 5, "mmsi": m, "shipname": "BENCH"}, sentence_type="VDM", seq_id=m % 10
            )
        ]
        for m in mmsis[:50]
    }
    base = encode_dict(
        {"type": 4, "mmsi": 2_440_001, "lat": CENTRE[0], "lon": CENTRE[1]}, sentence_type="VDM"
    )[0].encode()
    # Per boat: its place on the track (index into TRACK), direction, next report time.
    place = {m: rng.randrange(len(TRACK)) for m in mmsis}
    step = {m: rng.choice((-1, 1)) for m in mmsis}
    interval = {m: rng.choice((2, 3, 5, 10, 10, 30)) for m in mmsis}
    edge = {m: i % 20 == 0 for i, m in enumerate(mmsis)}  # moored on the edge: must not flap
    due = {m: START + rng.random() * 30 for m in mmsis}
    planted = {"positions": 0, "static": 0, "base": 0, "broken": 0, "garbage": 0}
    at = START
    written = 0
    with path.open("wb") as out:
        while written < sentences:
            at += 1
            for m in mmsis:
                if due[m] > at:
                    continue
                due[m] = at + interval[m]
                if edge[m]:
                    line = pool[m][len(TRACK) + (written // 7 % 2)]
                else:
                    if rng.random() < 0.02:  # move along the track now and then
                        place[m] += step[m]
                        if place[m] in (0, len(TRACK) - 1):
                            step[m] = -step[m]
                        place[m] = max(0, min(len(TRACK) - 1, place[m]))
                    line = pool[m][place[m]]
                roll = rng.random()
                if roll < 0.01:
                    line = line[:-2] + b"00"
                    planted["broken"] += 1
                elif roll < 0.015:
                    line = line[: len(line) // 2]
                    planted["garbage"] += 1
                else:
                    planted["positions"] += 1
                out.write(tag(at) + line + b"\r\n")
                written += 1
                if m in statics and rng.random() < 0.05:
                    for part in statics[m]:
                        out.write(tag(at) + part + b"\r\n")
                        written += 1
                    planted["static"] += 1
                if roll > 0.995:
                    out.write(tag(at) + base + b"\r\n")
                    written += 1
                    planted["base"] += 1
                if written >= sentences:
                    break
    planted["seconds_of_traffic"] = int(at - START)
    return planted


def polygon_text(corners: int) -> str:
    """A regular polygon on the harbour's circle, as the site's form takes it."""
    return "\n".join(
        "{:.6f}, {:.6f}".format(*point(RADIUS_M, 2 * math.pi * i / corners)) for i in range(corners)
    )


async def prepare(db: Database, boats: int, corners: int) -> Site:
    from nightreg.services.sites import create_site

    site = await create_site(
        db,
        slug=SLUG,
        name="AIS bench",
        kind="marina",
        municipality="",
        contact="",
        timezone="Europe/Amsterdam",
        now=datetime.now(UTC),
    )
    await change_ais(
        db,
        CLI,
        SLUG,
        enabled=True,
        dpia_reference="DPIA-BENCH",
        lat=None if corners else CENTRE[0],
        lon=None if corners else CENTRE[1],
        radius_m=None if corners else RADIUS_M,
        polygon=polygon_text(corners) if corners else None,
        now=datetime.now(UTC),
    )
    async with db.write() as session:
        for i in range(0, boats, 3):
            at = datetime.fromtimestamp(START - 86_400, UTC)
            session.add(
                Visit(
                    reference=f"AIS-{i:05d}",
                    site_id=site.id,
                    kind="vessel",
                    source="staff",
                    arrived_at=at,
                    expected_departure_at=datetime(2026, 7, 20, tzinfo=UTC),
                    persons=2,
                    guest_name="Bench",
                    residence="Hoorn",
                    vessel_name="Bench",
                    mmsi=f"{244_000_000 + i:09d}",
                    subject_key=f"mmsi:{244_000_000 + i}",
                    search_key="bench",
                    private_token_hash=f"{i:064d}",
                    created_at=at,
                    updated_at=at,
                )
            )
    return site


class Lines:
    """The log's lines, with the resident memory sampled every 100,000."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples: list[float] = []

    def __iter__(self):  # type: ignore[no-untyped-def]
        with self.path.open("rb") as handle:
            for n, line in enumerate(handle, 1):
                if n % 100_000 == 0:
                    self.samples.append(rss_mb())
                yield line


async def run(url: str, args: argparse.Namespace, work: Path) -> int:
    rng = random.Random(args.seed)
    log = work / "receiver.nmea"
    t0 = time.perf_counter()
    planted = write_log(log, args.sentences, args.boats, rng)
    print(
        f"wrote {args.sentences:,} sentences ({log.stat().st_size / 1e6:.0f} MB, "
        f"{planted['seconds_of_traffic'] / 3600:.1f} h of traffic) in "
        f"{time.perf_counter() - t0:.0f} s: {planted}",
        flush=True,
    )
    db = Database(url)
    try:
        site = await prepare(db, args.boats, args.polygon)
        clock = FrozenClock(datetime.fromtimestamp(START, UTC))
        lines = Lines(log)
        start_rss = rss_mb()
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        feed = await replay(db, SLUG, lines, clock, min_interval=args.min_interval)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        end_rss = rss_mb()
        async with db.read() as session:
            moves = await session.scalar(
                select(func.count()).select_from(AisMovement).where(AisMovement.site_id == site.id)
            )
            matched = await session.scalar(
                select(func.count())
                .select_from(AisMovement)
                .where(AisMovement.site_id == site.id, AisMovement.visit_id.is_not(None))
            )
    finally:
        await db.dispose()
    rate = args.sentences / seconds
    print()
    print(
        f"conditions: {args.db}, {args.boats} boats, {args.sentences:,} sentences, "
        f"min interval {args.min_interval:g} s, harbour area "
        f"{f'a polygon of {args.polygon} corners' if args.polygon else 'a circle'}; "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        f"cores, load average {os.getloadavg()[0]:.1f} (a shared, busy machine); database on "
        f"the same machine"
    )
    print(f"counted: {dict(sorted(feed.counts.items()))}; bad tag blocks {feed.decoder.bad_tags}")
    print(f"movements written {moves:,} ({matched:,} matched to visits)")
    samples = ", ".join(f"{s:.0f}" for s in lines.samples)
    print(
        f"RSS (MB): start {start_rss:.0f}, every 100,000 lines [{samples}], end {end_rss:.0f}, "
        f"process peak {peak_mb():.0f}"
    )
    print(f"CPU time of this process {cpu:.1f} s = {args.sentences / cpu:,.0f} sentences per "
          f"CPU second (what the replay costs, whatever else the machine does)")  # fmt: skip
    flat = (max(lines.samples, default=end_rss) - min(lines.samples, default=start_rss)) < 20
    print(
        f"replay {seconds:6.1f} s = {rate:,.0f} sentences/s   target >= {TARGET_RATE:,}   "
        f"{'OK' if rate >= TARGET_RATE else 'MISSED'}; memory "
        f"{'flat' if flat else 'NOT FLAT'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--sentences", type=int, default=1_000_000)
    parser.add_argument("--boats", type=int, default=600)
    parser.add_argument("--seed", type=int, default=20261214)
    parser.add_argument(
        "--min-interval",
        type=float,
        default=10.0,
        help="seconds between two decoded positions of one MMSI (0: decode every one)",
    )
    parser.add_argument(
        "--polygon",
        type=int,
        default=0,
        metavar="CORNERS",
        help="the harbour area as a regular polygon of this many corners (3 to 100)",
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="wiped! name must hold 'bench'")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="nightreg-ais-bench-"))
    try:
        url = fresh_database(args.db, args.pg_url, work)
    except (SetupError, Exception) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(url, args, work))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
