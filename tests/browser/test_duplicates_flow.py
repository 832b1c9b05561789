"""A boat checked in twice, in browsers: a second phone's check-in of a boat already present
gets the ordinary confirmation, and the harbour master merges the two on Tonight's board and
the visit's page."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable

import pytest

from tests.browser.live import LiveServer, sign_in_as
from tests.factories import PointRef

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-GB",
}
DESK = {"viewport": {"width": 1366, "height": 900}, "locale": "en-GB"}


def check_in(page: Page, server: LiveServer, point: PointRef, **typed: str) -> str:
    """A visitor checks a boat in, filling what is required; the reference shown."""
    page.goto(server.url(f"{point.url}?kind=vessel"))
    for name, value in typed.items():
        page.locator(f"#f-{name}").fill(value)
    page.locator("form.checkin button[type=submit]").click()
    page.wait_for_url(re.compile(r"/k/v/[^/?#]+\?new=1$"))
    return page.locator(".ref").first.inner_text().strip()


def test_a_second_phones_check_in_of_a_boat_present_is_merged_by_the_harbour_master(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    staff = server.new_staff("harbour_master", [point.site_slug])
    registration = f"NL-{secrets.token_hex(3).upper()}"
    boat = {"vessel_name": "Zeemeeuw", "registration": registration, "persons": "2"}
    jan = new_context(**PHONE).new_page()
    first_ref = check_in(jan, server, point, guest_name="Jan de Vries", residence="Hoorn", **boat)

    # Another phone, without Jan's cookies: the same boat, checked in again.
    piet = new_context(**PHONE).new_page()
    second_ref = check_in(
        piet, server, point, guest_name="Piet Smit", residence="Enkhuizen", **boat
    )
    piet_link = piet.url.split("?")[0]

    assert second_ref != first_ref
    confirmation = piet.locator("main")
    expect(confirmation).to_contain_text("Piet Smit")
    for other in ("Jan de Vries", "Hoorn", first_ref):
        expect(confirmation).not_to_contain_text(other)
    expect(confirmation).not_to_contain_text(re.compile("duplicate|already", re.I))

    office = new_context(**DESK).new_page()
    sign_in_as(office, server, staff)
    office.goto(server.url(f"/admin/sites/{point.site_slug}/tonight"))
    expect(office.locator("#count-present")).to_have_text("1")
    duplicates = office.locator("#duplicates")
    expect(duplicates).to_contain_text("Piet Smit")
    expect(duplicates).to_contain_text("Jan de Vries")

    duplicates.get_by_role("link", name="Merge or keep both").click()
    office.wait_for_url(re.compile(r"/admin/visits/\d+#duplicate$"))
    resolve = office.locator("#duplicate")
    expect(resolve).to_contain_text(first_ref)
    resolve.get_by_role("button", name=f"Merge into {first_ref}").click()

    office.wait_for_url(re.compile(r"/admin/visits/\d+\?merged=1$"))
    expect(office.get_by_role("status")).to_have_text("The two visits are now one.")
    expect(office.locator("h1")).to_contain_text(first_ref)
    expect(office.locator("main")).to_contain_text(f"Merged with visit {second_ref}")
    office.goto(server.url(f"/admin/sites/{point.site_slug}/tonight"))
    expect(office.locator("#count-present")).to_have_text("1")
    expect(office.locator("#duplicates")).to_have_count(0)

    # Piet's private link still works: it shows the one visit left.
    piet.goto(piet_link)
    expect(piet.locator("main")).to_contain_text(first_ref)
