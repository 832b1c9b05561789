"""An admin places a legal hold on a whole site, reads what it covers, and releases it."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable

import pytest

from tests.browser.axe import BLOCKING_IMPACTS, describe, run_axe
from tests.browser.live import LiveServer, sign_in_as

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]

# The administrator's desk, in English so that the assertions read the source texts.
DESK = {
    "viewport": {"width": 1280, "height": 900},
    "is_mobile": False,
    "has_touch": False,
    "locale": "en-GB",
}


def passes_axe(page: Page, name: str) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    blocking = [v for v in run_axe(page) if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"axe on the {name} ({page.url}):\n{describe(blocking)}"


def test_an_admin_places_a_hold_on_a_site_and_releases_it(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point()
    server.add_visit(point.site_slug, guest_name=f"Gast {secrets.token_hex(4)}")
    admin = server.new_staff("admin")
    case = f"PV-{secrets.token_hex(3)}"
    # axe-core is injected as a script of its own, which the pages' CSP rightly forbids
    page = new_context(bypass_csp=True, **DESK).new_page()
    sign_in_as(page, server, admin)
    page.goto(server.url("/admin/retention/holds"))
    page.get_by_role("link", name="Place a hold").click()
    page.wait_for_url(server.url("/admin/retention/holds/new"))
    passes_axe(page, "new hold form")

    # a first try without a site: the error appears beside the site, the typing stays
    page.get_by_label("Case reference").fill(case)
    page.get_by_label("Reason").fill("The public prosecutor asks to keep the register.")
    page.locator("#scope-site").check()
    page.get_by_role("button", name="Place the hold").click()
    expect(page.locator("p.banner[role=alert]")).to_be_visible()
    expect(page.locator("#site-error")).to_contain_text("choose the site")
    expect(page.locator("#case_reference")).to_have_value(case)
    expect(page.locator("#scope-site")).to_be_checked()
    passes_axe(page, "new hold with errors")

    page.locator("#site").select_option(point.site_slug)
    page.get_by_role("button", name="Place the hold").click()

    page.wait_for_url(re.compile(r"/admin/retention/holds/\d+\?placed=1$"))
    expect(page.locator("h1")).to_have_text(case)
    expect(page.locator("#hold-state")).to_have_text("In force")
    expect(page.locator("#hold-covers")).to_contain_text(f"Everything of {point.site_name}")
    expect(page.locator("#hold-counts")).to_contain_text("1 visit")
    passes_axe(page, "hold")

    page.get_by_label("Why is it released?").fill("The case is closed.")
    page.get_by_role("button", name="Release this hold").click()

    page.wait_for_url(re.compile(r"/admin/retention/holds/\d+\?released=1$"))
    expect(page.locator("p.banner.ok")).to_contain_text("The hold has been released")
    expect(page.locator("#hold-state")).to_have_text("Released")
    expect(page.locator("#hold-released")).to_contain_text("The case is closed.")
    expect(page.get_by_role("button", name="Release this hold")).to_have_count(0)

    page.get_by_role("link", name="Legal holds").first.click()
    row = page.locator("table#holds tr", has_text=case)
    expect(row.locator("td.state")).to_have_text("Released")
    passes_axe(page, "holds list")
