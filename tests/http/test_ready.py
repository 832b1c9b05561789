"""`/ready`: the database answers and is at this release's migrations (issue 18, item 3);
`/health` stays the cheap ping."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from nightreg import migrate
from nightreg.app import create_app
from nightreg.db import Database

Client = AsyncTestClient[Litestar]


async def test_ready_answers_200_with_the_revision_when_the_database_is_at_head(client: Client):
    answer = await client.get("/ready")

    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "migrations": ",".join(migrate.code_heads())}


async def test_ready_answers_503_and_why_when_the_database_does_not_answer(
    make_settings: Any, database_url: str
):
    if database_url.startswith("sqlite"):
        away = "sqlite+aiosqlite:////nonexistent/dir/nightreg.db"
    else:
        away = database_url.rsplit("/", 1)[0] + "/no_such_database_for_ready"
    async with AsyncTestClient(app=create_app(make_settings(database_url=away))) as client:
        answer = await client.get("/ready")

    assert answer.status_code == 503
    assert answer.json()["status"] == "not ready"
    assert answer.json()["reason"].startswith("the database is unreachable")
    assert answer.headers["retry-after"] == "10"


async def test_ready_answers_503_when_the_schema_is_not_this_releases(
    make_settings: Any, own_database_url: str
):
    head = ",".join(migrate.code_heads())
    older = "0001"
    db = Database(own_database_url)
    app = create_app(make_settings(database_url=own_database_url))

    async def at(client: Client, revision: str | None) -> tuple[int, str]:
        async with db.write() as session:
            await session.execute(text("DELETE FROM alembic_version"))
            if revision is not None:
                await session.execute(
                    text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": revision}
                )
        answer = await client.get("/ready")
        return answer.status_code, answer.json()["reason"]

    try:
        async with AsyncTestClient(app=app) as client:
            behind = await at(client, older)
            ahead = await at(client, "9999_from_a_newer_release")
            empty = await at(client, None)
    finally:
        await db.dispose()

    assert behind == (503, f"the database is at {older}, behind this release's {head}: "
                           "run `nightreg db upgrade`")  # fmt: skip
    assert ahead[0] == 503
    assert "newer than this release's" in ahead[1]
    assert empty == (
        503,
        f"the database has no migrations applied; run `nightreg db upgrade` ({head})",
    )


async def test_ready_needs_no_sign_in_and_health_stays_a_ping(client: Client):
    ready = await client.get("/ready", headers={"accept": "text/html"})
    health = await client.get("/health")

    assert ready.headers["content-type"].startswith("application/json")
    assert health.json() == {"status": "ok"}
