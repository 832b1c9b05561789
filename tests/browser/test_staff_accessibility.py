"""Every staff page passes axe-core at the office desk and on a phone: no serious or critical
violation. axe-core and the helpers come from test_accessibility.py (the kiosk's pages)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.browser.axe import BLOCKING_IMPACTS, describe, layout_only, run_axe
from tests.browser.live import SCREENS, LiveServer, a_flag, run_async, sign_in_as
from tests.factories import STAFF_PASSWORD, StaffRef

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = [pytest.mark.browser, layout_only]


@dataclass(frozen=True)
class Harbour:
    """One site with visits of every state, its harbour master and an administrator."""

    slug: str
    visit_id: int
    harbour_master: StaffRef
    admin: StaffRef
    flag_id: int


def sign_in_page(page: Page, server: LiveServer, harbour: Harbour) -> None:
    page.goto(server.url("/admin/sign-in"))


def sign_in_with_an_error(page: Page, server: LiveServer, harbour: Harbour) -> None:
    page.goto(server.url("/admin/sign-in"))
    page.locator("#email").fill(harbour.harbour_master.email)
    page.locator("#password").fill("not-" + STAFF_PASSWORD)
    page.locator("form[action='/admin/sign-in'] button[type=submit]").click()
    expect(page.locator("#sign-in-error")).to_be_visible()


def register_with_a_bad_date(page: Page, server: LiveServer, harbour: Harbour) -> None:
    sign_in_as(page, server, harbour.harbour_master)
    page.goto(server.url(f"/admin/sites/{harbour.slug}/register?from=2026-13-45"))
    expect(page.locator("#register-results p.banner[role=alert]")).to_be_visible()


def correct_form(page: Page, server: LiveServer, harbour: Harbour) -> None:
    sign_in_as(page, server, harbour.harbour_master)
    page.goto(server.url(f"/admin/visits/{harbour.visit_id}/correct"))
    expect(page.locator("#f-reason")).to_be_visible()


def correct_form_with_errors(page: Page, server: LiveServer, harbour: Harbour) -> None:
    correct_form(page, server, harbour)
    page.locator("#f-guest_name").fill("")
    page.locator("form[action$='/correct'] button[type=submit]").click()
    expect(page.locator("p.banner[role=alert]")).to_be_visible()


def walk_in_form(page: Page, server: LiveServer, harbour: Harbour) -> None:
    sign_in_as(page, server, harbour.harbour_master)
    page.goto(server.url(f"/admin/sites/{harbour.slug}/walk-in"))
    expect(page.locator("#f-vessel_name")).to_be_visible()


def walk_in_with_errors(page: Page, server: LiveServer, harbour: Harbour) -> None:
    walk_in_form(page, server, harbour)
    page.locator("form[action$='/walk-in'] button[type=submit]").click()
    expect(page.locator("p.banner[role=alert]")).to_be_visible()


def password_page(page: Page, server: LiveServer, harbour: Harbour) -> None:
    sign_in_as(page, server, harbour.harbour_master)
    page.goto(server.url("/admin/password"))
    expect(page.locator("#current")).to_be_visible()


def password_with_errors(page: Page, server: LiveServer, harbour: Harbour) -> None:
    password_page(page, server, harbour)
    page.locator("#current").fill("not-" + STAFF_PASSWORD)
    page.locator("#new").fill("a new password for the harbour")
    page.locator("#repeat").fill("another new password")
    page.locator("form[action='/admin/password'] button[type=submit]").click()
    expect(page.locator("#current-error")).to_be_visible()


def new_user_with_errors(page: Page, server: LiveServer, harbour: Harbour) -> None:
    sign_in_as(page, server, harbour.admin)
    page.goto(server.url("/admin/users/new"))
    page.locator("main form button[type=submit]").first.click()
    expect(page.locator("main p.error").first).to_be_visible()


def flag_page(page: Page, server: LiveServer, harbour: Harbour) -> None:
    sign_in_as(page, server, harbour.harbour_master)
    page.goto(server.url(f"/admin/flags/{harbour.flag_id}"))
    expect(page.locator("#flag-reason")).to_be_visible()


def dismiss_without_a_reason(page: Page, server: LiveServer, harbour: Harbour) -> None:
    flag_page(page, server, harbour)
    page.locator("#f-dismiss-reason").evaluate("el => el.removeAttribute('required')")
    page.locator("#f-dismiss-reason").locator("xpath=ancestor::form").locator(
        "button[type=submit]"
    ).click()
    expect(page.locator("#err-dismiss-reason")).not_to_be_empty()


def forward_preview(page: Page, server: LiveServer, harbour: Harbour) -> None:
    sign_in_as(page, server, harbour.harbour_master)
    page.goto(server.url(f"/admin/flags/{harbour.flag_id}/forward"))
    expect(page.locator("main h1")).to_be_visible()


def information_pictures_with_a_bad_date(page: Page, server: LiveServer, harbour: Harbour) -> None:
    sign_in_as(page, server, harbour.harbour_master)
    page.goto(server.url("/admin/insight?from=2026-13-45"))
    expect(page.locator("#err-from")).to_be_visible()


def new_agreement_with_errors(page: Page, server: LiveServer, harbour: Harbour) -> None:
    sign_in_as(page, server, harbour.admin)
    page.goto(server.url("/admin/agreements/new"))
    page.get_by_role("button", name="Make the agreement").click()
    expect(page.locator("#name-error")).to_be_visible()


def ais_card_with_a_refused_polygon(page: Page, server: LiveServer, harbour: Harbour) -> None:
    sign_in_as(page, server, harbour.admin)
    page.goto(server.url(f"/admin/sites/{harbour.slug}#ais"))
    # Corners in the wrong order: the edges cross.
    corners = "52.6400, 5.0550\n52.6430, 5.0650\n52.6400, 5.0650\n52.6430, 5.0550"
    page.locator("#ais-ais_area_polygon").fill(corners)
    page.get_by_role("button", name="Save the AIS setting").click()
    expect(page.locator("#ais-ais_area_polygon-error")).to_be_visible()


# Every staff page as each role first sees it is in test_staff_tour.py (both screens, axe, no
# sideways scroll); here are the states the tour does not reach: signing in, refused forms,
# bad filters, and the forward preview.
PAGES: dict[str, Callable[[Page, LiveServer, Harbour], None]] = {
    "sign-in page": sign_in_page,
    "sign-in page with an error": sign_in_with_an_error,
    "register with a bad date": register_with_a_bad_date,
    "correction form with errors": correct_form_with_errors,
    "walk-in form with errors": walk_in_with_errors,
    "password page with errors": password_with_errors,
    "new account with errors": new_user_with_errors,
    "a flag dismissed without a reason": dismiss_without_a_reason,
    "forward preview": forward_preview,
    "information pictures with a bad date": information_pictures_with_a_bad_date,
    "new agreement with errors": new_agreement_with_errors,
    "AIS card with a refused polygon": ais_card_with_a_refused_polygon,
}


def correct(server: LiveServer, visit_id: int, changes: dict[str, str], reason: str) -> None:
    from nightreg.clock import SystemClock
    from nightreg.db import Database
    from nightreg.services import corrections
    from nightreg.services.access import Actor

    async def run() -> None:
        db = Database(server.settings.database_url)
        try:
            await corrections.correct_visit(
                db, Actor(kind="cli", name="browser test"), visit_id, changes, reason,
                now=SystemClock().now(),
            )  # fmt: skip
        finally:
            await db.dispose()

    run_async(run)


@pytest.fixture(scope="module")
def harbour(server: LiveServer) -> Harbour:
    from datetime import timedelta

    point = server.new_point("marina")
    slug = point.site_slug
    visit = server.add_visit(slug, guest_name="Anna Visser", vessel_name="Zeemeeuw")
    server.add_visit(slug, guest_name="Piet Jansen", vessel_name="Eend", registration="X")
    server.add_visit(
        slug,
        kind="vehicle",
        guest_name="Karel Claes",
        plate="1-ABC-234",
        arrived_ago=timedelta(days=2),
        stays=timedelta(hours=-2),  # overdue: expected to leave two hours ago
    )
    server.add_visit(slug, guest_name="Vera Vertrokken", departed=True)
    correct(server, visit.id, {"berth": "B12"}, "Moved to another berth")  # a history to show
    return Harbour(
        slug=slug,
        visit_id=visit.id,
        harbour_master=server.new_staff("harbour_master", [slug]),
        admin=server.new_staff("admin", [slug]),
        flag_id=a_flag(server, slug, visit.id),
    )


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("name", PAGES)
def test_the_staff_page_has_no_serious_accessibility_violation(
    name: str,
    screen: str,
    server: LiveServer,
    harbour: Harbour,
    new_context: Callable[..., BrowserContext],
) -> None:
    # The app's CSP forbids injected scripts; axe is one.
    page = new_context(bypass_csp=True, locale="en-GB", **SCREENS[screen]).new_page()
    PAGES[name](page, server, harbour)

    violations = run_axe(page)

    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"axe on the {name}, {screen} ({page.url}):\n{describe(blocking)}"
