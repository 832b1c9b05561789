"""Two-factor sign-in in a real browser: an auditor, whose role must have a second factor, enrols
at the first sign-in by typing the key shown on the page into an "app" (pyotp), keeps the
recovery codes, signs out, and signs in again with a code."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pyotp
import pytest

from nightreg.clock import SystemClock
from tests.browser.axe import AXE, BLOCKING_IMPACTS, describe
from tests.browser.live import LiveServer, live_server
from tests.factories import STAFF_PASSWORD

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]
DESK = {
    "viewport": {"width": 1280, "height": 900},
    "is_mobile": False,
    "has_touch": False,
    "locale": "en-GB",
}


@pytest.fixture(scope="module")
def two_factor_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server with the installation's default: admins, analysts and auditors need it."""
    with live_server(
        shared_database_url,
        tmp_path_factory.mktemp("live-2fa"),
        two_factor_roles=("admin", "analyst", "auditor"),
    ) as live:
        yield live


def password_step(page: Page, server: LiveServer, email: str) -> None:
    page.goto(server.url("/admin/sign-in"))
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now.

    axe is evaluated through the browser's debugging protocol rather than as a script tag, so
    that the page's Content-Security-Policy stays in force for the rest of the test.
    """
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
    blocking = [v for v in result["violations"] if v["impact"] in BLOCKING_IMPACTS]
    assert blocking == [], describe(blocking)


def next_code(secret: str) -> str:
    """The code of the coming half minute: the app's code of now may have been used already
    (at enrolment), and a code counts once; one step ahead is still accepted."""
    return pyotp.TOTP(secret).at(SystemClock().now() + timedelta(seconds=30))


def test_an_auditor_enrols_at_the_first_sign_in_and_then_signs_in_with_a_code(
    two_factor_server: LiveServer, new_context: NewContext
):
    server = two_factor_server
    auditor = server.new_staff("auditor")
    page = new_context(**DESK).new_page()

    password_step(page, server, auditor.email)
    expect(page).to_have_url(re.compile(r"/admin/sign-in/enrol$"))
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    accessible(page)
    page.goto(server.url("/admin/audit"))  # nothing else opens before enrolment is done
    expect(page).to_have_url(re.compile(r"/admin/sign-in\?next="))
    page.go_back()
    expect(page).to_have_url(re.compile(r"/admin/sign-in/enrol$"))

    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("The 6-digit code the app shows now").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Switch on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    accessible(page)
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    menu = page.get_by_role("navigation", name="Main")
    menu.get_by_role("link", name="Audit trail").click()
    expect(page).to_have_url(re.compile(r"/admin/audit$"))
    page.locator("details.account > summary").click()  # the account menu
    page.get_by_role("link", name="Two-factor sign-in").click()
    expect(page.locator("#two-factor-state")).to_contain_text("On since")
    accessible(page)

    page.locator("details.account > summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/admin/sign-in$"))
    password_step(page, server, auditor.email)
    expect(page).to_have_url(re.compile(r"/admin/sign-in/code$"))
    accessible(page)
    page.get_by_label("Code").fill(next_code(secret))
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Audit trail")
