"""The information pictures in a real browser: on a phone and at the desk the charts fit the
screen, draw under the page's Content-Security-Policy, print, and pass axe-core."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.browser.axe import BLOCKING_IMPACTS, describe, run_axe
from tests.browser.live import SCREENS, LiveServer, a_flag, sign_in_as
from tests.factories import StaffRef

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Harbour:
    slug: str
    harbour_master: StaffRef


@pytest.fixture(scope="module")
def harbour(server: LiveServer) -> Harbour:
    """A marina with arrivals over the last days and a flag, and its harbour master."""
    slug = server.new_point("marina").site_slug
    visit = server.add_visit(slug, guest_name="Anna Visser", vessel_name="Zeemeeuw")
    for hours in (5, 29, 30, 53):
        server.add_visit(slug, arrived_ago=timedelta(hours=hours), guest_name="Piet Jansen")
    a_flag(server, slug, visit.id)
    return Harbour(slug=slug, harbour_master=server.new_staff("harbour_master", [slug]))


def open_pictures(
    new_context: Callable[..., BrowserContext],
    server: LiveServer,
    harbour: Harbour,
    screen: str,
    **options: Any,
) -> tuple[Page, list[str]]:
    """The pictures page as the harbour master sees it; also the console's complaints."""
    page = new_context(locale="en-GB", **SCREENS[screen], **options).new_page()
    complaints: list[str] = []
    page.on("console", lambda m: complaints.append(m.text) if m.type == "error" else None)
    sign_in_as(page, server, harbour.harbour_master)
    page.goto(server.url("/admin/insight"))
    expect(page.locator("main h1")).to_have_text("Information pictures")
    return page, complaints


def chart_boxes(page: Page) -> list[dict[str, float]]:
    boxes: list[dict[str, float]] = page.locator("svg.chart").evaluate_all(
        """svgs => svgs.map(svg => {
            const box = svg.getBoundingClientRect();
            const view = svg.viewBox.baseVal;
            return {width: box.width, height: box.height, right: box.right,
                    ratio: view.height / view.width};
        })"""
    )
    return boxes


def test_on_a_phone_the_charts_fill_the_screen_width_without_a_sideways_scroll(
    server: LiveServer, harbour: Harbour, new_context: Callable[..., BrowserContext]
) -> None:
    page, complaints = open_pictures(new_context, server, harbour, "phone")

    boxes = chart_boxes(page)
    assert len(boxes) == 2  # the flags per week and the marina's heat map
    for box in boxes:
        assert 280 <= box["width"] <= 360
        assert box["right"] <= 360
        assert box["height"] == pytest.approx(box["width"] * box["ratio"], abs=2)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.locator("#caption-flags")).to_contain_text("<5 flags in the period")
    # The numbers, folded away under the chart, open into a table that scrolls in its own box.
    page.locator("#h-flags ~ details summary").click()
    expect(page.locator("#table-caption-flags")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert not [c for c in complaints if "Content Security Policy" in c]


def test_at_the_desk_the_charts_draw_in_colour_under_the_content_security_policy(
    server: LiveServer, harbour: Harbour, new_context: Callable[..., BrowserContext]
) -> None:
    page, complaints = open_pictures(new_context, server, harbour, "desk")

    for box in chart_boxes(page):
        assert 560 <= box["width"] <= 40 * 16
    # matplotlib's styles became attributes, which the CSP lets through: the first series is
    # drawn in the palette's blue, not in SVG's default black.
    bar_fill = page.locator("#chart-flags path[fill='#0072b2']").first.evaluate(
        "el => getComputedStyle(el).fill"
    )
    assert bar_fill == "rgb(0, 114, 178)"
    assert not complaints, complaints
    with page.expect_download() as download:
        page.locator("a[href^='/admin/insight/flags.csv']").click()
    path = download.value.path()
    assert path.read_text(encoding="utf-8-sig").splitlines()[0] == "week,rule,flags"


def test_in_print_the_charts_stay_and_the_form_and_buttons_go(
    server: LiveServer, harbour: Harbour, new_context: Callable[..., BrowserContext]
) -> None:
    page, _complaints = open_pictures(new_context, server, harbour, "desk")

    page.emulate_media(media="print")

    expect(page.locator("form.filters")).to_be_hidden()
    expect(page.locator("main .actions").first).to_be_hidden()
    expect(page.locator("svg.chart").first).to_be_visible()
    expect(page.locator("#caption-flags")).to_be_visible()


@pytest.mark.parametrize("screen", SCREENS)
def test_the_pictures_page_has_no_serious_accessibility_violation(
    screen: str,
    server: LiveServer,
    harbour: Harbour,
    new_context: Callable[..., BrowserContext],
) -> None:
    # The app's CSP forbids injected scripts; axe is one.
    page, _complaints = open_pictures(new_context, server, harbour, screen, bypass_csp=True)
    page.locator("details.chart-numbers summary").first.click()

    violations = [v for v in run_axe(page) if v["impact"] in BLOCKING_IMPACTS]

    assert not violations, describe(violations)
