"""Exports of flagged entries for park security: the service, the page and the command."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import secrets
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from nightreg.db import Database
from nightreg.models import Flag, Site, Visit
from nightreg.rules.base import Finding
from nightreg.services import flag_export, flagging, sites
from nightreg.services.access import CLI, AccessDenied, Actor, NotFound
from nightreg.services.transfer import ExportInvalid
from tests.factories import NOW, add_visit, events, make_staff, new_site, staff, unique_slug
from tests.pages import run, sign_in

Client = AsyncTestClient[Litestar]

PARAMS: dict[str, dict[str, str | int]] = {
    "night_movement": {"count": 3, "days": 14},
    "watchlist_hit": {"identifier": "registration"},
    "observation": {"indicators": "Boat low in the water"},
}


async def make_flag(
    db: Database,
    site: Site,
    visits: list[Visit],
    *,
    rule: str = "night_movement",
    status: str = "open",
    window: tuple[datetime, datetime] = (NOW - timedelta(days=3), NOW - timedelta(hours=2)),
    raised: datetime = NOW,
    review_reason: str | None = None,
) -> int:
    finding = Finding(
        rule=rule,
        subject=f"reg:T{secrets.token_hex(4).upper()}",
        visit_ids=tuple(v.id for v in visits),
        window_start=window[0],
        window_end=window[1],
        score=60,
        params=PARAMS[rule],
    )
    async with db.write() as session:
        recorded = await flagging.record(session, finding, site_id=site.id, now=raised)
        if status != "open" or review_reason:
            await session.execute(
                update(Flag)
                .where(Flag.id == recorded.flag_id)
                .values(status=status, review_reason=review_reason, reviewed_by="user:1 hm")
            )
    return recorded.flag_id


async def export(
    db: Database,
    actor: Actor,
    site: Site,
    fmt: str = "json",
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str | None = None,
) -> bytes:
    chunks = flag_export.export_flags(
        db, actor, site.id, date_from=date_from, date_to=date_to, status=status, fmt=fmt, now=NOW
    )
    return b"".join([chunk async for chunk in chunks])


def csv_rows(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


async def exported_ids(db: Database, actor: Actor, site: Site, **kwargs: object) -> list[int]:
    data = json.loads(await export(db, actor, site, **kwargs))  # type: ignore[arg-type]
    return [f["flag_id"] for f in data]


# --- the service ------------------------------------------------------------------------------


async def test_a_csv_export_has_a_row_per_flag_and_evidence_visit_in_local_time(db: Database):
    site = await new_site(db)
    boat = await add_visit(
        db, site, arrived=NOW - timedelta(days=2), departed=NOW - timedelta(days=1),
        guest_name="Zoë Jansen", mmsi="244123456", berth="C3", vessel_type="rib",
    )  # fmt: skip
    car = await add_visit(db, site, kind="vehicle", arrived=NOW - timedelta(hours=5))
    both = await make_flag(db, site, [boat, car])
    alone = await make_flag(db, site, [], rule="observation")

    rows = csv_rows(await export(db, staff("security", site), site, "csv"))

    assert list(rows[0]) == list(flag_export.CSV_COLUMNS)
    assert [(r["flag_id"], r["visit_reference"]) for r in rows] == [
        (str(both), boat.reference),
        (str(both), car.reference),
        (str(alone), ""),
    ]
    first = rows[0]
    assert first["rule"] == "night_movement"
    assert first["reason"] == "Arrived or left at night 3 times within 14 days."
    assert (first["score"], first["status"]) == ("60", "open")
    assert first["window_start"] == "2026-07-11T21:00:00+02:00"
    assert first["created_at"] == first["updated_at"] == "2026-07-14T21:00:00+02:00"
    assert first["arrived_at"] == "2026-07-12T21:00:00+02:00"
    assert first["departed_at"] == "2026-07-13T21:00:00+02:00"
    assert (first["guest_name"], first["mmsi"], first["berth"]) == ("Zoë Jansen", "244123456", "C3")
    assert (first["visit_kind"], first["vessel_type"], first["persons"]) == ("vessel", "rib", "2")
    assert (rows[1]["visit_kind"], rows[1]["plate"], rows[1]["departed_at"]) == (
        "vehicle",
        "12-ABC-3",
        "",
    )
    assert rows[2]["reason"] == "Staff observed: Boat low in the water."


async def test_a_json_export_has_one_object_per_flag_with_its_visits(db: Database):
    site = await new_site(db)
    boat = await add_visit(db, site, registration="NL-9-ZZ")
    flag_id = await make_flag(db, site, [boat], status="forwarded", review_reason="Naar de politie")

    [flag] = json.loads(await export(db, staff("harbour_master", site), site))

    assert flag["flag_id"] == flag_id
    assert (flag["status"], flag["review_reason"], flag["reviewed_by"]) == (
        "forwarded",
        "Naar de politie",
        "user:1 hm",
    )
    [visit] = flag["visits"]
    assert visit["reference"] == boat.reference
    assert visit["registration"] == "NL-9-ZZ"
    assert visit["kind"] == "vessel"
    assert visit["persons"] == 2
    assert visit["departed_at"] is None


async def test_formulas_are_escaped_in_csv_and_left_alone_in_json(db: Database):
    site = await new_site(db)
    visit = await add_visit(
        db, site, guest_name='=HYPERLINK("http://x")', residence="+31 Den Haag", berth="-1"
    )
    await make_flag(db, site, [visit], status="dismissed", review_reason="@SUM(A1)")
    actor = staff("harbour_master", site)

    [row] = csv_rows(await export(db, actor, site, "csv"))
    [flag] = json.loads(await export(db, actor, site))

    assert row["guest_name"] == '\'=HYPERLINK("http://x")'
    assert row["residence"] == "'+31 Den Haag"
    assert row["berth"] == "-1"  # a sign with digits only: a number, not a formula
    assert row["review_reason"] == "'@SUM(A1)"
    assert flag["visits"][0]["guest_name"] == '=HYPERLINK("http://x")'
    assert flag["review_reason"] == "@SUM(A1)"


async def test_watchlist_hits_are_exported_only_to_the_cli(db: Database):
    site = await new_site(db)
    visit = await add_visit(db, site)
    ordinary = await make_flag(db, site, [visit])
    hit = await make_flag(db, site, [visit], rule="watchlist_hit")

    for role in ("admin", "harbour_master", "security"):
        assert await exported_ids(db, staff(role, site), site) == [ordinary]
    assert await exported_ids(db, CLI, site) == [ordinary, hit]


async def test_an_analyst_cannot_export_flagged_entries(db: Database):
    # The hub gets what an agreement allows, as signals; never the register's rows.
    site = await new_site(db)
    await make_flag(db, site, [await add_visit(db, site)], rule="watchlist_hit")

    with pytest.raises(AccessDenied):
        await exported_ids(db, staff("analyst", site), site)


async def test_the_status_filter_keeps_only_flags_with_that_status(db: Database):
    site = await new_site(db)
    visit = await add_visit(db, site)
    opened = await make_flag(db, site, [visit])
    forwarded = await make_flag(db, site, [], rule="observation", status="forwarded")
    dismissed = await make_flag(db, site, [], status="dismissed")
    actor = staff("security", site)

    assert await exported_ids(db, actor, site, status="open") == [opened]
    assert await exported_ids(db, actor, site, status="forwarded") == [forwarded]
    assert await exported_ids(db, actor, site, status="dismissed") == [dismissed]
    assert await exported_ids(db, actor, site) == [opened, forwarded, dismissed]


async def test_a_period_holds_flags_whose_window_overlaps_it_or_that_changed_within_it(
    db: Database,
):
    site = await new_site(db)
    early = (datetime(2026, 7, 1, 20, 0, tzinfo=UTC), datetime(2026, 7, 2, 1, 0, tzinfo=UTC))
    late = (NOW - timedelta(days=1), NOW - timedelta(hours=1))
    old = await make_flag(db, site, [], window=early, raised=datetime(2026, 7, 2, 8, 0, tzinfo=UTC))
    old_but_reviewed = await make_flag(db, site, [], window=early, raised=NOW)
    recent = await make_flag(db, site, [], window=late, raised=NOW)  # fmt: skip
    actor = staff("security", site)

    first_days = await exported_ids(
        db, actor, site, date_from=date(2026, 7, 1), date_to=date(2026, 7, 3)
    )
    today = await exported_ids(
        db, actor, site, date_from=date(2026, 7, 14), date_to=date(2026, 7, 14)
    )
    since = await exported_ids(db, actor, site, date_from=date(2026, 7, 10))

    assert first_days == [old, old_but_reviewed]
    assert today == [old_but_reviewed, recent]
    assert since == [old_but_reviewed, recent]


async def test_an_export_is_audited_once_with_its_period_status_and_flags(db: Database):
    site = await new_site(db)
    visit = await add_visit(db, site)
    flags = [await make_flag(db, site, [visit]), await make_flag(db, site, [])]

    await export(
        db, staff("security", site), site, "csv", date_from=date(2026, 7, 1), status="open"
    )

    [event] = await events(db, "flags_exported", site)
    assert json.loads(event.object_ids) == flags
    assert json.loads(event.details) == {
        "count": 2, "format": "csv", "from": "2026-07-01", "to": None, "status": "open",
    }  # fmt: skip


async def test_evidence_on_a_site_the_actor_does_not_hold_is_left_out(db: Database):
    site, other = await new_site(db), await new_site(db)
    here = await add_visit(db, site)
    there = await add_visit(db, other)
    flag_id = await make_flag(db, site, [here, there])

    [mine] = json.loads(await export(db, staff("security", site), site))
    [full] = json.loads(await export(db, staff("harbour_master", site, other), site))

    assert mine["flag_id"] == full["flag_id"] == flag_id
    assert [v["reference"] for v in mine["visits"]] == [here.reference]
    assert {v["reference"] for v in full["visits"]} == {here.reference, there.reference}


async def test_only_the_actors_own_sites_can_be_exported(db: Database):
    site, other = await new_site(db), await new_site(db)
    await make_flag(db, other, [])

    with pytest.raises(NotFound):
        await export(db, staff("security", site), other)
    with pytest.raises(AccessDenied):
        await export(db, staff("auditor", other), other)
    assert await events(db, "flags_exported", other) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fmt": "xlsx"}, "format"),
        ({"status": "closed"}, "status"),
        ({"date_from": date(2026, 7, 2), "date_to": date(2026, 7, 1)}, "to"),
    ],
)
async def test_a_bad_request_is_refused_before_anything_is_audited(
    db: Database, kwargs: dict[str, object], field: str
):
    site = await new_site(db)

    with pytest.raises(ExportInvalid) as refused:
        await export(db, staff("security", site), site, **kwargs)  # type: ignore[arg-type]

    assert refused.value.field == field
    assert await events(db, "flags_exported", site) == []


# --- the page -----------------------------------------------------------------------------------


async def signed_in(client: Client, db: Database, role: str, *site_list: Site) -> str:
    client.cookies.clear()
    account = await make_staff(db, role, [s.slug for s in site_list])
    return await sign_in(client, account.email, account.password)


async def test_the_export_page_downloads_the_flags_as_a_csv_attachment(
    client: Client, db: Database
):
    site = await new_site(db)
    visit = await add_visit(db, site)
    flag_id = await make_flag(db, site, [visit])
    await signed_in(client, db, "security", site)

    page = await client.get(f"/admin/sites/{site.slug}/flags/export")
    download = await client.get(
        f"/admin/sites/{site.slug}/flags/export/download",
        params={"from": "2026-07-01", "to": "2026-07-14", "status": "open", "format": "csv"},
    )

    assert page.status_code == 200
    assert f'action="/admin/sites/{site.slug}/flags/export/download"' in page.text
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == (
        f'attachment; filename="flags-{site.slug}-2026-07-01-2026-07-14-open.csv"'
    )
    [row] = csv_rows(download.content)
    assert (row["flag_id"], row["visit_reference"]) == (str(flag_id), visit.reference)
    assert len(await events(db, "flags_exported", site)) == 1


async def test_a_json_download_without_filters_holds_every_flag(client: Client, db: Database):
    site = await new_site(db)
    flags = [await make_flag(db, site, []), await make_flag(db, site, [], status="dismissed")]
    await signed_in(client, db, "harbour_master", site)

    download = await client.get(
        f"/admin/sites/{site.slug}/flags/export/download", params={"format": "json"}
    )

    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/json")
    assert f'filename="flags-{site.slug}-all.json"' in download.headers["content-disposition"]
    assert [f["flag_id"] for f in download.json()] == flags


async def test_bad_values_come_back_next_to_their_fields(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "security", site)
    url = f"/admin/sites/{site.slug}/flags/export/download"

    bad_date = await client.get(url, params={"from": "1-7-2026"})
    bad_status = await client.get(url, params={"status": "closed"})

    assert bad_date.status_code == bad_status.status_code == 400
    assert 'id="err-from"' in bad_date.text
    assert 'value="1-7-2026"' in bad_date.text
    assert 'id="err-status"' in bad_status.text
    assert await events(db, "flags_exported", site) == []


async def test_another_sites_flags_are_not_found_and_an_auditor_is_refused(
    client: Client, db: Database
):
    site, other = await new_site(db), await new_site(db)
    await signed_in(client, db, "harbour_master", other)
    elsewhere = await client.get(f"/admin/sites/{site.slug}/flags/export/download")
    await signed_in(client, db, "auditor", site)
    auditor = await client.get(f"/admin/sites/{site.slug}/flags/export")

    assert (elsewhere.status_code, auditor.status_code) == (404, 403)


# --- the command --------------------------------------------------------------------------------


def _flags_for_command(database_url: str, slug: str) -> list[int]:
    """A site's two flags (one forwarded, one a watchlist hit), made on a loop of its own."""

    async def build() -> list[int]:
        db = Database(database_url)
        try:
            site = await sites.get_site(db, slug)
            visit = await add_visit(db, site, guest_name="=cmd|' /C calc'!A0")
            return [
                await make_flag(db, site, [visit], status="forwarded"),
                await make_flag(db, site, [visit], rule="watchlist_hit"),
            ]
        finally:
            await db.dispose()

    return asyncio.run(build())


def test_the_command_writes_the_flags_of_a_site_to_a_file_or_stdout(
    cli_env: Path, database_url: str, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli")
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    forwarded, hit = _flags_for_command(database_url, slug)
    target = cli_env / "flags.json"

    code, _, err = run(capsys, "export", "flags", "--site", slug, "--out", str(target))
    assert (code, "written to" in err) == (0, True)
    assert [f["flag_id"] for f in json.loads(target.read_text())] == [forwarded, hit]

    code, out, _ = run(capsys, "export", "flags", "--site", slug, "--status", "forwarded")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out.lstrip("\ufeff"))))
    assert [r["flag_id"] for r in rows] == [str(forwarded)]
    assert rows[0]["guest_name"] == "'=cmd|' /C calc'!A0"


def test_the_command_refuses_a_period_the_wrong_way_round_and_writes_nothing(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli")
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    target = cli_env / "x.csv"

    code, _, err = run(
        capsys,
        "export", "flags", "--site", slug, "--from", "2026-07-02", "--to", "2026-07-01",
        "--out", str(target),
    )  # fmt: skip

    assert code != 0
    assert "first date" in err
    assert not target.exists()
