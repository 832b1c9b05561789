"""A harbour master answers a subject request: finds a plate, prints the report, erases early."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable

import pytest

from tests.browser.live import LiveServer, sign_in_as

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]

# The harbour office's desk, in English so that the assertions read the source texts.
DESK = {
    "viewport": {"width": 1280, "height": 900},
    "is_mobile": False,
    "has_touch": False,
    "locale": "en-GB",
}


def test_a_harbour_master_finds_a_plate_prints_the_report_and_erases_it(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    plate = f"ZX-{secrets.token_hex(2).upper()}-7"
    name = f"Femke Oosterhuis {secrets.token_hex(2)}"
    visit = server.add_visit(
        point.site_slug, kind="vehicle", guest_name=name, residence="Enkhuizen", plate=plate,
        departed=True,
    )  # fmt: skip
    other = server.new_point("marina")
    stranger = server.add_visit(other.site_slug, kind="vehicle", plate=plate)
    master = server.new_staff("harbour_master", [point.site_slug])
    page = new_context(**DESK).new_page()
    sign_in_as(page, server, master)

    page.get_by_role("link", name="Subject requests").click()
    page.wait_for_url(server.url("/admin/subjects"))
    page.get_by_label("Name, boat, registration, MMSI or plate").fill(plate.lower())
    page.get_by_role("button", name="Find").click()

    results = page.locator("#subject-results")
    expect(results).to_contain_text(visit.reference)
    expect(results).to_contain_text(name)
    expect(results).not_to_contain_text(stranger.reference)
    expect(page.locator("h2.subject-key")).to_have_text(visit.subject_key)

    page.get_by_role("link", name="Report to print").click()
    page.wait_for_url(re.compile(r"/admin/subjects/report\?q="))
    expect(page.locator("h1")).to_have_text("Subject-access report")
    expect(page.locator("#report-query")).to_have_text(plate.lower())
    expect(page.locator(f"[data-visit='{visit.id}']")).to_contain_text("Enkhuizen")
    expect(page.locator("#report-retention")).to_contain_text("days after departure")
    expect(page.get_by_role("button", name="Print")).to_be_visible()

    page.go_back()
    page.get_by_role("link", name="Erase early…").click()
    page.wait_for_url(re.compile(r"/admin/subjects/erase\?q="))
    expect(page.locator(f"tr[data-visit='{visit.id}']")).to_be_visible()

    # without a reason the form says so beside the field, and nothing goes
    page.get_by_role("button", name="Erase for good").click()
    expect(page.locator("#reason-error")).to_contain_text("reason")
    assert server.stored_visit(visit.reference) is not None

    page.get_by_label("Why are they erased early?").fill("Request of the person, 14 July")
    page.get_by_role("button", name="Erase for good").click()

    expect(page.locator("#erased")).to_be_visible()
    expect(page.locator("#erased-counts li[data-kind='visits'] .n")).to_have_text("1")
    assert server.stored_visit(visit.reference) is None
    assert server.stored_visit(stranger.reference) is not None
