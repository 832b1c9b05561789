"""What every `nightreg` command shares: its one-line error and a database opened for one task."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nightreg.db import Database
from nightreg.settings import Settings

T = TypeVar("T")


class CommandError(Exception):
    """A command cannot do what was asked; its message is printed as one line."""


def with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on a database opened for it and closed after it; return what it returns."""

    async def runner() -> T:
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(runner())
