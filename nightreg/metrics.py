"""The operator's metrics (Prometheus): what this process counts, and the state read at scrape time.

Two kinds of series, both prefixed `nightreg_`:

- counted by this process since it started (`REGISTRY`): check-ins by site and source, failed
  sign-ins, request latency by route template, the process's CPU and memory. Each app instance
  exposes its own; Prometheus adds them up across its `instance` label.
- read from the database when /metrics is scraped (`Snapshot`, filled by
  nightreg.services.metrics): each job's last run, the outbox by status, the newest purge
  receipt, plus this process's database pool. The database's series are the same from every
  instance; alert on them with `max without (instance)`.

Labels never carry personal data or a raw path: a site's slug, a source, a job's name
(`job_name`), a route *template* (`/k/v/{vtoken}`, never the token itself). Counting costs a
dictionary update and a lock per request; nothing here touches the database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from nightreg.vocabulary import SOURCES

PREFIX = "nightreg"
# The text format every Prometheus reads (the names here need none of 1.0.0's quoting); the web
# framework adds the charset.
CONTENT_TYPE = "text/plain; version=0.0.4"

# The label of a request no route matched (404, 405, a refused CSRF check before routing).
UNMATCHED = "(unmatched)"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The ways a sign-in fails: a wrong password or an unknown or disabled account (one label, so
# that the metric says nothing about which e-mails exist), a wrong second-factor or recovery
# code, and an attempt refused unread because the account or address must wait.
SIGN_IN_FAILURE_REASONS = ("password", "second_factor", "throttled")
JOB_RESULTS = ("ok", "failed")
OUTBOX_STATUSES = ("pending", "delivered", "failed")

# No `_created` series beside each counter and histogram: Prometheus's text format does not use
# them, and they double the lines of a scrape. (A switch of the library, for the whole process.)
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(namespace=PREFIX, registry=REGISTRY)

REQUEST_SECONDS = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time from a request's arrival to its answer's last byte, by method and route template.",
    ["method", "route"],
    registry=REGISTRY,
)
RESPONSES = Counter(
    f"{PREFIX}_http_responses",
    "Answers by route template and status class (2xx, 3xx, 4xx, 5xx).",
    ["route", "status"],
    registry=REGISTRY,
)
SIGN_IN_FAILURES = Counter(
    f"{PREFIX}_sign_in_failures",
    "Failed staff sign-ins: wrong password or unknown account, wrong second factor, throttled.",
    ["reason"],
    registry=REGISTRY,
)
for _reason in SIGN_IN_FAILURE_REASONS:
    SIGN_IN_FAILURES.labels(_reason)


# The series of each (method, route, status class) seen, looked up once: `labels()` takes a
# lock and builds a key each time. Bounded, like the labels: routes are templates.
_request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """One answered request (called by the request log's middleware for every answer)."""
    # The method is the client's to choose: normalised before it becomes a key.
    key = (method if method in _METHODS else "other", route or UNMATCHED, status // 100)
    series = _request_series.get(key)
    if series is None:
        series = _request_series[key] = (
            REQUEST_SECONDS.labels(key[0], key[1]),
            RESPONSES.labels(key[1], f"{key[2]}xx"),
        )
    series[0].observe(seconds)
    series[1].inc()


def sign_in_failed(reason: str) -> None:
    SIGN_IN_FAILURES.labels(reason).inc()


class _CheckinTally:
    """Visits written by this process, by site id and source.

    Counted by id (the writer knows no slug) and exposed by slug at scrape time, when the
    sites are read anyway.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, str], int] = {}

    def add(self, site_id: int, source: str) -> None:
        with self._lock:
            key = (site_id, source)
            self._counts[key] = self._counts.get(key, 0) + 1

    def counts(self) -> dict[tuple[int, str], int]:
        with self._lock:
            return dict(self._counts)


CHECKINS = _CheckinTally()


def checked_in(site_id: int, source: str) -> None:
    """A visit was written (kiosk, staff walk-in, API, round); a repeated submit is not."""
    CHECKINS.add(site_id, source)


# --- read at scrape time ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobState:
    """A job's newest finished run (None: it never finished one) and its schedule."""

    job: str
    # The time between two of the job's scheduled slots (None: no further slot is due).
    slot_seconds: float | None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    result: str | None = None
    last_success_at: datetime | None = None


@dataclass(frozen=True)
class PurgeReceipt:
    """The newest purge receipt (an audit event `purge_completed`): counts, nothing personal."""

    at: datetime
    deleted: Mapping[str, int]
    aggregated_visits: int
    finished: bool


@dataclass(frozen=True)
class PoolState:
    """This process's database connection pool."""

    size: int
    checked_out: int
    overflow: int
    max_overflow: int


@dataclass(frozen=True)
class Snapshot:
    sites: Mapping[int, str] = field(default_factory=dict)
    jobs: tuple[JobState, ...] = ()
    outbox: Mapping[str, int] = field(default_factory=dict)
    outbox_oldest_pending: datetime | None = None
    purge: PurgeReceipt | None = None
    pool: PoolState | None = None
    database: str = ""
    # False when the database could not be read for this scrape: the series above are absent.
    database_up: bool = True


def _gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=list(labels))


def _seconds(at: datetime) -> float:
    return at.timestamp()


def snapshot_families(
    snapshot: Snapshot, checkins: Mapping[tuple[int, str], int]
) -> Iterator[Metric]:
    """The series read at scrape time, plus the check-ins counted by id, named by slug."""
    up = _gauge("db_up", "1 when this scrape could read the database, 0 when it could not.")
    up.add_metric([], 1.0 if snapshot.database_up else 0.0)
    yield up
    counted = CounterMetricFamily(
        f"{PREFIX}_checkins",
        "Visits written by this process (check-ins, walk-ins, API, rounds), by site and source.",
        labels=["site", "source"],
    )
    by_label: dict[tuple[str, str], int] = {
        (slug, source): 0 for slug in snapshot.sites.values() for source in SOURCES
    }
    for (site_id, source), n in checkins.items():
        slug = snapshot.sites.get(site_id, f"site-{site_id}")
        by_label[(slug, source)] = by_label.get((slug, source), 0) + n
    for (slug, source), n in sorted(by_label.items()):
        counted.add_metric([slug, source], n)
    yield counted

    yield from _job_families(snapshot.jobs)

    outbox = _gauge("outbox_signals", "Signals in the outbox by status.", ("status",))
    for status in OUTBOX_STATUSES:
        outbox.add_metric([status], snapshot.outbox.get(status, 0))
    yield outbox
    oldest = _gauge(
        "outbox_oldest_pending_timestamp_seconds",
        "When the oldest pending signal was forwarded (absent: none is pending).",
    )
    if snapshot.outbox_oldest_pending is not None:
        oldest.add_metric([], _seconds(snapshot.outbox_oldest_pending))
    yield oldest

    yield from _purge_families(snapshot.purge)

    if snapshot.pool is not None:
        pool = snapshot.pool
        labels = ("database",)
        size = _gauge("db_pool_size", "Connections this process keeps open.", labels)
        size.add_metric([snapshot.database], pool.size)
        limit = _gauge(
            "db_pool_max", "The most connections this process opens (size + overflow).", labels
        )
        limit.add_metric([snapshot.database], pool.size + pool.max_overflow)
        out = _gauge("db_pool_checked_out", "Connections in use by this process now.", labels)
        out.add_metric([snapshot.database], pool.checked_out)
        over = _gauge("db_pool_overflow", "Connections open beyond the pool's size now.", labels)
        over.add_metric([snapshot.database], max(pool.overflow, 0))
        yield from (size, limit, out, over)


def _job_families(jobs: tuple[JobState, ...]) -> Iterator[Metric]:
    # Not `job`: Prometheus gives every target a `job` label of its own (and would rename ours).
    label = ("job_name",)
    last = _gauge(
        "job_last_run_timestamp_seconds", "When the job's newest finished run ended.", label
    )
    duration = _gauge("job_last_run_duration_seconds", "How long its newest run took.", label)
    result = _gauge(
        "job_last_run_result",
        "The newest run's result: 1 for the result it had, 0 for the other.",
        ("job_name", "result"),
    )
    success = _gauge(
        "job_last_success_timestamp_seconds", "When the job's newest successful run ended.", label
    )
    slot = _gauge("job_slot_seconds", "The time between two of the job's scheduled slots.", label)
    for job in jobs:
        if job.slot_seconds is not None:
            slot.add_metric([job.job], job.slot_seconds)
        if job.finished_at is not None:
            last.add_metric([job.job], _seconds(job.finished_at))
        if job.duration_seconds is not None:
            duration.add_metric([job.job], job.duration_seconds)
        if job.result is not None:
            for each in JOB_RESULTS:
                result.add_metric([job.job, each], 1.0 if job.result == each else 0.0)
        if job.last_success_at is not None:
            success.add_metric([job.job], _seconds(job.last_success_at))
    yield from (last, duration, result, success, slot)


def _purge_families(receipt: PurgeReceipt | None) -> Iterator[Metric]:
    at = _gauge("purge_last_timestamp_seconds", "When the newest purge receipt was written.")
    deleted = _gauge(
        "purge_last_deleted_rows", "Rows the newest purge deleted, by category.", ("category",)
    )
    aggregated = _gauge(
        "purge_last_aggregated_visits", "Visits the newest purge kept as non-personal counts."
    )
    finished = _gauge(
        "purge_last_finished",
        "1 when the newest purge finished, 0 when it ran out of time or failed midway.",
    )
    if receipt is not None:
        at.add_metric([], _seconds(receipt.at))
        for category, n in sorted(receipt.deleted.items()):
            deleted.add_metric([category], n)
        aggregated.add_metric([], receipt.aggregated_visits)
        finished.add_metric([], 1.0 if receipt.finished else 0.0)
    yield from (at, deleted, aggregated, finished)


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        return snapshot_families(self.snapshot, CHECKINS.counts())


def exposition(snapshot: Snapshot) -> bytes:
    """The text a scrape receives: this process's counters, then the snapshot's series."""
    return generate_latest(REGISTRY) + generate_latest(_SnapshotCollector(snapshot))
