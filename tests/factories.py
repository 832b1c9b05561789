"""Builders of test data: sites and points, staff, visits, API tokens, flags, signals,
agreements and watchlist entries, written through the services or straight into the tables.

Test modules import what they share from here (and from tests.pages, tests.browser.live),
never from one another.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.models import (
    AuditEvent,
    Flag,
    SharingAgreement,
    Signal,
    Site,
    Visit,
    WatchlistEntry,
    flag_visit,
)
from nightreg.rules import RULES
from nightreg.rules.base import Finding
from nightreg.security import new_reference
from nightreg.services import audit, flagging, signals, sites, tokens, watchlist
from nightreg.services import sites as site_service
from nightreg.services.access import CLI, SYSTEM, Actor
from nightreg.services.agreements import FIELDS
from nightreg.services.checkin import CheckinResult, check_in
from nightreg.validation import normalise_person, search_key, validate_checkin

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

# Random-looking: create_app refuses a guessable key (issue 17, finding 11a).
TEST_SECRET_KEY = "test-secret-pJOIsAjJuEhtV44K22szyCKldMuFGk-MpZs6nXoznAGD_RAw9hox"

# A summer evening in the harbour: 21:00 in Amsterdam.
SUMMER_EVENING = datetime(2026, 7, 14, 19, 0, tzinfo=UTC)


def unique_slug(prefix: str) -> str:
    """A name nobody else uses: the tests against a live server share its database."""
    return f"{prefix}-{secrets.token_hex(4)}"


# --- sites and points ------------------------------------------------------------------------


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


# --- sharing agreements ----------------------------------------------------------------------
# Every test has a database of its own, so an agreement a test makes holds only there; ending
# agreements (`end_agreements`, and the `make_agreement` fixture's teardown) is a leftover of
# the shared database that does no harm.

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
    share_audit_checkpoints: bool = False,
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
        share_audit_checkpoints=share_audit_checkpoints,
        created_at=SUMMER_EVENING,
        created_by="test",
    )
    async with db.write() as session:
        session.add(agreement)
        await session.flush()
        return agreement.id


# --- visits -----------------------------------------------------------------------------------

NOW = SUMMER_EVENING  # 21:00 in Amsterdam, 14 July 2026


async def new_site(db: Database, kind: str = "marina") -> Site:
    point = await make_point(db, kind)
    return await site_service.get_site(db, point.site_slug)


def staff(role: str, *site_list: Site, name: str = "") -> Actor:
    return Actor(
        kind="user",
        id=secrets.randbelow(10**6),
        name=name or f"{role}@haven.test",
        role=role,
        site_ids=frozenset(s.id for s in site_list),
        address="192.0.2.7",
    )


async def add_visit(
    db: Database,
    site: Site,
    *,
    kind: str = "vessel",
    arrived: datetime = NOW - timedelta(hours=3),
    expected: datetime | None = None,
    departed: datetime | None = None,
    source: str = "kiosk",
    **fields: Any,
) -> Visit:
    """A visit written straight into the table (any arrival, any source)."""
    values: dict[str, Any] = {
        "guest_name": "Jan de Vries",
        "residence": "Hoorn",
        "persons": 2,
    }
    if kind == "vessel":
        values.update(vessel_name="Zeemeeuw", registration="NL-123-AB")
    elif kind == "vehicle":
        values.update(plate="12-ABC-3")
    else:
        values.update(unit="B12")
    values.update(fields)
    visit = Visit(
        reference=new_reference(),
        site_id=site.id,
        kind=kind,
        source=source,
        arrived_at=arrived,
        expected_departure_at=expected or arrived + timedelta(days=1),
        departed_at=departed,
        subject_key=normalise_person(values["guest_name"], values["residence"]),
        search_key=search_key(
            values["guest_name"],
            values.get("vessel_name"),
            values.get("registration"),
            values.get("mmsi"),
            values.get("plate"),
        ),
        private_token_hash=secrets.token_hex(32),
        created_at=arrived,
        updated_at=arrived,
        **values,
    )
    async with db.write() as session:
        session.add(visit)
    return visit


async def events(db: Database, action: str, site: Site) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == action, AuditEvent.site_id == site.id)
                .order_by(AuditEvent.id)
            )
        )


async def reload(db: Database, visit_id: int) -> Visit:
    async with db.read() as session:
        visit = await session.get(Visit, visit_id)
    assert visit is not None
    return visit


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=AMSTERDAM).astimezone(UTC)


def guest() -> dict[str, str]:
    """A name no other visit has, so that the test's subject is its own."""
    tag = secrets.token_hex(3)
    return {"guest_name": f"Gast {tag}", "residence": f"Plaats {tag}"}


async def audit_events(db: Database, action: str, since: int = 0) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == action, AuditEvent.id > since)
                .order_by(AuditEvent.id)
            )
        )


async def last_event_id(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc())) or 0)


# --- API tokens -------------------------------------------------------------------------------


async def new_token(
    db: Database,
    role: str,
    *slugs: str,
    expires_at: datetime | None = None,
    now: datetime = SUMMER_EVENING,
) -> str:
    _token, plain = await tokens.create_token(
        db, CLI, name=f"test {role}", role=role, site_slugs=list(slugs),
        expires_at=expires_at, now=now,
    )  # fmt: skip
    return plain


# --- flags and signals ------------------------------------------------------------------------


PARAMS: dict[str, dict[str, str | int]] = {
    "night_movement": {"count": 3, "days": 14},
    "overdue": {"hours": 30},
    "watchlist_hit": {"identifier": "registration"},
    "short_stay_repeat": {"count": 3, "hours": 4, "days": 30},
}


async def make_flag(
    db: Database,
    site: Site,
    *,
    rule: str = "night_movement",
    visits: list[Visit] | None = None,
    score: int = 60,
    status: str = "open",
    raised: timedelta = timedelta(hours=2),
) -> int:
    """A flag as the scan would raise it, through flagging.record."""
    if visits is None:
        visits = [await add_visit(db, site, guest_name=f"Gast {secrets.token_hex(2)}")]
    finding = Finding(
        rule=rule,
        subject=f"reg:T{secrets.token_hex(4).upper()}",
        visit_ids=tuple(v.id for v in visits),
        window_start=NOW - timedelta(days=3),
        window_end=NOW - raised,
        score=score,
        params=PARAMS.get(rule, {}),
    )
    async with db.write() as session:
        recorded = await flagging.record(
            session, finding, site_id=site.id, now=NOW - raised, thresholds=RULES[rule].defaults
        )
        if status != "open":
            flag = await session.get(Flag, recorded.flag_id)
            assert flag is not None
            flag.status = status
    return recorded.flag_id


async def load(db: Database, flag_id: int) -> Flag:
    async with db.read() as session:
        flag = await session.get(Flag, flag_id)
    assert flag is not None
    return flag


async def make_agreement(
    db: Database,
    *,
    fields: tuple[str, ...] = tuple(FIELDS),
    rules: tuple[str, ...] = (),
    valid_from: date = date(2000, 1, 1),
) -> SharingAgreement:
    """An agreement straight into the table.

    By default it covers no rule: `forward` builds bodies under it directly, and the tests
    of forwarding (which share the database) never find it in force, nor name it lapsed.
    """
    agreement = SharingAgreement(
        name="Convenant Noord-Holland",
        recipient="RIEC Drugshub",
        reference=f"RIEC-{secrets.token_hex(3).upper()}",
        valid_from=valid_from,
        rules=list(rules),
        fields=list(fields),
        auto_rules=[],
        keep_days=180,
        created_at=NOW - timedelta(days=200),
        created_by="test",
    )
    async with db.write() as session:
        session.add(agreement)
    return agreement


async def raise_flag(
    session: AsyncSession, finding: Finding, site: Site, at: datetime
) -> flagging.Recorded:
    """The flag as the scan records it, with its audit, but never forwarded automatically:
    an agreement another test left in force must not add signals to these tests' sites."""
    log: list[dict[str, Any]] = []
    recorded = await flagging.record(
        session, finding, site_id=site.id, now=at, thresholds=RULES[finding.rule].defaults,
        audit_log=log,
    )  # fmt: skip
    await audit.record_many(session, SYSTEM, log)
    return recorded


async def forward(
    db: Database,
    site: Site,
    agreement: SharingAgreement,
    *,
    rule: str = "night_movement",
    at: datetime = NOW,
    status: str = "pending",
    delivered_by: str | None = None,
    attempts: int = 0,
    last_error: str | None = None,
    visit: Visit | None = None,
) -> Signal:
    """A flag raised on a visit of `site` and forwarded at `at` under `agreement`.

    The body is built by signals.build_body, as forwarding builds it; the agreement is the
    given one rather than whichever the tests of the day left in force.
    """
    if visit is None:
        visit = await add_visit(db, site, guest_name=f"Gast {secrets.token_hex(2)}")
    finding = Finding(
        rule=rule,
        subject=f"reg:T{secrets.token_hex(4).upper()}",
        visit_ids=(visit.id,),
        window_start=at - timedelta(days=3),
        window_end=at,
        score=70,
        params=PARAMS.get(rule, {}),
    )
    uid = str(uuid.uuid4())
    async with db.write() as session:
        recorded = await raise_flag(session, finding, site, at)
        flag = await session.get(Flag, recorded.flag_id)
        assert flag is not None
        flag.status = "forwarded"
        body = signals.build_body(
            uid=uid, agreement=agreement, flag=flag, site=site, visits=[visit], elsewhere=0,
            forwarded_at=at, review="staff",
        )  # fmt: skip
        signal = Signal(
            uid=uid, flag_id=flag.id, agreement_id=agreement.id, site_id=site.id, rule=rule,
            body=signals.encode(body), status=status, created_at=at, forwarded_by="test",
            attempts=attempts, next_attempt_at=at, last_error=last_error,
            delivered_at=at if status == "delivered" else None, delivered_by=delivered_by,
        )  # fmt: skip
        session.add(signal)
    return signal


# --- the watchlist ----------------------------------------------------------------------------


KEY = "test-watchlist-key-" + "w" * 24


def a_plate() -> str:
    return "WL-" + secrets.token_hex(3).upper()


async def on_the_list(
    db: Database, kind: str, value: str, *, expires_at: datetime | None = None
) -> None:
    ident = watchlist.identifier(kind, value)
    async with db.write() as session:
        session.add(
            WatchlistEntry(
                digest=watchlist.digest(KEY, ident),
                expires_at=expires_at or SUMMER_EVENING + timedelta(days=30),
                list_ref="test",
                imported_at=SUMMER_EVENING,
            )
        )


async def a_site_id(db: Database) -> int:
    point = await make_point(db, "marina")
    info = await sites.point_by_token(db, point.token)
    assert info is not None
    return info.site_id


async def arrive(
    db: Database, site_id: int, kind: str = "vehicle", *, key: str = KEY, **fields: str
) -> CheckinResult:
    form = {
        "guest_name": "Jan de Vries",
        "residence": "Hoorn",
        "persons": "1",
        "arrived_at": "2026-07-14T20:45",
        "expected_departure_at": "2026-07-16T11:00",
        **fields,
    }
    if kind == "vessel":
        form.setdefault("vessel_name", "Zeemeeuw")
    data, errors = validate_checkin(
        form, kind=kind, allowed_kinds=("vessel", "vehicle"), now=SUMMER_EVENING, tz=AMSTERDAM
    )
    assert data is not None, errors
    return await check_in(
        db,
        site_id=site_id,
        point_id=None,
        data=data,
        now=SUMMER_EVENING,
        secret_key="test-secret",
        idempotency_key=secrets.token_hex(16),
        fingerprint=secrets.token_hex(8),
        watchlist_key=key,
    )


async def flags_of(db: Database, visit_id: int) -> list[Flag]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(Flag)
                .join(flag_visit, flag_visit.c.flag_id == Flag.id)
                .where(flag_visit.c.visit_id == visit_id)
            )
        )


async def event_details(db: Database, event: Any) -> dict[str, Any]:
    """An audit event's details as a reader with the right to them sees them: the chained
    part merged with its detail record (where the personal values live)."""
    from nightreg.models import AuditDetail

    details: dict[str, Any] = json.loads(event.details)
    async with db.read() as session:
        record = await session.get(AuditDetail, event.id)
    if record is not None and record.body is not None:
        details.update(json.loads(record.body))
    return details


T = TypeVar("T")


def on_database(database_url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` in a loop of its own, on a Database of its own (asyncpg stays in its loop):
    for tests that also run the CLI, which starts its own loop."""

    async def go() -> T:
        db = Database(database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(go())
