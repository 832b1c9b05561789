"""The hub's analyst in a browser: signs in, opens the signals, narrows them to one site, and
reads one signal as it was sent."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from nightreg.models import Signal
from tests.browser.axe import BLOCKING_IMPACTS, describe, run_axe
from tests.browser.live import LiveServer, run_async, sign_in_as

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]

# The analyst's desk at the hub, in English so that the assertions read the source texts.
DESK = {
    "viewport": {"width": 1280, "height": 900},
    "is_mobile": False,
    "has_touch": False,
    "locale": "en-GB",
}


def forwarded(server: LiveServer, site_slug: str, guest_name: str, rule: str) -> Signal:
    """A flag forwarded from the site under an agreement that allows names: its signal."""
    from nightreg.db import Database
    from nightreg.services.sites import get_site
    from tests.factories import add_visit, forward, make_agreement

    async def create() -> Signal:
        db = Database(server.settings.database_url)
        try:
            site = await get_site(db, site_slug)
            visit = await add_visit(db, site, guest_name=guest_name)
            agreement = await make_agreement(db, fields=("score", "site", "guest_name"))
            return await forward(db, site, agreement, rule=rule, visit=visit)
        finally:
            await db.dispose()

    return run_async(create)


def test_an_analyst_opens_the_signals_narrows_them_to_a_site_and_reads_one(
    server: LiveServer, new_context: NewContext
) -> None:
    marina = server.new_point("marina")
    park = server.new_point("business_park")
    at_marina = forwarded(server, marina.site_slug, "Schipper Visser", "night_movement")
    at_park = forwarded(server, park.site_slug, "Chauffeur Bakker", "short_stay_repeat")
    analyst = server.new_staff("analyst")  # the hub's analyst works on no site
    page = new_context(**DESK).new_page()

    sign_in_as(page, server, analyst)
    page.goto(server.url("/admin/signals"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Signals forwarded to the hub")
    expect(page.locator(f'a[href="/admin/signals/{at_marina.uid}"]')).to_have_count(1)
    expect(page.locator(f'a[href="/admin/signals/{at_park.uid}"]')).to_have_count(1)

    page.get_by_label("Site").select_option(park.site_slug)

    page.wait_for_url(re.compile(rf"/admin/signals\?.*site={park.site_slug}"))
    rows = page.locator("#signal-rows tr.signal-row")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Bedrijvenpark Test")
    rows.get_by_role("link").click()

    page.wait_for_url(server.url(f"/admin/signals/{at_park.uid}"))
    expect(page.locator("#payload")).to_contain_text(at_park.uid)
    expect(page.locator("#payload-visits")).to_contain_text("Chauffeur Bakker")
    expect(page.locator("#signal-status")).to_have_text("Waiting to be delivered")
    raw = page.locator("#signal-body").inner_text()
    assert raw == at_park.body
    assert json.loads(raw)["visits"] == [{"guest_name": "Chauffeur Bakker"}]
    expect(page.locator("main")).not_to_contain_text("Schipper Visser")


# --- accessibility: the analyst's pages, as test_staff_accessibility.py checks the others ------
# Each takes (page, server, harbour) like that file's PAGES, and makes its own analyst and
# signal on the harbour's site (`harbour` needs only a `slug`).


def _analyst_with_a_signal(page: Page, server: LiveServer, slug: str) -> Signal:
    signal = forwarded(server, slug, "Schipper Visser", "night_movement")
    sign_in_as(page, server, server.new_staff("analyst"))
    return signal


def signals_page(page: Page, server: LiveServer, harbour: Any) -> None:
    _analyst_with_a_signal(page, server, harbour.slug)
    page.goto(server.url(f"/admin/signals?site={harbour.slug}"))
    expect(page.locator("#signal-rows tr.signal-row").first).to_be_visible()


def signals_with_a_bad_date(page: Page, server: LiveServer, harbour: Any) -> None:
    _analyst_with_a_signal(page, server, harbour.slug)
    page.goto(server.url("/admin/signals?from=2026-07-15&to=2026-07-14"))
    expect(page.locator("#err-to")).not_to_be_empty()


def signal_page(page: Page, server: LiveServer, harbour: Any) -> None:
    signal = _analyst_with_a_signal(page, server, harbour.slug)
    page.goto(server.url(f"/admin/signals/{signal.uid}"))
    expect(page.locator("#signal-body")).to_be_visible()


PAGES: dict[str, Callable[[Page, LiveServer, Any], None]] = {
    "signals": signals_page,
    "signals with a bad period": signals_with_a_bad_date,
    "a signal": signal_page,
}
SCREENS = {
    "desk": {"viewport": {"width": 1280, "height": 900}, "is_mobile": False, "has_touch": False},
    "phone": {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True},
}


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("name", PAGES)
def test_the_analysts_page_has_no_serious_accessibility_violation(
    name: str, screen: str, server: LiveServer, new_context: NewContext
) -> None:
    harbour = SimpleNamespace(slug=server.new_point("marina").site_slug)
    # The app's CSP forbids injected scripts; axe is one.
    page = new_context(bypass_csp=True, locale="en-GB", **SCREENS[screen]).new_page()
    PAGES[name](page, server, harbour)

    violations = run_axe(page)

    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"axe on the {name}, {screen} ({page.url}):\n{describe(blocking)}"
