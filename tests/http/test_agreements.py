"""Sharing agreements through HTTP and the service: make, list, read as a summary, end; who
may do which; every change in the audit trail; and the `nightreg agreement` commands."""

from __future__ import annotations

import argparse
import json
import re
import secrets
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, func, select

from nightreg.cli import agreements as cli_agreements
from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import AuditEvent, SharingAgreement
from nightreg.services import agreements
from nightreg.services.access import CLI, AccessDenied, Actor, NotFound
from nightreg.services.agreements import AgreementInvalid
from nightreg.settings import Settings
from tests.factories import SUMMER_EVENING, make_staff
from tests.pages import sign_in

Client = AsyncTestClient[Litestar]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
ADMIN = Actor(kind="user", id=900001, name="admin@test.example", role="admin")
AUDITOR = Actor(kind="user", id=900002, name="auditor@test.example", role="auditor")


@pytest.fixture(autouse=True)
async def forget_agreements(db: Database) -> AsyncIterator[None]:
    """Agreements are global: one left in force would let other tests' flags be forwarded.

    The tests run one after another on one database, so whatever was made after this test
    began is this test's own, and goes again at its end.
    """
    async with db.read() as session:
        before = await session.scalar(select(func.max(SharingAgreement.id))) or 0
    yield
    async with db.write() as session:
        await session.execute(delete(SharingAgreement).where(SharingAgreement.id > before))


def unique_name() -> str:
    return f"Signalen aan het Drugshub {secrets.token_hex(3)}"


def form(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": unique_name(),
        "recipient": "RIEC Noord-Holland",
        "reference": f"RIEC-NH-{secrets.token_hex(3)}",
        "valid_from": "2026-07-01",
        "valid_until": "2027-06-30",
        "rules": ["night_movement", "watchlist_hit"],
        "fields": ["score", "site", "vessel_name", "registration"],
        "auto_rules": ["watchlist_hit"],
        "keep_days": "90",
    }
    values.update(changes)
    return values


async def signed_in(client: Client, db: Database, role: str) -> str:
    """Sign the client in (afresh) as a new account of `role`; returns the CSRF token."""
    client.cookies.clear()
    account = await make_staff(db, role)
    return await sign_in(client, account.email, account.password)


async def events(db: Database, action: str, agreement_id: int) -> list[AuditEvent]:
    """The agreement's events of `action`; ids come back once a test's agreements are gone,
    so an event counts only if it names this agreement's (unique) reference too."""
    agreement = await stored(db, agreement_id)
    async with db.read() as session:
        found = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.object_id == agreement_id)
            .order_by(AuditEvent.id)
        )
        return [e for e in found if json.loads(e.details)["reference"] == agreement.reference]


async def stored(db: Database, agreement_id: int) -> SharingAgreement:
    async with db.read() as session:
        found = await session.get(SharingAgreement, agreement_id)
    assert found is not None
    return found


def created_id(location: str) -> int:
    match = re.fullmatch(r"/admin/agreements/(\d+)\?created=1", location)
    assert match, location
    return int(match.group(1))


async def make(db: Database, **changes: Any) -> SharingAgreement:
    return await agreements.create(db, ADMIN, form(**changes), now=SUMMER_EVENING, tz=AMSTERDAM)


# --- the service -----------------------------------------------------------------------------


async def test_making_an_agreement_stores_it_and_audits_the_whole_agreement(db: Database):
    values = form()

    made = await agreements.create(db, ADMIN, values, now=SUMMER_EVENING, tz=AMSTERDAM)

    again = await stored(db, made.id)
    assert again.name == values["name"]
    assert again.valid_from == date(2026, 7, 1)
    assert again.valid_until == date(2027, 6, 30)
    assert again.rules == ["night_movement", "watchlist_hit"]
    assert again.fields == ["rule", "reason", "score", "site", "vessel_name", "registration"]
    assert again.auto_rules == ["watchlist_hit"]
    assert again.keep_days == 90
    assert again.created_at == SUMMER_EVENING
    assert again.created_by == ADMIN.label
    [event] = await events(db, "agreement_created", made.id)
    assert event.object_type == "agreement"
    assert event.actor == ADMIN.label
    details = json.loads(event.details)
    assert details == agreements.as_record(again)
    assert details["reference"] == values["reference"]
    assert details["fields"] == ["rule", "reason", "score", "site", "vessel_name", "registration"]


async def test_an_invalid_agreement_is_neither_stored_nor_audited(db: Database):
    async with db.read() as session:
        count = await session.scalar(select(func.count()).select_from(SharingAgreement))

    with pytest.raises(AgreementInvalid) as caught:
        await make(db, name="", rules=[], auto_rules=[], keep_days="0")

    assert set(caught.value.errors) == {"name", "rules", "keep_days"}
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(SharingAgreement)) == count


async def test_only_an_admin_or_the_command_line_may_make_or_end_an_agreement(db: Database):
    for role in ("auditor", "harbour_master", "security", "analyst"):
        actor = Actor(kind="user", id=1, name=role, role=role)
        with pytest.raises(AccessDenied):
            await agreements.create(db, actor, form(), now=SUMMER_EVENING, tz=AMSTERDAM)
    made = await agreements.create(db, CLI, form(), now=SUMMER_EVENING, tz=AMSTERDAM)
    with pytest.raises(AccessDenied):
        await agreements.end(db, AUDITOR, made.id, "Te vroeg", now=SUMMER_EVENING)

    assert (await stored(db, made.id)).ended_at is None


async def test_an_agreement_whose_last_day_has_passed_on_the_local_clock_is_refused(db: Database):
    # 21:00 on 14 July in Amsterdam: the 14th is still today, the 13th is past
    with pytest.raises(AgreementInvalid) as caught:
        await make(db, valid_from="2026-01-01", valid_until="2026-07-13")
    today = await make(db, valid_from="2026-01-01", valid_until="2026-07-14")

    assert set(caught.value.errors) == {"valid_until"}
    assert today.valid_until == date(2026, 7, 14)


async def test_ending_an_agreement_keeps_it_with_who_when_and_why_and_audits_it(db: Database):
    made = await make(db)
    later = SUMMER_EVENING + timedelta(days=3)

    ended = await agreements.end(
        db, ADMIN, made.id, "  Vervangen door\r\nRIEC-NH-2027. ", now=later
    )

    again = await stored(db, made.id)
    assert again.ended_at == later
    assert again.ended_by == ADMIN.label
    assert again.end_reason == "Vervangen door\nRIEC-NH-2027."
    assert ended.end_reason == again.end_reason
    [event] = await events(db, "agreement_ended", made.id)
    details = json.loads(event.details)
    assert details == agreements.as_record(again)
    assert details["end_reason"] == "Vervangen door\nRIEC-NH-2027."
    assert (await agreements.get(db, AUDITOR, made.id)).ended_at == later


async def test_ending_needs_a_reason_and_happens_once(db: Database):
    made = await make(db)

    with pytest.raises(AgreementInvalid) as no_reason:
        await agreements.end(db, ADMIN, made.id, "   ", now=SUMMER_EVENING)
    await agreements.end(db, ADMIN, made.id, "Afgelopen", now=SUMMER_EVENING)
    with pytest.raises(AgreementInvalid) as twice:
        await agreements.end(db, ADMIN, made.id, "Nogmaals", now=SUMMER_EVENING)

    assert set(no_reason.value.errors) == {"reason"}
    assert set(twice.value.errors) == {"agreement"}
    assert (await stored(db, made.id)).end_reason == "Afgelopen"
    assert len(await events(db, "agreement_ended", made.id)) == 1


async def test_ending_or_reading_an_agreement_that_does_not_exist_is_not_found(db: Database):
    with pytest.raises(NotFound):
        await agreements.end(db, ADMIN, 987654321, "Weg", now=SUMMER_EVENING)
    with pytest.raises(NotFound):
        await agreements.get(db, AUDITOR, 987654321)


async def test_the_list_gives_each_agreement_its_state_those_in_force_first(db: Database):
    expired_one = await make(db, valid_from="2026-01-01", valid_until="2026-07-14")
    coming = await make(db, valid_from="2026-08-01")
    in_force = await make(db)
    ended = await make(db)
    await agreements.end(db, ADMIN, ended.id, "Ingetrokken", now=SUMMER_EVENING)
    next_day = SUMMER_EVENING + timedelta(days=1)  # the expired one's last day has passed

    rows = await agreements.list_agreements(db, AUDITOR, now=next_day, tz=AMSTERDAM)

    mine = {r.agreement.id: r.state for r in rows}
    assert mine[in_force.id] == agreements.IN_FORCE
    assert mine[coming.id] == agreements.NOT_YET
    assert mine[expired_one.id] == agreements.EXPIRED
    assert mine[ended.id] == agreements.ENDED
    order = [r.agreement.id for r in rows if r.agreement.id in mine]
    positions = [order.index(i) for i in (in_force.id, coming.id, expired_one.id, ended.id)]
    assert positions == sorted(positions)
    states = [agreements.STATES.index(r.state) for r in rows]
    assert states == sorted(states)


async def test_roles_without_agreements_view_cannot_list_or_read_agreements(db: Database):
    made = await make(db)
    for role in ("harbour_master", "security", "analyst"):
        actor = Actor(kind="user", id=1, name=role, role=role)
        with pytest.raises(AccessDenied):
            await agreements.list_agreements(db, actor, now=SUMMER_EVENING, tz=AMSTERDAM)
        with pytest.raises(AccessDenied):
            await agreements.get(db, actor, made.id)


async def test_an_agreement_made_here_covers_its_rules_for_forwarding(db: Database):
    made = await make(db, valid_from="2026-07-14", rules=["identity_change"], auto_rules=[])
    async with db.read() as session:
        coverage = await agreements.covering(session, "identity_change", SUMMER_EVENING, AMSTERDAM)

    assert coverage.agreement is not None
    assert coverage.agreement.id == made.id


# --- the pages -------------------------------------------------------------------------------


async def test_an_admin_makes_an_agreement_on_the_form_and_lands_on_its_summary(
    client: Client, db: Database
):
    csrf = await signed_in(client, db, "admin")
    page = await client.get("/admin/agreements/new")
    values = form()

    answer = await client.post(
        "/admin/agreements/new", data={"_csrf_token": csrf, **values}, follow_redirects=False
    )

    assert page.status_code == 200
    assert 'name="_csrf_token"' in page.text
    assert 'value="2026-07-14"' in page.text  # the first day defaults to today
    assert "Night movements" in page.text
    assert "Overdue" not in page.text  # never forwardable, never offered
    assert "Guest name" in page.text
    assert answer.status_code == 303, answer.text
    agreement_id = created_id(answer.headers["location"])
    summary = await client.get(answer.headers["location"])
    assert summary.status_code == 200
    text = summary.text
    assert values["name"] in text
    assert "The agreement has been made" in text
    assert "RIEC Noord-Holland receives signals" in text
    assert "from 1 July 2026 until 30 June 2027, both days included" in text
    assert "Guest name" in text  # among the fields never sent
    assert "Watchlist hit" in text
    assert "In force" in text
    assert "End this agreement" in text
    assert f'action="/admin/agreements/{agreement_id}/end"' in text
    assert len(await events(db, "agreement_created", agreement_id)) == 1


async def test_an_agreement_may_send_audit_checkpoints_with_its_signals_and_says_so(
    client: Client, db: Database
):
    """Issue 17, finding 4: a tick box on the form, kept with the agreement, in its audit
    record and in its plain-language summary."""
    csrf = await signed_in(client, db, "admin")
    page = await client.get("/admin/agreements/new")
    answers = {}
    for ticked in (True, False):
        values = form(**({"share_audit_checkpoints": "1"} if ticked else {}))
        answers[ticked] = await client.post(
            "/admin/agreements/new", data={"_csrf_token": csrf, **values}, follow_redirects=False
        )

    assert 'name="share_audit_checkpoints"' in page.text
    for ticked, answer in answers.items():
        assert answer.status_code == 303, answer.text
        agreement_id = created_id(answer.headers["location"])
        async with db.read() as session:
            agreement = await session.get(SharingAgreement, agreement_id)
        assert agreement is not None
        assert agreement.share_audit_checkpoints is ticked
        [made] = await events(db, "agreement_created", agreement_id)
        assert json.loads(made.details)["share_audit_checkpoints"] is ticked
        summary = (await client.get(answer.headers["location"])).text
        assert ("newest signed checkpoint of the audit trail" in summary) is ticked


async def test_a_form_with_mistakes_comes_back_with_each_error_beside_its_field_as_typed(
    client: Client, db: Database
):
    csrf = await signed_in(client, db, "admin")
    values = form(
        name="",
        reference="R" * 101,
        valid_from="2026-07-20",
        valid_until="2026-07-19",
        rules=["night_movement"],
        auto_rules=["watchlist_hit"],
        fields=["guest_name"],
        keep_days="5000",
        recipient="RIEC <Noord-Holland>",
    )

    answer = await client.post("/admin/agreements/new", data={"_csrf_token": csrf, **values})

    assert answer.status_code == 422
    text = answer.text
    assert 'role="alert"' in text
    assert 'id="name-error"' in text
    assert "Please enter a name for the agreement." in text
    assert 'id="reference-error"' in text
    assert "Please use at most 100 characters." in text
    assert 'id="valid_until-error"' in text
    assert "cannot be before the first day" in text
    assert 'id="auto_rules-error"' in text
    assert "rules the agreement covers" in text
    assert 'id="keep_days-error"' in text
    assert "from 1 to 3650" in text
    assert "rules-error" not in text.replace("auto_rules-error", "")
    # what was typed is kept, escaped
    assert 'value="RIEC &lt;Noord-Holland&gt;"' in text
    assert 'value="2026-07-20"' in text
    assert re.search(r'value="night_movement" id="rule-night_movement"[^>]*checked', text)
    assert re.search(r'value="guest_name" id="field-guest_name" checked', text)
    assert re.search(r'value="watchlist_hit" id="auto-watchlist_hit" checked', text)
    assert not re.search(r'value="watchlist_hit" id="rule-watchlist_hit"[^>]*checked', text)


async def test_a_post_without_the_csrf_token_is_refused(client: Client, db: Database):
    await signed_in(client, db, "admin")

    answer = await client.post("/admin/agreements/new", data=form())

    assert answer.status_code == 403


async def test_the_list_shows_each_agreement_with_its_state_and_links_to_it(
    client: Client, db: Database
):
    in_force = await make(db)
    ended = await make(db)
    await agreements.end(db, ADMIN, ended.id, "Ingetrokken", now=SUMMER_EVENING)
    await signed_in(client, db, "auditor")

    page = await client.get("/admin/agreements")

    assert page.status_code == 200
    rows = {m.group(1): m.group(2) for m in re.finditer(
        r'<tr id="agreement-(\d+)".*?<td class="state">([^<]+)</td>', page.text, re.S)}  # fmt: skip
    assert rows[str(in_force.id)] == "In force"
    assert rows[str(ended.id)] == "Ended"
    assert f'href="/admin/agreements/{in_force.id}"' in page.text
    assert in_force.reference in page.text
    assert "Night movements" in page.text
    assert "New agreement" not in page.text  # an auditor reads, and does not make


async def test_an_admin_sees_the_link_to_make_a_new_agreement(client: Client, db: Database):
    await signed_in(client, db, "admin")

    page = await client.get("/admin/agreements")

    assert 'href="/admin/agreements/new"' in page.text


async def test_an_auditor_reads_the_summary_without_the_form_to_end_it(
    client: Client, db: Database
):
    made = await make(db)
    await signed_in(client, db, "auditor")

    page = await client.get(f"/admin/agreements/{made.id}")

    assert page.status_code == 200
    assert "Who receives what" in page.text
    assert "These fields are never sent under this agreement" in page.text
    assert "HMAC-SHA256" in page.text
    assert "Signed off" in page.text
    assert "/end" not in page.text
    assert "End this agreement" not in page.text


async def test_an_admin_ends_an_agreement_with_a_reason_and_it_stays_readable(
    client: Client, db: Database, clock: FrozenClock
):
    made = await make(db)
    csrf = await signed_in(client, db, "admin")

    answer = await client.post(
        f"/admin/agreements/{made.id}/end",
        data={"_csrf_token": csrf, "reason": "Vervangen door RIEC-NH-2027-003."},
        follow_redirects=False,
    )

    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/admin/agreements/{made.id}?ended=1"
    page = await client.get(answer.headers["location"])
    assert "The agreement has been ended" in page.text
    assert 'id="agreement-state">Ended<' in page.text
    assert "Vervangen door RIEC-NH-2027-003." in page.text
    assert "ended on 14 July 2026" in page.text
    assert "End this agreement" not in page.text
    again = await stored(db, made.id)
    assert again.ended_at == clock.now()
    assert len(await events(db, "agreement_ended", made.id)) == 1


async def test_ending_without_a_reason_shows_the_error_beside_the_reason(
    client: Client, db: Database
):
    made = await make(db)
    csrf = await signed_in(client, db, "admin")

    answer = await client.post(
        f"/admin/agreements/{made.id}/end", data={"_csrf_token": csrf, "reason": "  "}
    )

    assert answer.status_code == 422
    assert 'id="reason-error"' in answer.text
    assert "Please say why the agreement ends." in answer.text
    assert (await stored(db, made.id)).ended_at is None


async def test_ending_an_ended_agreement_again_is_refused_with_a_message(
    client: Client, db: Database
):
    made = await make(db)
    await agreements.end(db, ADMIN, made.id, "Afgelopen", now=SUMMER_EVENING)
    csrf = await signed_in(client, db, "admin")

    answer = await client.post(
        f"/admin/agreements/{made.id}/end", data={"_csrf_token": csrf, "reason": "Nogmaals"}
    )

    assert answer.status_code == 409
    assert 'id="end-refused"' in answer.text
    assert "cannot be ended twice" in answer.text
    assert (await stored(db, made.id)).end_reason == "Afgelopen"


async def test_an_htmx_form_gets_htmx_redirects(client: Client, db: Database):
    made = await make(db)
    csrf = await signed_in(client, db, "admin")

    answer = await client.post(
        f"/admin/agreements/{made.id}/end",
        data={"reason": "Afgelopen"},
        headers={"HX-Request": "true", "x-csrftoken": csrf},
    )

    assert answer.headers.get("hx-redirect") == f"/admin/agreements/{made.id}?ended=1"


async def test_an_agreement_that_does_not_exist_is_a_not_found_page(client: Client, db: Database):
    await signed_in(client, db, "auditor")

    assert (await client.get("/admin/agreements/987654321")).status_code == 404


@pytest.mark.parametrize("role", ["harbour_master", "security", "analyst"])
async def test_site_staff_and_analysts_may_not_reach_any_agreement_page(
    client: Client, db: Database, role: str
):
    made = await make(db)
    csrf = await signed_in(client, db, role)

    answers = [
        await client.get("/admin/agreements"),
        await client.get("/admin/agreements/new"),
        await client.get(f"/admin/agreements/{made.id}"),
        await client.post("/admin/agreements/new", data={"_csrf_token": csrf, **form()}),
        await client.post(
            f"/admin/agreements/{made.id}/end", data={"_csrf_token": csrf, "reason": "Weg"}
        ),
    ]

    assert [a.status_code for a in answers] == [403] * 5
    assert (await stored(db, made.id)).ended_at is None


async def test_an_auditor_may_read_but_neither_make_nor_end(client: Client, db: Database):
    made = await make(db)
    csrf = await signed_in(client, db, "auditor")

    reads = [
        await client.get("/admin/agreements"),
        await client.get(f"/admin/agreements/{made.id}"),
    ]
    writes = [
        await client.get("/admin/agreements/new"),
        await client.post("/admin/agreements/new", data={"_csrf_token": csrf, **form()}),
        await client.post(
            f"/admin/agreements/{made.id}/end", data={"_csrf_token": csrf, "reason": "Weg"}
        ),
    ]

    assert [a.status_code for a in reads] == [200, 200]
    assert [a.status_code for a in writes] == [403, 403, 403]
    assert (await stored(db, made.id)).ended_at is None


async def test_anonymous_visitors_are_sent_to_sign_in(client: Client):
    answer = await client.get("/admin/agreements", follow_redirects=False)

    assert answer.status_code in (302, 303, 307)
    assert "/admin/sign-in" in answer.headers["location"]


# --- the command line ------------------------------------------------------------------------


def run_command(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="nightreg")
    cli_agreements.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.func(settings, args)
    return code


def test_the_command_line_makes_lists_and_ends_an_agreement(
    settings: Settings, capsys: pytest.CaptureFixture[str]
):
    name = unique_name()
    made = run_command(
        settings, "agreement", "add", name, "--recipient", "RIEC Noord-Holland",
        "--reference", "RIEC-NH-CLI", "--from", "2026-01-01", "--rule", "watchlist_hit",
        "--rule", "night_movement", "--field", "score", "--auto", "watchlist_hit",
    )  # fmt: skip
    out = capsys.readouterr().out
    agreement_id = int(re.search(r"Agreement (\d+)", out).group(1))  # type: ignore[union-attr]

    listed = run_command(settings, "agreement", "list")
    listing = capsys.readouterr().out
    ended = run_command(settings, "agreement", "end", str(agreement_id), "--reason", "Klaar")
    ended_out = capsys.readouterr().out
    again = run_command(settings, "agreement", "list")
    listing_after = capsys.readouterr().out

    assert made == listed == ended == again == 0
    assert "RIEC-NH-CLI" in out
    assert "rule, reason, score" in out
    line = next(line for line in listing.splitlines() if line.startswith(f"{agreement_id}\t"))
    assert name in line
    assert "in force" in line
    assert "night_movement,watchlist_hit" in line
    assert "ended" in ended_out
    line = next(l for l in listing_after.splitlines() if l.startswith(f"{agreement_id}\t"))  # noqa: E741
    assert "ended" in line


def test_the_command_line_names_the_field_at_fault(settings: Settings):
    from nightreg.cli.common import CommandError

    with pytest.raises(CommandError, match="rules: Please choose at least one rule"):
        run_command(settings, "agreement", "add", unique_name(), "--recipient", "RIEC",
                    "--reference", "R-1", "--from", "2026-01-01")  # fmt: skip
    with pytest.raises(CommandError, match="no agreement with id 987654321"):
        run_command(settings, "agreement", "end", "987654321", "--reason", "Weg")


# --- the signal format the hub reads (issue 18) ---------------------------------------------


async def test_an_agreement_names_the_newest_signal_format_its_hub_reads(
    client: Client, db: Database
):
    csrf = await signed_in(client, db, "admin")
    page = await client.get("/admin/agreements/new")
    made = await client.post(
        "/admin/agreements/new",
        data={"_csrf_token": csrf, **form(max_schema="1")},
        follow_redirects=False,
    )
    refused = await client.post(
        "/admin/agreements/new", data={"_csrf_token": csrf, **form(max_schema="2")}
    )

    assert 'name="max_schema"' in page.text
    assert made.status_code == 303
    assert (await stored(db, created_id(made.headers["location"]))).max_schema == 1
    assert refused.status_code == 422
    assert "version of the signal format this installation can send" in refused.text
    default = await agreements.create(db, ADMIN, form(), now=SUMMER_EVENING, tz=AMSTERDAM)
    assert default.max_schema == 1
    assert agreements.as_record(default)["max_schema"] == 1


def test_the_command_line_sets_the_signal_format_and_changes_it_audited(
    settings: Settings, capsys: pytest.CaptureFixture[str]
):
    from nightreg.cli.common import CommandError

    run_command(
        settings, "agreement", "add", unique_name(), "--recipient", "RIEC",
        "--reference", "RIEC-NH-FMT", "--from", "2026-01-01", "--rule", "night_movement",
        "--max-schema", "1",
    )  # fmt: skip
    agreement_id = int(re.search(r"Agreement (\d+)", capsys.readouterr().out).group(1))  # type: ignore[union-attr]

    edited = run_command(settings, "agreement", "edit", str(agreement_id), "--max-schema", "1")
    out = capsys.readouterr().out

    assert edited == 0
    assert "signal format 1 at most" in out
    with pytest.raises(CommandError, match="max_schema: Please choose a version"):
        run_command(settings, "agreement", "edit", str(agreement_id), "--max-schema", "9")
    with pytest.raises(CommandError, match="max_schema: Please choose a version"):
        run_command(
            settings, "agreement", "add", unique_name(), "--recipient", "RIEC", "--reference",
            "R-2", "--rule", "night_movement", "--max-schema", "x",
        )  # fmt: skip


async def test_changing_the_signal_format_is_audited_and_refused_once_ended(db: Database):
    made = await agreements.create(db, ADMIN, form(), now=SUMMER_EVENING, tz=AMSTERDAM)

    await agreements.set_max_schema(db, ADMIN, made.id, "1", now=SUMMER_EVENING)
    await agreements.end(db, ADMIN, made.id, "Klaar", now=SUMMER_EVENING)

    [event] = await events(db, "agreement_changed", made.id)
    assert json.loads(event.details)["max_schema"] == [1, 1]
    with pytest.raises(AgreementInvalid):
        await agreements.set_max_schema(db, ADMIN, made.id, 1, now=SUMMER_EVENING)
    with pytest.raises(AccessDenied):
        await agreements.set_max_schema(db, AUDITOR, made.id, 1, now=SUMMER_EVENING)
