"""The visitor's check-in through HTTP: the flow, bad input, abuse, idempotency, check-out."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import CheckinPoint, Visit
from nightreg.services import sites
from tests.factories import PointRef, make_point
from tests.pages import hidden, open_form, yacht

Client = AsyncTestClient[Litestar]


async def submit(client: Client, point: PointRef, data: dict[str, str], **kw: Any) -> Any:
    return await client.post(point.url, data=data, follow_redirects=False, **kw)


async def visits_at(db: Database, point: PointRef) -> list[Visit]:
    info = await sites.point_by_token(db, point.token)
    assert info is not None
    async with db.read() as session:
        return list(await session.scalars(select(Visit).where(Visit.site_id == info.site_id)))


async def test_a_marina_offers_a_boat_and_a_car_to_register(client: Client, marina: PointRef):
    page = await client.get(marina.url)
    assert page.status_code == 200
    assert f"{marina.url}?kind=vessel" in page.text
    assert f"{marina.url}?kind=vehicle" in page.text
    assert "kind=stay" not in page.text


async def test_a_business_park_offers_a_vehicle_and_an_overnight_stay(
    client: Client, business_park: PointRef
):
    page = await client.get(business_park.url)
    assert "kind=vehicle" in page.text
    assert "kind=stay" in page.text
    assert "kind=vessel" not in page.text


async def test_a_boater_checks_in_and_sees_the_visit_through_the_private_link(
    client: Client, db: Database, marina: PointRef
):
    answer = await submit(client, marina, {**await open_form(client, marina), **yacht()})
    assert answer.status_code == 303
    link = answer.headers["location"]
    assert link.startswith("/k/v/")
    assert link.endswith("?new=1")

    page = await client.get(link)
    assert page.status_code == 200
    assert "Zeemeeuw" in page.text
    assert "NL-123-AB" in page.text  # shown as typed
    [visit] = await visits_at(db, marina)
    assert visit.reference in page.text
    assert visit.subject_key == "reg:NL123AB"
    assert visit.source == "kiosk"
    assert str(visit.length_m) == "11.5"
    # 20:45 in Amsterdam in summer is 18:45 UTC.
    assert visit.arrived_at.isoformat() == "2026-07-14T18:45:00+00:00"
    assert "<svg" in page.text  # the QR of the private link


async def test_the_private_link_token_is_kept_only_as_a_hash(
    client: Client, db: Database, marina: PointRef
):
    answer = await submit(client, marina, {**await open_form(client, marina), **yacht()})
    token = answer.headers["location"].split("/")[-1].split("?")[0]
    [visit] = await visits_at(db, marina)
    assert token not in visit.private_token_hash
    assert len(visit.private_token_hash) == 64


async def test_an_unknown_point_token_gets_a_friendly_page_that_reveals_nothing(client: Client):
    page = await client.get("/k/NoSuchToken-<script>")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "<script>" not in page.text
    assert "Traceback" not in page.text


async def test_a_rotated_point_token_stops_working_at_once(
    client: Client, db: Database, marina: PointRef, clock: FrozenClock
):
    await sites.rotate_point(db, marina.site_slug, marina.point_name, clock.now())
    assert (await client.get(marina.url)).status_code == 404
    new = await sites.get_point(db, marina.site_slug, marina.point_name)
    assert (await client.get(f"/k/{new.token}")).status_code == 200


async def test_a_disabled_point_gets_the_not_found_page(
    client: Client, db: Database, marina: PointRef
):
    async with db.write() as session:
        await session.execute(
            update(CheckinPoint).where(CheckinPoint.token == marina.token).values(is_active=False)
        )
    assert (await client.get(marina.url)).status_code == 404


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("vessel_name", "", "name of the boat"),
        ("guest_name", "", "your name"),
        ("residence", "", "at most"),  # replaced below: required field
        ("persons", "0", "from 1 to 99"),
        ("persons", "100", "from 1 to 99"),
        ("mmsi", "123456789", "9 digits"),
        ("registration", "IMO 9074728", "IMO number"),
        ("length_m", "250", "from 1 to 100"),
        ("country", "XX", "country from the list"),
        ("flag", "ZZ", "country from the list"),
        ("email", "not-an-address", "e-mail"),
        ("phone", "call me", "phone number"),
        ("vessel_type", "submarine", "option from the list"),
        ("id_document_type", "bsn", "option from the list"),
        ("arrived_at", "yesterday", "date and time"),
        ("expected_departure_at", "2026-07-14T10:00", "after the arrival"),
        ("guest_name", "x" * 101, "at most 100"),
        ("notes", "n" * 501, "at most 500"),
    ],
)
async def test_bad_input_is_explained_next_to_its_field_and_the_typing_is_kept(
    client: Client, db: Database, marina: PointRef, field: str, value: str, message: str
):
    if field == "residence":
        message = "place of residence"
    form = {**await open_form(client, marina), **yacht(**{field: value})}
    answer = await submit(client, marina, form, headers={"accept-language": "en"})
    assert answer.status_code == 422
    error = re.search(rf'<p class="error" id="err-{field}"[^>]*>([^<]*)</p>', answer.text)
    assert error, f"no error shown for {field}"
    assert message.lower() in error.group(1).lower()
    assert 'value="Zeemeeuw"' in answer.text or field == "vessel_name"
    assert await visits_at(db, marina) == []


async def test_a_vessel_needs_a_registration_or_an_mmsi(client: Client, marina: PointRef):
    form = {**await open_form(client, marina), **yacht(registration="")}
    answer = await submit(client, marina, form)
    assert answer.status_code == 422
    assert 'id="err-registration"' in answer.text
    form = {**await open_form(client, marina), **yacht(registration="", mmsi="244 123 456")}
    assert (await submit(client, marina, form)).status_code == 303


async def test_what_a_visitor_types_is_escaped_never_echoed_as_markup(
    client: Client, marina: PointRef
):
    evil = '<img src=x onerror="alert(1)">'
    form = {**await open_form(client, marina), **yacht(guest_name=evil, persons="0")}
    answer = await submit(client, marina, form)
    assert answer.status_code == 422
    assert evil not in answer.text
    assert "&lt;img src=x" in answer.text


async def test_a_post_without_csrf_token_is_refused_and_registers_nothing(
    client: Client, db: Database, marina: PointRef
):
    form = await open_form(client, marina)
    del form["_csrf_token"]
    answer = await submit(client, marina, {**form, **yacht()})
    assert answer.status_code == 403
    assert "text/html" in answer.headers["content-type"]
    assert await visits_at(db, marina) == []


async def test_a_double_submit_makes_one_visit_and_answers_with_the_same_link(
    client: Client, db: Database, marina: PointRef
):
    form = {**await open_form(client, marina), **yacht()}
    first = await submit(client, marina, form)
    second = await submit(client, marina, form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(await visits_at(db, marina)) == 1


async def test_a_reused_form_with_other_data_is_refused(
    client: Client, db: Database, marina: PointRef
):
    form = {**await open_form(client, marina), **yacht()}
    await submit(client, marina, form)
    again = await submit(client, marina, {**form, "vessel_name": "Andere Boot"})
    assert again.status_code == 409
    assert "Andere Boot" not in again.text
    assert len(await visits_at(db, marina)) == 1


async def test_a_form_replayed_after_ten_minutes_gets_no_link(
    client: Client, db: Database, marina: PointRef, clock: FrozenClock
):
    form = {**await open_form(client, marina), **yacht()}
    await submit(client, marina, form)
    clock.advance(timedelta(minutes=11))
    again = await submit(client, marina, form)
    assert again.status_code == 409
    assert "/k/v/" not in again.text


async def test_checking_out_twice_is_harmless(
    client: Client, db: Database, marina: PointRef, clock: FrozenClock
):
    answer = await submit(client, marina, {**await open_form(client, marina), **yacht()})
    link = answer.headers["location"].split("?")[0]
    page = await client.get(f"{link}/checkout")  # the confirmation: "Check out now?"
    csrf = hidden(page.text, "_csrf_token")
    clock.advance(timedelta(hours=14))
    out = await client.post(f"{link}/checkout", data={"_csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    [visit] = await visits_at(db, marina)
    first_departure = visit.departed_at
    assert first_departure == clock.now()

    clock.advance(timedelta(hours=1))
    again = await client.post(f"{link}/checkout", data={"_csrf_token": csrf})
    assert again.status_code == 200
    [visit] = await visits_at(db, marina)
    assert visit.departed_at == first_departure
    assert "/checkout" not in again.text
    # The confirmation of a visit that has ended leads back to the visit.
    late = await client.get(f"{link}/checkout", follow_redirects=False)
    assert (late.status_code, late.headers["location"]) == (303, link)


async def test_a_private_link_that_does_not_exist_gets_a_404(client: Client, marina: PointRef):
    assert (await client.get("/k/v/not-a-real-token")).status_code == 404
    csrf = (await open_form(client, marina))["_csrf_token"]
    out = await client.post("/k/v/not-a-real-token/checkout", data={"_csrf_token": csrf})
    assert out.status_code == 404


async def test_the_private_link_shows_that_one_visit_and_no_other(
    client: Client, db: Database, marina: PointRef
):
    first = await submit(client, marina, {**await open_form(client, marina), **yacht()})
    second_form = yacht(vessel_name="Stormvogel", registration="DE-99", guest_name="Anna Weber")
    await submit(client, marina, {**await open_form(client, marina), **second_form})
    page = await client.get(first.headers["location"])
    assert "Zeemeeuw" in page.text
    assert "Stormvogel" not in page.text
    assert "Anna Weber" not in page.text


async def test_too_many_check_ins_from_one_address_get_a_friendly_answer_with_the_typing_kept(
    make_settings: Any, clock: FrozenClock, db: Database
):
    from nightreg.app import create_app

    app = create_app(make_settings(checkin_rate_per_address=2), clock=clock)
    point = await make_point(db)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        for _ in range(2):
            ok = await submit(client, point, {**await open_form(client, point), **yacht()})
            assert ok.status_code == 303
        limited = await submit(client, point, {**await open_form(client, point), **yacht()})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert 'value="Zeemeeuw"' in limited.text
    assert "wait a minute" in limited.text.lower() or "too many" in limited.text.lower()


async def test_a_busy_point_is_limited_too(make_settings: Any, clock: FrozenClock, db: Database):
    from nightreg.app import create_app

    app = create_app(make_settings(checkin_rate_per_point=1), clock=clock)
    point = await make_point(db)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        assert (
            await submit(client, point, {**await open_form(client, point), **yacht()})
        ).status_code == 303
        second = await submit(client, point, {**await open_form(client, point), **yacht()})
    assert second.status_code == 429


async def test_a_request_over_the_size_limit_is_refused(
    client: Client, db: Database, marina: PointRef
):
    form = {**await open_form(client, marina), **yacht(notes="x" * 100_000)}
    answer = await submit(client, marina, form)
    assert answer.status_code == 413
    assert await visits_at(db, marina) == []


async def test_a_filled_in_honeypot_registers_nothing(
    client: Client, db: Database, marina: PointRef
):
    form = {**await open_form(client, marina), **yacht(website="http://spam.example")}
    answer = await submit(client, marina, form)
    assert answer.status_code == 400
    assert await visits_at(db, marina) == []


async def test_id_numbers_are_never_stored_even_when_sent(
    client: Client, db: Database, marina: PointRef
):
    form = {
        **await open_form(client, marina),
        **yacht(id_document_type="passport"),
        "id_number": "NX1234567",
        "bsn": "111222333",
    }
    answer = await submit(client, marina, form)
    assert answer.status_code == 303
    [visit] = await visits_at(db, marina)
    assert visit.id_document_type == "passport"
    stored = " ".join(str(getattr(visit, c.key)) for c in Visit.__table__.columns)
    assert "NX1234567" not in stored
    assert "111222333" not in stored


async def test_a_dutch_plate_is_kept_in_its_side_code_form_and_keyed_without_dashes(
    client: Client, db: Database, business_park: PointRef
):
    form = {
        **await open_form(client, business_park, "vehicle"),
        "plate": "ab123c",
        "vehicle_type": "van",
        "company": "Koel & Vries BV",
        "guest_name": "Piet Bakker",
        "residence": "Zaandam",
        "persons": "1",
        "expected_departure_at": "2026-07-14T23:00",
    }
    answer = await submit(client, business_park, form)
    assert answer.status_code == 303
    [visit] = await visits_at(db, business_park)
    assert visit.plate == "AB-123-C"
    assert visit.subject_key == "plate:AB123C"
    assert visit.vessel_name is None


async def test_a_foreign_plate_is_kept_as_typed(
    client: Client, db: Database, business_park: PointRef
):
    form = {
        **await open_form(client, business_park, "vehicle"),
        "plate": "HH ab 12",
        "plate_country": "DE",
        "guest_name": "Hans Meier",
        "residence": "Hamburg",
        "persons": "1",
        "expected_departure_at": "2026-07-14T23:00",
    }
    assert (await submit(client, business_park, form)).status_code == 303
    [visit] = await visits_at(db, business_park)
    assert (visit.plate, visit.subject_key) == ("HH ab 12", "plate:HHAB12")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("registration", "NL-123-AB \U0001f6a4"),  # a speedboat emoji
        ("registration", "NL-123\u200d-AB"),  # a zero-width joiner
        ("mmsi", "244\x00123456"),
        ("mmsi", "244123456\ufe0f"),
    ],
)
async def test_an_identifier_with_a_pictograph_or_control_character_is_refused_next_to_it(
    client: Client, db: Database, marina: PointRef, field: str, value: str
):
    form = {**await open_form(client, marina), **yacht(), field: value}
    answer = await submit(client, marina, form)
    assert answer.status_code == 422
    assert "no emoji, symbols or invisible characters" in answer.text
    assert f'href="#f-{field}"' in answer.text  # the error summary links to the field
    assert await visits_at(db, marina) == []


async def test_a_plate_with_an_emoji_is_refused_next_to_it(
    client: Client, db: Database, business_park: PointRef
):
    form = {
        **await open_form(client, business_park, "vehicle"),
        "plate": "AB-123-C \U0001f697",
        "guest_name": "Piet Bakker",
        "residence": "Zaandam",
        "persons": "1",
        "expected_departure_at": "2026-07-14T23:00",
    }
    answer = await submit(client, business_park, form)
    assert answer.status_code == 422
    assert "no emoji, symbols or invisible characters" in answer.text
    assert await visits_at(db, business_park) == []


async def test_a_boat_cannot_be_registered_at_a_business_park(
    client: Client, db: Database, business_park: PointRef
):
    form = {**await open_form(client, business_park, "vehicle"), **yacht(), "kind": "vessel"}
    answer = await submit(client, business_park, form)
    assert answer.status_code == 422
    assert await visits_at(db, business_park) == []


async def test_a_field_is_checked_as_the_visitor_leaves_it(client: Client, marina: PointRef):
    form = {**await open_form(client, marina), **yacht(mmsi="12345")}
    answer = await client.post(
        f"{marina.url}/validate/mmsi", data=form, headers={"hx-request": "true"}
    )
    assert answer.status_code == 200
    assert 'id="err-mmsi"' in answer.text
    assert "9 digits" in answer.text
    fine = await client.post(
        f"{marina.url}/validate/guest_name", data=form, headers={"hx-request": "true"}
    )
    assert re.search(r'id="err-guest_name"[^>]*></p>', fine.text)


async def test_the_kind_fields_swap_in_as_a_partial_for_htmx(client: Client, marina: PointRef):
    partial = await client.get(f"{marina.url}?kind=vehicle", headers={"hx-request": "true"})
    assert partial.status_code == 200
    assert partial.text.lstrip().startswith('<div id="kind-fields">')
    assert 'name="plate"' in partial.text
    assert "<html" not in partial.text


async def test_the_page_speaks_the_browsers_language_and_can_be_switched(
    client: Client, marina: PointRef
):
    german = await client.get(marina.url, headers={"accept-language": "de-DE,de;q=0.9,en;q=0.5"})
    assert '<html lang="de">' in german.text
    assert "Willkommen" in german.text
    dutch = await client.get(f"{marina.url}?lang=nl", headers={"accept-language": "de"})
    assert '<html lang="nl">' in dutch.text
    assert "Welkom" in dutch.text
    # The choice sticks for the next page.
    later = await client.get(f"{marina.url}?kind=vessel", headers={"accept-language": "de"})
    assert '<html lang="nl">' in later.text


async def test_error_messages_are_translated(client: Client, marina: PointRef):
    form = {**await open_form(client, marina), **yacht(persons="0")}
    answer = await submit(client, marina, form, headers={"accept-language": "de"})
    assert answer.status_code == 422
    error = re.search(r'id="err-persons"[^>]*>([^<]*)<', answer.text)
    assert error
    assert error.group(1).strip() == "Bitte geben Sie eine Personenzahl von 1 bis 99 ein."


async def test_a_kiosk_tablet_shows_the_link_as_a_qr_code_and_returns_to_its_start(
    client: Client, db: Database, kiosk_tablet: PointRef
):
    page = await client.get(f"{kiosk_tablet.url}?kind=vessel")
    assert 'name="remember"' not in page.text
    assert f'data-kiosk-reset="{kiosk_tablet.url}"' in page.text
    form = {**await open_form(client, kiosk_tablet), **yacht()}
    answer = await submit(client, kiosk_tablet, form)
    assert answer.status_code == 200  # no redirect: the link must not enter the history
    assert "location" not in answer.headers
    assert "<svg" in answer.text
    # kiosk.js returns to the start after the idle time, counted from the last touch.
    assert f'data-kiosk-reset="{kiosk_tablet.url}" data-kiosk-idle="60"' in answer.text
    assert "/k/v/" not in answer.text  # only as a QR code, never as text on the tablet
    assert answer.headers["cache-control"] == "no-store"
    [visit] = await visits_at(db, kiosk_tablet)
    assert visit.reference in answer.text


async def test_a_remembered_boat_prefills_the_next_check_in_at_another_site(
    client: Client, db: Database, marina: PointRef
):
    form = {**await open_form(client, marina), **yacht(remember="on")}
    answer = await submit(client, marina, form)
    assert answer.status_code == 303
    assert "nightreg_remember" in answer.headers.get("set-cookie", "")
    assert "Zeemeeuw" not in answer.headers.get("set-cookie", "")  # encrypted, not plain

    other = await make_point(db, "marina")
    start = await client.get(other.url)
    assert "Zeemeeuw" in start.text  # "check in Zeemeeuw again"
    prefilled = await client.get(f"{other.url}?kind=vessel")
    assert 'value="Zeemeeuw"' in prefilled.text
    assert 'value="Jan de Vries"' in prefilled.text
    assert "/k/v/" not in prefilled.text

    csrf = hidden(start.text, "_csrf_token")
    forgot = await client.post(
        f"/k/forget?next={other.url}", data={"_csrf_token": csrf}, follow_redirects=False
    )
    assert forgot.status_code == 303
    client.cookies.delete("nightreg_remember")  # what the browser does with the expired cookie
    assert (
        "max-age=0" in forgot.headers.get("set-cookie", "").lower()
        or "expires" in forgot.headers.get("set-cookie", "").lower()
    )
    again = await client.get(f"{other.url}?kind=vessel")
    assert 'value="Zeemeeuw"' not in again.text


async def test_a_kiosk_tablet_never_remembers_anyone(
    client: Client, db: Database, kiosk_tablet: PointRef
):
    form = {**await open_form(client, kiosk_tablet), **yacht(remember="on")}
    answer = await submit(client, kiosk_tablet, form)
    assert "nightreg_remember" not in answer.headers.get("set-cookie", "")


async def test_pages_carry_security_headers_and_are_not_cached(client: Client, marina: PointRef):
    page = await client.get(marina.url)
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"


async def test_the_check_in_page_weighs_under_40_kb_compressed(client: Client, marina: PointRef):
    total = 0
    page = await client.get(f"{marina.url}?kind=vessel", headers={"accept-encoding": "gzip"})
    total += int(page.headers.get("content-length") or len(page.content))
    assert page.headers.get("content-encoding") == "gzip"
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        response = await client.get(asset, headers={"accept-encoding": "gzip"})
        assert response.status_code == 200
        total += int(response.headers.get("content-length") or len(response.content))
    assert total < 40 * 1024, f"{total} bytes"


async def test_the_health_check_answers_ok_with_the_database_reachable(client: Client):
    answer = await client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


async def test_the_health_check_answers_503_without_a_database(make_settings: Any, tmp_path: Any):
    from nightreg.app import create_app

    broken = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    async with AsyncTestClient(app=create_app(broken)) as client:
        answer = await client.get("/health")
    assert answer.status_code == 503


async def test_every_visit_in_the_register_was_acknowledged(
    client: Client, db: Database, marina: PointRef
):
    for name in ("Aap", "Noot", "Mies"):
        form = {**await open_form(client, marina), **yacht(vessel_name=name)}
        assert (await submit(client, marina, form)).status_code == 303
    async with db.read() as session:
        info = await sites.point_by_token(db, marina.token)
        assert info is not None
        count = await session.scalar(
            select(func.count()).select_from(Visit).where(Visit.site_id == info.site_id)
        )
    assert count == 3


async def test_the_request_log_holds_no_name_token_or_cookie(
    client: Client, marina: PointRef, caplog: pytest.LogCaptureFixture
):
    caplog.set_level("INFO", logger="nightreg.request")
    form = {**await open_form(client, marina), **yacht(guest_name="Geheime Gast")}
    answer = await submit(client, marina, form)
    await client.get(answer.headers["location"])
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "nightreg.request")
    assert "POST /k/{token} 303" in logged
    private_token = answer.headers["location"].split("/")[-1].split("?")[0]
    for secret in ("Geheime Gast", marina.token, private_token, form["_csrf_token"]):
        assert secret not in logged


async def test_the_openapi_schema_is_served_and_lists_the_health_check(client: Client):
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/health" in schema.json()["paths"]
