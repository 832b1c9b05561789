"""A database that is gone or full: a friendly 503 (page or JSON), never a traceback.

The database is made to fail for real: the app's engine is pointed at a PostgreSQL port where
nothing listens (connection refused), or its own SQLite file is held at its page count (disk
full). bench/outage.py and bench/diskfull.py do the same under load against a real server.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import event, func, select
from sqlalchemy import exc as sa_exc

import nightreg.app
from nightreg import db_faults, migrate
from nightreg.clock import FrozenClock
from nightreg.context import AppContext
from nightreg.db import Database
from nightreg.models import Visit
from nightreg.services import sites
from nightreg.settings import Settings
from nightreg.web import unavailable
from tests.factories import PointRef, make_point, make_staff, new_token
from tests.pages import bearer, open_form, sign_in, yacht

Client = AsyncTestClient[Litestar]
NOWHERE = "postgresql+asyncpg://nightreg@127.0.0.1:1/nowhere"  # nothing listens on port 1
LEAKS = ("Traceback", "sqlalchemy", "OperationalError", "ConnectionRefused", "asyncpg", "SELECT")


@pytest.fixture(autouse=True)
def quiet_report() -> Iterator[None]:
    """Each test starts with the once-a-minute outage log line not yet written."""
    unavailable.report.reset()
    yield
    unavailable.report.reset()


@pytest.fixture
async def client(settings: Settings, clock: FrozenClock) -> AsyncIterator[Client]:
    app = create_app_after_wiring(settings, clock)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


def create_app_after_wiring(settings: Settings, clock: FrozenClock) -> Litestar:
    return nightreg.app.create_app(settings, clock=clock)


def context(client: Client) -> AppContext:
    ctx: AppContext = client.app.state.ctx
    return ctx


def cut_off(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the app's database refuses every connection."""
    dead = Database(NOWHERE)
    db = context(client).db
    for name in ("engine", "reader", "writer", "write_engine"):
        monkeypatch.setattr(db, name, getattr(dead, name))


def assert_friendly(answer: Any, words: str) -> None:
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(unavailable.RETRY_AFTER_SECONDS)
    assert answer.headers["content-type"].startswith("text/html")
    assert words in answer.text
    for leak in LEAKS:
        assert leak not in answer.text


async def test_a_visitor_gets_a_friendly_503_page_when_the_database_is_unreachable(
    client: Client, db: Database, monkeypatch: pytest.MonkeyPatch
):
    point = await make_point(db)
    cut_off(client, monkeypatch)

    answer = await client.get(point.url, headers={"Accept-Language": "en"})

    assert_friendly(answer, "The register is not available right now.")


async def test_a_check_in_sent_while_the_database_is_unreachable_gets_the_503_page(
    client: Client, db: Database, monkeypatch: pytest.MonkeyPatch
):
    point = await make_point(db)
    form = await open_form(client, point)
    cut_off(client, monkeypatch)

    answer = await client.post(point.url, data={**form, **yacht()}, follow_redirects=False)

    assert_friendly(answer, "The register is not available right now.")


async def test_a_signed_in_harbour_master_gets_the_503_page_and_the_app_recovers_by_itself(
    client: Client, db: Database, monkeypatch: pytest.MonkeyPatch
):
    point = await make_point(db)
    staff = await make_staff(db, "harbour_master", [point.site_slug])
    await sign_in(client, staff.email)
    tonight = f"/admin/sites/{point.site_slug}/tonight"
    assert (await client.get(tonight)).status_code == 200

    with monkeypatch.context() as outage:
        cut_off(client, outage)
        answer = await client.get(tonight)
    back = await client.get(tonight)

    assert_friendly(answer, "The register is not available right now.")
    assert back.status_code == 200


async def test_the_api_answers_503_with_the_unavailable_code_in_json(
    client: Client, db: Database, monkeypatch: pytest.MonkeyPatch
):
    point = await make_point(db)
    token = await new_token(db, "harbour_master", point.site_slug)
    cut_off(client, monkeypatch)

    answer = await client.get(f"/api/v1/sites/{point.site_slug}/visits", headers=bearer(token))

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(unavailable.RETRY_AFTER_SECONDS)
    assert answer.json() == {
        "code": "unavailable",
        "message": "the database is not reachable; try again later",
        "field": None,
    }


async def test_an_outage_is_logged_once_with_its_cause_and_no_statement(
    client: Client, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    point = await make_point(db)
    cut_off(client, monkeypatch)

    with caplog.at_level(logging.INFO):
        for _ in range(5):
            assert (await client.get(point.url)).status_code == 503

    records = [r for r in caplog.records if r.name == "nightreg.unavailable"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "database unreachable" in message
    assert "ConnectionRefusedError" in message
    assert "SELECT" not in message
    assert not any(r.exc_info for r in caplog.records)


# --- the SQLite file that cannot grow ------------------------------------------------------


@pytest.fixture
async def small_disk(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[tuple[Client, PointRef, list[int], Path]]:
    """An app on its own SQLite file, whose size can be frozen (PRAGMA max_page_count)."""
    path = tmp_path / "small.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, url)
    own = Database(url)
    point = await make_point(own)
    await own.dispose()
    limit = [1 << 30]  # pages; set to the file's page count to make it "full"
    app = nightreg.app.create_app(replace(settings, database_url=url), clock=clock)
    ctx: AppContext = app.state.ctx

    @event.listens_for(ctx.db.engine.sync_engine.pool, "checkout")
    def _hold_size(dbapi_connection: Any, *_args: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {int(limit[0])}")
        cursor.close()

    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client, point, limit, path


def page_count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


async def test_a_full_disk_answers_that_the_register_cannot_be_written_and_loses_nothing(
    small_disk: tuple[Client, PointRef, list[int], Path], caplog: pytest.LogCaptureFixture
):
    client, point, limit, path = small_disk
    acknowledged: list[str] = []
    refused = None
    limit[0] = page_count(path)
    with caplog.at_level(logging.INFO):
        for n in range(300):
            form = await open_form(client, point)
            answer = await client.post(
                point.url, data={**form, **yacht(registration=f"NL-{n}")}, follow_redirects=False
            )
            if answer.status_code != 303:
                refused = answer
                break
            acknowledged.append(answer.headers["location"])

    assert refused is not None, "the file never filled up"
    assert_friendly(refused, "The register cannot be written right now.")
    [record] = [r for r in caplog.records if r.name == "nightreg.unavailable"]
    assert "database unwritable" in record.getMessage()
    assert "full" in record.getMessage()

    limit[0] = 1 << 30  # space is back
    form = await open_form(client, point)
    again = await client.post(point.url, data={**form, **yacht()}, follow_redirects=False)
    assert again.status_code == 303
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = conn.execute("SELECT count(*) FROM visit").fetchone()[0]
    assert stored == len(acknowledged) + 1


# --- what counts as "the database is unavailable" -------------------------------------------


def wrapped(orig: BaseException, **kw: Any) -> sa_exc.DBAPIError:
    return sa_exc.OperationalError("INSERT INTO visit ...", {}, orig, **kw)  # type: ignore[arg-type]


def sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), db_faults.UNREACHABLE),
        (TimeoutError(), db_faults.UNREACHABLE),
        (sa_exc.TimeoutError("QueuePool limit reached"), db_faults.UNREACHABLE),
        (wrapped(sqlite_error("database or disk is full", 13)), db_faults.UNWRITABLE),
        (wrapped(sqlite_error("attempt to write a readonly database", 8)), db_faults.UNWRITABLE),
        (wrapped(sqlite_error("unable to open database file", 14)), db_faults.UNREACHABLE),
        (wrapped(sqlite_error("database is locked", 5)), db_faults.UNREACHABLE),
        (wrapped(RuntimeError("gone"), connection_invalidated=True), db_faults.UNREACHABLE),
        (OSError(28, "No space left on device"), db_faults.UNWRITABLE),
    ],
)
def test_database_faults_are_told_apart(error: BaseException, kind: str):
    assert db_faults.classify(error) == kind


def test_asyncpg_shutdown_and_disk_full_errors_are_told_apart():
    import asyncpg

    assert db_faults.classify(asyncpg.CannotConnectNowError("starting up")) == "unreachable"
    assert db_faults.classify(asyncpg.AdminShutdownError("shutting down")) == "unreachable"
    assert db_faults.classify(asyncpg.ConnectionDoesNotExistError("closed")) == "unreachable"
    assert db_faults.classify(asyncpg.DiskFullError("could not extend file")) == "unwritable"


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad input"),
        FileNotFoundError(2, "no such template"),
        sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
        wrapped(sqlite3.OperationalError("no such table: visit")),
    ],
)
def test_other_errors_are_not_mistaken_for_an_outage(error: BaseException):
    assert db_faults.classify(error) is None


async def test_a_visit_acknowledged_before_the_outage_is_still_there_after_it(
    client: Client, db: Database, monkeypatch: pytest.MonkeyPatch
):
    point = await make_point(db)
    form = await open_form(client, point)
    first = await client.post(point.url, data={**form, **yacht()}, follow_redirects=False)
    link = first.headers["location"]
    with monkeypatch.context() as outage:
        cut_off(client, outage)
        during = await client.get(link)

    after = await client.get(link)

    assert (first.status_code, during.status_code, after.status_code) == (303, 503, 200)
    assert "Zeemeeuw" in after.text
    site = await sites.point_by_token(db, point.token)
    assert site is not None
    async with db.read() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Visit).where(Visit.site_id == site.site_id)
        )
    assert stored == 1
