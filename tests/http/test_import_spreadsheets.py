"""The import of real spreadsheets (issue 15, point 2) and the spreadsheet export (point 7):
idempotent rows, --update audited per visit, the mapping step remembered per site, .xlsx,
Dutch sheets in Windows-1252 with decimal commas, and exports that read back exactly."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import Site, Visit
from nightreg.services import register_import, sites, transfer
from tests.factories import NOW, add_visit, events, make_staff, new_site, staff, unique_slug
from tests.pages import run, sign_in

Client = AsyncTestClient[Litestar]

DUTCH_HEADER = (
    "Datum aankomst;Datum vertrek;Naam schipper;Woonplaats;Naam schip;Registratie;Lengte (m);"
    "Aantal personen;Ligplaats;Betaald"
)
DUTCH_ROWS = [
    "01-06-2026;03-06-2026;Zoë Jansen;Hoorn;Eend;NL-1-AB;9,5;2;B12;ja",
    "2-6-2026 16:45;4-6-2026;Piet Smit;Edam;Zwaan;NL-2-AB;12,25;;C3;nee",
    "05/06/2026;07/06/2026 10:15;Anna Bakker;Den Helder;Meeuw;NL-3-AB;7;3;A1;ja",
]


def dutch_sheet(*rows: str) -> bytes:
    """Last season's register as Excel in Dutch saves it: `;`, Windows-1252, decimal commas."""
    return ("\r\n".join([DUTCH_HEADER, *rows]) + "\r\n").encode("cp1252")


async def stored(db: Database, site: Site) -> list[Visit]:
    async with db.read() as session:
        found = await session.scalars(
            select(Visit).where(Visit.site_id == site.id).order_by(Visit.arrived_at)
        )
        return list(found)


async def exported_rows(db: Database, site: Site) -> list[dict]:
    """The site's register in the export's vocabulary, without what differs between sites."""
    chunks = transfer.export_register(
        db, staff("admin", site), site.id, date_from=None, date_to=None, fmt="json", now=NOW
    )
    rows = json.loads(b"".join([c async for c in chunks]))
    for row in rows:
        row.pop("site")
        row.pop("reference")
    return sorted(rows, key=lambda r: (r["arrived_at"], r["guest_name"]))


async def import_bytes(
    db: Database, site: Site, data: bytes, **options
) -> register_import.ImportReport:
    return await register_import.import_register(
        db, staff("harbour_master", site), site.id, data, filename="x.csv", now=NOW, **options
    )


# --- reading a real sheet ---------------------------------------------------------------------


async def test_a_dutch_windows_1252_sheet_with_decimal_commas_and_bare_dates_is_imported(
    db: Database,
):
    site = await new_site(db)
    report = await import_bytes(db, site, dutch_sheet(*DUTCH_ROWS), mapping={"Betaald": ""})
    assert (report.ok, report.rows, report.imported) == (True, 3, 3), report.errors
    assert report.encoding == "Windows-1252"
    zoe, piet, anna = await stored(db, site)
    amsterdam = site.timezone
    assert zoe.guest_name == "Zoë Jansen"
    assert (zoe.kind, zoe.length_m, zoe.persons, zoe.berth) == ("vessel", Decimal("9.5"), 2, "B12")
    # A date alone takes the site's usual hours: arrival 14:00, departure 12:00 (local).
    assert zoe.arrived_at == datetime(2026, 6, 1, 12, 0, tzinfo=UTC), amsterdam
    assert zoe.departed_at == datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    assert zoe.expected_departure_at == zoe.departed_at  # only a departure column
    assert piet.arrived_at == datetime(2026, 6, 2, 14, 45, tzinfo=UTC)
    assert (piet.persons, piet.length_m) == (1, Decimal("12.3"))  # empty persons is 1
    assert anna.departed_at == datetime(2026, 6, 7, 8, 15, tzinfo=UTC)


async def test_a_sites_usual_hours_are_what_a_bare_date_takes(db: Database):
    site = await new_site(db)
    async with db.write() as session:
        row = await session.get(Site, site.id)
        assert row is not None
        row.usual_arrival_time, row.usual_departure_time = "16:30", "10:00"
    await import_bytes(db, site, dutch_sheet(DUTCH_ROWS[0]), mapping={"Betaald": "skip"})
    [visit] = await stored(db, site)
    assert visit.arrived_at == datetime(2026, 6, 1, 14, 30, tzinfo=UTC)
    assert visit.departed_at == datetime(2026, 6, 3, 8, 0, tzinfo=UTC)


async def test_a_departure_still_to_come_is_only_expected(db: Database):
    site = await new_site(db)
    tomorrow = (NOW + timedelta(days=1)).strftime("%d-%m-%Y")
    row = f"13-07-2026;{tomorrow};Jan;Hoorn;Eend;NL-1-AB;9,5;2;B1;ja"
    report = await import_bytes(db, site, dutch_sheet(row), mapping={"Betaald": ""})
    assert report.ok, report.errors
    [visit] = await stored(db, site)
    assert visit.departed_at is None
    assert visit.expected_departure_at.date() == (NOW + timedelta(days=1)).date()


async def test_row_errors_speak_to_the_member_of_staff(db: Database):
    site = await new_site(db)
    data = dutch_sheet(
        DUTCH_ROWS[0],
        "01-06-2026;03-06-2026;Jan;;Eend;NL-1-AB;9,5;2;B1;ja",
        "gisteren;03-06-2026;Jan;Hoorn;Eend;NL-1-AB;9,5;120;B1;ja",
    )
    report = await import_bytes(db, site, data, mapping={"Betaald": ""})
    assert (report.bad_rows, report.imported) == (2, 0)
    texts = {
        (e.line, register_import.row_message(problem))
        for e in report.errors
        for problem in e.errors.values()
    }
    assert (3, "the residence is empty") in texts
    assert any(line == 4 and "the arrival “gisteren” is not a date" in t for line, t in texts)
    assert (4, "the number of persons “120” is not a number from 1 to 99") in texts
    assert await stored(db, site) == []


async def test_a_row_without_a_kind_at_a_business_park_is_a_stay_or_a_vehicle(db: Database):
    park = await new_site(db, "business_park")
    data = (
        b"Naam,Woonplaats,Aankomst,Vertrek,Kenteken,Unit\r\n"
        b"Jan,Hoorn,01-06-2026 20:00,02-06-2026 08:00,12-ABC-3,B4\r\n"
        b"Piet,Edam,01-06-2026 21:00,02-06-2026 08:00,,B5\r\n"
    )
    report = await import_bytes(db, park, data)
    assert report.ok, report.errors
    assert [v.kind for v in await stored(db, park)] == ["vehicle", "stay"]


async def test_an_xlsx_sheet_is_read_by_name_with_its_dates(db: Database, tmp_path: Path):
    site = await new_site(db)
    workbook = openpyxl.Workbook()
    workbook.active.title = "Leeg"
    sheet = workbook.create_sheet("Seizoen 2025")
    sheet.append(["Aankomst", "Vertrek", "Gast", "Plaats", "Bootnaam", "Rompnummer", "Lengte"])
    sheet.append([datetime(2025, 7, 1, 15, 30), datetime(2025, 7, 3), "Jan", "Hoorn", "Eend",
                  "NL-1-AB", 9.5])  # fmt: skip
    sheet.cell(row=2, column=2).number_format = "dd-mm-yyyy"
    buffer = io.BytesIO()
    workbook.save(buffer)
    report = await import_bytes(db, site, buffer.getvalue(), sheet="Seizoen 2025")
    assert (report.ok, report.format, report.sheet, report.imported) == (
        True, "Excel", "Seizoen 2025", 1,
    ), report.errors  # fmt: skip
    [visit] = await stored(db, site)
    assert visit.arrived_at == datetime(2025, 7, 1, 13, 30, tzinfo=UTC)
    assert visit.departed_at == datetime(2025, 7, 3, 10, 0, tzinfo=UTC)  # a date: 12:00 local
    assert visit.length_m == Decimal("9.5")
    with pytest.raises(register_import.ImportFileError, match="no sheet 'Juni'"):
        await import_bytes(db, site, buffer.getvalue(), sheet="Juni")


# --- idempotent -------------------------------------------------------------------------------


async def test_re_importing_a_file_imports_nothing_and_the_dry_run_says_so(db: Database):
    site = await new_site(db)
    data = dutch_sheet(*DUTCH_ROWS)
    first = await import_bytes(db, site, data, mapping={"Betaald": ""})
    assert first.imported == 3
    check = await import_bytes(db, site, data, dry_run=True)
    assert (check.ok, check.new, check.existing, check.bad_rows) == (True, 0, 3, 0)
    again = await import_bytes(db, site, data)
    assert (again.ok, again.imported, again.existing) == (True, 0, 3)
    assert len(await stored(db, site)) == 3


async def test_the_same_subject_arriving_in_the_same_minute_is_already_there(db: Database):
    site = await new_site(db)
    await import_bytes(db, site, dutch_sheet(DUTCH_ROWS[1]), mapping={"Betaald": ""})
    same_minute = DUTCH_ROWS[1].replace("Piet Smit", "P. Smit").replace("16:45", "16:45:40")
    later = DUTCH_ROWS[1].replace("16:45", "16:46")
    report = await import_bytes(db, site, dutch_sheet(same_minute, later))
    assert (report.new, report.existing, report.imported) == (1, 1, 1)


@pytest.mark.parametrize("sheet_locale", [None, "nl", "de", "en"])
async def test_re_importing_a_sites_own_export_imports_nothing(
    db: Database, sheet_locale: str | None
):
    site = await new_site(db)
    for i in range(3):
        await add_visit(db, site, arrived=NOW - timedelta(days=i + 2), guest_name=f"Gast {i}")
    chunks = transfer.export_register(
        db, staff("admin", site), site.id, date_from=None, date_to=None, fmt="csv",
        delimiter=";", sheet_locale=sheet_locale, now=NOW,
    )  # fmt: skip
    exported = b"".join([c async for c in chunks])
    report = await import_bytes(db, site, exported)
    assert (report.ok, report.rows, report.imported, report.existing) == (True, 3, 0, 3)


# --- exports that read back -------------------------------------------------------------------


@pytest.mark.parametrize("sheet_locale", ["nl", "de", "en"])
async def test_a_spreadsheet_export_reads_back_exactly(db: Database, sheet_locale: str):
    source = await new_site(db)
    autumn = datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 summer time, then again winter
    arrivals = [autumn, autumn + timedelta(hours=1), NOW - timedelta(days=3, seconds=17)]
    for i, arrived in enumerate(arrivals):
        await add_visit(
            db, source, arrived=arrived, departed=arrived + timedelta(hours=20),
            guest_name=f'Zoë "{i}"', residence="'s-Hertogenbosch", length_m=Decimal("9.5"),
            notes="=SUM(A1)", phone="+31 6 1234 5678",
        )  # fmt: skip
    chunks = transfer.export_register(
        db, staff("admin", source), source.id, date_from=None, date_to=None, fmt="csv",
        delimiter=transfer.DEFAULT_DELIMITERS[sheet_locale], sheet_locale=sheet_locale, now=NOW,
    )  # fmt: skip
    exported = b"".join([c async for c in chunks])
    text = exported.decode("utf-8-sig")
    assert "2026-07-11 " in text  # local times without T or offset
    assert "T21" not in text
    assert "2025-10-26T02:30:00+02:00" in text  # the hour that occurs twice keeps its offset
    if sheet_locale in ("nl", "de"):
        assert ";9,5;" in text
    target = await new_site(db)
    report = await import_bytes(db, target, exported)
    assert (report.ok, report.imported) == (True, 3), report.errors
    assert await exported_rows(db, target) == await exported_rows(db, source)


async def test_the_export_page_suggests_the_readers_delimiter_and_writes_a_sheet(
    client: Client, db: Database
):
    site = await new_site(db)
    await add_visit(db, site, arrived=NOW - timedelta(days=2))
    account = await make_staff(db, "harbour_master", [site.slug])
    await sign_in(client, account.email)
    dutch = await client.get(f"/admin/sites/{site.slug}/export?lang=nl")
    assert re.search(r'value=";"\s+checked', dutch.text)
    english = await client.get(f"/admin/sites/{site.slug}/export?lang=en")
    assert re.search(r'value=","\s+checked', english.text)
    answer = await client.get(
        f"/admin/sites/{site.slug}/export/download?lang=de&delimiter=%3B&sheet=1"
    )
    assert answer.status_code == 200
    header = answer.content.decode("utf-8-sig").splitlines()[0]
    assert header.startswith("Referenz;Standort;Art;")
    [event] = await events(db, "register_exported", site)
    assert "sheet" in (
        event.details if isinstance(event.details, str) else json.dumps(event.details)
    )


# --- update -----------------------------------------------------------------------------------


async def test_update_replaces_stored_values_and_audits_each_changed_visit(db: Database):
    site = await new_site(db)
    await import_bytes(db, site, dutch_sheet(*DUTCH_ROWS), mapping={"Betaald": ""})
    changed = [
        DUTCH_ROWS[0].replace("B12", "D7"),
        DUTCH_ROWS[1],
        DUTCH_ROWS[2].replace(";3;A1", ";4;A1"),
    ]
    plain = await import_bytes(db, site, dutch_sheet(*changed))
    assert (plain.imported, plain.existing, plain.updated) == (0, 3, 0)
    assert [v.berth for v in await stored(db, site)] == ["B12", "C3", "A1"]
    check = await import_bytes(db, site, dutch_sheet(*changed), update=True, dry_run=True)
    assert (check.existing, check.updated) == (3, 2)
    assert await events(db, "visit_corrected", site) == []
    done = await import_bytes(db, site, dutch_sheet(*changed), update=True)
    assert (done.ok, done.imported, done.updated) == (True, 0, 2)
    zoe, piet, anna = await stored(db, site)
    assert (zoe.berth, anna.persons, piet.berth) == ("D7", 4, "C3")
    corrected = await events(db, "visit_corrected", site)
    assert sorted(e.object_id for e in corrected) == sorted([zoe.id, anna.id])
    [imported] = (await events(db, "register_imported", site))[-1:]
    assert imported.action == "register_imported"


# --- the page: the mapping step, remembered ---------------------------------------------------


async def test_the_mapping_step_asks_once_and_is_remembered_for_the_site(
    client: Client, db: Database
):
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    csrf = await sign_in(client, account.email)
    files = {"file": ("seizoen.csv", dutch_sheet(*DUTCH_ROWS), "text/csv")}
    asked = await client.post(
        f"/admin/sites/{site.slug}/import", data={"_csrf_token": csrf}, files=files
    )
    assert asked.status_code == 200
    assert "Which column holds what?" in asked.text
    assert "Not recognised: Betaald." in asked.text
    assert "Zoë Jansen" in asked.text  # the preview: the first rows as they would be stored
    assert "2026-06-01 14:00" in asked.text
    token = re.search(r'name="token" value="([^"]+)"', asked.text)
    assert token is not None
    headers = re.findall(r'name="header" value="([^"]*)"', asked.text)
    form = {"_csrf_token": csrf, "token": token.group(1), "header": headers, "step": "run"}
    for i, header in enumerate(headers):
        chosen = re.search(rf'name="col-{i}">.*?<option value="(\w+)" selected', asked.text, re.S)
        form[f"col-{i}"] = "skip" if header == "Betaald" else (chosen.group(1) if chosen else "")
    done = await client.post(f"/admin/sites/{site.slug}/import", data=form)
    assert done.status_code == 200, done.text
    assert "3 visits imported" in done.text
    site_now = await sites.get_site(db, site.slug)
    assert site_now.import_mapping == {"betaald": ""}
    again = await client.post(
        f"/admin/sites/{site.slug}/import", data={"_csrf_token": csrf, "dry_run": "1"},
        files=files,
    )  # fmt: skip
    assert "Which column holds what?" not in again.text
    assert "3 already in the register" in again.text
    assert "Everything in this file is in the register already" in again.text


async def test_a_check_offers_to_import_the_same_upload(client: Client, db: Database):
    site = await new_site(db)
    account = await make_staff(db, "harbour_master", [site.slug])
    csrf = await sign_in(client, account.email)
    data = dutch_sheet(*DUTCH_ROWS).replace(b";Betaald", b"").replace(b";ja", b"")
    data = data.replace(b";nee", b"")
    checked = await client.post(
        f"/admin/sites/{site.slug}/import",
        data={"_csrf_token": csrf, "dry_run": "1"},
        files={"file": ("seizoen.csv", data, "text/csv")},
    )
    assert "3 new" in checked.text
    token = re.search(r'name="token" value="([^"]+)"', checked.text)
    assert token is not None
    done = await client.post(
        f"/admin/sites/{site.slug}/import", data={"_csrf_token": csrf, "token": token.group(1)}
    )
    assert "3 visits imported" in done.text
    assert len(await stored(db, site)) == 3
    reused = await client.post(
        f"/admin/sites/{site.slug}/import", data={"_csrf_token": csrf, "token": token.group(1)}
    )
    assert reused.status_code == 400
    assert "no longer kept" in reused.text


async def test_another_account_cannot_use_someone_elses_upload(client: Client, db: Database):
    site = await new_site(db)
    first = await make_staff(db, "harbour_master", [site.slug])
    csrf = await sign_in(client, first.email)
    asked = await client.post(
        f"/admin/sites/{site.slug}/import",
        data={"_csrf_token": csrf},
        files={"file": ("s.csv", dutch_sheet(*DUTCH_ROWS), "text/csv")},
    )
    token = re.search(r'name="token" value="([^"]+)"', asked.text)
    assert token is not None
    client.cookies.clear()
    second = await make_staff(db, "harbour_master", [site.slug])
    csrf = await sign_in(client, second.email)
    answer = await client.post(
        f"/admin/sites/{site.slug}/import",
        data={"_csrf_token": csrf, "token": token.group(1), "step": "run"},
    )
    assert answer.status_code == 400
    assert await stored(db, site) == []


async def test_a_sites_usual_hours_are_set_on_its_page(client: Client, db: Database):
    site = await new_site(db)
    account = await make_staff(db, "admin", [site.slug])
    csrf = await sign_in(client, account.email)
    base = {"_csrf_token": csrf, "name": site.name, "municipality": "", "contact": "",
            "active": "yes", "back": "site"}  # fmt: skip
    page = await client.get(f"/admin/sites/{site.slug}")
    assert 'value="14:00"' in page.text
    assert 'value="12:00"' in page.text
    bad = await client.post(
        f"/admin/sites/{site.slug}",
        data={**base, "usual_arrival_time": "25:00", "usual_departure_time": "11:00"},
    )
    assert bad.status_code == 400
    assert "Please enter a time like 14:00." in bad.text
    await client.post(
        f"/admin/sites/{site.slug}",
        data={**base, "usual_arrival_time": "15:30", "usual_departure_time": "11.00"},
    )
    changed = await sites.get_site(db, site.slug)
    assert (changed.usual_arrival_time, changed.usual_departure_time) == ("15:30", "11:00")


# --- the command ------------------------------------------------------------------------------


def test_the_command_maps_columns_reads_a_named_sheet_and_imports_once(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli")
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    workbook = openpyxl.Workbook()
    workbook.active.title = "Oud"
    sheet = workbook.create_sheet("Seizoen 2025")
    sheet.append(["Aankomst", "Vertrek", "Wie", "Woonplaats", "Boot", "Nummer", "Plek"])
    sheet.append(["01-07-2025 15:00", "03-07-2025", "Jan", "Hoorn", "Eend", "NL-1-AB", "B3"])
    sheet.append(["04-07-2025", "06-07-2025", "Piet", "Edam", "Zwaan", "NL-2-AB", "B4"])
    path = cli_env / "seizoen.xlsx"
    workbook.save(path)
    mapping = cli_env / "kolommen.json"
    mapping.write_text(json.dumps({"Nummer": "registration"}))
    code, out, err = run(
        capsys, "import", "register", "--site", slug, str(path), "--sheet", "Seizoen 2025",
        "--map", "Wie=guest_name", "--map", "Plek=berth", "--mapping", str(mapping),
    )  # fmt: skip
    assert code == 0, out + err
    assert "2 new" in out
    assert "2 imported" in out
    assert "Wie -> guest_name" in out
    # The mapping is remembered: the same file again needs no --map and imports nothing.
    code, out, _ = run(
        capsys, "import", "register", "--site", slug, str(path), "--sheet", "Seizoen 2025"
    )
    assert code == 0
    assert "2 already in the register" in out
    assert "Nothing new" in out
    code, _, err = run(capsys, "import", "register", "--site", slug, str(path), "--map", "Wie=x")
    assert code != 0
    assert "not a field" in err


def test_the_command_updates_with_update_and_says_what_it_changed(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli")
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    path = cli_env / "seizoen.csv"
    path.write_bytes(dutch_sheet(*DUTCH_ROWS))
    code, out, _ = run(
        capsys, "import", "register", "--site", slug, str(path), "--map", "Betaald=skip"
    )
    assert code == 0, out
    path.write_bytes(dutch_sheet(DUTCH_ROWS[0].replace("B12", "D7"), *DUTCH_ROWS[1:]))
    code, out, _ = run(capsys, "import", "register", "--site", slug, str(path), "--update")
    assert code == 0
    assert "0 imported, 1 updated" in out
