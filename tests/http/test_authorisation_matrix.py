"""The authorisation matrix: every staff page and API call, as every role, as a user of another
site and anonymously, against one declared table. A route missing from the table fails."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from nightreg.db import Database
from nightreg.models import StaffSession
from nightreg.security import token_hash
from nightreg.services import holds
from nightreg.services.access import CLI
from nightreg.vocabulary import ROLES
from tests.factories import SUMMER_EVENING, make_point, make_staff

ANY = frozenset(ROLES)
VIEW = frozenset({"admin", "harbour_master", "security"})
EDIT = frozenset({"admin", "harbour_master"})
ADMIN = frozenset({"admin"})
AUDIT = frozenset({"admin", "auditor"})
FLAGS = frozenset({"admin", "harbour_master", "security", "analyst"})
ANALYST = frozenset({"analyst"})
# A gate camera system's token (issue 19): an API role only, never a staff account.
SENSOR = frozenset({"sensor"})

PUBLIC = "public"  # no account needed
GLOBAL = "global"  # the role decides; sites do not matter
SITE = "site"  # the role decides, and only on the account's own sites

# One line per route: who may use it, and whether the site scope applies.
MATRIX: dict[str, tuple[frozenset[str], str]] = {
    "GET /admin/sign-in": (ANY, PUBLIC),
    # two-factor sign-in: the second step (no session yet), one's own factor, an admin's reset
    "GET /admin/sign-in/code": (ANY, PUBLIC),
    "POST /admin/sign-in/code": (ANY, PUBLIC),
    "GET /admin/sign-in/enrol": (ANY, PUBLIC),
    "POST /admin/sign-in/enrol": (ANY, PUBLIC),
    "GET /admin/two-factor": (ANY, GLOBAL),
    "GET /admin/two-factor/enrol": (ANY, GLOBAL),
    "POST /admin/two-factor/enrol": (ANY, GLOBAL),
    "POST /admin/two-factor/disable": (ANY, GLOBAL),
    "POST /admin/users/{id}/two-factor-reset": (ADMIN, GLOBAL),
    # retention: policies, the purge's preview and receipts
    "GET /admin/retention": (AUDIT, GLOBAL),
    "GET /admin/retention/preview": (AUDIT, GLOBAL),
    "GET /admin/retention/receipts/{id}": (AUDIT, GLOBAL),
    "GET /admin/retention/sites/{slug}": (ADMIN, GLOBAL),
    "POST /admin/retention/sites/{slug}": (ADMIN, GLOBAL),
    # retention: legal holds
    "GET /admin/retention/holds": (AUDIT, GLOBAL),
    "GET /admin/retention/holds/new": (ADMIN, GLOBAL),
    "POST /admin/retention/holds/new": (ADMIN, GLOBAL),
    "GET /admin/retention/holds/{id}": (AUDIT, GLOBAL),
    "POST /admin/retention/holds/{id}/release": (ADMIN, GLOBAL),
    # subject requests (the site scope is in the query: no site in the path)
    "GET /admin/subjects": (EDIT, GLOBAL),
    "GET /admin/subjects/report": (EDIT, GLOBAL),
    "GET /admin/subjects/report.json": (EDIT, GLOBAL),
    "GET /admin/subjects/erase": (EDIT, GLOBAL),
    "POST /admin/subjects/erase": (EDIT, GLOBAL),
    # the tourist-tax return
    "GET /admin/sites/{slug}/tourist-tax": (EDIT, SITE),
    "GET /admin/sites/{slug}/tourist-tax.csv": (EDIT, SITE),
    "GET /admin/sites/{slug}/flags": (FLAGS, SITE),
    "POST /admin/sites/{slug}/flags/dismiss": (FLAGS, SITE),
    "GET /admin/flags/{id}": (FLAGS, SITE),
    "POST /admin/flags/{id}/review": (FLAGS, SITE),
    "GET /admin/flags/{id}/forward": (FLAGS, SITE),
    "GET /admin/sites/{slug}/observations/new": (VIEW, SITE),
    "POST /admin/sites/{slug}/observations/new": (VIEW, SITE),
    "GET /admin/sites/{slug}/flags/export": (VIEW, SITE),
    "GET /admin/sites/{slug}/flags/export/download": (VIEW, SITE),
    "POST /admin/sign-in": (ANY, PUBLIC),
    "GET /admin/reset/{token}": (ANY, PUBLIC),
    "POST /admin/reset/{token}": (ANY, PUBLIC),
    "POST /admin/sign-out": (ANY, GLOBAL),
    "GET /admin": (ANY, GLOBAL),
    "GET /admin/password": (ANY, GLOBAL),
    "POST /admin/site-choice": (ANY, GLOBAL),
    "POST /admin/password": (ANY, GLOBAL),
    # the audit trail
    "GET /admin/audit": (AUDIT, GLOBAL),
    "GET /admin/audit/export.csv": (AUDIT, GLOBAL),
    "GET /admin/audit/verify": (AUDIT, GLOBAL),
    # the register
    "GET /admin/sites/{slug}/tonight": (VIEW, SITE),
    "GET /admin/sites/{slug}/register": (VIEW, SITE),
    "GET /admin/sites/{slug}/print": (EDIT, SITE),
    "GET /admin/sites/{slug}/walk-in": (EDIT, SITE),
    "POST /admin/sites/{slug}/walk-in": (EDIT, SITE),
    "GET /admin/visits/{id}": (VIEW, SITE),
    "GET /admin/visits/{id}/correct": (EDIT, SITE),
    "POST /admin/visits/{id}/correct": (EDIT, SITE),
    "POST /admin/visits/{id}/checkout": (EDIT, SITE),
    "POST /admin/visits/{id}/notes": (EDIT, SITE),
    # the night round (marinas)
    "GET /admin/sites/{slug}/round": (EDIT, SITE),
    "POST /admin/sites/{slug}/round/start": (EDIT, SITE),
    "POST /admin/sites/{slug}/round/marks": (EDIT, SITE),
    "POST /admin/sites/{slug}/round/found": (EDIT, SITE),
    "POST /admin/sites/{slug}/round/finish": (EDIT, SITE),
    # a possible duplicate: merge it into the visit it doubles, or keep both
    "POST /admin/visits/{id}/merge": (EDIT, SITE),
    "POST /admin/visits/{id}/keep-both": (EDIT, SITE),
    # export and import
    "GET /admin/sites/{slug}/export": (EDIT, SITE),
    "GET /admin/sites/{slug}/export/download": (EDIT, SITE),
    "GET /admin/sites/{slug}/import": (EDIT, SITE),
    "POST /admin/sites/{slug}/import": (EDIT, SITE),
    # users, sites, points
    "GET /admin/users": (ADMIN, GLOBAL),
    "GET /admin/users/new": (ADMIN, GLOBAL),
    "POST /admin/users/new": (ADMIN, GLOBAL),
    "GET /admin/users/{id}": (ADMIN, GLOBAL),
    "POST /admin/users/{id}": (ADMIN, GLOBAL),
    "POST /admin/users/{id}/reset": (ADMIN, GLOBAL),
    "GET /admin/sites": (EDIT, GLOBAL),
    "POST /admin/sites": (ADMIN, GLOBAL),
    "GET /admin/sites/{slug}": (EDIT, SITE),
    "POST /admin/sites/{slug}": (ADMIN, GLOBAL),
    "POST /admin/sites/{slug}/points": (EDIT, SITE),
    "POST /admin/sites/{slug}/branding": (ADMIN, SITE),
    "POST /admin/sites/{slug}/cameras": (ADMIN, SITE),
    "POST /admin/sites/{slug}/ais": (ADMIN, SITE),
    "POST /admin/points/{id}": (EDIT, SITE),
    "POST /admin/points/{id}/rotate": (EDIT, SITE),
    "GET /admin/points/{id}/poster/{fmt}": (EDIT, SITE),
    # sharing agreements
    "GET /admin/agreements": (AUDIT, GLOBAL),
    "GET /admin/agreements/new": (ADMIN, GLOBAL),
    "POST /admin/agreements/new": (ADMIN, GLOBAL),
    "GET /admin/agreements/{id}": (AUDIT, GLOBAL),
    "POST /admin/agreements/{id}/end": (ADMIN, GLOBAL),
    # information pictures (insight.view; sites are scoped inside)
    "GET /admin/insight": (FLAGS, GLOBAL),
    "GET /admin/insight/flags.csv": (FLAGS, GLOBAL),
    "GET /admin/insight/arrivals.csv": (FLAGS, GLOBAL),
    "GET /admin/insight/signals.csv": (FLAGS, GLOBAL),
    "GET /admin/insight/shared.csv": (FLAGS, GLOBAL),
    # the signals, for the hub's analysts (all sites)
    "GET /admin/signals": (ANALYST, GLOBAL),
    "GET /admin/signals/{uid}": (ANALYST, GLOBAL),
    "GET /api/v1/signals": (ANALYST, GLOBAL),
    "GET /api/v1/signals/{uid}": (ANALYST, GLOBAL),
    "GET /api/v1/signals/schema": (ANALYST, GLOBAL),
    "POST /api/v1/signals/ack": (ANALYST, GLOBAL),
    # the scheduled jobs
    "GET /admin/jobs": (ADMIN, GLOBAL),
    "POST /admin/jobs/{job}/run": (ADMIN, GLOBAL),
    "POST /admin/jobs/signals/{uid}/retry": (ADMIN, GLOBAL),
    # the JSON API
    "GET /api/v1/sites": (VIEW, GLOBAL),
    "GET /api/v1/sites/{slug}/visits": (VIEW, SITE),
    "POST /api/v1/sites/{slug}/visits": (EDIT, SITE),
    "GET /api/v1/visits/{id}": (VIEW, SITE),
    "PATCH /api/v1/visits/{id}": (EDIT, SITE),
    "POST /api/v1/visits/{id}/checkout": (EDIT, SITE),
    "GET /api/v1/sites/{slug}/register.csv": (EDIT, SITE),
    # a flag's review for security companies' systems, as on its page
    "POST /api/v1/flags/{id}/review": (FLAGS, SITE),
    "GET /api/v1/flags/{id}/forward-preview": (FLAGS, SITE),
    # gate cameras: sightings posted by a sensor token to its own sites
    "POST /api/v1/sites/{slug}/sightings": (SENSOR, SITE),
}

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def staff_routes(app: Litestar) -> set[str]:
    """Every method and path of the app under /admin and /api, in the table's notation."""
    found = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(("/admin", "/api")):
            continue
        path = _PARAM.sub(r"{\1}", route.path)
        for method in route.methods - {"HEAD", "OPTIONS"}:
            found.add(f"{method} {path}")
    return found


def test_every_staff_route_is_in_the_matrix_and_the_matrix_has_no_stale_lines(app: Litestar):
    routes = staff_routes(app)
    assert sorted(routes - MATRIX.keys()) == [], "routes missing from the matrix"
    assert sorted(MATRIX.keys() - routes) == [], "matrix lines without a route"


@dataclass
class World:
    site_slug: str
    other_slug: str
    visit_id: int
    point_id: int
    user_id: int
    flag_id: int
    agreement_id: int
    signal_uid: str
    hold_id: int
    receipt_id: int


async def build_world(db: Database) -> World:
    from sqlalchemy import select

    from nightreg.models import CheckinPoint, Site
    from nightreg.services import checkin
    from nightreg.validation import validate_checkin

    here = await make_point(db, "marina")
    other = await make_point(db, "marina")
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == here.site_slug))
        point_id = await session.scalar(
            select(CheckinPoint.id).where(CheckinPoint.token == here.token)
        )
    assert site is not None
    assert point_id is not None
    data, errors = validate_checkin(
        {
            "guest_name": "Jan de Vries",
            "residence": "Den Helder",
            "vessel_name": "Zeemeeuw",
            "registration": "NL-123-AB",
            "expected_departure_at": "2026-07-15 12:00",
            "persons": "2",
        },
        kind="vessel",
        allowed_kinds=("vessel",),
        now=SUMMER_EVENING,
        tz=ZoneInfo(site.timezone),
    )
    assert data is not None, errors
    result = await checkin.check_in(
        db,
        site_id=site.id,
        point_id=point_id,
        data=data,
        now=SUMMER_EVENING,
        secret_key="matrix",
        idempotency_key=secrets.token_hex(8),
    )
    bystander = await make_staff(db, "security", [here.site_slug])
    flag_id = await a_forwarded_flag(db, site.id, result.visit.id)
    agreement_id, signal_uid = await a_signal(db, site.id, result.visit.id)
    hold = await holds.place(
        db, CLI, scope="site", site_id=site.id, case_reference="MATRIX", reason="matrix",
        now=SUMMER_EVENING, tz=ZoneInfo("Europe/Amsterdam"),
    )  # fmt: skip
    return World(
        here.site_slug, other.site_slug, result.visit.id, point_id, bystander.user_id, flag_id,
        agreement_id, signal_uid, hold.id, await a_purge_receipt(db),
    )  # fmt: skip


async def a_purge_receipt(db: Database) -> int:
    """A purge's receipt in the audit trail (a purge itself would touch every test's data)."""
    from nightreg.services import audit
    from nightreg.services.access import SYSTEM

    details = {"deleted": {}, "aggregated_visits": 0, "oldest_kept": {}, "finished": True}
    async with db.write() as session:
        event = await audit.record(
            session, SYSTEM, "purge_completed", at=SUMMER_EVENING, details=details
        )
    return event.id


async def a_signal(db: Database, site_id: int, visit_id: int) -> tuple[int, str]:
    """A signal under an agreement that covers no rule (so no other test finds it in force
    or lapsed), as the pull API's tests make them."""
    from nightreg.models import Site, Visit
    from tests.factories import forward, make_agreement

    agreement = await make_agreement(db)
    async with db.read() as session:
        site = await session.get(Site, site_id)
        visit = await session.get(Visit, visit_id)
    assert site is not None
    assert visit is not None
    signal = await forward(db, site, agreement, visit=visit)
    return agreement.id, signal.uid


async def a_forwarded_flag(db: Database, site_id: int, visit_id: int) -> int:
    """A flag every flag role may open: forwarded, so the hub's analyst sees it too."""
    from sqlalchemy import update

    from nightreg.models import Flag
    from nightreg.rules.base import Finding
    from nightreg.services import flagging

    finding = Finding(
        rule="night_movement", subject="reg:NL123AB", visit_ids=(visit_id,),
        window_start=SUMMER_EVENING, window_end=SUMMER_EVENING, score=50,
        params={"count": 2, "days": 14},
    )  # fmt: skip
    async with db.write() as session:
        recorded = await flagging.record(session, finding, site_id=site_id, now=SUMMER_EVENING)
        await session.execute(
            update(Flag).where(Flag.id == recorded.flag_id).values(status="forwarded")
        )
    return recorded.flag_id


def fill(path: str, world: World) -> str:
    values = {
        "slug": world.site_slug,
        "token": "not-a-reset-token",
        "fmt": "svg",
        "job": "overdue",
        "uid": world.signal_uid,
    }
    if path.startswith("/admin/users/"):
        values["id"] = str(world.user_id)
    elif path.startswith("/admin/points/"):
        values["id"] = str(world.point_id)
    elif path.startswith(("/admin/flags/", "/api/v1/flags/")):
        values["id"] = str(world.flag_id)
    elif path.startswith("/admin/agreements/"):
        values["id"] = str(world.agreement_id)
    elif path.startswith("/admin/retention/holds/"):
        values["id"] = str(world.hold_id)
    elif path.startswith("/admin/retention/receipts/"):
        values["id"] = str(world.receipt_id)
    else:
        values["id"] = str(world.visit_id)
    return _PARAM.sub(lambda m: values[m.group(1)], path)


async def open_session(db: Database, user_id: int) -> str:
    """A fresh session straight in the table: the matrix is about the guard, not argon2."""
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


def is_sign_in_redirect(answer) -> bool:
    # The guard's redirect carries ?next=; signing out itself also ends on the sign-in page.
    return answer.status_code in (302, 303) and answer.headers.get("location", "").startswith(
        "/admin/sign-in?next="
    )


async def call(
    client: AsyncTestClient[Litestar],
    line: str,
    world: World,
    csrf: str,
    *,
    session: str | None = None,
    bearer: str | None = None,
):
    method, path = line.split(" ", 1)
    client.cookies.delete("nightreg_session")
    headers = {"x-csrftoken": csrf}
    if session:
        client.cookies.set("nightreg_session", session, domain="testserver.local")
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    kwargs: dict = {"headers": headers, "follow_redirects": False}
    if method in ("POST", "PATCH"):
        kwargs["json" if path.startswith("/api/") else "data"] = {}
    return await client.request(method, fill(path, world), **kwargs)


def allowed(answer) -> bool:
    return (
        answer.status_code < 500
        and answer.status_code not in (401, 403, 404)
        and not (is_sign_in_redirect(answer))
    )


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_gets_exactly_what_the_matrix_says(
    client: AsyncTestClient[Litestar], db: Database, app: Litestar, clock, role: str
):
    world = await build_world(db)
    own = await make_staff(db, role, [world.site_slug])
    stranger = await make_staff(db, role, [world.other_slug])
    csrf_page = await client.get("/admin/sign-in")
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', csrf_page.text).group(1)
    tokens = await api_tokens(db, role, world)
    problems = []
    for line in sorted(staff_routes(app)):
        roles, scope = MATRIX[line]
        is_api = line.split(" ", 1)[1].startswith("/api/")
        for who, user, site_ok in (("own site", own, True), ("other site", stranger, False)):
            if is_api:
                answer = await call(client, line, world, csrf, bearer=tokens[site_ok])
            else:
                answer = await call(
                    client, line, world, csrf, session=await open_session(db, user.user_id)
                )
            if scope == PUBLIC:
                ok = answer.status_code < 500 and not is_sign_in_redirect(answer)
                expected = "a public answer"
            elif role not in roles:
                ok = answer.status_code == 403
                expected = "403"
            elif scope == SITE and not site_ok:
                ok = answer.status_code == 404
                expected = "404"
            else:
                ok = allowed(answer)
                expected = "allowed"
            if not ok:
                problems.append(
                    f"{line} as {role} of the {who}: {answer.status_code}, expected {expected}"
                )
    assert problems == []


async def test_a_sensor_token_gets_exactly_what_the_matrix_says_on_the_api(
    client: AsyncTestClient[Litestar], db: Database, app: Litestar
):
    """The sensor role exists for API tokens only: every API call but posting sightings to its
    own sites is refused (403; 404 for a site not its own), and it reads nothing."""
    world = await build_world(db)
    tokens = await api_tokens(db, "sensor", world)
    problems = []
    for line in sorted(staff_routes(app)):
        if not line.split(" ", 1)[1].startswith("/api/"):
            continue
        roles, scope = MATRIX[line]
        for who, site_ok in (("own site", True), ("other site", False)):
            answer = await call(client, line, world, "", bearer=tokens[site_ok])
            if "sensor" not in roles:
                ok, expected = answer.status_code == 403, "403"
            elif scope == SITE and not site_ok:
                ok, expected = answer.status_code == 404, "404"
            else:
                ok, expected = allowed(answer), "allowed"
            if not ok:
                problems.append(f"{line} as sensor of the {who}: {answer.status_code}, {expected}")
    assert problems == []


async def test_anonymous_callers_are_sent_to_sign_in_or_refused(
    client: AsyncTestClient[Litestar], db: Database, app: Litestar
):
    world = await build_world(db)
    csrf_page = await client.get("/admin/sign-in")
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', csrf_page.text).group(1)
    problems = []
    for line in sorted(staff_routes(app)):
        _roles, scope = MATRIX[line]
        answer = await call(client, line, world, csrf)
        if scope == PUBLIC:
            ok = answer.status_code < 500 and not is_sign_in_redirect(answer)
        elif line.split(" ", 1)[1].startswith("/api/"):
            ok = answer.status_code == 401 and answer.json()["code"] == "unauthorized"
        else:
            ok = is_sign_in_redirect(answer)
        if not ok:
            problems.append(f"{line} anonymously: {answer.status_code}")
    assert problems == []


async def api_tokens(db: Database, role: str, world: World) -> dict[bool, str]:
    """A token of the role on the world's site (True) and one on the other site (False)."""
    from nightreg.services import tokens

    made = {}
    for site_ok, slug in ((True, world.site_slug), (False, world.other_slug)):
        _token, plain = await tokens.create_token(
            db,
            CLI,
            name=f"matrix {role}",
            role=role,
            site_slugs=[slug],
            expires_at=SUMMER_EVENING + timedelta(days=30),
            now=SUMMER_EVENING,
        )
        made[site_ok] = plain
    return made


# --- who reads which audit events (issue 17, finding 3) --------------------------------------


async def audit_world(db: Database) -> tuple[World, int, int]:
    """The matrix's world, a watchlist hit on its site, and a correction on each of two sites
    (with a name before and after); the hit's and the other site's event ids."""
    import json

    from sqlalchemy import select

    from nightreg.models import AuditEvent, Site
    from nightreg.rules.base import Finding
    from nightreg.services import audit, flagging
    from nightreg.services.access import SYSTEM

    world = await build_world(db)
    hit = Finding(
        rule="watchlist_hit", subject="reg:NL123AB", visit_ids=(world.visit_id,),
        window_start=SUMMER_EVENING, window_end=SUMMER_EVENING, score=100,
        params={"identifier": "registration"},
    )  # fmt: skip
    async with db.write() as session:
        await flagging.record(session, hit, site_id=await _site_id(db, world.site_slug),
                              now=SUMMER_EVENING)  # fmt: skip
        hit_id = await session.scalar(
            select(AuditEvent.id).where(
                AuditEvent.action == "flag_raised",
                AuditEvent.details.contains('"rule":"watchlist_hit"'),
            )
        )
        other = await session.scalar(select(Site.id).where(Site.slug == world.other_slug))
        for site_id, name in ((await _site_id(db, world.site_slug), "Piet"), (other, "Klaas")):
            event = await audit.record(
                session, SYSTEM, "visit_corrected", at=SUMMER_EVENING, site_id=site_id,
                object_type="visit", object_id=world.visit_id,
                details={"reason": "typo", "before": {"guest_name": name},
                         "after": {"guest_name": name + " Jansen"}},
            )  # fmt: skip
            assert json.loads(event.details) == {}  # the personal values are not chained
    assert hit_id is not None
    return world, hit_id, event.id


async def _site_id(db: Database, slug: str) -> int:
    from sqlalchemy import select

    from nightreg.models import Site

    async with db.read() as session:
        found = await session.scalar(select(Site.id).where(Site.slug == slug))
    assert found is not None
    return found


async def test_an_admin_of_one_site_reads_only_its_events_without_details_or_watchlist(
    client: AsyncTestClient[Litestar], db: Database
):
    """The assessment's reproduction: an admin of site A exports ?action=flag_raised and read
    the watchlist hit; and every admin read every site's corrections with their names."""
    world, hit_id, other_event = await audit_world(db)
    admin = await make_staff(db, "admin", [world.site_slug])
    client.cookies.set(
        "nightreg_session", await open_session(db, admin.user_id), domain="testserver.local"
    )

    export = await client.get("/admin/audit/export.csv", params={"action": "flag_raised"})
    assert export.status_code == 200
    assert "watchlist_hit" not in export.text
    assert "night_movement" in export.text  # the site's other flags are there
    everything = (await client.get("/admin/audit/export.csv")).text
    page = (await client.get("/admin/audit", params={"action": "visit_corrected"})).text
    for text in (everything, page):
        assert "watchlist_hit" not in text
        assert "Piet" not in text  # before/after are personal: not for admins
        assert "Klaas" not in text
    rows = {line.split(",", 1)[0] for line in everything.splitlines()[1:]}
    assert str(hit_id) not in rows
    assert str(other_event) not in rows  # the other site's correction


async def test_a_review_of_a_watchlist_flag_stays_hidden_from_admins_after_the_purge(
    client: AsyncTestClient[Litestar], db: Database
):
    """A `flag_reviewed` event names no rule: it was hidden by looking its flag up, and showed
    (an id and an action) once the purge had removed the flag. Now it is marked when written."""
    from sqlalchemy import delete, select

    from nightreg.models import Flag
    from nightreg.services import audit
    from nightreg.services.access import SYSTEM

    world, _hit, _other = await audit_world(db)
    async with db.write() as session:
        flag = await session.scalar(select(Flag).where(Flag.rule == "watchlist_hit"))
        assert flag is not None
        review = await audit.record(
            session, SYSTEM, "flag_reviewed", at=SUMMER_EVENING, site_id=flag.site_id,
            object_type="flag", object_id=flag.id,
            details={"action": "watch", "reason": "", "from": "open", "to": "watching"},
        )  # fmt: skip
        await session.execute(delete(Flag).where(Flag.id == flag.id))  # as the purge does
    admin = await make_staff(db, "admin", [world.site_slug])
    client.cookies.set(
        "nightreg_session", await open_session(db, admin.user_id), domain="testserver.local"
    )
    export = (await client.get("/admin/audit/export.csv")).text
    rows = {line.split(",", 1)[0] for line in export.splitlines()[1:]}
    assert rows  # the admin reads the site's other events
    assert str(review.id) not in rows
    page = (await client.get("/admin/audit", params={"action": "flag_reviewed"})).text
    assert f">{review.id}<" not in page
    auditor = await make_staff(db, "auditor")
    client.cookies.set(
        "nightreg_session", await open_session(db, auditor.user_id), domain="testserver.local"
    )
    export = (await client.get("/admin/audit/export.csv")).text
    assert str(review.id) in {line.split(",", 1)[0] for line in export.splitlines()[1:]}


async def test_the_auditor_reads_every_event_with_its_details(
    client: AsyncTestClient[Litestar], db: Database
):
    _world, hit_id, other_event = await audit_world(db)
    auditor = await make_staff(db, "auditor")
    client.cookies.set(
        "nightreg_session", await open_session(db, auditor.user_id), domain="testserver.local"
    )
    export = (await client.get("/admin/audit/export.csv")).text
    assert "watchlist_hit" in export
    assert "Piet Jansen" in export
    assert "Klaas Jansen" in export
    rows = {line.split(",", 1)[0] for line in export.splitlines()[1:]}
    assert {str(hit_id), str(other_event)} <= rows


async def test_the_visit_page_shows_its_sites_staff_the_before_and_after(
    client: AsyncTestClient[Litestar], db: Database
):
    world, _hit, _other = await audit_world(db)
    master = await make_staff(db, "harbour_master", [world.site_slug])
    client.cookies.set(
        "nightreg_session", await open_session(db, master.user_id), domain="testserver.local"
    )
    page = await client.get(f"/admin/visits/{world.visit_id}")
    assert page.status_code == 200
    assert "Piet Jansen" in page.text
