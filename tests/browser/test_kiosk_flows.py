"""The visitor's check-in as a real phone does it: scan, fill in, submit, see the link, leave."""

from __future__ import annotations

import contextlib
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.browser.live import QUICK_KIOSK_IDLE_SECONDS, LiveServer
from tests.factories import PointRef

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]

REFERENCE = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$")
PRIVATE_LINK = re.compile(r"/k/v/[^/?#]+\?new=1$")
CHECKED_OUT = re.compile(r"/k/v/[^/?#]+\?out=1$")
TABLET = {"viewport": {"width": 800, "height": 1280}, "is_mobile": False, "has_touch": True}


@dataclass(frozen=True)
class Language:
    locale: str  # what the phone asks for
    code: str  # what the page must declare in <html lang>
    welcome: str  # the start page's heading begins with this
    boat: str  # the choice of a boat on the start page


DUTCH = Language("nl-NL", "nl", "Welkom", "Boot")
GERMAN = Language("de-DE", "de", "Willkommen", "Boot")
ENGLISH = Language("en-GB", "en", "Welcome", "Boat")

# English source texts of the flow; a translated page shows none of them.
ENGLISH_ON_THE_FORM = ("About you", "Your name", "Place of residence", "Number of persons")
ENGLISH_ON_THE_LINK_PAGE = ("Your private link", "Extend my stay", "Expected departure")
ENGLISH_ON_THE_CHECKOUT_QUESTION = ("Check out now?", "No, I am staying")
ENGLISH_WHEN_CHECKED_OUT = ("You are checked out", "This visit has ended")


def same_document(page: Page) -> None:
    """Mark the loaded document; `still_same_document` then tells whether a page load happened."""
    page.evaluate("window.__nightregSameDocument = true")


def still_same_document(page: Page) -> bool:
    return bool(page.evaluate("window.__nightregSameDocument === true"))


def assert_no_horizontal_scrolling(page: Page) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 360
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} scrolls sideways: {scroll_width}px > {width}px"


def assert_speaks(page: Page, language: Language, english_texts: tuple[str, ...]) -> None:
    expect(page.locator("html")).to_have_attribute("lang", language.code)
    if language.code == "en":
        return
    shown = page.locator("body").inner_text()
    untranslated = [text for text in english_texts if text in shown]
    assert not untranslated, f"{page.url} shows English in {language.code}: {untranslated}"


def fill_yacht(page: Page, **overrides: str) -> dict[str, str]:
    """Type a sailing yacht and its skipper into the vessel form, as a visitor would."""
    typed = {
        "vessel_name": "Zeemeeuw",
        "registration": "NL-123-AB",
        "length_m": "11,5",
        "guest_name": "Jan de Vries",
        "residence": "Hoorn",
        "persons": "2",
        **overrides,
    }
    for name, value in typed.items():
        if name == "length_m":
            open_more_details(page)
        page.locator(f"#f-{name}").fill(value)
    open_more_details(page)
    page.locator("#f-vessel_type").select_option("sail")
    page.locator("#f-country").select_option("NL")
    return typed


def open_more_details(page: Page) -> None:
    """Open the disclosure of the optional fields (it stays open once open)."""
    more = page.locator("details.more")
    if more.get_attribute("open") is None:
        more.locator("summary").click()


def is_form_post(response: Any) -> bool:
    """The answer to the form itself, not to one of htmx's field checks on the way."""
    return bool(response.request.method == "POST" and response.request.resource_type == "document")


def submit(page: Page) -> None:
    page.locator("form.checkin button[type=submit]").click()


def open_start(context: BrowserContext, server: LiveServer, point: PointRef) -> Page:
    page = context.new_page()
    page.goto(server.url(point.url))
    return page


def check_in_a_yacht_and_check_it_out(
    server: LiveServer, new_context: NewContext, language: Language
) -> None:
    point = server.new_point("marina")
    page = open_start(new_context(locale=language.locale), server, point)
    expect(page.locator("h1")).to_contain_text(language.welcome)
    assert_no_horizontal_scrolling(page)

    page.get_by_role("link", name=language.boat, exact=True).click()
    page.wait_for_url(re.compile(r"\?kind=vessel$"))
    assert_speaks(page, language, ENGLISH_ON_THE_FORM)
    assert_no_horizontal_scrolling(page)
    fill_yacht(page)
    submit(page)

    page.wait_for_url(PRIVATE_LINK)
    reference = page.locator(".summary .ref").inner_text().strip()
    assert REFERENCE.match(reference), reference
    expect(page.locator(".summary")).to_contain_text("Zeemeeuw")
    expect(page.locator(".summary")).to_contain_text("NL-123-AB")
    expect(page.locator(".banner.ok")).to_be_visible()
    link = page.locator(".card.link .url a")
    expect(link).to_have_attribute("href", page.url.removesuffix("?new=1"))
    expect(page.locator(".card.link .qr svg")).to_be_visible()
    assert_speaks(page, language, ENGLISH_ON_THE_LINK_PAGE)
    assert_no_horizontal_scrolling(page)
    stored = server.stored_visit(reference)
    assert stored is not None
    assert (stored.vessel_name, stored.vessel_type, stored.departed_at) == (
        "Zeemeeuw",
        "sail",
        None,
    )

    # Check-out asks first.
    page.locator("a[href$='/checkout']").click()
    page.wait_for_url(re.compile(r"/checkout$"))
    assert_speaks(page, language, ENGLISH_ON_THE_CHECKOUT_QUESTION)
    assert_no_horizontal_scrolling(page)
    page.locator("form[action$='/checkout'] button[type=submit]").click()
    page.wait_for_url(CHECKED_OUT)
    expect(page.locator(".banner.ok")).to_be_visible()
    expect(page.locator(".note")).to_be_visible()
    expect(page.locator("form[action$='/checkout']")).to_have_count(0)
    expect(page.locator(".summary .ref")).to_have_text(reference)
    assert_speaks(page, language, ENGLISH_WHEN_CHECKED_OUT)
    assert_no_horizontal_scrolling(page)
    stored = server.stored_visit(reference)
    assert stored is not None
    assert stored.departed_at is not None


def test_a_visitor_checks_in_a_sailing_yacht_on_a_phone_in_dutch_and_checks_it_out_again(
    server: LiveServer, new_context: NewContext
) -> None:
    check_in_a_yacht_and_check_it_out(server, new_context, DUTCH)


def test_a_visitor_checks_in_a_boat_in_german_and_checks_it_out_again(
    server: LiveServer, new_context: NewContext
) -> None:
    check_in_a_yacht_and_check_it_out(server, new_context, GERMAN)


def test_a_visitor_checks_in_a_boat_in_english_and_checks_it_out_again(
    server: LiveServer, new_context: NewContext
) -> None:
    check_in_a_yacht_and_check_it_out(server, new_context, ENGLISH)


def test_a_bad_mmsi_is_explained_next_to_the_field_as_the_visitor_leaves_it(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    page = new_context(locale="en-GB").new_page()
    page.goto(server.url(f"{point.url}?kind=vessel"))
    same_document(page)

    page.locator("#f-mmsi").fill("12345")
    page.keyboard.press("Tab")

    error = page.locator("#err-mmsi")
    expect(error).to_contain_text("9 digits")
    expect(error).to_be_visible()
    field = page.locator(".field").filter(has=page.locator("#f-mmsi"))
    expect(field.locator("#err-mmsi")).to_have_count(1)
    expect(page.locator("#f-mmsi")).to_have_attribute("aria-describedby", re.compile("err-mmsi"))
    expect(page.locator("#f-mmsi")).to_have_value("12345")
    # The field the visitor has not reached yet is not judged.
    expect(page.locator("#err-guest_name")).to_have_text("")
    assert still_same_document(page), "checking the field reloaded the page"

    page.locator("#f-mmsi").fill("244123456")
    page.keyboard.press("Tab")
    expect(error).to_have_text("")
    assert still_same_document(page)


def test_the_fields_of_another_kind_swap_in_and_what_was_typed_stays(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    page = new_context(locale="en-GB").new_page()
    page.goto(server.url(f"{point.url}?kind=vessel"))
    page.locator("#f-guest_name").fill("Jan de Vries")
    expect(page.locator("#f-plate")).to_have_count(0)
    same_document(page)

    page.locator("nav.kinds a[href$='?kind=vehicle']").click()

    expect(page.locator("#f-plate")).to_be_visible()
    expect(page.locator("#f-vessel_name")).to_have_count(0)
    # The optional fields behind "More details" are the vehicle's too.
    expect(page.locator("#kind-more #f-plate_country")).to_have_count(1)
    expect(page.locator("#f-vessel_type")).to_have_count(0)
    expect(page.locator("input[name=kind]")).to_have_value("vehicle")
    expect(page.locator("#f-guest_name")).to_have_value("Jan de Vries")
    assert still_same_document(page), "switching the kind reloaded the page"
    assert page.url.endswith("?kind=vessel")

    # The swapped-in form registers the car.
    page.locator("#f-plate").fill("ab-123-c")
    page.locator("#f-residence").fill("Hoorn")
    page.locator("#f-persons").fill("1")
    submit(page)
    page.wait_for_url(PRIVATE_LINK)
    expect(page.locator(".summary")).to_contain_text("AB-123-C")  # a Dutch side code
    stored = server.stored_visit(page.locator(".summary .ref").inner_text().strip())
    assert stored is not None
    assert (stored.kind, stored.guest_name) == ("vehicle", "Jan de Vries")


def test_the_form_works_without_javascript(server: LiveServer, new_context: NewContext) -> None:
    point = server.new_point("marina")
    page = new_context(locale="en-GB", java_script_enabled=False).new_page()
    page.goto(server.url(point.url))
    page.locator("a.choice[href$='?kind=vessel']").click()
    page.wait_for_url(re.compile(r"\?kind=vessel$"))
    fill_yacht(page, persons="0")

    with page.expect_response(is_form_post) as answer:
        submit(page)
    assert answer.value.status == 422
    # The error summary has the focus (autofocus, without JavaScript) and links to the field.
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#error-summary a[href='#f-persons']")).to_contain_text("from 1 to 99")
    expect(page.locator("#err-persons")).to_contain_text("from 1 to 99")
    expect(page.locator("#f-persons")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-vessel_name")).to_have_value("Zeemeeuw")
    expect(page.locator("#f-guest_name")).to_have_value("Jan de Vries")
    expect(page.locator("#f-length_m")).to_have_value("11,5")
    expect(page.locator("#f-vessel_type")).to_have_value("sail")
    expect(page.locator("#f-country")).to_have_value("NL")

    page.locator("#f-persons").fill("2")
    submit(page)
    page.wait_for_url(PRIVATE_LINK)
    expect(page.locator(".summary")).to_contain_text("Zeemeeuw")
    assert REFERENCE.match(page.locator(".summary .ref").inner_text().strip())


def decode_qr(page: Page, selector: str) -> str:
    import zxingcpp
    from PIL import Image

    picture = Image.open(io.BytesIO(page.locator(selector).screenshot()))
    found = zxingcpp.read_barcodes(picture)
    assert found, f"no readable QR code in {selector}"
    return str(found[0].text)


def test_a_kiosk_tablet_shows_the_link_only_as_a_qr_code_and_then_clears_itself(
    quick_kiosk_server: LiveServer, new_context: NewContext
) -> None:
    server = quick_kiosk_server
    point = server.new_point("marina", kiosk_mode=True)
    page = open_start(new_context(locale="en-GB", **TABLET), server, point)
    page.locator("a.choice[href$='?kind=vessel']").click()
    expect(page.locator("#f-remember")).to_have_count(0)  # a shared tablet remembers nobody
    fill_yacht(page)
    submit(page)

    qr = page.locator(".qr svg")
    expect(qr).to_be_visible()
    shown_at = time.monotonic()
    reference = page.locator("h1").inner_text().split()[-1]
    assert REFERENCE.match(reference), reference
    assert "/k/v/" not in page.content(), "the private link is on the tablet's screen as text"
    assert "/k/v/" not in page.url
    link = decode_qr(page, ".qr")
    assert link.startswith(server.base_url + "/k/v/"), link

    expect(page.locator("ul.choices")).to_be_visible(timeout=(QUICK_KIOSK_IDLE_SECONDS + 5) * 1000)
    assert time.monotonic() - shown_at >= QUICK_KIOSK_IDLE_SECONDS - 1
    expect(page.locator(".qr")).to_have_count(0)
    assert reference not in page.content()
    assert "Zeemeeuw" not in page.content()

    # The private link in the QR code works on the visitor's own phone.
    phone = new_context(locale="en-GB").new_page()
    phone.goto(link)
    expect(phone.locator(".summary .ref")).to_have_text(reference)


def test_a_half_filled_form_on_a_kiosk_tablet_clears_itself_after_the_idle_time(
    quick_kiosk_server: LiveServer, new_context: NewContext
) -> None:
    server = quick_kiosk_server
    point = server.new_point("marina", kiosk_mode=True)
    page = new_context(locale="en-GB", **TABLET).new_page()
    page.goto(server.url(f"{point.url}?kind=vessel"))
    page.locator("#f-vessel_name").fill("Geheimzinnig")
    page.locator("#f-guest_name").fill("Piet Privé")
    typed_at = time.monotonic()

    expect(page.locator("ul.choices")).to_be_visible(timeout=(QUICK_KIOSK_IDLE_SECONDS + 5) * 1000)
    assert time.monotonic() - typed_at >= QUICK_KIOSK_IDLE_SECONDS - 1
    assert page.url == server.url(point.url)
    shown = page.content()
    assert "Geheimzinnig" not in shown
    assert "Piet Privé" not in shown
    values: list[Any] = page.eval_on_selector_all(
        "input, textarea", "fields => fields.map(f => f.value)"
    )
    assert "Geheimzinnig" not in values
    assert "Piet Privé" not in values


def test_a_remembered_boat_is_offered_at_another_point_and_can_be_forgotten(
    server: LiveServer, new_context: NewContext
) -> None:
    first, other = server.new_point("marina"), server.new_point("marina")
    context = new_context(locale="en-GB")
    page = context.new_page()
    page.goto(server.url(f"{first.url}?kind=vessel"))
    typed = fill_yacht(page)
    page.locator("#f-remember").check()
    submit(page)
    page.wait_for_url(PRIVATE_LINK)

    page.goto(server.url(other.url))
    again = page.locator("section.again")
    expect(again.get_by_role("heading", name="Welcome back")).to_be_visible()
    expect(again.get_by_role("button", name="Check in Zeemeeuw again")).to_be_visible()
    again.get_by_role("link", name="Change details first").click()
    page.wait_for_url(re.compile(r"\?kind=vessel$"))
    expect(page.locator("p.note")).to_be_visible()
    for name, value in typed.items():
        expect(page.locator(f"#f-{name}")).to_have_value(value)
    expect(page.locator("#f-vessel_type")).to_have_value("sail")
    expect(page.locator("#f-country")).to_have_value("NL")
    expect(page.locator("#f-remember")).to_be_checked()

    page.goto(server.url(other.url))
    page.get_by_role("button", name="Forget my details on this phone").click()
    page.wait_for_url(server.url(other.url))
    expect(page.locator("section.again")).to_have_count(0)
    assert not [c for c in context.cookies() if c["name"] == "nightreg_remember"]
    page.locator("a.choice[href$='?kind=vessel']").click()
    page.wait_for_url(re.compile(r"\?kind=vessel$"))
    expect(page.locator("#f-vessel_name")).to_have_value("")
    expect(page.locator("#f-guest_name")).to_have_value("")
    expect(page.locator("#f-remember")).not_to_be_checked()
