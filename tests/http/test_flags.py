"""The review queue through HTTP and its service: scope, restricted flags, filters, a flag's
page with its evidence, the three reviews, and the open-flag count on tonight's board."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import AuditEvent
from nightreg.rules import RULES
from nightreg.services import flags as flag_queue
from nightreg.services.access import NotFound
from tests.factories import (
    SUMMER_EVENING,
    add_visit,
    event_details,
    events,
    load,
    make_flag,
    new_site,
    staff,
)
from tests.pages import signed_in

Client = AsyncTestClient[Litestar]
NOW = SUMMER_EVENING  # 21:00 in Amsterdam


def flag_links(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/admin/flags/(\d+)"', html)]


async def flag_events(db: Database, action: str, flag_id: int) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == action, AuditEvent.object_id == flag_id)
                .order_by(AuditEvent.id)
            )
        )


# --- the queue ---------------------------------------------------------------------------


async def test_the_queue_lists_open_and_watched_flags_highest_score_first(
    client: Client, db: Database
):
    site = await new_site(db)
    low = await make_flag(db, site, score=40)
    high = await make_flag(db, site, score=80)
    watched = await make_flag(db, site, score=60, status="watching")
    dismissed = await make_flag(db, site, score=90, status="dismissed")
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/flags")

    assert page.status_code == 200
    assert flag_links(page.text) == [high, watched, low]
    assert dismissed not in flag_links(page.text)
    assert "Arrived or left at night 3 times within 14 days." in page.text
    assert "Night movements" in page.text
    assert "2 hours ago" in page.text  # raised two hours before now
    [seen] = await events(db, "flags_viewed", site)
    assert json.loads(seen.object_ids) == sorted([high, watched, low])


async def test_the_queue_filters_by_status_and_by_rule(client: Client, db: Database):
    site = await new_site(db)
    night = await make_flag(db, site)
    late = await make_flag(db, site, rule="overdue", score=20)
    dismissed = await make_flag(db, site, status="dismissed")
    await signed_in(client, db, "security", site)
    url = f"/admin/sites/{site.slug}/flags"

    by_rule = await client.get(url, params={"rule": "overdue"})
    by_status = await client.get(url, params={"status": "dismissed"})
    everything = await client.get(url, params={"status": "all"})

    assert flag_links(by_rule.text) == [late]
    assert flag_links(by_status.text) == [dismissed]
    assert set(flag_links(everything.text)) == {night, late, dismissed}


async def test_the_queue_serves_only_its_rows_to_htmx(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site)
    await signed_in(client, db, "harbour_master", site)

    rows = await client.get(
        f"/admin/sites/{site.slug}/flags",
        params={"status": ""},
        headers={"HX-Request": "true", "HX-Target": "flag-rows"},
    )

    assert rows.status_code == 200
    assert rows.text.lstrip().startswith("<tr")
    assert "<html" not in rows.text
    assert "<form" not in rows.text
    assert flag_links(rows.text) == [flag]


async def test_following_more_shows_every_flag_exactly_once(client: Client, db: Database):
    site = await new_site(db)
    made = [await make_flag(db, site, score=10 + i % 7) for i in range(60)]
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/flags")
    seen = flag_links(page.text)
    more = re.search(r'<tr id="flag-more">.*?href="([^"]+)"', page.text, re.S)
    assert more is not None
    rows = await client.get(
        more.group(1).replace("&amp;", "&"),
        headers={"HX-Request": "true", "HX-Target": "flag-more"},
    )
    seen += flag_links(rows.text)

    assert len(seen) == len(set(seen)) == 60
    assert set(seen) == set(made)
    assert 'id="flag-more"' not in rows.text


async def test_a_flag_of_another_site_is_neither_listed_nor_found(client: Client, db: Database):
    mine, theirs = await new_site(db), await new_site(db)
    their_flag = await make_flag(db, theirs)
    await signed_in(client, db, "harbour_master", mine)

    queue = await client.get(f"/admin/sites/{mine.slug}/flags")
    other_queue = await client.get(f"/admin/sites/{theirs.slug}/flags")
    flag_page = await client.get(f"/admin/flags/{their_flag}")

    assert their_flag not in flag_links(queue.text)
    assert other_queue.status_code == 404
    assert flag_page.status_code == 404


@pytest.mark.parametrize("role", ["harbour_master", "security"])
async def test_a_watchlist_hit_does_not_exist_for_site_staff(
    client: Client, db: Database, role: str
):
    site = await new_site(db)
    hit = await make_flag(db, site, rule="watchlist_hit", score=100)
    csrf = await signed_in(client, db, role, site)

    queue = await client.get(f"/admin/sites/{site.slug}/flags", params={"status": "all"})
    page = await client.get(f"/admin/flags/{hit}")
    answer = await client.post(
        f"/admin/flags/{hit}/review",
        data={"_csrf_token": csrf, "action": "dismiss", "reason": "probe"},
        follow_redirects=False,
    )
    tonight = await client.get(f"/admin/sites/{site.slug}/tonight")

    assert hit not in flag_links(queue.text)
    assert "Watchlist hit" not in queue.text  # not even as a filter
    assert page.status_code == 404
    assert answer.status_code == 404
    assert re.search(r'id="count-flags">0<', tonight.text)
    assert (await load(db, hit)).status == "open"


async def test_an_analyst_sees_a_watchlist_hit_with_its_evidence_only_counted(
    client: Client, db: Database
):
    site = await new_site(db)
    boat = await add_visit(db, site, guest_name="Kees Bakker")
    hit = await make_flag(db, site, rule="watchlist_hit", visits=[boat], score=100)
    await signed_in(client, db, "analyst", site)

    queue = await client.get(f"/admin/sites/{site.slug}/flags")
    page = await client.get(f"/admin/flags/{hit}")

    assert flag_links(queue.text) == [hit]
    assert page.status_code == 200
    assert "A registration of this visit is on the hub&#39;s watchlist." in page.text
    # The hub gets a visit's fields only as a signal under an agreement, never the register.
    assert "Kees Bakker" not in page.text
    assert boat.reference not in page.text
    assert "1 visit is not shown: the hub receives visits only as signals" in page.text


async def test_open_flag_count_leaves_out_what_the_actor_may_not_see(db: Database):
    site, other = await new_site(db), await new_site(db)
    await make_flag(db, site)
    await make_flag(db, site, status="watching")
    await make_flag(db, site, rule="watchlist_hit")
    await make_flag(db, other)

    harbour_master = await flag_queue.open_flag_count(db, staff("harbour_master", site), site.id)
    analyst = await flag_queue.open_flag_count(db, staff("analyst", site), site.id)
    stranger = await flag_queue.open_flag_count(db, staff("harbour_master", other), site.id)

    # The analyst sees only the watchlist hit: the other open flag is the site's own business.
    assert (harbour_master, analyst, stranger) == (1, 1, 0)


# --- one flag ----------------------------------------------------------------------------


async def test_a_flag_shows_its_reason_rule_thresholds_evidence_and_history(
    client: Client, db: Database
):
    site = await new_site(db)
    boat = await add_visit(
        db, site, guest_name="Jan de Vries", registration="NL-77-XY", mmsi="244123456"
    )
    flag = await make_flag(db, site, visits=[boat], score=70)
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/flags/{flag}")

    assert page.status_code == 200
    html = page.text
    assert "Arrived or left at night 3 times within 14 days." in html
    assert "Night movements" in html
    assert RULES["night_movement"].rationale in html
    assert "night arrivals or departures" in html  # a threshold's label
    assert f'href="/admin/visits/{boat.id}"' in html
    for shown in (boat.reference, "Jan de Vries", "Zeemeeuw", "NL-77-XY", "244123456"):
        assert shown in html
    assert "2026-07-14 18:00" in html  # arrival (16:00 UTC) on the harbour's clock
    assert "Raised" in html  # the history starts with the flag's raising
    [viewed] = await flag_events(db, "flag_viewed", flag)
    assert json.loads(viewed.object_ids) == [boat.id]


async def test_evidence_at_sites_the_reviewer_does_not_hold_is_counted_not_shown(
    client: Client, db: Database
):
    here, there = await new_site(db), await new_site(db)
    near = await add_visit(db, here, guest_name="Hier Gezien")
    far = await add_visit(db, there, guest_name="Elders Gezien")
    flag = await make_flag(db, here, rule="short_stay_repeat", visits=[near, far])
    await signed_in(client, db, "security", here)

    page = await client.get(f"/admin/flags/{flag}")

    assert "Hier Gezien" in page.text
    assert "Elders Gezien" not in page.text
    assert far.reference not in page.text
    assert "1 visit at another site is not shown." in page.text
    [viewed] = await flag_events(db, "flag_viewed", flag)
    assert json.loads(viewed.object_ids) == [near.id]


# --- reviews -----------------------------------------------------------------------------


async def test_dismissing_without_a_reason_shows_the_error_next_to_the_field(
    client: Client, db: Database
):
    site = await new_site(db)
    flag = await make_flag(db, site)
    csrf = await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/flags/{flag}/review",
        data={"_csrf_token": csrf, "action": "dismiss", "reason": "   "},
        follow_redirects=False,
    )

    assert answer.status_code == 422
    error = re.search(r'<p class="error" id="err-dismiss-reason">([^<]*)</p>', answer.text)
    assert error
    assert error.group(1) == "Please say why this flag can be dismissed."
    assert 'aria-describedby="err-dismiss-reason"' in answer.text
    assert (await load(db, flag)).status == "open"
    assert await flag_events(db, "flag_reviewed", flag) == []


async def test_a_rejected_review_keeps_what_was_typed(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site)
    csrf = await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/flags/{flag}/review",
        data={"_csrf_token": csrf, "action": "dismiss", "reason": "Bekende " + "x" * 1000},
        follow_redirects=False,
    )

    assert answer.status_code == 422
    assert "Please use at most 1000 characters." in answer.text
    assert "Bekende xxx" in answer.text


@pytest.mark.parametrize(
    ("action", "reason", "status"),
    [
        ("dismiss", "Known fisherman, leaves early every day.", "dismissed"),
        ("watch", "", "watching"),
        ("forward", "Seen with the same van twice.", "forwarded"),
    ],
)
async def test_a_review_changes_the_status_and_is_audited(
    client: Client, db: Database, agreement: int, action: str, reason: str, status: str
):
    site = await new_site(db)
    flag = await make_flag(db, site)
    csrf = await signed_in(client, db, "security", site)

    answer = await client.post(
        f"/admin/flags/{flag}/review",
        data={"_csrf_token": csrf, "action": action, "reason": reason},
        follow_redirects=False,
    )

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/flags/{flag}?reviewed=1"
    stored = await load(db, flag)
    assert stored.status == status
    assert stored.reviewed_at == NOW
    assert stored.reviewed_by
    assert "security-" in stored.reviewed_by
    assert stored.review_reason == (reason or None)
    [event] = await flag_events(db, "flag_reviewed", flag)
    assert "reason" not in json.loads(event.details)  # free text: in the detail record
    assert await event_details(db, event) == {
        "action": action,
        "reason": reason,
        "from": "open",
        "to": status,
    }
    page = await client.get(answer.headers["location"])
    assert "Your review has been recorded." in page.text


async def test_a_reviewed_flag_leaves_the_open_queue(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site)
    csrf = await signed_in(client, db, "harbour_master", site)

    await client.post(
        f"/admin/flags/{flag}/review",
        data={"_csrf_token": csrf, "action": "dismiss", "reason": "Known guest"},
    )
    queue = await client.get(f"/admin/sites/{site.slug}/flags")
    dismissed = await client.get(f"/admin/sites/{site.slug}/flags?status=dismissed")

    assert flag not in flag_links(queue.text)
    assert flag_links(dismissed.text) == [flag]


async def test_forwarding_an_overdue_flag_is_refused(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site, rule="overdue", score=20)
    csrf = await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/flags/{flag}")
    answer = await client.post(
        f"/admin/flags/{flag}/review",
        data={"_csrf_token": csrf, "action": "forward", "reason": "please"},
        follow_redirects=False,
    )

    assert 'value="forward"' not in page.text
    assert 'value="dismiss"' in page.text
    assert 'value="watch"' in page.text
    assert answer.status_code == 422
    assert "never forwarded" in answer.text
    assert (await load(db, flag)).status == "open"


async def test_a_watched_flag_may_be_forwarded_later(client: Client, db: Database, agreement: int):
    site = await new_site(db)
    flag = await make_flag(db, site)
    reviewer = staff("security", site)

    await flag_queue.review(db, reviewer, flag, "watch", "Keep an eye on it", now=NOW)
    await flag_queue.review(db, reviewer, flag, "forward", "", now=NOW + timedelta(days=1))

    stored = await load(db, flag)
    assert stored.status == "forwarded"
    assert stored.reviewed_at == NOW + timedelta(days=1)
    reviews = [json.loads(e.details) for e in await flag_events(db, "flag_reviewed", flag)]
    assert [(r["from"], r["to"]) for r in reviews] == [
        ("open", "watching"),
        ("watching", "forwarded"),
    ]


async def test_a_review_of_another_sites_flag_is_not_found(db: Database):
    mine, theirs = await new_site(db), await new_site(db)
    flag = await make_flag(db, theirs)

    with pytest.raises(NotFound):
        await flag_queue.review(db, staff("harbour_master", mine), flag, "watch", now=NOW)
    assert (await load(db, flag)).status == "open"


async def test_a_review_without_the_csrf_token_is_refused(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site)
    await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/flags/{flag}/review",
        data={"action": "watch", "reason": ""},
        follow_redirects=False,
    )

    assert answer.status_code == 403
    assert (await load(db, flag)).status == "open"


# --- who may --------------------------------------------------------------------------------


async def test_an_auditor_may_not_see_the_queue_or_a_flag(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site)
    csrf = await signed_in(client, db, "auditor", site)

    queue = await client.get(f"/admin/sites/{site.slug}/flags")
    page = await client.get(f"/admin/flags/{flag}")
    answer = await client.post(
        f"/admin/flags/{flag}/review",
        data={"_csrf_token": csrf, "action": "watch"},
        follow_redirects=False,
    )

    assert (queue.status_code, page.status_code, answer.status_code) == (403, 403, 403)


async def test_anonymous_visitors_are_sent_to_sign_in(client: Client, db: Database):
    site = await new_site(db)
    flag = await make_flag(db, site)
    client.cookies.clear()

    for path in (f"/admin/sites/{site.slug}/flags", f"/admin/flags/{flag}"):
        answer = await client.get(path, follow_redirects=False)
        assert answer.status_code in (302, 303)
        assert answer.headers["location"].startswith("/admin/sign-in?next=")


# --- tonight -----------------------------------------------------------------------------


async def test_tonight_shows_the_open_flags_with_a_link_to_the_queue(client: Client, db: Database):
    site = await new_site(db)
    await make_flag(db, site)
    await make_flag(db, site)
    await make_flag(db, site, status="dismissed")
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/sites/{site.slug}/tonight")
    board = await client.get(
        f"/admin/sites/{site.slug}/tonight",
        headers={"HX-Request": "true", "HX-Target": "tonight-board"},
    )

    for html in (page.text, board.text):
        assert re.search(r'id="count-flags">2<', html)
        assert f'href="/admin/sites/{site.slug}/flags" id="link-flags"' in html
