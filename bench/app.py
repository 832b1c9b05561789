"""The app under benchmark: the real app plus one baseline route, `POST /bench/insert`.

Served by uvicorn as `uvicorn --factory bench.app:create_bench_app`. The extra route writes one
visit through the app's own engine (`ctx.db`) with the plain ORM path, with no form, no
validation and no template, to show what one insert costs on this stack: the "bare insert".
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from litestar import Litestar, MediaType, Response, get, post
from sqlalchemy import event, select
from sqlalchemy.pool import QueuePool

from nightreg.app import create_app
from nightreg.context import AppContext
from nightreg.models import Site, Visit
from nightreg.security import new_reference
from nightreg.settings import Settings

BENCH_SITE_SLUG = "bench"
# Rows of the baseline are told apart from the kiosk's check-ins by their source.
BARE_SOURCE = "api"


def create_bench_app() -> Litestar:
    app = create_app(Settings.from_env())
    ctx: AppContext = app.state.ctx
    site_id: list[int] = []  # looked up once, on the first request

    @post("/bench/insert", media_type=MediaType.TEXT, exclude_from_csrf=True, status_code=201)
    async def bench_insert() -> Response[str]:
        if not site_id:
            async with ctx.db.read() as session:
                found = await session.scalar(select(Site.id).where(Site.slug == BENCH_SITE_SLUG))
            if found is None:
                return Response("no bench site", status_code=500)
            site_id.append(found)
        now = ctx.clock.now()
        async with ctx.db.write() as session:
            session.add(
                Visit(
                    reference=new_reference(),
                    site_id=site_id[0],
                    kind="vessel",
                    source=BARE_SOURCE,
                    arrived_at=now,
                    expected_departure_at=now + timedelta(days=1),
                    persons=2,
                    guest_name="Bench",
                    residence="Hoorn",
                    subject_key="reg:BENCH",
                    private_token_hash=secrets.token_hex(32),
                    created_at=now,
                    updated_at=now,
                )
            )
        return Response("ok", status_code=201)

    # How often the pool opens a new database connection (SQLite: a thread and a file handle;
    # PostgreSQL: a new backend process); a pool too small for the load keeps doing it.
    counters = {"connects": 0, "checkouts": 0}
    pool = ctx.db.engine.sync_engine.pool

    @event.listens_for(pool, "connect")
    def _connected(*_args: object) -> None:
        counters["connects"] += 1

    @event.listens_for(pool, "checkout")
    def _checked_out(*_args: object) -> None:
        counters["checkouts"] += 1

    @get("/bench/stats", media_type=MediaType.JSON)
    async def bench_stats() -> dict[str, int]:
        if isinstance(pool, QueuePool):
            return {**counters, "pool_size": pool.size(), "checked_out": pool.checkedout()}
        return dict(counters)

    app.register(bench_insert)
    app.register(bench_stats)
    return app
