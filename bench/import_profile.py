"""The import's hot path in one process, for profiling (bench/README.md, "Import benchmark").

    python bench/import_profile.py rows   [--rows 20000] [--dialect sqlite|postgresql|none]
                                          [--profile FILE.prof]
    python bench/import_profile.py import --db sqlite|postgresql [--rows 100000] [--pg-url URL]

`rows`: what a worker process does with the file of bench/import.py (read, check, the driver's
parameters, the pickling of each chunk for the pipe), in this process, and what the app's
process then spends unpickling the chunks; rows per CPU second of each (`--dialect none` is a
dry run's worker). With `--profile` the worker's part runs under cProfile.

`import`: the service itself (`register_import.import_register`, worker processes and all)
without the web page: a dry run, the import and the same file again into a fresh database, with
the CPU seconds of this process (the app's main process) and of its children (the fork server
and its workers, counted when they end), and PostgreSQL's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import os
import pickle
import pstats
import sys
import tempfile
import time
from argparse import Namespace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from nightreg.services import register_import, visits  # noqa: E402
from nightreg.services.import_columns import SKIP, guess_columns  # noqa: E402
from nightreg.services.import_files import open_file  # noqa: E402

bench_import = importlib.import_module("bench.import")
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
SITE = register_import.SiteFacts(
    id=1, visit_kinds=("vessel", "vehicle", "stay"), timezone="Europe/Amsterdam",
    usual_arrival_time="14:00", usual_departure_time="12:00",
)  # fmt: skip


def children_cpu() -> float:
    """CPU seconds of the fork server and the workers it has reaped (bench/import.py)."""
    return float(bench_import.tree_cpu(os.getpid()) - bench_import.process_cpu(os.getpid()))


def threads_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads by name (the event loop's, the driver's, ...)."""
    found: dict[str, float] = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        fields = text.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        key = "main" if task.name == str(os.getpid()) else name.rstrip("0123456789_")
        found[key] = found.get(key, 0.0) + seconds
    return found


async def backends_cpu(db: Any) -> float:
    """CPU seconds of the PostgreSQL backends serving this database (not other users')."""
    from sqlalchemy import text

    if db.is_sqlite:
        return 0.0
    async with db.engine.connect() as conn:
        pids = list(
            await conn.scalars(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        )
    return float(sum(bench_import.process_cpu(pid) for pid in pids))


def run_rows(args: Namespace, sheet: Path) -> None:
    """Per chunk the least CPU time of `--repeat` readings of the whole file (each with fresh
    caches): on a shared machine the least is the closest to the work itself."""
    from sqlalchemy.engine import make_url

    best: list[float] = []
    pickled: list[bytes] = []
    count = 0
    profiler = cProfile.Profile() if args.profile else None
    for _round in range(args.repeat):
        with sheet.open("rb") as stream:
            opened = open_file(stream)
            columns = [c or SKIP for c in guess_columns(opened.headers, {})]
            rows = register_import._Rows(SITE, opened, columns, NOW)
            keep = register_import._KEEP_DRY
            if args.dialect != "none":
                driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
                rows.bulk = visits.BulkRows(make_url(driver[args.dialect] + "://").get_dialect()())
                keep = register_import._KEEP_WRITE
            pickled, count, times = [], 0, []
            if profiler:
                profiler.enable()
            began = time.process_time()
            for chunk in rows.chunks(register_import.PROCESS_BATCH_SIZE):
                count += chunk.rows
                if chunk.values:
                    chunk.values = [{k: v[k] for k in keep} for v in chunk.values]
                pickled.append(pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL))
                now = time.process_time()
                times.append(now - began)
                began = now
            if profiler:
                profiler.disable()
            opened.close()
        best = [min(pair) for pair in zip(best, times, strict=True)] if best else times
    worker = sum(best)
    began = time.process_time()
    for data in pickled:
        pickle.loads(data)
    main = time.process_time() - began
    print(f"worker ({args.dialect}): {count:,} rows in {worker:.2f} CPU-s = "
          f"{count / worker:,.0f} rows/CPU-s ({worker / count * 1e6:.1f} µs a row)")  # fmt: skip
    print(f"main process unpickling: {main:.2f} CPU-s = {count / main:,.0f} rows/CPU-s "
          f"({sum(map(len, pickled)) / 1e6:.1f} MB pickled)")  # fmt: skip
    if profiler:
        profiler.dump_stats(args.profile)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


async def _import(url: str, sheet: Path) -> None:
    from nightreg.db import Database
    from nightreg.services import audit, sites
    from nightreg.services.access import CLI

    audit.use_keyring(audit.Keyring.of("bench-profile-" + "k" * 40))
    db = Database(url)
    try:
        site = await sites.get_site(db, "bench")
        for name, dry_run in (("dry run", True), ("import", False), ("again", False)):
            main0, kids0, pg0 = time.process_time(), children_cpu(), await backends_cpu(db)
            threads0 = threads_cpu()
            wall0 = time.monotonic()
            with sheet.open("rb") as stream:
                report = await register_import.import_register(
                    db, CLI, site.id, stream, filename=sheet.name, now=datetime.now(UTC),
                    dry_run=dry_run,
                )  # fmt: skip
            wall = time.monotonic() - wall0
            main = time.process_time() - main0
            kids = children_cpu() - kids0
            pg = await backends_cpu(db) - pg0
            threads = threads_cpu()
            by_thread = ", ".join(
                f"{name} {threads[name] - threads0.get(name, 0.0):.1f}" for name in sorted(threads)
            )
            rows = report.rows
            print(
                f"{name:<8} {rows / wall:8,.0f} rows/s ({wall:.1f} s; new {report.new:,}, "
                f"existing {report.existing:,}, imported {report.imported:,}, bad "
                f"{report.bad_rows}); main {main:.1f} CPU-s = {rows / main:,.0f} rows/CPU-s; "
                f"workers {kids:.1f} CPU-s; all app {rows / (main + kids):,.0f} rows/CPU-s"
                + (f"; PostgreSQL {pg:.1f} CPU-s" if pg else "")
                + f"\n         main process threads: {by_thread}",
                flush=True,
            )
    finally:
        await db.dispose()


def run_import(args: Namespace, sheet: Path, work_dir: Path) -> None:
    checkin = importlib.import_module("bench.checkin")
    args.port = 8799
    setup = checkin.prepare(args, work_dir)
    os.environ["NIGHTREG_DATA_DIR"] = str(work_dir / "data")
    register_import.MAX_WORKERS = args.workers

    asyncio.run(_import(setup.database_url, sheet))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("mode", choices=("rows", "import"))
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--dialect", choices=("sqlite", "postgresql", "none"), default="sqlite")
    parser.add_argument("--profile", default="")
    parser.add_argument("--repeat", type=int, default=5, help="rows: readings of the file")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=importlib.import_module("bench.checkin").DEFAULT_PG_URL)
    parser.add_argument("--workers", type=int, default=register_import.MAX_WORKERS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nightreg-import-profile-") as tmp:
        work_dir = Path(tmp)
        sheet = work_dir / "seizoen.csv"
        bench_import.write_sheet(sheet, args.rows)
        if args.mode == "rows":
            run_rows(args, sheet)
        else:
            run_import(args, sheet, work_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
