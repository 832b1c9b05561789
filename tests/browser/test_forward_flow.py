"""Forwarding as a harbour master's browser does it: from the flag to the preview of exactly
what the hub will get, and the confirmation that puts the signal in the outbox."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator

import pytest

from tests.browser.live import DESK, LiveServer, raise_flag, run_async, sign_in_as
from tests.factories import add_agreement, end_agreements

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]


@pytest.fixture
def hub_agreement(server: LiveServer) -> Iterator[int]:
    """An agreement in force that sends the score, the boat's name and the arrival only."""
    from nightreg.db import Database

    async def make() -> int:
        db = Database(server.settings.database_url)
        try:
            return await add_agreement(
                db,
                fields=["score", "vessel_name", "arrived_at"],
                name="Convenant Drugshub Noord-Holland",
                reference="RIEC-NH-BROWSER",
            )
        finally:
            await db.dispose()

    async def end(agreement_id: int) -> None:
        db = Database(server.settings.database_url)
        try:
            await end_agreements(db, [agreement_id])
        finally:
            await db.dispose()

    agreement_id = run_async(make)
    yield agreement_id
    run_async(lambda: end(agreement_id))


def test_a_harbour_master_previews_what_goes_to_the_hub_and_forwards_it(
    server: LiveServer, new_context: NewContext, hub_agreement: int
) -> None:
    point = server.new_point("marina")
    boat = server.add_visit(
        point.site_slug, guest_name="Verborgen Naam", vessel_name="Snelle Jelle"
    )
    flag_id = raise_flag(server, point.site_slug, boat)
    staff = server.new_staff("harbour_master", [point.site_slug])
    page = new_context(**DESK).new_page()

    sign_in_as(page, server, staff)
    page.goto(server.url(f"/admin/flags/{flag_id}"))
    page.get_by_role("link", name="Preview and forward…").click()

    page.wait_for_url(server.url(f"/admin/flags/{flag_id}/forward"))
    expect(page.locator("#forward-agreement")).to_have_text("Convenant Drugshub Noord-Holland")
    expect(page.locator("#fields-sent")).to_contain_text("Vessel name")
    expect(page.locator("#fields-not-sent")).to_contain_text("Guest name")
    expect(page.locator("main")).to_contain_text("Snelle Jelle")
    expect(page.locator("main")).not_to_contain_text("Verborgen Naam")
    page.get_by_text("The message exactly as sent (JSON)").click()
    expect(page.locator("#forward-json")).to_contain_text('"vessel_name": "Snelle Jelle"')
    page.locator("#f-forward-reason").fill("Came in at night three times this fortnight.")
    page.get_by_role("button", name="Forward to the hub").click()

    page.wait_for_url(re.compile(rf"/admin/flags/{flag_id}\?reviewed=1$"))
    expect(page.locator("#flag-status")).to_have_text("Forwarded")
    expect(page.locator("#signals")).to_contain_text("Waiting to be delivered")
    page.get_by_role("link", name="Preview and forward…").click()
    expect(page.locator("#forward-already")).to_be_visible()
