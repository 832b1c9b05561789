"""The review queue as a harbour master's browser uses it: from tonight's count to the queue,
into a flag, and a dismissal with a reason that takes the flag out of the open queue."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import pytest

from tests.browser.live import DESK, LiveServer, raise_flag, sign_in_as

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]


def test_a_harbour_master_dismisses_a_flag_from_tonight_and_it_leaves_the_open_queue(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    boat = server.add_visit(point.site_slug, guest_name="Nachtvaarder Jansen")
    flag_id = raise_flag(server, point.site_slug, boat)
    staff = server.new_staff("harbour_master", [point.site_slug])
    page = new_context(**DESK).new_page()

    sign_in_as(page, server, staff)
    page.goto(server.url(f"/admin/sites/{point.site_slug}/tonight"))
    expect(page.locator("#count-flags")).to_have_text("1")
    page.locator("#link-flags").click()

    page.wait_for_url(server.url(f"/admin/sites/{point.site_slug}/flags"))
    row = page.locator("#flag-rows tr.flag-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Arrived or left at night 3 times within 14 days.")
    row.get_by_role("link", name="Night movements").click()

    page.wait_for_url(server.url(f"/admin/flags/{flag_id}"))
    expect(page.locator("#flag-status")).to_have_text("Open")
    expect(page.locator("#evidence")).to_contain_text("Nachtvaarder Jansen")
    page.get_by_role("button", name="Dismiss").click()  # without a reason first
    expect(page.locator("#err-dismiss-reason")).to_have_text(
        "Please say why this flag can be dismissed."
    )
    page.locator("#f-dismiss-reason").fill("Local fisherman; goes out before dawn.")
    page.get_by_role("button", name="Dismiss").click()

    page.wait_for_url(re.compile(rf"/admin/flags/{flag_id}\?reviewed=1$"))
    expect(page.locator("#flag-status")).to_have_text("Dismissed")
    expect(page.get_by_role("status")).to_have_text("Your review has been recorded.")
    page.get_by_role("link", name=re.compile("^Flags at ")).click()

    page.wait_for_url(server.url(f"/admin/sites/{point.site_slug}/flags"))
    expect(page.locator("#flag-rows tr.flag-row")).to_have_count(0)
    expect(page.locator("#flag-rows")).to_contain_text("No flags to show.")
    page.goto(server.url(f"/admin/sites/{point.site_slug}/tonight"))
    expect(page.locator("#count-flags")).to_have_text("0")


def test_park_security_exports_the_flagged_entries_from_the_queue_as_csv(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    boat = server.add_visit(point.site_slug, guest_name="Exporteur de Wit")
    raise_flag(server, point.site_slug, boat)
    staff = server.new_staff("security", [point.site_slug])
    page = new_context(accept_downloads=True, **DESK).new_page()

    sign_in_as(page, server, staff)
    page.goto(server.url(f"/admin/sites/{point.site_slug}/flags"))
    page.get_by_role("link", name="Export flagged entries").click()
    page.wait_for_url(server.url(f"/admin/sites/{point.site_slug}/flags/export"))
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download").click()

    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    path = download.path()
    assert path is not None
    text = path.read_text(encoding="utf-8-sig")
    assert "night_movement" in text
    assert "Exporteur de Wit" in text
