"""The app on a live uvicorn server for the browser tests (and the http tests of slow
clients), and what those tests make in its database. Shared by test modules, which never import
from one another; the fixtures that start servers and browsers are in tests/browser/conftest.py.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nightreg.clock import SystemClock
from nightreg.settings import Settings
from tests.factories import PointRef, StaffRef, make_staff, unique_slug

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from nightreg.models import Visit

# A short idle time for the one server whose kiosk tablets must clear themselves in a test.
QUICK_KIOSK_IDLE_SECONDS = 3
# How long a browser action may take before the test fails, in milliseconds.
ACTION_TIMEOUT_MS = 10_000
# How long a page may take to load: longer, because a page that draws charts on the server
# (insight) can take over 10 s on a machine whose two cores are shared with other test runs.
NAVIGATION_TIMEOUT_MS = 30_000

T = TypeVar("T")


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end on a fresh event loop in a worker thread.

    A thread of its own keeps this loop apart from the live server's loop and from the event
    loop state of the main thread, which Playwright's sync API and pytest-asyncio use.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result(timeout=60)


@dataclass
class LiveServer:
    """The app served over real HTTP on 127.0.0.1, with the real clock."""

    settings: Settings
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def new_point(self, kind: str = "marina", *, kiosk_mode: bool = False) -> PointRef:
        """A new site with one check-in point, made through the services like the CLI does."""
        from nightreg.db import Database
        from nightreg.services import sites

        slug = unique_slug("marina" if kind == "marina" else "park")
        name = "Jachthaven Testhaven" if kind == "marina" else "Bedrijvenpark Test"

        async def create() -> PointRef:
            db = Database(self.settings.database_url)
            now = SystemClock().now()
            try:
                await sites.create_site(
                    db, slug=slug, name=name, kind=kind, now=now,
                    contact="havenmeester@test.example",
                )  # fmt: skip
                point = await sites.add_point(
                    db, site_slug=slug, name="Havenkantoor", kiosk_mode=kiosk_mode, now=now
                )
            finally:
                await db.dispose()
            return PointRef(
                site_slug=slug, site_name=name, point_name=point.name, token=point.token
            )

        return run_async(create)

    def stored_visit(self, reference: str) -> Visit | None:
        """The visit as the database holds it, found by the reference the visitor was shown."""
        from sqlalchemy import select

        from nightreg.db import Database
        from nightreg.models import Visit

        async def load() -> Visit | None:
            db = Database(self.settings.database_url)
            try:
                async with db.read() as session:
                    found: Visit | None = await session.scalar(
                        select(Visit).where(Visit.reference == reference)
                    )
                    return found
            finally:
                await db.dispose()

        return run_async(load)

    def new_staff(self, role: str, site_slugs: Sequence[str] = ()) -> StaffRef:
        """A staff account in the live server's database, with tests.factories.STAFF_PASSWORD."""
        from nightreg.db import Database

        async def create() -> StaffRef:
            db = Database(self.settings.database_url)
            try:
                return await make_staff(db, role, list(site_slugs), now=SystemClock().now())
            finally:
                await db.dispose()

        return run_async(create)

    def add_visit(
        self,
        site_slug: str,
        *,
        arrived_ago: timedelta = timedelta(hours=1),
        stays: timedelta = timedelta(days=1),
        departed: bool = False,
        **fields: str,
    ) -> Visit:
        """A visit entered through the register service (a walk-in), arrived `arrived_ago`.

        A boat by default; `fields` are the walk-in form's fields (kind, guest_name, ...).
        With `departed`, the visit is checked out again right away.
        """
        from zoneinfo import ZoneInfo

        from nightreg.db import Database
        from nightreg.services import corrections, walk_ins
        from nightreg.services.access import Actor
        from nightreg.services.sites import get_site

        actor = Actor(kind="cli", name="browser test")

        async def create() -> Visit:
            db = Database(self.settings.database_url)
            now = SystemClock().now()
            try:
                site = await get_site(db, site_slug)
                tz = ZoneInfo(site.timezone)

                def local(at: Any) -> str:
                    return str(at.astimezone(tz).strftime("%Y-%m-%dT%H:%M"))

                form = {
                    "kind": "vessel",
                    "guest_name": "Jan de Vries",
                    "residence": "Hoorn",
                    "persons": "2",
                    "vessel_name": "Zeemeeuw",
                    "registration": "NL-123-AB",
                    "arrived_at": local(now - arrived_ago),
                    "expected_departure_at": local(now + stays),
                    **fields,
                }
                # The same boat, as often as a test asks (its possible duplicates are its own).
                visit = await walk_ins.create_visit(
                    db, actor, site.id, form, now=now, allow_duplicate=True
                )
                if departed:
                    visit = await corrections.check_out_visit(db, actor, visit.id, now=now)
                return visit
            finally:
                await db.dispose()

        return run_async(create)


def sign_in_as(page: Page, server: LiveServer, staff: StaffRef) -> None:
    """Sign in through the sign-in page, as the person would, and wait to be let in."""
    page.goto(server.url("/admin/sign-in"))
    page.locator("#email").fill(staff.email)
    page.locator("#password").fill(staff.password)
    page.locator("form[action='/admin/sign-in'] button[type=submit]").click()
    page.wait_for_url(lambda url: "/admin/" in url and "/admin/sign-in" not in url)


def _wait_until_healthy(base_url: str, thread: threading.Thread, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    last_error: object = None
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the live server stopped while starting; see the captured log")
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    return
                last_error = answer.status
        except (urllib.error.URLError, OSError) as exc:
            last_error = exc
        time.sleep(0.05)
    raise RuntimeError(f"the live server did not answer /health within {timeout}s: {last_error}")


@contextmanager
def live_server(database_url: str, data_dir: Path, **changes: Any) -> Iterator[LiveServer]:
    """Start create_app() under uvicorn in a background thread; stop it cleanly afterwards."""
    import uvicorn

    from nightreg.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Staff sign in with a password alone unless a test asks for two-factor sign-in.
    changes.setdefault("two_factor_roles", ())
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key="test-secret-pJOIsAjJuEhtV44K22szyCKldMuFGk-MpZs6nXoznAGD_RAw9hox",
        base_url=base_url,
        checkin_rate_per_address=1000,
        checkin_rate_per_point=1000,
        **changes,
    )
    app = create_app(settings, clock=SystemClock())
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"live-{base_url}", daemon=True
    )
    thread.start()
    try:
        _wait_until_healthy(base_url, thread)
        yield LiveServer(settings=settings, base_url=base_url)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        if thread.is_alive():
            raise RuntimeError("the live server did not stop within 15 s")


# --- data for the pages, made beside the live server -------------------------------------------

# The harbour office's PC, in English so that the assertions read the source texts.
DESK = {
    "viewport": {"width": 1280, "height": 900},
    "is_mobile": False,
    "has_touch": False,
    "locale": "en-GB",
}


def raise_flag(server: LiveServer, site_slug: str, visit: Visit) -> int:
    """A night-movement flag on the visit, recorded as the scan records it."""
    from nightreg.clock import SystemClock
    from nightreg.db import Database
    from nightreg.rules import RULES
    from nightreg.rules.base import Finding
    from nightreg.services import flagging
    from nightreg.services.sites import get_site

    async def create() -> int:
        db = Database(server.settings.database_url)
        now = SystemClock().now()
        try:
            site = await get_site(db, site_slug)
            finding = Finding(
                rule="night_movement",
                subject=f"reg:B{secrets.token_hex(4).upper()}",
                visit_ids=(visit.id,),
                window_start=now - timedelta(days=2),
                window_end=now,
                score=70,
                params={"count": 3, "days": 14},
            )
            async with db.write() as session:
                recorded = await flagging.record(
                    session,
                    finding,
                    site_id=site.id,
                    now=now,
                    thresholds=RULES["night_movement"].defaults,
                )
            return recorded.flag_id
        finally:
            await db.dispose()

    return run_async(create)


SCREENS = {
    "desk": {"viewport": {"width": 1280, "height": 900}, "is_mobile": False, "has_touch": False},
    "phone": {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True},
}


def a_flag(server: LiveServer, slug: str, visit_id: int) -> int:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from nightreg.db import Database
    from nightreg.models import Site
    from nightreg.rules.base import Finding
    from nightreg.services import flagging

    async def run() -> int:
        db = Database(server.settings.database_url)
        try:
            async with db.write() as session:
                site_id = await session.scalar(select(Site.id).where(Site.slug == slug))
                assert site_id is not None
                at = datetime.now(UTC)
                finding = Finding(
                    rule="night_movement", subject="reg:TEST", visit_ids=(visit_id,),
                    window_start=at, window_end=at, score=60, params={"count": 2, "days": 14},
                )  # fmt: skip
                done = await flagging.record(session, finding, site_id=site_id, now=at)
                return done.flag_id
        finally:
            await db.dispose()

    return run_async(run)
