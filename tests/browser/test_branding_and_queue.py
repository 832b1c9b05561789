"""The review queue with its subject column and a bulk dismissal, and a branded kiosk, in a
browser at a phone's and a desk's width: no sideways scroll, axe-core clean, screenshots kept
in the test's own folder."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.browser.axe import BLOCKING_IMPACTS, describe, run_axe
from tests.browser.live import LiveServer, raise_flag, run_async, sign_in_as

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]

SCREENS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desk": {"viewport": {"width": 1366, "height": 900}, "is_mobile": False, "has_touch": False},
}
ACCENT = "#1a5fb4"


def logo_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (480, 160), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 150, 150), fill=(200, 40, 40, 255))
    draw.rectangle((170, 50, 470, 110), fill=(20, 60, 120, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def check_page(page: Page, folder: Path, name: str) -> None:
    """No sideways scroll, no serious axe finding, and a screenshot for the reviewer."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
    blocking = [v for v in run_axe(page) if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"axe on {name} ({page.url}):\n{describe(blocking)}"
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def brand(server: LiveServer, slug: str) -> None:
    from nightreg.clock import SystemClock
    from nightreg.db import Database
    from nightreg.services import branding
    from nightreg.services.access import Actor

    async def run() -> None:
        db = Database(server.settings.database_url)
        try:
            await branding.change_branding(
                db, Actor(kind="cli", name="browser test"), slug, accent=ACCENT,
                logo=branding.clean_logo(logo_png()), now=SystemClock().now(),
            )  # fmt: skip
        finally:
            await db.dispose()

    run_async(run)


@pytest.mark.parametrize("screen", ["phone", "desk"])
def test_security_sees_whom_each_flag_is_about_and_dismisses_two_with_one_reason(
    server: LiveServer, new_context: NewContext, tmp_path: Path, screen: str
) -> None:
    point = server.new_point("marina")
    boats = [
        server.add_visit(point.site_slug, vessel_name=name, registration=reg)
        for name, reg in (
            ("Zeemeeuw", "NL-123-AB"),
            ("Stormvogel", "NL-555-XY"),
            ("Reiger", "D-77"),
        )
    ]
    flags = [raise_flag(server, point.site_slug, boat) for boat in boats]
    staff = server.new_staff("security", [point.site_slug])
    page = new_context(locale="en-GB", bypass_csp=True, **SCREENS[screen]).new_page()

    sign_in_as(page, server, staff)
    page.goto(server.url(f"/admin/sites/{point.site_slug}/flags"))
    rows = page.locator("#flag-rows tr.flag-row")
    expect(rows).to_have_count(3)
    subjects = sorted(page.locator("#flag-rows td.subject").all_inner_texts())
    assert subjects == ["Reiger · D-77", "Stormvogel · NL-555-XY", "Zeemeeuw · NL-123-AB"]
    check_page(page, tmp_path, f"queue-{screen}")

    page.locator("#f-subject").fill("storm")
    page.locator("#f-subject").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Stormvogel")
    page.goto(server.url(f"/admin/sites/{point.site_slug}/flags"))

    page.locator(f"#pick-{flags[0]}").check()
    page.locator(f"#pick-{flags[1]}").check()
    page.get_by_role("button", name="Dismiss the chosen flags").click()  # no reason yet
    expect(page.locator("#reason-error")).to_have_text("Please say why this flag can be dismissed.")
    expect(page.locator(f"#pick-{flags[0]}")).to_be_checked()
    page.locator("#bulk-reason").fill("Regular berth holders; known to the harbour office.")
    page.get_by_role("button", name="Dismiss the chosen flags").click()

    page.wait_for_url(re.compile(r"/flags\?dismissed=2$"))
    expect(page.get_by_role("status")).to_have_text("2 flags dismissed.")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Reiger · D-77")
    check_page(page, tmp_path, f"queue-dismissed-{screen}")


@pytest.mark.parametrize("screen", ["phone", "desk"])
def test_a_branded_kiosk_shows_the_logo_and_the_accent_colour(
    server: LiveServer, new_context: NewContext, tmp_path: Path, screen: str
) -> None:
    point = server.new_point("marina")
    brand(server, point.site_slug)
    # Under the real CSP: the logo and the accent's stylesheet load, nothing inline is needed.
    page = new_context(locale="en-GB", **SCREENS[screen]).new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)

    page.goto(server.url(point.url))

    logo = page.locator("header.bar img.brand-logo")
    expect(logo).to_be_visible()
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0")
    background = page.locator("header.bar").evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(26, 95, 180)"
    page.goto(server.url(point.url + "?kind=vessel"))
    button = page.locator("button.button.primary").first
    assert button.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(26, 95, 180)"
    assert refused == []
    # axe-core is injected inline: a second browser that lets it in.
    checked = new_context(locale="en-GB", bypass_csp=True, **SCREENS[screen]).new_page()
    checked.goto(server.url(point.url))
    check_page(checked, tmp_path, f"kiosk-{screen}")
    checked.goto(server.url(point.url + "?kind=vessel"))
    check_page(checked, tmp_path, f"kiosk-form-{screen}")


def test_an_admin_uploads_a_logo_and_a_colour_on_the_sites_page(
    server: LiveServer, new_context: NewContext, tmp_path: Path
) -> None:
    point = server.new_point("marina")
    admin = server.new_staff("admin", [point.site_slug])
    page = new_context(locale="en-GB", bypass_csp=True, **SCREENS["desk"]).new_page()
    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    png = tmp_path / "logo.png"
    png.write_bytes(logo_png())

    sign_in_as(page, server, admin)
    page.goto(server.url(f"/admin/sites/{point.site_slug}"))
    page.locator("#branding-logo").set_input_files(str(svg))
    page.locator("#branding-accent").fill("#ffcc00")
    page.get_by_role("button", name="Save the branding").click()
    expect(page.locator("#branding-logo-error")).to_contain_text("SVG files cannot be used")
    expect(page.locator("#branding-accent-error")).to_contain_text("hard to read")
    check_page(page, tmp_path, "branding-refused")

    page.locator("#branding-logo").set_input_files(str(png))
    page.locator("#branding-accent").fill(ACCENT)
    page.get_by_role("button", name="Save the branding").click()

    page.wait_for_url(re.compile(r"\?saved=branding"))
    expect(page.get_by_role("status")).to_have_text("The branding has been saved.")
    preview = page.locator(".brand-preview img")
    assert preview.evaluate("img => img.complete && img.naturalWidth > 0")
    check_page(page, tmp_path, "branding-saved")
