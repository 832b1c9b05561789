"""A harbour master records what they saw on a visit, from its page to the flag it raises."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import pytest

from tests.browser.live import LiveServer, sign_in_as

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


def desk_page(new_context: NewContext) -> Page:
    return new_context(**DESK).new_page()


def test_a_harbour_master_records_an_observation_on_a_visit_and_lands_on_its_flag(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    visit = server.add_visit(point.site_slug, guest_name="Piet Zwart", vessel_name="Nachtvlinder")
    staff = server.new_staff("harbour_master", [point.site_slug])
    page = desk_page(new_context)
    sign_in_as(page, server, staff)
    page.goto(server.url(f"/admin/visits/{visit.id}"))

    page.get_by_role("link", name="Record an observation").click()
    page.wait_for_url(
        server.url(f"/admin/sites/{point.site_slug}/observations/new?visit={visit.id}")
    )
    expect(page.locator("main")).to_contain_text(visit.reference)
    page.get_by_label("Boat low in the water").check()
    page.get_by_label("Interest in cameras or patrols").check()
    page.locator("#f-text").fill("Lay deep in the water; the skipper asked where the cameras are.")
    page.get_by_role("button", name="Record the observation").click()

    page.wait_for_url(re.compile(r"/admin/flags/\d+$"))
    expect(page.locator("h1")).to_contain_text("Staff observation")
    expect(page.locator("main")).to_contain_text(
        "Staff observed: Boat low in the water, Interest in cameras or patrols."
    )
    expect(page.locator("main")).to_contain_text(visit.reference)


def test_an_empty_observation_is_refused_beside_the_checklist_and_keeps_the_place(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("business_park")
    staff = server.new_staff("security", [point.site_slug])
    page = desk_page(new_context)
    sign_in_as(page, server, staff)
    page.goto(server.url(f"/admin/sites/{point.site_slug}/observations/new"))

    page.locator("#f-location").fill("Unit 14")
    page.get_by_role("button", name="Record the observation").click()

    expect(page.locator("p.banner[role=alert]")).to_be_visible()
    expect(page.locator("#err-indicators")).to_contain_text("Please tick at least one indicator")
    expect(page.locator("#f-location")).to_have_value("Unit 14")
    page.get_by_label("Chemical smells").check()
    page.get_by_role("button", name="Record the observation").click()
    page.wait_for_url(re.compile(r"/admin/flags/\d+$"))
