"""Failed sign-ins slow the next attempt down, per account and per address.

Every way of proving who one is counts here: the password (auth.py), the second factor and its
recovery codes (twofactor.py), and the current password when changing it, so that none can be
guessed faster by switching to another.

An attempt is counted *before* its secret is checked (`begin_attempt`): the count and the new
row are one transaction that takes turns per account and per address, so that parallel requests
cannot all pass the check before any of them is counted. A failed attempt's row stays and is
the failure; a successful one's row is removed (or the whole account's, by a sign-in).

Attempts refused because of the wait are not rows and not chained audit events one by one:
`RefusalTally` counts them in memory and writes one event per account or address per window.
Anonymous traffic therefore writes nothing while it is throttled, and cannot keep the audit
chain's lock busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.models import SignInFailure
from nightreg.services import audit
from nightreg.services.access import Actor

# Failed attempts are counted over this window; past a limit, each attempt waits longer.
THROTTLE_WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
FIRST_DELAY_SECONDS = 30
MAX_DELAY_SECONDS = 15 * 60


def delay(failures: int, limit: int) -> int:
    """Seconds to wait after the last failure: 30 s at the limit, doubling with each failure."""
    if failures < limit:
        return 0
    return int(min(FIRST_DELAY_SECONDS * 2 ** (failures - limit), MAX_DELAY_SECONDS))


@dataclass(frozen=True)
class Throttled:
    """An attempt refused before its secret was looked at: wait `seconds`."""

    seconds: int
    # Which count is over its limit (the address's when both are): what the refusal is told by.
    by: Literal["account", "address"]


@dataclass(frozen=True)
class Attempt:
    """An attempt counted (as a failure, until `succeeded`) whose secret may now be checked."""

    id: int


async def _waits(
    session: AsyncSession, email: str, address: str, now: datetime
) -> Throttled | None:
    # No upper bound at `now`: an attempt that began a moment later may have been counted first.
    since = now - THROTTLE_WINDOW
    account, address_wait = (
        await _wait(session, SignInFailure.email == email, since, now, ACCOUNT_LIMIT),
        await _wait(session, SignInFailure.address == address, since, now, ADDRESS_LIMIT),
    )
    if max(account, address_wait) <= 0:
        return None
    if address_wait >= account:
        return Throttled(seconds=address_wait, by="address")
    return Throttled(seconds=account, by="account")


async def _wait(
    session: AsyncSession, which: ColumnElement[bool], since: datetime, now: datetime, limit: int
) -> int:
    count, last = (
        await session.execute(
            select(func.count(), func.max(SignInFailure.at)).where(which, SignInFailure.at > since)
        )
    ).one()
    if last is None:
        return 0
    return int(delay(count, limit) - (now - last).total_seconds() + 0.999)


def _lock_key(kind: str, value: str) -> int:
    """A PostgreSQL advisory lock key (a signed 64-bit number) for one account or address."""
    digest = hashlib.sha256(f"nightreg-sign-in:{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _take_turns(session: AsyncSession, email: str, address: str) -> None:
    """Attempts on one account, or from one address, count one after another.

    On PostgreSQL: advisory locks held to the end of the transaction, taken in a fixed order so
    that two attempts never wait for each other both ways; several app instances share them. On
    SQLite the write transaction (BEGIN IMMEDIATE) holds the database's only write lock already.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({_lock_key("account", email), _lock_key("address", address)}):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def begin_attempt(
    db: Database,
    email: str,
    address: str,
    now: datetime,
    *,
    tally: RefusalTally | None = None,
) -> Attempt | Throttled:
    """Count one attempt on `email` from `address` before its secret is checked, or refuse it.

    An address this instance has seen throttled is refused from memory (`tally`) until its
    wait ends; otherwise the first look is a plain read. Either way a flood of attempts that
    must wait writes nothing and takes no lock. The deciding count is repeated in the write
    transaction, in turn.
    """
    address = address[:64]
    if tally is None:
        return await _begin(db, email, address, now, None)
    # Attempts from one address take turns in memory first: a burst of them then waits here,
    # not in the database's queue of writers in front of the staff pages' (issue 17, finding 5),
    # and once the address must wait, the rest of the burst is refused from memory.
    async with tally.turn(address):
        return await _begin(db, email, address, now, tally)


async def _begin(
    db: Database, email: str, address: str, now: datetime, tally: RefusalTally | None
) -> Attempt | Throttled:
    if tally is not None and (known := tally.known_wait(address, now)) is not None:
        return known
    async with db.read() as session:
        throttled = await _waits(session, email, address, now)
    if throttled is None:
        async with db.write() as session:
            await _take_turns(session, email, address)
            throttled = await _waits(session, email, address, now)
            if throttled is None:
                row = SignInFailure(email=email, address=address, at=now)
                session.add(row)
                await session.flush()
                return Attempt(id=row.id)
    if tally is not None:
        tally.remember(throttled, address, now)
    return throttled


async def succeeded(session: AsyncSession, attempt: Attempt) -> None:
    """The attempt's secret was right: it is not a failure (inside the caller's transaction)."""
    await session.execute(delete(SignInFailure).where(SignInFailure.id == attempt.id))


# --- attempts refused while throttled: counted, one audit event per window -------------------


@dataclass
class _Refusals:
    by: str
    value: str  # the account's e-mail or the address
    address: str  # the last address they came from
    first: datetime
    last: datetime
    count: int = 0


@dataclass
class RefusalTally:
    """Attempts refused while throttled, counted in memory by account or address.

    Each account or address gets one audit event per THROTTLE_WINDOW ("sign_in_throttled" with
    the count), written when its window is over (`due`, looked at on every attempt) or when the
    app stops (`everything`). Per app instance: each instance writes its own count.
    """

    open: dict[tuple[str, str], _Refusals] = field(default_factory=dict)
    # Addresses whose wait this instance has been told by the database, and until when: their
    # next attempts are refused without a query. (Only addresses: a reset link clears an
    # account's failures, and its holder must not be kept waiting by a remembered wait.)
    address_waits: dict[str, datetime] = field(default_factory=dict)
    # One attempt at a time per address is counted (begin_attempt); the others wait their turn.
    _turns: dict[str, tuple[asyncio.Lock, list[int]]] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def turn(self, address: str) -> AsyncIterator[None]:
        lock, waiting = self._turns.setdefault(address, (asyncio.Lock(), [0]))
        waiting[0] += 1
        try:
            async with lock:
                yield
        finally:
            waiting[0] -= 1
            if not waiting[0]:
                self._turns.pop(address, None)

    def known_wait(self, address: str, now: datetime) -> Throttled | None:
        until = self.address_waits.get(address)
        if until is None:
            return None
        if until <= now:
            del self.address_waits[address]
            return None
        return Throttled(seconds=int((until - now).total_seconds() + 0.999), by="address")

    def remember(self, throttled: Throttled, address: str, now: datetime) -> None:
        if throttled.by == "address":
            self.address_waits[address] = now + timedelta(seconds=throttled.seconds)

    def note(self, throttled: Throttled, *, email: str, address: str, now: datetime) -> None:
        value = address if throttled.by == "address" else email
        entry = self.open.get((throttled.by, value))
        if entry is None:
            entry = self.open[(throttled.by, value)] = _Refusals(
                throttled.by, value, address, first=now, last=now
            )
        entry.count += 1
        entry.last = now
        entry.address = address

    def take(self, now: datetime, *, everything: bool = False) -> list[_Refusals]:
        """The counts whose window is over (or all of them), no longer open."""
        for address, until in list(self.address_waits.items()):
            if until <= now:
                del self.address_waits[address]
        done = [
            key
            for key, entry in self.open.items()
            if everything or now - entry.first >= THROTTLE_WINDOW
        ]
        return [self.open.pop(key) for key in done]


async def write_refusals(
    db: Database, tally: RefusalTally, now: datetime, *, everything: bool = False
) -> int:
    """Write the tally's finished counts to the audit trail, one event each; how many."""
    entries = tally.take(now, everything=everything)
    if not entries:
        return 0
    async with db.write() as session:
        for entry in entries:
            await audit.record(
                session,
                Actor(kind="anonymous", address=entry.address),
                "sign_in_throttled",
                at=now,
                details={
                    "email" if entry.by == "account" else "address": entry.value,
                    "refused": entry.count,
                    "first": entry.first.isoformat(),
                    "last": entry.last.isoformat(),
                },
            )
    return len(entries)
