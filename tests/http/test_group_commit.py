"""Check-ins that arrive together share a transaction, and each still gets its own answer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from nightreg.db import Database
from nightreg.models import Visit
from nightreg.services import sites
from nightreg.services.checkin import check_in
from nightreg.services.writer import VisitWriter
from nightreg.validation import CheckinData, subject_key
from tests.factories import SUMMER_EVENING, make_point


def boat(name: str) -> CheckinData:
    return CheckinData(
        kind="vessel", arrived_at=SUMMER_EVENING,
        expected_departure_at=SUMMER_EVENING + timedelta(days=1),
        persons=2, guest_name="Jan", residence="Hoorn", country=None, phone=None, email=None,
        id_document_type=None, berth=None, vessel_name=name, registration=name, mmsi=None,
        flag=None, vessel_type=None, length_m=None, last_port=None, next_port=None, plate=None,
        plate_country=None, vehicle_type=None, unit=None, company=None, notes=None,
        subject_key=subject_key("vessel", registration=name, mmsi=None, plate=None,
                                guest_name="Jan", residence="Hoorn"),
    )  # fmt: skip


async def test_fifty_simultaneous_check_ins_are_all_written_once(db: Database):
    writer = VisitWriter(db)
    point = await make_point(db)
    info = await sites.point_by_token(db, point.token)
    assert info is not None

    async def one(i: int) -> int:
        result = await check_in(
            db, writer=writer, site_id=info.site_id, point_id=info.id,
            data=boat(f"BOAT{i}"), now=SUMMER_EVENING, secret_key="s" * 40,
            idempotency_key=f"{point.token}-{i}", fingerprint=str(i),
        )  # fmt: skip
        return result.visit.id

    ids = await asyncio.gather(*(one(i) for i in range(50)))
    assert len(set(ids)) == 50
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(Visit).where(Visit.site_id == info.site_id)
        )
        names = set(await session.scalars(select(Visit.vessel_name).where(Visit.id.in_(ids))))
    assert count == 50
    assert names == {f"BOAT{i}" for i in range(50)}
    await writer.close()


async def test_a_double_submit_inside_one_batch_still_makes_one_visit(db: Database):
    writer = VisitWriter(db)
    point = await make_point(db)
    info = await sites.point_by_token(db, point.token)
    assert info is not None

    async def submit(name: str, key: str) -> tuple[int, bool]:
        result = await check_in(
            db, writer=writer, site_id=info.site_id, point_id=info.id,
            data=boat(name), now=SUMMER_EVENING, secret_key="s" * 40,
            idempotency_key=key, fingerprint="same",
        )  # fmt: skip
        return result.visit.id, result.replayed

    answers = await asyncio.gather(
        submit("TWICE", f"{point.token}-x"),
        submit("OTHER", f"{point.token}-y"),
        submit("TWICE", f"{point.token}-x"),
    )
    assert answers[0][0] == answers[2][0]
    assert sorted(replayed for _id, replayed in answers) == [False, False, True]
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(Visit).where(Visit.site_id == info.site_id)
        )
    assert count == 2
    await writer.close()
