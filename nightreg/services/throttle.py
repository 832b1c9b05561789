"""Failed sign-ins slow the next attempt down, per account and per address.

Both ways of proving who one is count here: the password (auth.py) and the second factor
(twofactor.py), so that neither can be guessed faster by switching to the other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from nightreg.db import Database
from nightreg.models import SignInFailure

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


async def throttle_wait(db: Database, email: str, address: str, now: datetime) -> int:
    since = now - THROTTLE_WINDOW
    async with db.read() as session:
        by_account = (
            await session.execute(
                select(func.count(), func.max(SignInFailure.at)).where(
                    SignInFailure.email == email, SignInFailure.at > since, SignInFailure.at <= now
                )
            )
        ).one()
        by_address = (
            await session.execute(
                select(func.count(), func.max(SignInFailure.at)).where(
                    SignInFailure.address == address,
                    SignInFailure.at > since,
                    SignInFailure.at <= now,
                )
            )
        ).one()
    wait = 0
    for (count, last), limit in ((by_account, ACCOUNT_LIMIT), (by_address, ADDRESS_LIMIT)):
        if last is not None:
            remaining = delay(count, limit) - (now - last).total_seconds()
            wait = max(wait, int(remaining + 0.999))
    return wait


async def count_failure(db: Database, email: str, address: str, now: datetime) -> None:
    """One more failed attempt on the account and from the address (for throttle_wait)."""
    async with db.write() as session:
        session.add(SignInFailure(email=email, address=address[:64], at=now))
