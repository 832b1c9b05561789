"""The rate limits' logic, counted in memory, on a clock the tests move.

The same logic counted in the database every instance shares: tests/http/test_rate_limits.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nightreg.clock import FrozenClock
from nightreg.ratelimit import (
    Limit,
    MemoryCounter,
    RateLimits,
    address_key,
    counts_of_batch,
    store_for,
)
from nightreg.settings import Settings, SettingsError
from tests.factories import TEST_SECRET_KEY

# 21:30:20 on a summer evening: 40 seconds left in the minute's window.
AT = datetime(2026, 7, 14, 19, 30, 20, tzinfo=UTC)


def limits(**changes: object) -> RateLimits:
    settings = Settings(
        data_dir=Path("/nonexistent"),
        database_url="sqlite+aiosqlite:///:memory:",
        secret_key=TEST_SECRET_KEY,
    )
    return RateLimits(replace(settings, **changes), MemoryCounter())  # type: ignore[arg-type]


async def test_a_limit_allows_its_number_and_refuses_the_next_until_the_minute_is_over():
    clock = FrozenClock(AT)
    rate = limits()
    outcomes = [await rate.hit([Limit("a", 3)], clock.now()) for _ in range(4)]
    assert outcomes[:3] == [None, None, None]
    assert outcomes[3] is not None
    assert outcomes[3].key == "a"
    assert outcomes[3].retry_after == 40
    assert await rate.hit([Limit("b", 3)], clock.now()) is None  # another key is not affected
    clock.advance(timedelta(seconds=39))
    refused = await rate.hit([Limit("a", 3)], clock.now())
    assert refused is not None
    assert refused.retry_after == 1
    clock.advance(timedelta(seconds=1))
    assert await rate.hit([Limit("a", 3)], clock.now()) is None


async def test_windows_are_whole_minutes_so_a_burst_across_the_boundary_gets_twice_the_limit():
    clock = FrozenClock(AT.replace(second=59))
    rate = limits()
    assert [await rate.hit([Limit("a", 2)], clock.now()) for _ in range(2)] == [None, None]
    clock.advance(timedelta(seconds=1))
    assert [await rate.hit([Limit("a", 2)], clock.now()) for _ in range(2)] == [None, None]
    assert await rate.hit([Limit("a", 2)], clock.now()) is not None


async def test_a_request_refused_by_its_address_does_not_use_up_the_points_limit():
    rate = limits(checkin_rate_per_address=2, checkin_rate_per_point=5)
    for _ in range(10):
        await rate.check_in("192.0.2.1", 7, AT)
    # The flood counted 2 against the point; honest visitors from elsewhere still get in.
    outcomes = [await rate.check_in(f"198.51.100.{n}", 7, AT) for n in range(4)]
    assert outcomes[:3] == [None, None, None]
    refused = outcomes[3]
    assert refused is not None
    assert refused.key == "point:7"


async def test_the_api_limit_counts_per_token():
    rate = limits(api_rate_per_token=2)
    assert [await rate.api_request(1, AT) for _ in range(2)] == [None, None]
    refused = await rate.api_request(1, AT)
    assert refused is not None
    assert refused.key == "token:1"
    assert await rate.api_request(2, AT) is None


def test_requests_counted_together_each_get_their_own_place_in_order():
    # Five requests from one address at one point, sent in one statement: the address's count
    # went from 0 to 5; only the first 3 were within its limit and counted at the point.
    limits = [Limit("addr", 3), Limit("point", 10)]
    assert counts_of_batch([5, 3], limits, 5) == [[1, 1], [2, 2], [3, 3], [4], [5]]
    # The address had 8 already: the batch took places 9-12, two of them within the limit; the
    # point had 20 and is over its own limit for both.
    limits = [Limit("addr", 10), Limit("point", 20)]
    assert counts_of_batch([12, 22], limits, 4) == [[9, 21], [10, 22], [11], [12]]
    # None within the address's limit: the point was not counted (no total).
    assert counts_of_batch([14, None], limits, 2) == [[13], [14]]


def test_an_address_is_kept_only_as_a_keyed_hash():
    key = address_key(b"k" * 32, "192.0.2.1")
    assert "192.0.2.1" not in key
    assert key == address_key(b"k" * 32, "192.0.2.1")
    assert key != address_key(b"j" * 32, "192.0.2.1")
    assert key != address_key(b"k" * 32, "192.0.2.2")
    assert len(key) <= 64


def test_the_shared_store_is_chosen_on_postgresql_and_memory_on_sqlite(tmp_path: Path):
    sqlite = Settings.from_env({"NIGHTREG_DATA_DIR": str(tmp_path)})
    postgres = Settings.from_env(
        {
            "NIGHTREG_DATA_DIR": str(tmp_path),
            "NIGHTREG_DATABASE_URL": "postgresql+asyncpg://u@db/nightreg",
        }
    )
    assert store_for(sqlite) == "memory"
    assert store_for(postgres) == "database"
    assert store_for(replace(postgres, rate_limit_store="memory")) == "memory"
    assert postgres.api_rate_per_token == 600


@pytest.mark.parametrize(
    ("value", "message"),
    [("database", "database needs PostgreSQL"), ("redis", "auto, memory or database")],
)
def test_a_store_sqlite_cannot_have_is_refused_in_one_line(
    tmp_path: Path, value: str, message: str
):
    with pytest.raises(SettingsError, match=f"NIGHTREG_RATE_LIMIT_STORE: {message}"):
        Settings.from_env({"NIGHTREG_DATA_DIR": str(tmp_path), "NIGHTREG_RATE_LIMIT_STORE": value})
