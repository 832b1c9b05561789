"""The register's pages through HTTP: tonight, search, a visit, corrections, walk-ins, print."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import Site, Visit
from tests.factories import (
    SUMMER_EVENING,
    add_visit,
    event_details,
    events,
    make_staff,
    new_site,
    reload,
)
from tests.pages import sign_in

Client = AsyncTestClient[Litestar]
NOW = SUMMER_EVENING  # 21:00 in Amsterdam


async def signed_in(client: Client, db: Database, role: str, *site_list: Site) -> str:
    """Sign the client in as a new account of `role` on the sites; returns the CSRF token."""
    staff = await make_staff(db, role, [s.slug for s in site_list])
    return await sign_in(client, staff.email, staff.password)


def visit_links(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/admin/visits/(\d+)"', html)]


def more_link(html: str) -> str | None:
    match = re.search(r'<tr id="register-more">.*?href="([^"]+)"', html, re.S)
    return match.group(1).replace("&amp;", "&") if match else None


# --- tonight -----------------------------------------------------------------------------


async def test_tonight_shows_who_is_present_by_kind(client: Client, db: Database):
    site = await new_site(db)
    await add_visit(db, site, guest_name="Anna Visser")
    await add_visit(db, site, kind="vehicle", guest_name="Bert Kok", plate="GX-123-B")
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/tonight")

    assert page.status_code == 200
    assert "Anna Visser" in page.text
    assert "GX-123-B" in page.text
    assert re.search(r'id="count-present">2<', page.text)
    assert re.search(r'id="count-vessel">1<', page.text)
    assert re.search(r'id="count-vehicle">1<', page.text)
    assert 'hx-trigger="every 15s"' in page.text
    assert "<html" in page.text


async def test_tonight_answers_htmx_polling_with_the_board_alone(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "security", site)
    await add_visit(db, site, guest_name="Late Arrival")

    board = await client.get(
        f"/admin/sites/{site.slug}/tonight",
        headers={"HX-Request": "true", "HX-Target": "tonight-board"},
    )

    assert board.status_code == 200
    assert board.text.lstrip().startswith("<section")
    assert "<html" not in board.text
    assert "Late Arrival" in board.text
    assert 'hx-trigger="every 15s"' in board.text
    assert len(await events(db, "tonight_viewed", site)) == 1


async def test_tonight_of_another_site_is_not_found(client: Client, db: Database):
    mine, theirs = await new_site(db), await new_site(db)
    await signed_in(client, db, "harbour_master", mine)

    answer = await client.get(f"/admin/sites/{theirs.slug}/tonight")

    assert answer.status_code == 404


async def test_an_analyst_may_not_see_tonight(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "analyst", site)

    answer = await client.get(f"/admin/sites/{site.slug}/tonight")

    assert answer.status_code == 403


# --- the register ------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["nl 123 ab", "NL-123-AB", "de vries", "DEVRIES"])
async def test_the_register_search_ignores_case_spaces_and_dashes(
    client: Client, db: Database, q: str
):
    site = await new_site(db)
    boat = await add_visit(db, site)
    other = await add_visit(
        db, site, guest_name="Piet Jansen", vessel_name="Eend", registration="X"
    )
    await signed_in(client, db, "security", site)

    page = await client.get(f"/admin/sites/{site.slug}/register", params={"q": q})

    assert page.status_code == 200
    assert visit_links(page.text) == [boat.id]
    assert other.id not in visit_links(page.text)


async def test_the_register_serves_the_results_partial_to_htmx(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    await signed_in(client, db, "harbour_master", site)

    partial = await client.get(
        f"/admin/sites/{site.slug}/register",
        params={"q": "zeemeeuw"},
        headers={"HX-Request": "true", "HX-Target": "register-results"},
    )

    assert partial.status_code == 200
    assert partial.text.lstrip().startswith('<div id="register-results"')
    assert "<form" not in partial.text
    assert visit_links(partial.text) == [boat.id]


async def test_a_history_restore_gets_the_whole_page(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(
        f"/admin/sites/{site.slug}/register",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )

    assert "<html" in page.text


async def test_following_more_returns_every_visit_exactly_once(client: Client, db: Database):
    site = await new_site(db)
    made = [
        await add_visit(db, site, arrived=NOW - timedelta(hours=i // 4), guest_name=f"Gast {i}")
        for i in range(120)
    ]
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/register")
    seen = visit_links(page.text)
    link = more_link(page.text)
    rounds = 0
    while link:
        rows = await client.get(link, headers={"HX-Request": "true", "HX-Target": "register-more"})
        assert rows.status_code == 200
        assert "<table" not in rows.text
        seen += visit_links(rows.text)
        link = more_link(rows.text)
        rounds += 1

    assert rounds == 2  # 50 + 50 + 20
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == {v.id for v in made}


async def test_the_more_link_keeps_the_filters_and_works_without_javascript(
    client: Client, db: Database
):
    site = await new_site(db)
    cars = [
        await add_visit(db, site, kind="vehicle", plate=f"AB-{i:02}-CD", guest_name=f"Rijder {i}")
        for i in range(55)
    ]
    await add_visit(db, site, registration="AB-1")  # a boat that matches the text, not the kind
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/register?kind=vehicle&q=ab")
    link = more_link(page.text)
    assert link
    assert "kind=vehicle" in link
    assert "q=ab" in link
    rest = await client.get(link)

    assert "<html" in rest.text
    seen = visit_links(page.text) + visit_links(rest.text)
    assert sorted(seen) == sorted(c.id for c in cars)


async def test_the_register_filters_by_status(client: Client, db: Database):
    site = await new_site(db)
    here = await add_visit(db, site, expected=NOW + timedelta(days=1))
    gone = await add_visit(db, site, departed=NOW - timedelta(hours=1))
    await signed_in(client, db, "harbour_master", site)

    present = await client.get(f"/admin/sites/{site.slug}/register?status=present")
    departed = await client.get(f"/admin/sites/{site.slug}/register?status=departed")

    assert visit_links(present.text) == [here.id]
    assert visit_links(departed.text) == [gone.id]


async def test_a_bad_date_in_the_register_search_is_shown_next_to_its_field(
    client: Client, db: Database
):
    site = await new_site(db)
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/register?from=14-07-2026")

    assert page.status_code == 400
    assert re.search(r'id="err-from">[^<]+<', page.text)
    assert 'value="14-07-2026"' in page.text


async def test_the_register_is_audited_with_the_visits_shown(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    await signed_in(client, db, "security", site)

    await client.get(f"/admin/sites/{site.slug}/register?q=vries")

    [event] = await events(db, "register_viewed", site)
    assert json.loads(event.object_ids) == [boat.id]
    assert (await event_details(db, event))["filters"] == {"q": "vries"}


# --- a visit -----------------------------------------------------------------------------


async def test_the_visit_page_shows_every_field_in_the_sites_time(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(
        db,
        site,
        arrived=datetime(2026, 7, 14, 16, 5, tzinfo=UTC),
        mmsi="244123456",
        flag="NL",
        berth="A12",
        phone="+31 6 12345678",
    )
    await signed_in(client, db, "security", site)

    page = await client.get(f"/admin/visits/{boat.id}")

    assert page.status_code == 200
    for text in ("Jan de Vries", "Hoorn", "Zeemeeuw", "NL-123-AB", "244123456", "A12"):
        assert text in page.text
    assert "2026-07-14 18:05" in page.text  # 16:05 UTC is 18:05 in Amsterdam
    assert boat.reference in page.text
    # Security may look, not change.
    assert f"/admin/visits/{boat.id}/correct" not in page.text
    assert f"/admin/visits/{boat.id}/checkout" not in page.text
    [event] = await events(db, "visit_viewed", site)
    assert event.object_id == boat.id


async def test_a_harbour_master_of_another_site_gets_404_for_a_visit(client: Client, db: Database):
    mine, theirs = await new_site(db), await new_site(db)
    boat = await add_visit(db, theirs)
    csrf = await signed_in(client, db, "harbour_master", mine)

    assert (await client.get(f"/admin/visits/{boat.id}")).status_code == 404
    assert (await client.get(f"/admin/visits/{boat.id}/correct")).status_code == 404
    answer = await client.post(
        f"/admin/visits/{boat.id}/correct",
        data={"_csrf_token": csrf, "persons": "5", "reason": "probe"},
        follow_redirects=False,
    )
    assert answer.status_code == 404
    answer = await client.post(
        f"/admin/visits/{boat.id}/checkout", data={"_csrf_token": csrf}, follow_redirects=False
    )
    assert answer.status_code == 404
    stored = await reload(db, boat.id)
    assert (stored.persons, stored.departed_at) == (2, None)


async def test_security_can_view_a_visit_but_not_correct_it(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    csrf = await signed_in(client, db, "security", site)

    assert (await client.get(f"/admin/visits/{boat.id}")).status_code == 200
    assert (await client.get(f"/admin/visits/{boat.id}/correct")).status_code == 403
    for path, data in (
        ("correct", {"persons": "5", "reason": "try"}),
        ("checkout", {}),
        ("notes", {"text": "hello"}),
    ):
        answer = await client.post(
            f"/admin/visits/{boat.id}/{path}",
            data={"_csrf_token": csrf, **data},
            follow_redirects=False,
        )
        assert answer.status_code == 403, path
    assert (await reload(db, boat.id)).persons == 2


async def test_the_correction_form_is_prefilled(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site, arrived=datetime(2026, 7, 14, 16, 5, 33, tzinfo=UTC))
    await signed_in(client, db, "harbour_master", site)

    form = await client.get(f"/admin/visits/{boat.id}/correct")

    assert form.status_code == 200
    assert 'name="guest_name" value="Jan de Vries"' in form.text
    assert 'name="arrived_at" value="2026-07-14T18:05"' in form.text
    assert 'name="reason"' in form.text
    assert 'name="plate"' not in form.text  # a boat has no plate


def correction_form(page_html: str) -> dict[str, str]:
    """What a browser sends back from the correction form, untouched."""
    values = dict(
        re.findall(r'<input type="[^"]+" id="f-\w+" name="(\w+)" value="([^"]*)"', page_html)
    )
    values.update(re.findall(r'name="(_csrf_token)" value="([^"]+)"', page_html))
    for name, options in re.findall(
        r'<select id="f-\w+" name="(\w+)"[^>]*>(.*?)</select>', page_html, re.S
    ):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        values[name] = chosen.group(1) if chosen else ""
    for name, text in re.findall(
        r'<textarea id="f-\w+" name="(\w+)"[^>]*>([^<]*)</textarea>', page_html
    ):
        values[name] = text
    return {k: v.replace("&#39;", "'").replace("&amp;", "&") for k, v in values.items()}


async def test_a_correction_without_a_reason_shows_the_error_beside_the_field_and_keeps_input(
    client: Client, db: Database
):
    site = await new_site(db)
    boat = await add_visit(db, site)
    await signed_in(client, db, "harbour_master", site)
    form = correction_form((await client.get(f"/admin/visits/{boat.id}/correct")).text)
    form.update(guest_name="Jan de Vries-Bakker", reason="")

    answer = await client.post(f"/admin/visits/{boat.id}/correct", data=form)

    assert answer.status_code == 422
    assert re.search(r'id="err-reason">Please give the reason', answer.text)
    assert 'value="Jan de Vries-Bakker"' in answer.text
    assert (await reload(db, boat.id)).guest_name == "Jan de Vries"
    assert await events(db, "visit_corrected", site) == []


async def test_a_correction_is_saved_audited_and_shown_in_the_history(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    await signed_in(client, db, "harbour_master", site)
    form = correction_form((await client.get(f"/admin/visits/{boat.id}/correct")).text)
    form.update(residence="Enkhuizen", persons="3", reason="Guest phoned: typo")

    answer = await client.post(
        f"/admin/visits/{boat.id}/correct", data=form, follow_redirects=False
    )

    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/admin/visits/{boat.id}?saved=")
    stored = await reload(db, boat.id)
    assert (stored.residence, stored.persons) == ("Enkhuizen", 3)
    assert stored.arrived_at == boat.arrived_at
    [event] = await events(db, "visit_corrected", site)
    assert json.loads(event.details) == {}  # personal: all in the detail record
    assert await event_details(db, event) == {
        "reason": "Guest phoned: typo",
        "before": {"residence": "Hoorn", "persons": 2},
        "after": {"residence": "Enkhuizen", "persons": 3},
    }
    page = await client.get(f"/admin/visits/{boat.id}")
    assert "Guest phoned: typo" in page.text
    assert re.search(r"<del>Hoorn</del> → <ins>Enkhuizen</ins>", page.text)
    assert 'id="saved"' not in page.text


async def test_the_page_after_a_correction_says_what_changed(
    client: Client, db: Database, clock: FrozenClock
):
    site = await new_site(db)
    boat = await add_visit(db, site)
    await signed_in(client, db, "harbour_master", site)
    url = f"/admin/visits/{boat.id}/correct"
    form = correction_form((await client.get(url)).text)
    form.update(residence="Enkhuizen", reason="Guest phoned: typo")

    saved = await client.post(url, data=form, follow_redirects=True)
    clock.advance(timedelta(minutes=1))
    unchanged = await client.post(url, data=form, follow_redirects=True)

    message = re.search(
        r'<div class="banner ok" role="status" id="saved">(.*?)</div>', saved.text, re.S
    )
    assert message
    assert "Saved: 1 field changed." in message.group(1)
    assert re.search(r"<del>Hoorn</del> → <ins>Enkhuizen</ins>", message.group(1))
    assert "Nothing was changed" in unchanged.text


async def test_an_invalid_correction_keeps_what_was_typed(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    await signed_in(client, db, "harbour_master", site)
    form = correction_form((await client.get(f"/admin/visits/{boat.id}/correct")).text)
    form.update(mmsi="12345", reason="MMSI from the radio")

    answer = await client.post(f"/admin/visits/{boat.id}/correct", data=form)

    assert answer.status_code == 422
    assert re.search(r'id="err-mmsi">An MMSI number has 9 digits', answer.text)
    assert re.search(r'name="mmsi"[^>]*aria-invalid="true"[^>]*value="12345"', answer.text)
    assert "MMSI from the radio" in answer.text


async def test_an_htmx_correction_is_answered_with_a_client_redirect(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    csrf = await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/visits/{boat.id}/correct",
        data={"persons": "4"} | {"reason": "recount", "_csrf_token": csrf},
        headers={"HX-Request": "true"},
    )

    assert answer.headers["HX-Redirect"].startswith(f"/admin/visits/{boat.id}?saved=")


async def test_a_correction_without_the_csrf_token_is_refused(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/visits/{boat.id}/correct", data={"persons": "4", "reason": "x"}
    )

    assert answer.status_code == 403
    assert (await reload(db, boat.id)).persons == 2


async def test_staff_check_a_visit_out(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    csrf = await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/visits/{boat.id}/checkout", data={"_csrf_token": csrf}, follow_redirects=False
    )

    assert answer.status_code == 303
    assert (await reload(db, boat.id)).departed_at == NOW
    page = await client.get(f"/admin/visits/{boat.id}")
    assert "Checked out" in page.text
    assert f"/admin/visits/{boat.id}/checkout" not in page.text


async def test_a_note_is_added_and_shown(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    csrf = await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/visits/{boat.id}/notes",
        data={"_csrf_token": csrf, "text": "Paid for <two> nights"},
        follow_redirects=False,
    )

    assert answer.status_code == 303
    page = await client.get(f"/admin/visits/{boat.id}")
    assert "Paid for &lt;two&gt; nights" in page.text
    assert len(await events(db, "visit_note_added", site)) == 1


async def test_an_empty_note_is_refused_beside_its_field(client: Client, db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site)
    csrf = await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/visits/{boat.id}/notes", data={"_csrf_token": csrf, "text": "   "}
    )

    assert answer.status_code == 422
    assert re.search(r'id="err-text">Please write a note', answer.text)


# --- walk-in -----------------------------------------------------------------------------


async def test_the_walk_in_form_proposes_now_as_the_arrival(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "harbour_master", site)

    form = await client.get(f"/admin/sites/{site.slug}/walk-in?kind=vehicle")

    assert form.status_code == 200
    assert 'name="arrived_at" value="2026-07-14T21:00"' in form.text
    assert 'name="kind" value="vehicle"' in form.text
    assert 'name="plate"' in form.text
    assert 'name="vessel_name"' not in form.text


async def test_a_walk_in_from_last_night_is_entered_in_the_morning(client: Client, db: Database):
    site = await new_site(db)
    csrf = await signed_in(client, db, "harbour_master", site)
    form = await client.get(f"/admin/sites/{site.slug}/walk-in?kind=vessel")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.text).group(1)
    data = {
        "_csrf_token": csrf,
        "idempotency_key": key,
        "kind": "vessel",
        "vessel_name": "Albatros",
        "registration": "DE-4711",
        "guest_name": "Greta Berger",
        "residence": "Hamburg",
        "persons": "2",
        "arrived_at": "2026-07-13T23:40",
        "expected_departure_at": "2026-07-15T10:00",
    }

    answer = await client.post(
        f"/admin/sites/{site.slug}/walk-in", data=data, follow_redirects=False
    )
    again = await client.post(
        f"/admin/sites/{site.slug}/walk-in", data=data, follow_redirects=False
    )

    assert answer.status_code == 303
    match = re.fullmatch(r"/admin/visits/(\d+)\?new=1", answer.headers["location"])
    assert match
    assert again.headers["location"] == answer.headers["location"]
    visit = await reload(db, int(match.group(1)))
    assert (visit.source, visit.site_id) == ("staff", site.id)
    assert visit.arrived_at == datetime(2026, 7, 13, 21, 40, tzinfo=UTC)
    page = await client.get(answer.headers["location"])
    assert "The visit has been entered." in page.text
    assert "Entered" in page.text


@pytest.mark.parametrize(
    ("found", "kind", "identifier", "recorded"),
    [
        ("camera", "vehicle", {"plate": "22-BBB-2"}, "camera"),
        ("ais", "vessel", {"mmsi": "244123456", "vessel_name": "Eend"}, "ais"),
        ("rumour", "vehicle", {"plate": "22-BBB-2"}, None),
    ],
)
async def test_a_walk_in_from_tonight_s_sensor_lists_says_in_the_audit_which_sensor_found_it(
    client: Client, db: Database, found: str, kind: str, identifier: dict, recorded: str | None
):
    site = await new_site(db)
    csrf = await signed_in(client, db, "harbour_master", site)
    data = {
        "_csrf_token": csrf, "kind": kind, "found": found, "guest_name": "Kees",
        "residence": "Hoorn", "persons": "1", "arrived_at": "2026-07-14T01:10",
        "expected_departure_at": "2026-07-15T10:00", **identifier,
    }  # fmt: skip

    answer = await client.post(
        f"/admin/sites/{site.slug}/walk-in", data=data, follow_redirects=False
    )

    assert answer.status_code == 303
    (created,) = await events(db, "visit_created", site)
    assert (await event_details(db, created)).get("found") == recorded


async def test_a_walk_in_with_errors_shows_them_beside_the_fields(client: Client, db: Database):
    site = await new_site(db)
    csrf = await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/sites/{site.slug}/walk-in",
        data={
            "_csrf_token": csrf,
            "kind": "vehicle",
            "guest_name": "Kees",
            "residence": "",
            "plate": "",
            "persons": "1",
            "arrived_at": "2026-07-01T10:00",
            "expected_departure_at": "2026-07-15T10:00",
        },
    )

    assert answer.status_code == 422
    for name in ("residence", "plate", "arrived_at"):
        assert re.search(rf'id="err-{name}">[^<]+<', answer.text), name
    assert 'name="guest_name" value="Kees"' in answer.text
    async with db.read() as session:
        assert await session.scalar(select(Visit).where(Visit.site_id == site.id)) is None


async def test_security_may_not_enter_walk_ins(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "security", site)

    assert (await client.get(f"/admin/sites/{site.slug}/walk-in")).status_code == 403


# --- police print ------------------------------------------------------------------------


def header_cells(html: str) -> list[str]:
    table = re.search(r'<table class="data print-table">.*?</thead>', html, re.S)
    assert table
    return re.findall(r'<th scope="col">([^<]+)</th>', table.group(0))


async def test_the_police_print_has_the_legal_columns_first_and_is_audited(
    client: Client, db: Database
):
    site = await new_site(db)
    boat = await add_visit(db, site, mmsi="244123456", flag="NL", id_document_type="passport")
    car = await add_visit(db, site, kind="vehicle", plate="GX-123-B", plate_country="DE")
    await add_visit(db, site, departed=NOW - timedelta(hours=1), guest_name="Already Gone")
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/print")

    assert page.status_code == 200
    assert header_cells(page.text)[:5] == [
        "Name",
        "Place of residence",
        "Arrival",
        "Departure",
        "ID document type",
    ]
    cells = header_cells(page.text)
    assert cells.index("Boat") < cells.index("MMSI") < cells.index("Licence plate")
    assert cells.index("Licence plate") < cells.index("Persons")
    assert "Passport" in page.text
    assert "GX-123-B" in page.text
    assert "Already Gone" not in page.text
    assert "/static/print.css" in page.text
    assert "data-print" in page.text
    [event] = await events(db, "register_printed", site)
    assert sorted(json.loads(event.object_ids)) == sorted([boat.id, car.id])


async def test_the_police_print_of_a_period(client: Client, db: Database):
    site = await new_site(db)
    await add_visit(
        db,
        site,
        guest_name="Juni Gast",
        arrived=datetime(2026, 6, 10, 18, 0, tzinfo=UTC),
        departed=datetime(2026, 6, 11, 8, 0, tzinfo=UTC),
    )
    await add_visit(db, site, guest_name="Juli Gast")
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/print?from=2026-06-01&to=2026-06-30")

    assert "Juni Gast" in page.text
    assert "Juli Gast" not in page.text
    assert "2026-06-01 – 2026-06-30" in page.text


async def test_the_police_print_refuses_a_period_that_ends_before_it_starts(
    client: Client, db: Database
):
    site = await new_site(db)
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/print?from=2026-07-10&to=2026-07-01")

    assert page.status_code == 400
    assert await events(db, "register_printed", site) == []


async def test_security_may_not_print_the_register(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "security", site)

    assert (await client.get(f"/admin/sites/{site.slug}/print")).status_code == 403
