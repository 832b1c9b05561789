"""Gate camera sightings benchmark: camera systems posting batches against one uvicorn worker.

    python bench/sightings.py --db sqlite|postgresql [--rate 500] [--batch 100]
                              [--duration 20] [--rate 0 --concurrency 4]

Prepares a fresh database like bench/checkin.py (whose setup, server start and measurements it
imports: a temporary SQLite file, or the PostgreSQL database of `--pg-url`, whose name must
contain "bench", emptied first), adds a business park with its gate cameras switched on and a
`sensor` token, and serves the real app under uvicorn. Then batches of `--batch` new sightings
(`POST /api/v1/sites/park/sightings`) are offered at `--rate` sightings/s for `--duration`
seconds (open loop: the next batch does not wait for the last answer); with `--rate 0`,
`--concurrency` camera systems post as fast as they are answered (the ceiling). Reported:
sightings stored per second, and the latency of a batch
(p50/p95/p99). Targets (issue 19): at least 500 sightings/s in batches of 100, p99 at most
200 ms. See bench/README.md "# Sightings benchmark".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], the app is one up
    sys.path.insert(0, str(REPO))

from bench import checkin  # noqa: E402

PARK = "park"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/nightreg_bench_sightings"
TARGET_RATE = 500.0  # sightings per second
TARGET_P99_MS = 200.0


def prepare(args: argparse.Namespace, work_dir: Path) -> tuple[checkin.Environment, str]:
    """checkin's environment, a business park with its cameras on, and a sensor token."""
    setup = checkin.prepare(args, work_dir)
    checkin._nightreg(setup, "site", "add", PARK, "--name", "Bedrijventerrein Bench",
                      "--kind", "business_park")  # fmt: skip
    checkin._nightreg(setup, "site", "cameras", PARK, "on", "--dpia", "DPIA-BENCH")
    out = checkin._nightreg(setup, "token", "add", "camera", "--role", "sensor", "--site", PARK)
    token = out.strip().splitlines()[-1]
    if not token.startswith("nrt_"):
        raise checkin.SetupError(f"nightreg token add printed no token: {out!r}")
    return setup, token


def _batch(camera: int, serial: int, size: int, start: datetime) -> dict[str, object]:
    """`size` new sightings: each camera system its own plates and seconds."""
    items = []
    for i in range(size):
        n = serial * size + i
        at = start + timedelta(seconds=n % 86_400, microseconds=camera)
        items.append({
            "plate": f"{camera % 90 + 10:02d}-{n % 1000:03d}-{chr(65 + n // 1000 % 26)}",
            "time": at.isoformat(),
            "camera": f"gate-{camera}",
            "direction": "in" if n % 2 == 0 else "out",
        })  # fmt: skip
    return {"sightings": items}


async def _camera(
    base_url: str, token: str, camera: int, size: int, deadline: float,
    latencies: list[float], counts: dict[str, int], start: datetime,
) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as client:
        serial = 0
        while time.monotonic() < deadline:
            body = _batch(camera, serial, size, start)
            serial += 1
            began = time.perf_counter()
            answer = await client.post(f"/api/v1/sites/{PARK}/sightings", json=body)
            latencies.append(time.perf_counter() - began)
            if answer.status_code != 200:
                counts["failed"] += 1
                continue
            result = answer.json()
            counts["stored"] += result["stored"]
            counts["duplicates"] += result["duplicates"]
            counts["refused"] += len(result["errors"])


async def _paced(
    base_url: str, token: str, args: argparse.Namespace, deadline: float,
    latencies: list[float], counts: dict[str, int], start: datetime,
) -> None:  # fmt: skip
    """Open loop: a batch every batch/rate seconds, whether or not the last one is answered
    (so a slow answer cannot hold back the next and hide its own delay)."""
    headers = {"Authorization": f"Bearer {token}"}
    interval = args.batch / args.rate
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=30, headers=headers, limits=limits
    ) as client:

        async def one(serial: int) -> None:
            body = _batch(0, serial, args.batch, start)
            began = time.perf_counter()
            answer = await client.post(f"/api/v1/sites/{PARK}/sightings", json=body)
            latencies.append(time.perf_counter() - began)
            if answer.status_code != 200:
                counts["failed"] += 1
                return
            result = answer.json()
            counts["stored"] += result["stored"]
            counts["duplicates"] += result["duplicates"]
            counts["refused"] += len(result["errors"])

        tasks = []
        first = time.monotonic()
        serial = 0
        while time.monotonic() < deadline:
            tasks.append(asyncio.create_task(one(serial)))
            serial += 1
            await asyncio.sleep(max(0.0, first + serial * interval - time.monotonic()))
        await asyncio.gather(*tasks)


async def load(
    base_url: str, token: str, args: argparse.Namespace, earlier: timedelta = timedelta(0)
) -> tuple[checkin.Latency, dict[str, int], float]:
    """`--rate` sightings/s offered (open loop), or, with --rate 0, `--concurrency` camera
    systems posting as fast as they are answered."""
    latencies: list[float] = []
    counts = {"stored": 0, "duplicates": 0, "refused": 0, "failed": 0}
    # A day ago, so that no batch is in the future; far enough apart per run to be new.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1, hours=1) - earlier
    began = time.monotonic()
    deadline = began + args.duration
    if args.rate > 0:
        await _paced(base_url, token, args, deadline, latencies, counts, start)
    else:
        await asyncio.gather(*(
            _camera(base_url, token, c, args.batch, deadline, latencies, counts, start)
            for c in range(args.concurrency)
        ))  # fmt: skip
    elapsed = time.monotonic() - began
    return checkin.Latency.of(latencies, elapsed), counts, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--port", type=int, default=8793)
    parser.add_argument(
        "--rate", type=float, default=TARGET_RATE,
        help="sightings/s to offer (open loop); 0: as fast as --concurrency cameras go",
    )  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warm-up", type=float, default=3.0)
    args = parser.parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="nightreg-bench-sightings-"))
    server = None
    try:
        background = checkin.background_load()
        setup, token = prepare(args, work_dir)
        server = checkin.start_server(
            setup, args.port, work_dir / "server.log", "bench.app:create_bench_app"
        )
        warm = argparse.Namespace(**{**vars(args), "duration": args.warm_up})
        asyncio.run(load(setup.base_url, token, warm, earlier=timedelta(hours=2)))
        cpu_before = checkin.process_cpu(server.pid)
        latency, counts, elapsed = asyncio.run(load(setup.base_url, token, args))
        cpu = checkin.process_cpu(server.pid) - cpu_before
    except checkin.SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            checkin.stop_server(server)
        shutil.rmtree(work_dir, ignore_errors=True)
    # Over the time the load was offered (the last answers come in after it).
    rate = counts["stored"] / min(elapsed, args.duration) if elapsed else 0.0
    load_avg = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print("Nachtregister gate camera sightings benchmark")
    print(f"database          {args.db}")
    mode = (f"{args.rate:.0f} sightings/s offered" if args.rate > 0
            else f"{args.concurrency} cameras as fast as answered")  # fmt: skip
    print(f"load              batches of {args.batch}, {mode}, {args.duration:.0f} s")
    print(f"machine           {os.cpu_count()} cores; load average {load_avg}; "
          f"{background:.0f}% busy before the run")  # fmt: skip
    print(latency.line("batch"))
    print(f"sightings stored  {counts['stored']} ({rate:.0f}/s); duplicates "
          f"{counts['duplicates']}, refused {counts['refused']}, failed requests "
          f"{counts['failed']}")  # fmt: skip
    print(f"server CPU        {cpu:.1f} s of {elapsed:.1f} s")
    ok_rate, ok_p99 = rate >= TARGET_RATE, latency.p99 <= TARGET_P99_MS
    print(f"target rate       >= {TARGET_RATE:.0f}/s: {'met' if ok_rate else 'NOT met'}")
    print(f"target p99        <= {TARGET_P99_MS:.0f} ms: {'met' if ok_p99 else 'NOT met'}")
    return 0 if ok_rate and ok_p99 and not counts["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
