"""`nightreg serve --demo` seeds a marina, a business park, their points and an admin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, select

from nightreg.db import Database
from nightreg.models import CheckinPoint, SharingAgreement, Signal, Site, User, Visit
from nightreg.security import verify_password
from nightreg.services.agreements import auto_rules_of, fields_of
from nightreg.services.demo import DEMO_ADMIN, DEMO_AGREEMENT, seed_demo
from nightreg.services.sites import get_site
from nightreg.settings import Settings
from tests.factories import SUMMER_EVENING, end_agreements


@pytest.fixture(autouse=True)
async def _end_the_demo_agreement(db: Database) -> AsyncIterator[None]:
    """The demo's agreement is in force once seeded; other tests share this database."""
    yield
    await end_agreements(db)


async def _remove_demo(db: Database) -> None:
    async with db.write() as session:
        slugs = ("jachthaven-zeemeeuw", "bedrijvenpark-westpoort")
        site_ids = list(await session.scalars(select(Site.id).where(Site.slug.in_(slugs))))
        await session.execute(delete(Visit).where(Visit.site_id.in_(site_ids)))
        await session.execute(delete(CheckinPoint).where(CheckinPoint.site_id.in_(site_ids)))
        await session.execute(delete(Site).where(Site.id.in_(site_ids)))
        await session.execute(delete(User).where(User.email == DEMO_ADMIN))
        demo = select(SharingAgreement.id).where(SharingAgreement.reference == DEMO_AGREEMENT)
        await session.execute(delete(Signal).where(Signal.agreement_id.in_(demo)))
        await session.execute(delete(SharingAgreement).where(SharingAgreement.id.in_(demo)))


async def test_the_demo_has_both_kinds_of_site_with_points_and_a_working_admin_login(db: Database):
    await _remove_demo(db)
    login = await seed_demo(db, SUMMER_EVENING)
    async with db.read() as session:
        kinds = set(await session.scalars(select(Site.kind).where(Site.slug.in_(
            ("jachthaven-zeemeeuw", "bedrijvenpark-westpoort")))))  # fmt: skip
        admin = await session.scalar(select(User).where(User.email == DEMO_ADMIN))
    assert kinds == {"marina", "business_park"}
    assert len(login.points) == 5
    assert admin is not None
    assert admin.role == "admin"
    assert verify_password(admin.password_hash, login.password)


async def test_seeding_the_demo_twice_adds_nothing_but_a_new_password(db: Database):
    await _remove_demo(db)
    first = await seed_demo(db, SUMMER_EVENING)
    second = await seed_demo(db, SUMMER_EVENING)
    assert [p[2] for p in first.points] == [p[2] for p in second.points]
    assert first.password != second.password
    async with db.read() as session:
        admin = await session.scalar(select(User).where(User.email == DEMO_ADMIN))
    assert admin is not None
    assert verify_password(admin.password_hash, second.password)
    assert not verify_password(admin.password_hash, first.password)


async def test_the_demo_has_guests_tonight_one_of_them_overdue(db: Database):
    await _remove_demo(db)
    await seed_demo(db, SUMMER_EVENING)
    async with db.read() as session:
        visits = list(
            await session.scalars(
                select(Visit).join(Site).where(Site.slug == "jachthaven-zeemeeuw")
            )
        )
    present = [v for v in visits if v.departed_at is None]
    assert len(present) == 4
    assert any(v.expected_departure_at < SUMMER_EVENING for v in present)


async def test_the_demo_queue_has_a_flag_to_review(db: Database):
    from sqlalchemy import select

    from nightreg.models import Flag, Site

    await seed_demo(db, SUMMER_EVENING)

    async with db.read() as session:
        rules = set(
            await session.scalars(
                select(Flag.rule)
                .join(Site, Site.id == Flag.site_id)
                .where(Site.slug == "jachthaven-zeemeeuw")
            )
        )
    assert {"night_movement", "fast_craft_night"} <= rules


async def test_the_demo_has_an_agreement_that_shares_no_names_and_forwards_hits_at_once(
    db: Database,
):
    await _remove_demo(db)
    await seed_demo(db, SUMMER_EVENING)
    async with db.read() as session:
        agreement = await session.scalar(
            select(SharingAgreement).where(SharingAgreement.reference == DEMO_AGREEMENT)
        )
    assert agreement is not None
    assert agreement.ended_at is None
    assert "guest_name" not in fields_of(agreement)
    assert "residence" not in fields_of(agreement)
    assert auto_rules_of(agreement) == ("watchlist_hit",)


async def test_the_demos_retention_preview_shows_last_summers_guests_due(
    db: Database, settings: Settings
):
    from nightreg.services import retention

    await _remove_demo(db)
    await seed_demo(db, SUMMER_EVENING)
    marina = await get_site(db, "jachthaven-zeemeeuw")

    shown = await retention.preview(db, settings, at=SUMMER_EVENING)

    visits = next(c for c in shown.categories if c.category == "visits")
    assert visits.by_site[marina.id] == 3
