"""The audit trail: hash-chained, verifiable, readable and exportable by the privacy officer."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from nightreg.cli import main
from nightreg.db import Database
from nightreg.models import AuditEvent
from nightreg.services import audit
from nightreg.services.access import CLI, AccessDenied, Actor
from tests.factories import SUMMER_EVENING, make_staff
from tests.pages import sign_in

Client = AsyncTestClient[Litestar]


async def test_each_event_carries_the_hash_of_the_one_before(db: Database):
    first = await _append(db, "one")
    second = await _append(db, "two")
    assert second.prev_hash == first.hash
    keyring = audit.current_keyring()
    assert second.key_id == keyring.current_id
    assert second.hash == audit.keyed_hash(
        keyring.current,
        keyring.current_id,
        first.hash,
        {
            "at": second.at,
            "actor": second.actor,
            "address": second.address,
            "action": second.action,
            "site_id": second.site_id,
            "object_type": second.object_type,
            "object_id": second.object_id,
            "object_ids": second.object_ids,
            "details": second.details,
            "detail_hash": second.detail_hash,
        },
    )


async def _append(db: Database, marker: str) -> AuditEvent:
    actor = Actor(kind="user", id=1, name="jan@haven.example", role="harbour_master")
    async with db.write() as session:
        return await audit.record(
            session,
            actor,
            "visit_viewed",
            at=SUMMER_EVENING,
            object_type="visit",
            object_id=7,
            details={"marker": marker},
        )


async def test_an_untouched_trail_verifies_as_intact(db: Database):
    await _append(db, secrets.token_hex(4))
    result = await audit.verify(db)
    assert result.intact, str(result)
    assert str(result).startswith("intact")


async def test_editing_an_event_in_the_database_breaks_the_chain_at_that_event(db: Database):
    event = await _append(db, "to be edited")
    await _append(db, "after it")
    async with db.write() as session:
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == event.id).values(actor="someone else")
        )
    try:
        result = await audit.verify(db)
        assert not result.intact
        assert result.broken_id == event.id
        assert "changed" in result.reason
    finally:
        async with db.write() as session:  # repair, for the tests that verify after this one
            await session.execute(
                update(AuditEvent).where(AuditEvent.id == event.id).values(actor=event.actor)
            )
    assert (await audit.verify(db)).intact


async def test_deleting_an_event_breaks_the_link_of_the_next_one(db: Database):
    event = await _append(db, "to be deleted")
    after = await _append(db, "after the deleted one")
    async with db.write() as session:
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == after.id).values(prev_hash="f" * 64)
        )
    try:
        result = await audit.verify(db)
        assert result.broken_id == after.id
        assert "link" in result.reason
    finally:
        async with db.write() as session:
            await session.execute(
                update(AuditEvent).where(AuditEvent.id == after.id).values(prev_hash=event.hash)
            )


async def test_the_cli_reports_an_intact_trail_and_exits_zero(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    db: Database,
):
    await _append(db, "cli")
    monkeypatch.setenv("NIGHTREG_DATABASE_URL", database_url)
    monkeypatch.setenv("NIGHTREG_DATA_DIR", str(tmp_path))
    # The chain is keyed: the CLI needs the key the events were written with.
    monkeypatch.setenv("NIGHTREG_SECRET_KEY", "test-secret-" + "k" * 40)
    # main() runs its own event loop; run it in a thread so it does not meet the test's loop.
    import asyncio

    code = await asyncio.to_thread(main, ["audit", "verify"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Audit trail intact:")


async def test_an_auditor_sees_the_trail_filtered_by_action(client: Client, db: Database):
    auditor = await make_staff(db, "auditor")
    await sign_in(client, auditor.email)
    page = await client.get("/admin/audit", params={"action": "sign_in", "actor": auditor.email})
    assert page.status_code == 200
    assert auditor.email in page.text
    assert "sign_in_failed" not in page.text.split('id="audit-rows"')[1]


async def test_looking_at_the_trail_is_itself_audited(client: Client, db: Database):
    auditor = await make_staff(db, "auditor")
    await sign_in(client, auditor.email)
    await client.get("/admin/audit", params={"action": "site_created"})
    async with db.read() as session:
        event = await session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "audit_viewed", AuditEvent.actor.contains(auditor.email))
            .order_by(AuditEvent.id.desc())
        )
    assert event is not None
    assert json.loads(event.details)["action"] == "site_created"


async def test_the_trail_exports_as_csv_with_formulas_defused(client: Client, db: Database):
    auditor = await make_staff(db, "auditor")
    await sign_in(client, auditor.email)
    # A sign-in attempt with a formula as the e-mail address ends up in the trail.
    page = await client.get("/admin/sign-in")
    import re

    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    await client.post(
        "/admin/sign-in", data={"_csrf_token": csrf, "email": "=HYPERLINK(1)", "password": "x"}
    )
    answer = await client.get("/admin/audit/export.csv", params={"action": "sign_in_failed"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    text = answer.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("id,at,actor")
    assert "=hyperlink(1)" in text.lower()
    assert ",=" not in text  # every cell that starts with = is escaped with a quote


async def test_a_harbour_master_cannot_read_the_audit_trail(client: Client, db: Database):
    staff = await make_staff(db, "harbour_master")
    await sign_in(client, staff.email)
    assert (await client.get("/admin/audit")).status_code == 403
    with pytest.raises(AccessDenied):
        await audit.search_events(
            db,
            Actor(kind="user", id=staff.user_id, role="harbour_master"),
            audit.EventQuery(),
            now=SUMMER_EVENING,
        )


async def test_the_verify_page_reports_the_chain(client: Client, db: Database):
    auditor = await make_staff(db, "auditor")
    await sign_in(client, auditor.email)
    page = await client.get("/admin/audit/verify")
    assert page.status_code == 200
    assert "The chain is intact" in page.text


async def test_an_action_whose_audit_cannot_be_written_does_not_happen(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    """The audit is written in the action's own transaction: if it fails, both roll back."""
    from nightreg.models import User
    from nightreg.services import auth

    staff = await make_staff(db, "security")

    def broken(*_args: object) -> str:
        raise RuntimeError("the audit table is gone")

    monkeypatch.setattr(audit, "keyed_hash", broken)
    with pytest.raises(RuntimeError):
        await auth.issue_reset(db, CLI, staff.user_id, now=SUMMER_EVENING)
    async with db.read() as session:
        stored = await session.scalar(select(User.reset_token_hash).where(User.id == staff.user_id))
    assert stored is None
