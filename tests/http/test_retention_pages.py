"""The retention pages: the policies with their reasons, the next purge in advance, the
receipts afterwards, and a site's own periods; who may see and change them; the audit."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import insert, select, update

from admin.privacy.retention import MAX_DATE_ROWS, _date_rows
from nightreg.db import Database
from nightreg.models import AuditEvent, LegalHold, RetentionPolicy, Site, legal_hold_visit
from nightreg.services import retention
from nightreg.services.retention import CategoryPreview, Preview
from nightreg.settings import Settings
from tests.factories import SUMMER_EVENING, add_visit, make_point, make_staff
from tests.pages import sign_in

Client = AsyncTestClient[Litestar]
NOW = SUMMER_EVENING  # 21:00 in Amsterdam, 14 July 2026; the purge runs at 03:30
NEXT_RUN = "2026-07-15 03:30"


async def signed_in(client: Client, db: Database, role: str) -> str:
    """Sign the client in (afresh) as a new account of `role`; returns the CSRF token."""
    client.cookies.clear()
    account = await make_staff(db, role)
    return await sign_in(client, account.email, account.password)


async def new_site(db: Database) -> tuple[Site, str]:
    """A site of its own, and its kiosk token."""
    point = await make_point(db)
    async with db.read() as session:
        site = await session.scalar(select(Site).where(Site.slug == point.site_slug))
    assert site is not None
    return site, point.token


def guest() -> dict[str, str]:
    """A guest nobody else has (add_visit's default name is shared by every test)."""
    tag = secrets.token_hex(3)
    return {"guest_name": f"Retentie Gast {tag}", "registration": f"NL-{tag}"}


def site_row(html: str, slug: str) -> str:
    match = re.search(rf'<tr id="{re.escape(slug)}">(.*?)</tr>', html, re.S)
    assert match, f"no row {slug}"
    return match.group(1)


def cells(row: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    ]


async def stored_policy(db: Database, site_id: int) -> RetentionPolicy | None:
    async with db.read() as session:
        return await session.get(RetentionPolicy, site_id)


async def events(db: Database, action: str, **where: Any) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    for name, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, name) == value)
    async with db.read() as session:
        return list(await session.scalars(stmt.order_by(AuditEvent.id)))


@pytest.fixture
async def make_hold(db: Database) -> AsyncIterator[Any]:
    """A legal hold on named visits, released again when the test ends."""
    made: list[int] = []

    async def make(*visit_ids: int) -> int:
        async with db.write() as session:
            hold = LegalHold(
                scope="visits", case_reference=f"PV-{secrets.token_hex(3)}", reason="test",
                visit_count=len(visit_ids), created_at=NOW, created_by="test",
            )  # fmt: skip
            session.add(hold)
            await session.flush()
            await session.execute(
                insert(legal_hold_visit), [{"hold_id": hold.id, "visit_id": v} for v in visit_ids]
            )
            made.append(hold.id)
            return hold.id

    yield make
    async with db.write() as session:
        await session.execute(
            update(LegalHold).where(LegalHold.id.in_(made)).values(released_at=NOW)
        )


# --- reading the policies ----------------------------------------------------------------------


async def test_an_auditor_reads_the_defaults_with_their_reasons_and_the_next_purge(
    client: Client, db: Database
):
    await signed_in(client, db, "auditor")

    page = await client.get("/admin/retention")

    assert page.status_code == 200
    text = page.text
    assert "365 days after departure" in text
    assert "article 438 of the Criminal Code" in text
    assert "at most 365 days after they were raised" in text
    assert "30 days after the review" in text
    assert "A dismissed suspicion should not linger." in text
    assert "without one: 180 days" in text
    assert "730 days" in text
    assert "90 days" in text
    assert "7 years" in text
    assert "tourist-tax return" in text
    assert re.search(r"Failed sign-ins.*?7 days", text, re.S)
    assert re.search(rf'id="next-run">{NEXT_RUN}<', text)
    assert 'href="/admin/retention/preview"' in text
    assert 'href="/admin/retention/holds"' in text


async def test_each_site_shows_which_periods_are_its_own_and_which_the_default(
    client: Client, db: Database
):
    own, _token = await new_site(db)
    plain, _token = await new_site(db)
    admin = retention_admin()
    await retention.set_policy(db, admin, own.id, {"visit_days": 90}, now=NOW)
    await signed_in(client, db, "auditor")

    page = await client.get("/admin/retention")

    assert cells(site_row(page.text, f"site-{own.slug}"))[1:4] == [
        "90 days (own)", "365 days (default)", "30 days (default)",
    ]  # fmt: skip
    assert cells(site_row(page.text, f"site-{plain.slug}"))[1] == "365 days (default)"
    # an auditor reads; only an admin changes
    assert f'href="/admin/retention/sites/{own.slug}"' not in page.text


async def test_an_admin_finds_an_edit_link_for_every_site(client: Client, db: Database):
    site, _token = await new_site(db)
    await signed_in(client, db, "admin")

    page = await client.get("/admin/retention")

    assert page.status_code == 200
    assert f'href="/admin/retention/sites/{site.slug}"' in site_row(page.text, f"site-{site.slug}")


@pytest.mark.parametrize("role", ["harbour_master", "security", "analyst"])
async def test_roles_without_retention_rights_are_refused_every_page(
    client: Client, db: Database, role: str
):
    site, _token = await new_site(db)
    csrf = await signed_in(client, db, role)

    for path in ("/admin/retention", "/admin/retention/preview", "/admin/retention/receipts/1",
                 f"/admin/retention/sites/{site.slug}"):  # fmt: skip
        assert (await client.get(path)).status_code == 403, path
    answer = await client.post(
        f"/admin/retention/sites/{site.slug}",
        data={"_csrf_token": csrf, "visit_days": "1"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert await stored_policy(db, site.id) is None


async def test_an_auditor_may_not_change_a_sites_periods(client: Client, db: Database):
    site, _token = await new_site(db)
    csrf = await signed_in(client, db, "auditor")

    assert (await client.get(f"/admin/retention/sites/{site.slug}")).status_code == 403
    answer = await client.post(
        f"/admin/retention/sites/{site.slug}",
        data={"_csrf_token": csrf, "visit_days": "1"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert await stored_policy(db, site.id) is None


# --- changing a site's periods -----------------------------------------------------------------


def retention_admin() -> Any:
    from nightreg.services.access import Actor

    return Actor(kind="user", id=900101, name="admin@retention.test", role="admin")


async def test_the_edit_form_shows_the_sites_own_periods_and_the_defaults_as_hints(
    client: Client, db: Database
):
    site, _token = await new_site(db)
    await retention.set_policy(db, retention_admin(), site.id, {"open_flag_days": 100}, now=NOW)
    await signed_in(client, db, "admin")

    page = await client.get(f"/admin/retention/sites/{site.slug}")

    assert page.status_code == 200
    assert 'name="_csrf_token"' in page.text
    assert re.search(r'name="visit_days"[^>]*value=""[^>]*placeholder="365"', page.text, re.S)
    assert re.search(r'name="open_flag_days"[^>]*value="100"', page.text, re.S)
    assert "Empty: the default, 30 days." in page.text


async def test_an_admin_changes_a_sites_visit_days_sees_it_and_the_change_is_audited(
    client: Client, db: Database
):
    site, _token = await new_site(db)
    csrf = await signed_in(client, db, "admin")

    answer = await client.post(
        f"/admin/retention/sites/{site.slug}",
        data={
            "_csrf_token": csrf,
            "visit_days": " 200 ",
            "open_flag_days": "",
            "dismissed_flag_days": "14",
        },
        follow_redirects=False,
    )

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/retention?changed={site.slug}#site-{site.slug}"
    page = await client.get(answer.headers["location"])
    assert "The retention of Jachthaven Testhaven has been changed." in page.text
    assert cells(site_row(page.text, f"site-{site.slug}"))[1:4] == [
        "200 days (own)", "365 days (default)", "14 days (own)",
    ]  # fmt: skip
    stored = await stored_policy(db, site.id)
    assert stored is not None
    assert (stored.visit_days, stored.open_flag_days, stored.dismissed_flag_days) == (200, None, 14)
    [event] = await events(db, "retention_policy_changed", site_id=site.id)
    assert json.loads(event.details) == {
        "before": {"visit_days": None, "open_flag_days": None, "dismissed_flag_days": None},
        "after": {"visit_days": 200, "open_flag_days": None, "dismissed_flag_days": 14},
    }
    assert "admin-" in event.actor


async def test_emptying_the_fields_returns_the_site_to_the_defaults(client: Client, db: Database):
    site, _token = await new_site(db)
    await retention.set_policy(db, retention_admin(), site.id, {"visit_days": 50}, now=NOW)
    csrf = await signed_in(client, db, "admin")

    answer = await client.post(
        f"/admin/retention/sites/{site.slug}",
        data={
            "_csrf_token": csrf,
            "visit_days": "",
            "open_flag_days": "",
            "dismissed_flag_days": "",
        },
        follow_redirects=False,
    )

    assert answer.status_code == 303
    page = await client.get("/admin/retention")
    assert cells(site_row(page.text, f"site-{site.slug}"))[1] == "365 days (default)"
    assert len(await events(db, "retention_policy_changed", site_id=site.id)) == 2


@pytest.mark.parametrize("value", ["0", "3651", "twelve", "-5", "1.5", "<b>9</b>"])
async def test_a_bad_number_of_days_comes_back_next_to_its_field_and_nothing_changes(
    client: Client, db: Database, value: str
):
    site, _token = await new_site(db)
    csrf = await signed_in(client, db, "admin")

    answer = await client.post(
        f"/admin/retention/sites/{site.slug}",
        data={"_csrf_token": csrf, "visit_days": "100", "dismissed_flag_days": value},
        follow_redirects=False,
    )

    assert answer.status_code == 422
    assert 'id="f-dismissed_flag_days-error"' in answer.text
    assert "Give a number of days between 1 and 3650" in answer.text
    assert 'id="f-visit_days-error"' not in answer.text
    assert re.search(r'name="visit_days"[^>]*value="100"', answer.text, re.S)
    assert "<b>9</b>" not in answer.text
    assert await stored_policy(db, site.id) is None
    assert await events(db, "retention_policy_changed", site_id=site.id) == []


async def test_the_periods_of_a_site_that_does_not_exist_are_not_found(
    client: Client, db: Database
):
    csrf = await signed_in(client, db, "admin")

    assert (await client.get("/admin/retention/sites/no-such-site-here")).status_code == 404
    answer = await client.post(
        "/admin/retention/sites/no-such-site-here",
        data={"_csrf_token": csrf, "visit_days": "10"},
        follow_redirects=False,
    )
    assert answer.status_code == 404


async def test_the_kiosk_form_names_the_new_number_of_days_after_a_change(
    client: Client, db: Database
):
    site, token = await new_site(db)
    kiosk = f"/k/{token}?kind=vessel"
    before = await client.get(kiosk, headers={"accept-language": "en"})
    assert "kept for 365 days after your departure" in before.text
    csrf = await signed_in(client, db, "admin")

    await client.post(
        f"/admin/retention/sites/{site.slug}",
        data={"_csrf_token": csrf, "visit_days": "200"},
        follow_redirects=False,
    )

    after = await client.get(kiosk, headers={"accept-language": "en"})
    assert "kept for 200 days after your departure" in after.text


# --- the preview -------------------------------------------------------------------------------


async def test_the_preview_counts_a_sites_due_visits_and_spares_held_and_recent_ones(
    client: Client, db: Database, make_hold: Any
):
    site, _token = await new_site(db)
    await retention.set_policy(db, retention_admin(), site.id, {"visit_days": 30}, now=NOW)
    for days in (40, 35):  # departed longer ago than 30 days before the run: due
        await add_visit(db, site, arrived=NOW - timedelta(days=days + 2),
                        departed=NOW - timedelta(days=days), **guest())  # fmt: skip
    # never checked out: counts from its expected departure, 50 days ago
    await add_visit(db, site, arrived=NOW - timedelta(days=52),
                    expected=NOW - timedelta(days=50), **guest())  # fmt: skip
    # departed 10 days ago: kept
    await add_visit(db, site, arrived=NOW - timedelta(days=12),
                    departed=NOW - timedelta(days=10), **guest())  # fmt: skip
    held = await add_visit(db, site, arrived=NOW - timedelta(days=62),
                           departed=NOW - timedelta(days=60), **guest())  # fmt: skip
    await make_hold(held.id)
    await signed_in(client, db, "auditor")

    page = await client.get("/admin/retention/preview")

    assert page.status_code == 200
    assert f"The run at {NEXT_RUN} (Europe/Amsterdam) will delete" in page.text
    row = cells(site_row(page.text, f"preview-site-{site.slug}"))
    # open, dismissed, forwarded flags, visits, observations, gate camera sightings, total
    assert row[1:] == ["0", "0", "0", "3", "0", "0", "3"]
    assert re.search(r'id="held">\s*\d+ legal holds? (is|are) in force', page.text)
    total = int(re.search(r'id="total-count">(\d+)<', page.text).group(1))
    assert total >= 3


async def test_looking_further_ahead_shows_the_run_of_that_day(client: Client, db: Database):
    site, _token = await new_site(db)
    await retention.set_policy(db, retention_admin(), site.id, {"visit_days": 30}, now=NOW)
    # departs 20 days before now: due 30 days later, not in tomorrow's run
    await add_visit(db, site, arrived=NOW - timedelta(days=22),
                    departed=NOW - timedelta(days=20), **guest())  # fmt: skip
    await signed_in(client, db, "auditor")

    tomorrow = await client.get("/admin/retention/preview")
    later = await client.get("/admin/retention/preview?at=2026-08-20")

    assert f'id="preview-site-{site.slug}"' not in tomorrow.text
    assert "The run at 2026-08-20 03:30 (Europe/Amsterdam)" in later.text
    assert 'value="2026-08-20"' in later.text
    assert cells(site_row(later.text, f"preview-site-{site.slug}"))[4] == "1"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20-08-2026", "Please enter a date like 2026-07-14."),
        ("2026-02-30", "Please enter a date like 2026-07-14."),
        ("2026-07-13", "Please choose today or a later day"),
        ("2040-01-01", "Please choose today or a later day"),
        ("<script>", "Please enter a date like 2026-07-14."),
    ],
)
async def test_a_bad_day_to_look_ahead_to_is_named_next_to_the_field(
    client: Client, db: Database, value: str, message: str
):
    await signed_in(client, db, "auditor")

    page = await client.get("/admin/retention/preview", params={"at": value})

    assert page.status_code == 422
    assert 'id="at-error"' in page.text
    assert message in page.text
    assert "<script>" not in page.text.split("<main", 1)[1]
    assert f"The run at {NEXT_RUN}" in page.text  # the next run's preview all the same


async def test_reading_the_preview_is_audited_with_counts_only(client: Client, db: Database):
    client.cookies.clear()
    account = await make_staff(db, "auditor")
    await sign_in(client, account.email, account.password)

    await client.get("/admin/retention/preview")

    [event] = [e for e in await events(db, "retention_previewed") if account.email in e.actor]
    details = json.loads(event.details)
    assert set(details) == {"at", "total", "counts", "held_visits"}
    assert set(details["counts"]) == set(retention.CATEGORIES)
    assert datetime.fromisoformat(details["at"]) == datetime(2026, 7, 15, 1, 30, tzinfo=UTC)
    assert event.site_id is None


async def test_an_empty_preview_says_plainly_that_nothing_will_be_deleted(
    client: Client, db: Database, monkeypatch: pytest.MonkeyPatch
):
    async def nothing(_db: Database, _settings: Settings, *, at: datetime) -> Preview:
        return Preview(
            at=at, categories=[CategoryPreview(c) for c in retention.CATEGORIES],
            held_visits=0, holds_in_force=0,
        )  # fmt: skip

    monkeypatch.setattr(retention, "preview", nothing)
    await signed_in(client, db, "auditor")

    page = await client.get("/admin/retention/preview")

    assert page.status_code == 200
    assert "Nothing will be deleted" in page.text
    assert 'id="total-count"' not in page.text
    assert "No legal hold is in force." in page.text


def test_the_preview_lists_days_up_to_a_month_of_them_and_months_beyond():
    def preview_with(days: list[date]) -> Preview:
        visits = CategoryPreview("visits", count=len(days), by_date=[(d, 1) for d in days])
        flags = CategoryPreview("flags_dismissed", count=1, by_date=[(days[0], 1)])
        audit = CategoryPreview("audit_events", count=9, by_date=[(date(2024, 1, 1), 9)])
        return Preview(at=NOW, categories=[flags, visits, audit], held_visits=0, holds_in_force=0)

    few = [date(2025, 6, 1) + timedelta(days=i) for i in range(MAX_DATE_ROWS)]
    rows, by_month = _date_rows(preview_with(few))
    assert not by_month
    assert [r.label for r in rows][:2] == ["2025-06-01", "2025-06-02"]
    assert rows[0].counts == {"visits": 1, "flags_dismissed": 1}
    assert len(rows) == MAX_DATE_ROWS  # audit events have no dates of their own here

    many = [date(2025, 6, 1) + timedelta(days=i) for i in range(MAX_DATE_ROWS + 1)]
    rows, by_month = _date_rows(preview_with(many))
    assert by_month
    assert [r.counts for r in rows] == [{"visits": 30, "flags_dismissed": 1}, {"visits": 2}]
    assert rows[0].label == "June 2025"


# --- the receipts ------------------------------------------------------------------------------


async def test_after_a_purge_its_receipt_is_listed_and_reads_as_a_table(
    client: Client, db: Database, settings: Settings
):
    site, _token = await new_site(db)
    await retention.set_policy(db, retention_admin(), site.id, {"visit_days": 30}, now=NOW)
    for days in (40, 45):
        await add_visit(db, site, arrived=NOW - timedelta(days=days + 2),
                        departed=NOW - timedelta(days=days), **guest())  # fmt: skip
    result = await retention.purge(db, settings, now=NOW)
    [receipt] = (await events(db, "purge_completed"))[-1:]
    details = json.loads(receipt.details)
    assert details["deleted"]["visits"] == result.deleted["visits"] >= 2
    await signed_in(client, db, "auditor")

    overview = await client.get("/admin/retention")
    page = await client.get(f"/admin/retention/receipts/{receipt.id}")

    assert f'href="/admin/retention/receipts/{receipt.id}"' in overview.text
    listed = cells(site_row(overview.text, f"receipt-{receipt.id}"))
    assert listed[1] == str(sum(result.deleted.values()))
    assert listed[2] == str(result.deleted["visits"])
    assert page.status_code == 200
    visits_row = cells(site_row(page.text, "deleted-visits"))
    assert visits_row == ["Visits (with their notes)", str(result.deleted["visits"])]
    assert re.search(rf'id="receipt-total">{sum(result.deleted.values())}<', page.text)
    assert re.search(rf"{result.aggregated_visits} visits? (was|were) counted into", page.text)
    for key, day in details["oldest_kept"].items():
        assert cells(site_row(page.text, f"oldest-{key}"))[1] == day
    assert "finished" in page.text
    # Issue 17: the receipt prints the signed checkpoint of the audit chain the purge left.
    assert details["checkpoint"]["signature"]
    assert details["checkpoint"]["signature"] in page.text
    assert 'id="receipt-checkpoint"' in page.text


async def test_a_receipt_page_shows_only_purge_receipts(client: Client, db: Database):
    site, _token = await new_site(db)
    await retention.set_policy(db, retention_admin(), site.id, {"visit_days": 60}, now=NOW)
    [other] = await events(db, "retention_policy_changed", site_id=site.id)
    await signed_in(client, db, "admin")

    assert (await client.get(f"/admin/retention/receipts/{other.id}")).status_code == 404
    assert (await client.get("/admin/retention/receipts/999999999")).status_code == 404
