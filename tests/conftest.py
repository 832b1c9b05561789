"""Fixtures: one migrated database per test session (SQLite, or PostgreSQL when
NIGHTREG_TEST_DATABASE_URL is set), and per test an app with a frozen clock and its own site."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from nightreg import migrate
from nightreg.app import create_app
from nightreg.clock import FrozenClock
from nightreg.context import AppContext
from nightreg.db import Database
from nightreg.settings import Settings

# A summer evening in the harbour: 21:00 in Amsterdam.
SUMMER_EVENING = datetime(2026, 7, 14, 19, 0, tzinfo=UTC)


def _reset_postgres(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def reset() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty database, migrated to the newest schema once for the whole run."""
    url = os.environ.get("NIGHTREG_TEST_DATABASE_URL")
    if url:
        if url.startswith("postgresql://"):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        _reset_postgres(url)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    migrate.upgrade(url)
    return url


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
        secret_key="test-secret-" + "k" * 40,
        base_url="http://testserver.local",
        checkin_rate_per_address=1000,
        checkin_rate_per_point=1000,
        # Tests sign in as admins, analysts and auditors with a password alone; the tests of
        # two-factor sign-in require it with make_settings(two_factor_roles=...).
        two_factor_roles=(),
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


def unique_slug(prefix: str) -> str:
    """Tests share one database; each makes its own sites under names nobody else uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture
def make_settings(settings: Settings) -> Iterator[object]:
    def make(**changes: object) -> Settings:
        return replace(settings, **changes)  # type: ignore[arg-type]

    return make


@dataclass(frozen=True)
class PointRef:
    site_slug: str
    site_name: str
    point_name: str
    token: str

    @property
    def url(self) -> str:
        return f"/k/{self.token}"


async def make_point(
    db: Database,
    kind: str = "marina",
    *,
    kiosk_mode: bool = False,
    now: datetime = SUMMER_EVENING,
) -> PointRef:
    from nightreg.services import sites

    slug = unique_slug("marina" if kind == "marina" else "park")
    name = "Jachthaven Testhaven" if kind == "marina" else "Bedrijvenpark Test"
    await sites.create_site(
        db, slug=slug, name=name, kind=kind, now=now, contact="havenmeester@test.example"
    )
    point = await sites.add_point(
        db, site_slug=slug, name="Havenkantoor", kiosk_mode=kiosk_mode, now=now
    )
    return PointRef(site_slug=slug, site_name=name, point_name=point.name, token=point.token)


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

STAFF_PASSWORD = "harbour-lights-at-dusk-42"


@dataclass(frozen=True)
class StaffRef:
    email: str
    password: str
    user_id: int
    role: str
    site_slugs: tuple[str, ...]


async def make_staff(
    db: Database,
    role: str,
    sites: tuple[str, ...] | list[str] = (),
    *,
    password: str = STAFF_PASSWORD,
    now: datetime = SUMMER_EVENING,
) -> StaffRef:
    """A staff account with a unique e-mail, assigned to the given site slugs."""
    from nightreg.services import users

    email = f"{role.replace('_', '-')}-{secrets.token_hex(4)}@test.example"
    user = await users.add_user(
        db, email=email, password=password, role=role, site_slugs=list(sites), now=now
    )
    return StaffRef(email, password, user.id, role, tuple(sites))


def csrf_from(html: str) -> str:
    """The CSRF token a page's form carries."""
    import re

    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


async def sign_in(
    client: AsyncTestClient[Litestar], email: str, password: str = STAFF_PASSWORD
) -> str:
    """Sign in through the sign-in page like a browser; returns the CSRF token for later posts."""
    page = await client.get("/admin/sign-in")
    token = csrf_from(page.text)
    answer = await client.post(
        "/admin/sign-in",
        data={"_csrf_token": token, "email": email, "password": password},
        follow_redirects=False,
    )
    assert answer.status_code == 302, answer.text
    return token


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


# --- sharing agreements ----------------------------------------------------------------------
# Agreements hold for the whole installation, and tests share one database: every agreement a
# test makes is ended when the test ends (ended at the epoch: in force at no time at all), and
# a test that needs "no agreement" ends them all first with `end_agreements(db)`.

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def end_agreements(db: Database, ids: list[int] | None = None) -> None:
    from sqlalchemy import update

    from nightreg.models import SharingAgreement

    stmt = update(SharingAgreement).where(SharingAgreement.ended_at.is_(None))
    if ids is not None:
        stmt = stmt.where(SharingAgreement.id.in_(ids))
    async with db.write() as session:
        await session.execute(stmt.values(ended_at=EPOCH, ended_by="test teardown"))


async def add_agreement(
    db: Database,
    *,
    rules: list[str] | None = None,
    fields: list[str] | None = None,
    auto_rules: list[str] | None = None,
    valid_from: date = date(2020, 1, 1),
    valid_until: date | None = None,
    name: str = "Convenant gegevensdeling Drugshub",
    reference: str = "RIEC-NH-2026-01",
    keep_days: int = 180,
) -> int:
    """An agreement straight into the database (the agreements service validates forms)."""

    from nightreg.models import SharingAgreement
    from nightreg.rules import RULES
    from nightreg.services.agreements import FIELDS

    agreement = SharingAgreement(
        name=name,
        recipient="RIEC Noord-Holland (Drugshub)",
        reference=reference,
        valid_from=valid_from,
        valid_until=valid_until,
        rules=rules if rules is not None else [c for c, r in RULES.items() if r.forwardable],
        fields=fields if fields is not None else list(FIELDS),
        auto_rules=auto_rules or [],
        keep_days=keep_days,
        created_at=SUMMER_EVENING,
        created_by="test",
    )
    async with db.write() as session:
        session.add(agreement)
        await session.flush()
        return agreement.id


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
