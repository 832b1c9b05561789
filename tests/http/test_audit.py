"""The audit trail: hash-chained, verifiable, readable and exportable by the privacy officer."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, func, insert, select, update

from nightreg.cli import main
from nightreg.db import Database
from nightreg.models import AuditAnchor, AuditDetail, AuditEvent
from nightreg.services import audit, audit_checkpoints
from nightreg.services.access import CLI, AccessDenied, Actor
from tests.factories import SUMMER_EVENING, TEST_SECRET_KEY, make_staff
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
    monkeypatch.setenv("NIGHTREG_SECRET_KEY", TEST_SECRET_KEY)
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


# --- issue 17, finding 4: truncation and re-hashing ------------------------------------------


async def _chain(db: Database, count: int) -> list[AuditEvent]:
    return [await _append(db, f"event {n}") for n in range(count)]


async def _rechain(db: Database, edited_id: int, hasher) -> None:
    """What an attacker with the database does: edit one event and recompute every hash from
    there on with `hasher(prev_hash, fields) -> (key_id, hash)`."""
    async with db.write() as session:
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == edited_id).values(actor="someone else")
        )
        events = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.id >= edited_id).order_by(AuditEvent.id)
            )
        )
        prev = events[0].prev_hash
        for event in events:
            fields = {
                "at": event.at, "actor": event.actor, "address": event.address,
                "action": event.action, "site_id": event.site_id,
                "object_type": event.object_type, "object_id": event.object_id,
                "object_ids": event.object_ids, "details": event.details,
                "detail_hash": event.detail_hash,
            }  # fmt: skip
            key_id, digest = hasher(prev, fields)
            await session.execute(
                update(AuditEvent)
                .where(AuditEvent.id == event.id)
                .values(prev_hash=prev, hash=digest, key_id=key_id)
            )
            prev = digest


async def test_deleting_the_newest_events_is_caught_by_the_checkpoint(db: Database, settings):
    """The assessment: deleting the 20 newest events still gave "intact"."""
    events = await _chain(db, 25)
    await audit_checkpoints.write(db, settings, now=SUMMER_EVENING)
    async with db.write() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.id > events[4].id))

    assert (await audit.verify_chain(db)).intact  # the chain alone cannot tell
    result = await audit_checkpoints.verify(db, settings)
    assert not result.intact
    assert "truncated" in result.reason


async def test_re_hashing_with_the_old_keyless_formula_is_caught(db: Database, settings):
    """The assessment: an edited event, the chain recomputed with SHA-256, gave "intact"."""
    events = await _chain(db, 5)
    await audit_checkpoints.write(db, settings, now=SUMMER_EVENING)
    await _rechain(
        db, events[2].id, lambda prev, f: (audit.LEGACY_KEY_ID, audit.event_hash(prev, f))
    )
    result = await audit.verify_chain(db)
    assert not result.intact
    assert result.broken_id == events[2].id
    assert "keyless" in result.reason
    # Moving the keyless marker up as well: the chain then verifies, the checkpoint does not.
    async with db.write() as session:
        session.add(
            AuditAnchor(
                id=1, removed_through_id=0, prev_hash=audit.GENESIS, removed_count=0,
                at=SUMMER_EVENING, keyless_through_id=events[-1].id,
            )
        )  # fmt: skip
    assert (await audit.verify_chain(db)).intact
    result = await audit_checkpoints.verify(db, settings)
    assert not result.intact
    assert "keyless" in result.reason


async def test_re_hashing_with_a_key_of_ones_own_is_caught(db: Database, settings):
    events = await _chain(db, 5)
    await audit_checkpoints.write(db, settings, now=SUMMER_EVENING)
    wrong = audit.Keyring.of("an attacker's key, long enough to be accepted")
    current = audit.current_keyring().current_id
    await _rechain(
        db, events[1].id,
        lambda prev, f: (current, audit.keyed_hash(wrong.current, current, prev, f)),
    )  # fmt: skip
    result = await audit_checkpoints.verify(db, settings)
    assert not result.intact
    assert result.broken_id == events[1].id
    assert "changed" in result.reason


async def test_a_checkpoint_of_a_re_hashed_chain_names_another_head(db: Database, settings):
    """Even a re-chaining that the chain check could not see (here: the key itself) is caught
    by the head the checkpoint signed before."""
    events = await _chain(db, 5)
    await audit_checkpoints.write(db, settings, now=SUMMER_EVENING)
    keyring = audit.current_keyring()
    await _rechain(
        db, events[3].id,
        lambda prev, f: (
            keyring.current_id, audit.keyed_hash(keyring.current, keyring.current_id, prev, f)
        ),
    )  # fmt: skip
    assert (await audit.verify_chain(db)).intact
    result = await audit_checkpoints.verify(db, settings)
    assert not result.intact
    assert "re-hashed" in result.reason


async def test_a_forged_checkpoint_is_refused(db: Database, settings, tmp_path: Path):
    await _chain(db, 3)
    checkpoint = await audit_checkpoints.take(db, now=SUMMER_EVENING)
    forged = tmp_path / "forged.jsonl"
    data = checkpoint.as_dict()
    data["count"] = 2
    forged.write_text(json.dumps(data) + "\n")
    result = await audit_checkpoints.verify(db, settings, checkpoint_file=forged)
    assert not result.intact
    assert "signature" in result.reason


async def test_events_written_before_the_chain_was_keyed_keep_verifying(db: Database, settings):
    """0009 keeps the old events' keyless hashes, up to the anchor's keyless_through_id."""
    async with db.write() as session:
        prev = audit.GENESIS
        for n in range(3):
            fields = {
                "at": SUMMER_EVENING, "actor": "cli", "address": "", "action": "site_created",
                "site_id": None, "object_type": "", "object_id": None, "object_ids": "[]",
                "details": json.dumps({"n": n}),
            }  # fmt: skip
            digest = audit.event_hash(prev, fields)
            await session.execute(
                insert(AuditEvent).values(
                    **fields, prev_hash=prev, hash=digest, key_id=audit.LEGACY_KEY_ID
                )
            )
            prev = digest
        last = await session.scalar(select(func.max(AuditEvent.id)))
        session.add(
            AuditAnchor(
                id=1, removed_through_id=0, prev_hash=audit.GENESIS, removed_count=0,
                at=SUMMER_EVENING, keyless_through_id=last,
            )
        )  # fmt: skip
    await _chain(db, 2)
    await audit_checkpoints.write(db, settings, now=SUMMER_EVENING)
    result = await audit_checkpoints.verify(db, settings)
    assert result.intact, str(result)
    assert result.checked == 5


async def test_an_old_key_verifies_the_events_written_under_it(db: Database):
    await _chain(db, 2)
    old = audit.current_keyring()
    audit.use_keyring(audit.Keyring.of("a new audit key " + "n" * 32, [TEST_SECRET_KEY]))
    await _chain(db, 2)
    assert (await audit.verify_chain(db)).intact
    without_old = audit.Keyring.of("a new audit key " + "n" * 32)
    result = await audit.verify_chain(db, without_old)
    assert not result.intact
    assert "unknown" in result.reason
    audit.use_keyring(old)


async def test_erased_details_still_verify_and_are_counted_by_what_erased_them(db: Database):
    actor = Actor(kind="user", id=1, name="jan@haven.example", role="harbour_master")
    async with db.write() as session:
        event = await audit.record(
            session, actor, "visit_corrected", at=SUMMER_EVENING, object_type="visit",
            object_id=41, details={"reason": "typo", "before": {"guest_name": "Jan"},
                                   "after": {"guest_name": "Jan Jansen"}},
        )  # fmt: skip
    assert json.loads(event.details) == {}
    async with db.write() as session:
        await audit.erase_details_of(session, "visit", [41], by="purge X", now=SUMMER_EVENING)
    result = await audit.verify_chain(db)
    assert result.intact, str(result)
    assert result.erased == {"purge X": 1}
    assert "1 by purge X" in str(result)


async def test_an_edited_detail_record_breaks_the_chain_at_its_event(db: Database):
    actor = Actor(kind="user", id=1, name="jan@haven.example", role="harbour_master")
    async with db.write() as session:
        event = await audit.record(
            session, actor, "flag_reviewed", at=SUMMER_EVENING, object_type="flag",
            object_id=5, details={"action": "dismiss", "reason": "known guest"},
        )  # fmt: skip
        await session.execute(
            update(AuditDetail)
            .where(AuditDetail.event_id == event.id)
            .values(body='{"reason":"something else"}')
        )
    result = await audit.verify_chain(db)
    assert result.broken_id == event.id
    assert "detail" in result.reason


async def test_the_cli_writes_a_checkpoint_and_verify_compares_with_a_given_one(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    db: Database,
):
    import asyncio

    events = await _chain(db, 4)
    monkeypatch.setenv("NIGHTREG_DATABASE_URL", database_url)
    monkeypatch.setenv("NIGHTREG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NIGHTREG_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("NIGHTREG_AUDIT_CHECKPOINT_DIR", str(tmp_path / "elsewhere"))
    assert await asyncio.to_thread(main, ["audit", "checkpoint"]) == 0
    line = capsys.readouterr().out.strip()
    assert json.loads(line)["head_id"] == events[-1].id
    [written] = (tmp_path / "elsewhere").glob("checkpoints-*.jsonl")
    copy = tmp_path / "copy.jsonl"
    copy.write_text(line + "\n")
    assert await asyncio.to_thread(main, ["audit", "verify", "--checkpoint", str(copy)]) == 0
    assert "matches" in capsys.readouterr().out
    async with db.write() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.id == events[-1].id))
    assert await asyncio.to_thread(main, ["audit", "verify"]) == 1
    assert "truncated" in capsys.readouterr().out
    assert written.read_text().strip() == line


async def test_every_job_run_that_moved_the_chain_leaves_a_checkpoint(db: Database, settings):
    from nightreg.jobs import job_specs

    overdue = job_specs(settings)["overdue"]
    last = await _append(db, "before the job")
    await overdue.body(db, SUMMER_EVENING, False)
    written = audit_checkpoints.latest_in(settings.checkpoint_dir)
    assert written is not None
    assert written.head_id >= last.id
    await overdue.body(db, SUMMER_EVENING, False)  # the chain did not move: no second line
    [path] = settings.checkpoint_dir.glob("checkpoints-*.jsonl")
    lines = path.read_text().splitlines()
    await _append(db, "after the job")
    await overdue.body(db, SUMMER_EVENING, False)
    assert len(path.read_text().splitlines()) == len(lines) + 1


async def test_several_events_at_once_keep_their_personal_values_apart(db: Database):
    actor = Actor(kind="user", id=1, name="jan@haven.example", role="harbour_master")
    async with db.write() as session:
        await audit.record_many(
            session,
            actor,
            [
                {"action": "flag_reviewed", "at": SUMMER_EVENING, "object_type": "flag",
                 "object_id": n, "details": {"action": "dismiss", "reason": f"reason {n}"}}
                for n in range(3)
            ],
        )  # fmt: skip
    async with db.read() as session:
        events = list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "flag_reviewed")
                .order_by(AuditEvent.id)
            )
        )
        shown = await audit.shown(session, events, with_details=True)
    assert [json.loads(e.details) for e in events] == [{"action": "dismiss"}] * 3
    assert [json.loads(e.details)["reason"] for e in shown] == ["reason 0", "reason 1", "reason 2"]
    assert (await audit.verify(db)).intact
