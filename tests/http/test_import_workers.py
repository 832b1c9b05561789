"""A large import file is read and checked by worker processes; what it imports stays the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import Visit
from nightreg.services import register_import
from tests.factories import NOW, add_visit, events, new_site, staff
from tests.http.test_transfer import count, sheet


def good_row(i: int) -> str:
    return f"vessel;01-06-2026 14:{i % 60:02d};02-06-2026 12:00;;2;Jan {i};Hoorn;Eend;NL-{i}-AB"


@pytest.fixture
def in_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file goes to two worker processes, in chunks of three rows."""
    monkeypatch.setattr(register_import, "PROCESS_MIN_BYTES", 0)
    monkeypatch.setattr(register_import, "PROCESS_BATCH_SIZE", 3)
    monkeypatch.setattr(register_import, "MAX_WORKERS", 2)
    monkeypatch.setattr(register_import.os, "cpu_count", lambda: 2)


async def import_file(db: Database, site, path: Path, **options) -> register_import.ImportReport:
    with path.open("rb") as stream:
        return await register_import.import_register(
            db, staff("harbour_master", site), site.id, stream, filename=path.name, now=NOW,
            **options,
        )  # fmt: skip


@pytest.mark.usefixtures("in_workers")
async def test_a_file_read_by_worker_processes_is_checked_then_imported_in_its_order(
    db: Database, tmp_path: Path
):
    site = await new_site(db)
    path = tmp_path / "seizoen.csv"
    rows = [good_row(i) for i in range(10)]
    path.write_bytes(sheet(*rows[:4], "", *rows[4:], rows[0]))  # an empty row; one row twice

    checked = await import_file(db, site, path, dry_run=True)
    assert (checked.ok, checked.rows, checked.new, checked.existing) == (True, 11, 10, 1)
    assert await count(db, site) == 0

    imported = await import_file(db, site, path)
    assert (imported.rows, imported.new, imported.existing, imported.imported) == (11, 10, 1, 10)
    async with db.read() as session:
        names = list(
            await session.scalars(
                select(Visit.guest_name).where(Visit.site_id == site.id).order_by(Visit.id)
            )
        )
    assert names == [f"Jan {i}" for i in range(10)]
    assert len(await events(db, "register_imported", site)) == 1

    again = await import_file(db, site, path)
    assert (again.new, again.existing, again.imported) == (0, 11, 0)


@pytest.mark.usefixtures("in_workers")
async def test_bad_rows_checked_by_worker_processes_are_reported_by_line_and_nothing_is_written(
    db: Database, tmp_path: Path
):
    site = await new_site(db)
    path = tmp_path / "fout.csv"
    bad = "vessel;01-06-2026 14:00;;;2;Jan;Hoorn;Eend;NL-1-AB"  # no departure
    path.write_bytes(sheet(*(good_row(i) for i in range(7)), bad, good_row(8), bad))

    report = await import_file(db, site, path)

    assert (report.rows, report.bad_rows, report.imported) == (10, 2, 0)
    assert [(e.line, sorted(e.errors)) for e in report.errors] == [
        (9, ["expected_departure_at"]),
        (11, ["expected_departure_at"]),
    ]
    assert await count(db, site) == 0
    assert await events(db, "register_imported", site) == []


@pytest.mark.usefixtures("in_workers")
async def test_a_file_that_cannot_be_read_in_a_worker_process_is_refused(
    db: Database, tmp_path: Path
):
    site = await new_site(db)
    path = tmp_path / "kapot.csv"
    path.write_bytes(sheet(good_row(1), good_row(2) + "x" * 200_000))  # a cell beyond csv's limit

    with pytest.raises(register_import.ImportFileError):
        await import_file(db, site, path)
    assert await count(db, site) == 0


async def test_a_drawn_reference_the_register_holds_already_is_drawn_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    other = await new_site(db)
    taken = (await add_visit(db, other)).reference
    draws = register_import._new_references

    def clashing(count: int):
        monkeypatch.setattr(register_import, "_new_references", draws)
        yield taken
        yield from draws(count - 1)

    monkeypatch.setattr(register_import, "_new_references", clashing)
    site = await new_site(db)
    report = await register_import.import_register(
        db, staff("harbour_master", site), site.id, sheet(good_row(1), good_row(2)),
        filename="s.csv", now=NOW,
    )  # fmt: skip

    assert (report.ok, report.imported) == (True, 2)
    async with db.read() as session:
        references = set(
            await session.scalars(select(Visit.reference).where(Visit.site_id == site.id))
        )
    assert len(references) == 2
    assert taken not in references


@pytest.mark.usefixtures("in_workers")
async def test_a_column_empty_in_one_chunk_and_filled_in_the_next_is_stored_as_each_row_says(
    db: Database, tmp_path: Path
):
    # Chunks of three rows: the departure is empty in the whole first chunk (the SQLite insert
    # leaves such a column out of its statement), in one row of the second, in none of the third.
    site = await new_site(db)
    path = tmp_path / "vertrek.csv"
    departed = ["", "", "", "02-06-2026 11:00", "", "02-06-2026 10:00"]
    departed += ["02-06-2026 09:00"] * 3
    rows = [
        f"vessel;01-06-2026 14:{i:02d};02-06-2026 12:00;{gone};2;Jan {i};Hoorn;Eend;NL-{i}-AB"
        for i, gone in enumerate(departed)
    ]
    path.write_bytes(sheet(*rows))

    report = await import_file(db, site, path)

    assert (report.ok, report.imported) == (True, 9)
    async with db.read() as session:
        stored = list(
            await session.execute(
                select(Visit.guest_name, Visit.departed_at)
                .where(Visit.site_id == site.id)
                .order_by(Visit.id)
            )
        )
    assert [name for name, _ in stored] == [f"Jan {i}" for i in range(9)]
    assert [gone is None for _, gone in stored] == [text == "" for text in departed]


@pytest.mark.usefixtures("in_workers")
async def test_past_the_rows_an_import_remembers_it_goes_on_batch_by_batch_and_still_finds_repeats(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Chunks of three rows; after four remembered rows the import stops overlapping its
    # batches. The first rows come back at the end, long after that.
    monkeypatch.setattr(register_import, "OVERLAP_MAX_ROWS", 4)
    site = await new_site(db)
    path = tmp_path / "lang.csv"
    rows = [good_row(i) for i in range(12)]
    path.write_bytes(sheet(*rows, rows[0], rows[1], rows[10]))

    imported = await import_file(db, site, path)

    assert (imported.rows, imported.new, imported.existing, imported.imported) == (15, 12, 3, 12)
    assert await count(db, site) == 12
