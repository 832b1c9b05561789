"""Rate limits: requests counted per key in fixed windows of a minute.

What is limited (the settings name the numbers):
- kiosk check-ins (the POSTs that may make a visit) per client address and per check-in point;
- JSON API requests per bearer token.

Litestar's RateLimitMiddleware keys on the client address only and answers with a bare 429;
the kiosk needs a limit per check-in point too and an answer the visitor understands, and the
API a JSON error with a stable code.

Where the counts live (`NIGHTREG_RATE_LIMIT_STORE`):
- on PostgreSQL, in the table `rate_count`, which every app instance behind a load balancer
  shares: a limit of N is N whichever instance a request lands on. One statement counts all
  keys of a request (INSERT … ON CONFLICT DO UPDATE … RETURNING, chained in a WITH): one round
  trip, autocommit, and a row lock held only for that statement. The table is UNLOGGED, so a
  count costs no write-ahead log and no fsync.
- on SQLite (one process by design), in the process's memory: a write per check-in would queue
  behind the database's only writer, on the hottest path there is.

The limits of one request are counted in order and the counting stops at the first one over
its limit: a flood from one address is refused by the address's limit without using up the
check-in point's, which honest visitors at that point share.

Windows are fixed and aligned to the minute (00-59 seconds), on the app's clock; a client may
therefore send up to twice its limit across a minute's boundary, never more. The rows of
finished windows are deleted by each instance once a minute, as it goes.

Keys hold no personal data in clear: an address is kept as a keyed hash (HMAC-SHA256 under a
key derived from the secret key, which every instance shares); points and tokens by their id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from nightreg.db import Database
from nightreg.security import derive_key
from nightreg.settings import Settings

log = logging.getLogger("nightreg")

WINDOW_SECONDS = 60
WINDOW = timedelta(seconds=WINDOW_SECONDS)
# Bounds the memory of the in-process counters when very many addresses pass by.
MEMORY_KEYS = 50_000

Store = Literal["memory", "database"]


@dataclass(frozen=True)
class Limit:
    """At most `limit` requests per window for `key`."""

    key: str
    limit: int


@dataclass(frozen=True)
class Refused:
    """A request over the limit of `key`: the window ends in `retry_after` seconds."""

    key: str
    retry_after: int


def window_start(now: datetime) -> datetime:
    """The start of the fixed window `now` falls in (aligned to the epoch, so to the minute)."""
    seconds = math.floor(now.timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS
    return datetime.fromtimestamp(seconds, UTC)


class Counter(Protocol):
    store: Store

    async def count(self, limits: Sequence[Limit], window: datetime) -> list[int]:
        """Count one request against each limit in order, in the window starting at `window`,
        up to and including the first one over its limit; the counts after this request."""
        ...


class MemoryCounter:
    """Counts of this process only (SQLite, or `NIGHTREG_RATE_LIMIT_STORE=memory`)."""

    store: Store = "memory"

    def __init__(self) -> None:
        self._counts: dict[str, tuple[datetime, int]] = {}

    async def count(self, limits: Sequence[Limit], window: datetime) -> list[int]:
        counts = []
        for limit in limits:
            started, count = self._counts.get(limit.key, (window, 0))
            count = count + 1 if started == window else 1
            self._counts[limit.key] = (window, count)
            counts.append(count)
            if count > limit.limit:
                break
        if len(self._counts) > MEMORY_KEYS:
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        return counts


def _counting_statement(n: int) -> TextClause:
    """One statement that adds a batch of :n requests to n keys in order.

    Level 0 counts all of them; each next level only those the level before left within its
    limit (`m{i}`: the requests of the batch still in the running, the first ones of it). The
    casts tell PostgreSQL the types of parameters an INSERT … SELECT takes. (Only numbers are
    formatted into the text; the keys and limits are parameters.)
    """
    parts = ["m0 AS (SELECT CAST(:n AS integer) AS v)"]
    for i in range(n):
        if i:
            parts.append(
                f"m{i} AS (SELECT GREATEST(0, LEAST(m{i - 1}.v, "  # noqa: S608
                f":l{i - 1} - (c{i - 1}.hits - m{i - 1}.v))) AS v FROM c{i - 1}, m{i - 1})"
            )
        parts.append(
            f"c{i} AS (INSERT INTO rate_count AS r (window_start, key, hits) "  # noqa: S608
            f"SELECT CAST(:window AS timestamptz), CAST(:k{i} AS varchar), v FROM m{i} "
            "WHERE v > 0 ON CONFLICT (window_start, key) DO UPDATE "
            "SET hits = r.hits + EXCLUDED.hits RETURNING r.hits)"
        )
    totals = ", ".join(f"(SELECT hits FROM c{i})" for i in range(n))  # noqa: S608
    return text(f"WITH {', '.join(parts)} SELECT {totals}")


def counts_of_batch(
    totals: Sequence[int | None], limits: Sequence[Limit], n: int
) -> list[list[int]]:
    """What each of a batch's n requests counted, in order, from the keys' new totals.

    Requests take the places of the batch in order: at a level where the total is T after
    adding m of them, they were numbers T-m+1 … T; those within the limit go on to the next.
    """
    counts: list[list[int]] = [[] for _ in range(n)]
    running = n
    for total, limit in zip(totals, limits, strict=False):
        if total is None or not running:
            break
        first = total - running + 1
        for j in range(running):
            counts[j].append(first + j)
        running = max(0, min(running, limit.limit - (total - running)))
    return counts


# Finished windows, deleted without waiting for another instance that is deleting them too.
_SWEEP = text(
    "DELETE FROM rate_count WHERE (window_start, key) IN (SELECT window_start, key "
    "FROM rate_count WHERE window_start < :window FOR UPDATE SKIP LOCKED)"
)

_Tag = tuple[datetime, tuple[Limit, ...]]


class DatabaseCounter:
    """Counts in the table `rate_count` that every instance on one PostgreSQL shares.

    Requests of this instance that count the same keys while a statement for those keys is on
    its way are counted together by the next one (`hits = hits + n`), each told its own place:
    one statement in flight per set of keys and instance, however busy a check-in point is,
    and no queue of statements waiting for the same row's lock.
    """

    store: Store = "database"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._statements: dict[int, TextClause] = {}
        self._swept: datetime | None = None
        # Per set of keys being counted: the requests waiting for the next statement.
        self._waiting: dict[_Tag, list[asyncio.Future[list[int]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def count(self, limits: Sequence[Limit], window: datetime) -> list[int]:
        tag = (window, tuple(limits))
        waiting = self._waiting.get(tag)
        if waiting is not None:
            # A statement for these keys is on its way: wait to be counted by the next one.
            future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
            waiting.append(future)
            return await future
        self._waiting[tag] = []
        try:
            totals = await self._execute(self._statement(limits, window, 1))
        finally:
            self._hand_over(tag)
        if self._swept is None or self._swept < window:
            # Once a window per instance: what an earlier window counted is of no use now.
            self._swept = window
            try:
                await self._execute((_SWEEP, {"window": window}), fetch=False)
            except Exception:  # the next window tries again
                log.warning("could not delete the rate limits' finished windows", exc_info=True)
        return counts_of_batch(totals, limits, 1)[0]

    def _hand_over(self, tag: _Tag) -> None:
        """The requests that came while a statement was on its way are sent together next."""
        if not self._waiting[tag]:
            del self._waiting[tag]
            return
        task = asyncio.create_task(self._send_batches(tag))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_batches(self, tag: _Tag) -> None:
        window, limits = tag
        try:
            while batch := self._waiting[tag]:
                # Requests arriving from now on wait for the next statement.
                self._waiting[tag] = []
                try:
                    totals = await self._execute(self._statement(limits, window, len(batch)))
                except Exception as exc:  # every request of the batch fails with it
                    for future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for future, counts in zip(
                    batch, counts_of_batch(totals, limits, len(batch)), strict=True
                ):
                    if not future.done():  # a request given up meanwhile was counted anyway
                        future.set_result(counts)
        finally:
            del self._waiting[tag]

    def _statement(
        self, limits: Sequence[Limit], window: datetime, n: int
    ) -> tuple[TextClause, dict[str, object]]:
        statement = self._statements.get(len(limits))
        if statement is None:
            statement = self._statements[len(limits)] = _counting_statement(len(limits))
        params: dict[str, object] = {"window": window, "n": n}
        for i, limit in enumerate(limits):
            params[f"k{i}"] = limit.key
            params[f"l{i}"] = limit.limit
        return statement, params

    async def _execute(
        self, statement: tuple[TextClause, dict[str, object]], *, fetch: bool = True
    ) -> Sequence[int | None]:
        # The pool does not ping a connection before use (a round trip each time); one that
        # died with a restarted server is noticed by its error and the statement sent again.
        for attempt in range(2):
            try:
                async with self.engine.connect() as conn:
                    result = await conn.execute(*statement)
                    return tuple(result.one()) if fetch else ()
            except DBAPIError as exc:
                if attempt or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")


def address_key(secret: bytes, address: str) -> str:
    """A client address as a key: a keyed hash, so that the table holds no address."""
    digest = hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()
    return f"addr:{digest[:32]}"


def store_for(settings: Settings) -> Store:
    if settings.rate_limit_store != "auto":
        return settings.rate_limit_store
    return "memory" if settings.database_url.startswith("sqlite") else "database"


def counter_for(settings: Settings, db: Database) -> Counter:
    """The counter of the store the settings choose (`auto`: the database on PostgreSQL)."""
    if store_for(settings) == "database":
        return DatabaseCounter(db.counter_engine)
    return MemoryCounter()


class RateLimits:
    """The app's rate limits, with the numbers of the settings."""

    def __init__(self, settings: Settings, counter: Counter) -> None:
        self.settings = settings
        self.counter = counter
        self._address_secret = derive_key(settings.secret_key, "rate-limit-address")

    async def hit(self, limits: Sequence[Limit], now: datetime) -> Refused | None:
        """Count one request against `limits` (in order); the first refusal, or None."""
        window = window_start(now)
        counts = await self.counter.count(limits, window)
        for limit, count in zip(limits, counts, strict=False):
            if count > limit.limit:
                wait = (window + WINDOW - now).total_seconds()
                return Refused(key=limit.key, retry_after=max(1, math.ceil(wait)))
        return None

    async def check_in(self, address: str, point_id: int, now: datetime) -> Refused | None:
        """A check-in from `address` at a point: the address's limit, then the point's."""
        return await self.hit(
            [
                Limit(address_key(self._address_secret, address),
                      self.settings.checkin_rate_per_address),
                Limit(f"point:{point_id}", self.settings.checkin_rate_per_point),
            ],
            now,
        )  # fmt: skip

    async def api_request(self, token_id: int, now: datetime) -> Refused | None:
        """A JSON API request with a bearer token."""
        return await self.hit([Limit(f"token:{token_id}", self.settings.api_rate_per_token)], now)
