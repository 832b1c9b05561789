"""The night round: starting one, marks sent once whatever happens on the way, a boat found and
added, the end of a round, its audit, and what it tells Tonight and a visit's page."""

from __future__ import annotations

import json
import re
import secrets
from datetime import timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import NightRound, RoundMark, Site, Visit
from nightreg.services import rounds
from nightreg.services.access import Actor
from tests.factories import (
    NOW,
    add_visit,
    event_details,
    events,
    make_staff,
    new_site,
)
from tests.pages import csrf_from, sign_in

Client = AsyncTestClient[Litestar]
JSON = {"Accept": "application/json"}


async def walker(client: Client, db: Database, *site_list: Site) -> tuple[str, Actor]:
    """A harbour master signed in on the client; their CSRF token and the same person as an
    Actor (for rounds made through the service)."""
    client.cookies.clear()
    account = await make_staff(db, "harbour_master", [s.slug for s in site_list])
    csrf = await sign_in(client, account.email, account.password)
    actor = Actor(
        kind="user", id=account.user_id, name=account.email, role="harbour_master",
        site_ids=frozenset(s.id for s in site_list),
    )  # fmt: skip
    return csrf, actor


async def start(client: Client, site: Site, csrf: str) -> int:
    answer = await client.post(
        f"/admin/sites/{site.slug}/round/start", data={"_csrf_token": csrf}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/admin/sites/{site.slug}/round"
    page = await client.get(f"/admin/sites/{site.slug}/round")
    match = re.search(r'name="round" value="(\d+)"', page.text)
    assert match, page.text
    return int(match.group(1))


async def post_mark(
    client: Client, site: Site, csrf: str, round_id: int, visit_id: int, status: str = "seen",
    *, key: str | None = None, marked_at: str = "", as_json: bool = True,
):  # fmt: skip
    return await client.post(
        f"/admin/sites/{site.slug}/round/marks",
        data={
            "_csrf_token": csrf,
            "round": str(round_id),
            "visit": str(visit_id),
            "status": status,
            "idempotency_key": key or secrets.token_urlsafe(18),
            "marked_at": marked_at,
        },
        headers=JSON if as_json else {},
        follow_redirects=False,
    )


async def marks_of(db: Database, visit_id: int) -> list[RoundMark]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(RoundMark).where(RoundMark.visit_id == visit_id).order_by(RoundMark.id)
            )
        )


# --- the page --------------------------------------------------------------------------------


async def test_a_round_shows_the_boats_present_by_pier_and_berth_with_numbers_as_numbers(
    client: Client, db: Database
):
    site = await new_site(db)
    for berth, name in (("B3", "Bries"), ("A12", "Albatros"), (None, "Zonder"), ("A9", "Aal")):
        await add_visit(db, site, berth=berth, vessel_name=name)
    await add_visit(db, site, kind="vehicle")  # the car park is not on the round
    await add_visit(
        db, site, vessel_name="Vertrokken", berth="A1", departed=NOW - timedelta(hours=1)
    )
    csrf, _actor = await walker(client, db, site)

    before = await client.get(f"/admin/sites/{site.slug}/round")
    assert "Start the round" in before.text
    await start(client, site, csrf)
    page = await client.get(f"/admin/sites/{site.slug}/round")

    shown = re.findall(r'<a href="/admin/visits/\d+">([^<]+)</a>', page.text)
    assert shown == ["Aal", "Albatros", "Bries", "Zonder"]
    assert "Pier A" in page.text
    assert "Pier B" in page.text
    assert "Without a berth" in page.text
    assert "Vertrokken" not in page.text
    assert page.headers["cache-control"] == "no-store"
    started = await events(db, "round_started", site)
    viewed = await events(db, "round_viewed", site)
    assert len(started) == 1
    assert len(viewed) == 2  # after the start, and now
    assert len(json.loads(viewed[-1].object_ids)) == 4


async def test_a_business_park_has_no_round_and_a_stranger_finds_no_site(
    client: Client, db: Database
):
    marina, park, other = (
        await new_site(db),
        await new_site(db, "business_park"),
        await new_site(db),
    )
    await walker(client, db, marina, park)

    assert (await client.get(f"/admin/sites/{park.slug}/round")).status_code == 404
    assert (await client.get(f"/admin/sites/{other.slug}/round")).status_code == 404
    assert (await client.get(f"/admin/sites/{marina.slug}/round")).status_code == 200


# --- marks -----------------------------------------------------------------------------------


async def test_a_mark_sent_twice_with_its_key_is_written_once_and_audited_once(
    client: Client, db: Database
):
    site = await new_site(db)
    visit = await add_visit(db, site, berth="A1")
    csrf, _actor = await walker(client, db, site)
    round_id = await start(client, site, csrf)
    key = secrets.token_urlsafe(18)

    first = await post_mark(client, site, csrf, round_id, visit.id, "missing", key=key)
    again = await post_mark(client, site, csrf, round_id, visit.id, "missing", key=key)

    assert first.status_code == again.status_code == 200
    assert first.json()["replayed"] is False
    assert again.json() == {**first.json(), "replayed": True}
    assert [m.status for m in await marks_of(db, visit.id)] == ["missing"]
    marked = await events(db, "round_marked_missing", site)
    assert [(e.object_type, e.object_id) for e in marked] == [("visit", visit.id)]


async def test_a_key_sent_again_with_another_boat_is_refused_and_nothing_is_written(
    client: Client, db: Database
):
    site = await new_site(db)
    one, two = await add_visit(db, site, berth="A1"), await add_visit(db, site, berth="A2")
    csrf, _actor = await walker(client, db, site)
    round_id = await start(client, site, csrf)
    key = secrets.token_urlsafe(18)
    await post_mark(client, site, csrf, round_id, one.id, key=key)

    reused = await post_mark(client, site, csrf, round_id, two.id, key=key)

    assert reused.status_code == 409
    assert "idempotency_key" in reused.json()["errors"]
    assert await marks_of(db, two.id) == []


async def test_a_plain_form_mark_goes_back_to_the_boat_on_the_page(client: Client, db: Database):
    site = await new_site(db)
    visit = await add_visit(db, site, berth="C7", vessel_name="Kwikstaart")
    csrf, _actor = await walker(client, db, site)
    round_id = await start(client, site, csrf)

    answer = await post_mark(client, site, csrf, round_id, visit.id, "seen", as_json=False)

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/sites/{site.slug}/round#boat-{visit.id}"
    page = await client.get(f"/admin/sites/{site.slug}/round")
    assert f'id="boat-{visit.id}" class="round-boat mark-seen"' in page.text


async def test_a_boat_of_another_site_cannot_be_marked_on_this_sites_round(
    client: Client, db: Database
):
    site, other = await new_site(db), await new_site(db)
    stranger = await add_visit(db, other, berth="A1")
    csrf, _actor = await walker(client, db, site)
    round_id = await start(client, site, csrf)

    answer = await post_mark(client, site, csrf, round_id, stranger.id)
    elsewhere = await post_mark(client, other, csrf, round_id, stranger.id)

    assert answer.status_code == 422
    assert elsewhere.status_code == 404  # not one of the walker's sites
    assert await marks_of(db, stranger.id) == []


async def test_nobody_marks_on_a_round_another_harbour_master_walks(client: Client, db: Database):
    site = await new_site(db)
    visit = await add_visit(db, site, berth="A1")
    csrf, _actor = await walker(client, db, site)
    theirs = await start(client, site, csrf)
    csrf, _actor = await walker(client, db, site)

    answer = await post_mark(client, site, csrf, theirs, visit.id)

    assert answer.status_code == 409
    assert "round" in answer.json()["errors"]
    assert await marks_of(db, visit.id) == []


async def test_a_mark_kept_on_the_phone_keeps_its_time_within_the_round(
    client: Client, db: Database, clock: FrozenClock
):
    site = await new_site(db)
    visits = [await add_visit(db, site, berth=f"A{n}") for n in range(3)]
    csrf, _actor = await walker(client, db, site)
    round_id = await start(client, site, csrf)
    clock.advance(timedelta(minutes=25))  # the signal came back 25 minutes on
    made = (NOW + timedelta(minutes=10)).isoformat()

    for visit, at in zip(
        visits, (made, "2999-01-01T00:00:00Z", "2000-01-01T00:00:00Z"), strict=True
    ):
        answer = await post_mark(client, site, csrf, round_id, visit.id, marked_at=at)
        assert answer.status_code == 200, answer.text

    times = [(await marks_of(db, v.id))[0].marked_at for v in visits]
    assert times == [NOW + timedelta(minutes=10), clock.now(), NOW]
    assert (await marks_of(db, visits[0].id))[0].received_at == clock.now()


# --- a boat found on the round ------------------------------------------------------------------


async def test_a_boat_found_at_a_berth_becomes_a_walk_in_of_source_round_once(
    client: Client, db: Database
):
    site = await new_site(db)
    csrf, _actor = await walker(client, db, site)
    round_id = await start(client, site, csrf)
    form = {
        "_csrf_token": csrf, "round": str(round_id), "idempotency_key": secrets.token_urlsafe(18),
        "vessel_name": "Onbekende Gast", "registration": "", "mmsi": "244123456", "berth": "D4",
    }  # fmt: skip

    first = await client.post(f"/admin/sites/{site.slug}/round/found", data=form, headers=JSON)
    again = await client.post(f"/admin/sites/{site.slug}/round/found", data=form, headers=JSON)

    assert first.status_code == again.status_code == 200, first.text
    assert again.json()["replayed"] is True
    assert again.json()["visit"] == first.json()["visit"]
    async with db.read() as session:
        found = list(await session.scalars(select(Visit).where(Visit.site_id == site.id)))
    assert len(found) == 1
    visit = found[0]
    assert (visit.source, visit.kind, visit.vessel_name, visit.mmsi, visit.berth) == (
        "round", "vessel", "Onbekende Gast", "244123456", "D4",
    )  # fmt: skip
    assert (visit.guest_name, visit.residence, visit.arrived_at) == (
        rounds.UNKNOWN, rounds.UNKNOWN, NOW.replace(second=0),
    )  # fmt: skip
    [mark] = await marks_of(db, visit.id)
    assert (mark.status, mark.found, mark.round_id) == ("seen", True, round_id)
    [created] = await events(db, "visit_created", site)
    assert (await event_details(db, created))["source"] == "round"
    [marked] = await events(db, "round_marked_seen", site)
    assert "Onbekende" not in marked.details  # typed on the pier: in the detail record only
    assert (await event_details(db, marked))["vessel_name"] == "Onbekende Gast"
    page = await client.get(f"/admin/visits/{visit.id}")
    assert "Found on the night round" in page.text


async def test_a_found_boat_without_berth_or_identity_is_refused_beside_its_fields(
    client: Client, db: Database
):
    site = await new_site(db)
    csrf, _actor = await walker(client, db, site)
    round_id = await start(client, site, csrf)
    form = {
        "_csrf_token": csrf, "round": str(round_id), "idempotency_key": secrets.token_urlsafe(18),
        "vessel_name": "Naamloos", "registration": "", "mmsi": "", "berth": "",
    }  # fmt: skip

    answer = await client.post(f"/admin/sites/{site.slug}/round/found", data=form)

    assert answer.status_code == 422
    assert 'id="err-berth"' in answer.text
    assert 'id="err-registration"' in answer.text
    assert 'value="Naamloos"' in answer.text
    async with db.read() as session:
        assert (
            await session.scalar(select(func.count(Visit.id)).where(Visit.site_id == site.id)) == 0
        )


# --- the end of a round ---------------------------------------------------------------------------


async def test_a_finished_round_keeps_start_end_and_walker_and_takes_late_marks_made_before_it(
    client: Client, db: Database, clock: FrozenClock
):
    site = await new_site(db)
    kept, late = await add_visit(db, site, berth="A1"), await add_visit(db, site, berth="A2")
    csrf, actor = await walker(client, db, site)
    round_id = await start(client, site, csrf)
    await post_mark(client, site, csrf, round_id, kept.id, "seen")
    clock.advance(timedelta(minutes=30))

    finish = await client.post(
        f"/admin/sites/{site.slug}/round/finish",
        data={"_csrf_token": csrf, "round": str(round_id)},
        follow_redirects=False,
    )
    assert finish.status_code == 303
    assert finish.headers["location"] == f"/admin/sites/{site.slug}/round?finished=1"
    clock.advance(timedelta(minutes=1))
    made_before_the_end = (NOW + timedelta(minutes=20)).isoformat()
    taken = await post_mark(
        client, site, csrf, round_id, late.id, "missing", marked_at=made_before_the_end
    )
    refused = await post_mark(client, site, csrf, round_id, late.id, "seen")

    assert taken.status_code == 200
    assert refused.status_code == 409
    async with db.read() as session:
        walked = await session.get(NightRound, round_id)
    assert walked is not None
    assert (walked.started_at, walked.ended_at, walked.walked_by_id, walked.walked_by) == (
        NOW, NOW + timedelta(minutes=30), actor.id, actor.name,
    )  # fmt: skip
    [finished] = await events(db, "round_finished", site)
    assert (finished.object_type, finished.object_id) == ("round", round_id)
    assert '"seen":1' in finished.details
    page = await client.get(f"/admin/sites/{site.slug}/round?finished=1")
    assert "The round is finished and saved." in page.text
    assert "Start the round" in page.text
    assert actor.name in page.text  # the last rounds name who walked them


# --- what the rounds tell Tonight and a visit -----------------------------------------------


async def test_a_boat_not_there_on_two_rounds_in_a_row_is_listed_on_tonight_for_check_out(
    client: Client, db: Database, clock: FrozenClock
):
    site = await new_site(db)
    gone = await add_visit(db, site, berth="A1", vessel_name="Spookschip")
    once = await add_visit(db, site, berth="A2", vessel_name="Eenmaal")
    back = await add_visit(db, site, berth="A3", vessel_name="Teruggekeerd")
    _csrf, actor = await walker(client, db, site)
    # Each night's marks for (gone, once, back).
    nights = (("missing", "seen", "missing"), ("missing", "missing", "seen"))
    for statuses in nights:
        walked = await rounds.start_round(db, actor, site.id, now=clock.now())
        for visit, status in zip((gone, once, back), statuses, strict=True):
            await rounds.mark(
                db, actor, site.id, round_id=walked.id, visit_id=visit.id, status=status,
                key=secrets.token_urlsafe(18), now=clock.now(),
            )  # fmt: skip
        await rounds.finish_round(db, actor, site.id, walked.id, now=clock.now())
        clock.advance(timedelta(days=1))
    # The third night's round has not reached the boats yet: it says nothing about them.
    await rounds.start_round(db, actor, site.id, now=clock.now())
    await walker(client, db, site)  # a day later: signed in afresh

    tonight = await client.get(f"/admin/sites/{site.slug}/tonight")
    listed = tonight.text.split("Not seen on the last two night rounds")[1].split("</table>")[0]

    assert "Spookschip" in listed
    assert "Eenmaal" not in listed
    assert "Teruggekeerd" not in listed
    page = await client.get(f"/admin/visits/{gone.id}")
    assert "Not seen on the round of 2026-07-14 21:00, 2026-07-15 21:00." in page.text
    missed_once = await client.get(f"/admin/visits/{once.id}")
    assert "Not seen on the round of 2026-07-15 21:00." in missed_once.text
    seen_since = await client.get(f"/admin/visits/{back.id}")
    assert "Not seen on the round" not in seen_since.text


async def test_tonight_lists_no_boat_for_check_out_without_rounds(client: Client, db: Database):
    site = await new_site(db)
    await add_visit(db, site, berth="A1")
    await walker(client, db, site)

    tonight = await client.get(f"/admin/sites/{site.slug}/tonight")

    assert tonight.status_code == 200
    assert "Not seen on the last two night rounds" not in tonight.text


async def test_the_round_page_and_its_forms_carry_a_csrf_token_and_fresh_keys(
    client: Client, db: Database
):
    site = await new_site(db)
    await add_visit(db, site, berth="A1")
    await add_visit(db, site, berth="A2")
    csrf, _actor = await walker(client, db, site)
    await start(client, site, csrf)

    page = await client.get(f"/admin/sites/{site.slug}/round")

    assert csrf_from(page.text)
    keys = re.findall(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert len(keys) == 3
    assert len(set(keys)) == 3
