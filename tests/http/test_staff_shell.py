"""The staff side's shell: the navigation by task and role, the home that says what needs doing,
the error pages in the staff's voice, the icons, versioned static files and the pages' weight."""

from __future__ import annotations

import gzip
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from litestar import Litestar
from litestar.testing import AsyncTestClient

from nightreg.db import Database
from nightreg.models import NightRound, PossibleDuplicate, RoundMark
from nightreg.services import home
from tests.factories import NOW, add_visit, make_flag, new_site, staff
from tests.pages import signed_in

Client = AsyncTestClient[Litestar]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def tab_hrefs(html: str) -> dict[str, str]:
    """The row of tabs under the bar: label -> link."""
    nav = re.search(r'<nav class="subnav".*?</nav>', html, re.S)
    assert nav
    return {
        label: href for href, label in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav[0])
    }


async def test_the_home_counts_what_needs_doing_on_each_site(db: Database):
    site = await new_site(db)
    await add_visit(db, site)  # here, leaves tomorrow
    late = await add_visit(
        db, site, arrived=NOW - timedelta(days=2), expected=NOW - timedelta(hours=1)
    )
    await add_visit(db, site, arrived=NOW - timedelta(days=3), departed=NOW - timedelta(days=1))
    await add_visit(db, site, arrived=NOW - timedelta(hours=1), expected=NOW + timedelta(hours=2))
    await make_flag(db, site, visits=[late])
    actor = staff("harbour_master", site)

    figures = await home.home(db, actor, [site], now=NOW, tz=AMSTERDAM)

    [here] = figures.sites
    assert (here.present, here.arrived_today, here.leaving_today, here.overdue) == (3, 2, 1, 1)
    assert here.open_flags == 1
    # Nothing doubled, no round walked: none, and the page leaves the round's tile out.
    assert here.possible_duplicates == 0
    assert here.last_round is None
    assert figures.jobs == []  # not the harbour master's concern


async def test_each_role_has_its_own_home(client: Client, db: Database):
    site = await new_site(db)
    await add_visit(db, site, arrived=NOW - timedelta(days=2), expected=NOW - timedelta(hours=1))

    await signed_in(client, db, "security", site)
    guard = (await client.get("/admin/")).text
    await signed_in(client, db, "admin", site)
    admin = (await client.get("/admin/")).text
    await signed_in(client, db, "auditor")
    auditor = (await client.get("/admin/")).text

    assert re.search(rf'id="overdue-{site.slug}">\s*<span class="n">1</span>', guard)
    assert f'id="duplicates-{site.slug}"' in guard  # none doubled: 0, without alarm
    assert "System health" not in guard
    assert 'id="job-scan"' in admin
    assert 'id="no-two-factor"' in admin
    assert 'id="chain"' in auditor
    assert 'id="holds"' in auditor
    assert f"overdue-{site.slug}" not in auditor


async def test_the_navigation_offers_only_what_the_role_may_use(client: Client, db: Database):
    site = await new_site(db)

    await signed_in(client, db, "security", site)
    guard = tab_hrefs((await client.get(f"/admin/sites/{site.slug}/register")).text)
    await signed_in(client, db, "harbour_master", site)
    master_page = (await client.get(f"/admin/sites/{site.slug}/register")).text
    master = tab_hrefs(master_page)
    await signed_in(client, db, "admin", site)
    settings = tab_hrefs((await client.get("/admin/users")).text)

    assert set(guard) == {"Overview", "Tonight", "Register", "Signals"}
    assert master["Walk-in"] == f"/admin/sites/{site.slug}/walk-in"
    assert master["Police print"] == f"/admin/sites/{site.slug}/print"
    assert 'aria-current="page">Register</a>' in master_page
    assert ">Settings</a>" not in master_page
    assert set(settings) == {
        "Users",
        "Sites",
        "Agreements",
        "Retention and holds",
        "Jobs",
        "Audit trail",
    }


async def test_the_site_switcher_keeps_the_task_and_remembers_the_site(
    client: Client, db: Database
):
    first, second = await new_site(db), await new_site(db, "business_park")
    csrf = await signed_in(client, db, "harbour_master", first, second)

    answer = await client.post(
        "/admin/site-choice",
        data={
            "site": second.slug,
            "next": f"/admin/sites/{first.slug}/register",
            "route": "admin:register",
            "_csrf_token": csrf,
        },
        follow_redirects=False,
    )
    later = tab_hrefs((await client.get("/admin/password")).text)

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/sites/{second.slug}/register"
    assert later["Tonight"] == f"/admin/sites/{second.slug}/tonight"


async def test_a_site_of_someone_else_is_not_remembered(client: Client, db: Database):
    mine, theirs = await new_site(db), await new_site(db)
    csrf = await signed_in(client, db, "harbour_master", mine)

    answer = await client.post(
        "/admin/site-choice",
        data={"site": theirs.slug, "next": "/admin/", "_csrf_token": csrf},
        follow_redirects=False,
    )

    assert answer.headers["location"] == "/admin/"
    assert theirs.slug not in (await client.get("/admin/password")).text


async def test_a_missing_staff_page_speaks_to_staff(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "harbour_master", site)

    answer = await client.get("/admin/no-such-page")

    assert answer.status_code == 404
    assert "Not found" in answer.text
    assert "QR code" not in answer.text


async def test_the_icons_are_served_and_versioned_files_are_kept_a_year(client: Client):
    icon = await client.get("/favicon.ico")
    page = (await client.get("/admin/sign-in")).text
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', page)
    assert css
    versioned = await client.get(css[1])
    bare = await client.get("/static/app.css")

    assert icon.status_code == 200
    assert icon.headers["cache-control"] == "public, max-age=86400"
    assert 'rel="apple-touch-icon"' in page
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert bare.headers["cache-control"] == "public, max-age=86400"


async def test_a_staff_page_weighs_at_most_60_kb_compressed(client: Client, db: Database):
    """Tonight with fifty boats, the register and the home: the page, its stylesheets and its
    scripts together, gzip-compressed as the server sends them."""
    site = await new_site(db)
    for n in range(50):
        await add_visit(db, site, guest_name=f"Gast {n}", berth=f"A{n}")
    await signed_in(client, db, "harbour_master", site)

    for path in (
        "/admin/",
        f"/admin/sites/{site.slug}/tonight",
        f"/admin/sites/{site.slug}/register",
    ):
        html = (await client.get(path)).text
        total = len(gzip.compress(html.encode()))
        for asset in set(re.findall(r'(?:src|href)="(/static/[^"]+\.(?:css|js)[^"]*)"', html)):
            total += len(gzip.compress((await client.get(asset)).content))
        print(f"{path}: {total} bytes compressed")
        assert total <= 60 * 1024, f"{path}: {total} bytes compressed"


async def test_the_home_names_the_open_possible_duplicates_and_the_last_round(db: Database):
    site = await new_site(db)
    first = await add_visit(db, site, berth="A9")
    second = await add_visit(db, site, berth="A9")
    gone = await add_visit(db, site, berth="A12")
    async with db.write() as session:
        session.add(
            PossibleDuplicate(
                visit_id=second.id, duplicate_of_id=first.id, site_id=site.id, created_at=NOW
            )
        )
        earlier = NightRound(
            site_id=site.id, started_at=NOW - timedelta(days=1, hours=1),
            ended_at=NOW - timedelta(days=1), walked_by="yesterday@example.org",
        )  # fmt: skip
        last = NightRound(
            site_id=site.id, started_at=NOW - timedelta(hours=2),
            ended_at=NOW - timedelta(hours=1), walked_by="ria@example.org",
        )  # fmt: skip
        session.add_all([earlier, last])
        await session.flush()
        at = NOW - timedelta(hours=1, minutes=30)
        for n, (visit, status, when) in enumerate(
            [(first, "seen", at), (gone, "seen", at), (gone, "missing", at + timedelta(minutes=5))]
        ):
            session.add(
                RoundMark(
                    round_id=last.id,
                    visit_id=visit.id,
                    status=status,
                    marked_at=when,
                    received_at=when,
                    idempotency_key=f"home-{n}",
                )
            )

    figures = await home.home(db, staff("harbour_master", site), [site], now=NOW, tz=AMSTERDAM)

    [here] = figures.sites
    assert here.possible_duplicates == 1
    assert here.last_round is not None
    assert (here.last_round.walked_by, here.last_round.ended_at) == (
        "ria@example.org",
        NOW - timedelta(hours=1),
    )
    assert here.last_round.not_seen == 1  # the boat re-marked "not there" counts by its last mark
