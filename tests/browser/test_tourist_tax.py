"""A harbour master opens the tourist-tax return, picks a month and reads its figures."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from tests.browser.axe import BLOCKING_IMPACTS, describe, run_axe
from tests.browser.live import LiveServer, run_async, sign_in_as

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, expect

pytestmark = pytest.mark.browser

DESK = {
    "viewport": {"width": 1280, "height": 900},
    "is_mobile": False,
    "has_touch": False,
    "locale": "en-GB",
}


def march_visits(server: LiveServer, slug: str) -> None:
    """A boat of 3 across the end of March and a car's day visit (see the HTTP tests)."""
    from nightreg.db import Database
    from nightreg.services.sites import get_site
    from tests.factories import add_visit, guest, local

    async def make() -> None:
        db = Database(server.settings.database_url)
        try:
            site = await get_site(db, slug)
            await add_visit(
                db, site, arrived=local("2026-03-30 15:00"), departed=local("2026-04-02 11:00"),
                persons=3, **guest(),
            )  # fmt: skip
            await add_visit(
                db, site, kind="vehicle", arrived=local("2026-03-31 09:00"),
                departed=local("2026-03-31 17:00"), persons=1, plate="TT-01-X", **guest(),
            )  # fmt: skip
        finally:
            await db.dispose()

    run_async(make)


def test_a_harbour_master_picks_a_month_and_reads_its_figures(
    server: LiveServer, new_context: Callable[..., BrowserContext]
) -> None:
    slug = server.new_point("marina").site_slug
    march_visits(server, slug)
    harbour_master = server.new_staff("harbour_master", [slug])
    page = new_context(bypass_csp=True, **DESK).new_page()  # for axe-core below
    sign_in_as(page, server, harbour_master)

    page.goto(server.url(f"/admin/sites/{slug}/tonight"))
    page.get_by_role("link", name="Tourist tax").click()
    expect(page.locator("main h1")).to_contain_text("Tourist-tax return")
    page.get_by_label("Month").fill("2026-03")
    page.get_by_role("button", name="Show").click()

    page.wait_for_url(lambda url: "month=2026-03" in url)
    expect(page.locator("#h-month")).to_have_text("March 2026")
    expect(page.locator("#kind-vessel td")).to_have_text(["1", "3", "6"])
    expect(page.locator("#kind-vehicle td")).to_have_text(["1", "1", "0"])
    expect(page.locator("#kind-total td")).to_have_text(["2", "4", "6"])
    expect(page.locator("#day-2026-03-31 td")).to_have_text(["1", "1", "3"])
    expect(page.locator("#how-counted")).to_contain_text("persons")
    with page.expect_download() as download:
        page.locator("#csv").click()
    assert download.value.suggested_filename == f"tourist-tax-{slug}-2026-03.csv"

    violations = [
        v for v in run_axe(page) if v["impact"] in BLOCKING_IMPACTS
    ]  # the whole page, tables included
    assert violations == [], describe(violations)
