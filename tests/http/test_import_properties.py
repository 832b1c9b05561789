"""Property tests of the CSV import and export (hypothesis): random rows are either all imported
exactly as written (after the documented cleaning) or all refused with a line and a field; the
import page never fails and never shows markup from the file; and an export never hands a
spreadsheet a cell it would run as a formula, yet reads back to the very same values."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import Visit
from nightreg.security import new_reference
from nightreg.services import register_import, sites, transfer
from nightreg.services.access import CLI
from nightreg.validation import MAX_LENGTHS, clean_text
from tests.factories import PointRef, make_point, make_staff
from tests.pages import blocked_by_policy, sign_in

Client = AsyncTestClient[Litestar]
MAX_EXAMPLES = 30

# What a spreadsheet runs: a cell that starts with one of these, unless it is only a signed
# number such as a phone number (OWASP's CSV injection advice, and LibreOffice's behaviour).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SIGNED_NUMBER = re.compile(r"[+\-][0-9 ()\-]*")

COLUMNS = (
    "reference", "kind", "source", "arrived_at", "expected_departure_at", "departed_at",
    "persons", "guest_name", "residence", "country", "phone", "email", "berth",
    "vessel_name", "registration", "last_port", "next_port", "notes",
)  # fmt: skip
VALID = {
    "kind": "vessel",
    "source": "staff",
    "arrived_at": "2026-07-10T20:45:00+02:00",
    "expected_departure_at": "12-07-2026 11:00",
    "departed_at": "2026-07-12T10:30:00+02:00",
    "persons": "2",
    "guest_name": "Jan de Vries",
    "residence": "Hoorn",
    "country": "NL",
    "phone": "+31 6 1234 5678",
    "email": "jan@example.org",
    "berth": "B12",
    "vessel_name": "Zeemeeuw",
    "registration": "NL-123-AB",
    "last_port": "Den Helder",
    "next_port": "Harlingen",
    "notes": "Betaald",
}
FREE_TEXT = ("guest_name", "residence", "berth", "vessel_name", "last_port", "next_port")

HOSTILE = [
    "=1+1",
    '=HYPERLINK("http://evil.example","klik")',
    "+31 6 1234 5678",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=cmd|' /C calc'!A0",
    "\r=1",
    "'=already escaped",
    "''=twice",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    'quote " and ; and , and \n newline',
    "Zoë Ångström 李小龙 🚤",
    "\x00NUL",
    "x" * 150,
]
text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(FORMULA_START).flatmap(
        lambda c: st.text(alphabet=st.characters(codec="utf-8"), max_size=20).map(lambda s: c + s)
    ),
)


@st.composite
def row(draw: st.DrawFn) -> dict[str, str]:
    """A valid row with up to three cells replaced; free text in two rows out of three."""
    values = dict(VALID)
    fields = draw(st.sampled_from([FREE_TEXT, FREE_TEXT, tuple(VALID)]))
    for name in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)):
        values[name] = draw(text)
    return values


def csv_file(rows: list[dict[str, str]], delimiter: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for values in rows:
        writer.writerow([values.get(c, "") for c in COLUMNS])
    return buffer.getvalue().encode("utf-8")


def runs_as_formula(cell: str) -> bool:
    return cell.startswith(FORMULA_START) and _SIGNED_NUMBER.fullmatch(cell) is None


def expected(name: str, written: str) -> str | None:
    """What the register holds for a cell: the export's apostrophe off, then clean_text."""
    value = transfer.unescape_cell(written)
    cleaned = clean_text(value, MAX_LENGTHS[name], multiline=name == "notes")
    return cleaned or None


async def visits_by_reference(db: Database, references: list[str]) -> dict[str, Visit]:
    async with db.read() as session:
        found = await session.scalars(select(Visit).where(Visit.reference.in_(references)))
        return {v.reference: v for v in found}


async def export_cells(db: Database, site_id: int, clock: FrozenClock) -> list[dict[str, str]]:
    chunks = transfer.export_register(
        db, CLI, site_id, date_from=None, date_to=None, fmt="csv", delimiter=";",
        now=clock.now(),
    )  # fmt: skip
    data = b"".join([chunk async for chunk in chunks]).decode("utf-8").lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(data, newline=""), delimiter=";"))


@pytest.fixture
def import_site(db: Database) -> Any:
    """A marina to import into (one per test, made on first use)."""
    made: list[tuple[PointRef, int]] = []

    async def site() -> tuple[PointRef, int]:
        if not made:
            point = await make_point(db)
            made.append((point, (await sites.get_site(db, point.site_slug)).id))
        return made[0]

    return site


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(row(), min_size=1, max_size=4), delimiter=st.sampled_from([",", ";"]))
async def test_random_rows_are_imported_exactly_or_refused_at_a_line_and_field(
    db: Database, clock: FrozenClock, import_site: Any, rows: list[dict[str, str]], delimiter: str
) -> None:
    _point, site_id = await import_site()
    references = [new_reference() for _ in rows]
    for values, reference in zip(rows, references, strict=True):
        values["reference"] = reference
        if values["registration"] == VALID["registration"]:
            # Another boat in each row and example: the same boat arriving in the same minute
            # is already in the register, and is not imported again.
            values["registration"] = f"NL-{reference}"
    data = csv_file(rows, delimiter)
    try:
        report = await register_import.import_register(
            db, CLI, site_id, data, filename="register.csv", now=clock.now()
        )
    except register_import.ImportFileError as exc:
        refused: str | None = str(exc)
    else:
        refused = None
    if refused is not None:
        # A file the CSV reader cannot take apart (a NUL byte): refused whole, with the line.
        assert re.match(r"row \d+: ", refused), refused
        assert await visits_by_reference(db, references) == {}
        return

    stored = await visits_by_reference(db, references)
    if not report.ok:
        assert report.imported == 0
        assert stored == {}
        assert report.errors
        # A quoted cell may hold line breaks: the report counts the file's lines, not rows.
        last_line = len(data.decode("utf-8").splitlines())
        for error in report.errors:
            assert 2 <= error.line <= last_line
            assert error.errors
            assert set(error.errors) <= set(COLUMNS) | {""}
        return

    # Rows that repeat a boat and arrival minute of the file (random cells can) count once.
    assert report.imported == report.new == len(stored)
    assert report.new + report.existing == len(rows)
    assert set(stored) <= set(references)
    for values in rows:
        if values["reference"] not in stored:
            continue
        visit = stored[values["reference"]]
        for name in (*FREE_TEXT, "notes"):
            assert getattr(visit, name) == expected(name, values[name]), name

    # The export: no cell a spreadsheet would run, and each cell reads back to what is stored.
    exported = {r["reference"]: r for r in await export_cells(db, site_id, clock)}
    for record in exported.values():
        for column, cell in record.items():
            assert not runs_as_formula(cell), (column, cell)
    for reference, visit in stored.items():
        for name in (*FREE_TEXT, "notes"):
            cell = exported[reference][name]
            assert (transfer.unescape_cell(cell) or None) == getattr(visit, name), name


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(row(), min_size=1, max_size=3), dry_run=st.booleans())
async def test_the_import_page_answers_any_file_without_failing_or_echoing_markup(
    client: Client, db: Database, import_site: Any, staff: Any, rows: list[dict[str, str]],
    dry_run: bool,
) -> None:  # fmt: skip
    point, _site_id = await import_site()
    await staff(point)
    for values in rows:
        values["reference"] = new_reference()
    data = csv_file(rows, ",")
    page = await client.get(f"/admin/sites/{point.site_slug}/import")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {"_csrf_token": token.group(1)}
    if dry_run:
        form["dry_run"] = "on"
    answer = await client.post(
        f"/admin/sites/{point.site_slug}/import",
        data=form,
        files={"file": ("register <b>.csv", data, "text/csv")},
    )
    assert answer.status_code in (200, 400), answer.status_code
    assert blocked_by_policy(answer.text) == []
    assert "<b>" not in answer.text
    for values in rows:
        for value in values.values():
            if "<" in value and len(value) > 3:
                assert value not in answer.text


@pytest.fixture
def staff(client: Client, db: Database) -> Any:
    """Sign the client in once per test as a harbour master of the import's site."""
    done: list[bool] = []

    async def signed_in(point: PointRef) -> None:
        if not done:
            ref = await make_staff(db, "harbour_master", [point.site_slug])
            await sign_in(client, ref.email, ref.password)
            done.append(True)

    return signed_in
