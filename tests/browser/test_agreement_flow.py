"""An admin makes a sharing agreement, reads the summary to sign off, and ends it."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterator

import pytest

from tests.browser.axe import BLOCKING_IMPACTS, describe, run_axe
from tests.browser.live import LiveServer, run_async, sign_in_as

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
SCREENS = {
    "desk": DESK,
    "phone": {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True,
              "locale": "en-GB"},
}  # fmt: skip


@pytest.fixture
def forget_agreements(server: LiveServer) -> Iterator[None]:
    """Agreements are global: the one made here must not let other tests' flags go out."""
    from sqlalchemy import delete, func, select

    from nightreg.db import Database
    from nightreg.models import SharingAgreement

    async def newest() -> int:
        db = Database(server.settings.database_url)
        try:
            async with db.read() as session:
                return await session.scalar(select(func.max(SharingAgreement.id))) or 0
        finally:
            await db.dispose()

    before = run_async(newest)
    yield

    async def forget() -> None:
        db = Database(server.settings.database_url)
        try:
            async with db.write() as session:
                await session.execute(delete(SharingAgreement).where(SharingAgreement.id > before))
        finally:
            await db.dispose()

    run_async(forget)


def desk_page(new_context: NewContext) -> Page:
    return new_context(**DESK).new_page()


def passes_axe(page: Page, name: str) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    blocking = [v for v in run_axe(page) if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"axe on the {name} ({page.url}):\n{describe(blocking)}"


def test_an_admin_makes_an_agreement_reads_its_summary_and_ends_it(
    server: LiveServer, new_context: NewContext, forget_agreements: None
) -> None:
    admin = server.new_staff("admin")
    reference = f"RIEC-NH-{secrets.token_hex(3)}"
    page = desk_page(new_context)
    sign_in_as(page, server, admin)
    page.goto(server.url("/admin/agreements"))
    page.get_by_role("link", name="New agreement").click()
    page.wait_for_url(server.url("/admin/agreements/new"))

    # a first try without any rule: the error appears beside the rules, the typing stays
    page.get_by_label("Name", exact=True).fill("Signals to the Drugshub")
    page.get_by_label("Recipient").fill("RIEC Noord-Holland")
    page.get_by_label("Reference").fill(reference)
    page.get_by_role("button", name="Make the agreement").click()
    expect(page.locator("p.banner[role=alert]")).to_be_visible()
    expect(page.locator("#rules-error")).to_contain_text("at least one rule")
    expect(page.locator("#reference")).to_have_value(reference)

    page.locator("#rule-night_movement").check()
    page.locator("#rule-watchlist_hit").check()
    page.locator("#field-score").check()
    page.locator("#field-vessel_name").check()
    page.locator("#auto-watchlist_hit").check()
    page.locator("#keep_days").fill("90")
    page.get_by_role("button", name="Make the agreement").click()

    page.wait_for_url(re.compile(r"/admin/agreements/\d+\?created=1$"))
    main = page.locator("main")
    expect(page.locator("h1")).to_have_text("Signals to the Drugshub")
    expect(page.locator("#agreement-state")).to_have_text("In force")
    expect(main).to_contain_text("RIEC Noord-Holland receives signals")
    expect(main).to_contain_text(reference)
    expect(page.locator("section.summary-rules li")).to_have_count(2)
    expect(page.locator("section.summary-rules")).to_contain_text("Night movements")
    expect(page.locator("section.summary-fields")).to_contain_text("Vessel name")
    expect(page.locator("section.summary-fields")).to_contain_text(
        "These fields are never sent under this agreement"
    )
    expect(page.locator("section.summary-review")).to_contain_text("without a staff review")
    expect(page.locator("section.summary-retention")).to_contain_text("for at most 90 days")
    expect(page.get_by_role("button", name="Print")).to_be_visible()

    page.get_by_label("Why does it end?").fill("Replaced by the 2027 agreement.")
    page.get_by_role("button", name="End this agreement").click()

    page.wait_for_url(re.compile(r"/admin/agreements/\d+\?ended=1$"))
    expect(page.locator("p.banner.ok")).to_contain_text("The agreement has been ended")
    expect(page.locator("#agreement-state")).to_have_text("Ended")
    expect(main).to_contain_text("Replaced by the 2027 agreement.")
    expect(page.get_by_role("button", name="End this agreement")).to_have_count(0)

    page.get_by_role("link", name="Sharing agreements").first.click()
    row = page.locator("table#agreements tr", has_text=reference)
    expect(row.locator("td.state")).to_have_text("Ended")


@pytest.mark.parametrize("screen", SCREENS)
def test_the_agreement_pages_pass_axe_at_the_desk_and_on_a_phone(
    server: LiveServer, new_context: NewContext, forget_agreements: None, screen: str
) -> None:
    admin = server.new_staff("admin")
    # axe-core is injected as a script of its own, which the pages' CSP rightly forbids
    page = new_context(bypass_csp=True, **SCREENS[screen]).new_page()
    sign_in_as(page, server, admin)
    page.goto(server.url("/admin/agreements/new"))
    passes_axe(page, "new agreement form")

    page.get_by_role("button", name="Make the agreement").click()
    expect(page.locator("#name-error")).to_be_visible()
    passes_axe(page, "new agreement with errors")

    page.get_by_label("Name", exact=True).fill("Signals to the Drugshub")
    page.get_by_label("Recipient").fill("RIEC Noord-Holland")
    page.get_by_label("Reference").fill(f"RIEC-NH-{secrets.token_hex(3)}")
    page.locator("#rule-site_hopping").check()
    page.locator("#field-site").check()
    page.get_by_role("button", name="Make the agreement").click()
    page.wait_for_url(re.compile(r"/admin/agreements/\d+\?created=1$"))
    passes_axe(page, "agreement summary")
    page.screenshot(path=f"/tmp/agreement-summary-{screen}.png", full_page=True)

    page.get_by_role("button", name="End this agreement").click()
    expect(page.locator("#reason-error")).to_be_visible()
    passes_axe(page, "ending without a reason")

    page.goto(server.url("/admin/agreements"))
    passes_axe(page, "agreements list")
