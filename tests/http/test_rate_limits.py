"""Rate limits over HTTP, and shared by every app instance on one PostgreSQL.

The limits' logic on a moved clock: tests/unit/test_ratelimit.py. The kiosk's answer to a
refused check-in: tests/http/test_checkin.py.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.app import create_app
from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import RateCount
from nightreg.ratelimit import DatabaseCounter, Limit, RateLimits, window_start
from nightreg.settings import Settings
from tests.factories import PointRef, make_point, new_token
from tests.pages import bearer, open_form, yacht

Client = AsyncTestClient[Litestar]

postgresql_only = pytest.mark.skipif(
    not os.environ.get("NIGHTREG_TEST_DATABASE_URL"),
    reason="the shared counts are PostgreSQL's (on SQLite, one process counts in memory); "
    "set NIGHTREG_TEST_DATABASE_URL to run this",
)


@pytest.fixture
async def instances(
    make_settings: Callable[..., Settings], clock: FrozenClock
) -> AsyncIterator[Callable[..., Any]]:
    """`await instances(n, **settings)`: n apps on the test's database, each with its client."""
    async with AsyncExitStack() as stack:

        async def start(n: int, **changes: object) -> list[Client]:
            return [
                await stack.enter_async_context(
                    AsyncTestClient(
                        app=create_app(make_settings(**changes), clock=clock),
                        base_url="http://testserver.local",
                    )
                )
                for _ in range(n)
            ]

        yield start


async def sites_with(client: Client, token: str) -> Any:
    return await client.get("/api/v1/sites", headers=bearer(token))


async def test_a_token_over_its_limit_is_answered_429_rate_limited_with_retry_after(
    instances: Callable[..., Any], db: Database, clock: FrozenClock
):
    (client,) = await instances(1, api_rate_per_token=2)
    point = await make_point(db, "marina")
    token = await new_token(db, "harbour_master", point.site_slug)
    other = await new_token(db, "harbour_master", point.site_slug)
    for _ in range(2):
        assert (await sites_with(client, token)).status_code == 200
    refused = await sites_with(client, token)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    assert (await sites_with(client, other)).status_code == 200  # each token has its own
    clock.advance(timedelta(seconds=wait))
    assert (await sites_with(client, token)).status_code == 200


async def test_a_request_without_a_valid_token_is_not_counted_against_anyone(
    instances: Callable[..., Any], db: Database
):
    (client,) = await instances(1, api_rate_per_token=1)
    point = await make_point(db, "marina")
    for _ in range(3):
        assert (await sites_with(client, "nrt_made-up")).status_code == 401
    token = await new_token(db, "harbour_master", point.site_slug)
    assert (await sites_with(client, token)).status_code == 200


# --- two instances, one PostgreSQL ----------------------------------------------------------


@postgresql_only
async def test_two_instances_share_a_kiosk_limit_wherever_the_next_check_in_lands(
    instances: Callable[..., Any], db: Database
):
    apps = await instances(2, checkin_rate_per_address=3)
    point: PointRef = await make_point(db, "marina")

    async def check_in(client: Client) -> int:
        form = {**await open_form(client, point), **yacht()}
        return (await client.post(point.url, data=form, follow_redirects=False)).status_code

    # 3 check-ins spread over both instances: each alone has seen fewer than its limit.
    assert [await check_in(apps[n % 2]) for n in (0, 1, 0)] == [303, 303, 303]
    # The 4th is refused on the second instance, and so on the first: both see the same count.
    assert [await check_in(apps[1]), await check_in(apps[0])] == [429, 429]


@postgresql_only
async def test_two_instances_share_a_tokens_limit_wherever_the_next_request_lands(
    instances: Callable[..., Any], db: Database
):
    apps = await instances(2, api_rate_per_token=4)
    point = await make_point(db, "marina")
    token = await new_token(db, "harbour_master", point.site_slug)
    assert [(await sites_with(apps[n % 2], token)).status_code for n in range(4)] == [200] * 4
    for app in apps:
        refused = await sites_with(app, token)
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"


@postgresql_only
async def test_the_shared_counts_hold_no_address_and_finished_minutes_are_deleted(
    database_url: str, settings: Settings, clock: FrozenClock
):
    # Two counters on two engines, as two instances have.
    first, second = Database(database_url), Database(database_url)
    try:
        limits = [
            RateLimits(settings, DatabaseCounter(first.counter_engine)),
            RateLimits(settings, DatabaseCounter(second.counter_engine)),
        ]
        earlier = clock.now() - timedelta(minutes=5)
        assert await limits[0].check_in("192.0.2.1", 7, earlier) is None
        now = clock.now()
        outcomes = [await limits[n % 2].hit([Limit("k", 2)], now) for n in range(3)]
        assert outcomes[:2] == [None, None]
        assert outcomes[2] is not None
        async with first.read() as session:
            rows = list(await session.scalars(select(RateCount)))
        # The first count of this minute deleted the rows of the minutes before it.
        assert [(row.key, row.window_start, row.hits) for row in rows] == [
            ("k", window_start(now), 3)
        ]
        assert await limits[1].check_in("192.0.2.1", 7, now) is None
        async with first.read() as session:
            keys = set(await session.scalars(select(RateCount.key)))
        assert "point:7" in keys
        assert not any("192.0.2.1" in key for key in keys)
    finally:
        await first.dispose()
        await second.dispose()


@postgresql_only
async def test_requests_at_the_same_moment_on_two_instances_are_allowed_exactly_the_limit(
    database_url: str, settings: Settings, clock: FrozenClock
):
    first, second = Database(database_url), Database(database_url)
    try:
        counters = [DatabaseCounter(first.counter_engine), DatabaseCounter(second.counter_engine)]
        limits = [RateLimits(settings, counter) for counter in counters]
        now = clock.now()
        outcomes = await asyncio.gather(
            *(limits[n % 2].hit([Limit("a", 10), Limit("b", 100)], now) for n in range(30))
        )
        assert sum(outcome is None for outcome in outcomes) == 10
        async with first.read() as session:
            counts = dict((await session.execute(select(RateCount.key, RateCount.hits))).all())
        assert counts == {"a": 30, "b": 10}
    finally:
        await first.dispose()
        await second.dispose()
