"""Browser tests: the real app on a live uvicorn server, driven by headless Chromium.

Chromium is Debian's (/usr/bin/chromium), never one Playwright downloads. Without it, or
without the playwright package, every test here is skipped with the reason (see `-rs`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.live import (
    ACTION_TIMEOUT_MS,
    NAVIGATION_TIMEOUT_MS,
    QUICK_KIOSK_IDLE_SECONDS,
    LiveServer,
    live_server,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Playwright


HERE = Path(__file__).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _why_no_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "browser tests need the playwright package (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def _why_not_on_this_database() -> str | None:
    # The browser tests drive the same pages and services on either database; what differs
    # between the two (locks, queries, migrations) the HTTP tests check on both. On
    # PostgreSQL they run when asked: CI's run of both suites must stay within its 20 minutes.
    if os.environ.get("NIGHTREG_TEST_DATABASE_URL") and not os.environ.get(
        "NIGHTREG_BROWSER_TESTS_ON_POSTGRESQL"
    ):
        return (
            "browser tests run on SQLite; on PostgreSQL set NIGHTREG_BROWSER_TESTS_ON_POSTGRESQL=1"
        )
    return None


NO_BROWSER = _why_no_browser() or _why_not_on_this_database()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if NO_BROWSER is None:
        return
    skip = pytest.mark.skip(reason=NO_BROWSER)
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(skip)


@pytest.fixture
def database_url(shared_database_url: str) -> str:
    """Here a test's database is the live servers' (one per package and xdist worker)."""
    return shared_database_url


@pytest.fixture(scope="package")
def server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app as a phone sees it; a kiosk tablet here clears itself after the default idle."""
    with live_server(shared_database_url, tmp_path_factory.mktemp("live")) as live:
        yield live


@pytest.fixture(scope="package")
def quick_kiosk_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A second server whose kiosk tablets clear themselves after a few seconds."""
    with live_server(
        shared_database_url,
        tmp_path_factory.mktemp("live-kiosk"),
        kiosk_idle_seconds=QUICK_KIOSK_IDLE_SECONDS,
    ) as live:
        yield live


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


PHONE = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
}


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Open a fresh browser profile (cookies, cache) like a new phone; closed after the test.

    Defaults to a 360×740 touch phone in Dutch; pass Playwright's new_context options to change.
    """
    opened: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**{**PHONE, "locale": "nl-NL", **options})
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


def pytest_report_header(config: pytest.Config) -> str:
    if NO_BROWSER:
        return f"browser tests: skipped ({NO_BROWSER})"
    return f"browser tests: {CHROMIUM} (headless); NIGHTREG_TEST_DATABASE_URL=" + (
        "set" if os.environ.get("NIGHTREG_TEST_DATABASE_URL") else "unset (SQLite)"
    )
