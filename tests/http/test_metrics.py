"""/metrics: every series after a check-in, a failed sign-in and a job run; who may scrape it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send
from prometheus_client.parser import text_string_to_metric_families

from nightreg.app import create_app
from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.jobs import job_specs
from nightreg.services import jobs
from nightreg.settings import Settings
from tests.factories import PointRef, forward, make_agreement, make_staff, new_site
from tests.pages import bearer, csrf_from, open_form, yacht

TOKEN = "metrics-token-9c1f4e2a7b3d5f608e1a2c4b6d8f0a1b"

# Every series /metrics promises (README "Monitoring"), as the parser names them (a counter's
# family without `_total`, a histogram's without `_bucket`/`_sum`/`_count`).
SERIES = {
    "nightreg_checkins",
    "nightreg_http_request_duration_seconds",
    "nightreg_http_responses",
    "nightreg_sign_in_failures",
    "nightreg_job_last_run_timestamp_seconds",
    "nightreg_job_last_run_duration_seconds",
    "nightreg_job_last_run_result",
    "nightreg_job_last_success_timestamp_seconds",
    "nightreg_job_slot_seconds",
    "nightreg_outbox_signals",
    "nightreg_outbox_oldest_pending_timestamp_seconds",
    "nightreg_purge_last_timestamp_seconds",
    "nightreg_purge_last_deleted_rows",
    "nightreg_purge_last_aggregated_visits",
    "nightreg_purge_last_finished",
    "nightreg_db_up",
    "nightreg_db_pool_size",
    "nightreg_db_pool_max",
    "nightreg_db_pool_checked_out",
    "nightreg_db_pool_overflow",
    "nightreg_process_resident_memory_bytes",
}


class FromAddress:
    """The app as seen from another client address (the test client's is `testclient`)."""

    def __init__(self, app: Litestar, host: str) -> None:
        self.app = app
        self.host = host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (self.host, 40000)}  # type: ignore[typeddict-item]
        await self.app(scope, receive, send)


@asynccontextmanager
async def scraper(
    settings: Settings, clock: FrozenClock, host: str | None = None
) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, clock=clock)
    asgi: Any = app if host is None else FromAddress(app, host)
    async with AsyncTestClient(app=asgi, base_url="http://testserver.local") as client:
        yield client


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Each family's samples as (labels, value), by sample name."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        out.setdefault(family.name, [])
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    matching = [v for ls, v in found[name] if all(ls.get(k) == w for k, w in labels.items())]
    assert len(matching) == 1, (name, labels, found.get(name))
    return matching[0]


async def test_a_scrape_after_a_check_in_a_failed_sign_in_and_a_job_run_shows_every_series(
    make_settings: Any, clock: FrozenClock, db: Database, marina: PointRef
):
    settings = make_settings(metrics_token=TOKEN)
    staff = await make_staff(db, "harbour_master", [marina.site_slug])
    site = await new_site(db)
    await forward(db, site, await make_agreement(db), at=clock.now())
    async with scraper(settings, clock) as client:
        form = {**await open_form(client, marina), **yacht()}
        answer = await client.post(marina.url, data=form, follow_redirects=False)
        assert answer.status_code == 303
        page = await client.get("/admin/sign-in")
        refused = await client.post(
            "/admin/sign-in",
            data={"_csrf_token": csrf_from(page.text), "email": staff.email, "password": "wrong!"},
        )
        assert "not right" in refused.text
        run = await jobs.run_job(
            db, job_specs(settings)["purge"], clock=clock, holder="test", trigger="cli"
        )
        assert run.ran

        scrape = await client.get("/metrics", headers=bearer(TOKEN))

    assert scrape.status_code == 200
    assert scrape.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "set-cookie" not in scrape.headers
    text = scrape.text
    found = samples(text)
    assert "_created" not in text
    assert found.keys() >= SERIES, SERIES - found.keys()
    # Nothing personal and no token: no raw path, no guest, no e-mail.
    for secret in (marina.token, "Jan de Vries", "Zeemeeuw", staff.email, TOKEN):
        assert secret not in text

    assert value(found, "nightreg_checkins_total", site=marina.site_slug, source="kiosk") >= 1
    assert value(found, "nightreg_checkins_total", site=marina.site_slug, source="api") >= 0
    assert value(found, "nightreg_sign_in_failures_total", reason="password") >= 1
    kiosk_posts = value(
        found, "nightreg_http_request_duration_seconds_count", method="POST", route="/k/{token}"
    )
    assert kiosk_posts >= 1
    assert value(found, "nightreg_http_responses_total", route="/k/{token}", status="3xx") >= 1

    now = clock.now().timestamp()
    assert value(found, "nightreg_job_last_run_result", job_name="purge", result="ok") == 1
    assert value(found, "nightreg_job_last_run_result", job_name="purge", result="failed") == 0
    assert value(found, "nightreg_job_last_run_timestamp_seconds", job_name="purge") == now
    assert value(found, "nightreg_job_last_success_timestamp_seconds", job_name="purge") == now
    assert value(found, "nightreg_job_last_run_duration_seconds", job_name="purge") >= 0
    assert value(found, "nightreg_job_slot_seconds", job_name="purge") == 24 * 3600
    assert value(found, "nightreg_job_slot_seconds", job_name="scan") == 600
    # Jobs that never ran have a schedule, but no last run.
    assert not [
        ls
        for ls, _v in found["nightreg_job_last_run_timestamp_seconds"]
        if ls["job_name"] == "scan"
    ]

    assert value(found, "nightreg_outbox_signals", status="pending") == 1
    assert value(found, "nightreg_outbox_signals", status="failed") == 0
    assert value(found, "nightreg_outbox_oldest_pending_timestamp_seconds") == now

    assert value(found, "nightreg_purge_last_finished") == 1
    assert value(found, "nightreg_purge_last_timestamp_seconds") == now
    assert value(found, "nightreg_purge_last_deleted_rows", category="visits") == 0

    database = "sqlite" if settings.is_sqlite else "postgresql"
    assert value(found, "nightreg_db_up") == 1
    size = value(found, "nightreg_db_pool_size", database=database)
    assert size > 0
    assert value(found, "nightreg_db_pool_max", database=database) >= size
    assert 0 <= value(found, "nightreg_db_pool_checked_out", database=database) <= size


async def test_a_scraper_from_an_allowed_network_needs_no_token(make_settings: Any, clock):
    settings = make_settings(metrics_allow=("10.1.0.0/16",))
    async with scraper(settings, clock, host="10.1.2.3") as client:
        assert (await client.get("/metrics")).status_code == 200
    async with scraper(settings, clock, host="10.2.0.1") as client:
        assert (await client.get("/metrics")).status_code == 403


async def test_by_default_only_the_machine_itself_may_scrape(settings: Settings, clock):
    for host in ("127.0.0.1", "::1"):
        async with scraper(settings, clock, host=host) as client:
            answer = await client.get("/metrics")
            assert answer.status_code == 200, host
            assert "nightreg_db_up 1.0" in answer.text
    for host in ("192.168.1.5", "2001:db8::1"):
        async with scraper(settings, clock, host=host) as client:
            assert (await client.get("/metrics")).status_code == 403, host


async def test_others_are_refused_without_a_word_about_the_data(
    make_settings: Any, clock: FrozenClock
):
    without_token = make_settings()
    async with scraper(without_token, clock) as client:
        nothing = await client.get("/metrics")
        some_token = await client.get("/metrics", headers=bearer(TOKEN))
    assert nothing.status_code == 403
    # No token is configured: none opens it.
    assert some_token.status_code == 401

    with_token = make_settings(metrics_token=TOKEN)
    async with scraper(with_token, clock) as client:
        answers = {
            "none": await client.get("/metrics"),
            "wrong": await client.get("/metrics", headers=bearer(TOKEN[:-1] + "x")),
            "basic": await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}),
        }
        allowed = await client.get("/metrics", headers=bearer(TOKEN))
    for name, answer in answers.items():
        assert answer.status_code == 401, name
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert "nightreg_" not in answer.text
        assert "set-cookie" not in answer.headers
    assert allowed.status_code == 200

    # A wrong token is refused even from an allowed address.
    async with scraper(with_token, clock, host="127.0.0.1") as client:
        assert (await client.get("/metrics", headers=bearer("x" * 40))).status_code == 401


async def test_a_request_through_an_untrusted_proxy_is_not_let_in_by_its_loopback_address(
    make_settings: Any, clock: FrozenClock
):
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    async with scraper(make_settings(), clock, host="127.0.0.1") as client:
        assert (await client.get("/metrics", headers=forwarded)).status_code == 403
    # With trusted proxies uvicorn puts the original client in the request's address.
    trusting = make_settings(trusted_proxies=("127.0.0.1",))
    async with scraper(trusting, clock, host="127.0.0.1") as client:
        assert (await client.get("/metrics", headers=forwarded)).status_code == 200
