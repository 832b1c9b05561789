"""Forwarding a flag to the hub: the preview, the signal written with the review, the
agreement that must be in force, and the automatic forwarding an agreement allows."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

import jsonschema
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, func, select

from nightreg.db import Database
from nightreg.models import AuditEvent, Flag, Signal
from nightreg.services import audit, audit_checkpoints
from nightreg.services import flags as flag_queue
from nightreg.services.flags import ReviewInvalid
from nightreg.services.scan import run_scan
from nightreg.services.signals import SIGNAL_SCHEMA
from nightreg.settings import Settings
from tests.factories import (
    KEY,
    NOW,
    a_plate,
    a_site_id,
    add_visit,
    arrive,
    end_agreements,
    flags_of,
    load,
    make_flag,
    new_site,
    on_the_list,
    staff,
)
from tests.pages import csrf_from, signed_in

Client = AsyncTestClient[Litestar]
MakeAgreement = Callable[..., Awaitable[int]]
REFUSED = re.compile(
    r"No sharing agreement covers the rule|was ended on .*nothing can be forwarded"
)


async def signals_of(db: Database, flag_id: int) -> list[Signal]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(Signal).where(Signal.flag_id == flag_id).order_by(Signal.id)
            )
        )


async def forward_by_form(client: Client, flag_id: int, reason: str = "") -> tuple[int, str]:
    preview = await client.get(f"/admin/flags/{flag_id}/forward")
    answer = await client.post(
        f"/admin/flags/{flag_id}/review",
        data={"_csrf_token": csrf_from(preview.text), "action": "forward", "reason": reason},
        follow_redirects=False,
    )
    return answer.status_code, answer.text


# --- the preview and the forward ---------------------------------------------------------


async def test_the_preview_shows_exactly_the_agreed_fields_and_what_is_never_sent(
    client: Client, db: Database, make_agreement: MakeAgreement
):
    await make_agreement(
        fields=["score", "arrived_at", "vessel_name"], reference="RIEC-TEST-7", name="Proef"
    )
    site = await new_site(db)
    boat = await add_visit(db, site, vessel_name="Zwarte Parel", guest_name="Piet Geheim")
    flag = await make_flag(db, site, visits=[boat])
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/flags/{flag}/forward")

    assert page.status_code == 200
    assert "RIEC-TEST-7" in page.text
    assert "Zwarte Parel" in page.text
    assert "Piet Geheim" not in page.text  # the guest name is not in this agreement
    sent = page.text.split('id="fields-sent"')[1].split("</ul>")[0]
    not_sent = page.text.split('id="fields-not-sent"')[1].split("</ul>")[0]
    assert "Vessel name" in sent
    assert "Score" in sent
    assert "Rule" in sent
    assert "Guest name" in not_sent
    assert "Place of residence" in not_sent
    async with db.read() as session:
        previewed = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "signal_previewed", AuditEvent.object_id == flag
            )
        )
    assert previewed is not None
    assert json.loads(previewed.object_ids) == [boat.id]
    assert await signals_of(db, flag) == []  # a preview sends nothing


async def test_forwarding_writes_one_signal_with_only_the_agreed_fields(
    client: Client, db: Database, make_agreement: MakeAgreement
):
    agreement_id = await make_agreement(fields=["site", "registration", "arrived_at"])
    site = await new_site(db)
    boat = await add_visit(db, site, registration="NL-777-ZZ", guest_name="Piet Geheim")
    flag = await make_flag(db, site, visits=[boat])
    await signed_in(client, db, "security", site)

    status, _text = await forward_by_form(client, flag, reason="Twee keer gezien")

    assert status == 303
    assert (await load(db, flag)).status == "forwarded"
    [signal] = await signals_of(db, flag)
    assert signal.status == "pending"
    assert signal.agreement_id == agreement_id
    assert signal.next_attempt_at == NOW
    body = json.loads(signal.body)
    jsonschema.validate(body, SIGNAL_SCHEMA)
    assert body["id"] == signal.uid
    assert body["review"] == "staff"
    assert body["rule"] == "night_movement"
    assert body["site"]["slug"] == site.slug
    assert body["visits"] == [{"arrived_at": "2026-07-14T16:00:00Z", "registration": "NL-777-ZZ"}]
    assert "score" not in body
    assert "Piet Geheim" not in signal.body
    assert "Twee keer gezien" not in signal.body  # the reviewer's note stays at the site


async def test_under_an_agreement_that_says_so_a_signal_carries_a_checkpoint_that_catches_a_cut(
    client: Client, db: Database, make_agreement: MakeAgreement, settings: Settings,
    tmp_path: Path,
):  # fmt: skip
    """Issue 17, finding 4: a checkpoint sent to the hub with a signal is out of the database
    owner's reach; saved from the hub, it shows a trail cut off after it."""
    await make_agreement(fields=["arrived_at"], share_audit_checkpoints=True)
    site = await new_site(db)
    flag = await make_flag(db, site, visits=[await add_visit(db, site)])
    await signed_in(client, db, "security", site)

    status, _text = await forward_by_form(client, flag)

    assert status == 303
    [signal] = await signals_of(db, flag)
    body = json.loads(signal.body)
    jsonschema.validate(body, SIGNAL_SCHEMA)
    checkpoint = body["audit_checkpoint"]
    async with db.read() as session:
        queued = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "signal_queued", AuditEvent.object_id == signal.id
            )
        )
        newest = await session.scalar(select(func.max(AuditEvent.id)))
    assert queued is not None
    assert checkpoint["head_id"] < queued.id  # the trail as it was when the flag went
    assert json.loads(queued.details)["checkpoint"]["head_id"] == checkpoint["head_id"]

    kept_at_the_hub = tmp_path / "from-the-hub.jsonl"
    kept_at_the_hub.write_text(json.dumps(checkpoint) + "\n", encoding="utf-8")
    result = await audit_checkpoints.verify(db, settings, checkpoint_file=kept_at_the_hub)
    assert result.intact, result.reason
    assert "matches" in (result.checkpoint or "")

    async with db.write() as session:  # whoever owns the database cuts off the newest events
        await session.execute(delete(AuditEvent).where(AuditEvent.id >= checkpoint["head_id"]))
    assert newest is not None
    assert (await audit.verify_chain(db)).intact  # the chain alone cannot tell
    result = await audit_checkpoints.verify(db, settings, checkpoint_file=kept_at_the_hub)
    assert not result.intact
    assert "truncated" in result.reason


async def test_without_the_agreement_saying_so_a_signal_carries_no_checkpoint(
    client: Client, db: Database, make_agreement: MakeAgreement
):
    await make_agreement(fields=["arrived_at"])
    site = await new_site(db)
    flag = await make_flag(db, site, visits=[await add_visit(db, site)])
    await signed_in(client, db, "security", site)

    assert (await forward_by_form(client, flag))[0] == 303
    [signal] = await signals_of(db, flag)
    assert "audit_checkpoint" not in json.loads(signal.body)


async def test_the_flag_page_shows_what_was_sent_to_the_hub(
    client: Client, db: Database, agreement: int
):
    site = await new_site(db)
    flag = await make_flag(db, site)
    await signed_in(client, db, "harbour_master", site)
    await forward_by_form(client, flag)
    [signal] = await signals_of(db, flag)

    page = await client.get(f"/admin/flags/{flag}")

    assert "Sent to the hub" in page.text
    assert signal.uid in page.text
    assert "Waiting to be delivered" in page.text


async def test_forwarding_twice_sends_one_signal(client: Client, db: Database, agreement: int):
    site = await new_site(db)
    flag = await make_flag(db, site)
    await signed_in(client, db, "harbour_master", site)

    first, _ = await forward_by_form(client, flag)
    second, text = await forward_by_form(client, flag)

    assert (first, second) == (303, 422)
    assert "already been forwarded" in text
    assert len(await signals_of(db, flag)) == 1


async def test_evidence_at_other_sites_is_counted_and_never_sent(db: Database, agreement: int):
    mine, theirs = await new_site(db), await new_site(db)
    here = await add_visit(db, mine, guest_name="Hier Gezien")
    there = await add_visit(db, theirs, guest_name="Elders Gezien")
    flag = await make_flag(db, mine, visits=[here, there])

    await flag_queue.review(db, staff("harbour_master", mine), flag, "forward", now=NOW)

    [signal] = await signals_of(db, flag)
    body = json.loads(signal.body)
    assert body["visit_count"] == 1
    assert body["visits_elsewhere"] == 1
    assert [v["guest_name"] for v in body["visits"]] == ["Hier Gezien"]
    assert "Elders Gezien" not in signal.body


# --- no agreement, no forward ------------------------------------------------------------


async def test_without_an_agreement_forwarding_is_refused_and_says_so(client: Client, db: Database):
    await end_agreements(db)
    site = await new_site(db)
    flag = await make_flag(db, site)
    await signed_in(client, db, "harbour_master", site)

    preview = await client.get(f"/admin/flags/{flag}/forward")
    status, text = await forward_by_form(client, flag)

    # Other tests' agreements, all ended, share this database: the refusal names the newest
    # of them; on a fresh installation it says that none covers the rule (a unit test).
    assert REFUSED.search(preview.text)
    assert 'value="forward"' not in preview.text
    assert status == 422
    assert REFUSED.search(text)
    assert (await load(db, flag)).status == "open"
    assert await signals_of(db, flag) == []


async def test_an_agreement_for_other_rules_does_not_cover_this_one(
    db: Database, make_agreement: MakeAgreement
):
    await end_agreements(db)
    await make_agreement(rules=["short_stay_repeat"], reference="RIEC-OTHER")
    site = await new_site(db)
    flag = await make_flag(db, site)

    with pytest.raises(ReviewInvalid) as refused:
        await flag_queue.review(db, staff("security", site), flag, "forward", now=NOW)

    assert "RIEC-OTHER" not in refused.value.errors["action"].params.values()
    assert await signals_of(db, flag) == []


async def test_an_expired_agreement_blocks_forwarding_and_is_named(
    client: Client, db: Database, make_agreement: MakeAgreement
):
    await end_agreements(db)
    await make_agreement(
        name="Convenant 2025", reference="RIEC-2025", valid_until=date(2026, 6, 30)
    )
    site = await new_site(db)
    flag = await make_flag(db, site)
    await signed_in(client, db, "harbour_master", site)

    status, text = await forward_by_form(client, flag)

    assert status == 422
    assert "Convenant 2025" in text
    assert "RIEC-2025" in text
    assert "2026-06-30" in text
    assert "expired" in text
    assert await signals_of(db, flag) == []


async def test_an_agreement_that_starts_later_or_was_ended_blocks_forwarding(
    db: Database, make_agreement: MakeAgreement
):
    await end_agreements(db)
    await make_agreement(name="Straks", reference="RIEC-LATER", valid_from=date(2026, 8, 1))
    site = await new_site(db)
    flag = await make_flag(db, site)
    actor = staff("harbour_master", site)

    with pytest.raises(ReviewInvalid) as refused:
        await flag_queue.review(db, actor, flag, "forward", now=NOW)

    assert refused.value.errors["action"].params["date"] == "2026-08-01"
    assert "comes into force" in refused.value.errors["action"].message

    # The last day of an agreement still counts (Amsterdam's calendar day, inclusive).
    await end_agreements(db)
    await make_agreement(valid_until=date(2026, 7, 14))
    await flag_queue.review(db, actor, flag, "forward", now=NOW)
    assert len(await signals_of(db, flag)) == 1


# --- automatic forwarding ------------------------------------------------------------------


async def test_a_watchlist_hit_goes_out_at_once_when_the_agreement_says_so(
    db: Database, make_agreement: MakeAgreement
):
    await end_agreements(db)
    await make_agreement(
        rules=["watchlist_hit"], auto_rules=["watchlist_hit"], fields=["plate", "arrived_at"]
    )
    site_id, plate = await a_site_id(db), a_plate()
    await on_the_list(db, "plate", plate)

    result = await arrive(db, site_id, plate=plate)

    [flag] = await flags_of(db, result.visit.id)
    assert flag.status == "forwarded"
    assert flag.reviewed_by is not None
    assert flag.reviewed_by.startswith("automatic")
    [signal] = await signals_of(db, flag.id)
    body = json.loads(signal.body)
    assert body["review"] == "automatic"
    assert body["visits"] == [{"plate": result.visit.plate, "arrived_at": "2026-07-14T18:45:00Z"}]
    jsonschema.validate(body, SIGNAL_SCHEMA)


async def test_a_watchlist_hit_waits_for_review_when_the_agreement_wants_one(
    db: Database, make_agreement: MakeAgreement
):
    await end_agreements(db)
    await make_agreement(rules=["watchlist_hit"])
    site_id, plate = await a_site_id(db), a_plate()
    await on_the_list(db, "plate", plate)

    result = await arrive(db, site_id, plate=plate)

    [flag] = await flags_of(db, result.visit.id)
    assert flag.status == "open"
    assert await signals_of(db, flag.id) == []


async def test_the_scan_forwards_what_an_agreement_forwards_automatically(
    db: Database, make_agreement: MakeAgreement
):
    await end_agreements(db)
    await make_agreement(rules=["night_movement"], auto_rules=["night_movement"])
    site = await new_site(db)
    # The rules follow this guest by name and place (add_visit's subject key): one of a kind.
    guest = f"Nachtvaarder {secrets.token_hex(4)}"
    for day in (1, 3, 5):
        # 02:00 in Amsterdam: in and out at night, three times in a week.
        at = NOW - timedelta(days=day) + timedelta(hours=5)
        await add_visit(db, site, guest_name=guest, arrived=at, departed=at + timedelta(hours=1))

    summary = await run_scan(db, now=NOW, full=True, watchlist_key=KEY)

    async with db.read() as session:
        raised = list(
            await session.scalars(
                select(Flag).where(Flag.site_id == site.id, Flag.rule == "night_movement")
            )
        )
    assert raised
    assert all(f.status == "forwarded" for f in raised)
    assert summary.forwarded >= len(raised)
    for flag in raised:
        [signal] = await signals_of(db, flag.id)
        assert json.loads(signal.body)["review"] == "automatic"


async def test_an_analyst_reads_neither_the_reviewer_nor_the_note_of_a_forwarded_flag(
    client: Client, db: Database, make_agreement: MakeAgreement
):
    """Issue 17, finding 7: no agreement shares who at a site reviewed a flag or what they
    wrote; the analyst's flag page showed both."""
    await make_agreement(fields=["site", "registration", "arrived_at"])
    site = await new_site(db)
    flag = await make_flag(db, site, visits=[await add_visit(db, site)])
    await signed_in(client, db, "security", site)
    reviewer = (await client.get("/admin/flags/" + str(flag))).text
    email = re.search(r"security-[0-9a-f]+@test\.example", reviewer)
    assert email is not None
    status, _text = await forward_by_form(client, flag, reason="Kent de schipper, J. Jansen")
    assert status == 303
    flag_row = await load(db, flag)
    assert flag_row.reviewed_by
    assert email.group(0) in flag_row.reviewed_by

    await signed_in(client, db, "analyst", site)
    page = await client.get(f"/admin/flags/{flag}")

    assert page.status_code == 200
    assert email.group(0) not in page.text
    assert "J. Jansen" not in page.text
    assert "staff (not shared)" in page.text


async def test_the_preview_shows_the_visits_times_on_the_site_s_clock_and_the_json_in_utc(
    client: Client, db: Database, make_agreement: MakeAgreement
):
    await make_agreement(fields=["arrived_at", "vessel_name"])
    site = await new_site(db)
    boat = await add_visit(db, site, arrived=NOW - timedelta(hours=3))  # 18:00 in Amsterdam
    flag = await make_flag(db, site, visits=[boat])
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/flags/{flag}/forward")

    table = page.text.split('id="h-visits"')[1].split("</table>")[0]
    assert "2026-07-14 18:00" in table
    assert "16:00" not in table
    assert "Europe/Amsterdam" in table
    assert "2026-07-14T16:00:00Z" in page.text.split('id="forward-json"')[1]
