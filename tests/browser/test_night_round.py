"""The night round on a phone: a harbour master walks the piers, loses the signal halfway, and
every mark arrives once when it is back; a boat not in the register becomes a walk-in."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.axe import describe, run_axe
from tests.browser.live import LiveServer, run_async, sign_in_as

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, Route, expect

pytestmark = pytest.mark.browser

NewContext = Callable[..., "BrowserContext"]

# A phone the size the issue names, in English so that the assertions read the source texts.
PHONE_390 = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-GB",
}
DESK_1366 = {
    "viewport": {"width": 1366, "height": 900},
    "is_mobile": False,
    "has_touch": False,
    "locale": "en-GB",
}
# Long enough for a mark that waited to go out on the 'online' event or the script's retry.
SENT_TIMEOUT_MS = 20_000

BOATS = (  # (berth, name): entered in this order, walked in pier and berth order
    ("B2", "Bries"),
    ("A12", "Albatros"),
    ("A9", "Aalscholver"),
    ("B10", "Blauwe Reiger"),
    ("A10", "Avocet"),
)


def stored(server: LiveServer, slug: str) -> dict[str, Any]:
    """The site's marks (visit name, status, key) and visits of source round, as stored."""
    from sqlalchemy import select

    from nightreg.db import Database
    from nightreg.models import NightRound, RoundMark, Site, Visit

    async def load() -> dict[str, Any]:
        db = Database(server.settings.database_url)
        try:
            async with db.read() as session:
                marks = (
                    await session.execute(
                        select(Visit.vessel_name, RoundMark.status, RoundMark.idempotency_key)
                        .join(Visit, Visit.id == RoundMark.visit_id)
                        .join(NightRound, NightRound.id == RoundMark.round_id)
                        .join(Site, Site.id == NightRound.site_id)
                        .where(Site.slug == slug)
                        .order_by(RoundMark.id)
                    )
                ).all()
                found = (
                    await session.execute(
                        select(Visit.vessel_name, Visit.berth, Visit.mmsi)
                        .join(Site, Site.id == Visit.site_id)
                        .where(Site.slug == slug, Visit.source == "round")
                    )
                ).all()
        finally:
            await db.dispose()
        return {"marks": [tuple(m) for m in marks], "found": [tuple(f) for f in found]}

    return run_async(load)


def tap(page: Page, button: str, boat: str) -> None:
    page.locator(f"li.round-boat:has-text('{boat}')").get_by_role("button", name=button).click()


def all_sent(page: Page) -> None:
    expect(page.locator("#round-sync")).to_have_text(
        "Every mark has been sent.", timeout=SENT_TIMEOUT_MS
    )


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width}px wide"


def walk_to_the_round(page: Page, server: LiveServer, slug: str) -> None:
    staff = server.new_staff("harbour_master", [slug])
    sign_in_as(page, server, staff)
    page.goto(server.url(f"/admin/sites/{slug}/round"))
    page.get_by_role("button", name="Start the round").click()
    page.wait_for_url(server.url(f"/admin/sites/{slug}/round"))


def test_a_round_walked_at_390px_with_the_signal_lost_halfway_delivers_every_mark_once(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    for berth, name in BOATS:
        server.add_visit(point.site_slug, vessel_name=name, berth=berth)
    context = new_context(**PHONE_390)
    page = context.new_page()
    walk_to_the_round(page, server, point.site_slug)

    names = page.locator("li.round-boat .round-what a").all_inner_texts()
    assert names == ["Aalscholver", "Avocet", "Albatros", "Bries", "Blauwe Reiger"]
    no_sideways_scroll(page)

    # On the first pier there is signal.
    tap(page, "Seen", "Aalscholver")
    tap(page, "Not there", "Avocet")
    all_sent(page)

    # The far pier has none: the marks wait on the phone.
    context.set_offline(True)
    tap(page, "Seen", "Albatros")
    tap(page, "Seen", "Bries")
    tap(page, "Not there", "Blauwe Reiger")
    tap(page, "Seen", "Blauwe Reiger")  # looked again: there it is after all
    page.locator("#f-vessel_name").fill("Zonder Papieren")
    page.locator("#f-mmsi").fill("244123456")
    page.locator("#f-berth").fill("B11")
    page.get_by_role("button", name="Add the boat").click()
    expect(page.locator("#round-sync")).to_contain_text("No connection: 5 marks are kept")
    expect(page.locator("li.round-boat:has-text('Bries') .round-state")).to_contain_text(
        "waiting to be sent"
    )
    expect(page.locator("#round-found-list")).to_contain_text("Zonder Papieren at B11: waiting")
    assert len(stored(server, point.site_slug)["marks"]) == 2

    # Back in signal, the first answer is lost on the way: the mark was taken, the phone
    # does not know it and sends it again with its key.
    lost: list[str] = []

    def lose_the_first_answer(route: Route) -> None:
        if lost:
            route.continue_()
            return
        route.fetch()  # the server takes the mark ...
        lost.append(route.request.post_data or "")
        route.abort()  # ... and the answer never reaches the phone

    page.route(re.compile(r"/round/(marks|found)$"), lose_the_first_answer)
    context.set_offline(False)
    all_sent(page)
    page.unroute(re.compile(r"/round/(marks|found)$"))

    after = stored(server, point.site_slug)
    assert [(name, status) for name, status, _key in after["marks"]] == [
        ("Aalscholver", "seen"),
        ("Avocet", "missing"),
        ("Albatros", "seen"),
        ("Bries", "seen"),
        ("Blauwe Reiger", "missing"),
        ("Blauwe Reiger", "seen"),
        ("Zonder Papieren", "seen"),
    ]
    keys = [key for _name, _status, key in after["marks"]]
    assert len(set(keys)) == len(keys)
    assert lost, "no answer was lost on the way"
    assert after["found"] == [("Zonder Papieren", "B11", "244123456")]
    expect(page.locator("#round-found-list")).to_contain_text(
        "Zonder Papieren at B11 has been added to the register."
    )
    expect(page.locator("#round-count-seen")).to_have_text("4")
    expect(page.locator("#round-count-missing")).to_have_text("1")

    # The page again from the server: the found boat is on its pier, every boat marked.
    page.reload()
    expect(page.locator("li.round-boat:has-text('Zonder Papieren')")).to_have_class(
        re.compile("mark-seen")
    )
    expect(page.locator("#round-count-unmarked")).to_have_text("0")
    no_sideways_scroll(page)
    page.get_by_role("button", name="Finish the round").click()
    page.wait_for_url(re.compile(r"/round\?finished=1$"))
    expect(page.locator("main")).to_contain_text("The round is finished and saved.")
    expect(page.locator(".round-history")).to_contain_text("5 seen, 1 not there, 1 added")


def test_the_round_works_without_javascript_as_plain_form_posts(
    server: LiveServer, new_context: NewContext
) -> None:
    point = server.new_point("marina")
    server.add_visit(point.site_slug, vessel_name="Kokmeeuw", berth="C3")
    page = new_context(**PHONE_390, java_script_enabled=False).new_page()
    walk_to_the_round(page, server, point.site_slug)

    tap(page, "Not there", "Kokmeeuw")
    page.wait_for_url(re.compile(r"/round#boat-\d+$"))
    expect(page.locator("li.round-boat:has-text('Kokmeeuw')")).to_have_class(
        re.compile("mark-missing")
    )
    page.locator("#f-vessel_name").fill("Stille Wateren")
    page.locator("#f-registration").fill("NL-999-ZZ")
    page.locator("#f-berth").fill("C4")
    page.get_by_role("button", name="Add the boat").click()
    expect(page.locator("main")).to_contain_text("The boat has been added to the register")
    assert stored(server, point.site_slug)["found"] == [("Stille Wateren", "C4", None)]


TARGETS = """() => {
  const small = [];
  for (const el of document.querySelectorAll(
      '.round button, .round input:not([type=hidden]), .round .round-note a')) {
    const box = el.getBoundingClientRect();
    if (box.width && (box.height < 44 || box.width < 44)) {
      small.push(`${el.outerHTML.slice(0, 80)}: ${box.width}x${box.height}`);
    }
  }
  return small;
}"""


@pytest.mark.parametrize("screen", ["phone-390", "desk-1366"])
def test_the_round_page_fits_the_screen_has_big_targets_and_passes_axe(
    server: LiveServer, new_context: NewContext, tmp_path: Path, screen: str
) -> None:
    point = server.new_point("marina")
    for berth, name in BOATS:
        server.add_visit(point.site_slug, vessel_name=name, berth=berth, registration="NL-12-AB")
    size = PHONE_390 if screen == "phone-390" else DESK_1366
    page = new_context(bypass_csp=True, **size).new_page()  # axe is added as a script tag
    walk_to_the_round(page, server, point.site_slug)
    tap(page, "Seen", "Aalscholver")
    tap(page, "Not there", "Avocet")
    all_sent(page)

    no_sideways_scroll(page)
    assert page.evaluate(TARGETS) == []
    violations = run_axe(page)
    assert violations == [], describe(violations)  # none at all, not only the blocking ones
    page.screenshot(path=str(tmp_path / f"round-{screen}.png"), full_page=True)
