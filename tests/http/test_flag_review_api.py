"""Reviewing a flag through the API (issue 18, item 9): dismiss, keep watching, forward under a
named agreement, the forward's preview, the token's sites and role, every refusal's code,
and the same audit as the flag's page."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import AuditEvent, Signal
from tests.factories import (
    add_visit,
    end_agreements,
    event_details,
    last_event_id,
    load,
    make_flag,
    new_site,
    new_token,
)
from tests.pages import bearer, csrf_from, signed_in

Client = AsyncTestClient[Litestar]
MakeAgreement = Callable[..., Awaitable[int]]
REF = "RIEC-API-2026-07"


async def review(client: Client, token: str, flag: int, **body: Any) -> Any:
    return await client.post(f"/api/v1/flags/{flag}/review", json=body, headers=bearer(token))


async def preview(client: Client, token: str, flag: int, agreement: str | None = REF) -> Any:
    params = {"agreement": agreement} if agreement is not None else {}
    return await client.get(
        f"/api/v1/flags/{flag}/forward-preview", params=params, headers=bearer(token)
    )


async def signals_of(db: Database, flag: int) -> list[Signal]:
    async with db.read() as session:
        return list(await session.scalars(select(Signal).where(Signal.flag_id == flag)))


async def events_since(db: Database, since: int) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.id > since).order_by(AuditEvent.id)
            )
        )


# --- the three actions -----------------------------------------------------------------------


async def test_a_security_token_dismisses_a_flag_with_a_reason_audited_under_its_name(
    client: Client, db: Database
):
    site = await new_site(db)
    flag = await make_flag(db, site)
    token = await new_token(db, "security", site.slug)
    since = await last_event_id(db)

    answer = await review(client, token, flag, action="dismiss", reason="Vaste klant, bekend")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "dismissed"
    assert answer.json()["review_reason"] == "Vaste klant, bekend"
    assert (await load(db, flag)).status == "dismissed"
    [event] = [e for e in await events_since(db, since) if e.action == "flag_reviewed"]
    assert event.actor.startswith("token:")
    details = await event_details(db, event)
    assert details["action"] == "dismiss"
    assert details["reason"] == "Vaste klant, bekend"
    assert (details["from"], details["to"]) == ("open", "dismissed")


async def test_a_flag_is_kept_on_watch_without_a_reason(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site)
    token = await new_token(db, "harbour_master", site.slug)

    answer = await review(client, token, flag, action="watch")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "watching"
    assert (await load(db, flag)).status == "watching"


async def test_forwarding_under_the_named_agreement_sends_only_its_fields(
    client: Client, db: Database, make_agreement: MakeAgreement
):
    agreement_id = await make_agreement(reference=REF, fields=["registration", "arrived_at"])
    site = await new_site(db)
    boat = await add_visit(db, site, registration="NL-404-API", guest_name="Piet Geheim")
    flag = await make_flag(db, site, visits=[boat])
    token = await new_token(db, "security", site.slug)

    answer = await review(client, token, flag, action="forward", agreement=REF)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "forwarded"
    [signal] = await signals_of(db, flag)
    assert signal.agreement_id == agreement_id
    body = json.loads(signal.body)
    assert body["agreement"]["reference"] == REF
    assert body["visits"] == [
        {"arrived_at": body["visits"][0]["arrived_at"], "registration": "NL-404-API"}
    ]
    assert "Piet Geheim" not in signal.body


async def test_the_named_agreement_is_used_though_a_newer_one_covers_the_rule_too(
    client: Client, db: Database, make_agreement: MakeAgreement
):
    older = await make_agreement(reference=REF, valid_from=date(2021, 1, 1))
    await make_agreement(reference="RIEC-NEWER", valid_from=date(2024, 1, 1))
    site = await new_site(db)
    flag = await make_flag(db, site)
    token = await new_token(db, "security", site.slug)

    answer = await review(client, token, flag, action="forward", agreement=REF)

    assert answer.status_code == 200, answer.text
    [signal] = await signals_of(db, flag)
    assert signal.agreement_id == older


async def test_the_preview_shows_only_what_the_agreement_shares_and_sends_nothing(
    client: Client, db: Database, make_agreement: MakeAgreement
):
    await make_agreement(reference=REF, fields=["score", "vessel_name"])
    site = await new_site(db)
    boat = await add_visit(db, site, vessel_name="Zwarte Parel", guest_name="Piet Geheim")
    flag = await make_flag(db, site, visits=[boat])
    token = await new_token(db, "security", site.slug)
    since = await last_event_id(db)

    answer = await preview(client, token, flag)

    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["agreement"]["reference"] == REF
    assert shown["fields_sent"] == ["rule", "reason", "score", "vessel_name"]
    assert "guest_name" in shown["fields_not_sent"]
    assert shown["payload"]["visits"] == [{"vessel_name": "Zwarte Parel"}]
    assert shown["payload"]["id"] == "00000000-0000-0000-0000-000000000000"
    assert "Piet Geheim" not in answer.text
    assert await signals_of(db, flag) == []
    assert [e.action for e in await events_since(db, since)] == ["signal_previewed"]


# --- scope and role --------------------------------------------------------------------------


async def test_a_token_of_another_site_gets_the_same_404_as_for_a_flag_that_does_not_exist(
    client: Client, db: Database, agreement: int
):
    site, other = await new_site(db), await new_site(db)
    flag = await make_flag(db, site)
    token = await new_token(db, "security", other.slug)

    answers = [
        await review(client, token, flag, action="dismiss", reason="x"),
        await review(client, token, 2_000_000_000, action="dismiss", reason="x"),
        await review(client, token, 2**40, action="dismiss", reason="x"),
        await preview(client, token, flag, agreement="RIEC-NH-2026-01"),
        await preview(client, token, 2_000_000_000, agreement="RIEC-NH-2026-01"),
    ]

    assert [a.status_code for a in answers] == [404] * 5
    assert {a.json()["code"] for a in answers} == {"not_found"}
    assert len({a.text for a in answers}) == 1
    assert (await load(db, flag)).status == "open"


async def test_a_watchlist_hit_is_not_found_for_a_site_token(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site, rule="watchlist_hit")
    token = await new_token(db, "harbour_master", site.slug)

    answer = await review(client, token, flag, action="dismiss", reason="x")

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


@pytest.mark.parametrize("role", ["auditor"])
async def test_a_role_that_may_not_review_on_the_page_is_refused(
    client: Client, db: Database, role: str
):
    site = await new_site(db)
    flag = await make_flag(db, site)
    token = await new_token(db, role, site.slug)

    answers = [
        await review(client, token, flag, action="watch"),
        await preview(client, token, flag),
    ]

    assert [a.status_code for a in answers] == [403, 403]
    assert {a.json()["code"] for a in answers} == {"forbidden"}
    assert (await load(db, flag)).status == "open"


async def test_no_token_is_401(client: Client, db: Database):
    answer = await client.post("/api/v1/flags/1/review", json={"action": "watch"})
    assert answer.status_code == 401


# --- every refusal's code --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"action": "shred"}, 400, "bad_action", "action"),
        ({}, 400, "bad_action", "action"),
        ({"action": "dismiss"}, 422, "reason_required", "reason"),
        ({"action": "dismiss", "reason": "   "}, 422, "reason_required", "reason"),
        ({"action": "dismiss", "reason": "x" * 1001}, 422, "invalid", "reason"),
        ({"action": "forward"}, 422, "agreement_required", "agreement"),
        ({"action": "forward", "agreement": "RIEC-NONE"}, 422, "agreement_not_found", "agreement"),
        (
            {"action": "forward", "agreement": "RIEC-RULES"},
            422,
            "agreement_not_covering",
            "agreement",
        ),
        (
            {"action": "forward", "agreement": "RIEC-ENDED"},
            422,
            "agreement_not_in_force",
            "agreement",
        ),
        (
            {"action": "forward", "agreement": "RIEC-LATER"},
            422,
            "agreement_not_in_force",
            "agreement",
        ),
        ({"action": "watch", "colour": "red"}, 422, "invalid", "colour"),
    ],
)
async def test_a_review_that_cannot_be_done_answers_its_own_code_and_changes_nothing(
    client: Client,
    db: Database,
    make_agreement: MakeAgreement,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str,
):
    await make_agreement(reference="RIEC-RULES", rules=["arrival_surge"])
    ended = await make_agreement(reference="RIEC-ENDED")
    await end_agreements(db, [ended])
    await make_agreement(reference="RIEC-LATER", valid_from=date(2099, 1, 1))
    site = await new_site(db)
    flag = await make_flag(db, site)
    token = await new_token(db, "security", site.slug)
    since = await last_event_id(db)

    answer = await review(client, token, flag, **body)

    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert answer.json()["field"] == field
    assert answer.json()["message"]
    assert (await load(db, flag)).status == "open"
    assert await signals_of(db, flag) == []
    assert [e.action for e in await events_since(db, since)] == []


async def test_a_rule_that_is_never_forwarded_answers_not_forwardable(
    client: Client, db: Database, agreement: int
):
    site = await new_site(db)
    flag = await make_flag(db, site, rule="overdue")
    token = await new_token(db, "harbour_master", site.slug)

    answers = [
        await review(client, token, flag, action="forward", agreement="RIEC-NH-2026-01"),
        await preview(client, token, flag, agreement="RIEC-NH-2026-01"),
    ]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(422, "not_forwardable")] * 2


async def test_the_preview_refuses_with_the_codes_of_the_forward(
    client: Client, db: Database, make_agreement: MakeAgreement
):
    ended = await make_agreement(reference="RIEC-ENDED")
    await end_agreements(db, [ended])
    site = await new_site(db)
    flag = await make_flag(db, site)
    token = await new_token(db, "security", site.slug)
    since = await last_event_id(db)

    answers = {
        ref: await preview(client, token, flag, agreement=ref)
        for ref in (None, "", "RIEC-NONE", "RIEC-ENDED")
    }

    assert {ref: (a.status_code, a.json()["code"]) for ref, a in answers.items()} == {
        None: (422, "agreement_required"),
        "": (422, "agreement_required"),
        "RIEC-NONE": (422, "agreement_not_found"),
        "RIEC-ENDED": (422, "agreement_not_in_force"),
    }
    assert "was ended on" in answers["RIEC-ENDED"].json()["message"]
    assert [e.action for e in await events_since(db, since)] == []  # nothing was shown


@pytest.mark.parametrize(
    ("status", "body"),
    [
        ("forwarded", {"action": "forward", "agreement": "RIEC-NH-2026-01"}),
        ("dismissed", {"action": "dismiss", "reason": "again"}),
        ("watching", {"action": "watch"}),
    ],
)
async def test_a_review_that_leaves_the_flag_as_it_is_is_409_already_reviewed(
    client: Client, db: Database, agreement: int, status: str, body: dict[str, Any]
):
    site = await new_site(db)
    flag = await make_flag(db, site, status=status)
    token = await new_token(db, "security", site.slug)
    since = await last_event_id(db)

    answer = await review(client, token, flag, **body)

    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "already_reviewed"
    assert await events_since(db, since) == []


async def test_a_retried_forward_sends_one_signal_and_the_preview_then_says_409(
    client: Client, db: Database, agreement: int
):
    site = await new_site(db)
    flag = await make_flag(db, site)
    token = await new_token(db, "security", site.slug)
    body = {"action": "forward", "agreement": "RIEC-NH-2026-01"}

    first, second = (
        await review(client, token, flag, **body),
        await review(client, token, flag, **body),
    )
    after = await preview(client, token, flag, agreement="RIEC-NH-2026-01")

    assert (first.status_code, second.status_code, after.status_code) == (200, 409, 409)
    assert len(await signals_of(db, flag)) == 1


async def test_a_watched_flag_is_forwarded_later_as_on_the_page(
    client: Client, db: Database, agreement: int
):
    site = await new_site(db)
    flag = await make_flag(db, site, status="watching")
    token = await new_token(db, "security", site.slug)

    answer = await review(client, token, flag, action="forward", agreement="RIEC-NH-2026-01")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "forwarded"


# --- the same audit as the page --------------------------------------------------------------

# What differs between two forwards by nature: the signal's id and the flag it belongs to.
_OWN = ("uid", "flag")


async def _trail(db: Database, since: int) -> list[tuple[str, str, dict[str, Any], int]]:
    trail = []
    for event in await events_since(db, since):
        details = {k: v for k, v in (await event_details(db, event)).items() if k not in _OWN}
        trail.append(
            (event.action, event.object_type or "", details, len(json.loads(event.object_ids)))
        )
    return trail


@pytest.mark.parametrize(
    ("form", "body"),
    [
        (
            {"action": "forward", "reason": "Drie keer 's nachts"},
            {"action": "forward", "reason": "Drie keer 's nachts", "agreement": "RIEC-NH-2026-01"},
        ),
        ({"action": "dismiss", "reason": "Bekend"}, {"action": "dismiss", "reason": "Bekend"}),
        ({"action": "watch"}, {"action": "watch"}),
    ],
)
async def test_the_api_writes_the_same_audit_events_as_the_flag_page(
    client: Client, db: Database, agreement: int, form: dict[str, str], body: dict[str, str]
):
    site = await new_site(db)
    by_page, by_api = await make_flag(db, site), await make_flag(db, site)
    forwarding = form["action"] == "forward"

    csrf = await signed_in(client, db, "security", site)
    since = await last_event_id(db)
    if forwarding:  # the page shows what is sent before the button that sends it
        csrf = csrf_from((await client.get(f"/admin/flags/{by_page}/forward")).text)
    done = await client.post(
        f"/admin/flags/{by_page}/review", data={"_csrf_token": csrf, **form}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    page_trail = await _trail(db, since)

    client.cookies.clear()
    token = await new_token(db, "security", site.slug)
    since = await last_event_id(db)
    if forwarding:
        assert (
            await preview(client, token, by_api, agreement="RIEC-NH-2026-01")
        ).status_code == 200
    assert (await review(client, token, by_api, **body)).status_code == 200
    api_trail = await _trail(db, since)

    assert api_trail == page_trail
    expected = (
        ["signal_previewed", "signal_queued", "flag_reviewed"] if forwarding else ["flag_reviewed"]
    )
    assert [t[0] for t in api_trail] == expected
