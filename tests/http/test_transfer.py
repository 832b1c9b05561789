"""Export and import of a site's register: the service, the pages and the commands."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from nightreg.db import Database
from nightreg.models import Site, Visit
from nightreg.services import register_import, transfer
from nightreg.services.access import AccessDenied, NotFound
from tests.factories import NOW, add_visit, events, make_staff, new_site, staff, unique_slug
from tests.pages import run, sign_in

Client = AsyncTestClient[Litestar]

# One register with what makes round trips hard: formulas, quotes, separators, accents, newlines.
AWKWARD = [
    {"guest_name": '=HYPERLINK("http://x")', "residence": "Den Helder; Noord"},
    {
        "guest_name": 'Zoë "Zee" O\'Neill',
        "residence": "'s-Hertogenbosch",
        "phone": "+31 6 1234 5678",
    },
    {"guest_name": "Jan de Vries", "residence": "Hoorn", "notes": "Line one\nline two, with comma"},
]


async def awkward_register(db: Database) -> Site:
    site = await new_site(db)
    for i, fields in enumerate(AWKWARD):
        await add_visit(
            db,
            site,
            arrived=NOW - timedelta(days=30 - i),
            departed=NOW - timedelta(days=28 - i),
            length_m=9.5,
            berth=f"A{i}",
            **fields,
        )
    await add_visit(db, site, kind="vehicle", arrived=NOW - timedelta(hours=2), source="staff")
    return site


async def export_bytes(db: Database, site: Site, fmt: str = "csv", **kwargs) -> bytes:
    chunks = transfer.export_register(
        db,
        staff("harbour_master", site),
        site.id,
        date_from=kwargs.pop("date_from", None),
        date_to=kwargs.pop("date_to", None),
        fmt=fmt,
        now=NOW,
        **kwargs,
    )
    return b"".join([chunk async for chunk in chunks])


async def rows_of(db: Database, site: Site) -> list[dict]:
    """The site's visits in the export's vocabulary, without what differs between sites."""
    data = json.loads(await export_bytes(db, site, "json"))
    for row in data:
        row.pop("site")
    return sorted(data, key=lambda r: (r["arrived_at"], r["guest_name"]))


async def test_an_export_imported_into_another_site_gives_the_same_register(db: Database):
    source = await awkward_register(db)
    exported = await export_bytes(db, source, delimiter=";")
    target = await new_site(db)
    report = await register_import.import_register(
        db, staff("harbour_master", target), target.id, exported, filename="x.csv", now=NOW
    )
    assert (report.ok, report.rows, report.imported) == (True, 4, 4)
    before, after = await rows_of(db, source), await rows_of(db, target)
    for row in before + after:
        row.pop("reference")  # the references are taken already: the import draws new ones
    assert after == before


async def test_a_csv_export_starts_with_a_bom_and_escapes_formulas(db: Database):
    site = await awkward_register(db)
    data = await export_bytes(db, site)
    assert data.startswith(b"\xef\xbb\xbfreference,site,kind,")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    names = {r["guest_name"] for r in rows}
    assert '\'=HYPERLINK("http://x")' in names
    assert {r["phone"] for r in rows} >= {"+31 6 1234 5678"}  # a phone number is not a formula
    assert rows[0]["arrived_at"].endswith("+02:00")  # local time with its offset


async def test_a_json_export_is_one_valid_array(db: Database):
    site = await awkward_register(db)
    data = json.loads(await export_bytes(db, site, "json"))
    assert data[0]["guest_name"] == '=HYPERLINK("http://x")'
    assert len(data) == 4


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_an_export_in_many_small_batches_is_the_same_file(
    db: Database, monkeypatch: pytest.MonkeyPatch, fmt: str
):
    site = await awkward_register(db)
    await add_visit(db, site, arrived=NOW - timedelta(days=30))  # the same arrival as another
    whole = await export_bytes(db, site, fmt)
    monkeypatch.setattr(transfer, "EXPORT_BATCH_SIZE", 2)
    batched = await export_bytes(db, site, fmt)
    if fmt == "json":  # batches are joined with a line break, rows within one with a space
        assert json.loads(batched) == json.loads(whole)
    else:
        assert batched == whole


async def test_an_empty_register_exports_as_an_empty_json_array(db: Database):
    site = await new_site(db)
    assert json.loads(await export_bytes(db, site, "json")) == []


async def test_an_export_for_a_period_holds_the_stays_that_overlap_it(db: Database):
    site = await awkward_register(db)
    data = json.loads(
        await export_bytes(db, site, "json", date_from=NOW.date(), date_to=NOW.date())
    )
    assert [r["kind"] for r in data] == ["vehicle"]


async def test_an_export_is_audited_once_with_its_count(db: Database):
    site = await awkward_register(db)
    await export_bytes(db, site, date_from=date(2026, 1, 1))
    [event] = await events(db, "register_exported", site)
    details = event.details if isinstance(event.details, dict) else json.loads(event.details)
    assert details["count"] == 4
    assert details["from"] == "2026-01-01"


async def test_a_site_of_someone_else_cannot_be_exported_or_imported(db: Database):
    site = await awkward_register(db)
    other = await new_site(db)
    stranger = staff("harbour_master", other)
    with pytest.raises(NotFound):
        await anext(
            transfer.export_register(
                db, stranger, site.id, date_from=None, date_to=None, fmt="csv", now=NOW
            )
        )
    with pytest.raises(AccessDenied):
        await register_import.import_register(
            db, staff("security", site), site.id, b"", filename="x.csv", now=NOW
        )


IMPORT_HEADER = (
    "kind;arrived_at;expected_departure_at;departed_at;persons;guest_name;residence;"
    "vessel_name;registration\r\n"
)


def sheet(*rows: str) -> bytes:
    return (IMPORT_HEADER + "".join(r + "\r\n" for r in rows)).encode()


async def count(db: Database, site: Site) -> int:
    async with db.read() as session:
        return await session.scalar(select(func.count()).where(Visit.site_id == site.id)) or 0


async def test_one_bad_row_imports_nothing_and_every_bad_row_is_reported(db: Database):
    site = await new_site(db)
    data = sheet(
        "vessel;01-06-2026 14:00;02-06-2026 12:00;02-06-2026 11:00;2;Jan;Hoorn;Eend;NL-1-AB",
        "vessel;gisteren;02-06-2026 12:00;;2;Piet;Edam;Zwaan;NL-2-AB",
        "vessel;01-06-2026 14:00;02-06-2026 12:00;;0;;Edam;Meeuw;NL-3-AB",
    )
    report = await register_import.import_register(
        db, staff("harbour_master", site), site.id, data, filename="bad.csv", now=NOW
    )
    assert (report.rows, report.bad_rows, report.imported) == (3, 2, 0)
    assert [(e.line, sorted(e.errors)) for e in report.errors] == [
        (3, ["arrived_at"]),
        (4, ["guest_name", "persons"]),
    ]
    assert await count(db, site) == 0
    assert await events(db, "register_imported", site) == []


async def test_a_dry_run_checks_everything_and_writes_nothing(db: Database):
    site = await new_site(db)
    data = sheet("vessel;2026-06-01 14:00;2026-06-02 12:00;;2;Jan;Hoorn;Eend;NL-1-AB")
    report = await register_import.import_register(
        db, staff("harbour_master", site), site.id, data, filename="ok.csv", now=NOW, dry_run=True
    )
    assert (report.ok, report.rows, report.imported) == (True, 1, 0)
    assert await count(db, site) == 0
    assert await events(db, "register_imported", site) == []


async def test_a_reference_already_in_use_is_replaced_and_a_free_one_kept(db: Database):
    site = await awkward_register(db)
    exported = (await export_bytes(db, site)).decode("utf-8-sig")
    taken = next(iter(csv.DictReader(io.StringIO(exported))))["reference"]
    header = "reference," + IMPORT_HEADER.replace(";", ",")
    free = "ABCD-EFGH"
    body = (
        f"{taken},vessel,2026-06-01 14:00,2026-06-02 12:00,,2,Jan,Hoorn,Eend,NL-1-AB\r\n"
        f"{free},vessel,2026-06-01 14:00,2026-06-02 12:00,,2,Piet,Edam,Zwaan,NL-2-AB\r\n"
    )
    target = await new_site(db)
    report = await register_import.import_register(
        db, staff("admin", target), target.id, (header + body).encode(), filename="r.csv", now=NOW
    )
    assert (report.imported, report.references_kept) == (2, 1)
    async with db.read() as session:
        references = set(
            await session.scalars(select(Visit.reference).where(Visit.site_id == target.id))
        )
    assert free in references
    assert taken not in references
    [event] = await events(db, "register_imported", target)
    assert event.action == "register_imported"


async def test_an_export_in_many_batches_holds_every_visit_once_in_arrival_order(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(transfer, "EXPORT_BATCH_SIZE", 2)
    site = await new_site(db)
    same = NOW - timedelta(days=3, microseconds=123_456)  # ties on the keyset's first column
    arrivals = [same, NOW - timedelta(days=5), same, NOW - timedelta(hours=1), same]
    for i, arrived in enumerate(arrivals):
        await add_visit(db, site, arrived=arrived, guest_name=f"Gast {i}")
    for fmt in ("csv", "json"):
        data = await export_bytes(db, site, fmt)
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        else:
            rows = json.loads(data)
        assert sorted(r["guest_name"] for r in rows) == [f"Gast {i}" for i in range(5)]
        assert [r["guest_name"] for r in rows][:1] == ["Gast 1"]
        assert [r["arrived_at"] for r in rows] == sorted(r["arrived_at"] for r in rows)


async def test_a_bad_row_after_batches_already_written_still_imports_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(register_import, "BATCH_SIZE", 2)
    site = await new_site(db)
    good = "vessel;01-06-2026 14:00;02-06-2026 12:00;;2;Jan;Hoorn;Eend;NL-1-AB"
    data = sheet(good, good, good, good, "vessel;01-06-2026 14:00;;;2;Jan;Hoorn;Eend;NL-1-AB")
    report = await register_import.import_register(
        db, staff("harbour_master", site), site.id, data, filename="late.csv", now=NOW
    )
    assert (report.rows, report.bad_rows, report.imported) == (5, 1, 0)
    assert [(e.line, sorted(e.errors)) for e in report.errors] == [(6, ["expected_departure_at"])]
    assert await count(db, site) == 0
    assert await events(db, "register_imported", site) == []


@pytest.mark.parametrize("dry_run", [True, False])
async def test_a_row_named_twice_in_one_file_is_imported_once(
    db: Database, monkeypatch: pytest.MonkeyPatch, dry_run: bool
):
    monkeypatch.setattr(register_import, "BATCH_SIZE", 1)  # the second one comes in another batch
    site = await new_site(db)
    reference = "ZZ" + register_import._new_reference()[2:]
    header = "reference," + IMPORT_HEADER.replace(";", ",")
    row = f"{reference},vessel,2026-06-01 14:00,2026-06-02 12:00,,2,Jan,Hoorn,Eend,NL-1-AB\r\n"
    other = "ZZ" + register_import._new_reference()[2:]
    same_boat = row.replace(reference, other)  # another reference, the same boat and minute
    report = await register_import.import_register(
        db,
        staff("harbour_master", site),
        site.id,
        (header + row + row.lower() + same_boat).encode(),
        filename="twice.csv",
        now=NOW,
        dry_run=dry_run,
    )
    assert (report.ok, report.rows, report.new, report.existing) == (True, 3, 1, 2)
    assert report.references_kept == 1
    if not dry_run:
        async with db.read() as session:
            references = list(
                await session.scalars(select(Visit.reference).where(Visit.site_id == site.id))
            )
        assert references == [reference]


async def test_an_import_is_audited_with_its_count_and_file_name(db: Database):
    site = await new_site(db)
    data = sheet("vessel;2026-06-01 14:00;2026-06-02 12:00;;2;Jan;Hoorn;Eend;NL-1-AB")
    await register_import.import_register(
        db, staff("harbour_master", site), site.id, data, filename="seizoen.csv", now=NOW
    )
    [event] = await events(db, "register_imported", site)
    details = event.details if isinstance(event.details, dict) else json.loads(event.details)
    assert (details["count"], details["file"]) == (1, "seizoen.csv")


async def test_an_export_with_a_period_the_wrong_way_round_is_refused_unaudited(db: Database):
    site = await new_site(db)
    with pytest.raises(transfer.ExportInvalid) as refused:
        await export_bytes(db, site, date_from=date(2026, 7, 2), date_to=date(2026, 7, 1))
    assert refused.value.field == "to"
    with pytest.raises(transfer.ExportInvalid):
        await export_bytes(db, site, "xlsx")
    assert await events(db, "register_exported", site) == []


# --- the pages ---------------------------------------------------------------------------------


async def test_the_export_page_downloads_the_register_as_an_attachment(
    client: Client, db: Database
):
    site = await awkward_register(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    await sign_in(client, account.email)
    form = await client.get(f"/admin/sites/{site.slug}/export")
    assert form.status_code == 200
    answer = await client.get(
        f"/admin/sites/{site.slug}/export/download", params={"format": "csv", "delimiter": ";"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert f'filename="register-{site.slug}-all.csv"' in answer.headers["content-disposition"]
    assert answer.content.decode("utf-8-sig").startswith("reference;site;kind;")
    assert (
        len(answer.content.decode("utf-8-sig").strip().splitlines()) == 1 + 4 + 1
    )  # a newline in notes


async def test_the_download_without_parameters_is_the_whole_register_as_csv(
    client: Client, db: Database
):
    site = await awkward_register(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    await sign_in(client, account.email)
    answer = await client.get(f"/admin/sites/{site.slug}/export/download")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert len(rows) == 4


async def test_a_json_download_is_json_with_its_period_in_the_file_name(
    client: Client, db: Database
):
    site = await awkward_register(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    await sign_in(client, account.email)
    answer = await client.get(
        f"/admin/sites/{site.slug}/export/download",
        params={"format": "json", "from": "2026-07-14", "to": "2026-07-14"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert (
        f"register-{site.slug}-2026-07-14-2026-07-14.json" in answer.headers["content-disposition"]
    )
    assert [r["kind"] for r in answer.json()] == ["vehicle"]


async def test_an_unknown_format_is_shown_next_to_its_field(client: Client, db: Database):
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    await sign_in(client, account.email)
    answer = await client.get(
        f"/admin/sites/{site.slug}/export/download", params={"format": "xlsx"}
    )
    assert answer.status_code == 400
    assert 'id="err-format"' in answer.text


async def test_the_harbour_master_of_another_site_finds_no_export_or_import(
    client: Client, db: Database
):
    site = await new_site(db)
    other = await new_site(db)
    account = await make_staff(db, "harbour_master", [other.slug])
    await sign_in(client, account.email)
    for path in ("export", "export/download", "import"):
        assert (await client.get(f"/admin/sites/{site.slug}/{path}")).status_code == 404


async def test_a_bad_export_date_is_shown_next_to_its_field(client: Client, db: Database):
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    await sign_in(client, account.email)
    answer = await client.get(
        f"/admin/sites/{site.slug}/export/download", params={"from": "<b>morgen</b>"}
    )
    assert answer.status_code == 400
    assert 'id="err-from"' in answer.text
    assert "<b>morgen</b>" not in answer.text


async def test_an_upload_is_checked_then_imported_with_a_report(client: Client, db: Database):
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    csrf = await sign_in(client, account.email)
    data = sheet("vessel;01-06-2026 14:00;02-06-2026 12:00;;2;Jan;Hoorn;Eend;NL-1-AB")
    files = {"file": ("seizoen.csv", data, "text/csv")}
    checked = await client.post(
        f"/admin/sites/{site.slug}/import",
        data={"_csrf_token": csrf, "dry_run": "1"},
        files=files,
    )
    assert checked.status_code == 200
    assert "1 row read" in checked.text
    assert await count(db, site) == 0
    done = await client.post(
        f"/admin/sites/{site.slug}/import", data={"_csrf_token": csrf}, files=files
    )
    assert done.status_code == 200
    assert "1 visit imported" in done.text
    assert await count(db, site) == 1


async def test_an_upload_larger_than_the_kiosks_body_limit_is_accepted(
    client: Client, db: Database
):
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    csrf = await sign_in(client, account.email)
    row = "vessel;01-06-2026 14:00;02-06-2026 12:00;;2;Jan de Vries;Hoorn;Eend;NL-1-AB"
    data = sheet(*[row] * 3000)
    assert len(data) > 3 * 64 * 1024
    answer = await client.post(
        f"/admin/sites/{site.slug}/import",
        data={"_csrf_token": csrf, "dry_run": "1"},
        files={"file": ("groot.csv", data, "text/csv")},
    )
    assert answer.status_code == 200
    assert "3000 rows read" in answer.text


async def test_a_refused_upload_lists_its_rows_and_imports_nothing(client: Client, db: Database):
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    csrf = await sign_in(client, account.email)
    data = sheet("vessel;<script>x</script>;02-06-2026 12:00;;2;Jan;Hoorn;Eend;NL-1-AB")
    answer = await client.post(
        f"/admin/sites/{site.slug}/import",
        data={"_csrf_token": csrf},
        files={"file": ("bad.csv", data, "text/csv")},
    )
    assert answer.status_code == 400
    assert "Nothing was imported" in answer.text
    assert "<td>2</td><td>arrived_at</td>" in answer.text
    assert await count(db, site) == 0


async def test_an_upload_without_a_file_asks_for_one(client: Client, db: Database):
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    csrf = await sign_in(client, account.email)
    answer = await client.post(f"/admin/sites/{site.slug}/import", data={"_csrf_token": csrf})
    assert answer.status_code == 400
    assert 'id="err-file"' in answer.text


async def test_an_upload_that_is_not_a_register_asks_what_its_columns_hold(
    client: Client, db: Database
):
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    csrf = await sign_in(client, account.email)
    answer = await client.post(
        f"/admin/sites/{site.slug}/import",
        data={"_csrf_token": csrf},
        files={"file": ("photo.csv", b"name,colour\r\nx,y\r\n", "text/csv")},
    )
    assert answer.status_code == 200
    assert "Which column holds what?" in answer.text
    assert "Not recognised: colour." in answer.text
    assert "No column holds: Arrival, Place of residence, Expected departure." in answer.text
    assert await count(db, site) == 0


async def test_security_may_not_import(client: Client, db: Database):
    site = await new_site(db)
    account = await make_staff(db, "security", [site.slug])
    await sign_in(client, account.email)
    assert (await client.get(f"/admin/sites/{site.slug}/import")).status_code == 403
    assert (await client.get(f"/admin/sites/{site.slug}/export")).status_code == 403


async def test_an_upload_without_the_csrf_token_is_refused(client: Client, db: Database):
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    await sign_in(client, account.email)
    answer = await client.post(
        f"/admin/sites/{site.slug}/import",
        files={"file": ("x.csv", sheet(), "text/csv")},
    )
    assert answer.status_code == 403
    assert await count(db, site) == 0


# --- the commands ---------------------------------------------------------------------------


def test_the_commands_import_a_sheet_and_export_it_again(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli")
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    sheet_file = cli_env / "seizoen.csv"
    sheet_file.write_bytes(
        sheet(
            "vessel;01-06-2026 14:00;02-06-2026 12:00;02-06-2026 11:00;2;Jan;Hoorn;Eend;NL-1-AB",
            "vessel;03-06-2026 14:00;04-06-2026 12:00;04-06-2026 10:00;3;Zoë;Edam;Zwaan;NL-2-AB",
        )
    )
    code, out, _ = run(capsys, "import", "register", "--site", slug, str(sheet_file), "--dry-run")
    assert code == 0
    assert "2 rows read" in out
    assert "dry run" in out
    code, out, _ = run(capsys, "import", "register", "--site", slug, str(sheet_file))
    assert (code, "2 imported" in out) == (0, True)
    target = cli_env / "out.json"
    code, _, _ = run(capsys, "export", "register", "--site", slug, "--out", str(target))
    assert code == 0
    assert [r["guest_name"] for r in json.loads(target.read_text())] == ["Jan", "Zoë"]


def test_the_import_command_lists_refused_rows_and_fails(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli")
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    sheet_file = cli_env / "bad.csv"
    sheet_file.write_bytes(sheet("vessel;gisteren;02-06-2026 12:00;;2;Jan;Hoorn;Eend;NL-1-AB"))
    code, out, _ = run(capsys, "import", "register", "--site", slug, str(sheet_file))
    assert code == 1
    assert "row 2: the arrival “gisteren” is not a date" in out
    assert "Nothing was imported" in out


def test_the_export_command_writes_a_semicolon_csv_for_a_period(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli")
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    sheet_file = cli_env / "seizoen.csv"
    sheet_file.write_bytes(
        sheet(
            "vessel;01-06-2026 14:00;02-06-2026 12:00;02-06-2026 11:00;2;Jan;Hoorn;Eend;NL-1-AB",
            "vessel;03-07-2026 14:00;04-07-2026 12:00;04-07-2026 10:00;3;Zoë;Edam;Zwaan;NL-2-AB",
        )
    )
    assert run(capsys, "import", "register", "--site", slug, str(sheet_file))[0] == 0
    target = cli_env / "juni.csv"
    code, _, err = run(
        capsys,
        "export", "register", "--site", slug, "--from", "2026-06-01", "--to", "2026-06-30",
        "--delimiter", ";", "--output", str(target),
    )  # fmt: skip
    assert code == 0
    assert "written to" in err
    text = target.read_bytes().decode("utf-8")
    assert text.startswith("\ufeffreference;site;kind;")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert [(r["site"], r["guest_name"]) for r in rows] == [(slug, "Jan")]


def test_the_export_command_refuses_a_period_the_wrong_way_round_and_writes_nothing(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli")
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    target = cli_env / "x.csv"
    code, _, err = run(
        capsys,
        "export", "register", "--site", slug, "--from", "2026-07-02", "--to", "2026-07-01",
        "--out", str(target),
    )  # fmt: skip
    assert code != 0
    assert "first date" in err
    assert not target.exists()


def test_the_dry_run_command_writes_nothing(cli_env: Path, capsys: pytest.CaptureFixture[str]):
    slug = unique_slug("cli")
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    sheet_file = cli_env / "seizoen.csv"
    sheet_file.write_bytes(sheet("vessel;01-06-2026 14:00;02-06-2026 12:00;;2;Jan;Hoorn;Eend;X"))
    code, out, _ = run(capsys, "import", "register", "--site", slug, str(sheet_file), "--dry-run")
    assert (code, "0 imported" in out) == (0, True)
    code, out, _ = run(capsys, "export", "register", "--site", slug, "--format", "json")
    assert (code, json.loads(out)) == (0, [])


HUGE = "x" * (129 * 1024)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (f"kind;arrived_at;{HUGE}\r\n".encode(), "header"),
        (";".join(f"c{i}" for i in range(100_000)).encode() + b"\r\n", "columns"),
        (IMPORT_HEADER.encode() + f"vessel;{HUGE}\r\n".encode(), "row 2"),
        (IMPORT_HEADER.encode() + f'vessel;"{HUGE}"\r\n'.encode(), "row 2"),
    ],
    ids=["header field over 128 KiB", "100,000 columns", "field over 128 KiB", "quoted field"],
)
async def test_an_oversized_field_or_header_is_a_file_error_not_a_server_error(
    client: Client, db: Database, data: bytes, says: str
):
    """Issue 17, finding 10: these raised _csv.Error (a 500)."""
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    csrf = await sign_in(client, account.email)
    answer = await client.post(
        f"/admin/sites/{site.slug}/import",
        data={"_csrf_token": csrf},
        files={"file": ("big.csv", data, "text/csv")},
    )
    assert answer.status_code == 400, answer.status_code
    assert says in answer.text
    assert await count(db, site) == 0
