"""The privacy officer reads the retention policies, looks at the next purge in advance and
finds a purge's receipt afterwards; an admin gives a site its own visit retention."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import pytest

from nightreg.clock import SystemClock
from tests.browser.axe import BLOCKING_IMPACTS, describe, run_axe
from tests.browser.live import LiveServer, run_async, sign_in_as

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]

# The privacy officer's desk, in English so that the assertions read the source texts.
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


def run_a_purge(server: LiveServer) -> int:
    """Run the purge now, as the nightly job would; the id of its receipt."""
    from nightreg.db import Database
    from nightreg.services import retention

    async def purge() -> int:
        db = Database(server.settings.database_url)
        try:
            await retention.purge(db, server.settings, now=SystemClock().now())
            from nightreg.services.access import CLI

            return int((await retention.receipts(db, CLI, limit=1))[0]["id"])
        finally:
            await db.dispose()

    return run_async(purge)


def test_an_auditor_reads_the_policies_the_preview_and_a_receipt_and_an_admin_sets_visit_days(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point()
    receipt_id = run_a_purge(server)

    # the privacy officer (axe-core is injected as a script, which the pages' CSP forbids)
    auditor = server.new_staff("auditor")
    page = new_context(bypass_csp=True, **DESK).new_page()
    sign_in_as(page, server, auditor)
    page.get_by_role("link", name="Retention").first.click()
    page.wait_for_url(server.url("/admin/retention"))
    expect(page.locator("h1")).to_have_text("Retention")
    expect(page.locator("#default-visits")).to_contain_text("365 days after departure")
    expect(page.locator("#default-visits")).to_contain_text("article 438")
    expect(page.locator("#default-dismissed-flags")).to_contain_text("should not linger")
    expect(page.locator(f"#site-{point.site_slug}")).to_contain_text("365 days (default)")
    expect(page.locator("#next-run")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d 03:30$"))
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    passes_axe(page, "retention overview")

    page.get_by_role("link", name="See what it will delete").click()
    page.wait_for_url(server.url("/admin/retention/preview"))
    expect(page.locator("h1")).to_have_text("What the next purge will delete")
    expect(page.locator("#by-category-table")).to_contain_text("Visits (with their notes)")
    passes_axe(page, "purge preview")
    page.locator("#f-at").fill("2020-01-01")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#at-error")).to_contain_text("today or a later day")
    passes_axe(page, "purge preview with an error")

    page.get_by_role("link", name="Retention").first.click()
    page.locator(f"#receipt-{receipt_id} a").click()
    page.wait_for_url(server.url(f"/admin/retention/receipts/{receipt_id}"))
    expect(page.locator("h1")).to_have_text("Purge receipt")
    expect(page.locator("#deleted-visits")).to_contain_text("Visits (with their notes)")
    expect(page.locator("#receipt-status")).to_have_text("finished")
    passes_axe(page, "purge receipt")

    # the admin gives the site its own visit retention
    admin = server.new_staff("admin")
    desk = new_context(bypass_csp=True, **DESK).new_page()
    sign_in_as(desk, server, admin)
    desk.goto(server.url("/admin/retention"))
    desk.locator(f"#site-{point.site_slug}").get_by_role("link", name="Edit").click()
    desk.wait_for_url(server.url(f"/admin/retention/sites/{point.site_slug}"))
    passes_axe(desk, "site retention form")
    desk.get_by_label("Visits: days after departure").fill("0")
    desk.get_by_role("button", name="Save").click()
    expect(desk.locator("#f-visit_days-error")).to_contain_text("between 1 and 3650")
    passes_axe(desk, "site retention form with an error")
    desk.get_by_label("Visits: days after departure").fill("200")
    desk.get_by_role("button", name="Save").click()

    desk.wait_for_url(re.compile(r"/admin/retention\?changed="))
    expect(desk.locator("#changed")).to_contain_text("has been changed")
    expect(desk.locator(f"#site-{point.site_slug} td.visit_days")).to_have_text("200 days (own)")
    kiosk = new_context(**{**DESK, "viewport": {"width": 800, "height": 1200}}).new_page()
    kiosk.goto(server.url(f"/k/{point.token}?kind=vessel"))
    expect(kiosk.locator("details.privacy")).to_contain_text("kept for 200 days")
