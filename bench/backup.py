"""The backup drill: back up during 50 concurrent check-ins, restore into a fresh database, check.

    python bench/backup.py --db sqlite|postgresql [--concurrency 50] [--duration 12]
                           [--backup-at 5] [--port 8766] [--pg-url URL] [--keep]

Reuses bench/checkin.py: the same fresh database, site and point, the same server
(`bench.app:create_bench_app` under uvicorn) and the same visitors (its "post only" phase:
each visitor POSTs check-ins as fast as the server answers). `--backup-at` seconds into the
load, `nightreg backup --out FILE` runs as a separate process, as an operator's would. After
the load the server stops; `nightreg restore FILE` fills a fresh, empty database (SQLite: a new
file; PostgreSQL: the database named by --pg-url with `_restore` appended, its public schema
dropped), `nightreg audit verify` runs on it, and a second server on the restored database
answers the private link of every check-in acknowledged before the backup began.

What must hold (exit 1 otherwise):
- every check-in acknowledged before the snapshot was taken is in the restore;
- no check-in whose POST was sent after the snapshot is in it;
- the visits restored = those acknowledged before the snapshot + those in flight at its moment
  that had committed (counted, with the bound: in flight is at most the number of visitors);
- the restored audit trail verifies, and matches the checkpoint the backup carries;
- each of those visits' private links answers 200 with the visit on the restored server.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], the app is one up
    sys.path.insert(0, str(REPO))

from bench import checkin  # noqa: E402
from nightreg.services.backup import describe  # noqa: E402

DEFAULT_PG_URL = checkin.DEFAULT_PG_URL


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _run(setup: checkin.Environment, env: dict[str, str], *args: str) -> tuple[int, str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nightreg.cli", *args],
        cwd=setup.work_dir, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return done.returncode, (done.stdout + done.stderr).strip(), time.perf_counter() - started


async def _open_links(base_url: str, tokens: list[str], concurrency: int = 8) -> dict[str, int]:
    """GET each private link; count the answers by what they were."""
    outcome: dict[str, int] = {"ok": 0, "other": 0}
    queue = list(tokens)

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            while queue:
                token = queue.pop()
                answer = await client.get(f"/k/v/{token}")
                good = answer.status_code == 200 and "Zeemeeuw" in answer.text
                outcome["ok" if good else "other"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcome


def _restore_target(args: argparse.Namespace, work_dir: Path) -> str:
    if args.db == "sqlite":
        return f"sqlite+aiosqlite:///{work_dir / 'restored.db'}"
    from sqlalchemy.engine import make_url

    url = make_url(args.pg_url)
    target = url.set(database=f"{url.database}_restore").render_as_string(hide_password=False)
    asyncio.run(checkin.reset_postgres(target))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent visitors")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of load")
    parser.add_argument("--backup-at", type=float, default=5.0, help="seconds into the load")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="wiped! name must hold 'bench'")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    # What checkin.run_load_phase reads besides the above.
    args.clients, args.profile = 1, None

    background = checkin.background_load()
    work_dir = Path(tempfile.mkdtemp(prefix="nightreg-backup-drill-"))
    servers: list[subprocess.Popen[bytes]] = []
    try:
        print(f"preparing {args.db} in {work_dir} …", flush=True)
        setup = checkin.prepare(args, work_dir)
        setup.env["NIGHTREG_BACKUP_KEY"] = secrets.token_urlsafe(32)
        servers.append(checkin.start_server(setup, args.port, work_dir / "server.log",
                                            "bench.app:create_bench_app"))  # fmt: skip
        warm = checkin.warm_up(setup, args)
        backup_file = work_dir / "drill.nrbk"
        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(1) as pool, ThreadPoolExecutor(max_workers=1) as thread:
            pool.map(checkin._ready, range(1))
            print(f"load: {args.concurrency} visitors checking in for {args.duration:g} s; "
                  f"backup after {args.backup_at:g} s …", flush=True)  # fmt: skip
            load_started = time.time()
            phase = thread.submit(checkin.run_load_phase, pool, "post", args, setup, servers[0].pid)
            time.sleep(max(0.0, load_started + 0.5 + args.backup_at - time.time()))
            backup_began = time.time()
            code, said, backup_seconds = _run(setup, setup.env, "backup", "--out", str(backup_file))
            if code != 0:
                raise checkin.SetupError(f"nightreg backup failed:\n{said}")
            load = phase.result().result
        checkin.stop_server(servers.pop())
        live = checkin.count_rows(setup.database_url)
        header = describe(backup_file)
        snap_began, snap_ended = _seconds(header.snapshot_began), _seconds(header.snapshot_ended)

        restore_url = _restore_target(args, work_dir)
        restore_env = {**setup.env, "NIGHTREG_DATABASE_URL": restore_url}
        code, restore_said, restore_seconds = _run(setup, restore_env, "restore", str(backup_file))
        if code not in (0, 1):
            raise checkin.SetupError(f"nightreg restore failed:\n{restore_said}")
        restore_ok = code == 0
        verify_code, verify_said, _ = _run(setup, restore_env, "audit", "verify")
        restored = checkin.count_rows(restore_url)

        # Each acknowledged check-in: its token and when it was sent and answered. The warm-up's
        # came before the load, long before the backup.
        acked = [(t, 0.0, 0.0) for t in warm.acknowledged] + [
            (t, sent, got)
            for t, (sent, got) in zip(load.acknowledged, load.acknowledged_at, strict=True)
        ]
        digest = {t: hashlib.sha256(t.encode()).hexdigest() for t, _, _ in acked}
        before = [t for t, _, got in acked if got < snap_began]
        after = [t for t, sent, _ in acked if sent > snap_ended]
        in_flight = [t for t, sent, got in acked if sent <= snap_ended and got >= snap_began]
        all_acked = set(digest.values())
        missing = [t for t in before if digest[t] not in restored.kiosk_hashes]
        leaked = [t for t in after if digest[t] in restored.kiosk_hashes]
        flight_in = sum(1 for t in in_flight if digest[t] in restored.kiosk_hashes)
        unacked_in = len(restored.kiosk_hashes - all_acked)

        port2 = args.port + 1
        restored_setup = replace(setup, env=restore_env, base_url=f"http://127.0.0.1:{port2}")
        servers.append(checkin.start_server(restored_setup, port2, work_dir / "restored.log",
                                            "bench.app:create_bench_app"))  # fmt: skip
        links_started = time.perf_counter()
        links = asyncio.run(_open_links(restored_setup.base_url, before))
        links_seconds = time.perf_counter() - links_started
        checkin.stop_server(servers.pop())

        count_ok = len(restored.kiosk_hashes) == len(before) + flight_in + unacked_in
        conditions = {
            "every check-in acknowledged before the snapshot is restored": not missing,
            "no check-in sent after the snapshot is restored": not leaked,
            "restored = acknowledged before + committed in flight (+ committed, unacknowledged)":
                count_ok,
            f"in flight at the snapshot <= visitors ({args.concurrency})":
                len(in_flight) <= args.concurrency,
            "restore verified (audit chain intact, matches the backup's checkpoint)": restore_ok,
            "nightreg audit verify on the restored database: intact": verify_code == 0,
            "every restored private link answers 200 with its visit":
                links["ok"] == len(before) and links["other"] == 0,
        }  # fmt: skip
        print()
        print(f"# Backup drill — {args.db}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
              f"{checkin.app_revision()}")  # fmt: skip
        print(f"machine: {background:.0f}% of all cores busy in the 2 s before the run "
              f"(other work on the machine)")  # fmt: skip
        print(f"load: {args.concurrency} visitors, {load.elapsed:.1f} s, "
              f"{len(load.acknowledged)} check-ins acknowledged "
              f"({len(load.acknowledged) / max(load.elapsed, 1e-9):.0f}/s), "
              f"errors {sum(load.errors.values())} {dict(load.errors) or ''}")  # fmt: skip
        print(f"backup: `nightreg backup` began {backup_began - load_started - 0.5:.1f} s into "
              f"the load, took {backup_seconds:.2f} s (process start included), "
              f"{backup_file.stat().st_size / 1024:.0f} kB encrypted; snapshot window "
              f"{(snap_ended - snap_began) * 1000:.1f} ms, "
              f"{snap_began - backup_began:.2f} s after the command started")  # fmt: skip
        print(f"acknowledged before the snapshot: {len(before)} (warm-up {len(warm.acknowledged)}"
              f" + load {len(before) - len(warm.acknowledged)}); in flight at it: "
              f"{len(in_flight)}, of which restored {flight_in}; sent after it: {len(after)}, "
              f"of which restored {len(leaked)}")  # fmt: skip
        print(
            f"live database after the load: {len(live.kiosk_hashes)} kiosk visits; "
            f"restored: {len(restored.kiosk_hashes)} kiosk visits "
            f"({unacked_in} not among the acknowledged), {restored.total} visits in all (with the "
            f"warm-up's bare inserts)"
        )
        print(f"restore: {restore_seconds:.2f} s (process start included)")
        for line in restore_said.splitlines():
            print(f"  {line}")
        print(f"audit verify (restored): {verify_said}")
        print(f"private links: {links['ok']} of {len(before)} answered 200 with their visit "
              f"({links['other']} otherwise) in {links_seconds:.1f} s")  # fmt: skip
        for text, ok in conditions.items():
            print(f"  [{'ok' if ok else 'FAILED'}] {text}")
        return 0 if all(conditions.values()) else 1
    except checkin.SetupError as exc:
        print(f"drill: setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        for server in servers:
            checkin.stop_server(server)
        if args.keep:
            print(f"kept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
