"""The visitor who comes back, and the shorter check-in, as a real phone does them (issue 15):
extend my stay, check out on purpose, one tap to check in again; the form within two screens,
the error summary, the language switch, and the confirmation at 320 px in German."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.browser.live import LiveServer
from tests.factories import PointRef

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")  # the sites' time zone in the tests
PRIVATE_LINK = re.compile(r"/k/v/[^/?#]+\?new=1$")
IPHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
NARROW = {"viewport": {"width": 320, "height": 700}, "is_mobile": True, "has_touch": True}
REQUIRED = {
    "vessel_name": "Zeemeeuw",
    "registration": "NL-123-AB",
    "guest_name": "Jan de Vries",
    "residence": "Hoorn",
}


def fill_required(page: Page, **overrides: str) -> None:
    for name, value in {**REQUIRED, **overrides}.items():
        page.locator(f"#f-{name}").fill(value)


def submit(page: Page) -> None:
    page.locator("form.checkin button.big").click()


def check_in_remembered(page: Page, server: LiveServer, point: PointRef) -> str:
    """A first visit with "remember me"; the private link's URL."""
    page.goto(server.url(f"{point.url}?kind=vessel"))
    fill_required(page)
    page.locator("#f-remember").check()
    submit(page)
    page.wait_for_url(PRIVATE_LINK)
    return page.url.split("?")[0]


def assert_no_horizontal_scrolling(page: Page) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 360
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_a_returning_visitor_who_is_still_here_extends_the_stay(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    page = new_context(locale="en-GB", **IPHONE).new_page()
    link = check_in_remembered(page, server, point)
    reference = page.locator(".summary .ref").inner_text().strip()

    # Back at the QR code the next morning: no second visit, but the open one.
    page.goto(server.url(point.url))
    present = page.locator("section.present")
    expect(present).to_contain_text("You are already checked in until")
    expect(page.locator("form[action$='/again']")).to_have_count(0)
    present.get_by_role("link", name="Extend my stay").click()
    page.wait_for_url(link + "/extend")

    page.locator("#f-expected_departure_at").fill("2030-01-01T10:00")  # beyond a year: refused
    page.get_by_role("button", name="Save my new departure").click()
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#err-expected_departure_at")).to_contain_text("within a year")

    stored = server.stored_visit(reference)
    assert stored is not None
    before = stored.expected_departure_at.astimezone(AMSTERDAM)
    new_departure = before.replace(hour=10, minute=30) + timedelta(days=2)
    page.locator("#f-expected_departure_at").fill(new_departure.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Save my new departure").click()
    page.wait_for_url(link + "?extended=1")
    expect(page.locator(".banner.ok")).to_contain_text("Saved: you now expect to leave on")
    expect(page.locator(".banner.ok")).to_contain_text("10:30")
    stored = server.stored_visit(reference)
    assert stored is not None
    assert stored.expected_departure_at.astimezone(AMSTERDAM) == new_departure
    assert stored.departed_at is None
    assert_no_horizontal_scrolling(page)


def test_a_returning_visitor_checks_out_on_purpose_and_later_checks_in_again_with_one_tap(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    page = new_context(locale="en-GB", **IPHONE).new_page()
    check_in_remembered(page, server, point)
    first = page.locator(".summary .ref").inner_text().strip()

    page.goto(server.url(point.url))
    page.locator("section.present").get_by_role("link", name="Check out…").click()
    expect(page.get_by_role("heading", name="Check out now?")).to_be_visible()
    stored = server.stored_visit(first)
    assert stored is not None
    assert stored.departed_at is None  # asking changes nothing
    page.get_by_role("button", name="Yes, I am leaving: check me out").click()
    page.wait_for_url(re.compile(r"\?out=1$"))
    stored = server.stored_visit(first)
    assert stored is not None
    assert stored.departed_at is not None

    # Next season: one tap, then the confirmation.
    page.goto(server.url(point.url))
    page.get_by_role("button", name="Check in Zeemeeuw again").click()
    page.wait_for_url(PRIVATE_LINK)
    expect(page.locator(".banner.ok")).to_contain_text("Thank you, you are checked in.")
    expect(page.locator("h1")).to_contain_text("You are checked in until")
    second = page.locator(".summary .ref").inner_text().strip()
    assert second != first
    again = server.stored_visit(second)
    assert again is not None
    assert (again.vessel_name, again.registration, again.departed_at) == (
        "Zeemeeuw",
        "NL-123-AB",
        None,
    )


def test_a_first_time_boater_reaches_the_check_in_button_within_two_screens(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    page = new_context(locale="en-GB", **IPHONE).new_page()
    page.goto(server.url(point.url))
    page.locator("a.choice[href$='?kind=vessel']").click()
    fill_required(page)

    button = page.locator("form.checkin button.big")
    box = button.bounding_box()
    assert box is not None
    bottom = box["y"] + box["height"] + page.evaluate("window.scrollY")
    assert bottom <= 2 * 844, f"the check-in button ends {bottom}px down, over two screens"
    expect(page.locator("details.more")).not_to_have_attribute("open", "")
    expect(page.locator("details.privacy")).not_to_have_attribute("open", "")
    expect(page.locator("#f-persons")).to_have_value("1")
    submit(page)
    page.wait_for_url(PRIVATE_LINK)
    assert_no_horizontal_scrolling(page)


def test_the_confirmation_reads_well_at_320_pixels_in_german(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    page = new_context(locale="de-DE", **NARROW).new_page()
    page.goto(server.url(f"{point.url}?kind=vessel"))
    fill_required(page, guest_name="Jan de Vries-Oosterhuis van Wijngaarden")
    submit(page)
    page.wait_for_url(PRIVATE_LINK)
    expect(page.locator("html")).to_have_attribute("lang", "de")
    assert_no_horizontal_scrolling(page)

    terms = page.locator(".summary dt")
    values = page.locator(".summary dd")
    assert terms.count() == values.count() >= 6
    expect(terms.filter(has_text="Voraussichtliche Abreise")).to_have_count(1)
    for i in range(terms.count()):
        term, value = terms.nth(i).bounding_box(), values.nth(i).bounding_box()
        assert term is not None
        assert value is not None
        assert value["y"] >= term["y"] + term["height"] - 1, "a label is not above its value"
        assert value["width"] >= 320 / 2, f"a value column of {value['width']}px"


def test_after_a_refused_submit_the_error_summary_has_the_focus_and_leads_to_each_field(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    for javascript in (True, False):
        page = new_context(locale="en-GB", java_script_enabled=javascript, **IPHONE).new_page()
        page.goto(server.url(f"{point.url}?kind=vessel"))
        fill_required(page, guest_name="")
        page.locator("details.more > summary").click()
        page.locator("#f-email").fill("not-an-address")
        page.locator("details.more > summary").click()  # closed again before sending
        submit(page)

        summary = page.locator("#error-summary")
        expect(summary).to_be_focused()
        links = summary.locator("a")
        expect(links).to_have_count(2)
        expect(links.nth(0)).to_have_attribute("href", "#f-guest_name")
        expect(links.nth(1)).to_have_attribute("href", "#f-email")
        expect(page.locator("details.more")).to_have_attribute("open", "")  # the email shows
        links.nth(1).click()
        if javascript:
            expect(page.locator("#f-email")).to_be_focused()
        else:
            assert page.url.endswith("#f-email")
        expect(page.locator("#f-email")).to_be_in_viewport()
        expect(page.locator("#f-vessel_name")).to_have_value("Zeemeeuw")


def test_switching_the_language_keeps_what_was_typed(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    for javascript in (True, False):
        page = new_context(locale="en-GB", java_script_enabled=javascript, **IPHONE).new_page()
        page.goto(server.url(f"{point.url}?kind=vessel"))
        fill_required(page, persons="3")
        page.locator("details.more > summary").click()
        page.locator("#f-phone").fill("+31 6 12345678")

        page.locator("nav.langs").get_by_role("button", name="DE").click()
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page.locator("label[for=f-guest_name]")).to_contain_text("Ihr Name")
        for name, value in {**REQUIRED, "persons": "3", "phone": "+31 6 12345678"}.items():
            expect(page.locator(f"#f-{name}")).to_have_value(value)
        expect(page.locator("#error-summary")).to_have_count(0)

        # Enter in a field checks in; it does not switch the language again.
        page.locator("#f-residence").press("Enter")
        page.wait_for_url(PRIVATE_LINK)
        expect(page.locator("html")).to_have_attribute("lang", "de")
