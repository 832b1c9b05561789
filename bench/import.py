"""Import benchmark: last season's spreadsheet through the import page, with /health watched.

    python bench/import.py --db sqlite|postgresql [--rows 100000] [--port 8766] [--pg-url URL]
                           [--health-interval 0.05] [--keep]

Prepares a fresh database (an SQLite file in a temporary directory, or the `public` schema of
the PostgreSQL database `nightreg_bench`, dropped and recreated), migrates it, adds a marina and
an admin account with `nightreg` commands, writes a register of `--rows` rows as Dutch Excel
saves it (`;`, Windows-1252, the issue's Dutch headers plus an "Opmerkingen" column, decimal
commas, half the dates without a time) and starts the app under uvicorn (one worker, as
bench/checkin.py does). Then, signed in as the admin, through `POST /admin/sites/…/import`:

1. dry run: the file uploaded with "only check";
2. import: the file uploaded again and imported;
3. again: the same file a third time (idempotent: nothing new to import).

Each phase is timed from the upload's first byte to the report page's last (rows/s = rows /
that time). Meanwhile a second client asks `GET /health` every `--health-interval` seconds;
its latencies during each phase give p50/p95/p99/max. The server's resident memory is sampled
every 50 ms (VmRSS) and its peak read from VmHWM at the end.

Targets (issue 15): dry run and import >= 20,000 rows/s; the server's peak memory <= 200 MB;
/health p99 <= 200 ms during the import. The exit status is 0 even when targets are missed, 2
when setup fails. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], the app is one up
    sys.path.insert(0, str(REPO))

from bench.checkin import (  # noqa: E402
    DEFAULT_PG_URL,
    SITE_SLUG,
    Latency,
    SetupError,
    _nightreg,
    app_revision,
    background_load,
    postgres_cpu,
    prepare,
    process_cpu,
    start_server,
    stop_server,
)

TARGET_ROWS_S = 20_000.0
TARGET_RSS_MB = 200.0
TARGET_HEALTH_P99_MS = 200.0
ADMIN_EMAIL = "bench-admin@haven.test"
ADMIN_PASSWORD = "bench-import-" + "x7Qp" * 4

HEADER = (
    "Datum aankomst;Datum vertrek;Naam schipper;Woonplaats;Naam schip;Registratie;Lengte (m);"
    "Aantal personen;Ligplaats;Opmerkingen"
)
FIRST = ("Jan", "Piet", "Anna", "Zoë", "Jürgen", "Søren", "Chloé", "Kees", "Femke", "Émilie")
LAST = ("de Vries", "Jansen", "Bakker", "Müller", "Østergaard", "O'Brien", "van 't Hof", "Smit")
TOWNS = ("Hoorn", "Enkhuizen", "Den Helder", "Hamburg", "Antwerpen", "Lelystad", "Kiel")
BOATS = ("Zeemeeuw", "Albatros", "Stormvogel", "Möwe", "L'Étoile", "Avontuur", "Noordster")


def write_sheet(path: Path, rows: int, seed: int = 7) -> int:
    """A season's register as Dutch Excel saves it; returns the file's size in bytes."""
    rng = random.Random(seed)
    start = date(2025, 4, 1)
    with path.open("w", encoding="cp1252", newline="") as out:
        out.write(HEADER + "\r\n")
        for i in range(rows):
            arrived = start + timedelta(days=i * 180 // rows)
            nights = rng.randint(1, 6)
            left = arrived + timedelta(days=nights)
            if i % 2:
                arrival = f"{arrived:%d-%m-%Y} {rng.randint(8, 21):02d}:{rng.randint(0, 59):02d}"
            else:
                arrival = f"{arrived:%d-%m-%Y}"  # a date alone: the site's usual hour
            length = f"{rng.randint(5, 24)},{rng.randint(0, 9)}"
            persons = "" if i % 7 == 0 else str(rng.randint(1, 6))
            out.write(
                f"{arrival};{left:%d-%m-%Y};{rng.choice(FIRST)} {rng.choice(LAST)};"
                f"{rng.choice(TOWNS)};{rng.choice(BOATS)};NL-{i:06d}-{'AB'[i % 2]}B;{length};"
                f"{persons};{chr(65 + i % 6)}{i % 40};{'betaald' if i % 3 else ''}\r\n"
            )
    return path.stat().st_size


def _rss_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    """The processes the server started (the import's worker processes, its fork server)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        return found
    return found + [g for c in found for g in _children(c)]


def tree_cpu(pid: int) -> float:
    """CPU seconds of the server and of its child processes (the import's worker processes
    are children of its fork server, which collects their time when they end)."""
    total = process_cpu(pid)
    for child in _children(pid):
        total += process_cpu(child)
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


class Watcher:
    """/health every `interval` seconds and the server's VmRSS every 50 ms, in threads."""

    def __init__(self, base_url: str, pid: int, interval: float) -> None:
        self.base_url = base_url
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float, int]] = []  # (start, seconds, status)
        self.rss: list[tuple[float, int]] = []
        self.worker_peak: dict[int, int] = {}  # VmHWM (kB) of the server's child processes
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._health, daemon=True),
            threading.Thread(target=self._memory, daemon=True),
        ]

    def __enter__(self) -> Watcher:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _health(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self.stop.is_set():
                began = time.monotonic()
                try:
                    status = client.get("/health").status_code
                except httpx.HTTPError:
                    status = 0
                self.samples.append((began, time.monotonic() - began, status))
                self.stop.wait(self.interval)

    def _memory(self) -> None:
        while not self.stop.is_set():
            self.rss.append((time.monotonic(), _rss_kb(self.pid, "VmRSS")))
            for child in _children(self.pid):
                peak = _rss_kb(child, "VmHWM")
                if peak:
                    self.worker_peak[child] = max(peak, self.worker_peak.get(child, 0))
            self.stop.wait(0.05)

    def during(self, start: float, end: float) -> tuple[Latency, int, int]:
        """/health latency, failed checks and the largest RSS (kB) between two moments."""
        chosen = [s for s in self.samples if start <= s[0] <= end]
        failed = sum(1 for s in chosen if s[2] != 200)
        rss = max((kb for at, kb in self.rss if start <= at <= end), default=0)
        return Latency.of([s[1] for s in chosen], end - start), failed, rss


@dataclass
class Phase:
    name: str
    seconds: float
    status: int
    summary: str
    health: Latency
    health_failed: int
    rss_kb: int
    server_cpu: float  # CPU seconds of the app's process (all its threads) and its children
    postgres_cpu: float
    main_cpu: float = 0.0  # of those, the app's own process (the matching and the writing)

    def rows_per_second(self, rows: int) -> float:
        return rows / self.seconds if self.seconds else 0.0


def sign_in(client: httpx.Client) -> str:
    page = client.get("/admin/sign-in")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    if token is None:
        raise SetupError("the sign-in page has no CSRF token")
    answer = client.post(
        "/admin/sign-in",
        data={"_csrf_token": token.group(1), "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
    )
    where = answer.headers.get("location", "")
    if answer.status_code not in (302, 303) or "sign-in" in where:
        raise SetupError(f"sign-in failed: {answer.status_code} to {where!r}")
    return token.group(1)


def _summary(html: str) -> str:
    match = re.search(r'<p role="status">(.*?)</p>', html, re.S) or re.search(
        r'<p class="banner" role="alert">(.*?)</p>', html, re.S
    )
    return " ".join(match.group(1).split()) if match else "(no report on the page)"


def run_phase(
    name: str, client: httpx.Client, csrf: str, sheet: Path, watcher: Watcher, dry_run: bool
) -> Phase:
    data = {"_csrf_token": csrf}
    if dry_run:
        data["dry_run"] = "1"
    with sheet.open("rb") as stream:
        cpu_before, pg_before = tree_cpu(watcher.pid), postgres_cpu()
        main_before = process_cpu(watcher.pid)
        start = time.monotonic()
        answer = client.post(
            f"/admin/sites/{SITE_SLUG}/import",
            data=data,
            files={"file": (sheet.name, stream, "text/csv")},
        )
        end = time.monotonic()
        cpu = tree_cpu(watcher.pid) - cpu_before
        main = process_cpu(watcher.pid) - main_before
        pg = postgres_cpu() - pg_before
    time.sleep(0.2)
    health, failed, rss = watcher.during(start, end)
    summary = _summary(answer.text)
    return Phase(name, end - start, answer.status_code, summary, health, failed, rss, cpu, pg,
                 main)  # fmt: skip


def report(
    args: argparse.Namespace,
    started: datetime,
    background: float,
    size: int,
    phases: list[Phase],
    idle_rss: int,
    peak_rss: int,
    database_url: str,
    worker_peak: int = 0,
) -> None:
    print()
    print(f"import benchmark, {started:%Y-%m-%d %H:%M} UTC, {app_revision()}")
    print(
        f"conditions: {os.cpu_count()} cores ({platform.machine()}), Linux "
        f"{platform.release()}, Python {platform.python_version()}, {args.db} "
        f"({database_url.split('@')[-1] if args.db == 'postgresql' else 'WAL file'}); "
        f"background load {background:.0f} % at the start; one uvicorn worker"
    )
    print(
        f"file: {args.rows:,} rows, {size / 1e6:.1f} MB (Dutch headers, ';', Windows-1252, "
        f"decimal commas, half the dates without a time); /health every "
        f"{args.health_interval * 1000:.0f} ms"
    )
    print()
    for phase in phases:
        print(
            f"{phase.name:<9} {phase.rows_per_second(args.rows):9,.0f} rows/s  "
            f"({phase.seconds:5.1f} s, HTTP {phase.status})  {phase.summary}"
        )
        per_cpu = args.rows / phase.server_cpu if phase.server_cpu else 0.0
        main_per_cpu = args.rows / phase.main_cpu if phase.main_cpu else 0.0
        print(
            f"{'':9} app CPU {phase.server_cpu:.1f} s ({per_cpu:,.0f} rows per CPU second; "
            f"the app's own process {phase.main_cpu:.1f} s = {main_per_cpu:,.0f} rows per CPU "
            f"second)"
            + (f", PostgreSQL CPU {phase.postgres_cpu:.1f} s" if args.db == "postgresql" else "")
        )
        print(
            f"{'':9} {phase.health.line('/health')}  failed {phase.health_failed}; "
            f"server RSS up to {phase.rss_kb / 1024:.0f} MB"
        )
    print()
    print(f"server RSS idle before the first upload: {idle_rss / 1024:.0f} MB; "
          f"peak (VmHWM) {peak_rss / 1024:.0f} MB; largest child process (import worker or "
          f"its fork server) peak {worker_peak / 1024:.0f} MB")  # fmt: skip

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    dry, imported = phases[0], phases[1]
    worst_p99 = max(p.health.p99 for p in phases[:2])
    print(
        f"targets: dry run >= {TARGET_ROWS_S:,.0f} rows/s: "
        f"{verdict(dry.rows_per_second(args.rows) >= TARGET_ROWS_S)}; import: "
        f"{verdict(imported.rows_per_second(args.rows) >= TARGET_ROWS_S)}; peak memory <= "
        f"{TARGET_RSS_MB:.0f} MB (each process): "
        f"{verdict(max(peak_rss, worker_peak) / 1024 <= TARGET_RSS_MB)}; /health p99 <= "
        f"{TARGET_HEALTH_P99_MS:.0f} ms: {verdict(worst_p99 <= TARGET_HEALTH_P99_MS)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--health-interval", type=float, default=0.05, help="seconds")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="wiped! name must hold 'bench'")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    started = datetime.now(UTC)
    background = background_load()
    work_dir = Path(tempfile.mkdtemp(prefix="nightreg-bench-import-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        print(f"preparing {args.db} in {work_dir} …", flush=True)
        setup = prepare(args, work_dir)
        setup.env["NIGHTREG_TWO_FACTOR_ROLES"] = "none"
        done = subprocess.run(
            [sys.executable, "-m", "nightreg.cli", "user", "add", ADMIN_EMAIL, "--role", "admin",
             "--site", SITE_SLUG],
            input=ADMIN_PASSWORD + "\n", cwd=work_dir, env=setup.env, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SetupError(f"nightreg user add failed:\n{done.stdout}{done.stderr}")
        _nightreg(setup, "site", "add", "leeg", "--name", "Leeg", "--kind", "marina")
        sheet = work_dir / "seizoen-2025.csv"
        size = write_sheet(sheet, args.rows)
        print(f"wrote {args.rows:,} rows ({size / 1e6:.1f} MB); starting the server …", flush=True)
        server = start_server(setup, args.port, work_dir / "server.log", "nightreg.app:create_app")
        idle_rss = _rss_kb(server.pid, "VmRSS")
        phases = []
        with (
            httpx.Client(base_url=setup.base_url, timeout=600) as client,
            Watcher(setup.base_url, server.pid, args.health_interval) as watcher,
        ):
            csrf = sign_in(client)
            warm = client.get(f"/admin/sites/{SITE_SLUG}/import")  # warm the templates
            if warm.status_code != 200:
                raise SetupError(f"the import page answered {warm.status_code}")
            time.sleep(1)
            for name, dry_run in (("dry run", True), ("import", False), ("again", False)):
                print(f"{name} …", flush=True)
                phases.append(run_phase(name, client, csrf, sheet, watcher, dry_run))
        peak_rss = _rss_kb(server.pid, "VmHWM")
        stop_server(server)
        worker_peak = max(watcher.worker_peak.values(), default=0)
        report(args, started, background, size, phases, idle_rss, peak_rss, setup.database_url,
               worker_peak)  # fmt: skip
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
