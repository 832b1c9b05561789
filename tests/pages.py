"""Helpers that act like a visitor, a staff member's browser or the command line: CSRF
tokens, signing in, the kiosk's form, API bearer headers, what a strict CSP refuses, running
`nightreg`. Shared by test modules, which never import from one another.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from nightreg.cli import main
from nightreg.db import Database
from nightreg.models import Site
from tests.factories import STAFF_PASSWORD, PointRef, make_staff

Client = AsyncTestClient[Litestar]


def csrf_from(html: str) -> str:
    """The CSRF token a page's form carries."""
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


async def sign_in(
    client: AsyncTestClient[Litestar], email: str, password: str = STAFF_PASSWORD
) -> str:
    """Sign in through the sign-in page like a browser; returns the CSRF token for later posts."""
    page = await client.get("/admin/sign-in")
    token = csrf_from(page.text)
    answer = await client.post(
        "/admin/sign-in",
        data={"_csrf_token": token, "email": email, "password": password},
        follow_redirects=False,
    )
    assert answer.status_code == 302, answer.text
    return token


async def signed_in(client: Client, db: Database, role: str, *site_list: Site) -> str:
    """Sign the client in (afresh) as a new account of `role`; returns the CSRF token."""
    client.cookies.clear()
    account = await make_staff(db, role, [s.slug for s in site_list])
    return await sign_in(client, account.email, account.password)


def bearer(plain: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plain}"}


# --- the kiosk's check-in form -----------------------------------------------------------------


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def open_form(client: Client, point: PointRef, kind: str = "vessel") -> dict[str, str]:
    page = await client.get(f"{point.url}?kind={kind}")
    assert page.status_code == 200
    return {
        "_csrf_token": hidden(page.text, "_csrf_token"),
        "idempotency_key": hidden(page.text, "idempotency_key"),
        "kind": kind,
    }


def yacht(**overrides: str) -> dict[str, str]:
    form = {
        "vessel_name": "Zeemeeuw",
        "registration": "NL-123-AB",
        "vessel_type": "sail",
        "length_m": "11,5",
        "guest_name": "Jan de Vries",
        "residence": "Hoorn",
        "country": "NL",
        "persons": "2",
        "arrived_at": "2026-07-14T20:45",
        "expected_departure_at": "2026-07-16T11:00",
    }
    form.update(overrides)
    return form


# --- what a strict content security policy refuses --------------------------------------------


class _Inline(HTMLParser):
    """Collects what a strict CSP would refuse in a rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style>")
        for name, value in names.items():
            if name.startswith("on") or name == "style" or name.startswith("hx-on"):
                self.found.append(f"<{tag} {name}=…>")
            if name in {"href", "src", "action"} and value.strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}=javascript:…>")
        if tag == "script" and names.get("src", "").startswith(("http:", "https:", "//")):
            self.found.append("script from another origin")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def blocked_by_policy(html: str) -> list[str]:
    parser = _Inline()
    parser.feed(html)
    return parser.found


# --- the command line -------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
