"""Security headers on every answer, cookies bound to the origin on https, and pages that the
Content-Security-Policy does not have to break: no inline script, no inline style, no eval."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from nightreg.app import create_app
from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.services import tokens
from nightreg.services.access import CLI
from nightreg.settings import Settings
from tests.factories import SUMMER_EVENING, PointRef, make_point, make_staff
from tests.pages import blocked_by_policy, csrf_from, sign_in

Client = AsyncTestClient[Litestar]
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = [ROOT / "nightreg" / "templates", ROOT / "kiosk" / "templates", ROOT / "admin"]
HTTPS_URL = "https://register.example.org"


def policy(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as {directive: [sources]}."""
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_hardened(answer: object, *, https: bool) -> None:
    headers = answer.headers  # type: ignore[attr-defined]
    csp = policy(headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert not any("unsafe" in s or s in {"*", "data:"} for s in csp["script-src"])
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    if https:
        hsts = headers["strict-transport-security"]
        max_age = int(re.search(r"max-age=(\d+)", hsts).group(1))  # type: ignore[union-attr]
        assert max_age >= 365 * 24 * 3600
        assert "includesubdomains" in hsts.lower()
    else:
        assert "strict-transport-security" not in headers


def assert_not_cached(answer: object) -> None:
    assert answer.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]


async def api_token(db: Database, role: str, *slugs: str) -> str:
    _token, plain = await tokens.create_token(
        db, CLI, name=f"headers {role}", role=role, site_slugs=list(slugs), expires_at=None,
        now=SUMMER_EVENING,
    )  # fmt: skip
    return plain


@pytest.fixture
async def https_client(settings: Settings, clock: FrozenClock) -> AsyncIterator[Client]:
    app = create_app(replace(settings, base_url=HTTPS_URL), clock=clock)
    async with AsyncTestClient(app=app, base_url=HTTPS_URL) as client:
        yield client


async def every_kind_of_answer(client: Client, db: Database) -> dict[str, object]:
    """One answer of each kind the app gives: pages, errors, API, schema, health."""
    point = await make_point(db)
    staff = await make_staff(db, "harbour_master", [point.site_slug])
    token = await api_token(db, "harbour_master", point.site_slug)
    auth = {"Authorization": f"Bearer {token}"}
    answers: dict[str, object] = {
        "kiosk start": await client.get(point.url),
        "kiosk form": await client.get(f"{point.url}?kind=vessel"),
        "unknown point": await client.get("/k/no-such-point-token"),
        "unknown path": await client.get("/no/such/page"),
        "wrong method": await client.delete("/health"),
        "trace": await client.request("TRACE", "/health"),
        "form without csrf": await client.post(point.url, data={"kind": "vessel"}),
        "health": await client.get("/health"),
        "openapi": await client.get("/schema/openapi.json"),
        "api without token": await client.get("/api/v1/sites"),
        "api sites": await client.get("/api/v1/sites", headers=auth),
        "api visits": await client.get(f"/api/v1/sites/{point.site_slug}/visits", headers=auth),
        "api csv": await client.get(f"/api/v1/sites/{point.site_slug}/register.csv", headers=auth),
        "api unknown": await client.get("/api/v1/no-such-thing", headers=auth),
        "sign-in page": await client.get("/admin/sign-in"),
        "staff page anonymous": await client.get("/admin/", follow_redirects=False),
    }
    await sign_in(client, staff.email, staff.password)
    answers["tonight"] = await client.get(f"/admin/sites/{point.site_slug}/tonight")
    answers["register"] = await client.get(f"/admin/sites/{point.site_slug}/register")
    answers["staff 404"] = await client.get("/admin/visits/999999999/")
    answers["export"] = await client.get(
        f"/admin/sites/{point.site_slug}/export/download?format=csv"
    )
    return answers


async def test_every_answer_over_http_carries_the_security_headers_and_is_not_cached(
    client: Client, db: Database
):
    answers = await every_kind_of_answer(client, db)
    statuses = {name: a.status_code for name, a in answers.items()}  # type: ignore[attr-defined]
    assert statuses["unknown path"] == 404
    assert statuses["wrong method"] == 405
    assert statuses["trace"] == 405
    assert statuses["form without csrf"] == 403
    assert statuses["api without token"] == 401
    assert statuses["api csv"] == 200
    assert statuses["tonight"] == 200
    for name, answer in answers.items():
        try:
            assert_hardened(answer, https=False)
            assert_not_cached(answer)
        except (AssertionError, KeyError) as exc:
            raise AssertionError(f"{name}: {exc!r}") from exc


async def test_every_answer_over_https_also_carries_hsts(https_client: Client, db: Database):
    answers = await every_kind_of_answer(https_client, db)
    assert answers["tonight"].status_code == 200  # type: ignore[attr-defined]
    for name, answer in answers.items():
        try:
            assert_hardened(answer, https=True)
            assert_not_cached(answer)
        except (AssertionError, KeyError) as exc:
            raise AssertionError(f"{name}: {exc!r}") from exc


async def test_static_files_may_be_cached_but_are_not_sniffed(client: Client):
    for path in ("/static/app.css", "/static/kiosk.js"):
        answer = await client.get(path)
        assert answer.status_code == 200
        assert "no-store" not in answer.headers.get("cache-control", "")
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert (
        (await client.get("/static/kiosk.js"))
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )


# --- what the policy would block -----------------------------------------------------------

_INLINE_HANDLER = re.compile(r"<[^>]*\s(on[a-z]+)\s*=", re.IGNORECASE)
_STYLE_ATTRIBUTE = re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE)
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)
_STYLE_ELEMENT = re.compile(r"<style[\s>]", re.IGNORECASE)
_SCRIPT_URL = re.compile(r"(?:href|src|action)\s*=\s*[\"']?\s*javascript:", re.IGNORECASE)
_HTMX_INLINE = re.compile(r"\s(?:hx-on[:\-][^=]*|hx-vals\s*=\s*[\"']\s*js:)", re.IGNORECASE)


def templates() -> list[Path]:
    found = [p for d in TEMPLATE_DIRS for p in d.rglob("*.html")]
    assert len(found) > 40
    return found


def test_no_template_has_inline_script_handlers_or_style_attributes():
    problems = []
    for path in templates():
        text = path.read_text(encoding="utf-8")
        for name, pattern in (
            ("inline <script>", _INLINE_SCRIPT),
            ("on* handler", _INLINE_HANDLER),
            ("style attribute", _STYLE_ATTRIBUTE),
            ("<style> element", _STYLE_ELEMENT),
            ("javascript: URL", _SCRIPT_URL),
            ("htmx inline script", _HTMX_INLINE),
        ):
            for match in pattern.finditer(text):
                problems.append(f"{path.relative_to(ROOT)}: {name}: {match.group(0)[:60]}")
    assert problems == []


def test_our_own_scripts_never_evaluate_strings():
    for path in (ROOT / "nightreg" / "static").glob("*.js"):
        if path.name.startswith("htmx-"):
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\beval\s*\(|new\s+Function\s*\(|\.innerHTML\s*=", text), path.name
        assert not re.search(r"set(?:Timeout|Interval)\s*\(\s*[\"'`]", text), path.name
        # Nothing is kept in the browser's storage (ASVS 14.3.1, 14.3.3), except the night
        # round's marks made without a signal (issue 16: kept on the phone until sent), under
        # one key that the script empties as the server confirms each, and sign-out clears.
        stores = set(re.findall(r"localStorage|sessionStorage|indexedDB", text))
        if path.name == "round.js":
            assert stores == {"localStorage"}
            assert len(set(re.findall(r'"nightreg\.[a-z.]+"', text))) == 1
        else:
            assert not stores, path.name


async def test_signing_out_clears_what_the_browser_keeps(client: Client, db: Database):
    staff = await make_staff(db, "harbour_master")
    csrf = await sign_in(client, staff.email)

    response = await client.post(
        "/admin/sign-out", data={"_csrf_token": csrf}, follow_redirects=False
    )

    assert response.status_code in (302, 303)
    assert response.headers["clear-site-data"] == '"storage"'


def test_htmx_is_told_not_to_eval_nor_to_inject_its_indicator_style():
    base = (ROOT / "nightreg" / "templates" / "base.html").read_text(encoding="utf-8")
    match = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", base)
    assert match, "base.html configures htmx in a <meta name=htmx-config>"
    config = json.loads(match.group(1))
    assert config["allowEval"] is False
    assert config["includeIndicatorStyles"] is False
    assert config["selfRequestsOnly"] is True
    # The vendored file is what the page loads (from 'self'), with its version in its name.
    assert re.search(r'<script src="/static/\{\{ htmx_file \}\}" defer>', base)
    assert list((ROOT / "nightreg" / "static").glob("htmx-*.min.js"))


async def test_rendered_pages_need_nothing_the_policy_blocks(
    client: Client, db: Database, kiosk_tablet: PointRef
):
    point = await make_point(db)
    pages = {
        "start": await client.get(point.url),
        "form": await client.get(f"{point.url}?kind=vessel"),
    }
    form = pages["form"].text
    answer = await client.post(
        point.url,
        data={
            "_csrf_token": csrf_from(form),
            "kind": "vessel",
            "vessel_name": "Zeemeeuw",
            "registration": "NL-123-AB",
            "guest_name": "Jan de Vries",
            "residence": "Hoorn",
            "persons": "2",
            "expected_departure_at": "2026-07-16T11:00",
        },
    )
    pages["visit with QR"] = answer
    tablet_form = await client.get(f"{kiosk_tablet.url}?kind=vessel")
    pages["tablet receipt"] = await client.post(
        kiosk_tablet.url,
        data={
            "_csrf_token": csrf_from(tablet_form.text),
            "kind": "vessel",
            "vessel_name": "Zeemeeuw",
            "registration": "NL-123-AB",
            "guest_name": "Jan de Vries",
            "residence": "Hoorn",
            "persons": "2",
            "expected_departure_at": "2026-07-16T11:00",
        },
    )
    staff = await make_staff(db, "harbour_master", [point.site_slug])
    pages["sign-in"] = await client.get("/admin/sign-in")
    await sign_in(client, staff.email, staff.password)
    for path in ("tonight", "register", "walk-in", "print", "export", "import", "flags"):
        pages[path] = await client.get(f"/admin/sites/{point.site_slug}/{path}")
    pages["home"] = await client.get("/admin/")
    pages["password"] = await client.get("/admin/password")
    for name, page in pages.items():
        assert page.status_code == 200, name
        assert "<svg" in page.text or name not in {"visit with QR", "tablet receipt"}
        assert blocked_by_policy(page.text) == [], name


# --- cookies --------------------------------------------------------------------------------


def set_cookies(answer: object) -> dict[str, str]:
    """The Set-Cookie headers of an answer, by cookie name."""
    found = {}
    for header in answer.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        found[header.split("=", 1)[0]] = header
    return found


def attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")[1:]]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "") for p in parts}


async def test_on_https_the_session_and_csrf_cookies_are_host_bound_and_secure(
    https_client: Client, db: Database
):
    staff = await make_staff(db, "security")
    page = await https_client.get("/admin/sign-in")
    csrf = set_cookies(page)["__Host-csrftoken"]
    answer = await https_client.post(
        "/admin/sign-in",
        data={
            "_csrf_token": csrf_from(page.text),
            "email": staff.email,
            "password": staff.password,
        },
        follow_redirects=False,
    )
    assert answer.status_code == 302
    session = set_cookies(answer)["__Host-nightreg_session"]
    for header in (csrf, session):
        attrs = attributes(header)
        # What a browser demands of a __Host- cookie: Secure, Path=/, no Domain.
        assert "secure" in attrs
        assert attrs["path"] == "/"
        assert "domain" not in attrs
        assert "httponly" in attrs
        assert attrs["samesite"].lower() in {"lax", "strict"}


async def test_on_https_every_cookie_the_app_sets_or_removes_is_host_bound_and_secure(
    https_client: Client, db: Database
):
    point = await make_point(db)
    seen: dict[str, str] = {}

    def collect(answer: object, label: str = "") -> None:
        seen.update({name + label: header for name, header in set_cookies(answer).items()})

    page = await https_client.get(f"{point.url}?kind=vessel&lang=en")
    collect(page)
    answer = await https_client.post(
        point.url,
        data={
            "_csrf_token": csrf_from(page.text),
            "kind": "vessel",
            "vessel_name": "Zeemeeuw",
            "registration": "NL-123-AB",
            "guest_name": "Jan de Vries",
            "residence": "Hoorn",
            "persons": "2",
            "expected_departure_at": "2026-07-16T11:00",
            "remember": "on",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    collect(answer)
    again = await https_client.get(point.url)
    assert "Zeemeeuw" in again.text  # the remembered boat came back with the cookie
    forgot = await https_client.post(
        f"/k/forget?next={point.url}",
        data={"_csrf_token": csrf_from(again.text)},
        follow_redirects=False,
    )
    collect(forgot, " (removed)")
    staff = await make_staff(db, "harbour_master", [point.site_slug])
    sign_in_page = await https_client.get("/admin/sign-in")
    signed_in = await https_client.post(
        "/admin/sign-in",
        data={
            "_csrf_token": csrf_from(sign_in_page.text),
            "email": staff.email,
            "password": staff.password,
        },
        follow_redirects=False,
    )
    collect(signed_in)
    signed_out = await https_client.post(
        "/admin/sign-out",
        data={"_csrf_token": csrf_from(sign_in_page.text)},
        follow_redirects=False,
    )
    collect(signed_out, " (removed)")
    assert {
        "__Host-csrftoken", "__Host-nightreg_lang", "__Host-nightreg_remember",
        "__Host-nightreg_session", "__Host-nightreg_remember (removed)",
        "__Host-nightreg_session (removed)",
    } <= seen.keys()  # fmt: skip
    for name, header in seen.items():
        attrs = attributes(header)
        assert name.startswith("__Host-"), name
        assert "secure" in attrs, name
        assert attrs.get("path") == "/", name
        assert "domain" not in attrs, name
        assert "httponly" in attrs or "(removed)" in name, name


async def test_over_plain_http_the_cookies_are_not_secure_so_that_a_local_test_works(
    client: Client, db: Database
):
    staff = await make_staff(db, "security")
    page = await client.get("/admin/sign-in")
    assert "secure" not in attributes(set_cookies(page)["nightreg_csrf"])
    answer = await client.post(
        "/admin/sign-in",
        data={
            "_csrf_token": csrf_from(page.text),
            "email": staff.email,
            "password": staff.password,
        },
        follow_redirects=False,
    )
    session = set_cookies(answer)["nightreg_session"]
    assert "secure" not in attributes(session)
    assert "httponly" in attributes(session)
