"""Dispatch benchmark: 10,000 pending signals delivered to a local hub, each exactly once.

    python bench/dispatch.py --db sqlite|postgresql [--signals 10000] [--concurrency 16]
                             [--hub-latency-ms 0] [--flaky 0.0] [--crash-after N]
                             [--port 8766] [--pg-url URL] [--keep]

Prepares a fresh database like bench/scan.py (an SQLite file in a temporary directory, or the
`public` schema of the PostgreSQL database `nightreg_bench_dispatch`, dropped and recreated),
migrates it, and inserts in bulk `--signals` forwarded flags over 20 sites, each with its
pending signal (a body built by nightreg.services.signals.build_body, like a real forward).

The hub is a minimal ASGI app (`receiver_app` below) under uvicorn in a subprocess: it checks
every request's signature with nightreg.hubsign.verify, counts bodies by Idempotency-Key, and
answers 200 (after `--hub-latency-ms`), or, with `--flaky F`, 503 to the first attempt of a
fraction F of the signals (chosen by their key), which the dispatcher then retries in a
second pass an hour later. `--crash-after N` makes the first pass die when it records its
N-th group of outcomes, as a process killed between sending and recording would: the next
pass sends those signals again, and the receiver counts the duplicates.

Then `nightreg.services.dispatch.dispatch` runs as the job does (every outcome recorded and
every delivery audited), timed per pass until nothing is due. It prints the conditions, the
time and signals per second, and the check: signals received exactly once, duplicates, bad
signatures, and any left pending. The exit status is 0 even when slow, 1 when a signal was
lost, doubled (without --crash-after) or left pending, 2 when setup fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal as signals_
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], the app is one up
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import Table, func, insert, select  # noqa: E402

from bench.checkin import SetupError, fresh_database  # noqa: E402
from nightreg import hubsign  # noqa: E402

INSTALLATION = "bench"
KEY_ID = hubsign.default_key_id(INSTALLATION)
from nightreg.db import Database, make_engine  # noqa: E402
from nightreg.models import AuditEvent, Flag, SharingAgreement, Signal, Site  # noqa: E402

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/nightreg_bench_dispatch"
SECRET_ENV = "BENCH_HUB_SECRET"
FLAKY_ENV = "BENCH_HUB_FLAKY"
LATENCY_ENV = "BENCH_HUB_LATENCY_MS"
SITES = 20
BATCH = 2_000

_site = cast(Table, Site.__table__)
_flag = cast(Table, Flag.__table__)
_signal = cast(Table, Signal.__table__)
_agreement = cast(Table, SharingAgreement.__table__)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# --- the hub (runs in the uvicorn subprocess) --------------------------------------------


class _Hub:
    def __init__(self) -> None:
        self.secret = os.environ.get(SECRET_ENV, "")
        self.flaky = float(os.environ.get(FLAKY_ENV, "0") or 0)
        self.latency = float(os.environ.get(LATENCY_ENV, "0") or 0) / 1000
        self.by_key: Counter[str] = Counter()
        self.refused_once: set[str] = set()
        self.bad_signatures = 0
        self.mismatched_ids = 0
        self.requests = 0

    def flaky_first(self, key: str) -> bool:
        """A fixed fraction of the signals, chosen by their key, fail on the first attempt."""
        if self.flaky <= 0 or key in self.refused_once:
            return False
        share = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") / 2**32
        if share < self.flaky:
            self.refused_once.add(key)
            return True
        return False

    def stats(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "unique": len(self.by_key),
            "exactly_once": sum(1 for n in self.by_key.values() if n == 1),
            "duplicates": sum(n - 1 for n in self.by_key.values() if n > 1),
            "bad_signatures": self.bad_signatures,
            "mismatched_ids": self.mismatched_ids,
            "refused_once": len(self.refused_once),
        }


_HUB: _Hub | None = None


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def receiver_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """The hub: POST stores a signal (counted by key), GET /stats says what it got."""
    global _HUB
    if scope["type"] != "http":
        return
    hub = _HUB = _HUB or _Hub()
    if scope["method"] == "GET":
        await _answer(send, 200, json.dumps(hub.stats()).encode())
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    if hub.latency:
        await asyncio.sleep(hub.latency)  # a hub across the country, not on this machine
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    hub.requests += 1
    try:
        hubsign.verify(headers, body, {(INSTALLATION, KEY_ID): hub.secret}, now=time.time())
    except hubsign.SignatureInvalid:
        hub.bad_signatures += 1
        await _answer(send, 401, b'{"error":"bad signature"}')
        return
    key = headers.get("idempotency-key", "")
    if json.loads(body).get("id") != key:
        hub.mismatched_ids += 1
    if hub.flaky_first(key):
        await _answer(send, 503, b'{"error":"busy"}')
        return
    hub.by_key[key] += 1  # a real hub would store it once; here each copy is counted
    await _answer(send, 200, b'{"stored":true}')


# --- seeding -----------------------------------------------------------------------------


async def seed(url: str, count: int, now: datetime) -> None:
    """Sites, one agreement, `count` forwarded flags and their pending signals, in bulk."""
    from nightreg.services.signals import build_body, encode

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(_site),
                [
                    {
                        "slug": f"haven-{i + 1:02d}", "name": f"Jachthaven {i + 1}",
                        "kind": "marina", "municipality": "Hoorn",
                        "timezone": "Europe/Amsterdam", "contact": "",
                        "rule_thresholds": {}, "is_active": True,
                        "created_at": now - timedelta(days=30),
                    }
                    for i in range(SITES)
                ],
            )  # fmt: skip
            agreement_id = (
                await conn.execute(
                    insert(_agreement)
                    .values(
                        name="Signalen jachthavens Noord-Holland",
                        recipient="RIEC Noord-Holland (Drugshub)", reference="RIEC-NH-BENCH",
                        valid_from=date(2026, 1, 1), valid_until=None,
                        rules=["night_movement"], fields=["score", "site"],
                        auto_rules=[], keep_days=180, created_at=now, created_by="bench",
                    )
                    .returning(_agreement.c.id)
                )
            ).scalar_one()  # fmt: skip
        agreement = SharingAgreement(
            id=agreement_id, name="Signalen jachthavens Noord-Holland",
            recipient="RIEC Noord-Holland (Drugshub)", reference="RIEC-NH-BENCH",
            fields=["score", "site"], rules=["night_movement"],
        )  # fmt: skip
        site_rows = [
            Site(id=row.id, slug=row.slug, name=row.name, kind=row.kind,
                 municipality=row.municipality)
            for row in (await _sites(engine))
        ]  # fmt: skip
        done = 0
        while done < count:
            n = min(BATCH, count - done)
            flags = [
                {
                    "site_id": site_rows[(done + i) % SITES].id, "rule": "night_movement",
                    "subject": f"bench:{done + i}", "dedupe_key": f"bench:{done + i}",
                    "window_start": now - timedelta(days=3), "window_end": now, "score": 70,
                    "reason": "Arrived or left at night 3 times within 14 days.",
                    "reason_params": {}, "thresholds": {}, "status": "forwarded",
                    "restricted": False, "created_at": now, "updated_at": now,
                    "reviewed_by": "bench", "reviewed_at": now,
                }
                for i in range(n)
            ]  # fmt: skip
            async with engine.begin() as conn:
                returning = insert(_flag).returning(_flag.c.id, sort_by_parameter_order=True)
                ids = (await conn.execute(returning, flags)).scalars().all()
                rows = []
                for i, flag_id in enumerate(ids):
                    site = site_rows[(done + i) % SITES]
                    flag = Flag(id=flag_id, rule="night_movement", score=70,
                                reason=flags[i]["reason"], site_id=site.id)  # fmt: skip
                    uid = str(uuid.uuid4())
                    body = build_body(
                        uid=uid, agreement=agreement, flag=flag, site=site, visits=[],
                        elsewhere=0, forwarded_at=now, review="staff",
                    )  # fmt: skip
                    rows.append(
                        {
                            "uid": uid, "flag_id": flag_id, "agreement_id": agreement_id,
                            "site_id": site.id, "rule": "night_movement", "body": encode(body),
                            "status": "pending", "created_at": now, "forwarded_by": "bench",
                            "attempts": 0, "next_attempt_at": now,
                        }
                    )  # fmt: skip
                await conn.execute(insert(_signal), rows)
            done += n
    finally:
        await engine.dispose()


async def _sites(engine: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(_site).order_by(_site.c.id))).all())


# --- the run -----------------------------------------------------------------------------


class InjectedCrash(RuntimeError):
    """Stands for the process dying between POSTs and their record (--crash-after)."""


class _Crash:
    def __init__(self, after: int) -> None:
        from nightreg.services import dispatch as module

        self.module, self.after, self.calls = module, after, 0
        self.original = module.record_outcomes
        if after > 0:
            module.record_outcomes = self.record

    async def record(self, db: Database, outcomes: Any) -> list[bool]:
        self.calls += 1
        if self.calls == self.after:
            raise InjectedCrash("the dispatcher died before recording what it sent")
        return await self.original(db, outcomes)

    def undo(self) -> None:
        self.module.record_outcomes = self.original


def _inject_crash(after: int) -> _Crash:
    return _Crash(after)


def start_receiver(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", "bench.dispatch:receiver_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SetupError(f"the receiver exited ({server.returncode}): {log_path.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/stats", timeout=2).status_code == 200:
                return server
        time.sleep(0.1)
    server.kill()
    raise SetupError("the receiver did not answer within 30 s")


def stop_receiver(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signals_.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def outbox_counts(db: Database) -> dict[str, int]:
    async with db.read() as session:
        rows = (
            await session.execute(select(Signal.status, func.count()).group_by(Signal.status))
        ).all()
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "signal_delivered")
        )
    counts = {status: int(n) for status, n in rows}
    counts["audited"] = int(audited or 0)
    return counts


async def run(url: str, args: argparse.Namespace, work_dir: Path) -> int:
    from nightreg.clock import SystemClock
    from nightreg.services.dispatch import dispatch
    from nightreg.settings import Settings

    now = datetime.now(UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    await seed(url, args.signals, now)
    print(f"seeded {args.signals:,} pending signals in {time.perf_counter() - t0:.1f} s",
          flush=True)  # fmt: skip

    secret = "bench-hub-secret-" + uuid.uuid4().hex
    env = {**os.environ, SECRET_ENV: secret, FLAKY_ENV: str(args.flaky),
           LATENCY_ENV: str(args.hub_latency_ms), "PYTHONPATH": str(REPO)}  # fmt: skip
    receiver = start_receiver(args.port, env, work_dir / "receiver.log")
    settings = Settings(
        data_dir=work_dir, database_url=url, secret_key=secrets.token_urlsafe(48),
        hub_url=f"http://127.0.0.1:{args.port}/hub/signals", hub_secret=secret,
        installation_id=INSTALLATION,
    )  # fmt: skip
    from nightreg.services import audit

    audit.use_keyring(audit.keyring_of(settings))
    db = Database(url)
    passes: list[tuple[float, Any]] = []
    crash = _inject_crash(args.crash_after)
    try:
        ahead = timedelta(0)
        while len(passes) < 6:
            t0 = time.perf_counter()
            try:
                # A later pass looks an hour ahead for due signals (past any backoff) but
                # signs with the real time, which the receiver checks.
                summary = await dispatch(
                    db, settings, now=datetime.now(UTC) + ahead, clock=SystemClock(),
                    concurrency=args.concurrency,
                )  # fmt: skip
            except InjectedCrash:
                passes.append((time.perf_counter() - t0, None))
                print(f"pass {len(passes)}: {passes[-1][0]:6.2f} s  (crashed, as asked, "
                      f"recording group {args.crash_after})", flush=True)  # fmt: skip
                continue  # what was sent but not recorded is still pending and due
            passes.append((time.perf_counter() - t0, summary))
            print(f"pass {len(passes)}: {passes[-1][0]:6.2f} s  ({summary.line()})", flush=True)
            if summary.sent == 0 or summary.pending_left == 0:
                break
            ahead += timedelta(hours=1)
        async with httpx.AsyncClient() as client:
            stats = (await client.get(f"http://127.0.0.1:{args.port}/stats", timeout=10)).json()
        outbox = await outbox_counts(db)
    finally:
        crash.undo()
        await db.dispose()
        stop_receiver(receiver)

    total_s = sum(seconds for seconds, _ in passes)
    first_s, first = passes[0]
    print()
    print(
        f"conditions: {args.db}, {args.signals:,} signals over {SITES} sites; concurrency "
        f"{args.concurrency}; hub latency {args.hub_latency_ms:g} ms; flaky {args.flaky:.0%}; "
        f"crash after "
        f"{args.crash_after or 'never'}; receiver uvicorn (1 worker) verifying every "
        f"signature; {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores; dispatcher, receiver and database on the same machine"
    )
    print(f"{'rows':<22}{args.signals:>10,}")
    print(f"{'concurrency':<22}{args.concurrency:>10}")
    print(f"{'database':<22}{args.db:>10}")
    if first is not None:
        rate = first.delivered / first_s
        print(f"{'first pass':<22}{first_s:>9.2f}s  {rate:>8,.0f} signals/s")
    print(f"{'all passes':<22}{total_s:>9.2f}s  {args.signals / total_s:>8,.0f} signals/s"
          f"  ({len(passes)} passes)")  # fmt: skip
    print(f"{'received once':<22}{stats['exactly_once']:>10,}")
    print(f"{'received, distinct':<22}{stats['unique']:>10,}")
    print(f"{'duplicates':<22}{stats['duplicates']:>10,}")
    print(f"{'bad signatures':<22}{stats['bad_signatures']:>10,}")
    print(f"{'503 then retried':<22}{stats['refused_once']:>10,}")
    print(f"{'delivered (outbox)':<22}{outbox.get('delivered', 0):>10,}")
    print(f"{'audited deliveries':<22}{outbox['audited']:>10,}")
    print(f"{'left pending':<22}{outbox.get('pending', 0):>10,}")
    print(f"{'failed':<22}{outbox.get('failed', 0):>10,}")
    # Without a crash every signal arrives once; with one, the signals sent but not recorded
    # arrive twice (same key, same bytes), and the hub keeps one of each.
    ok = (
        stats["unique"] == args.signals
        and (stats["duplicates"] == 0 or args.crash_after > 0)
        and stats["bad_signatures"] == 0
        and stats["mismatched_ids"] == 0
        and outbox.get("delivered", 0) == args.signals == outbox["audited"]
        and not outbox.get("pending")
    )
    if not ok:
        print("CHECK FAILED")
    elif stats["duplicates"]:
        print("every signal received; the resent ones after the crash carried their key")
    else:
        print("every signal received exactly once")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--signals", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16, help="POSTs in flight at once")
    parser.add_argument(
        "--flaky", type=float, default=0.0, help="share of signals answered 503 the first time"
    )
    parser.add_argument(
        "--hub-latency-ms", type=float, default=0.0,
        help="the receiver waits this long before it answers (a distant hub)",
    )  # fmt: skip
    parser.add_argument(
        "--crash-after", type=int, default=0, metavar="N",
        help="make the first pass die when it records its N-th group of outcomes",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=8766, help="the receiver's port")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="wiped! name must hold 'bench'")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="nightreg-dispatch-bench-"))
    try:
        url = fresh_database(args.db, args.pg_url, work_dir)
    except (SetupError, Exception) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(url, args, work_dir))
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
