"""A tour of the staff side: every page each role uses, on a phone (390×844) and at the desk
(1366×900). No page is wider than the screen, axe-core finds no violation at all, and every
page is photographed for a reviewer.

The screenshots go to $NIGHTREG_SCREENSHOTS when set, else to a folder of the test run's
temporary directory; the test prints the folder (`-s`, or see the captured output).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from tests.browser.axe import describe, layout_only, run_axe
from tests.browser.live import LiveServer, a_flag, sign_in_as
from tests.factories import StaffRef

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext

pytestmark = [pytest.mark.browser, layout_only]

SCREENS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desk": {"viewport": {"width": 1366, "height": 900}, "is_mobile": False, "has_touch": False},
}


@dataclass(frozen=True)
class Harbour:
    slug: str
    park_slug: str
    visit_id: int
    flag_id: int
    staff: dict[str, StaffRef]


def pages_of(role: str, h: Harbour) -> list[str]:
    """The pages a role works with, in the order of its navigation."""
    site = f"/admin/sites/{h.slug}"
    account = ["/admin/password", "/admin/two-factor"]
    register = [f"{site}/tonight", f"{site}/register", f"/admin/visits/{h.visit_id}"]
    flags = [f"{site}/flags", f"/admin/flags/{h.flag_id}"]
    return {
        "harbour_master": [
            "/admin/", *register, f"/admin/visits/{h.visit_id}/correct", f"{site}/walk-in",
            f"{site}/round", f"{site}/print", f"{site}/export", f"{site}/import",
            f"{site}/tourist-tax",
            *flags, site, "/admin/insight", "/admin/subjects", *account,
            "/admin/no-such-page",
        ],
        "security": [
            "/admin/", *register, *flags, f"{site}/flags/export",
            f"{site}/observations/new?visit={h.visit_id}", "/admin/insight", *account,
        ],
        "analyst": ["/admin/", "/admin/signals", "/admin/insight", *account],
        "auditor": [
            "/admin/", "/admin/audit", "/admin/retention", "/admin/retention/preview",
            "/admin/retention/holds", "/admin/agreements", *account,
        ],
        "admin": [
            "/admin/", *register, f"{site}/round", "/admin/users", "/admin/users/new",
            "/admin/sites", site,
            "/admin/agreements", "/admin/agreements/new", "/admin/retention",
            "/admin/retention/holds", "/admin/jobs", "/admin/audit", *account,
        ],
    }[role]  # fmt: skip


@pytest.fixture(scope="module")
def harbour(server: LiveServer) -> Harbour:
    slug = server.new_point("marina").site_slug
    park = server.new_point("business_park").site_slug
    visit = server.add_visit(slug, guest_name="Anna Visser", vessel_name="Zeemeeuw", berth="B12")
    server.add_visit(slug, guest_name="Piet Jansen", vessel_name="Eend", registration="NL-1")
    server.add_visit(
        slug, kind="vehicle", guest_name="Karel Claes", plate="1-ABC-234",
        arrived_ago=timedelta(days=2), stays=timedelta(hours=-2),
    )  # fmt: skip
    server.add_visit(slug, guest_name="Vera Vertrokken", departed=True)
    staff = {
        role: server.new_staff(role, [slug, park])
        for role in ("harbour_master", "security", "analyst", "auditor", "admin")
    }
    return Harbour(slug, park, visit.id, a_flag(server, slug, visit.id), staff)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("NIGHTREG_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("staff-tour")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nstaff tour screenshots: {folder}")
    return folder


def _name(path: str) -> str:
    return path.strip("/").replace("/", "_").replace("?", "_").replace("=", "-") or "home"


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("role", ["harbour_master", "security", "analyst", "auditor", "admin"])
def test_every_staff_page_fits_the_screen_and_passes_axe(
    role: str,
    screen: str,
    server: LiveServer,
    harbour: Harbour,
    shots: Path,
    new_context: Callable[..., BrowserContext],
) -> None:
    # The app's CSP forbids injected scripts; axe is one.
    context = new_context(bypass_csp=True, locale="en-GB", **SCREENS[screen])
    page = context.new_page()
    sign_in_as(page, server, harbour.staff[role])
    width = SCREENS[screen]["viewport"]["width"]  # type: ignore[index]
    problems: list[str] = []
    for path in pages_of(role, harbour):
        answer = page.goto(server.url(path))
        assert answer is not None
        if answer.status >= 500 or (answer.status >= 400 and "no-such" not in path):
            problems.append(f"{path}: HTTP {answer.status}")
            continue
        page.screenshot(path=str(shots / f"{role}-{screen}-{_name(path)}.png"), full_page=True)
        wide = page.evaluate("document.documentElement.scrollWidth")
        if wide > width:
            problems.append(f"{path}: {wide} px wide on a {width} px screen")
        violations = run_axe(page)
        if violations:
            problems.append(f"{path}:\n{describe(violations)}")
    assert problems == [], "\n".join(problems)


def test_the_menu_folds_on_a_phone_and_the_site_switcher_remembers_the_site(
    server: LiveServer, harbour: Harbour, new_context: Callable[..., BrowserContext]
) -> None:
    from playwright.sync_api import expect

    page = new_context(locale="en-GB", **SCREENS["phone"]).new_page()
    sign_in_as(page, server, harbour.staff["harbour_master"])
    page.goto(server.url(f"/admin/sites/{harbour.slug}/register"))
    panel = page.locator("#navpanel")
    expect(panel).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(panel).to_be_visible()
    page.locator("details.switcher > summary").click()
    page.locator(f"button.pick[value='{harbour.park_slug}']").click()

    # The same work, for the other site; and the home keeps that site on the next visit.
    page.wait_for_url(server.url(f"/admin/sites/{harbour.park_slug}/register"))
    page.goto(server.url("/admin/password"))
    expect(page.locator("nav.subnav a", has_text="Tonight")).to_have_attribute(
        "href", f"/admin/sites/{harbour.park_slug}/tonight"
    )
