"""Purge benchmark: the retention purge of a big register while visitors keep checking in.

    python -m bench.purge [--database-url sqlite|postgresql|URL] [--visits 2000] [--expired 1000]
                          [--concurrency 50] [--batch N] [--sites 5] [--flags 10] [--held 50]
                          [--lead 3] [--tail 1] [--think-ms 0] [--purge-in server|process]
                          [--port 8767] [--keep]

Full scale (issue 6 §6): `--visits 2000000 --expired 1000000`.

1. **Setup** as bench/checkin.py does it: a fresh database (an SQLite file in a temporary
   directory, or the `public` schema of a PostgreSQL database whose name holds "bench", dropped
   and recreated), `nightreg db upgrade`, the site `bench` and its point through the CLI.
2. **Seed** with Core bulk inserts (10,000 rows a transaction, bench/register.py's VisitMaker):
   `--sites` more sites, `--visits` visits over them and `bench`, of which `--expired` departed
   more than 365 days ago and are due. Of the rest, most are recent, and a few are just as old
   but protected: the evidence of `--flags` open flags raised ten days ago (5 visits each) and
   `--held` visits of a subject under a legal hold. `--flags` more open flags, raised 400 days
   ago, are due themselves; their evidence (5 visits each, counted in `--expired`) goes with
   them. Then ANALYZE.
3. **Server**: uvicorn with `bench.purge:create_purge_app` (bench/app.py's app plus
   `POST /bench/purge` and `GET /bench/purge`), one worker, as bench/checkin.py starts it.
   The purge runs inside the server process, as with `nightreg serve`'s in-process scheduler,
   so on SQLite it queues on the app's write lock like every check-in. `--purge-in process`
   runs it in the benchmark's own process instead (a separate `nightreg scheduler`).
4. **Load**: `--concurrency` visitors in a client process, each looping GET the kiosk form and
   POST the check-in (as bench/checkin.py's phase 1), from `--lead` seconds before the purge
   until `--tail` seconds after it.
5. **Purge**: `nightreg.services.retention.purge(db, settings, now=now, batch=--batch)`, timed;
   the server also times each batch (the DELETE statement and its whole transaction).
6. **Second purge** (no load): it must delete no visit.
7. **Check**: visits left = visits − expired + check-ins made; every acknowledged check-in is
   in the database; the VisitAggregate sums (visits, persons, overnight stays) grew by exactly
   what was deleted; the protected visits and the recent flags are all still there.

Targets: check-in POST p95 during the purge <= 250 ms, 0 check-in errors. The exit status is 1
when a check fails, 2 when setup fails, 0 otherwise (also when a latency target is missed).
See bench/README.md, "Purge benchmark".
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], the app is one up
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from litestar import MediaType, Response, get, post  # noqa: E402
from sqlalchemy import ClauseElement, Executable, Table, event, func, insert, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from sqlalchemy.ext.compiler import compiles  # noqa: E402
from sqlalchemy.sql.compiler import SQLCompiler  # noqa: E402

from bench.app import create_bench_app  # noqa: E402
from bench.checkin import (  # noqa: E402
    ARRIVED_RE,
    CSRF_RE,
    DEPARTURE_RE,
    IDEMPOTENCY_RE,
    LINK_RE,
    YACHT,
    CpuSample,
    CpuUse,
    Environment,
    SetupError,
    app_revision,
    background_load,
    percentile,
    process_cpu,
    start_server,
    stop_server,
)
from bench.checkin import prepare as prepare_checkin  # noqa: E402
from bench.register import TZ_NAME, SiteInfo, VisitMaker, analyze  # noqa: E402
from nightreg.context import AppContext  # noqa: E402
from nightreg.db import Database, make_engine  # noqa: E402
from nightreg.models import (  # noqa: E402
    CheckinPoint,
    Flag,
    LegalHold,
    Site,
    Visit,
    VisitAggregate,
    flag_visit,
)
from nightreg.services import aggregates, retention  # noqa: E402
from nightreg.services.retention import due as retention_due  # noqa: E402
from nightreg.services.retention import purging  # noqa: E402
from nightreg.settings import Settings  # noqa: E402

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_purge"
SEED_BATCH = 10_000
TARGET_P95_MS = 250.0
EVIDENCE_PER_FLAG = 5
HELD_SUBJECT = "reg:BENCHHELD1"
# Where the seeded visits arrived, in days before now. Due visits left before 365 days ago
# (stays last at most 14 days and a few hours); recent ones arrived in the last 340 days.
OLD_FROM, OLD_TO = 730, 382
RECENT_FROM = 340

_visit = cast(Table, Visit.__table__)
_site = cast(Table, Site.__table__)
_point = cast(Table, CheckinPoint.__table__)
_flag = cast(Table, Flag.__table__)
_hold = cast(Table, LegalHold.__table__)


# ------------------------------------------------------------------------------- the server


@dataclass
class PurgeProbe:
    """What the purge did and how long its parts took (monotonic seconds, shared by processes)."""

    started: float = 0.0
    finished: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    # Per batch of visits: the DELETE … RETURNING statement, and its whole write transaction
    # (from BEGIN to COMMIT: what SQLite's write lock is held for).
    statements: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)
    transactions: list[float] = field(default_factory=list)
    clean_up: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "finished": self.finished,
            "result": self.result,
            "error": self.error,
            "statements": self.statements,
            "transactions": self.transactions,
            "clean_up": self.clean_up,
            "running": self.started > 0 and not self.finished,
        }


# The probe the engine events and the timed clean-up write into (one purge at a time).
_CURRENT: list[PurgeProbe] = [PurgeProbe()]


def instrument(db: Database) -> None:
    """Time every batch of visits the purge deletes, from SQLAlchemy's engine events."""
    engine = db.engine.sync_engine

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.info["bench_tx"] = time.monotonic()

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("DELETE FROM visit "):
            conn.info["bench_stmt"] = time.monotonic()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        started = conn.info.pop("bench_stmt", None)
        if started is not None:
            _CURRENT[0].statements.append((started, time.monotonic() - started))
            conn.info["bench_purge_tx"] = True

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        if conn.info.pop("bench_purge_tx", False):
            began = conn.info.get("bench_tx", time.monotonic())
            _CURRENT[0].transactions.append(time.monotonic() - began)

    if getattr(purging._clean_up, "bench_timed", False):
        return
    original = purging._clean_up

    async def timed_clean_up(*args: Any, **kwargs: Any) -> None:
        began = time.monotonic()
        try:
            await original(*args, **kwargs)
        finally:
            _CURRENT[0].clean_up = time.monotonic() - began

    timed_clean_up.bench_timed = True  # type: ignore[attr-defined]
    purging._clean_up = timed_clean_up


async def run_purge(db: Database, settings: Settings, batch: int) -> PurgeProbe:
    probe = _CURRENT[0] = PurgeProbe()
    probe.started = time.monotonic()
    try:
        result = await retention.purge(db, settings, now=datetime.now(UTC), batch=batch)
        probe.result = {**result.counts(), "finished": result.finished}
    except Exception as exc:  # reported to the benchmark, which fails the run
        probe.error = f"{type(exc).__name__}: {exc}"
    finally:
        probe.finished = time.monotonic()
    return probe


def create_purge_app() -> Any:
    """bench/app.py's app plus `POST /bench/purge?batch=N` (starts a purge) and
    `GET /bench/purge` (its probe)."""
    app = create_bench_app()
    ctx: AppContext = app.state.ctx
    cache_kib = int(os.environ.get("BENCH_SQLITE_CACHE_KIB") or 0)
    if cache_kib and ctx.db.is_sqlite:
        # An experiment (--sqlite-cache-mb): a bigger page cache on every connection.
        @event.listens_for(ctx.db.engine.sync_engine, "connect")
        def _cache(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
            cursor.close()

    tasks: list[asyncio.Task[PurgeProbe]] = []
    instrument(ctx.db)

    @post("/bench/purge", media_type=MediaType.JSON, exclude_from_csrf=True, status_code=202)
    async def start_purge(batch: int = retention.BATCH) -> Response[dict[str, Any]]:
        if tasks and not tasks[-1].done():
            return Response({"error": "a purge is running"}, status_code=409)
        tasks.append(asyncio.create_task(run_purge(ctx.db, ctx.settings, batch)))
        await asyncio.sleep(0)  # the task has set its probe
        return Response({"started": True}, status_code=202)

    @get("/bench/purge", media_type=MediaType.JSON)
    async def purge_state() -> dict[str, Any]:
        return _CURRENT[0].as_dict() if tasks else {"running": False}

    app.register(start_purge)
    app.register(purge_state)
    return app


# ------------------------------------------------------------------------------- seeding


@dataclass
class Seeded:
    now: datetime
    sites: list[SiteInfo]
    visits: int
    expired: int
    expired_persons: int
    expired_stays: int
    protected_refs: list[str]  # old but kept: flag evidence and held visits
    kept_flags: int
    due_flags: int
    held: int
    held_site: int
    seconds: float
    analyze_seconds: float = 0.0


@dataclass
class Plan:
    """Which old visits are what: indices into the old visits, in order of arrival."""

    old: int
    kept_evidence: list[list[int]]  # per recent flag
    due_evidence: list[list[int]]  # per old (due) flag
    held: list[int]


def plan(args: argparse.Namespace, rng: random.Random) -> Plan:
    protected = args.flags * EVIDENCE_PER_FLAG + args.held
    old = args.expired + protected
    chosen = rng.sample(range(old), protected + args.flags * EVIDENCE_PER_FLAG)
    kept = chosen[: args.flags * EVIDENCE_PER_FLAG]
    held = chosen[args.flags * EVIDENCE_PER_FLAG : protected]
    due = chosen[protected:]
    per = EVIDENCE_PER_FLAG
    return Plan(
        old=old,
        kept_evidence=[kept[i * per : (i + 1) * per] for i in range(args.flags)],
        due_evidence=[due[i * per : (i + 1) * per] for i in range(args.flags)],
        held=held,
    )


@dataclass
class Tally:
    expired: int = 0
    persons: int = 0
    stays: int = 0
    refs: dict[int, str] = field(default_factory=dict)  # old index -> reference (marked ones)


def _rows(
    args: argparse.Namespace,
    sites: list[SiteInfo],
    points: dict[int, int],
    now: datetime,
    layout: Plan,
    tally: Tally,
) -> Iterator[dict[str, Any]]:
    """Old visits first, then recent ones, each in order of arrival, as a register grows."""
    maker = VisitMaker(args.seed, now)
    rng = random.Random(args.seed + 1)
    tz = ZoneInfo(TZ_NAME)
    site_of: dict[int, SiteInfo] = {}
    for k, indices in enumerate(layout.kept_evidence + layout.due_evidence):
        for i in indices:
            site_of[i] = sites[k % len(sites)]
    held_site = sites[1 % len(sites)]
    for i in layout.held:
        site_of[i] = held_site
    protected = {i for ev in layout.kept_evidence for i in ev} | set(layout.held)
    start = now - timedelta(days=OLD_FROM)
    step = (OLD_FROM - OLD_TO) * 86400.0 / max(layout.old, 1)
    for i in range(layout.old):
        site = site_of.get(i) or rng.choice(sites)
        arrived = start + timedelta(seconds=i * step + rng.random() * step)
        row = maker.row(site, points[site.id], arrived, present=False)
        if i in site_of:
            tally.refs[i] = row["reference"]
        if i in layout.held:
            row["subject_key"] = HELD_SUBJECT
        if i not in protected:
            tally.expired += 1
            tally.persons += row["persons"]
            ends = row["departed_at"] or row["expected_departure_at"]
            tally.stays += row["persons"] * len(aggregates.nights(arrived, ends, tz))
        yield row
    recent = args.visits - args.expired - len(protected)
    present = min(recent, 40 * len(sites))
    departed = recent - present
    start = now - timedelta(days=RECENT_FROM)
    step = (RECENT_FROM - 1) * 86400.0 / max(departed, 1)
    for i in range(departed):
        site = rng.choice(sites)
        arrived = start + timedelta(seconds=i * step + rng.random() * step)
        yield maker.row(site, points[site.id], arrived, present=False)
    tonight = sorted(now - timedelta(minutes=rng.randint(5, 6 * 24 * 60)) for _ in range(present))
    for arrived in tonight:
        site = rng.choice(sites)
        yield maker.row(site, points[site.id], arrived, present=True)


async def seed(url: str, args: argparse.Namespace) -> Seeded:
    now = datetime.now(UTC).replace(microsecond=0)
    created = now - timedelta(days=OLD_FROM + 1)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                _site.update().where(_site.c.slug == "bench").values(created_at=created)
            )
            await conn.execute(
                insert(_site),
                [
                    {
                        "slug": f"site-{i + 1:02d}",
                        "name": f"Bench site {i + 1}",
                        "kind": "marina" if i % 3 else "business_park",
                        "municipality": "Hoorn",
                        "timezone": TZ_NAME,
                        "contact": "havenmeester@example.nl",
                        "is_active": True,
                        "created_at": created,
                    }
                    for i in range(args.sites)
                ],
            )
            result = await conn.execute(select(_site.c.id, _site.c.slug, _site.c.kind))
            sites = sorted(
                (SiteInfo(id=r.id, slug=r.slug, kind=r.kind) for r in result), key=lambda s: s.id
            )
            have = {r.site_id for r in await conn.execute(select(_point.c.site_id))}
            missing = [s for s in sites if s.id not in have]
            if missing:
                await conn.execute(
                    insert(_point),
                    [
                        {
                            "site_id": s.id,
                            "name": "steiger-a",
                            "token": hashlib.sha256(f"point-{s.id}".encode()).hexdigest()[:32],
                            "kiosk_mode": False,
                            "is_active": True,
                            "created_at": created,
                        }
                        for s in missing
                    ],
                )
            points: dict[int, int] = {}
            for r in await conn.execute(
                select(_point.c.site_id, _point.c.id).order_by(_point.c.id)
            ):
                points.setdefault(r.site_id, r.id)

        rng = random.Random(args.seed + 2)
        layout = plan(args, rng)
        tally = Tally()
        started = time.perf_counter()
        rows = 0
        stream = _rows(args, sites, points, now, layout, tally)
        while True:
            batch = [row for _, row in zip(range(SEED_BATCH), stream, strict=False)]
            if not batch:
                break
            async with engine.begin() as conn:
                await conn.execute(insert(_visit), batch)
            rows += len(batch)
            if rows % 200_000 < SEED_BATCH:
                print(f"  seeded {rows:>9,} visits  {time.perf_counter() - started:6.1f} s")

        # The flags (recent ones keep their evidence, old ones are due and free theirs) and
        # the legal hold on one subject at one site.
        ids = await _ids_of(engine, list(tally.refs.values()))
        flag_rows = []
        groups = [("kept", ev, now - timedelta(days=10)) for ev in layout.kept_evidence]
        groups += [("due", ev, now - timedelta(days=400)) for ev in layout.due_evidence]
        for k, (what, _ev, raised) in enumerate(groups):
            flag_rows.append(
                {
                    "site_id": sites[k % len(sites)].id,
                    "rule": "night_movement",
                    "subject": f"reg:BENCHFLAG{k}",
                    "dedupe_key": f"bench:{what}:{k}",
                    "window_start": raised - timedelta(days=30),
                    "window_end": raised,
                    "score": 60,
                    "reason": "Bench flag",
                    "reason_params": {},
                    "thresholds": {},
                    "status": "open",
                    "restricted": False,
                    "created_at": raised,
                    "updated_at": raised,
                }
            )
        held_site = sites[1 % len(sites)].id
        async with engine.begin() as conn:
            if flag_rows:
                await conn.execute(insert(_flag), flag_rows)
                found = await conn.execute(select(_flag.c.dedupe_key, _flag.c.id))
                flag_ids = dict(found.all())
                links = [
                    {"flag_id": flag_ids[f"bench:{what}:{k}"], "visit_id": ids[tally.refs[i]]}
                    for k, (what, ev, _raised) in enumerate(groups)
                    for i in ev
                ]
                await conn.execute(insert(flag_visit), links)
            if layout.held:
                await conn.execute(
                    insert(_hold),
                    [
                        {
                            "scope": "subject",
                            "case_reference": "BENCH-1",
                            "reason": "Benchmark hold",
                            "until": None,
                            "site_id": held_site,
                            "subject_key": HELD_SUBJECT,
                            "visit_count": 0,
                            "created_at": now - timedelta(days=1),
                            "created_by": "bench",
                        }
                    ],
                )
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    protected_refs = [
        tally.refs[i] for i in [j for ev in layout.kept_evidence for j in ev] + layout.held
    ]
    return Seeded(
        now=now,
        sites=sites,
        visits=rows,
        expired=tally.expired,
        expired_persons=tally.persons,
        expired_stays=tally.stays,
        protected_refs=protected_refs,
        kept_flags=args.flags,
        due_flags=args.flags,
        held=len(layout.held),
        held_site=held_site,
        seconds=seconds,
    )


async def _ids_of(engine: Any, references: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    async with engine.connect() as conn:
        for start in range(0, len(references), 500):
            chunk = references[start : start + 500]
            rows = await conn.execute(
                select(_visit.c.reference, _visit.c.id).where(_visit.c.reference.in_(chunk))
            )
            out.update(rows.all())
    return out


SEED_OPTIONS = ("visits", "expired", "sites", "flags", "held", "seed")


def save_seed(cache: Path, setup: Environment, seeded: Seeded, args: argparse.Namespace) -> None:
    """Copy the seeded SQLite database to `cache` (backup API), its description beside it."""
    source = sqlite3.connect(make_url(setup.database_url).database or "")
    target = sqlite3.connect(cache)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    described = {
        **dataclasses.asdict(seeded),
        "now": seeded.now.isoformat(),
        "token": setup.token,
        "options": {k: getattr(args, k) for k in SEED_OPTIONS},
    }
    cache.with_suffix(cache.suffix + ".json").write_text(json.dumps(described))


def restore_seed(cache: Path, setup: Environment, args: argparse.Namespace) -> Seeded:
    described = json.loads(cache.with_suffix(cache.suffix + ".json").read_text())
    options = {k: getattr(args, k) for k in SEED_OPTIONS}
    if described.pop("options") != options:
        raise SetupError(f"{cache} was seeded with other options; remove it or match them")
    target = Path(make_url(setup.database_url).database or "")
    for stale in target.parent.glob(target.name + "*"):
        stale.unlink()
    shutil.copyfile(cache, target)
    setup.token = described.pop("token")
    described["now"] = datetime.fromisoformat(described["now"])
    described["sites"] = [SiteInfo(**site) for site in described["sites"]]
    return Seeded(**described)


# ------------------------------------------------------------------------------- the load


@dataclass
class Samples:
    """What the client process measured: (start, seconds) per request, monotonic clock."""

    gets: list[tuple[float, float]] = field(default_factory=list)
    posts: list[tuple[float, float]] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # private link tokens
    cpu: float = 0.0


async def _visitor(
    base_url: str,
    token: str,
    number: int,
    running: Callable[[], bool],
    out: Samples,
    think: float,
    request_timeout: float,
) -> None:
    form_url = f"/k/{token}?kind=vessel"
    post_url = f"/k/{token}"
    clock = time.monotonic
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    client = httpx.AsyncClient(base_url=base_url, timeout=request_timeout, limits=limits)
    async with client:
        i = 0
        while running():
            i += 1
            started = clock()
            try:
                page = await client.get(form_url)
            except Exception as exc:  # counted, never fatal: the run goes on
                out.errors.append((started, f"GET {type(exc).__name__}"))
                await asyncio.sleep(0.01)
                continue
            if page.status_code != 200:
                out.errors.append((started, f"GET status {page.status_code}"))
                continue
            out.gets.append((started, clock() - started))
            html = page.text
            found = [p.search(html) for p in (CSRF_RE, IDEMPOTENCY_RE, ARRIVED_RE, DEPARTURE_RE)]
            if not all(found):
                out.errors.append((started, "GET form fields missing"))
                continue
            csrf, key, arrived, departure = (m.group(1) for m in found if m)
            form = {
                **YACHT,
                "_csrf_token": csrf,
                "idempotency_key": key,
                "registration": f"NL-PURGE-{number}-{i}",
                "arrived_at": arrived,
                "expected_departure_at": departure,
            }
            started = clock()
            try:
                answer = await client.post(post_url, data=form)
            except Exception as exc:  # counted, never fatal: the run goes on
                out.errors.append((started, f"POST {type(exc).__name__}"))
                await asyncio.sleep(0.01)
                continue
            link = LINK_RE.match(answer.headers.get("location", ""))
            if answer.status_code != 303 or link is None:
                out.errors.append((started, f"POST status {answer.status_code}"))
                continue
            out.posts.append((started, clock() - started))
            out.acknowledged.append(link.group(1))
            if think:
                await asyncio.sleep(think * (0.5 + random.random()))


async def _load(job: dict[str, Any], stop: Any, ready: Any) -> Samples:
    out = Samples()
    ready.set()
    state = {"running": True}

    async def watch() -> None:
        # A thread waits for the other process's event; the visitors read a plain flag.
        await asyncio.to_thread(stop.wait)
        state["running"] = False

    watcher = asyncio.create_task(watch())
    cpu = time.process_time()
    await asyncio.gather(
        *(
            _visitor(
                job["base_url"],
                job["token"],
                job["first"] + n,
                lambda: state["running"],
                out,
                job["think"],
                job["timeout"],
            )
            for n in range(job["visitors"])
        )
    )
    out.cpu = time.process_time() - cpu
    await watcher
    return out


def load_main(job: dict[str, Any], stop: Any, ready: Any, results: Any) -> None:
    """Entry point of the client process: visitors check in from when `ready` is set until
    `stop` is."""
    try:
        import uvloop

        out = uvloop.run(_load(job, stop, ready))
    except ImportError:
        out = asyncio.run(_load(job, stop, ready))
    results.put(out)


# ------------------------------------------------------------------------------- checks


@dataclass
class DbState:
    visits: int
    checkins: int  # visits created after the seeding
    kiosk_hashes: frozenset[str]
    sums: tuple[int, int, int]  # aggregate visits, persons, overnight stays
    flags: int
    protected_left: int


async def db_state(url: str, seeded: Seeded) -> DbState:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            visits = await conn.scalar(select(func.count()).select_from(_visit))
            checkins = await conn.scalar(
                select(func.count()).select_from(_visit).where(_visit.c.created_at > seeded.now)
            )
            hashes = frozenset(
                await conn.scalars(
                    select(_visit.c.private_token_hash).where(_visit.c.created_at > seeded.now)
                )
            )
            agg = cast(Table, VisitAggregate.__table__)
            sums = (
                await conn.execute(
                    select(
                        func.coalesce(func.sum(agg.c.visits), 0),
                        func.coalesce(func.sum(agg.c.persons), 0),
                        func.coalesce(func.sum(agg.c.overnight_stays), 0),
                    )
                )
            ).one()
            flags = await conn.scalar(select(func.count()).select_from(_flag))
            protected = 0
            refs = seeded.protected_refs
            for start in range(0, len(refs), 500):
                protected += (
                    await conn.scalar(
                        select(func.count())
                        .select_from(_visit)
                        .where(_visit.c.reference.in_(refs[start : start + 500]))
                    )
                    or 0
                )
    finally:
        await engine.dispose()
    return DbState(
        visits=int(visits or 0),
        checkins=int(checkins or 0),
        kiosk_hashes=hashes,
        sums=(int(sums[0]), int(sums[1]), int(sums[2])),
        flags=int(flags or 0),
        protected_left=protected,
    )


ENDS_INDEX = (
    "CREATE INDEX bench_ix_visit_site_ends ON visit "
    "(site_id, (coalesce(departed_at, expected_departure_at)))"
)


async def create_ends_index(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(ENDS_INDEX)
            await conn.exec_driver_sql("ANALYZE visit")
    finally:
        await engine.dispose()


class Explain(Executable, ClauseElement):
    """EXPLAIN of a statement, with its bound parameters (SQLite: EXPLAIN QUERY PLAN)."""

    inherit_cache = False

    def __init__(self, statement: Any, analyze: bool = False) -> None:
        self.statement = statement
        self.analyze = analyze


@compiles(Explain)
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    if compiler.dialect.name == "sqlite":
        prefix = "EXPLAIN QUERY PLAN "
    else:
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if element.analyze else "EXPLAIN "
    return prefix + compiler.process(element.statement, **kw)


async def explain_batch(url: str, settings: Settings, batch: int) -> list[str]:
    """The plan of one batch of the purge's visits at the site with the most due visits."""
    from sqlalchemy import delete

    db = Database(url)
    now = datetime.now(UTC)
    today = retention_due.today_of(settings, now)
    out: list[str] = []
    try:
        pols = await retention.policies(db, settings)
        async with db.read() as session:
            counts = {
                p.site_id: await session.scalar(
                    select(func.count()).select_from(Visit).where(Visit.site_id == p.site_id)
                )
                or 0
                for p in pols
            }
            policy = max(pols, key=lambda p: counts[p.site_id])
            condition = retention_due.due_visits(policy, now, today)
            ids = select(Visit.id).where(condition).limit(batch).correlate(None)
            stmt = delete(Visit).where(Visit.id.in_(ids)).returning(*aggregates.stay_columns())
            for title, what in (
                (f"batch DELETE at site {policy.slug} ({counts[policy.site_id]:,} visits)",
                 Explain(stmt)),
                ("its SELECT of the batch's ids, executed",
                 Explain(select(Visit.id).where(condition).limit(batch), analyze=True)),
            ):  # fmt: skip
                rows = await session.execute(what)
                out.append(title + ":")
                for row in rows:
                    cells = [str(c) for c in row]
                    out.append("    " + (cells[-1] if len(cells) > 1 else cells[0]))
    finally:
        await db.dispose()
    return out


# ------------------------------------------------------------------------------- the run


def ms(seconds: float) -> float:
    return seconds * 1000


@dataclass(frozen=True)
class Lat:
    count: int
    per_second: float
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: list[tuple[float, float]], since: float, until: float) -> Lat:
        values = sorted(s for t, s in samples if since <= t < until)
        span = until - since
        return cls(
            count=len(values),
            per_second=len(values) / span if span > 0 else math.nan,
            p50=percentile(values, 50),
            p95=percentile(values, 95),
            p99=percentile(values, 99),
            max=ms(values[-1]) if values else math.nan,
        )

    def line(self, label: str) -> str:
        return (
            f"  {label:<26} {self.per_second:7.1f}/s  p50 {self.p50:7.1f}  p95 {self.p95:7.1f}  "
            f"p99 {self.p99:7.1f}  max {self.max:7.1f} ms  (n={self.count})"
        )


def _fetch(base_url: str, path: str) -> dict[str, Any]:
    answer = httpx.get(f"{base_url}{path}", timeout=30)
    answer.raise_for_status()
    return cast(dict[str, Any], answer.json())


def purge_via_server(base_url: str, batch: int) -> dict[str, Any]:
    answer = httpx.post(f"{base_url}/bench/purge", params={"batch": batch}, timeout=30)
    if answer.status_code != 202:
        raise SetupError(f"POST /bench/purge answered {answer.status_code}: {answer.text}")
    while True:
        time.sleep(0.25)
        state = _fetch(base_url, "/bench/purge")
        if not state.get("running"):
            return state


def purge_here(url: str, env: dict[str, str], batch: int) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        db = Database(url)
        try:
            instrument(db)
            probe = await run_purge(db, Settings.from_env(env), batch)
        finally:
            await db.dispose()
        return probe.as_dict()

    return asyncio.run(run())


def _percentiles_ms(values: list[float]) -> str:
    ordered = sorted(values)
    if not ordered:
        return "n/a"
    return (
        f"p50 {percentile(ordered, 50):.1f}  p95 {percentile(ordered, 95):.1f}  "
        f"max {ms(ordered[-1]):.1f} ms  (n={len(ordered)})"
    )


def _database(value: str) -> str:
    if value == "sqlite" or value.startswith("sqlite"):
        return "sqlite"
    if value == "postgresql" or value.startswith("postgresql"):
        return "postgresql"
    raise argparse.ArgumentTypeError("give sqlite, postgresql or a postgresql+asyncpg:// URL")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--database-url",
        default="sqlite",
        help="sqlite (a new file in a temporary directory), postgresql "
        f"({DEFAULT_PG_URL}) or a postgresql+asyncpg:// URL; its public schema is dropped, "
        "its name must hold 'bench'",
    )
    parser.add_argument("--visits", type=int, default=2000, help="visits seeded in all")
    parser.add_argument("--expired", type=int, default=1000, help="of which due for the purge")
    parser.add_argument("--concurrency", type=int, default=50, help="visitors checking in")
    parser.add_argument(
        "--batch", type=int, default=None,
        help="purge batch size (default: the purge's own, 100 on SQLite and 500 on PostgreSQL)",
    )  # fmt: skip
    parser.add_argument("--sites", type=int, default=5, help="sites besides 'bench'")
    parser.add_argument("--flags", type=int, default=10, help="recent flags, and as many due")
    parser.add_argument("--held", type=int, default=50, help="old visits under a legal hold")
    parser.add_argument("--lead", type=float, default=3.0, help="seconds of load before")
    parser.add_argument("--tail", type=float, default=1.0, help="seconds of load after")
    parser.add_argument("--think-ms", type=float, default=0.0, help="pause between check-ins")
    parser.add_argument("--purge-in", choices=("server", "process"), default="server")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--no-explain", action="store_true", help="skip the EXPLAIN")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--seed-cache",
        metavar="FILE",
        help="SQLite only: copy the seeded database from FILE (and FILE.json) if it exists, "
        "else seed and save a copy there, so runs with other batch sizes skip the seeding",
    )
    parser.add_argument(
        "--ends-index",
        action="store_true",
        help="try an index the app does not have: visit (site_id, coalesce(departed_at, "
        "expected_departure_at)), which the purge's batch query can range-scan",
    )
    parser.add_argument(
        "--sqlite-cache-mb",
        type=int,
        default=0,
        help="try a bigger SQLite page cache (PRAGMA cache_size) on the server's connections",
    )
    parser.add_argument(
        "--seed-only", action="store_true", help="with --seed-cache: seed, save and stop"
    )
    args = parser.parse_args(argv)
    try:
        db_kind = _database(args.database_url)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    protected = args.flags * EVIDENCE_PER_FLAG + args.held
    if args.expired < args.flags * EVIDENCE_PER_FLAG or args.visits < args.expired + protected:
        parser.error(
            f"need --expired >= {EVIDENCE_PER_FLAG} × --flags and "
            f"--visits >= --expired + {EVIDENCE_PER_FLAG} × --flags + --held"
        )
    if args.batch is None:  # measure what the nightly job does on this database
        args.batch = retention.SQLITE_BATCH if db_kind == "sqlite" else retention.BATCH
    if args.concurrency < 1 or args.sites < 1 or args.batch < 1:
        parser.error("--concurrency, --sites and --batch must be at least 1")
    if args.seed_cache and db_kind != "sqlite":
        parser.error("--seed-cache works with SQLite only")
    if args.seed_only and not args.seed_cache:
        parser.error("--seed-only needs --seed-cache")

    started_at = datetime.now(UTC)
    background = background_load()
    work_dir = Path(tempfile.mkdtemp(prefix="nightreg-purge-"))
    server = None
    server_log = work_dir / "server.log"
    try:
        print(f"preparing {db_kind} in {work_dir} …", flush=True)
        pg_url = args.database_url if "://" in args.database_url else DEFAULT_PG_URL
        ns = argparse.Namespace(db=db_kind, pg_url=pg_url, port=args.port)
        setup = prepare_checkin(ns, work_dir)
        url = setup.database_url
        cache = Path(args.seed_cache) if args.seed_cache else None
        if cache is not None and cache.exists():
            print(f"copying the seeded database from {cache} …", flush=True)
            seeded = restore_seed(cache, setup, args)
        else:
            print(f"seeding {args.visits:,} visits ({args.expired:,} due) …", flush=True)
            seeded = asyncio.run(seed(url, args))
            t0 = time.perf_counter()
            asyncio.run(analyze(url))
            seeded.analyze_seconds = time.perf_counter() - t0
            if cache is not None:
                save_seed(cache, setup, seeded, args)
        if args.seed_only:
            print(f"seeded in {seeded.seconds:.0f} s, saved to {cache}")
            return 0
        if args.ends_index:
            print("creating the index on (site_id, end of the visit) …", flush=True)
            asyncio.run(create_ends_index(url))
        settings = Settings.from_env(setup.env)
        plans = [] if args.no_explain else asyncio.run(explain_batch(url, settings, args.batch))
        before = asyncio.run(db_state(url, seeded))
        if args.sqlite_cache_mb:
            setup.env["BENCH_SQLITE_CACHE_KIB"] = str(args.sqlite_cache_mb * 1024)
        server = start_server(setup, args.port, server_log, "bench.purge:create_purge_app")
        code = run(args, db_kind, setup, seeded, settings, plans, before, server, server_log,
                   started_at, background)  # fmt: skip
    except SetupError as exc:
        print(f"bench: setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            stop_server(server)
        if args.keep:
            print(f"kept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return code


def run(
    args: argparse.Namespace,
    db_kind: str,
    setup: Environment,
    seeded: Seeded,
    settings: Settings,
    plans: list[str],
    before: DbState,
    server: Any,
    server_log: Path,
    started_at: datetime,
    background: float,
) -> int:
    spawn = multiprocessing.get_context("spawn")
    # Warm-up (unmeasured): Jinja compiles the templates, the pool opens connections.
    warm_stop, warm_ready, warm_q = spawn.Event(), spawn.Event(), spawn.Queue()
    job = {
        "base_url": setup.base_url, "token": setup.token, "visitors": 2, "first": 10**6,
        "think": 0.0, "timeout": args.timeout,
    }  # fmt: skip
    warm = spawn.Process(target=load_main, args=(job, warm_stop, warm_ready, warm_q))
    warm.start()
    if not warm_ready.wait(timeout=120):
        raise SetupError("the client process did not start within 120 s")
    time.sleep(2.0)
    warm_stop.set()
    warmed: Samples = warm_q.get(timeout=120)
    warm.join()

    stop, ready, results = spawn.Event(), spawn.Event(), spawn.Queue()
    job = {**job, "visitors": args.concurrency, "first": 0, "think": args.think_ms / 1000}
    load = spawn.Process(target=load_main, args=(job, stop, ready, results))
    with_pg = db_kind == "postgresql"
    print(f"load: {args.concurrency} visitors; purge after {args.lead:g} s …", flush=True)
    load.start()
    assert load.pid is not None
    if not ready.wait(timeout=120):
        raise SetupError("the client process did not start within 120 s")
    load_start = time.monotonic()
    time.sleep(args.lead)
    cpu_before = CpuSample.take(server.pid, with_pg)
    load_cpu_before = process_cpu(load.pid)
    if args.purge_in == "server":
        probe = purge_via_server(setup.base_url, args.batch)
    else:
        probe = purge_here(setup.database_url, setup.env, args.batch)
    cpu_after = CpuSample.take(server.pid, with_pg)
    load_cpu = process_cpu(load.pid) - load_cpu_before
    print(f"purge done in {probe['finished'] - probe['started']:.1f} s", flush=True)
    time.sleep(args.tail)
    stop.set()
    samples: Samples = results.get(timeout=300)
    load.join()

    print("second purge (no load) …", flush=True)
    if args.purge_in == "server":
        second = purge_via_server(setup.base_url, args.batch)
    else:
        second = purge_here(setup.database_url, setup.env, args.batch)
    stop_server(server)
    after = asyncio.run(db_state(setup.database_url, seeded))
    cpu = CpuUse.between(cpu_before, cpu_after, load_cpu)
    return report(
        args, db_kind, setup, seeded, plans, before, after, warmed, samples, probe, second, cpu,
        server_log, started_at, background, load_start,
    )  # fmt: skip


def report(
    args: argparse.Namespace,
    db_kind: str,
    setup: Environment,
    seeded: Seeded,
    plans: list[str],
    before: DbState,
    after: DbState,
    warmed: Samples,
    samples: Samples,
    probe: dict[str, Any],
    second: dict[str, Any],
    cpu: CpuUse,
    server_log: Path,
    started_at: datetime,
    background: float,
    load_start: float,
) -> int:
    import sqlalchemy

    w = print
    p_start, p_end = probe["started"], probe["finished"]
    seconds = p_end - p_start
    result = probe["result"]
    deleted = int(result.get("visits", 0))
    # The baseline leaves out the load's first second (50 first requests at once).
    base_start = min(load_start + 1.0, p_start)
    base_get = Lat.of(samples.gets, base_start, p_start)
    base_post = Lat.of(samples.posts, base_start, p_start)
    during_get = Lat.of(samples.gets, p_start, p_end)
    during_post = Lat.of(samples.posts, p_start, p_end)
    # After the purge: the same load without it, under the same conditions (--tail).
    load_end = max([t for t, _ in samples.gets + samples.posts] or [p_end])
    after_get = Lat.of(samples.gets, p_end, load_end)
    after_post = Lat.of(samples.posts, p_end, load_end)
    errors_during = Counter(label for t, label in samples.errors if p_start <= t < p_end)
    errors_all = Counter(label for _, label in samples.errors)
    statements = probe["statements"]
    visits_phase = (statements[-1][0] + statements[-1][1] - statements[0][0]) if statements else 0.0

    acks = warmed.acknowledged + samples.acknowledged
    ack_hashes = {hashlib.sha256(t.encode()).hexdigest() for t in acks}
    lost = len(ack_hashes - after.kiosk_hashes)
    extra = len(after.kiosk_hashes - ack_hashes)
    kept = seeded.visits - seeded.expired
    grew = tuple(a - b for a, b in zip(after.sums, before.sums, strict=True))
    want_grew = (seeded.expired, seeded.expired_persons, seeded.expired_stays)
    second_visits = int(second.get("result", {}).get("visits", -1))
    log_text = server_log.read_text(errors="replace") if server_log.exists() else ""
    tracebacks = log_text.count("Traceback (most recent call last)")

    w("=" * 100)
    w("Nachtregister purge benchmark")
    w("=" * 100)
    w(f"date            {started_at:%Y-%m-%d %H:%M:%S %Z}")
    w(f"database        {db_kind}  ({make_url(setup.database_url).render_as_string()})")
    w(f"app             {app_revision()}")
    w(
        f"machine         nproc {os.cpu_count()}, {platform.machine()}, Python "
        f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        f"{platform.system()} {platform.release()}"
    )
    w(f"background      {background:.0f}% of all cores busy in the 2 s before the run")
    w(
        f"rows            {seeded.visits:,} visits at {len(seeded.sites)} sites, "
        f"{seeded.expired:,} due; protected old visits {len(seeded.protected_refs)} "
        f"({seeded.kept_flags} recent flags × {EVIDENCE_PER_FLAG} + {seeded.held} held); "
        f"{seeded.due_flags} due flags"
    )
    w(
        f"seeding         {seeded.seconds:.0f} s ({seeded.visits / seeded.seconds:,.0f} rows/s), "
        f"ANALYZE {seeded.analyze_seconds:.1f} s"
    )
    w(
        f"conditions      batch {args.batch}, {args.concurrency} visitors "
        f"(think {args.think_ms:g} ms), purge in the {args.purge_in}"
        + (", ends index" if args.ends_index else "")
        + (f", SQLite cache {args.sqlite_cache_mb} MB" if args.sqlite_cache_mb else "")
        + "; client, server"
        f"{' and PostgreSQL' if db_kind == 'postgresql' else ''} share the machine"
    )
    w("")
    for line in plans:
        w(line)
    if plans:
        w("")
    w("Purge")
    w(f"  time                       {seconds:.1f} s   ({deleted / seconds if seconds else 0:,.0f} "
      "visits/s)")  # fmt: skip
    w(f"  deleted                    {result}")
    if probe.get("error"):
        w(f"  ERROR                      {probe['error']}")
    w(f"  visit batches              {len(statements)} in {visits_phase:.1f} s")
    w(f"  batch DELETE statement     {_percentiles_ms([s for _, s in statements])}")
    w(f"  batch transaction          {_percentiles_ms(probe['transactions'])}")
    w(f"  clean-up (checkpoint / VACUUM) {probe['clean_up']:.1f} s")
    w(
        f"  CPU during the purge       server {cpu.server:.0f}%  client {cpu.client:.0f}%"
        + (f"  postgres {cpu.postgres:.0f}%" if db_kind == "postgresql" else "")
        + f"  other {cpu.other:.0f}%  (% of one core; machine {cpu.machine:.0f}% of "
        f"{os.cpu_count()} cores)"
    )
    w("")
    w("Check-ins (latency in ms)")
    w(f"  before the purge ({p_start - base_start:.1f} s, from the load's 2nd second)")
    w(base_get.line("GET form"))
    w(base_post.line("POST check-in"))
    w(f"  during the purge ({seconds:.1f} s)")
    w(during_get.line("GET form"))
    w(during_post.line("POST check-in"))
    w(f"  after the purge ({load_end - p_end:.1f} s, --tail)")
    w(after_get.line("GET form"))
    w(after_post.line("POST check-in"))
    slices = 10
    if seconds > 10 and during_post.count:
        w("  during the purge, by tenths (POST check-in)")
        for k in range(slices):
            a = p_start + k * seconds / slices
            lat = Lat.of(samples.posts, a, a + seconds / slices)
            w(f"    {k + 1:>2}/{slices}  {lat.per_second:6.1f}/s  p95 {lat.p95:7.1f}  "
              f"max {lat.max:7.1f} ms")  # fmt: skip
    w(f"  errors during the purge    {sum(errors_during.values())}  {dict(errors_during) or ''}")
    w(f"  errors in the whole load   {sum(errors_all.values())}  {dict(errors_all) or ''}")
    w(f"  acknowledged check-ins     {len(acks)} (warm-up {len(warmed.acknowledged)})")
    w(f"  server log                 {tracebacks} traceback(s)")
    w("")
    checks = [
        (f"visits left = {kept:,} kept + {after.checkins} check-ins",
         after.visits, kept + after.checkins),
        ("every acknowledged check-in in the database (lost)", lost, 0),
        ("no check-in the client did not see acknowledged (extra)", extra, 0),
        ("visits deleted by the purge", deleted, seeded.expired),
        ("aggregate visits grew by the visits deleted", grew[0], want_grew[0]),
        ("aggregate persons grew by their persons", grew[1], want_grew[1]),
        ("aggregate overnight stays grew by their stays", grew[2], want_grew[2]),
        ("due flags deleted", int(result.get("flags_open", -1)), seeded.due_flags),
        ("recent flags left", after.flags, seeded.kept_flags),
        ("protected old visits left", after.protected_left, len(seeded.protected_refs)),
        ("second purge deletes no visit", second_visits, 0),
        ("purge finished without error", int(bool(probe.get("error")) or not
                                              result.get("finished", False)), 0),
    ]  # fmt: skip
    w("Checks")
    failed = 0
    for label, got, want in checks:
        ok = got == want
        failed += not ok
        w(f"  {label:<56} {got:>12,}  {'PASS' if ok else f'FAIL (want {want:,})'}")
    w(f"  second purge: {second.get('result')} in "
      f"{second.get('finished', 0) - second.get('started', 0):.1f} s")  # fmt: skip
    w("")
    w("Targets")
    err_n = sum(errors_during.values())
    w(f"  check-in POST p95 during the purge <= {TARGET_P95_MS:.0f} ms   {during_post.p95:8.1f}   "
      f"{'PASS' if during_post.p95 <= TARGET_P95_MS else 'FAIL'}")  # fmt: skip
    w(f"  check-in errors during the purge = 0         {err_n:8}   "
      f"{'PASS' if err_n == 0 else 'FAIL'}")  # fmt: skip
    if cpu.machine >= 95:
        w("NOTE: the machine was CPU-saturated during the purge.")
    if background >= 10 or cpu.other >= 20:
        w("NOTE: other processes used a noticeable share of the CPU.")
    if tracebacks:
        w("server log (last lines):")
        w("\n".join(log_text.splitlines()[-20:]))
    w("=" * 100)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
