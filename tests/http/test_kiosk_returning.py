"""The kiosk for a visitor who comes back: already here (extend, check out), or here again
(one tap), the check-out that asks first, and the shorter form around them (issue 15)."""

from __future__ import annotations

import re
from datetime import timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import Visit
from nightreg.services import sites
from tests.factories import PointRef, audit_events, event_details, local
from tests.pages import hidden, open_form, yacht

Client = AsyncTestClient[Litestar]


async def visits_at(db: Database, point: PointRef) -> list[Visit]:
    info = await sites.point_by_token(db, point.token)
    assert info is not None
    async with db.read() as session:
        found = await session.scalars(
            select(Visit).where(Visit.site_id == info.site_id).order_by(Visit.id)
        )
        return list(found)


async def check_in_remembered(client: Client, point: PointRef, **overrides: str) -> str:
    """Check a yacht in with "remember me"; the private link's path."""
    form = {**await open_form(client, point), **yacht(**overrides), "remember": "on"}
    answer = await client.post(point.url, data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"]).split("?")[0]


def csrf(html: str) -> str:
    return hidden(html, "_csrf_token")


# --- the same visitor, still here ---------------------------------------------------------------


async def test_a_remembered_visitor_who_is_still_here_is_offered_extend_and_check_out(
    client: Client, db: Database, marina: PointRef
):
    link = await check_in_remembered(client, marina)

    start = await client.get(marina.url)
    assert "You are already checked in until Thu 16 Jul, 11:00" in start.text
    assert f'href="{link}/extend"' in start.text
    assert f'href="{link}/checkout"' in start.text
    # Not the one-tap check-in of the same boat: that would make it present twice.
    assert "/again" not in start.text

    form = await client.get(f"{marina.url}?kind=vessel")
    assert "You are already checked in until" in form.text
    assert 'name="guest_name"' not in form.text


async def test_the_same_boat_sent_again_from_the_same_phone_makes_no_second_visit(
    client: Client, db: Database, marina: PointRef
):
    link = await check_in_remembered(client, marina)
    # A form opened before, or asked for on purpose ("register another boat").
    form = await client.get(f"{marina.url}?kind=vessel&another=1")
    assert re.search(r'name="vessel_name"[^>]* value=""', form.text)
    data = {
        "_csrf_token": csrf(form.text),
        "idempotency_key": hidden(form.text, "idempotency_key"),
        "kind": "vessel",
        **yacht(registration="nl 123 ab"),
    }
    answer = await client.post(marina.url, data=data, follow_redirects=False)

    assert answer.status_code == 200
    assert "You are already checked in until" in answer.text
    assert f'href="{link}/extend"' in answer.text
    assert len(await visits_at(db, marina)) == 1


async def test_another_boat_from_the_same_phone_is_checked_in(
    client: Client, db: Database, marina: PointRef
):
    await check_in_remembered(client, marina)
    form = await client.get(f"{marina.url}?kind=vessel&another=1")
    data = {
        "_csrf_token": csrf(form.text),
        "idempotency_key": hidden(form.text, "idempotency_key"),
        "kind": "vessel",
        **yacht(vessel_name="Stormvogel", registration="NL-999-ZZ"),
    }
    answer = await client.post(marina.url, data=data, follow_redirects=False)
    assert answer.status_code == 303
    assert [v.vessel_name for v in await visits_at(db, marina)] == ["Zeemeeuw", "Stormvogel"]


async def test_the_private_link_of_a_present_visit_says_until_when_and_offers_extend_first(
    client: Client, marina: PointRef
):
    link = await check_in_remembered(client, marina)
    fresh = await client.get(f"{link}?new=1")
    assert "You are checked in until Thu 16 Jul, 11:00" in fresh.text
    later = await client.get(link)
    assert "You are already checked in until Thu 16 Jul, 11:00" in later.text
    # Check-out is there, but neither first nor the primary button of the page.
    extend_at, out_at = later.text.index(f"{link}/extend"), later.text.index(f"{link}/checkout")
    assert extend_at < out_at
    assert not re.search(r'class="button primary[^"]*" href="[^"]*/checkout"', later.text)
    assert "<form" not in later.text.split("Your private link")[0].split("</dl>")[1]


# --- extend my stay -------------------------------------------------------------------------


async def test_a_visitor_extends_the_stay_and_the_change_is_audited(
    client: Client, db: Database, marina: PointRef, clock: FrozenClock
):
    link = await check_in_remembered(client, marina)
    page = await client.get(f"{link}/extend")
    assert page.status_code == 200
    # One more night is offered.
    assert 'value="2026-07-17T11:00"' in page.text

    answer = await client.post(
        f"{link}/extend",
        data={"_csrf_token": csrf(page.text), "expected_departure_at": "2026-07-18T10:30"},
        follow_redirects=False,
    )
    assert (answer.status_code, answer.headers["location"]) == (303, f"{link}?extended=1")
    [visit] = await visits_at(db, marina)
    assert visit.expected_departure_at == local("2026-07-18 10:30")
    shown = await client.get(answer.headers["location"])
    assert "Saved: you now expect to leave on Sat 18 Jul, 10:30." in shown.text

    [event] = await audit_events(db, "visit_extended")
    assert (event.actor, event.object_id) == ("visitor", visit.id)
    details = await event_details(db, event)
    assert details["after"]["expected_departure_at"].startswith("2026-07-18 08:30")
    assert details["before"]["expected_departure_at"].startswith("2026-07-16 09:00")
    assert "2026-07-18" not in event.details  # the times live in the erasable detail record


async def test_a_new_departure_is_checked_like_the_check_in_s_and_must_lie_ahead(
    client: Client, db: Database, marina: PointRef
):
    link = await check_in_remembered(client, marina)
    token = csrf((await client.get(f"{link}/extend")).text)
    for typed, message in [
        ("", "Please enter when you expect to leave."),
        ("tomorrow", "Please enter a date and time like"),
        ("2026-07-14T19:00", "The expected departure must be after the arrival."),
        ("2026-07-14T21:00", "The expected departure must be later than now."),
        ("2027-08-01T12:00", "within a year of the arrival"),
    ]:
        answer = await client.post(
            f"{link}/extend", data={"_csrf_token": token, "expected_departure_at": typed}
        )
        assert answer.status_code == 422, typed
        assert message in answer.text
        assert f'value="{typed}"' in answer.text  # what was typed stays
        assert 'href="#f-expected_departure_at"' in answer.text
    [visit] = await visits_at(db, marina)
    assert visit.expected_departure_at == local("2026-07-16 11:00")
    assert await audit_events(db, "visit_extended") == []


async def test_a_visit_that_has_ended_is_not_extended(
    client: Client, db: Database, marina: PointRef
):
    link = await check_in_remembered(client, marina)
    token = csrf((await client.get(f"{link}/checkout")).text)
    await client.post(f"{link}/checkout", data={"_csrf_token": token})

    assert (await client.get(f"{link}/extend", follow_redirects=False)).status_code == 303
    answer = await client.post(
        f"{link}/extend", data={"_csrf_token": token, "expected_departure_at": "2026-07-18T10:30"}
    )
    assert answer.status_code == 422
    assert "This visit has ended" in answer.text
    [visit] = await visits_at(db, marina)
    assert visit.expected_departure_at == local("2026-07-16 11:00")


# --- check-out that asks first ------------------------------------------------------------------


async def test_the_visitor_s_check_out_asks_first_and_is_audited(
    client: Client, db: Database, marina: PointRef, clock: FrozenClock
):
    link = await check_in_remembered(client, marina)
    confirm = await client.get(f"{link}/checkout")
    assert confirm.status_code == 200
    assert "Check out now?" in confirm.text
    assert "No, I am staying" in confirm.text
    [visit] = await visits_at(db, marina)
    assert visit.departed_at is None  # looking at the question changes nothing

    clock.advance(timedelta(hours=12))
    out = await client.post(
        f"{link}/checkout", data={"_csrf_token": csrf(confirm.text)}, follow_redirects=False
    )
    assert out.headers["location"] == f"{link}?out=1"
    [visit] = await visits_at(db, marina)
    assert visit.departed_at == clock.now()
    [event] = await audit_events(db, "visit_checked_out")
    assert (event.actor, event.object_id) == ("visitor", visit.id)


# --- here again: one tap --------------------------------------------------------------------------


async def test_a_returning_visitor_whose_visit_is_over_checks_in_again_with_one_tap(
    client: Client, db: Database, marina: PointRef, clock: FrozenClock
):
    link = await check_in_remembered(client, marina)
    token = csrf((await client.get(f"{link}/checkout")).text)
    await client.post(f"{link}/checkout", data={"_csrf_token": token})
    clock.advance(timedelta(days=10))

    start = await client.get(marina.url)
    assert "already checked in" not in start.text
    assert f'action="{marina.url}/again"' in start.text
    answer = await client.post(
        f"{marina.url}/again",
        data={
            "_csrf_token": csrf(start.text),
            "kind": "vessel",
            "idempotency_key": hidden(start.text, "idempotency_key"),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("?new=1")
    first, again = await visits_at(db, marina)
    assert (again.vessel_name, again.registration, again.guest_name, again.persons) == (
        first.vessel_name,
        first.registration,
        first.guest_name,
        first.persons,
    )
    assert again.arrived_at == clock.now().replace(second=0, microsecond=0)
    assert again.departed_at is None
    # The confirmation says until when, and the same phone now knows the new visit.
    confirmation = await client.get(answer.headers["location"])
    assert "You are checked in until" in confirmation.text
    assert "You are already checked in until" in (await client.get(marina.url)).text


async def test_one_tap_without_remembered_details_goes_back_to_the_start(
    client: Client, db: Database, marina: PointRef
):
    form = await open_form(client, marina)
    answer = await client.post(
        f"{marina.url}/again",
        data={"_csrf_token": form["_csrf_token"], "kind": "vessel"},
        follow_redirects=False,
    )
    assert (answer.status_code, answer.headers["location"]) == (303, marina.url)
    assert await visits_at(db, marina) == []


# --- the shorter form -----------------------------------------------------------------------------


def _before(html: str, marker: str) -> str:
    return html.split(marker)[0]


async def test_the_form_asks_the_required_fields_first_and_hides_the_rest_in_more_details(
    client: Client, marina: PointRef, business_park: PointRef
):
    page = (await client.get(f"{marina.url}?kind=vessel")).text
    required = _before(page, '<details class="more"')
    for name in ("vessel_name", "registration", "mmsi", "guest_name", "residence", "persons"):
        assert f'name="{name}"' in required, name
    for name in ("arrived_at", "expected_departure_at"):
        assert f'name="{name}"' in required, name
    more = page.split('<details class="more"')[1].split("</details>")[0]
    for name in ("vessel_type", "length_m", "flag", "berth", "country", "phone", "email", "notes"):
        assert f'name="{name}"' in more, name
    assert '<details class="more">' in page  # closed
    assert re.search(r'name="persons"[^>]* value="1"', page)
    # The privacy notice: a closed disclosure after the fields, not a text above the button.
    assert '<details class="privacy">' in page
    assert page.index('<details class="privacy">') > page.index('name="notes"')

    vehicle = (await client.get(f"{business_park.url}?kind=vehicle")).text
    assert 'name="plate"' in _before(vehicle, '<details class="more"')
    assert 'name="plate_country"' not in _before(vehicle, '<details class="more"')


async def test_the_fields_of_another_kind_come_with_their_optional_part_out_of_band(
    client: Client, marina: PointRef
):
    part = await client.get(f"{marina.url}?kind=vehicle", headers={"hx-request": "true"})
    assert part.text.count('id="kind-fields"') == 1
    assert '<div id="kind-more" hx-swap-oob="true">' in part.text
    assert 'name="plate_country"' in part.text.split('id="kind-more"')[1]


async def test_a_refused_form_opens_with_an_error_summary_that_links_to_each_field(
    client: Client, marina: PointRef
):
    form = {**await open_form(client, marina), **yacht(guest_name="", persons="0", email="x@")}
    answer = await client.post(marina.url, data=form)
    assert answer.status_code == 422
    summary = answer.text.split('id="error-summary"')[1].split("</div>")[0]
    assert "autofocus" in answer.text.split('id="error-summary"')[1].split(">")[0]
    links = re.findall(r'href="#f-([a-z_]+)">([^<]+)</a>', summary)
    assert [name for name, _text in links] == ["guest_name", "persons", "email"]
    assert links[0][1] == "Your name: Please enter your name."
    # The optional field in error is in sight: its disclosure is open.
    assert '<details class="more" open>' in answer.text
    assert 'value="Zeemeeuw"' in answer.text


async def test_switching_the_language_keeps_what_was_typed_and_registers_nothing(
    client: Client, db: Database, marina: PointRef
):
    form = {
        **await open_form(client, marina),
        "vessel_name": "Zeemeeuw",
        "guest_name": "Jan de Vries",
        "persons": "3",
        "relabel": "1",
    }
    answer = await client.post(f"{marina.url}?lang=de", data=form)
    assert answer.status_code == 200
    assert '<html lang="de">' in answer.text
    assert "Ihr Name" in answer.text
    for value in ("Zeemeeuw", "Jan de Vries", "3", form["idempotency_key"]):
        assert f'value="{value}"' in answer.text
    assert 'id="error-summary"' not in answer.text
    assert await visits_at(db, marina) == []
    assert answer.cookies.get("nightreg_lang") == "de"


async def test_enter_in_a_field_checks_in_rather_than_switching_the_language(
    client: Client, marina: PointRef
):
    page = (await client.get(f"{marina.url}?kind=vessel")).text
    # Enter submits with the first submit button of the form in document order.
    first = re.search(r'<button type="submit" form="checkin"([^>]*)>', page)
    assert first is not None
    assert "formaction" not in first.group(1)
    assert "relabel" not in first.group(1)


async def test_english_dates_read_day_first_on_a_24_hour_clock(client: Client, marina: PointRef):
    form = {**await open_form(client, marina), **yacht(expected_departure_at="2026-07-16T23:15")}
    answer = await client.post(
        marina.url, data=form, headers={"accept-language": "en-US"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text[-3000:]
    link = answer.headers["location"].split("?")[0]
    page = await client.get(link)
    assert "16/07/2026, 23:15" in page.text
    # a 12-hour clock would read "11:15 PM" (the page's private links may hold "PM" by chance)
    assert not re.search(r"\d\s?[AP]M\b", page.text)
    dutch = await client.get(f"{link}?lang=nl")
    assert "16-07-2026, 23:15" in dutch.text
    german = await client.get(f"{link}?lang=de")
    assert "16.07.26, 23:15" in german.text
