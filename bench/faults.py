"""Load and faults: check-ins under load, a killed server, a database outage, a full disk.

    python -m bench.faults load     --db sqlite|postgresql [--concurrency 50] [--duration 60]
    python -m bench.faults crash    --db sqlite|postgresql [--duration 60] [--kill-at 25]
    python -m bench.faults outage   [--duration 60] [--stop-at 15] [--outage 20] [--pg-port 55432]
    python -m bench.faults diskfull [--disk-mb 4] [--full-for 10] [--after 15]
    python -m bench.faults flood    --db sqlite|postgresql [--workers 40] [--flood-for 10]

Every scenario prepares a fresh database like bench/checkin.py (SQLite file in a temporary
directory, or the `nightreg_bench` database's schema dropped and recreated), adds a harbour master
(`nightreg user add`) and an API token, and serves `bench.faults:create_fault_app` (the real app)
under uvicorn in a subprocess. The load: N visitors loop GET form + POST check-in; a few staff
clients, signed in through the sign-in form, loop GET tonight / register / flags; one API client
loops GET /api/v1/sites/bench/visits. Afterwards every acknowledged check-in (303 to its private
link) is looked up in the database by its private link's hash: "lost" must be 0.

- load: the above for --duration seconds.
- crash: SIGKILL of the server at --kill-at; it stays down past the next minute (so one slot of
  the jobs, scheduled every minute for the run, is missed), is started again and the load goes
  on. Then: SQLite `PRAGMA integrity_check`, `nightreg audit verify`, each missed job run once
  by the catch-up at start, no slot run twice.
- outage: a private PostgreSQL (initdb in a temporary directory, run as the `postgres` user, port
  --pg-port) is stopped (`pg_ctl stop -m fast`) at --stop-at for --outage seconds under load, and
  started again; the server is not restarted. Requests during the outage must fail fast with
  503 (HTML page, or JSON `{"code": "unavailable"}` on the API), never a 500 or a traceback; the
  recovery time is from PostgreSQL's restart to the first acknowledged check-in.
- diskfull: the SQLite file on a tmpfs of --disk-mb MB (needs root for `mount`); load until the
  disk is full, --full-for more seconds of load, then the tmpfs grows (the space is back) and the
  load goes on for --after seconds. Then `PRAGMA integrity_check` and lost check-ins.
- flood: no visitors; one signed-in staff client loops on the Tonight page (which audits its
  read) for --quiet-for seconds, then --workers anonymous clients replay one CSRF token on
  `/admin/sign-in` with wrong passwords for unknown e-mails for --flood-for seconds (issue 17,
  finding 5). The staff page's p95 during the flood must stay within 2x of its quiet p95, and
  the refused attempts must not be chained one by one (audit events by action are printed).

The server wires nightreg.web.unavailable in front of the app's error handler and gives asyncpg a
connect timeout (5 s) and the pool a checkout timeout (10 s) unless the app does so itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.checkin import (
    ARRIVED_RE,
    CSRF_RE,
    DEFAULT_PG_URL,
    DEPARTURE_RE,
    IDEMPOTENCY_RE,
    LINK_RE,
    REPO,
    SITE_SLUG,
    YACHT,
    Environment,
    SetupError,
    _nightreg,
    count_rows,
    percentile,
    prepare,
    start_server,
    stop_server,
)

APP = "bench.faults:create_fault_app"
STAFF_EMAIL = "havenmeester@bench.example"
STAFF_PASSWORD = "bench-" + secrets.token_urlsafe(18)
TRACEBACK_MARKS = ("Traceback (most recent call last)", 'File "/')
EVERY_MINUTE = "* * * * *"
MINUTE_JOBS = ("scan", "overdue", "dispatch")


# --------------------------------------------------------------------------- the server's app


def create_fault_app() -> Any:
    """The real app, with the 503 mapping and fast-failing connections if not wired yet."""
    from sqlalchemy.ext import asyncio as sa_asyncio

    import nightreg.app
    import nightreg.db
    import nightreg.web.errors
    from nightreg.settings import Settings
    from nightreg.web import unavailable

    if "with_unavailable" not in Path(nightreg.app.__file__).read_text():
        nightreg.web.errors.handle_error = unavailable.with_unavailable(  # type: ignore[assignment]
            nightreg.web.errors.handle_error
        )
    original = sa_asyncio.create_async_engine

    def create_async_engine(url: Any, **kw: Any) -> Any:
        if str(url).startswith("postgresql+asyncpg"):
            kw.setdefault("pool_timeout", 10)
            kw["connect_args"] = {"timeout": 5, **kw.get("connect_args", {})}
        return original(url, **kw)

    nightreg.db.create_async_engine = create_async_engine
    with_scheduler = os.environ.get("BENCH_SCHEDULER") == "1"
    return nightreg.app.create_app(Settings.from_env(), run_scheduler=with_scheduler)


# --------------------------------------------------------------------------- the load


@dataclass
class Sample:
    at: float  # seconds since the load started (when the request was sent)
    took: float  # seconds
    who: str  # checkin-get, checkin-post, staff, api
    status: int  # 0: no answer (an exception)
    error: str = ""  # the exception's name, or what was wrong with the answer
    traceback: bool = False
    code: str = ""  # the API's JSON error code

    @property
    def done(self) -> float:
        """When the answer (or the failure) came: what the windows of a run are judged by."""
        return self.at + self.took


@dataclass
class Load:
    started: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)  # the same moment on the wall clock
    samples: list[Sample] = field(default_factory=list)
    # (when the answer came, the private link's token)
    acknowledged: list[tuple[float, str]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def now(self) -> float:
        return time.monotonic() - self.started

    def mark(self) -> float:
        return self.now()


def _look(answer: httpx.Response) -> tuple[bool, str]:
    text = answer.text if answer.status_code >= 400 else ""
    code = ""
    if answer.headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(ValueError, AttributeError):
            code = str(answer.json().get("code", ""))
    return any(mark in text for mark in TRACEBACK_MARKS), code


async def _request(
    load: Load, who: str, client: httpx.AsyncClient, method: str, url: str, **kw: Any
) -> httpx.Response | None:
    at = load.now()
    began = time.perf_counter()
    try:
        answer = await client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        load.samples.append(Sample(at, time.perf_counter() - began, who, 0, type(exc).__name__))
        await asyncio.sleep(0.1)  # a phone whose request failed does not retry at once
        return None
    took = time.perf_counter() - began
    traceback, code = _look(answer)
    load.samples.append(Sample(at, took, who, answer.status_code, "", traceback, code))
    if answer.status_code >= 500:
        await asyncio.sleep(0.1)
    return answer


def _client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=15,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def visitor(load: Load, base_url: str, token: str, number: int) -> None:
    async with _client(base_url) as client:
        i = 0
        while not load.stop.is_set():
            i += 1
            page = await _request(load, "checkin-get", client, "GET", f"/k/{token}?kind=vessel")
            if page is None or page.status_code != 200:
                continue
            found = [
                p.search(page.text) for p in (CSRF_RE, IDEMPOTENCY_RE, ARRIVED_RE, DEPARTURE_RE)
            ]
            if not all(found):
                load.samples[-1].error = "form fields missing"
                continue
            csrf, key, arrived, departure = (m.group(1) for m in found if m)
            form = {
                **YACHT, "_csrf_token": csrf, "idempotency_key": key,
                "registration": f"NL-{number}-{i}", "arrived_at": arrived,
                "expected_departure_at": departure,
            }  # fmt: skip
            answer = await _request(load, "checkin-post", client, "POST", f"/k/{token}", data=form)
            if answer is None:
                continue
            link = LINK_RE.match(answer.headers.get("location", ""))
            if answer.status_code == 303 and link is not None:
                load.acknowledged.append((load.now(), link.group(1)))
            elif answer.status_code < 500:
                load.samples[-1].error = f"POST {answer.status_code}"


async def _sign_in(load: Load, client: httpx.AsyncClient) -> bool:
    page = await _request(load, "staff", client, "GET", "/admin/sign-in")
    if page is None or page.status_code != 200:
        return False
    csrf = CSRF_RE.search(page.text)
    if csrf is None:
        return False
    answer = await _request(
        load, "staff", client, "POST", "/admin/sign-in",
        data={"_csrf_token": csrf.group(1), "email": STAFF_EMAIL, "password": STAFF_PASSWORD},
    )  # fmt: skip
    return answer is not None and answer.status_code in (302, 303)


async def staff(load: Load, base_url: str) -> None:
    pages = [f"/admin/sites/{SITE_SLUG}/{p}" for p in ("tonight", "register", "flags")]
    async with _client(base_url) as client:
        signed_in = False
        n = 0
        while not load.stop.is_set():
            if not signed_in:
                signed_in = await _sign_in(load, client)
                if not signed_in:
                    await asyncio.sleep(0.5)
                continue
            answer = await _request(load, "staff", client, "GET", pages[n % len(pages)])
            n += 1
            if answer is not None and answer.status_code in (302, 303):
                load.samples[-1].error = "signed out"
                signed_in = False
            await asyncio.sleep(0.2)  # a person reading the page, or htmx polling


async def api(load: Load, base_url: str, token: str) -> None:
    async with _client(base_url) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        while not load.stop.is_set():
            await _request(load, "api", client, "GET", f"/api/v1/sites/{SITE_SLUG}/visits")
            await asyncio.sleep(0.2)


def start_load(
    load: Load, setup: Environment, concurrency: int, staff_clients: int, api_token: str
) -> list[asyncio.Task[None]]:
    tasks = [
        asyncio.create_task(visitor(load, setup.base_url, setup.token, n))
        for n in range(concurrency)
    ]
    tasks += [asyncio.create_task(staff(load, setup.base_url)) for _ in range(staff_clients)]
    tasks.append(asyncio.create_task(api(load, setup.base_url, api_token)))
    return tasks


async def stop_load(load: Load, tasks: list[asyncio.Task[None]]) -> None:
    load.stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


# --------------------------------------------------------------------------- setup and checks


def add_staff_and_token(setup: Environment) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nightreg.cli", "user", "add", STAFF_EMAIL,
         "--role", "harbour_master", "--site", SITE_SLUG],
        cwd=setup.work_dir, env=setup.env, input=STAFF_PASSWORD + "\n", capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SetupError(f"nightreg user add failed:\n{done.stdout}{done.stderr}")
    out = _nightreg(
        setup, "token", "add", "bench api", "--role", "harbour_master", "--site", SITE_SLUG
    )
    found = re.search(r"\bnrt_[A-Za-z0-9_\-]+", out)
    if found is None:
        raise SetupError(f"nightreg token add printed no token: {out!r}")
    return found.group(0)


def lost_check_ins(load: Load, database_url: str) -> tuple[int, int, int]:
    """(acknowledged, lost, extra) by the hash of each acknowledged private link."""
    counts = count_rows(database_url)
    acked = {hashlib.sha256(t.encode()).hexdigest() for _at, t in load.acknowledged}
    return len(acked), len(acked - counts.kiosk_hashes), len(counts.kiosk_hashes - acked)


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return ", ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall())


def audit_verify(setup: Environment) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nightreg.cli", "audit", "verify"], cwd=setup.work_dir,
        env=setup.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return (done.stdout + done.stderr).strip().splitlines()[-1] if done.stdout else done.stderr


def sql(database_url: str, statement: str) -> list[tuple[Any, ...]]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> list[tuple[Any, ...]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in await conn.execute(text(statement))]
        finally:
            await engine.dispose()

    return asyncio.run(run())


# --------------------------------------------------------------------------- figures


def ms(values: list[float], p: float) -> str:
    return f"{percentile(sorted(values), p):.0f}" if values else "-"


def summary(
    load: Load,
    since: float = 0.0,
    until: float = float("inf"),
    *,
    sent_from: float = 0.0,
    sent_before: float = float("inf"),
) -> dict[str, Any]:
    """Figures of the requests answered in [since, until) and sent in [sent_from, sent_before)."""
    window = [
        s for s in load.samples if since <= s.done < until and sent_from <= s.at < sent_before
    ]
    ok = [s for s in window if 200 <= s.status < 400]
    return {
        "requests": len(window),
        "ok": len(ok),
        "acknowledged": sum(
            1 for s in window if s.who == "checkin-post" and s.status == 303 and not s.error
        ),
        "5xx": Counter(s.status for s in window if s.status >= 500),
        "4xx": Counter(f"{s.who} {s.status}" for s in window if 400 <= s.status < 500),
        "no answer": Counter(f"{s.who} {s.error}" for s in window if s.status == 0),
        "tracebacks": sum(1 for s in window if s.traceback),
        "p50": ms([s.took for s in ok], 50),
        "p95": ms([s.took for s in ok], 95),
        "p99": ms([s.took for s in ok], 99),
        "post p99": ms([s.took for s in ok if s.who == "checkin-post"], 99),
    }


def print_summary(title: str, figures: dict[str, Any]) -> None:
    print(f"{title}")
    print(
        f"  requests {figures['requests']}  (2xx/3xx {figures['ok']}), check-ins acknowledged "
        f"{figures['acknowledged']}"
    )
    print(
        f"  latency of successful requests p50 / p95 / p99: {figures['p50']} / {figures['p95']} / "
        f"{figures['p99']} ms  (check-in POST p99 {figures['post p99']} ms)"
    )
    print(f"  server errors (5xx): {sum(figures['5xx'].values())}  {dict(figures['5xx']) or ''}")
    print(f"  client errors (4xx): {sum(figures['4xx'].values())}  {dict(figures['4xx']) or ''}")
    print(f"  no answer: {sum(figures['no answer'].values())}  {dict(figures['no answer']) or ''}")
    print(f"  tracebacks in answers: {figures['tracebacks']}")


def conditions(args: argparse.Namespace, db: str, extra: str = "") -> None:
    import sqlalchemy

    print("=" * 96)
    print(f"Nachtregister faults bench: {args.scenario}  ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    print("=" * 96)
    print(
        f"database {db}; {args.concurrency} check-in visitors + {args.staff} staff + 1 API "
        f"client; machine nproc {os.cpu_count()}, {platform.machine()}, Python "
        f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}; uvicorn 1 worker"
        + (f"; {extra}" if extra else "")
    )


def server_log_lines(path: Path, needle: str) -> int:
    return path.read_text(errors="replace").count(needle) if path.exists() else 0


# --------------------------------------------------------------------------- scenarios


async def _sleep_until(load: Load, at: float) -> None:
    await asyncio.sleep(max(0.0, at - load.now()))


def scenario_load(args: argparse.Namespace, setup: Environment, log: Path) -> int:
    token = add_staff_and_token(setup)
    server = start_server(setup, args.port, log, APP)
    try:
        rows_before = count_rows(setup.database_url).total

        async def run() -> Load:
            load = Load()
            tasks = start_load(load, setup, args.concurrency, args.staff, token)
            await _sleep_until(load, args.duration)
            await stop_load(load, tasks)
            return load

        load = asyncio.run(run())
    finally:
        stop_server(server)
    acked, lost, extra = lost_check_ins(load, setup.database_url)
    rows_after = count_rows(setup.database_url).total
    conditions(args, setup.db, f"{args.duration:g} s; visit rows {rows_before} -> {rows_after}")
    figures = summary(load)
    print_summary("whole run", figures)
    print(f"  lost check-ins: {lost} of {acked} acknowledged (extra in the database: {extra})")
    tracebacks = server_log_lines(log, "Traceback (most recent call last)")
    print(f"  server log: {tracebacks} traceback(s)")
    failed = sum(figures["5xx"].values()) + lost + figures["tracebacks"]
    print("RESULT", "PASS" if failed == 0 else "FAIL", "(0 server errors, 0 lost)")
    return 0


def scenario_crash(args: argparse.Namespace, setup: Environment, log: Path) -> int:
    token = add_staff_and_token(setup)
    for job in MINUTE_JOBS:
        setup.env[f"NIGHTREG_{job.upper()}_CRON"] = EVERY_MINUTE
    setup.env["BENCH_SCHEDULER"] = "1"
    server = start_server(setup, args.port, log, APP)
    log2 = log.with_name("server-after-crash.log")
    times: dict[str, float] = {}
    try:

        async def run() -> Load:
            nonlocal server
            load = Load()
            tasks = start_load(load, setup, args.concurrency, args.staff, token)
            await _sleep_until(load, args.kill_at)
            server.send_signal(signal.SIGKILL)
            times["killed"] = load.now()
            await asyncio.to_thread(server.wait)
            # Down across the next minute, so that one slot of every minute job is missed.
            wall = time.time()
            await asyncio.sleep(60 - wall % 60 + 3)
            times["restarting"] = load.now()
            server = await asyncio.to_thread(start_server, setup, args.port, log2, APP)
            times["up"] = load.now()
            await _sleep_until(load, times["up"] + args.duration - args.kill_at)
            await stop_load(load, tasks)
            return load

        restart_wall = time.time()
        load = asyncio.run(run())
        restart_wall += times["restarting"]
    finally:
        stop_server(server)
    acked, lost, extra = lost_check_ins(load, setup.database_url)
    conditions(
        args, setup.db,
        f"SIGKILL at {times['killed']:.1f} s, down {times['up'] - times['killed']:.1f} s, "
        f"{args.duration:g} s of load in all",
    )  # fmt: skip
    before = summary(load, 0, times["killed"])
    down = summary(load, times["killed"], times["up"])
    after = summary(load, times["up"])
    print_summary(f"before the kill (0 – {times['killed']:.1f} s)", before)
    print_summary(f"server down ({times['killed']:.1f} – {times['up']:.1f} s)", down)
    print_summary(f"after the restart ({times['up']:.1f} s – end)", after)
    print(f"lost check-ins: {lost} of {acked} acknowledged (extra in the database: {extra})")
    half = sql(
        setup.database_url,
        "SELECT count(*) FROM visit WHERE reference IS NULL OR private_token_hash IS NULL "
        "OR site_id IS NULL",
    )[0][0]
    print(f"half-written visits (no reference, link or site): {half}")
    if setup.db == "sqlite":
        print(f"SQLite PRAGMA integrity_check: {integrity(setup.work_dir / 'nightreg.db')}")
    print(f"nightreg audit verify: {audit_verify(setup)}")
    print("check-in audit: the check-in service writes no audit event (no visit_created to check)")
    runs = sql(
        setup.database_url,
        "SELECT job, trigger, started_at, status FROM job_run ORDER BY started_at",
    )
    restart_at = datetime.fromtimestamp(restart_wall, UTC)
    ok_jobs = True
    for job in (*MINUTE_JOBS, "purge"):
        mine = [r for r in runs if r[0] == job]
        starts = [_as_utc(r[2]) for r in mine]
        per_minute = Counter(s.replace(second=0, microsecond=0) for s in starts)
        catch_ups = [r for r, s in zip(mine, starts, strict=True)
                     if r[1] == "catch-up" and s >= restart_at]  # fmt: skip
        twice = [m for m, n in per_minute.items() if n > 1]
        stuck = sum(1 for r in mine if r[3] == "running")
        want = 1 if job in MINUTE_JOBS else 0
        ok_jobs &= len(catch_ups) == want and not twice
        print(
            f"job {job:<9} runs {len(mine):3d}; catch-up runs after the restart "
            f"{len(catch_ups)} (expected {want}); minutes run twice {len(twice)}; left "
            f"'running' by the kill {stuck}"
        )
    tracebacks = server_log_lines(log, "Traceback") + server_log_lines(log2, "Traceback")
    print(f"server logs: {tracebacks} traceback(s)")
    failed = (
        sum(before["5xx"].values()) + sum(after["5xx"].values()) + lost + half
        + before["tracebacks"] + after["tracebacks"]
    )  # fmt: skip
    print("RESULT", "PASS" if failed == 0 and ok_jobs else "FAIL",
          "(0 server errors while up, 0 lost, each missed job once)")  # fmt: skip
    return 0


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- a private PostgreSQL


def _pg_bin() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise SetupError("no pg_ctl in /usr/lib/postgresql/*/bin or on PATH")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster, run as the `postgres` user when we are root."""

    def __init__(self, directory: Path, port: int) -> None:
        self.dir, self.port, self.bin = directory, port, _pg_bin()
        self.data = directory / "data"
        self.log = directory / "postgres.log"

    def _run(self, *command: str) -> None:
        argv = [str(self.bin / command[0]), *command[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise SetupError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
                  "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/nightreg_bench"


def scenario_outage(args: argparse.Namespace, work_dir: Path, log: Path) -> int:
    pg = PrivatePostgres(Path(tempfile.mkdtemp(prefix="nightreg-pg-")), args.pg_port)
    pg.init()
    pg.start()
    marks: dict[str, float] = {}
    try:
        args.pg_url = pg.url
        setup = prepare(args, work_dir)
        token = add_staff_and_token(setup)
        server = start_server(setup, args.port, log, APP)
        try:

            async def run() -> Load:
                load = Load()
                tasks = start_load(load, setup, args.concurrency, args.staff, token)
                await _sleep_until(load, args.stop_at)
                marks["stopping"] = load.now()
                await asyncio.to_thread(pg.stop)
                marks["stopped"] = load.now()
                await asyncio.sleep(args.outage)
                marks["starting"] = load.now()
                await asyncio.to_thread(pg.start)
                marks["started"] = load.now()
                await _sleep_until(load, args.duration)
                await stop_load(load, tasks)
                return load

            load = asyncio.run(run())
        finally:
            stop_server(server)
        acked, lost, extra = lost_check_ins(load, setup.database_url)
    finally:
        with contextlib.suppress(SetupError):
            pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)
    conditions(
        args, f"PostgreSQL (private, port {args.pg_port})",
        f"stopped at {marks['stopping']:.1f} s (pg_ctl stop -m fast took "
        f"{marks['stopped'] - marks['stopping']:.1f} s), started at {marks['starting']:.1f} s "
        f"(up at {marks['started']:.1f} s); {args.duration:g} s of load",
    )  # fmt: skip
    # A request sent while PostgreSQL was down belongs to the outage, whenever it was answered;
    # one sent after PostgreSQL was up again must succeed.
    before = summary(load, 0, marks["stopping"])
    during = summary(load, marks["stopping"], sent_before=marks["started"])
    after = summary(load, sent_from=marks["started"])
    print_summary(f"before (answered before {marks['stopping']:.1f} s)", before)
    print_summary(
        f"outage (answered after {marks['stopping']:.1f} s, sent before {marks['started']:.1f} s)",
        during,
    )
    print_summary(f"after (sent after {marks['started']:.1f} s)", after)
    window = [s for s in load.samples if s.done >= marks["stopping"] and s.at < marks["started"]]
    refused = [s for s in window if s.status == 503]
    kinds = Counter((s.who, "json " + s.code if s.who == "api" else "html") for s in refused)
    print(f"503 answers during the outage: {len(refused)}  {dict(kinds)}")
    if refused:
        took = [s.took for s in refused]
        print(
            f"  time to the 503 at the client: p50 {ms(took, 50)} ms, p99 {ms(took, 99)} ms, "
            f"max {max(took) * 1000:.0f} ms (includes the client's own delay: one process, "
            f"{args.concurrency + args.staff + 1} clients)"
        )
    # The server's request log: "<date> <time>,<ms> - ... <METHOD> <path> 503 <duration>ms".
    down_from = load.wall + marks["stopped"]
    server_times: list[float] = []
    arrived_down: list[float] = []
    for m in re.finditer(
        r"^\S+ - (\S+ \S+) - .* 503 ([\d.]+)ms$", log.read_text(errors="replace"), re.M
    ):
        seconds = float(m.group(2)) / 1000
        ended = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
        server_times.append(seconds)
        if ended - seconds >= down_from:
            arrived_down.append(seconds)
    if server_times:
        print(
            f"  time to the 503 in the server (its request log): p50 {ms(server_times, 50)} ms, "
            f"p99 {ms(server_times, 99)} ms, max {max(server_times) * 1000:.0f} ms "
            f"(n={len(server_times)}; in flight when the stop began included)"
        )
    if arrived_down:
        print(
            f"  of those that arrived once PostgreSQL was down: p50 {ms(arrived_down, 50)} ms, "
            f"p99 {ms(arrived_down, 99)} ms, max {max(arrived_down) * 1000:.0f} ms "
            f"(n={len(arrived_down)})"
        )
    others = Counter(s.status for s in window if s.status >= 500 and s.status != 503)
    print(f"other 5xx during the outage: {sum(others.values())}  {dict(others) or ''}")
    api_codes = Counter(s.code for s in refused if s.who == "api")
    print(f"API 503 codes: {dict(api_codes)}")
    first_ack = min((at for at, _t in load.acknowledged if at >= marks["started"]), default=None)
    recovery = f"{first_ack - marks['started']:.1f} s" if first_ack is not None else "never"
    print(f"recovery: first acknowledged check-in {recovery} after PostgreSQL was up again")
    print(f"lost check-ins: {lost} of {acked} acknowledged (extra in the database: {extra})")
    tracebacks = server_log_lines(log, "Traceback")
    reports = server_log_lines(log, "database unreachable")
    print(f"server log: {tracebacks} traceback(s), {reports} 'database unreachable' report(s)")
    slow = [t for t in arrived_down if t > 2.0]
    failed = (
        sum(before["5xx"].values()) + sum(after["5xx"].values()) + sum(others.values()) + lost
        + before["tracebacks"] + during["tracebacks"] + after["tracebacks"] + len(slow)
    )  # fmt: skip
    print("RESULT", "PASS" if failed == 0 and first_ack is not None else "FAIL",
          "(503 in < 2 s in the server once PostgreSQL is down, no 500, no traceback, "
          "0 errors before and after, recovery without restart, 0 lost)")  # fmt: skip
    return 0


def scenario_diskfull(args: argparse.Namespace, work_dir: Path, log: Path) -> int:
    if os.geteuid() != 0:
        raise SetupError("diskfull mounts a tmpfs: run it as root")
    disk = work_dir / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.disk_mb}m", "tmpfs", str(disk)],
                   check=True)  # fmt: skip
    marks: dict[str, float] = {}
    try:
        setup = prepare(args, work_dir)  # migrates the SQLite file in work_dir
        db_file = disk / "nightreg.db"
        shutil.move(str(work_dir / "nightreg.db"), db_file)
        setup.database_url = f"sqlite+aiosqlite:///{db_file}"
        setup.env["NIGHTREG_DATABASE_URL"] = setup.database_url
        token = add_staff_and_token(setup)
        server = start_server(setup, args.port, log, APP)
        try:

            async def run() -> Load:
                load = Load()
                tasks = start_load(load, setup, args.concurrency, args.staff, token)
                deadline = load.now() + args.fill_limit
                while load.now() < deadline:
                    if any(
                        s.status == 503 and s.who == "checkin-post" for s in load.samples[-500:]
                    ):
                        break
                    await asyncio.sleep(0.2)
                marks["full"] = load.now()
                await asyncio.sleep(args.full_for)
                marks["growing"] = load.now()
                await asyncio.to_thread(
                    subprocess.run, ["mount", "-o", f"remount,size={args.disk_mb * 16}m",
                                     str(disk)], check=True,
                )  # fmt: skip
                marks["space"] = load.now()
                await asyncio.sleep(args.after)
                await stop_load(load, tasks)
                return load

            load = asyncio.run(run())
        finally:
            stop_server(server)
        acked, lost, extra = lost_check_ins(load, setup.database_url)
        check = integrity(db_file)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    conditions(
        args, f"SQLite on a {args.disk_mb} MB tmpfs",
        f"full at {marks['full']:.1f} s, space back at {marks['space']:.1f} s "
        f"(tmpfs grown to {args.disk_mb * 16} MB)",
    )  # fmt: skip
    before = summary(load, 0, marks["full"])
    during = summary(load, marks["full"], marks["space"])
    after = summary(load, marks["space"])
    print_summary(f"filling (0 – {marks['full']:.1f} s)", before)
    print_summary(f"full ({marks['full']:.1f} – {marks['space']:.1f} s)", during)
    print_summary(f"space back ({marks['space']:.1f} s – end)", after)
    window = [s for s in load.samples if s.status >= 500]
    print(f"5xx in the whole run by status: {dict(Counter(s.status for s in window))}")
    print(f"tracebacks in answers: {sum(1 for s in load.samples if s.traceback)}")
    first_ack = min((at for at, _t in load.acknowledged if at >= marks["space"]), default=None)
    again = f"{first_ack - marks['space']:.1f} s" if first_ack is not None else "never"
    print(f"check-ins acknowledged again {again} after the space was back (no restart)")
    print(f"lost check-ins: {lost} of {acked} acknowledged (extra in the database: {extra})")
    print(f"SQLite PRAGMA integrity_check after the run: {check}")
    reports = server_log_lines(log, "database unwritable")
    tracebacks = server_log_lines(log, "Traceback")
    print(f"server log: {reports} 'database unwritable' report(s), {tracebacks} traceback(s)")
    others = sum(1 for s in window if s.status != 503)
    failed = others + lost + (check != "ok") + sum(1 for s in load.samples if s.traceback)
    print("RESULT", "PASS" if failed == 0 and first_ack is not None else "FAIL",
          "(503 only, integrity ok, 0 lost, writes again without restart)")  # fmt: skip
    return 0


async def _staff_page_loop(
    load: Load, client: httpx.AsyncClient, page: str, until: float, who: str
) -> None:
    while load.now() < until:
        answer = await _request(load, who, client, "GET", page)
        if answer is not None and answer.status_code != 200:
            load.samples[-1].error = f"staff page {answer.status_code}"
        await asyncio.sleep(0.2)  # a person reading the page, or htmx polling


async def _flooder(load: Load, base_url: str, csrf_cookie: str, csrf: str, until: float) -> None:
    async with _client(base_url) as client:
        client.cookies.set("nightreg_csrf", csrf_cookie)
        while load.now() < until:
            form = {"_csrf_token": csrf, "email": f"guess-{secrets.token_hex(4)}@bench.example",
                    "password": "not-the-password-" + secrets.token_hex(4)}  # fmt: skip
            await _request(load, "flood", client, "POST", "/admin/sign-in", data=form)


def _flood_process(
    base_url: str, workers: int, seconds: float, out: multiprocessing.Queue[Any]
) -> None:
    """The attackers, in a process of their own: the staff client's timings are the server's,
    not those of a client event loop busy with 40 attackers."""

    async def run() -> list[tuple[int, float, float]]:
        load = Load()
        async with _client(base_url) as attacker:
            form = await attacker.get("/admin/sign-in")
            found = CSRF_RE.search(form.text)
            cookie = attacker.cookies.get("nightreg_csrf")
        if found is None or cookie is None:
            return []
        await asyncio.gather(
            *(_flooder(load, base_url, cookie, found.group(1), seconds) for _ in range(workers))
        )
        # When each answer came on the monotonic clock, which all processes share.
        return [(s.status, s.took, load.started + s.done) for s in load.samples]

    out.put(asyncio.run(run()))


def scenario_flood(args: argparse.Namespace, setup: Environment, log: Path) -> int:
    add_staff_and_token(setup)
    server = start_server(setup, args.port, log, APP)
    page = f"/admin/sites/{SITE_SLUG}/tonight"
    marks: dict[str, float] = {}
    flood: list[tuple[int, float, float]] = []  # the attackers' (status, seconds, answered at)
    try:
        events_before = dict(sql(setup.database_url, _EVENTS_BY_ACTION))

        async def run() -> Load:
            load = Load()
            async with _client(setup.base_url) as staff_client:
                if not await _sign_in(load, staff_client):
                    raise SetupError("the staff client could not sign in")
                # Warm-up (templates, pool), not measured.
                for _ in range(5):
                    await staff_client.get(page)
                marks["quiet"] = load.now()
                await _staff_page_loop(
                    load, staff_client, page, marks["quiet"] + args.quiet_for, "staff-quiet"
                )
                marks["flood"] = load.now()
                results: multiprocessing.Queue[Any] = multiprocessing.Queue()
                attackers = multiprocessing.Process(
                    target=_flood_process,
                    args=(setup.base_url, args.workers, args.flood_for, results),
                )
                attackers.start()
                await _staff_page_loop(
                    load, staff_client, page, marks["flood"] + args.flood_for, "staff-flood"
                )
                flood.extend(await asyncio.to_thread(results.get))
                await asyncio.to_thread(attackers.join)
                marks["end"] = load.now()
            return load

        load = asyncio.run(run())
    finally:
        stop_server(server)
    events_after = dict(sql(setup.database_url, _EVENTS_BY_ACTION))
    conditions(
        args, setup.db,
        f"flood: {args.workers} workers replaying one CSRF token on /admin/sign-in for "
        f"{args.flood_for:g} s after {args.quiet_for:g} s quiet; staff page {page}",
    )  # fmt: skip
    quiet = [s.took for s in load.samples if s.who == "staff-quiet" and s.status == 200]
    during = [s.took for s in load.samples if s.who == "staff-flood" and s.status == 200]
    print(f"staff page, quiet:  n={len(quiet)}  p50 / p95 {ms(quiet, 50)} / {ms(quiet, 95)} ms")
    print(f"staff page, flood:  n={len(during)}  p50 / p95 {ms(during, 50)} / {ms(during, 95)} ms")
    print(
        f"flood requests: {len(flood)} ({len(flood) / args.flood_for:.0f}/s), by status "
        f"{dict(sorted(Counter(status for status, _took, _at in flood).items()))}, p50 "
        f"{ms([took for _status, took, _at in flood], 50)} ms"
    )
    if os.environ.get("BENCH_FLOOD_DEBUG"):
        for s in load.samples:
            if s.who == "staff-flood":
                print(f"  staff at {s.at - marks['flood']:.2f} s took {s.took * 1000:.0f} ms")
    # The first attempts of the flood are checked (an argon2 check each, by design) until the
    # address must wait; what follows is the flood of refusals alone.
    checked_until = max((at for status, _, at in flood if status == 400), default=0.0)
    steady = [
        s.took
        for s in load.samples
        if s.who == "staff-flood" and s.status == 200 and load.started + s.at > checked_until
    ]
    print(
        f"staff page, flood after its last checked attempt: n={len(steady)}  p50 / p95 "
        f"{ms(steady, 50)} / {ms(steady, 95)} ms"
    )
    staff_errors = [s for s in load.samples if s.who.startswith("staff") and s.error]
    print(f"staff errors: {len(staff_errors)}")
    for action in sorted(set(events_after) | set(events_before)):
        if action.startswith("sign_in"):
            added = events_after.get(action, 0) - events_before.get(action, 0)
            print(f"audit events {action}: +{added}")
    print(f"server log: {server_log_lines(log, 'Traceback')} traceback(s)")
    ratio = percentile(sorted(during), 95) / max(percentile(sorted(quiet), 95), 1e-9)
    ok = ratio <= 2.0 and not staff_errors and not any(status >= 500 for status, _, _ in flood)
    print(f"p95 flood / quiet: {ratio:.2f}")
    print("RESULT", "PASS" if ok else "FAIL", "(staff p95 within 2x of quiet, no 5xx)")
    return 0


_EVENTS_BY_ACTION = "SELECT action, count(*) FROM audit_event GROUP BY action"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=("load", "crash", "outage", "diskfull", "flood"))
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--port", type=int, default=8775)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--staff", type=int, default=3, help="signed-in staff clients")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--kill-at", type=float, default=25.0, help="crash: SIGKILL after S s")
    parser.add_argument("--stop-at", type=float, default=15.0, help="outage: stop PG after S s")
    parser.add_argument("--outage", type=float, default=20.0, help="outage: seconds PG is down")
    parser.add_argument("--pg-port", type=int, default=55432, help="outage: private PG port")
    parser.add_argument("--disk-mb", type=int, default=4, help="diskfull: tmpfs size")
    parser.add_argument("--fill-limit", type=float, default=120.0,
                        help="diskfull: give up filling after S s")  # fmt: skip
    parser.add_argument("--full-for", type=float, default=10.0, help="diskfull: S s of load full")
    parser.add_argument("--after", type=float, default=15.0, help="diskfull: S s of load after")
    parser.add_argument("--workers", type=int, default=40, help="flood: anonymous clients")
    parser.add_argument("--flood-for", type=float, default=10.0, help="flood: seconds of flood")
    parser.add_argument("--quiet-for", type=float, default=10.0, help="flood: seconds quiet first")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.scenario == "outage":
        args.db = "postgresql"
    if args.scenario == "diskfull":
        args.db = "sqlite"
    work_dir = Path(tempfile.mkdtemp(prefix=f"nightreg-{args.scenario}-"))
    log = work_dir / "server.log"
    try:
        if args.scenario == "outage":
            return scenario_outage(args, work_dir, log)
        if args.scenario == "diskfull":
            return scenario_diskfull(args, work_dir, log)
        setup = prepare(args, work_dir)
        if args.scenario == "load":
            return scenario_load(args, setup, log)
        if args.scenario == "flood":
            return scenario_flood(args, setup, log)
        return scenario_crash(args, setup, log)
    except SetupError as exc:
        print(f"bench: setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
