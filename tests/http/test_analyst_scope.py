"""The analyst's scope: the signals of every site, as sent, and never the register.

The routes are read from the app's route table, so that a register page added later is
covered without anyone remembering this file. Also the analyst's signal pages: filters,
paging, one signal with its payload and delivery, and the audit of what was seen.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import CheckinPoint, Site, StaffSession
from nightreg.security import token_hash
from tests.factories import (
    NOW,
    SUMMER_EVENING,
    add_visit,
    audit_events,
    forward,
    last_event_id,
    make_agreement,
    make_staff,
    new_site,
    new_token,
)
from tests.pages import bearer, csrf_from

Client = AsyncTestClient[Litestar]

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")

# What an analyst may open at all: signing in and their own account (its remembered site
# included: only a site the account holds is kept), the signals, the information pictures
# (aggregates), and (on sites they are assigned to) forwarded flags.
PUBLIC_OR_OWN = re.compile(
    r"^(GET|POST) /admin(/sign-in(/code|/enrol)?|/sign-out|/password|/reset/\{token\}|/site-choice"
    r"|/two-factor(/enrol|/disable)?)?$"
)
SIGNALS = re.compile(r"^\w+ /(admin|api/v1)/signals(/.*)?$")
INSIGHT = re.compile(r"^\w+ /(admin|api/v1)/insight(/.*)?$")
# (an analyst reviews flags on the page and through the API, as the page's roles do)
FORWARDED_FLAGS = re.compile(
    r"^\w+ /(admin/(sites/\{slug\}/flags(/.*)?|flags/\{id\}(/.*)?)|api/v1/flags/\{id\}(/.*)?)$"
)
# The register: tonight, the register and its print, walk-ins, visits, exports and imports,
# on the pages and in the API.
REGISTER = re.compile(
    r"^\w+ /(admin|api/v1)/(visits(/.*)?|sites/\{slug\}/"
    r"(tonight|register|print|walk-in|export|import|visits)(\b.*)?)$"
)


def staff_routes(app: Litestar) -> list[str]:
    """Every method and path under /admin and /api, as "GET /admin/visits/{id}"."""
    found = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(("/admin", "/api")):
            continue
        path = _PARAM.sub(r"{\1}", route.path)
        for method in route.methods - {"HEAD", "OPTIONS"}:
            found.add(f"{method} {path}")
    return sorted(found)


@dataclass(frozen=True)
class Harbour:
    """A site with a point, a visit, a forwarded flag and its signal, and one staff account."""

    site: Site
    point_id: int
    visit_id: int
    flag_id: int
    signal_uid: str
    user_id: int


async def harbour(db: Database) -> Harbour:
    site = await new_site(db)
    visit = await add_visit(db, site, guest_name="Karel Kade")
    signal = await forward(db, site, await make_agreement(db), visit=visit)
    async with db.read() as session:
        point_id = await session.scalar(
            select(CheckinPoint.id).where(CheckinPoint.site_id == site.id)
        )
    assert point_id is not None
    bystander = await make_staff(db, "security", [site.slug])
    return Harbour(site, point_id, visit.id, signal.flag_id, signal.uid, bystander.user_id)


def fill(line: str, world: Harbour) -> tuple[str, str]:
    method, path = line.split(" ", 1)
    ids = {
        "/admin/visits/": world.visit_id,
        "/api/v1/visits/": world.visit_id,
        "/admin/points/": world.point_id,
        "/admin/users/": world.user_id,
        "/admin/flags/": world.flag_id,
    }
    values = {
        "slug": world.site.slug,
        "uid": world.signal_uid,
        "token": "not-a-reset-token",
        "fmt": "svg",
        "job": "overdue",
        "id": next((str(v) for prefix, v in ids.items() if path.startswith(prefix)), "1"),
    }
    return method, _PARAM.sub(lambda m: values.get(m.group(1), "1"), path)


async def open_session(db: Database, user_id: int) -> str:
    """A session straight in the table: these tests are about scope, not passwords."""
    token = secrets.token_urlsafe(32)
    async with db.write() as session:
        session.add(
            StaffSession(
                token_hash=token_hash(token),
                user_id=user_id,
                created_at=SUMMER_EVENING,
                last_seen_at=SUMMER_EVENING,
            )
        )
    return token


async def as_user(client: Client, db: Database, role: str, *sites: Site) -> str:
    """The client signed in as a new account of `role`; returns a CSRF token for posts."""
    account = await make_staff(db, role, [s.slug for s in sites])
    client.cookies.clear()
    csrf = csrf_from((await client.get("/admin/sign-in")).text)
    client.cookies.set(
        "nightreg_session", await open_session(db, account.user_id), domain="testserver.local"
    )
    return csrf


async def call(client: Client, line: str, world: Harbour, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    method, path = fill(line, world)
    kwargs: dict = {"headers": headers, "follow_redirects": False}
    if method in ("POST", "PATCH"):
        kwargs["json" if path.startswith("/api/") else "data"] = {}
    return await client.request(method, path, **kwargs)


def refused(answer) -> bool:  # type: ignore[no-untyped-def]
    return answer.status_code in (403, 404)


# --- never the register ----------------------------------------------------------------------


async def test_an_analyst_cannot_reach_any_register_page_or_visit_even_on_an_assigned_site(
    client: Client, db: Database, app: Litestar
):
    world = await harbour(db)
    csrf = await as_user(client, db, "analyst", world.site)
    lines = [line for line in staff_routes(app) if REGISTER.match(line) and " /admin" in line]
    assert {"GET /admin/sites/{slug}/tonight", "GET /admin/visits/{id}"} <= set(lines)

    answers = {line: await call(client, line, world, {"x-csrftoken": csrf}) for line in lines}

    assert {line: a.status_code for line, a in answers.items() if not refused(a)} == {}


async def test_an_analyst_token_cannot_reach_the_register_or_a_visit_over_the_api(
    client: Client, db: Database, app: Litestar
):
    world = await harbour(db)
    auth = bearer(await new_token(db, "analyst", world.site.slug))
    lines = [line for line in staff_routes(app) if REGISTER.match(line) and " /api/" in line]
    assert {"GET /api/v1/visits/{id}", "GET /api/v1/sites/{slug}/visits"} <= set(lines)

    answers = {line: await call(client, line, world, auth) for line in lines}

    wrong = {line: a.status_code for line, a in answers.items() if not refused(a)}
    assert wrong == {}
    assert all(a.json()["code"] in ("forbidden", "not_found") for a in answers.values())


async def test_an_analyst_reaches_nothing_but_signals_insight_forwarded_flags_and_their_account(
    client: Client, db: Database, app: Litestar
):
    world = await harbour(db)
    csrf = await as_user(client, db, "analyst", world.site)
    auth = bearer(await new_token(db, "analyst", world.site.slug))
    allowed = (PUBLIC_OR_OWN, SIGNALS, INSIGHT, FORWARDED_FLAGS)
    lines = [line for line in staff_routes(app) if not any(p.match(line) for p in allowed)]
    # The refusals below are the role's: a post that passes the CSRF check gets through.
    control = await call(client, "POST /admin/password", world, {"x-csrftoken": csrf})
    assert control.status_code not in (401, 403, 404)

    wrong = {}
    for line in lines:
        headers = auth if " /api/" in line else {"x-csrftoken": csrf}
        answer = await call(client, line, world, headers)
        if not refused(answer):
            wrong[line] = answer.status_code

    assert wrong == {}


async def test_the_analysts_own_pages_answer_without_any_site(
    client: Client, db: Database, app: Litestar
):
    world = await harbour(db)
    csrf = await as_user(client, db, "analyst")  # the hub's analyst: no site at all
    auth = bearer(await new_token(db, "analyst"))
    lines = [line for line in staff_routes(app) if SIGNALS.match(line)]
    assert len(lines) >= 6

    statuses = {}
    for line in lines:
        headers = auth if " /api/" in line else {"x-csrftoken": csrf}
        statuses[line] = (await call(client, line, world, headers)).status_code

    # An acknowledgement of nothing is invalid; everything else answers.
    assert statuses.pop("POST /api/v1/signals/ack") == 422
    assert set(statuses.values()) == {200}


# --- the signals of every site ---------------------------------------------------------------


async def test_an_analyst_without_any_site_sees_the_signals_of_every_site(
    client: Client, db: Database
):
    agreement = await make_agreement(db)
    marina, park = await new_site(db), await new_site(db, "business_park")
    at_marina = await forward(db, marina, agreement)
    at_park = await forward(db, park, agreement)
    await as_user(client, db, "analyst")

    page = await client.get("/admin/signals")

    assert page.status_code == 200
    assert f"/admin/signals/{at_marina.uid}" in page.text
    assert f"/admin/signals/{at_park.uid}" in page.text
    auth = bearer(await new_token(db, "analyst"))
    for site, signal in ((marina, at_marina), (park, at_park)):
        pulled = await client.get("/api/v1/signals", params={"site": site.slug}, headers=auth)
        assert [s["id"] for s in pulled.json()["signals"]] == [signal.uid]


@pytest.mark.parametrize("role", ["admin", "harbour_master", "security", "auditor"])
async def test_other_roles_cannot_reach_the_signal_pages_or_the_pull_api(
    client: Client, db: Database, role: str
):
    world = await harbour(db)
    await as_user(client, db, role, world.site)
    auth = bearer(await new_token(db, role, world.site.slug))

    pages = [
        await client.get("/admin/signals"),
        await client.get(f"/admin/signals/{world.signal_uid}"),
    ]
    calls = [
        await client.get("/api/v1/signals", headers=auth),
        await client.get(f"/api/v1/signals/{world.signal_uid}", headers=auth),
        await client.get("/api/v1/signals/schema", headers=auth),
        await client.post("/api/v1/signals/ack", json={"ids": [world.signal_uid]}, headers=auth),
    ]

    assert [p.status_code for p in pages] == [403, 403]
    assert [(c.status_code, c.json()["code"]) for c in calls] == [(403, "forbidden")] * 4


# --- the signal pages ------------------------------------------------------------------------


def signal_links(text: str) -> list[str]:
    return re.findall(r'href="/admin/signals/([0-9a-f-]{36})"', text)


async def test_the_signals_page_filters_by_site_rule_delivery_and_period(
    client: Client, db: Database
):
    agreement = await make_agreement(db)
    site = await new_site(db)
    night = await forward(db, site, agreement, at=NOW - timedelta(days=2))
    short = await forward(db, site, agreement, rule="short_stay_repeat")
    done = await forward(db, site, agreement, status="delivered", delivered_by="push")
    await as_user(client, db, "analyst")

    async def shown(**params: str) -> list[str]:
        answer = await client.get("/admin/signals", params={"site": site.slug, **params})
        assert answer.status_code == 200
        return signal_links(answer.text)

    assert await shown() == [done.uid, short.uid, night.uid]  # newest first
    assert await shown(rule="short_stay_repeat") == [short.uid]
    assert await shown(status="delivered") == [done.uid]
    assert await shown(to="2026-07-12") == [night.uid]
    assert await shown(**{"from": "2026-07-14"}) == [done.uid, short.uid]


async def test_a_period_that_cannot_be_read_is_named_next_to_its_field(
    client: Client, db: Database
):
    await as_user(client, db, "analyst")

    bad_date = await client.get("/admin/signals", params={"from": "14-07-2026"})
    backwards = await client.get(
        "/admin/signals", params={"from": "2026-07-15", "to": "2026-07-14"}
    )
    no_site = await client.get("/admin/signals", params={"site": "nergens"})
    far_away = await client.get("/admin/signals", params={"before": "99999999999"})

    assert bad_date.status_code == 400
    assert 'id="f-from" name="from" type="date" value="14-07-2026" aria-invalid="true"' in (
        bad_date.text
    )
    assert "Please enter a date like 2026-07-14." in bad_date.text
    assert backwards.status_code == 400
    assert 'aria-describedby="err-to"' in backwards.text
    assert "The end date must not be before the start date." in backwards.text
    assert no_site.status_code == 400
    assert 'aria-describedby="err-site"' in no_site.text
    assert far_away.status_code == 400


async def test_the_signals_page_continues_with_older_signals_through_htmx(
    client: Client, db: Database
):
    agreement = await make_agreement(db)
    site = await new_site(db)
    made = [
        await forward(db, site, agreement, at=NOW - timedelta(minutes=60 - i)) for i in range(52)
    ]
    await as_user(client, db, "analyst")

    first = await client.get("/admin/signals", params={"site": site.slug})
    more = re.search(r'<tr id="signal-more">.*?hx-get="([^"]+)"', first.text, re.S)
    assert more
    rest = await client.get(
        html.unescape(more.group(1)), headers={"HX-Request": "true", "HX-Target": "signal-more"}
    )

    newest_first = [s.uid for s in reversed(made)]
    assert signal_links(first.text) == newest_first[:50]
    assert signal_links(rest.text) == newest_first[50:]
    assert "<html" not in rest.text
    assert 'id="signal-more"' not in rest.text


async def test_the_signals_page_is_audited_with_the_signals_shown(client: Client, db: Database):
    site, agreement = await new_site(db), await make_agreement(db)
    signal = await forward(db, site, agreement)
    await as_user(client, db, "analyst")
    since = await last_event_id(db)

    await client.get("/admin/signals", params={"site": site.slug})

    [viewed] = await audit_events(db, "signals_viewed", since)
    assert json.loads(viewed.object_ids) == [signal.id]
    assert viewed.actor.startswith("user:")
    assert json.loads(viewed.details)["filters"] == {"site": site.slug}


async def test_a_signal_shows_what_was_sent_as_a_table_and_as_the_exact_json(
    client: Client, db: Database
):
    site = await new_site(db)
    visit = await add_visit(db, site, guest_name="Bram Boei", registration="NL-999-ZZ")
    signal = await forward(
        db, site, await make_agreement(db, fields=("score", "site", "guest_name")), visit=visit
    )
    await as_user(client, db, "analyst")
    since = await last_event_id(db)

    page = await client.get(f"/admin/signals/{signal.uid}")

    assert page.status_code == 200
    text = page.text
    payload_table = text.split('id="payload"', 1)[1].split("</table>", 1)[0]
    assert "Convenant Noord-Holland" in payload_table
    assert "70 / 100" in payload_table
    visits_table = text.split('id="payload-visits"', 1)[1].split("</table>", 1)[0]
    assert "Bram Boei" in visits_table
    assert "NL-999-ZZ" not in text  # the agreement does not allow registrations
    raw = re.search(r'<pre[^>]*id="signal-body"[^>]*><code>(.*?)</code></pre>', text, re.S)
    assert raw
    assert html.unescape(raw.group(1)) == signal.body
    [viewed] = await audit_events(db, "signal_viewed", since)
    assert viewed.object_id == signal.id


async def test_a_signal_shows_its_delivery_attempts_and_last_error(client: Client, db: Database):
    site, agreement = await new_site(db), await make_agreement(db)
    failed = await forward(
        db, site, agreement, status="failed", attempts=4, last_error="HTTP 400: unknown schema"
    )
    await as_user(client, db, "analyst")

    page = await client.get(f"/admin/signals/{failed.uid}")

    assert re.search(r'id="signal-status">Delivery failed<', page.text)
    assert re.search(r'id="signal-attempts">4<', page.text)
    assert "HTTP 400: unknown schema" in page.text


async def test_an_unknown_signal_is_a_not_found_page(client: Client, db: Database):
    await as_user(client, db, "analyst")

    page = await client.get("/admin/signals/00000000-0000-0000-0000-000000000000")

    assert page.status_code == 404


async def test_a_visit_outside_the_agreement_never_shows_on_a_signal_page(
    client: Client, db: Database
):
    site = await new_site(db)
    visit = await add_visit(db, site, guest_name="Onbekende Gast", registration="NL-777-QQ")
    signal = await forward(db, site, await make_agreement(db, fields=()), visit=visit)
    await as_user(client, db, "analyst")

    page = await client.get(f"/admin/signals/{signal.uid}")

    assert "payload-visits" not in page.text
    assert "The agreement allows no details of the visits: none were sent." in page.text
    assert "Onbekende Gast" not in page.text
    assert "NL-777-QQ" not in page.text
