"""Fixtures: per test a database of its own (a copy of a template migrated once per session,
on SQLite, or on PostgreSQL when NIGHTREG_TEST_DATABASE_URL is set), an app with a frozen clock
and its own site. The helpers the fixtures use live in tests.factories and tests.pages."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase
from litestar import Litestar
from litestar.testing import AsyncTestClient

from nightreg.app import create_app
from nightreg.clock import FrozenClock
from nightreg.context import AppContext
from nightreg.db import Database
from nightreg.settings import Settings
from tests.databases import TemplateDatabase
from tests.databases import template_database as template_database_for
from tests.factories import (
    SUMMER_EVENING,
    TEST_SECRET_KEY,
    PointRef,
    StaffRef,
    add_agreement,
    end_agreements,
    make_point,
    make_staff,
)
from tests.pages import sign_in

# Hypothesis keeps what it learns (the examples it found, constants of the code under test) in
# ./.hypothesis by default; the tests write nothing into the working tree, so it is kept in the
# temp folder instead (and the examples are still replayed on the next run).
HYPOTHESIS_HOME = Path(tempfile.gettempdir()) / "nightreg-hypothesis"
set_hypothesis_home_dir(str(HYPOTHESIS_HOME))
hypothesis_settings.register_profile(
    "nightreg", database=DirectoryBasedExampleDatabase(HYPOTHESIS_HOME / "examples")
)
hypothesis_settings.load_profile("nightreg")


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemplateDatabase]:
    """The newest schema, migrated once per session (per xdist worker), to copy from."""
    template = template_database_for(tmp_path_factory.mktemp("db"))
    yield template
    template.close()


@pytest.fixture
def database_url(template_database: TemplateDatabase) -> Iterator[str]:
    """A database of this test's own, with the newest schema and no rows (see tests.databases)."""
    url = template_database.fresh()
    yield url
    template_database.release(url)


@pytest.fixture
def own_database_url(template_database: TemplateDatabase) -> Iterator[str]:
    """A database nobody else uses, even on PostgreSQL: for tests that change the schema."""
    url = template_database.copy()
    yield url
    template_database.drop(url)


@pytest.fixture(scope="package")
def shared_database_url(template_database: TemplateDatabase) -> Iterator[str]:
    """A database the tests of one package share: a live server's, which is started once for
    many tests (tests/browser) and sees what each of them makes."""
    url = template_database.copy()
    yield url
    template_database.drop(url)


@pytest.fixture(autouse=True)
def audit_keys() -> None:
    """The audit keys of the test settings' secret key, also for a test without an app (the
    app sets the same ones when it starts)."""
    from nightreg.services import audit

    audit.use_keyring(audit.Keyring.of(TEST_SECRET_KEY))


@pytest.fixture(autouse=True)
def cheap_password_hashing(request: pytest.FixtureRequest) -> Iterator[None]:
    """argon2id with the smallest parameters, unless a test is marked `real_argon2`.

    The production parameters cost about 150 ms per hash and per check by design; the suite
    makes and signs in a few thousand accounts. The algorithm and the code paths are the same;
    the test of the upgrade to the production parameters uses them for real.
    """
    from argon2 import PasswordHasher

    from nightreg import security

    if request.node.get_closest_marker("real_argon2"):
        yield
        return
    real = security._hasher
    security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        yield
    finally:
        security._hasher = real


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(SUMMER_EVENING)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        base_url="http://testserver.local",
        checkin_rate_per_address=1000,
        checkin_rate_per_point=1000,
        # Tests sign in as admins, analysts and auditors with a password alone; the tests of
        # two-factor sign-in require it with make_settings(two_factor_roles=...).
        two_factor_roles=(),
        # Refused sign-ins are answered at once here (tests send many on purpose).
        sign_in_refusal_pause_ms=0,
    )


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> Litestar:
    return create_app(settings, clock=clock)


@pytest.fixture
def ctx(app: Litestar) -> AppContext:
    context: AppContext = app.state.ctx
    return context


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test's own connection to the database.

    The test client runs the app on an event loop of its own (in another thread); asyncpg
    connections cannot move between loops, so tests never borrow the app's engine.
    """
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
def make_settings(settings: Settings) -> Iterator[object]:
    def make(**changes: object) -> Settings:
        return replace(settings, **changes)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def marina(db: Database) -> PointRef:
    return await make_point(db, "marina")


@pytest.fixture
async def business_park(db: Database) -> PointRef:
    return await make_point(db, "business_park")


@pytest.fixture
async def kiosk_tablet(db: Database) -> PointRef:
    return await make_point(db, "marina", kiosk_mode=True)


# --- staff -----------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client: AsyncTestClient[Litestar], db: Database) -> object:
    """`await staff_client(role, sites)`: the client signed in as a new account -> (ref, csrf)."""

    async def signed_in(role: str, sites: tuple[str, ...] | list[str] = ()) -> tuple[StaffRef, str]:
        ref = await make_staff(db, role, sites)
        return ref, await sign_in(client, ref.email, ref.password)

    return signed_in


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> Path:
    """The environment of a `nightreg` command on the test database."""
    monkeypatch.setenv("NIGHTREG_DATABASE_URL", database_url)
    monkeypatch.setenv("NIGHTREG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NIGHTREG_BASE_URL", "https://register.example.org")
    return tmp_path


@pytest.fixture
async def make_agreement(db: Database) -> AsyncIterator[object]:
    """Make agreements (keywords of add_agreement); all are ended after the test."""
    made: list[int] = []

    async def make(**kwargs: object) -> int:
        agreement_id = await add_agreement(db, **kwargs)  # type: ignore[arg-type]
        made.append(agreement_id)
        return agreement_id

    yield make
    await end_agreements(db, made)


@pytest.fixture
async def agreement(make_agreement: object) -> int:
    """An agreement in force covering every forwardable rule with every field."""
    return await make_agreement()  # type: ignore[operator]
