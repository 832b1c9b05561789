"""The staff side as a harbour master's browser uses it: sign in, tonight, search, correct,
print, sign out. Each test makes its own sites, accounts and visits on the live server."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.live import LiveServer, sign_in_as
from tests.factories import PointRef

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]

# The harbour office's PC, in English so that the assertions read the source texts.
DESK = {
    "viewport": {"width": 1280, "height": 900},
    "is_mobile": False,
    "has_touch": False,
    "locale": "en-GB",
}
SIGN_IN = re.compile(r"/admin/sign-in(\?.*)?$")
BAD_CREDENTIALS = "The e-mail address or the password is not right."
# The tonight board asks for itself again this often (hx-trigger="every 15s").
POLL_SECONDS = 15


def desk_page(new_context: NewContext) -> Page:
    return new_context(**DESK).new_page()


def same_document(page: Page) -> None:
    """Mark the loaded document; `still_same_document` then tells whether a page load happened."""
    page.evaluate("window.__nightregSameDocument = true")


def still_same_document(page: Page) -> bool:
    return bool(page.evaluate("window.__nightregSameDocument === true"))


def session_cookies(context: BrowserContext) -> list[Any]:
    return [c for c in context.cookies() if "nightreg_session" in c["name"]]


def is_htmx_get(path: str) -> Callable[[Any], bool]:
    """An answer to a request htmx made (not a page load) for `path`."""

    def matches(response: Any) -> bool:
        request = response.request
        return bool(
            request.method == "GET"
            and request.url.split("?")[0].endswith(path)
            and request.headers.get("hx-request") == "true"
        )

    return matches


def check_in_at_the_kiosk(page: Page, server: LiveServer, point: PointRef, **typed: str) -> None:
    """A visitor checks a boat in on their own phone."""
    page.goto(server.url(f"{point.url}?kind=vessel"))
    values = {
        "vessel_name": "Zeemeeuw",
        "registration": "NL-123-AB",
        "guest_name": "Jan de Vries",
        "residence": "Hoorn",
        "persons": "2",
        **typed,
    }
    for name, value in values.items():
        page.locator(f"#f-{name}").fill(value)
    page.locator("details.more > summary").click()  # the optional fields
    page.locator("#f-vessel_type").select_option("sail")
    page.locator("form.checkin button[type=submit]").click()
    page.wait_for_url(re.compile(r"/k/v/[^/?#]+\?new=1$"))


def next_dd(term: Any) -> Any:
    """The value of a term in a description list."""
    return term.locator("xpath=following-sibling::dd[1]")


def row_of(within: Any, guest_name: str) -> Any:
    """The table row whose link names the guest, within a page or a part of it."""
    page = getattr(within, "page", within)  # a locator knows its page; `has` starts from there
    return within.locator("tr").filter(has=page.get_by_role("link", name=guest_name, exact=True))


# --- signing in and out ------------------------------------------------------------------------


def test_a_harbour_master_signs_in_with_email_and_password_and_lands_on_the_home_page(
    server: LiveServer, new_context: NewContext
) -> None:
    north, south = server.new_point("marina"), server.new_point("marina")
    staff = server.new_staff("harbour_master", [north.site_slug, south.site_slug])
    context = new_context(**DESK)
    page = context.new_page()

    page.goto(server.url("/admin/"))
    page.wait_for_url(SIGN_IN)
    page.locator("#email").fill(staff.email.upper())  # the address is not case-sensitive
    page.locator("#password").fill(staff.password)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(server.url("/admin/"))
    expect(page.locator("h1")).to_have_text("What needs doing")
    for point in (north, south):  # each site's figures, each leading to its Tonight
        present = page.locator(f"#present-{point.site_slug} a")
        expect(present).to_have_attribute("href", f"/admin/sites/{point.site_slug}/tonight")
    expect(page.locator("header details.account .who strong")).to_have_text(staff.email)
    assert len(session_cookies(context)) == 1
    assert session_cookies(context)[0]["httpOnly"]


def test_a_wrong_password_shows_the_error_and_opens_no_session(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    staff = server.new_staff("harbour_master", [point.site_slug])
    context = new_context(**DESK)
    page = context.new_page()
    page.goto(server.url("/admin/sign-in"))

    page.locator("#email").fill(staff.email)
    page.locator("#password").fill(staff.password + "-not")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()

    assert answer.value.status == 400
    error = page.locator("#sign-in-error")
    expect(error).to_have_text(BAD_CREDENTIALS)
    expect(error).to_have_attribute("role", "alert")
    expect(page.locator("#email")).to_have_value(staff.email)
    expect(page.locator("#email")).to_have_attribute("aria-describedby", "sign-in-error")
    expect(page.locator("#password")).to_have_value("")
    assert session_cookies(context) == []
    # Still outside: a staff page sends the browser back to the sign-in page.
    page.goto(server.url(f"/admin/sites/{point.site_slug}/tonight"))
    page.wait_for_url(SIGN_IN)
    expect(page.locator("header details.account")).to_have_count(0)


def test_signing_out_ends_the_session(server: LiveServer, new_context: NewContext) -> None:
    point = server.new_point("marina")
    staff = server.new_staff("harbour_master", [point.site_slug])
    context = new_context(**DESK)
    page = context.new_page()
    sign_in_as(page, server, staff)
    page.wait_for_url(server.url("/admin/"))
    [cookie] = session_cookies(context)

    page.locator("details.account > summary").click()  # the account menu
    page.get_by_role("button", name="Sign out").click()

    page.wait_for_url(SIGN_IN)
    assert session_cookies(context) == []
    page.goto(server.url("/admin/"))
    page.wait_for_url(SIGN_IN)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("header details.account")).to_have_count(0)
    # The old session cookie, kept by someone, opens nothing: the server ended the session.
    other = new_context(**DESK)
    other.add_cookies([cookie])
    stolen = other.new_page()
    stolen.goto(server.url(f"/admin/sites/{point.site_slug}/tonight"))
    stolen.wait_for_url(SIGN_IN)
    expect(stolen.locator("#tonight-board")).to_have_count(0)


# --- tonight -----------------------------------------------------------------------------------


def test_tonight_shows_a_boat_checked_in_at_the_kiosk_without_a_reload(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    staff = server.new_staff("harbour_master", [point.site_slug])
    office = desk_page(new_context)
    # Timers of the office page run on a clock the test can move on, so that the board's own
    # 15-second poll fires without waiting 15 seconds; nothing else about the page changes.
    office.clock.install()
    sign_in_as(office, server, staff)
    tonight = server.url(f"/admin/sites/{point.site_slug}/tonight")
    office.goto(tonight)
    board = office.locator("#tonight-board")
    expect(board).to_have_attribute("hx-trigger", f"every {POLL_SECONDS}s")
    expect(office.locator("#count-present")).to_have_text("0")
    expect(board).not_to_contain_text("Stormvogel")
    same_document(office)

    visitor = new_context(locale="en-GB").new_page()
    check_in_at_the_kiosk(visitor, server, point, vessel_name="Stormvogel", guest_name="Eva Smit")

    with office.expect_response(is_htmx_get(f"/sites/{point.site_slug}/tonight")) as poll:
        office.clock.fast_forward((POLL_SECONDS + 1) * 1000)
    assert poll.value.status == 200
    expect(office.locator("#count-present")).to_have_text("1")
    expect(office.locator("#count-vessel")).to_have_text("1")
    for caption in ("Present now", "Arrived today"):
        table = board.locator("table").filter(
            has=office.locator("caption", has_text=re.compile(f"^{caption}"))
        )
        expect(row_of(table, "Eva Smit")).to_contain_text("Stormvogel")
    expect(board).to_have_count(1)  # the board replaced itself, it was not added a second time
    assert still_same_document(office), "the board reloaded the page instead of swapping itself"
    assert office.url == tonight

    # And it keeps polling: the swapped-in board has the trigger too.
    with office.expect_response(is_htmx_get(f"/sites/{point.site_slug}/tonight")):
        office.clock.fast_forward((POLL_SECONDS + 1) * 1000)
    expect(office.locator("#count-present")).to_have_text("1")
    assert still_same_document(office)


# --- the register ------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["zee-MEEUW", "ZEE meeuw", " zeemeeuw "])
def test_searching_the_register_finds_the_boat_whatever_the_case_spaces_and_dashes(
    server: LiveServer, new_context: NewContext, typed: str
) -> None:
    here, elsewhere = server.new_point("marina"), server.new_point("marina")
    wanted = server.add_visit(here.site_slug, guest_name="Anna Visser", vessel_name="Zeemeeuw")
    server.add_visit(here.site_slug, guest_name="Piet Jansen", vessel_name="Eend", registration="X")
    # The same boat's name at the other harbour, which this account also works on.
    server.add_visit(elsewhere.site_slug, guest_name="Bram Bakker", vessel_name="Zeemeeuw")
    staff = server.new_staff("harbour_master", [here.site_slug, elsewhere.site_slug])
    page = desk_page(new_context)
    sign_in_as(page, server, staff)
    register = f"/admin/sites/{here.site_slug}/register"
    page.goto(server.url(register))
    expect(row_of(page, "Piet Jansen")).to_have_count(1)
    same_document(page)

    with page.expect_response(is_htmx_get(register)) as answer:
        page.get_by_label("Search", exact=True).fill(typed)
    assert answer.value.status == 200

    rows = page.locator("#register-rows tr")
    expect(rows).to_have_count(1)
    expect(row_of(page, "Anna Visser")).to_contain_text("Zeemeeuw")
    expect(row_of(page, "Anna Visser").get_by_role("link")).to_have_attribute(
        "href", f"/admin/visits/{wanted.id}"
    )
    expect(page.locator("#register-results")).not_to_contain_text("Piet Jansen")
    expect(page.locator("#register-results")).not_to_contain_text("Bram Bakker")
    assert still_same_document(page), "the search reloaded the page"
    # The search is in the address bar, so that it can be bookmarked or reloaded.
    assert page.url.split("?")[0] == server.url(register)
    assert "q=" in page.url

    page.reload()
    expect(page.get_by_label("Search", exact=True)).to_have_value(typed.strip())
    expect(page.locator("#register-rows tr")).to_have_count(1)
    expect(row_of(page, "Anna Visser")).to_be_visible()


# --- a visit -----------------------------------------------------------------------------------


def test_a_correction_with_its_reason_is_shown_on_the_visit_and_in_its_history(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    visit = server.add_visit(point.site_slug, guest_name="Jan de Vires")
    staff = server.new_staff("harbour_master", [point.site_slug])
    page = desk_page(new_context)
    sign_in_as(page, server, staff)
    page.goto(server.url(f"/admin/visits/{visit.id}"))
    expect(page.locator("h1")).to_contain_text("Jan de Vires")

    page.get_by_role("link", name="Correct", exact=True).click()
    page.wait_for_url(server.url(f"/admin/visits/{visit.id}/correct"))
    expect(page.locator("#f-guest_name")).to_have_value("Jan de Vires")
    page.locator("#f-guest_name").fill("Jan de Vries")
    page.locator("#f-reason").fill("Typo at the kiosk, as on his passport")
    page.get_by_role("button", name="Save the correction").click()

    page.wait_for_url(re.compile(rf"/admin/visits/{visit.id}\?saved=\d+$"))
    expect(page.locator("#saved")).to_contain_text("Saved: 1 field changed.")
    expect(page.locator("h1")).to_contain_text("Jan de Vries")
    expect(page.locator("h1")).not_to_contain_text("Vires")
    details = page.locator("dl.summary")
    expect(next_dd(details.locator("dt", has_text=re.compile("^Name$")))).to_have_text(
        "Jan de Vries"
    )
    entry = page.locator("section[aria-labelledby=h-history] ol.history > li").filter(
        has_text="Corrected"
    )
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("Reason: Typo at the kiosk, as on his passport")
    expect(entry).to_contain_text(staff.email)
    change = entry.locator("ul li", has_text="Name:")
    expect(change.locator("del")).to_have_text("Jan de Vires")
    expect(change.locator("ins")).to_have_text("Jan de Vries")


def test_a_correction_without_a_reason_is_refused_beside_the_field_and_keeps_what_was_typed(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    visit = server.add_visit(point.site_slug, guest_name="Jan de Vires")
    staff = server.new_staff("harbour_master", [point.site_slug])
    page = desk_page(new_context)
    sign_in_as(page, server, staff)
    page.goto(server.url(f"/admin/visits/{visit.id}/correct"))

    page.locator("#f-guest_name").fill("Jan de Vries")
    page.get_by_role("button", name="Save the correction").click()

    expect(page.locator("p.banner[role=alert]")).to_be_visible()
    expect(page.locator("#err-reason")).not_to_have_text("")
    expect(page.locator("#f-reason")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-guest_name")).to_have_value("Jan de Vries")
    page.goto(server.url(f"/admin/visits/{visit.id}"))
    expect(page.locator("h1")).to_contain_text("Jan de Vires")


# --- the police print --------------------------------------------------------------------------


def test_the_police_print_lists_the_visits_present_and_prints_only_the_register(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    boat = server.add_visit(
        point.site_slug, guest_name="Greta Berger", vessel_name="Albatros", registration="DE-4711"
    )
    car = server.add_visit(
        point.site_slug, kind="vehicle", guest_name="Karel Claes", plate="1-ABC-234"
    )
    server.add_visit(point.site_slug, guest_name="Vertrokken Vera", departed=True)
    elsewhere = server.new_point("marina")
    server.add_visit(elsewhere.site_slug, guest_name="Elders Evert")
    staff = server.new_staff("harbour_master", [point.site_slug, elsewhere.site_slug])
    page = desk_page(new_context)
    sign_in_as(page, server, staff)

    page.goto(server.url(f"/admin/sites/{point.site_slug}/print"))

    table = page.locator("article.police-print table.print-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    for visit, shown in ((boat, "Albatros"), (car, "1-ABC-234")):
        row = table.locator("tbody tr", has_text=visit.reference)
        expect(row).to_contain_text(visit.guest_name)
        expect(row).to_contain_text(shown)
    expect(table).not_to_contain_text("Vertrokken Vera")
    expect(table).not_to_contain_text("Elders Evert")
    head = page.locator("article.police-print .print-head")
    expect(head).to_contain_text("Jachthaven Testhaven")
    expect(next_dd(head.locator("dt", has_text="Entries"))).to_have_text("2")
    expect(head).to_contain_text(staff.email)

    # The Print button opens the browser's print dialogue.
    page.evaluate(
        "() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; }"
    )
    page.get_by_role("button", name="Print", exact=True).click()
    assert page.evaluate("window.__printed") == 1

    # On paper: the register and its header, without the bars, the form and the buttons.
    page.emulate_media(media="print")
    expect(table).to_be_visible()
    expect(head).to_be_visible()
    for chrome in ("header.bar", "nav.sitenav", "form.filters", "button[data-print]"):
        expect(page.locator(chrome)).to_be_hidden()
