"""Check-in load benchmark: N concurrent visitors against one uvicorn worker.

    python bench/checkin.py --db sqlite|postgresql [--concurrency 50] [--duration 20]
                            [--port 8765] [--clients 1] [--profile DIR] [--app MODULE:FACTORY]

Prepares a fresh database (an SQLite file in a temporary directory, or the schema of the
PostgreSQL database `nightreg_bench`, dropped and recreated), migrates it with
`nightreg db upgrade`, creates a site and a point with the CLI, and starts the app
(`bench.app:create_bench_app`) under uvicorn as a subprocess. Then two phases of the same
length and concurrency:

1. check-in (mixed): each visitor loops GET the form page, POST the filled-in form (303);
2. post only: each visitor GETs the form once (CSRF cookie and token), then loops POST with a
   fresh idempotency key and registration each time (303 expected);
3. bare insert: each visitor loops `POST /bench/insert` (one ORM insert, 201 expected).

The ratio that counts is phase 2's POST throughput over phase 3's bare-insert throughput.

Finally the database is asked for every visit the check-in phase created and compared with the
check-ins the server acknowledged. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import math
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parent.parent
SITE_SLUG = "bench"  # bench/app.py looks the site up by this slug
BARE_SOURCE = "api"  # the source bench/app.py writes; the kiosk writes "kiosk"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/nightreg_bench"

# Targets the run is judged by.
TARGET_P99_MS = 150.0
TARGET_RATIO = 1.0

# The form page is ~33 kB; precompiled patterns keep the client's parsing cheap.
CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]*)"')
IDEMPOTENCY_RE = re.compile(r'name="idempotency_key" value="([^"]*)"')
ARRIVED_RE = re.compile(r'name="arrived_at"[^>]*?value="([^"]*)"')
DEPARTURE_RE = re.compile(r'name="expected_departure_at"[^>]*?value="([^"]*)"')
LINK_RE = re.compile(r"^/k/v/([A-Za-z0-9_-]+)\?new=1$")

# What a visitor types, as in tests/http/test_checkin.py's yacht(); the times come from the page.
YACHT = {
    "kind": "vessel",
    "vessel_name": "Zeemeeuw",
    "vessel_type": "sail",
    "length_m": "11,5",
    "guest_name": "Jan de Vries",
    "residence": "Hoorn",
    "country": "NL",
    "persons": "2",
}


class SetupError(Exception):
    """The benchmark could not be prepared; nothing was measured."""


# --------------------------------------------------------------------------- load generator


@dataclass
class LoadResult:
    """What one client process measured in one phase (latencies in seconds)."""

    get_latencies: list[float] = field(default_factory=list)
    post_latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)  # private link tokens (check-in)
    # For each acknowledged check-in: when its POST was sent and when its answer came (wall
    # clock, time.time()); bench/backup.py compares them with a backup's snapshot.
    acknowledged_at: list[tuple[float, float]] = field(default_factory=list)
    bare_ok: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0  # CPU seconds this client process used during the phase

    def merge(self, other: LoadResult) -> None:
        self.get_latencies += other.get_latencies
        self.post_latencies += other.post_latencies
        self.errors.update(other.errors)
        self.acknowledged += other.acknowledged
        self.acknowledged_at += other.acknowledged_at
        self.bare_ok += other.bare_ok
        self.elapsed = max(self.elapsed, other.elapsed)
        self.cpu += other.cpu


def _client(base_url: str, timeout: float) -> httpx.AsyncClient:
    # One client per visitor: its own cookie jar (the CSRF cookie) and one kept-alive
    # connection, like one phone.
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def _checkin_visitor(
    client: httpx.AsyncClient, token: str, deadline: float, number: int, res: LoadResult
) -> None:
    form_url = f"/k/{token}?kind=vessel"
    post_url = f"/k/{token}"
    clock = time.perf_counter
    i = 0
    while clock() < deadline:
        i += 1
        started = clock()
        try:
            page = await client.get(form_url)
        except Exception as exc:  # counted, never fatal: the run goes on
            res.errors[f"GET {type(exc).__name__}"] += 1
            await asyncio.sleep(0.01)
            continue
        got = clock()
        if page.status_code != 200:
            res.errors[f"GET status {page.status_code}"] += 1
            continue
        res.get_latencies.append(got - started)
        html = page.text
        found = [p.search(html) for p in (CSRF_RE, IDEMPOTENCY_RE, ARRIVED_RE, DEPARTURE_RE)]
        if not all(found):
            res.errors["GET form fields missing"] += 1
            continue
        csrf, key, arrived, departure = (m.group(1) for m in found if m)
        form = {
            **YACHT,
            "_csrf_token": csrf,
            "idempotency_key": key,
            "registration": f"NL-{number}-{i}",
            "arrived_at": arrived,
            "expected_departure_at": departure,
        }
        started, sent = clock(), time.time()
        try:
            answer = await client.post(post_url, data=form)
        except Exception as exc:  # counted, never fatal: the run goes on
            res.errors[f"POST {type(exc).__name__}"] += 1
            await asyncio.sleep(0.01)
            continue
        got = clock()
        link = LINK_RE.match(answer.headers.get("location", ""))
        if answer.status_code != 303 or link is None:
            res.errors[f"POST status {answer.status_code}"] += 1
            continue
        res.post_latencies.append(got - started)
        res.acknowledged.append(link.group(1))
        res.acknowledged_at.append((sent, time.time()))


async def _post_visitor(
    client: httpx.AsyncClient, token: str, deadline: float, number: int, res: LoadResult
) -> None:
    """One GET of the form (CSRF cookie and token), then POST check-ins in a loop."""
    form_url = f"/k/{token}?kind=vessel"
    post_url = f"/k/{token}"
    clock = time.perf_counter
    base: dict[str, str] | None = None
    while base is None and clock() < deadline:
        try:
            page = await client.get(form_url)
        except Exception as exc:  # counted, never fatal: the run goes on
            res.errors[f"GET {type(exc).__name__}"] += 1
            await asyncio.sleep(0.01)
            continue
        if page.status_code != 200:
            res.errors[f"GET status {page.status_code}"] += 1
            continue
        html = page.text
        found = [p.search(html) for p in (CSRF_RE, ARRIVED_RE, DEPARTURE_RE)]
        if not all(found):
            res.errors["GET form fields missing"] += 1
            continue
        csrf, arrived, departure = (m.group(1) for m in found if m)
        base = {
            **YACHT,
            "_csrf_token": csrf,
            "arrived_at": arrived,
            "expected_departure_at": departure,
        }
    i = 0
    while base is not None and clock() < deadline:
        i += 1
        form = {
            **base,
            "idempotency_key": secrets.token_urlsafe(18),
            "registration": f"NL-P{number}-{i}",
        }
        started, sent = clock(), time.time()
        try:
            answer = await client.post(post_url, data=form)
        except Exception as exc:  # counted, never fatal: the run goes on
            res.errors[f"POST {type(exc).__name__}"] += 1
            await asyncio.sleep(0.01)
            continue
        got = clock()
        link = LINK_RE.match(answer.headers.get("location", ""))
        if answer.status_code != 303 or link is None:
            res.errors[f"POST status {answer.status_code}"] += 1
            continue
        res.post_latencies.append(got - started)
        res.acknowledged.append(link.group(1))
        res.acknowledged_at.append((sent, time.time()))


async def _bare_visitor(client: httpx.AsyncClient, deadline: float, res: LoadResult) -> None:
    clock = time.perf_counter
    while clock() < deadline:
        started = clock()
        try:
            answer = await client.post("/bench/insert")
        except Exception as exc:  # counted, never fatal: the run goes on
            res.errors[f"POST {type(exc).__name__}"] += 1
            await asyncio.sleep(0.01)
            continue
        got = clock()
        if answer.status_code != 201:
            res.errors[f"POST status {answer.status_code}"] += 1
            continue
        res.post_latencies.append(got - started)
        res.bare_ok += 1


async def _run_phase(job: dict[str, Any]) -> LoadResult:
    res = LoadResult()
    clients = [_client(job["base_url"], job["timeout"]) for _ in range(job["visitors"])]
    try:
        await asyncio.sleep(max(0.0, job["start_at"] - time.time()))
        cpu_before = time.process_time()
        started = time.perf_counter()
        deadline = started + job["duration"]
        first = job["first_visitor"]
        if job["phase"] in ("checkin", "post"):
            visitor = _checkin_visitor if job["phase"] == "checkin" else _post_visitor
            visitors = [
                visitor(c, job["token"], deadline, first + n, res) for n, c in enumerate(clients)
            ]
        else:
            visitors = [_bare_visitor(c, deadline, res) for c in clients]
        await asyncio.gather(*visitors)
        res.elapsed = time.perf_counter() - started
        res.cpu = time.process_time() - cpu_before
    finally:
        for c in clients:
            await c.aclose()
    return res


def run_phase(job: dict[str, Any]) -> LoadResult:
    """Entry point of a client process (also called in-process for the warm-up)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_run_phase(job))
    return uvloop.run(_run_phase(job))


def _ready(_: int) -> bool:
    return True


# --------------------------------------------------------------------------- measurements


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list, in milliseconds (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1] * 1000


@dataclass(frozen=True)
class Latency:
    count: int
    per_second: float
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: list[float], elapsed: float) -> Latency:
        ordered = sorted(values)
        return cls(
            count=len(ordered),
            per_second=len(ordered) / elapsed if elapsed else 0.0,
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1] * 1000 if ordered else math.nan,
        )

    def line(self, label: str) -> str:
        return (
            f"{label:<16} {self.per_second:8.1f} req/s   p50 {self.p50:7.1f} ms   "
            f"p95 {self.p95:7.1f} ms   p99 {self.p99:7.1f} ms   max {self.max:7.1f} ms   "
            f"(n={self.count})"
        )


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def postgres_cpu() -> float:
    """CPU seconds used so far by all processes named postgres (the local server).

    A backend that exits during the phase (a connection closed by the pool) leaves its time in
    the postmaster's children's time, so that is counted too.
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        if name.startswith("postgres"):
            fields = text.rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / _TICK
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which is counted in user already
    return total - idle, total


def background_load(seconds: float = 2.0) -> float:
    """Percent of all cores busy while the benchmark does nothing: other users of the machine."""
    busy0, total0 = machine_cpu()
    time.sleep(seconds)
    busy1, total1 = machine_cpu()
    return 100 * (busy1 - busy0) / (total1 - total0) if total1 > total0 else math.nan


@dataclass
class CpuSample:
    at: float
    server: float
    postgres: float
    busy: float
    total: float

    @classmethod
    def take(cls, server_pid: int, with_postgres: bool) -> CpuSample:
        busy, total = machine_cpu()
        return cls(
            at=time.perf_counter(),
            server=process_cpu(server_pid),
            postgres=postgres_cpu() if with_postgres else 0.0,
            busy=busy,
            total=total,
        )


@dataclass(frozen=True)
class CpuUse:
    """Percent of one core, except `machine` which is percent of all cores."""

    server: float
    client: float
    postgres: float
    machine: float
    other: float  # everything else on the machine (other users, the OS), percent of one core

    @classmethod
    def between(cls, before: CpuSample, after: CpuSample, client_cpu: float) -> CpuUse:
        wall = after.at - before.at
        total = after.total - before.total
        server = 100 * (after.server - before.server) / wall
        client = 100 * client_cpu / wall
        postgres = 100 * (after.postgres - before.postgres) / wall
        machine = 100 * (after.busy - before.busy) / total if total else math.nan
        cores = os.cpu_count() or 1
        return cls(
            server=server,
            client=client,
            postgres=postgres,
            machine=machine,
            other=max(0.0, machine * cores - server - client - postgres),
        )


@dataclass
class PhaseReport:
    name: str
    result: LoadResult
    cpu: CpuUse
    pool: dict[str, int]  # connects/checkouts during the phase, from GET /bench/stats


def pool_stats(base_url: str) -> dict[str, int]:
    try:
        answer = httpx.get(f"{base_url}/bench/stats", timeout=10)
        return dict(answer.json()) if answer.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}


# --------------------------------------------------------------------------- setup


@dataclass
class Environment:
    db: str
    database_url: str
    work_dir: Path
    env: dict[str, str]
    base_url: str
    token: str = ""


def _free_port(port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SetupError(f"port {port} is in use ({exc.strerror}); pass --port") from None


def fresh_database(db: str, pg_url: str, work_dir: Path) -> str:
    """A migrated, empty database for a benchmark (an SQLite file in `work_dir`, or `pg_url`
    wiped: its name must hold 'bench'); returns its URL."""
    from nightreg.migrate import upgrade

    if db == "sqlite":
        url = f"sqlite+aiosqlite:///{work_dir / 'nightreg.db'}"
    else:
        url = pg_url
        asyncio.run(reset_postgres(url))
    upgrade(url)
    return url


async def reset_postgres(url: str) -> None:
    """Create the database if missing and empty its public schema (its name must hold 'bench')."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    target = make_url(url)
    name = target.database or ""
    if "bench" not in name:
        raise SetupError(f"refusing to wipe database {name!r}: its name must contain 'bench'")
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    engine = create_async_engine(target)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


def _nightreg(setup: Environment, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nightreg.cli", *args],
        cwd=setup.work_dir,
        env=setup.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise SetupError(f"nightreg {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def prepare(args: argparse.Namespace, work_dir: Path) -> Environment:
    if args.db == "sqlite":
        database_url = f"sqlite+aiosqlite:///{work_dir / 'nightreg.db'}"
    else:
        database_url = args.pg_url
        try:
            asyncio.run(reset_postgres(database_url))
        except SetupError:
            raise
        except Exception as exc:
            raise SetupError(f"cannot prepare PostgreSQL at {database_url}: {exc}") from exc
    base_url = f"http://127.0.0.1:{args.port}"
    limit = str(10**9)
    env = {
        **os.environ,
        "NIGHTREG_DATA_DIR": str(work_dir / "data"),
        "NIGHTREG_DATABASE_URL": database_url,
        "NIGHTREG_SECRET_KEY": secrets.token_urlsafe(48),
        "NIGHTREG_BASE_URL": base_url,
        "NIGHTREG_CHECKIN_RATE_PER_ADDRESS": limit,
        "NIGHTREG_CHECKIN_RATE_PER_POINT": limit,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    setup = Environment(args.db, database_url, work_dir, env, base_url)
    _nightreg(setup, "db", "upgrade")
    _nightreg(setup, "site", "add", SITE_SLUG, "--name", "Jachthaven Bench", "--kind", "marina")
    url = _nightreg(setup, "point", "add", SITE_SLUG, "steiger-a").strip().splitlines()[-1]
    path = urlsplit(url).path
    if not path.startswith("/k/"):
        raise SetupError(f"nightreg point add printed no kiosk URL: {url!r}")
    setup.token = path.removeprefix("/k/")
    return setup


def start_server(
    setup: Environment, port: int, log_path: Path, app: str
) -> subprocess.Popen[bytes]:
    _free_port(port)
    command = [
        sys.executable, "-m", "uvicorn", "--factory", app,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=REPO, env=setup.env, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SetupError(f"the server exited ({server.returncode}):\n{_tail(log_path)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{setup.base_url}/health", timeout=2).status_code == 200:
                return server
        time.sleep(0.2)
    stop_server(server)
    raise SetupError(f"the server did not answer /health within 60 s:\n{_tail(log_path)}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully, running the lifespan
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class DbCounts:
    total: int
    kiosk_hashes: frozenset[str]
    bare: int


async def _count(database_url: str) -> DbCounts:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            total = await conn.scalar(text("SELECT count(*) FROM visit"))
            rows = await conn.execute(
                text(
                    "SELECT v.private_token_hash FROM visit v JOIN site s ON s.id = v.site_id "
                    "WHERE s.slug = :slug AND v.source = 'kiosk'"
                ),
                {"slug": SITE_SLUG},
            )
            hashes = frozenset(r[0] for r in rows)
            bare = await conn.scalar(
                text("SELECT count(*) FROM visit WHERE source = :s"), {"s": BARE_SOURCE}
            )
    finally:
        await engine.dispose()
    return DbCounts(total=int(total or 0), kiosk_hashes=hashes, bare=int(bare or 0))


def count_rows(database_url: str) -> DbCounts:
    return asyncio.run(_count(database_url))


# --------------------------------------------------------------------------- the run


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_load_phase(
    pool: Any, phase: str, args: argparse.Namespace, setup: Environment, server_pid: int
) -> PhaseReport:
    start_at = time.time() + 0.5
    jobs = []
    first = 0
    for visitors in _split(args.concurrency, args.clients):
        jobs.append(
            {
                "phase": phase,
                "base_url": setup.base_url,
                "token": setup.token,
                "visitors": visitors,
                "first_visitor": first,
                "duration": args.duration,
                "start_at": start_at,
                "timeout": args.timeout,
            }
        )
        first += visitors
    profiler = None
    if args.profile:
        out = Path(args.profile) / f"{setup.db}-{phase}-{args.profile_mode}.txt"
        profiler = subprocess.Popen(
            [str(_py_spy()), "record", "--pid", str(server_pid), "--format", "raw", "--rate", "100",
             "--duration", str(math.ceil(args.duration) + 1), "--output", str(out),
             "--gil" if args.profile_mode == "cpu" else "--idle"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    time.sleep(max(0.0, start_at - time.time()))
    with_pg = setup.db == "postgresql"
    stats_before = pool_stats(setup.base_url)
    before = CpuSample.take(server_pid, with_pg)
    parts = pool.map(run_phase, jobs)
    after = CpuSample.take(server_pid, with_pg)
    stats_after = pool_stats(setup.base_url)
    if profiler is not None:
        profiler.wait()
    result = LoadResult()
    for part in parts:
        result.merge(part)
    counts: dict[str, int] = {
        key: stats_after[key] - stats_before[key]
        for key in ("connects", "checkouts")
        if key in stats_before and key in stats_after
    }
    if "pool_size" in stats_after:
        counts["pool_size"] = stats_after["pool_size"]
    return PhaseReport(phase, result, CpuUse.between(before, after, result.cpu), counts)


def warm_up(setup: Environment, args: argparse.Namespace) -> LoadResult:
    """A few sequential requests, unmeasured: Jinja compiles its templates, pools fill."""
    result = LoadResult()
    for phase in ("checkin", "bare"):
        job = {
            "phase": phase,
            "base_url": setup.base_url,
            "token": setup.token,
            "visitors": 2,
            "first_visitor": 10**6,
            "duration": 1.0,
            "start_at": 0.0,
            "timeout": args.timeout,
        }
        result.merge(run_phase(job))
    return result


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f} ms"


def pool_line(counts: dict[str, int]) -> str:
    if "connects" not in counts:
        return "connection pool: (no /bench/stats)"
    return (
        f"connection pool: {counts['checkouts']} checkouts, {counts['connects']} new "
        f"connections opened (pool_size {counts.get('pool_size', '?')})"
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(
    args: argparse.Namespace,
    setup: Environment,
    started: datetime,
    background: float,
    before: DbCounts,
    after: DbCounts,
    warm: LoadResult,
    checkin: PhaseReport,
    post_only: PhaseReport,
    bare: PhaseReport,
    server_log: Path,
) -> None:
    c, o, b = checkin.result, post_only.result, bare.result
    get = Latency.of(c.get_latencies, c.elapsed)
    post = Latency.of(c.post_latencies, c.elapsed)
    post_o = Latency.of(o.post_latencies, o.elapsed)
    ins = Latency.of(b.post_latencies, b.elapsed)
    ratio = post_o.per_second / ins.per_second if ins.per_second else math.nan
    mixed_ratio = post.per_second / ins.per_second if ins.per_second else math.nan

    acks = warm.acknowledged + c.acknowledged + o.acknowledged
    acknowledged = set(acks)
    ack_hashes = {hashlib.sha256(t.encode()).hexdigest() for t in acknowledged}
    lost = len(ack_hashes - after.kiosk_hashes)
    extra = len(after.kiosk_hashes - ack_hashes)
    duplicate_acks = len(acks) - len(acknowledged)
    bare_acked = warm.bare_ok + b.bare_ok
    errors = sum(c.errors.values()) + sum(o.errors.values()) + sum(b.errors.values())
    log_text = server_log.read_text(errors="replace") if server_log.exists() else ""
    tracebacks = log_text.count("Traceback (most recent call last)")

    import sqlalchemy

    def cpu_line(cpu: CpuUse) -> str:
        text = f"server {cpu.server:5.1f}%  client {cpu.client:5.1f}%"
        if setup.db == "postgresql":
            text += f"  postgres {cpu.postgres:5.1f}%"
        return text + (
            f"  other {cpu.other:5.1f}%  (% of one core; machine busy {cpu.machine:.0f}% "
            f"of {os.cpu_count()} cores)"
        )

    w = print
    w("=" * 100)
    w("Nachtregister check-in benchmark")
    w("=" * 100)
    w(f"date            {started:%Y-%m-%d %H:%M:%S %Z}")
    w(f"database        {setup.db}  ({_redact(setup.database_url)})")
    w(f"app             {args.app}, {app_revision()}")
    w(f"concurrency     {args.concurrency} visitors in {args.clients} client process(es)")
    w(f"duration        {args.duration:g} s per phase (+ unmeasured warm-up)")
    w(
        f"machine         nproc {os.cpu_count()}, {platform.machine()}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    w(
        f"software        SQLAlchemy {sqlalchemy.__version__}, httpx {httpx.__version__}; "
        "server: uvicorn, 1 worker, --no-access-log --log-level warning"
    )
    w(f"background      {background:.0f}% of all cores busy in the 2 s before the run")
    w(f"visit rows      at start {before.total}, at end {after.total}")
    w("")
    w(f"Phase 1: check-in, mixed (GET form, POST form)  {c.elapsed:.1f} s")
    w("  " + get.line("GET form"))
    w("  " + post.line("POST check-in"))
    w(f"  acknowledged check-ins (303): {len(c.acknowledged)} (+{len(warm.acknowledged)} warm-up)")
    w(f"  errors: {sum(c.errors.values())}  {dict(c.errors) or ''}")
    w(f"  CPU: {cpu_line(checkin.cpu)}")
    w(f"  {pool_line(checkin.pool)}")
    w("")
    w(f"Phase 2: post only (one GET per visitor, then POST check-ins)  {o.elapsed:.1f} s")
    w("  " + post_o.line("POST check-in"))
    w(f"  acknowledged check-ins (303): {len(o.acknowledged)}")
    w(f"  errors: {sum(o.errors.values())}  {dict(o.errors) or ''}")
    w(f"  CPU: {cpu_line(post_only.cpu)}")
    w(f"  {pool_line(post_only.pool)}")
    w("")
    w(f"Phase 3: bare insert (POST /bench/insert)  {b.elapsed:.1f} s")
    w("  " + ins.line("bare insert"))
    w(f"  errors: {sum(b.errors.values())}  {dict(b.errors) or ''}")
    w(f"  CPU: {cpu_line(bare.cpu)}")
    w(f"  {pool_line(bare.pool)}")
    w("")
    w("Database check")
    w(f"  kiosk visits at site {SITE_SLUG!r} in the database: {len(after.kiosk_hashes)}")
    w(f"  acknowledged check-ins (distinct private links): {len(acknowledged)}")
    w(f"  lost check-ins: {lost}")
    w(f"  extra: {extra}")
    if duplicate_acks:
        w(f"  acknowledged twice (same private link): {duplicate_acks}")
    w(f"  bare inserts acknowledged {bare_acked}, rows {after.bare}")
    w(f"  server log: {tracebacks} traceback(s)  ({server_log})")
    w("")
    phases = (checkin, post_only, bare)
    for phase in phases:
        if phase.cpu.client >= 85:
            w(
                f"WARNING: the client used {phase.cpu.client:.0f}% of a core in the {phase.name} "
                "phase: it may be the bottleneck; try --clients 2."
            )
    if max(p.cpu.machine for p in phases) >= 95:
        w("NOTE: the machine was CPU-saturated; client, server and database share its cores.")
    if max(p.cpu.other for p in phases) >= 20 or background >= 10:
        w(
            "NOTE: other processes used a noticeable share of the CPU during the run; "
            "the numbers are lower than on a quiet machine."
        )
    if tracebacks:
        w(f"server log (last lines):\n{_tail(server_log, 20)}")
    w("Targets")
    w(f"  errors = 0                          {errors:>10}      {_verdict(errors == 0)}")
    w(f"  lost check-ins = 0                  {lost:>10}      {_verdict(lost == 0)}")
    w(
        f"  ratio POST-only/bare >= {TARGET_RATIO:.1f}        {ratio:>10.2f}      "
        f"{_verdict(ratio >= TARGET_RATIO)}   (the ratio that counts: phase 2 / phase 3)"
    )
    w(
        f"  p99 POST, post-only <= {TARGET_P99_MS:.0f} ms       {_ms(post_o.p99):>10}   "
        f"{_verdict(post_o.p99 <= TARGET_P99_MS)}"
    )
    w(
        f"  p99 GET form, mixed <= {TARGET_P99_MS:.0f} ms       {_ms(get.p99):>10}   "
        f"{_verdict(get.p99 <= TARGET_P99_MS)}"
    )
    w(
        f"  p99 POST, mixed <= {TARGET_P99_MS:.0f} ms           {_ms(post.p99):>10}   "
        f"{_verdict(post.p99 <= TARGET_P99_MS)}"
    )
    w(f"  (mixed ratio, phase 1 POST / bare, for reference: {mixed_ratio:.2f})")
    w(f"  (p99 bare insert, for reference:  {_ms(ins.p99):>10})")
    w("=" * 100)


def app_revision() -> str:
    """The commit the app is at, and whether its code has uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "nightreg", "kiosk", "admin", "migrations")
    n = len(changed.splitlines())
    return f"git {commit}" + (f" + uncommitted changes in {n} app file(s)" if n else "")


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent visitors")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--clients", type=int, default=1, help="client processes sharing the visitors"
    )
    parser.add_argument(
        "--app",
        default="bench.app:create_bench_app",
        help="uvicorn app factory (to compare a variant of the app; it must keep /bench/insert)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="wiped! name must hold 'bench'")
    parser.add_argument(
        "--profile", metavar="DIR", help="record the server with py-spy (raw stacks) into DIR"
    )
    parser.add_argument(
        "--profile-mode",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: only threads holding the GIL (py-spy --gil); wall: all threads, idle too",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.clients < 1 or args.clients > args.concurrency:
        parser.error("need 1 <= --clients <= --concurrency")
    if args.profile:
        if _py_spy() is None:
            parser.error("--profile needs py-spy (pip install py-spy)")
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    started = datetime.now(UTC)
    background = background_load()
    work_dir = Path(tempfile.mkdtemp(prefix="nightreg-bench-"))
    server: subprocess.Popen[bytes] | None = None
    server_log = work_dir / "server.log"
    try:
        print(f"preparing {args.db} in {work_dir} …", flush=True)
        setup = prepare(args, work_dir)
        server = start_server(setup, args.port, server_log, args.app)
        before = count_rows(setup.database_url)
        warm = warm_up(setup, args)
        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(args.clients) as pool:
            pool.map(_ready, range(args.clients))
            print(f"phase 1: check-in (mixed), {args.duration:g} s …", flush=True)
            checkin = run_load_phase(pool, "checkin", args, setup, server.pid)
            print(f"phase 2: post only, {args.duration:g} s …", flush=True)
            post_only = run_load_phase(pool, "post", args, setup, server.pid)
            print(f"phase 3: bare insert, {args.duration:g} s …", flush=True)
            bare = run_load_phase(pool, "bare", args, setup, server.pid)
        stop_server(server)
        after = count_rows(setup.database_url)
        report(
            args,
            setup,
            started,
            background,
            before,
            after,
            warm,
            checkin,
            post_only,
            bare,
            server_log,
        )
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
