"""The metrics' pure parts: the series of a snapshot, labels, who may scrape, slots, settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nightreg import metrics
from nightreg.jobs import slot_seconds
from nightreg.metrics import JobState, PoolState, PurgeReceipt, Snapshot
from nightreg.settings import Settings, SettingsError
from nightreg.web.metrics import address_allowed, refusal

T = datetime(2026, 7, 14, 19, 0, tzinfo=UTC)
TOKEN = "t" * 16 + "0123456789abcdef"


def series(snapshot: Snapshot, checkins: dict[tuple[int, str], int] | None = None):
    families = list(metrics.snapshot_families(snapshot, checkins or {}))
    return {s.name: s for f in families for s in f.samples if not s.labels}, {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }


def test_every_site_shows_every_source_and_a_site_not_read_is_named_by_its_id():
    _, values = series(Snapshot(sites={1: "harbour", 2: "park"}), {(1, "kiosk"): 3, (9, "api"): 1})
    checkins = {k[1]: v for k, v in values.items() if k[0] == "nightreg_checkins_total"}
    assert checkins[(("site", "harbour"), ("source", "kiosk"))] == 3
    assert checkins[(("site", "park"), ("source", "round"))] == 0
    assert checkins[(("site", "site-9"), ("source", "api"))] == 1
    assert len(checkins) == 2 * 4 + 1


def test_a_jobs_result_is_one_hot_and_a_job_that_never_ran_has_only_its_slot():
    ran = JobState("purge", 86400.0, finished_at=T, duration_seconds=2.5, result="failed")
    never = JobState("scan", 600.0)
    _, values = series(Snapshot(jobs=(ran, never)))
    assert (
        values[("nightreg_job_last_run_result", (("job_name", "purge"), ("result", "failed")))] == 1
    )
    assert values[("nightreg_job_last_run_result", (("job_name", "purge"), ("result", "ok")))] == 0
    assert values[("nightreg_job_last_run_duration_seconds", (("job_name", "purge"),))] == 2.5
    assert ("nightreg_job_last_success_timestamp_seconds", (("job_name", "purge"),)) not in values
    assert values[("nightreg_job_slot_seconds", (("job_name", "scan"),))] == 600
    assert not [
        k for k in values if k[0].startswith("nightreg_job_last") and ("job_name", "scan") in k[1]
    ]


def test_the_outbox_shows_every_status_and_the_purge_its_newest_receipt():
    receipt = PurgeReceipt(
        at=T, deleted={"visits": 4, "flags_open": 0}, aggregated_visits=4, finished=False
    )
    plain, values = series(Snapshot(outbox={"pending": 2}, purge=receipt))
    assert values[("nightreg_outbox_signals", (("status", "pending"),))] == 2
    assert values[("nightreg_outbox_signals", (("status", "failed"),))] == 0
    assert "nightreg_outbox_oldest_pending_timestamp_seconds" not in plain
    assert values[("nightreg_purge_last_deleted_rows", (("category", "visits"),))] == 4
    assert plain["nightreg_purge_last_finished"].value == 0
    assert plain["nightreg_purge_last_timestamp_seconds"].value == T.timestamp()


def test_without_a_database_only_db_up_says_so_and_the_pool_still_shows():
    pool = PoolState(size=16, checked_out=3, overflow=-13, max_overflow=0)
    plain, values = series(Snapshot(pool=pool, database="sqlite", database_up=False))
    assert plain["nightreg_db_up"].value == 0
    assert values[("nightreg_db_pool_checked_out", (("database", "sqlite"),))] == 3
    # SQLAlchemy counts overflow from -size up: only connections beyond the size are shown.
    assert values[("nightreg_db_pool_overflow", (("database", "sqlite"),))] == 0
    assert values[("nightreg_db_pool_max", (("database", "sqlite"),))] == 16


def test_the_exposition_parses_as_prometheus_text():
    text = metrics.exposition(Snapshot(sites={1: "harbour"})).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "nightreg_checkins",
        "nightreg_http_request_duration_seconds",
        "nightreg_db_up",
    } <= names


def test_an_odd_method_and_an_unmatched_path_get_bounded_labels():
    metrics.observe_request("BREW", None, 404, 0.01)
    known = len(metrics._request_series)
    for n in range(50):
        metrics.observe_request(f"BREW{n}", None, 404, 0.01)
    assert len(metrics._request_series) == known
    histogram = metrics.REQUEST_SECONDS.labels("other", metrics.UNMATCHED)
    assert histogram._sum.get() >= 0.01  # type: ignore[attr-defined]
    assert metrics.RESPONSES.labels(metrics.UNMATCHED, "4xx")._value.get() >= 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("testclient", False),
        ("", False),
    ],
)
def test_the_default_allow_list_is_the_loopback_networks(host: str, allowed: bool):
    assert address_allowed(host, Settings.metrics_allow) is allowed


def settings(tmp_path: Path, **changes: object) -> Settings:
    base = Settings(data_dir=tmp_path, database_url="sqlite+aiosqlite://", secret_key="k" * 40)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_token_decides_on_its_own_and_an_address_without_one(tmp_path: Path):
    open_ = settings(tmp_path, metrics_token=TOKEN)
    assert refusal(open_, f"Bearer {TOKEN}", "203.0.113.1", forwarded=True) is None
    assert refusal(open_, f"bearer {TOKEN}", "203.0.113.1", forwarded=False) is None
    assert refusal(open_, "Bearer wrong", "127.0.0.1", forwarded=False) == 401
    assert refusal(open_, None, "127.0.0.1", forwarded=False) is None
    assert refusal(open_, None, "203.0.113.1", forwarded=False) == 401
    closed = settings(tmp_path, metrics_allow=())
    assert refusal(closed, None, "127.0.0.1", forwarded=False) == 403
    assert refusal(closed, f"Bearer {TOKEN}", "127.0.0.1", forwarded=False) == 401
    # Through a proxy nobody declared trusted, the address is the proxy's: it proves nothing.
    assert refusal(settings(tmp_path), None, "127.0.0.1", forwarded=True) == 403
    trusting = settings(tmp_path, trusted_proxies=("127.0.0.1",))
    assert refusal(trusting, None, "127.0.0.1", forwarded=True) is None


@pytest.mark.parametrize(
    ("crontab", "seconds"),
    [("*/10 * * * *", 600), ("0 * * * *", 3600), ("30 3 * * *", 86400), ("* * * * *", 60)],
)
def test_a_jobs_slot_is_the_time_between_its_next_two_runs(
    tmp_path: Path, crontab: str, seconds: int
):
    assert slot_seconds(crontab, settings(tmp_path), T) == seconds


def test_the_metrics_settings_are_read_and_checked(tmp_path: Path):
    env = {"NIGHTREG_DATA_DIR": str(tmp_path), "NIGHTREG_SECRET_KEY": "k" * 40}
    defaults = Settings.from_env(env)
    assert defaults.metrics_token == ""
    assert defaults.metrics_allow == ("127.0.0.0/8", "::1/128")
    read = Settings.from_env(
        {**env, "NIGHTREG_METRICS_ALLOW": "10.0.0.7, 10.1.0.0/16,", "NIGHTREG_METRICS_TOKEN": TOKEN}
    )
    assert read.metrics_allow == ("10.0.0.7/32", "10.1.0.0/16")
    assert read.metrics_token == TOKEN
    assert Settings.from_env({**env, "NIGHTREG_METRICS_ALLOW": "none"}).metrics_allow == ()
    with pytest.raises(SettingsError, match=r"NIGHTREG_METRICS_ALLOW: .*'10\.0\.0\.300'"):
        Settings.from_env({**env, "NIGHTREG_METRICS_ALLOW": "10.0.0.300"})
    with pytest.raises(SettingsError, match="NIGHTREG_METRICS_TOKEN: use at least 32"):
        Settings.from_env({**env, "NIGHTREG_METRICS_TOKEN": "short"})
