"""Legal holds through the service, the pages and the command line; and the purge honouring
them: what a hold covers stays past its retention, and goes once the hold has ended.

Holds are installation-wide and the database is shared: every hold here is on this test's own
sites, visits and (unique) subjects, and assertions look at those rows only.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from nightreg.cli import holds as cli_holds
from nightreg.db import Database
from nightreg.models import AuditEvent, Flag, LegalHold, Site, Visit, flag_visit, legal_hold_visit
from nightreg.services import holds, retention
from nightreg.services.access import CLI, AccessDenied, Actor, NotFound
from nightreg.services.holds import HoldInvalid
from nightreg.settings import Settings
from tests.factories import SUMMER_EVENING, add_visit, event_details, make_staff, new_site
from tests.pages import sign_in

Client = AsyncTestClient[Litestar]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
ADMIN = Actor(kind="user", id=910001, name="admin@test.example", role="admin")
AUDITOR = Actor(kind="user", id=910002, name="auditor@test.example", role="auditor")
DAY = timedelta(days=1)
# The purge runs more than a year after the summer evening the holds are placed on.
PURGE_AT = datetime(2027, 9, 1, 1, 30, tzinfo=UTC)  # 03:30 in Amsterdam
# Departed well past the 365 days of retention by PURGE_AT, before the holds are placed.
LONG_AGO = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def guest() -> dict[str, str]:
    """A guest nobody else has: the visit's subject key is theirs alone."""
    return {"guest_name": f"Gast {secrets.token_hex(4)}", "residence": "Enkhuizen"}


async def old_visit(db: Database, site: Site, **fields: Any) -> Visit:
    """A visit that departed long ago: past its retention when PURGE_AT comes."""
    return await add_visit(
        db, site, arrived=LONG_AGO - 2 * DAY, departed=LONG_AGO, **{**guest(), **fields}
    )


async def place(actor: Actor = ADMIN, *, db: Database, **values: Any) -> LegalHold:
    values.setdefault("case_reference", f"PV-{secrets.token_hex(3)}")
    values.setdefault("reason", "Het OM vraagt de gegevens te bewaren.")
    return await holds.place(db, actor, now=SUMMER_EVENING, tz=AMSTERDAM, **values)


async def stored(db: Database, hold_id: int) -> LegalHold:
    async with db.read() as session:
        found = await session.get(LegalHold, hold_id)
    assert found is not None
    return found


async def events(db: Database, action: str, hold_id: int) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.action == action,
                    AuditEvent.object_type == "legal_hold",
                    AuditEvent.object_id == hold_id,
                )
                .order_by(AuditEvent.id)
            )
        )


async def visit_ids(db: Database, site: Site) -> set[int]:
    async with db.read() as session:
        return set(await session.scalars(select(Visit.id).where(Visit.site_id == site.id)))


async def flag_ids(db: Database, site: Site) -> set[int]:
    async with db.read() as session:
        return set(await session.scalars(select(Flag.id).where(Flag.site_id == site.id)))


async def add_flag(
    db: Database, site: Site, visits: list[Visit], *, status: str, created: datetime,
    reviewed: datetime | None = None, subject: str | None = None,
) -> Flag:  # fmt: skip
    flag = Flag(
        site_id=site.id,
        rule="night_movement",
        subject=subject or visits[0].subject_key,
        dedupe_key=f"test:{secrets.token_hex(8)}",
        window_start=created - DAY,
        window_end=created,
        score=60,
        reason="Moved at night three times in a week.",
        status=status,
        created_at=created,
        updated_at=reviewed or created,
        reviewed_at=reviewed,
        reviewed_by="user:1 test" if reviewed else None,
    )
    async with db.write() as session:
        session.add(flag)
        await session.flush()
        await session.execute(
            flag_visit.insert(), [{"flag_id": flag.id, "visit_id": v.id} for v in visits]
        )
    return flag


# --- placing ---------------------------------------------------------------------------------


async def test_a_hold_on_named_visits_links_them_and_audits_what_it_covers(db: Database):
    site = await new_site(db)
    first, second = await old_visit(db, site), await old_visit(db, site)

    hold = await place(
        db=db, scope="visits", case_reference="PV-2026-0712", reason="Onderzoek naar diefstal",
        until="2026-12-31", visit_references=f"{first.reference}\n{second.reference.lower()}",
    )  # fmt: skip

    again = await stored(db, hold.id)
    assert (again.scope, again.case_reference, again.until) == (
        "visits", "PV-2026-0712", date(2026, 12, 31)
    )  # fmt: skip
    assert again.visit_count == 2
    assert again.created_at == SUMMER_EVENING
    assert again.created_by == ADMIN.label
    assert again.released_at is None
    async with db.read() as session:
        linked = set(
            await session.scalars(
                select(legal_hold_visit.c.visit_id).where(legal_hold_visit.c.hold_id == hold.id)
            )
        )
    assert linked == {first.id, second.id}
    [event] = await events(db, "hold_placed", hold.id)
    assert event.actor == ADMIN.label
    assert sorted(json.loads(event.object_ids)) == sorted([first.id, second.id])
    assert await event_details(db, event) == {
        "scope": "visits",
        "case_reference": "PV-2026-0712",
        "reason": "Onderzoek naar diefstal",
        "until": "2026-12-31",
        "site": None,
        "subject_key": None,
    }


def test_references_may_come_one_a_line_or_separated_by_commas_or_spaces():
    text = " k7qx-m2pd,  AB12-CD34\n\nZZ99-YY88 ab12-cd34;QQ11-RR22 "

    assert holds.parse_references(text) == ["K7QX-M2PD", "AB12-CD34", "ZZ99-YY88", "QQ11-RR22"]
    assert holds.parse_references(["k7qx-m2pd", "AB12-CD34, k7qx-m2pd"]) == [
        "K7QX-M2PD", "AB12-CD34"
    ]  # fmt: skip


async def test_a_hold_naming_visits_that_do_not_exist_says_which_and_is_not_stored(
    db: Database,
):
    site = await new_site(db)
    known = await old_visit(db, site)
    async with db.read() as session:
        before = await session.scalar(select(func.count()).select_from(LegalHold))

    with pytest.raises(HoldInvalid) as caught:
        await place(db=db, scope="visits", visit_references=f"{known.reference}, 0000-0000")

    assert set(caught.value.errors) == {"refs"}
    error = caught.value.errors["refs"]
    assert error.params == {"refs": "0000-0000"}
    assert known.reference not in str(error.params)
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(LegalHold)) == before


async def test_every_missing_or_wrong_field_is_named_at_once(db: Database):
    with pytest.raises(HoldInvalid) as caught:
        await place(
            db=db, scope="visits", case_reference="  ", reason="", until="14-07-2026",
            visit_references="",
        )  # fmt: skip
    assert set(caught.value.errors) == {"case_reference", "reason", "until", "refs"}

    with pytest.raises(HoldInvalid) as caught:
        await place(db=db, scope="everything", case_reference="X" * 101)
    assert set(caught.value.errors) == {"scope", "case_reference"}
    assert caught.value.errors["case_reference"].params == {"max": 100}


async def test_a_last_day_in_the_past_on_the_local_clock_is_refused_and_today_is_accepted(
    db: Database,
):
    # 21:00 on 14 July in Amsterdam: the 14th is still today, the 13th is past
    site = await new_site(db)
    with pytest.raises(HoldInvalid) as caught:
        await place(db=db, scope="site", site_id=site.id, until="2026-07-13")
    today = await place(db=db, scope="site", site_id=site.id, until=date(2026, 7, 14))

    assert set(caught.value.errors) == {"until"}
    assert today.until == date(2026, 7, 14)


async def test_a_subject_hold_needs_the_key_exactly_as_the_register_stores_it(db: Database):
    site, other = await new_site(db), await new_site(db)
    visit = await old_visit(db, site)

    for wrong in ("", "Gast", "person:", "PERSON:" + visit.subject_key[7:]):
        with pytest.raises(HoldInvalid) as caught:
            await place(db=db, scope="subject", subject_key=wrong)
        assert set(caught.value.errors) == {"subject"}, wrong
    with pytest.raises(HoldInvalid) as caught:
        await place(db=db, scope="subject", subject_key=visit.subject_key, site_id=other.id)
    assert set(caught.value.errors) == {"subject"}
    with pytest.raises(HoldInvalid) as caught:
        await place(db=db, scope="subject", subject_key=visit.subject_key, site_slug="no-such")
    assert set(caught.value.errors) == {"site"}

    everywhere = await place(db=db, scope="subject", subject_key=visit.subject_key)
    here = await place(
        db=db, scope="subject", subject_key=f" {visit.subject_key} ", site_slug=site.slug
    )

    assert (everywhere.subject_key, everywhere.site_id) == (visit.subject_key, None)
    assert (here.subject_key, here.site_id) == (visit.subject_key, site.id)
    [event] = await events(db, "hold_placed", here.id)
    details = await event_details(db, event)
    assert details["subject_key"] == visit.subject_key
    assert details["site"] == site.slug
    assert event.site_id == site.id


async def test_a_site_hold_needs_a_site_and_ignores_the_other_scopes_fields(db: Database):
    site = await new_site(db)
    with pytest.raises(HoldInvalid) as caught:
        await place(db=db, scope="site")
    assert set(caught.value.errors) == {"site"}

    hold = await place(
        db=db, scope="site", site_slug=site.slug, subject_key="nonsense",
        visit_references="0000-0000",
    )  # fmt: skip

    again = await stored(db, hold.id)
    assert (again.scope, again.site_id, again.subject_key, again.visit_count) == (
        "site", site.id, None, 0
    )  # fmt: skip


async def test_only_an_admin_or_the_command_line_may_place_or_release_a_hold(db: Database):
    site = await new_site(db)
    for role in ("auditor", "harbour_master", "security", "analyst"):
        actor = Actor(kind="user", id=1, name=role, role=role, site_ids=frozenset({site.id}))
        with pytest.raises(AccessDenied):
            await place(actor, db=db, scope="site", site_id=site.id)
    hold = await place(CLI, db=db, scope="site", site_id=site.id)
    with pytest.raises(AccessDenied):
        await holds.release(db, AUDITOR, hold.id, "Zaak gesloten", now=SUMMER_EVENING,
                            tz=AMSTERDAM)  # fmt: skip

    assert (await stored(db, hold.id)).released_at is None


async def test_only_admins_and_auditors_may_list_or_read_holds(db: Database):
    site = await new_site(db)
    hold = await place(db=db, scope="site", site_id=site.id)
    for role in ("harbour_master", "security", "analyst"):
        actor = Actor(kind="user", id=1, name=role, role=role, site_ids=frozenset({site.id}))
        with pytest.raises(AccessDenied):
            await holds.list_holds(db, actor, now=SUMMER_EVENING, tz=AMSTERDAM)
        with pytest.raises(AccessDenied):
            await holds.get_hold(db, actor, hold.id, now=SUMMER_EVENING, tz=AMSTERDAM)

    rows = await holds.list_holds(db, AUDITOR, now=SUMMER_EVENING, tz=AMSTERDAM)
    detail = await holds.get_hold(db, AUDITOR, hold.id, now=SUMMER_EVENING, tz=AMSTERDAM)

    assert hold.id in [r.hold.id for r in rows]
    assert detail.hold.id == hold.id


# --- releasing -------------------------------------------------------------------------------


async def test_releasing_a_hold_keeps_it_with_who_when_and_why_and_audits_it(db: Database):
    site = await new_site(db)
    hold = await place(db=db, scope="site", site_id=site.id)
    later = SUMMER_EVENING + 3 * DAY

    released = await holds.release(
        db, ADMIN, hold.id, "  Zaak gesloten\r\ndoor het OM. ", now=later, tz=AMSTERDAM
    )

    again = await stored(db, hold.id)
    assert released.id == hold.id
    assert again.released_at == later
    assert again.released_by == ADMIN.label
    assert again.release_reason == "Zaak gesloten\ndoor het OM."
    [event] = await events(db, "hold_released", hold.id)
    assert event.at == later
    assert await event_details(db, event) == {
        "case_reference": hold.case_reference,
        "reason": "Zaak gesloten\ndoor het OM.",
    }


async def test_a_release_needs_a_reason_and_happens_once(db: Database):
    site = await new_site(db)
    hold = await place(db=db, scope="site", site_id=site.id)

    with pytest.raises(HoldInvalid) as no_reason:
        await holds.release(db, ADMIN, hold.id, " ", now=SUMMER_EVENING, tz=AMSTERDAM)
    await holds.release(db, ADMIN, hold.id, "Klaar", now=SUMMER_EVENING, tz=AMSTERDAM)
    with pytest.raises(HoldInvalid) as twice:
        await holds.release(db, ADMIN, hold.id, "Nog eens", now=SUMMER_EVENING, tz=AMSTERDAM)

    assert set(no_reason.value.errors) == {"reason"}
    assert set(twice.value.errors) == {"hold"}
    assert (await stored(db, hold.id)).release_reason == "Klaar"
    assert len(await events(db, "hold_released", hold.id)) == 1


async def test_a_hold_past_its_last_day_has_ended_and_cannot_be_released(db: Database):
    site = await new_site(db)
    hold = await place(db=db, scope="site", site_id=site.id, until="2026-07-20")

    with pytest.raises(HoldInvalid) as caught:
        await holds.release(
            db, ADMIN, hold.id, "Te laat", now=SUMMER_EVENING + 7 * DAY, tz=AMSTERDAM
        )

    assert set(caught.value.errors) == {"hold"}
    assert (await stored(db, hold.id)).released_at is None


async def test_releasing_or_reading_a_hold_that_does_not_exist_is_not_found(db: Database):
    with pytest.raises(NotFound):
        await holds.release(db, ADMIN, 987654321, "Weg", now=SUMMER_EVENING, tz=AMSTERDAM)
    with pytest.raises(NotFound):
        await holds.get_hold(db, ADMIN, 987654321, now=SUMMER_EVENING, tz=AMSTERDAM)


# --- reading ---------------------------------------------------------------------------------


async def test_the_list_puts_holds_in_force_first_and_is_audited(db: Database):
    site = await new_site(db)
    released = await place(db=db, scope="site", site_id=site.id)
    await holds.release(db, ADMIN, released.id, "Klaar", now=SUMMER_EVENING, tz=AMSTERDAM)
    expired = await place(db=db, scope="site", site_id=site.id, until="2026-07-15")
    in_force = await place(db=db, scope="site", site_id=site.id)
    later = SUMMER_EVENING + 2 * DAY  # the 16th: the one until the 15th has ended

    rows = await holds.list_holds(db, AUDITOR, now=later, tz=AMSTERDAM)

    mine = [r for r in rows if r.hold.id in {released.id, expired.id, in_force.id}]
    assert [(r.hold.id, r.state) for r in mine] == [
        (in_force.id, "in_force"), (expired.id, "expired"), (released.id, "released")
    ]  # fmt: skip
    states = [r.state for r in rows]
    assert states == sorted(states, key=lambda s: s != "in_force")
    assert mine[0].site is not None
    assert mine[0].site.id == site.id
    async with db.read() as session:
        event = await session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "holds_viewed", AuditEvent.actor == AUDITOR.label)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
    assert event is not None
    assert {released.id, expired.id, in_force.id} <= set(json.loads(event.object_ids))


async def test_a_hold_shows_how_many_visits_and_flags_it_covers_now(db: Database):
    site, other = await new_site(db), await new_site(db)
    person = guest()
    here = await old_visit(db, site, **person)
    there = await old_visit(db, other, **person)
    stranger = await old_visit(db, site)
    await add_flag(db, site, [here], status="open", created=LONG_AGO)
    await add_flag(db, other, [stranger, there], status="open", created=LONG_AGO,
                   subject="site:elsewhere")  # fmt: skip
    await add_flag(db, site, [stranger], status="open", created=LONG_AGO)

    by_name = await place(db=db, scope="visits", visit_references=stranger.reference)
    everywhere = await place(db=db, scope="subject", subject_key=here.subject_key)
    at_site = await place(db=db, scope="subject", subject_key=here.subject_key, site_id=site.id)
    whole = await place(db=db, scope="site", site_id=site.id)

    async def covered(hold: LegalHold) -> tuple[int, int, list[str]]:
        d = await holds.get_hold(db, AUDITOR, hold.id, now=SUMMER_EVENING, tz=AMSTERDAM)
        return d.visits, d.flags, sorted(d.references)

    assert await covered(by_name) == (1, 2, [stranger.reference])
    assert await covered(everywhere) == (2, 2, sorted([here.reference, there.reference]))
    assert await covered(at_site) == (1, 1, [here.reference])
    assert await covered(whole) == (2, 3, [])  # counted, not listed; the flag elsewhere too
    [event] = await events(db, "hold_viewed", everywhere.id)
    assert sorted(json.loads(event.object_ids)) == sorted([here.id, there.id])


# --- the purge honours holds -----------------------------------------------------------------


async def test_a_visit_held_by_name_stays_past_retention_and_goes_after_the_release(
    db: Database, settings: Settings
):
    site = await new_site(db)
    held, free = await old_visit(db, site), await old_visit(db, site)
    hold = await place(db=db, scope="visits", visit_references=held.reference)

    await retention.purge(db, settings, now=PURGE_AT)
    kept = await visit_ids(db, site)
    await holds.release(db, ADMIN, hold.id, "Zaak gesloten", now=PURGE_AT + DAY, tz=AMSTERDAM)
    await retention.purge(db, settings, now=PURGE_AT + DAY)

    assert kept == {held.id}
    assert free.id not in kept
    assert await visit_ids(db, site) == set()
    detail = await holds.get_hold(db, ADMIN, hold.id, now=PURGE_AT + DAY, tz=AMSTERDAM)
    assert detail.state == "released"
    assert (detail.visits, detail.named_gone) == (0, 1)  # the hold itself is never deleted


async def test_a_subjects_visits_stay_while_held_at_their_site_or_at_all_sites(
    db: Database, settings: Settings
):
    site, other = await new_site(db), await new_site(db)
    person, someone = guest(), guest()
    here = await old_visit(db, site, **person)
    there = await old_visit(db, other, **person)
    elsewhere_held = await old_visit(db, other, **someone)
    stranger = await old_visit(db, site)
    at_site = await place(db=db, scope="subject", subject_key=here.subject_key, site_id=site.id)
    everywhere = await place(db=db, scope="subject", subject_key=elsewhere_held.subject_key)

    await retention.purge(db, settings, now=PURGE_AT)
    kept_here, kept_there = await visit_ids(db, site), await visit_ids(db, other)
    for hold in (at_site, everywhere):
        await holds.release(db, ADMIN, hold.id, "Klaar", now=PURGE_AT, tz=AMSTERDAM)
    await retention.purge(db, settings, now=PURGE_AT + DAY)

    assert kept_here == {here.id}  # the stranger at the same site went
    assert stranger.id not in kept_here
    assert kept_there == {elsewhere_held.id}  # held at the first site only: gone here
    assert there.id not in kept_there
    assert await visit_ids(db, site) == await visit_ids(db, other) == set()


async def test_a_sites_visits_stay_while_it_is_held_and_go_once_the_last_day_has_passed(
    db: Database, settings: Settings
):
    site, neighbour = await new_site(db), await new_site(db)
    held = [await old_visit(db, site), await old_visit(db, site)]
    unheld = await old_visit(db, neighbour)
    # the last day is the day of the first purge (in Amsterdam): held through that day
    await place(db=db, scope="site", site_id=site.id, until=date(2027, 9, 1))

    await retention.purge(db, settings, now=PURGE_AT)
    kept, neighbours = await visit_ids(db, site), await visit_ids(db, neighbour)
    await retention.purge(db, settings, now=PURGE_AT + DAY)

    assert kept == {v.id for v in held}
    assert unheld.id not in neighbours
    assert await visit_ids(db, site) == set()


async def test_a_flag_whose_evidence_is_held_stays_with_its_visit_until_the_hold_ends(
    db: Database, settings: Settings
):
    site = await new_site(db)
    evidence, loose = await old_visit(db, site), await old_visit(db, site)
    reviewed = LONG_AGO + DAY  # dismissed long past the 30 days a dismissed flag is kept
    held_flag = await add_flag(db, site, [evidence], status="dismissed", created=LONG_AGO,
                               reviewed=reviewed)  # fmt: skip
    free_flag = await add_flag(db, site, [loose], status="dismissed", created=LONG_AGO,
                               reviewed=reviewed)  # fmt: skip
    hold = await place(db=db, scope="visits", visit_references=evidence.reference)

    await retention.purge(db, settings, now=PURGE_AT)
    flags_kept, visits_kept = await flag_ids(db, site), await visit_ids(db, site)
    await holds.release(db, ADMIN, hold.id, "Zaak gesloten", now=PURGE_AT, tz=AMSTERDAM)
    await retention.purge(db, settings, now=PURGE_AT + DAY)

    assert flags_kept == {held_flag.id}
    assert free_flag.id not in flags_kept
    assert visits_kept == {evidence.id}
    assert await flag_ids(db, site) == set()
    assert await visit_ids(db, site) == set()


# --- the pages -------------------------------------------------------------------------------


async def signed_in(client: Client, db: Database, role: str) -> str:
    """Sign the client in (afresh) as a new account of `role`; returns the CSRF token."""
    client.cookies.clear()
    account = await make_staff(db, role)
    return await sign_in(client, account.email, account.password)


def placed_id(location: str) -> int:
    match = re.fullmatch(r"/admin/retention/holds/(\d+)\?placed=1", location)
    assert match, location
    return int(match.group(1))


async def test_an_admin_places_a_hold_on_the_form_and_lands_on_the_hold(
    client: Client, db: Database
):
    site = await new_site(db)
    first, second = await old_visit(db, site), await old_visit(db, site)
    csrf = await signed_in(client, db, "admin")
    case = f"PV-{secrets.token_hex(3)}"

    page = await client.get("/admin/retention/holds/new")
    answer = await client.post(
        "/admin/retention/holds/new",
        data={
            "_csrf_token": csrf, "scope": "visits", "case_reference": case,
            "reason": "Het OM vraagt erom.", "until": "",
            "refs": f"{first.reference}, {second.reference}", "subject": "", "site": "",
        },
        follow_redirects=False,
    )  # fmt: skip

    assert page.status_code == 200
    assert 'name="_csrf_token"' in page.text
    assert f'value="{site.slug}"' in page.text
    assert answer.status_code == 303, answer.text
    hold_id = placed_id(answer.headers["location"])
    shown = await client.get(answer.headers["location"])
    assert shown.status_code == 200
    assert case in shown.text
    assert "The hold has been placed" in shown.text
    assert first.reference in shown.text
    assert second.reference in shown.text
    assert "2 named visits" in shown.text
    assert "Release this hold" in shown.text
    listing = await client.get("/admin/retention/holds")
    assert listing.status_code == 200
    row = re.search(rf'<tr id="hold-{hold_id}".*?</tr>', listing.text, re.S)
    assert row, listing.text
    assert case in row.group(0)
    assert "In force" in row.group(0)
    assert "until released" in row.group(0)


async def test_a_form_with_mistakes_comes_back_with_each_error_beside_its_field_as_typed(
    client: Client, db: Database
):
    csrf = await signed_in(client, db, "admin")

    answer = await client.post(
        "/admin/retention/holds/new",
        data={
            "_csrf_token": csrf, "scope": "subject", "case_reference": "<b>PV</b>",
            "reason": "", "until": "2026-07-01", "subject": "<script>x</script>", "site": "",
        },
    )  # fmt: skip

    assert answer.status_code == 422
    text = answer.text
    assert 'id="reason-error"' in text
    assert 'id="until-error"' in text
    assert 'id="subject-error"' in text
    assert "The last day has passed already" in text
    assert "<script>x</script>" not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text
    assert 'value="&lt;b&gt;PV&lt;/b&gt;"' in text
    assert 'value="subject" id="scope-subject" checked' in text


async def test_the_form_is_filled_from_the_links_of_other_pages(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "admin")

    visits = await client.get("/admin/retention/holds/new?refs=ab12-cd34,EF56-GH78")
    subject = await client.get(f"/admin/retention/holds/new?subject=plate:12ABC3&site={site.slug}")
    whole = await client.get(f"/admin/retention/holds/new?scope=site&site={site.slug}")

    assert 'value="visits" id="scope-visits" checked' in visits.text
    assert "AB12-CD34, EF56-GH78</textarea>" in visits.text
    assert 'value="subject" id="scope-subject" checked' in subject.text
    assert 'value="plate:12ABC3"' in subject.text
    assert f'value="{site.slug}" selected' in subject.text
    assert 'value="site" id="scope-site" checked' in whole.text


async def test_an_auditor_reads_the_holds_without_the_forms_to_place_or_release_one(
    client: Client, db: Database
):
    site = await new_site(db)
    hold = await place(db=db, scope="site", site_id=site.id)
    csrf = await signed_in(client, db, "auditor")

    listing = await client.get("/admin/retention/holds")
    shown = await client.get(f"/admin/retention/holds/{hold.id}")
    form = await client.get("/admin/retention/holds/new")
    release = await client.post(
        f"/admin/retention/holds/{hold.id}/release", data={"_csrf_token": csrf, "reason": "Weg"}
    )

    assert listing.status_code == 200
    assert hold.case_reference in listing.text
    assert "Place a hold" not in listing.text
    assert shown.status_code == 200
    assert site.name in shown.text
    assert "Release this hold" not in shown.text
    assert form.status_code == 403
    assert release.status_code == 403
    assert (await stored(db, hold.id)).released_at is None


async def test_a_harbour_master_may_not_see_the_holds(client: Client, db: Database):
    await signed_in(client, db, "harbour_master")

    answer = await client.get("/admin/retention/holds")

    assert answer.status_code == 403


async def test_an_admin_releases_a_hold_with_a_reason_and_only_once(client: Client, db: Database):
    site = await new_site(db)
    hold = await place(db=db, scope="site", site_id=site.id)
    csrf = await signed_in(client, db, "admin")
    url = f"/admin/retention/holds/{hold.id}/release"

    no_reason = await client.post(url, data={"_csrf_token": csrf, "reason": " "})
    done = await client.post(
        url, data={"_csrf_token": csrf, "reason": "Zaak gesloten"}, follow_redirects=False
    )
    shown = await client.get(done.headers["location"])
    twice = await client.post(url, data={"_csrf_token": csrf, "reason": "Nog eens"})

    assert no_reason.status_code == 422
    assert 'id="reason-error"' in no_reason.text
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/retention/holds/{hold.id}?released=1"
    assert "The hold has been released" in shown.text
    assert "Zaak gesloten" in shown.text
    assert "Release this hold" not in shown.text
    assert twice.status_code == 409
    assert "released already" in twice.text
    assert (await stored(db, hold.id)).release_reason == "Zaak gesloten"


async def test_a_post_without_the_csrf_token_is_refused(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "admin")

    answer = await client.post(
        "/admin/retention/holds/new",
        data={"scope": "site", "site": site.slug, "case_reference": "X", "reason": "Y"},
    )

    assert answer.status_code == 403
    async with db.read() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(LegalHold).where(LegalHold.site_id == site.id)
            )
            == 0
        )


async def test_a_hold_that_does_not_exist_is_not_found(client: Client, db: Database):
    await signed_in(client, db, "admin")

    answer = await client.get("/admin/retention/holds/987654321")

    assert answer.status_code == 404


# --- the command line ------------------------------------------------------------------------


def run_command(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="nightreg")
    cli_holds.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.func(settings, args)
    return code


async def test_the_command_line_places_lists_and_releases_a_hold(
    db: Database, settings: Settings, capsys: pytest.CaptureFixture[str]
):
    import asyncio

    site = await new_site(db)
    visit = await old_visit(db, site)
    case = f"PV-{secrets.token_hex(3)}"

    def commands() -> tuple[int, ...]:
        by_name = run_command(settings, "hold", "add", "--case", case, "--reason", "OM",
                              "--visit", visit.reference, "--until", "2099-12-31")  # fmt: skip
        subject = run_command(settings, "hold", "add", "--case", case, "--reason", "OM",
                              "--subject", visit.subject_key, "--site", site.slug)  # fmt: skip
        whole = run_command(settings, "hold", "add", "--case", case, "--reason", "OM",
                            "--site", site.slug)  # fmt: skip
        return by_name, subject, whole

    codes = await asyncio.to_thread(commands)
    out = capsys.readouterr().out
    ids = [int(i) for i in re.findall(r"Hold (\d+)", out)]
    listed = await asyncio.to_thread(run_command, settings, "hold", "list")
    listing = capsys.readouterr().out
    released = await asyncio.to_thread(
        run_command, settings, "hold", "release", str(ids[2]), "--reason", "Klaar"
    )
    released_out = capsys.readouterr().out
    await asyncio.to_thread(run_command, settings, "hold", "list")
    listing_after = capsys.readouterr().out

    assert codes == (0, 0, 0)
    assert listed == released == 0
    assert len(ids) == 3
    assert "1 named visit" in out
    lines = {int(line.split("\t")[0]): line for line in listing.splitlines()}
    assert "2099-12-31" in lines[ids[0]]
    assert "in force" in lines[ids[0]]
    assert f"{visit.subject_key} at {site.slug}" in lines[ids[1]]
    assert f"site {site.slug}" in lines[ids[2]]
    assert "released" in released_out
    after = {int(line.split("\t")[0]): line for line in listing_after.splitlines()}
    assert after[ids[2]].split("\t")[5] == "released"
    assert (await stored(db, ids[2])).released_by == CLI.label


def test_the_command_line_names_the_field_at_fault(settings: Settings):
    from nightreg.cli.common import CommandError

    with pytest.raises(CommandError, match="refs: No visit has these references: 0000-0000"):
        run_command(settings, "hold", "add", "--case", "PV-1", "--reason", "OM",
                    "--visit", "0000-0000")  # fmt: skip
    with pytest.raises(CommandError, match="say what to hold"):
        run_command(settings, "hold", "add", "--case", "PV-1", "--reason", "OM")
    with pytest.raises(CommandError, match="until: Please enter a date"):
        run_command(settings, "hold", "add", "--case", "PV-1", "--reason", "OM",
                    "--site", "whatever", "--until", "31-12-2099")  # fmt: skip
    with pytest.raises(CommandError, match="no legal hold with id 987654321"):
        run_command(settings, "hold", "release", "987654321", "--reason", "Weg")
