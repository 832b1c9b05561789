"""A harbour master imports last season's spreadsheets through the mapping step: an .xlsx and a
Dutch-headed Windows-1252 CSV with decimal commas, each with a column the import does not know."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.browser.axe import BLOCKING_IMPACTS, describe, run_axe
from tests.browser.live import LiveServer, run_async, sign_in_as

with contextlib.suppress(ImportError):  # without playwright, conftest.py skips these tests
    from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "locale": "nl-NL",
}
DUTCH_HEADER = (
    "Datum aankomst;Datum vertrek;Naam schipper;Woonplaats;Naam schip;Registratie;Lengte (m);"
    "Aantal personen;Ligplaats;Kleur romp"
)


def dutch_csv(path: Path) -> Path:
    rows = [
        "01-06-2025;03-06-2025;Zoë Jansen;Hoorn;Eend;NL-1-AB;9,5;2;B12;wit",
        "2-6-2025 16:45;4-6-2025;Piet Smit;Edam;Zwaan;NL-2-AB;12,3;;C3;blauw",
    ]
    path.write_bytes(("\r\n".join([DUTCH_HEADER, *rows]) + "\r\n").encode("cp1252"))
    return path


def workbook(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Seizoen 2025"
    sheet.append(["Aankomst", "Vertrek", "Gast", "Plaats", "Bootnaam", "Rompnummer", "Betaald"])
    sheet.append([datetime(2025, 7, 1, 15, 30), datetime(2025, 7, 3), "Anna Bakker", "Den Helder",
                  "Meeuw", "NL-3-AB", "ja"])  # fmt: skip
    sheet.cell(row=2, column=2).number_format = "dd-mm-yyyy"
    book.save(path)
    return path


def stored_names(server: LiveServer, slug: str) -> list[tuple[str, str | None, str]]:
    from sqlalchemy import select

    from nightreg.db import Database
    from nightreg.models import Visit
    from nightreg.services.sites import get_site

    async def read() -> list[tuple[str, str | None, str]]:
        db = Database(server.settings.database_url)
        try:
            site = await get_site(db, slug)
            async with db.read() as session:
                rows = await session.execute(
                    select(Visit.guest_name, Visit.length_m, Visit.arrived_at)
                    .where(Visit.site_id == site.id)
                    .order_by(Visit.arrived_at)
                )
                return [(n, None if m is None else str(m), a.isoformat()) for n, m, a in rows]
        finally:
            await db.dispose()

    return run_async(read)


def map_the_unknown_column(page: Page, header: str) -> None:
    """The mapping step: the unknown column is skipped, the preview shown again, then imported."""
    expect(page.locator("#h-mapping")).to_be_visible()
    expect(page.locator(".mapping .banner")).to_contain_text(header)
    page.get_by_label(header, exact=True).select_option("skip")
    page.locator("button[value=preview]").click()
    expect(page.locator("#h-mapping")).to_be_visible()
    expect(page.locator(".mapping .banner")).to_have_count(0)
    page.locator(".mapping input[name=dry_run]").uncheck()
    page.locator("button[value=run]").click()


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width} px)"


def test_a_harbour_master_imports_an_xlsx_and_a_dutch_csv_through_the_mapping_step(
    server: LiveServer, new_context: Callable[..., BrowserContext], tmp_path: Path
) -> None:
    slug = server.new_point("marina").site_slug
    harbour_master = server.new_staff("harbour_master", [slug])
    page = new_context(bypass_csp=True, **PHONE).new_page()  # for axe-core below
    sign_in_as(page, server, harbour_master)

    # The Dutch CSV: Windows-1252, decimal commas, one column nobody recognises.
    page.goto(server.url(f"/admin/sites/{slug}/import?lang=en"))
    page.locator("#i-file").set_input_files(str(dutch_csv(tmp_path / "seizoen.csv")))
    page.locator("input[name=dry_run]").uncheck()
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".mapping .banner")).to_contain_text("Kleur romp")
    preview = page.locator("table.preview")
    expect(preview).to_contain_text("Zoë Jansen")
    expect(preview).to_contain_text("2025-06-01 14:00")  # a date alone: the usual arrival hour
    expect(preview).to_contain_text("9.5")
    no_sideways_scroll(page)
    violations = [v for v in run_axe(page) if v["impact"] in BLOCKING_IMPACTS]
    assert violations == [], describe(violations)
    map_the_unknown_column(page, "Kleur romp")
    expect(page.locator("#h-report")).to_have_text("Imported")
    expect(page.locator(".report [role=status]")).to_contain_text("2 visits imported")

    # The .xlsx: its first sheet, a date cell without a time, one unknown column.
    page.goto(server.url(f"/admin/sites/{slug}/import"))
    page.locator("#i-file").set_input_files(str(workbook(tmp_path / "seizoen.xlsx")))
    page.locator("input[name=dry_run]").uncheck()
    page.get_by_role("button", name="Upload").click()
    map_the_unknown_column(page, "Betaald")
    expect(page.locator(".report [role=status]")).to_contain_text("1 visit imported")
    no_sideways_scroll(page)

    assert stored_names(server, slug) == [
        ("Zoë Jansen", "9.5", "2025-06-01T12:00:00+00:00"),
        ("Piet Smit", "12.3", "2025-06-02T14:45:00+00:00"),
        ("Anna Bakker", None, "2025-07-01T13:30:00+00:00"),
    ]

    # The same CSV again: the remembered mapping needs no step, and nothing is imported twice.
    page.goto(server.url(f"/admin/sites/{slug}/import"))
    page.locator("#i-file").set_input_files(str(tmp_path / "seizoen.csv"))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#h-report")).to_have_text(
        "Everything in this file is in the register already"
    )
    expect(page.locator(".report [role=status]")).to_contain_text("2 already in the register")
