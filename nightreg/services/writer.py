"""Group commit for check-ins: visits that arrive together are written in one transaction.

A busy evening at a harbour means many phones submitting at once. Each write transaction costs
a lock (SQLite has one writer at a time) and a commit; sharing them between the visits that
are waiting anyway raises throughput and cuts the tail latency, while every visitor still
gets their answer only after their visit is committed.

In the same transaction, each new visit of a subject already present at its site is marked
as a possible duplicate (nightreg.services.presence): the check-in is kept, staff resolve it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError

from nightreg.db import Database
from nightreg.models import Visit
from nightreg.services import presence

_Pending = tuple[dict[str, Any], "asyncio.Future[int]"]

# One Core statement for every batch: SQLAlchemy compiles and caches it once, where an ORM
# insert with inline values would be keyed and compiled again for each visit.
_VISIT_TABLE = cast(Table, Visit.__table__)
_INSERT_VISITS = insert(_VISIT_TABLE).returning(_VISIT_TABLE.c.id, sort_by_parameter_order=True)


class VisitWriter:
    def __init__(self, db: Database, max_batch: int = 64) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def insert(self, values: dict[str, Any]) -> int:
        """Insert one visit and return its id once it is committed.

        Raises IntegrityError when this visit (not a neighbour in its batch) breaks a unique
        constraint, exactly as a lone insert would.
        """
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run(), name="nightreg-visit-writer")
        assert self._queue is not None
        future: asyncio.Future[int] = loop.create_future()
        self._queue.put_nowait((values, future))
        return await future

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._write(batch)
            except BaseException as exc:  # never leave a visitor waiting forever
                for _values, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
                if not isinstance(exc, Exception):
                    raise

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            ids = await self._insert_many([values for values, _future in batch])
        except IntegrityError:
            # One of them repeats an idempotency key (a double submit) or draws a reference
            # that exists: write them one by one so that only that one hears about it.
            for values, future in batch:
                try:
                    [visit_id] = await self._insert_many([values])
                except IntegrityError as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(visit_id)
            return
        for (_values, future), visit_id in zip(batch, ids, strict=True):
            if not future.done():
                future.set_result(visit_id)

    async def _insert_many(self, rows: list[dict[str, Any]]) -> list[int]:
        async with self.db.write_connection() as conn:
            await presence.lock_sites(conn, (row["site_id"] for row in rows))
            result = await conn.execute(_INSERT_VISITS, rows)
            ids = list(result.scalars())
            await presence.mark(conn, ids)
            return ids
