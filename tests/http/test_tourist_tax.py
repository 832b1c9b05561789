"""The tourist-tax return through HTTP, the service and the command line: the figures of a
month on the page and in the CSV, who may see them, bad months, the audit trail, and the same
figures before and after the purge deleted the month's visits."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import secrets
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from nightreg.cli import main
from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import Site, Visit
from nightreg.services import retention, tourist_tax
from nightreg.services.access import AccessDenied, NotFound
from nightreg.services.aggregates import Counts
from nightreg.services.tourist_tax import Month
from nightreg.settings import Settings
from tests.factories import SUMMER_EVENING, add_visit, events, guest, local, new_site, staff

Client = AsyncTestClient[Litestar]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


async def march_and_april(db: Database, site: Site) -> None:
    """A boat of 3 across the end of March, a car's day visit and a boat never checked out.

    March: 3 visits, 3 + 1 + 2 = 6 persons; nights 3 × 2 (30, 31 March) + 2 × 2 (20, 21 March)
    = 10. April: the boat's night of 1 April, 3 overnight stays.
    """
    await add_visit(
        db, site, arrived=local("2026-03-30 15:00"), departed=local("2026-04-02 11:00"),
        persons=3, **guest(),
    )  # fmt: skip
    await add_visit(
        db, site, kind="vehicle", arrived=local("2026-03-31 09:00"),
        departed=local("2026-03-31 17:00"), persons=1, plate=f"T-{secrets.token_hex(3)}",
        **guest(),
    )  # fmt: skip
    await add_visit(
        db, site, arrived=local("2026-03-20 18:00"), expected=local("2026-03-22 10:00"),
        persons=2, **guest(),
    )  # fmt: skip


def cells(html: str, row_id: str) -> list[str]:
    row = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert row, f"no row {row_id}"
    return re.findall(r"<td>(.*?)</td>", row.group(1))


# --- the service -----------------------------------------------------------------------------


async def test_the_return_counts_arrivals_persons_and_the_nights_in_the_month(db: Database):
    site = await new_site(db)
    await march_and_april(db, site)
    actor = staff("harbour_master", site)

    march = await tourist_tax.tax_return(db, actor, site.id, Month(2026, 3), now=SUMMER_EVENING)
    april = await tourist_tax.tax_return(db, actor, site.id, Month(2026, 4), now=SUMMER_EVENING)

    assert march.total == Counts(visits=3, persons=6, overnight_stays=10)
    assert march.by_kind == {
        "vessel": Counts(visits=2, persons=5, overnight_stays=10),
        "vehicle": Counts(visits=1, persons=1, overnight_stays=0),
    }
    assert april.total == Counts(visits=0, persons=0, overnight_stays=3)
    assert [json.loads(e.details) for e in await events(db, tourist_tax.VIEWED, site)] == [
        {"month": "2026-03"},
        {"month": "2026-04"},
    ]


async def test_only_staff_of_the_site_with_the_right_may_see_its_return(db: Database):
    site = await new_site(db)
    other = await new_site(db)
    month = Month(2026, 3)
    with pytest.raises(NotFound):
        await tourist_tax.tax_return(
            db, staff("harbour_master", other), site.id, month, now=SUMMER_EVENING
        )
    for role in ("security", "auditor", "analyst"):
        with pytest.raises(AccessDenied):
            await tourist_tax.tax_return(db, staff(role, site), site.id, month, now=SUMMER_EVENING)
    assert await events(db, tourist_tax.VIEWED, site) == []


async def test_the_figures_are_the_same_before_and_after_the_purge_deleted_the_visits(
    db: Database, settings: Settings
):
    site = await new_site(db)
    await march_and_april(db, site)
    actor = staff("harbour_master", site)
    # Thirteen months after the last departure: every visit is past its 365 days.
    later = datetime(2027, 5, 20, 1, 0, tzinfo=UTC)

    async def figures(month: Month) -> tourist_tax.TaxReturn:
        return await tourist_tax.tax_return(db, actor, site.id, month, now=later)

    before = [await figures(Month(2026, 3)), await figures(Month(2026, 4))]
    await retention.purge(db, settings, now=later)
    after = [await figures(Month(2026, 3)), await figures(Month(2026, 4))]

    async with db.read() as session:
        left = await session.scalar(select(func.count(Visit.id)).where(Visit.site_id == site.id))
    assert left == 0
    for old, new in zip(before, after, strict=True):
        assert new.total == old.total
        assert new.by_kind == old.by_kind
        assert [d.total for d in new.days] == [d.total for d in old.days]
        assert old.archived == Counts()
        assert new.archived == new.total
    assert after[0].total == Counts(visits=3, persons=6, overnight_stays=10)
    assert after[1].total == Counts(visits=0, persons=0, overnight_stays=3)


# --- the page ---------------------------------------------------------------------------------


async def test_the_harbour_master_sees_a_months_figures_with_how_they_are_counted(
    client: Client, db: Database, staff_client
):
    site = await new_site(db)
    await march_and_april(db, site)
    await staff_client("harbour_master", [site.slug])

    page = await client.get(f"/admin/sites/{site.slug}/tourist-tax?month=2026-03")

    assert page.status_code == 200
    assert cells(page.text, "kind-vessel") == ["2", "5", "10"]
    assert cells(page.text, "kind-vehicle") == ["1", "1", "0"]
    assert cells(page.text, "kind-total") == ["3", "6", "10"]
    assert cells(page.text, "day-2026-03-30") == ["1", "3", "3"]
    assert cells(page.text, "day-2026-03-31") == ["1", "1", "3"]
    assert 'id="how-counted"' in page.text
    assert 'value="2026-03"' in page.text
    assert f'href="/admin/sites/{site.slug}/tourist-tax.csv?month=2026-03"' in page.text
    april = await client.get(f"/admin/sites/{site.slug}/tourist-tax?month=2026-04")
    assert cells(april.text, "kind-total") == ["0", "0", "3"]
    assert cells(april.text, "day-2026-04-01") == ["0", "0", "3"]


async def test_without_a_month_the_page_shows_the_last_full_month_in_the_sites_time(
    client: Client, db: Database, staff_client, clock: FrozenClock
):
    site = await new_site(db)
    # 23:30 UTC on 31 July is already 1 August in Amsterdam: July is the last full month.
    clock.set(datetime(2026, 7, 31, 23, 30, tzinfo=UTC))
    await staff_client("harbour_master", [site.slug])

    page = await client.get(f"/admin/sites/{site.slug}/tourist-tax")

    assert page.status_code == 200
    assert 'value="2026-07"' in page.text
    assert [json.loads(e.details) for e in await events(db, tourist_tax.VIEWED, site)] == [
        {"month": "2026-07"}
    ]


async def test_a_month_in_the_future_or_before_the_site_existed_shows_zeros(
    client: Client, db: Database, staff_client
):
    site = await new_site(db)
    await march_and_april(db, site)
    await staff_client("harbour_master", [site.slug])
    for month in ("2999-12", "1970-01", "2026-07"):
        page = await client.get(f"/admin/sites/{site.slug}/tourist-tax?month={month}")
        assert page.status_code == 200, month
        assert cells(page.text, "kind-total") == ["0", "0", "0"]
    assert "not over yet" in page.text  # July 2026 is the frozen clock's month


@pytest.mark.parametrize(
    "month", ["2026-13", "maart", "2026-3", "0999-01", '"><script>x()</script>']
)
async def test_a_bad_month_is_named_beside_the_field_and_the_csv_is_refused(
    client: Client, db: Database, staff_client, month: str
):
    site = await new_site(db)
    await staff_client("harbour_master", [site.slug])

    page = await client.get(f"/admin/sites/{site.slug}/tourist-tax", params={"month": month})
    download = await client.get(
        f"/admin/sites/{site.slug}/tourist-tax.csv", params={"month": month}
    )

    assert page.status_code == 400
    assert 'aria-describedby="err-month"' in page.text
    assert re.search(r'<p class="error" id="err-month">[^<]+</p>', page.text)
    assert "<script>x()" not in page.text
    assert 'id="figures"' not in page.text
    assert download.status_code == 400
    assert not download.headers["content-type"].startswith("text/csv")
    assert await events(db, tourist_tax.VIEWED, site) == []
    assert await events(db, tourist_tax.EXPORTED, site) == []


async def test_the_csv_has_a_row_per_day_and_the_total_and_is_audited(
    client: Client, db: Database, staff_client
):
    site = await new_site(db)
    await march_and_april(db, site)
    await staff_client("harbour_master", [site.slug])

    answer = await client.get(f"/admin/sites/{site.slug}/tourist-tax.csv?month=2026-03")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert f"tourist-tax-{site.slug}-2026-03.csv" in answer.headers["content-disposition"]
    assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["day", "visits", "persons", "overnight_stays"]
    assert [r[0] for r in rows[1:-1]] == [f"2026-03-{d:02d}" for d in range(1, 32)]
    assert rows[-1] == ["total", "3", "6", "10", "2", "5", "10", "1", "1", "0"]
    assert [json.loads(e.details) for e in await events(db, tourist_tax.EXPORTED, site)] == [
        {"month": "2026-03"}
    ]


async def test_a_harbour_master_of_another_site_finds_nothing_there(
    client: Client, db: Database, staff_client
):
    site = await new_site(db)
    other = await new_site(db)
    await staff_client("harbour_master", [other.slug])
    for path in ("tourist-tax", "tourist-tax.csv"):
        answer = await client.get(f"/admin/sites/{site.slug}/{path}?month=2026-03")
        assert answer.status_code == 404, path
    missing = await client.get("/admin/sites/no-such-site-here/tourist-tax")
    assert missing.status_code == 404


async def test_an_admin_sees_the_return_of_the_sites_assigned_to_them_only(
    client: Client, db: Database, staff_client
):
    site = await new_site(db)
    other = await new_site(db)
    await staff_client("admin", [site.slug])
    mine = await client.get(f"/admin/sites/{site.slug}/tourist-tax.csv?month=2026-03")
    theirs = await client.get(f"/admin/sites/{other.slug}/tourist-tax.csv?month=2026-03")
    assert mine.status_code == 200
    assert theirs.status_code == 404


@pytest.mark.parametrize("role", ["security", "auditor", "analyst"])
async def test_roles_without_the_right_are_refused_even_on_their_own_site(
    client: Client, db: Database, staff_client, role: str
):
    site = await new_site(db)
    await staff_client(role, [site.slug])
    for path in ("tourist-tax", "tourist-tax.csv"):
        answer = await client.get(f"/admin/sites/{site.slug}/{path}?month=2026-03")
        assert answer.status_code == 403, path
    assert await events(db, tourist_tax.VIEWED, site) == []


async def test_the_navigation_links_to_the_return_for_those_who_may_see_it(
    client: Client, db: Database, staff_client
):
    site = await new_site(db)
    await staff_client("harbour_master", [site.slug])
    home = await client.get(f"/admin/sites/{site.slug}/tonight")
    assert f'href="/admin/sites/{site.slug}/tourist-tax"' in home.text


# --- the command line -------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _data(database_url: str) -> str:
    async def make() -> str:
        db = Database(database_url)
        try:
            site = await new_site(db)
            await march_and_april(db, site)
            return site.slug
        finally:
            await db.dispose()

    return asyncio.run(make())


def test_the_command_prints_the_figures_or_the_csv(
    cli_env, database_url: str, capsys: pytest.CaptureFixture[str]
):
    slug = _data(database_url)

    code, out, _ = run(capsys, "tourist-tax", slug, "2026-03")
    assert code == 0
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert total.split() == ["total", "3", "6", "10"]
    assert "2026-03" in out

    code, out, _ = run(capsys, "tourist-tax", slug, "2026-04", "--csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out.lstrip("\ufeff"))))
    assert rows[0][0] == "day"
    assert rows[-1][:4] == ["total", "0", "0", "3"]
    assert len(rows) == 1 + 30 + 1


def test_the_command_names_a_bad_month_or_an_unknown_site_in_one_line(
    cli_env, capsys: pytest.CaptureFixture[str]
):
    code, _, err = run(capsys, "tourist-tax", "no-such-site-here", "2026-03")
    assert code == 2
    assert "no site with slug 'no-such-site-here'" in err
    code, _, err = run(capsys, "tourist-tax", "no-such-site-here", "2026-3")
    assert code == 2
    assert err.count("\n") == 1
    assert "like 2026-07" in err
