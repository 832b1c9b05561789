"""Information pictures through HTTP and their service: who sees which sites, the numbers on
the page and in the CSV files, small counts hidden, escaping, and no personal data anywhere."""

from __future__ import annotations

import csv
import io
import json
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import insert, select

from nightreg.db import Database
from nightreg.models import AuditEvent, Flag, Signal, Site, Visit, flag_visit
from nightreg.services import insight
from nightreg.services import sites as site_service
from nightreg.services.insight import ArrivalCount, FlagCount
from tests.factories import SUMMER_EVENING, StaffRef, add_visit, make_staff, staff, unique_slug
from tests.pages import sign_in

Client = AsyncTestClient[Litestar]
# A period of four weeks nobody else's test writes into (tests share one database), so that
# "every site" holds only the sites made here. The clocks go forward on its last Sunday.
FROM, TO = date(2031, 3, 3), date(2031, 3, 30)
PERIOD = f"from={FROM.isoformat()}&to={TO.isoformat()}"
WEEK_1, WEEK_2, WEEK_3, WEEK_4 = (FROM + timedelta(weeks=n) for n in range(4))
TUESDAY_NIGHT = datetime(2031, 3, 4, 21, 30, tzinfo=UTC)  # Tuesday 22:30 in Amsterdam
CSV_PATHS = ("flags", "arrivals", "signals", "shared")


# --- data -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def threshold_of_these_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """These tests were written with small numbers and the threshold of shared subjects (3);
    issue 17 (finding 11c) raised it to 5 for every cell, which the tests marked
    `real_threshold` show."""
    if request.node.get_closest_marker("real_threshold"):
        return
    # The tests of counting itself (marked `counts_only`) see every count as it is.
    below = 1 if request.node.get_closest_marker("counts_only") else 3
    monkeypatch.setattr(insight, "SUPPRESS_BELOW", below)
    monkeypatch.setattr(insight, "SUPPRESSED", f"<{below}")


async def new_site(db: Database, name: str = "", timezone: str = "Europe/Amsterdam") -> Site:
    slug = unique_slug("insight")
    await site_service.create_site(
        db,
        slug=slug,
        name=name or f"Jachthaven {slug[-4:]}",
        kind="marina",
        now=SUMMER_EVENING,
        timezone=timezone,
    )
    return await site_service.get_site(db, slug)


async def add_flag(
    db: Database,
    site: Site,
    *,
    rule: str = "night_movement",
    start: datetime = TUESDAY_NIGHT,
    subject: str | None = None,
    visits: list[Visit] | tuple[Visit, ...] = (),
    restricted: bool = False,
) -> int:
    """A flag straight into its table, with its evidence visits."""
    subject = subject or f"reg:T{secrets.token_hex(4).upper()}"
    flag = Flag(
        site_id=site.id,
        rule=rule,
        subject=subject,
        dedupe_key=f"{rule}|{subject}|{uuid.uuid4()}",
        window_start=start,
        window_end=start + timedelta(hours=6),
        score=60,
        reason="A test flag.",
        status="open",
        restricted=restricted,
        created_at=start + timedelta(days=1),
        updated_at=start + timedelta(days=1),
    )
    async with db.write() as session:
        session.add(flag)
        await session.flush()
        if visits:
            await session.execute(
                insert(flag_visit), [{"flag_id": flag.id, "visit_id": v.id} for v in visits]
            )
        return flag.id


async def add_signal(
    db: Database, flag_id: int, site: Site, agreement_id: int, at: datetime, body: str = ""
) -> None:
    uid = str(uuid.uuid4())
    signal = Signal(
        uid=uid,
        flag_id=flag_id,
        agreement_id=agreement_id,
        site_id=site.id,
        rule="night_movement",
        body=body or json.dumps({"schema": "nightreg.signal/1", "id": uid}),
        status="pending",
        created_at=at,
        forwarded_by="test",
        attempts=0,
        next_attempt_at=at,
    )
    async with db.write() as session:
        session.add(signal)


async def hopper(
    db: Database, subject: str, *places: Site, start: datetime = TUESDAY_NIGHT
) -> None:
    """One site-hopping flag on `subject`, resting on a visit at each of `places`."""
    visits = [
        await add_visit(db, place, arrived=start + timedelta(hours=3 * i), registration=subject)
        for i, place in enumerate(places)
    ]
    await add_flag(db, places[-1], rule="site_hopping", start=start, subject=subject, visits=visits)


async def signed_in(client: Client, db: Database, role: str, *site_list: Site) -> StaffRef:
    client.cookies.clear()
    account = await make_staff(db, role, [s.slug for s in site_list])
    await sign_in(client, account.email, account.password)
    return account


async def events_of(db: Database, account: StaffRef) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.actor == f"user:{account.user_id} {account.email}")
                .order_by(AuditEvent.id)
            )
        )


# --- reading pages and files ----------------------------------------------------------------


class _Tables(HTMLParser):
    """Every <table> of a page by its caption: rows of cell texts (header cells included)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._caption: str | None = None
        self._rows: list[list[str]] | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._rows, self._caption = [], ""
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th", "caption") and self._rows is not None:
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._rows is not None and self._text is not None:
            self._rows[-1].append("".join(self._text).strip())
            self._text = None
        elif tag == "caption" and self._text is not None:
            self._caption = "".join(self._text).strip()
            self._text = None
        elif tag == "table" and self._rows is not None:
            self.tables[self._caption or ""] = self._rows
            self._rows = None


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def table_cells(table: list[list[str]]) -> dict[tuple[str, str], str]:
    """(row header, column header) -> cell text."""
    header = table[0]
    return {(row[0], header[i]): cell for row in table[1:] for i, cell in enumerate(row) if i}


def csv_rows(body: bytes) -> list[dict[str, str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    lines = [line for line in text[1:].splitlines(keepends=True) if not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("".join(lines))))


# --- who sees what ----------------------------------------------------------------------------


@pytest.mark.counts_only
async def test_an_analyst_sees_the_pictures_of_every_site(client: Client, db: Database):
    north, south = await new_site(db, "Haven Noord"), await new_site(db, "Haven Zuid")
    await add_visit(db, north, arrived=TUESDAY_NIGHT)
    await add_visit(db, south, arrived=TUESDAY_NIGHT + timedelta(days=7))
    await add_flag(db, north, rule="night_movement")
    await add_flag(db, south, rule="fast_craft_night", start=TUESDAY_NIGHT + timedelta(days=14))
    await signed_in(client, db, "analyst")  # assigned to no site at all

    page = await client.get(f"/admin/insight?{PERIOD}")

    assert page.status_code == 200
    assert "Haven Noord" in page.text
    assert "Haven Zuid" in page.text
    assert 'id="h-arrivals-1"' in page.text
    assert 'id="h-arrivals-2"' in page.text
    flags = table_cells(tables(page.text)["Flags per rule per week"])
    assert flags[("Night movements", "Total")] == "1"
    assert flags[("Fast craft at night", "Total")] == "1"
    assert page.text.count("<svg") == 3  # flags and two heat maps; no signals, no matrix
    assert "No signals were forwarded in this period." in page.text
    assert "No site-hopping flags in this period." in page.text


async def test_a_harbour_master_sees_only_the_sites_of_the_account(client: Client, db: Database):
    own, other = await new_site(db, "Eigen Haven"), await new_site(db, "Andermans Haven")
    await add_visit(db, own, arrived=TUESDAY_NIGHT)
    await add_visit(db, other, arrived=TUESDAY_NIGHT)
    await add_flag(db, other, rule="fast_craft_night")
    await signed_in(client, db, "harbour_master", own)

    page = await client.get(f"/admin/insight?{PERIOD}")
    refused = await client.get(f"/admin/insight?site={other.slug}&{PERIOD}")
    arrivals = await client.get(f"/admin/insight/arrivals.csv?{PERIOD}")
    flags = await client.get(f"/admin/insight/flags.csv?{PERIOD}")

    assert page.status_code == 200
    assert "Eigen Haven" in page.text
    assert "Andermans Haven" not in page.text
    assert other.slug not in page.text
    assert "No flags in this period." in page.text
    assert refused.status_code == 400
    assert 'id="err-site"' in refused.text
    assert "Please choose a site from the list." in refused.text
    assert {row["site"] for row in csv_rows(arrivals.content)} == {own.slug}
    assert csv_rows(flags.content) == []


async def test_an_auditor_may_not_see_the_pictures(client: Client, db: Database):
    await signed_in(client, db, "auditor")

    answers = [await client.get("/admin/insight")] + [
        await client.get(f"/admin/insight/{name}.csv") for name in CSV_PATHS
    ]

    assert [a.status_code for a in answers] == [403] * 5


@pytest.mark.counts_only
async def test_watchlist_hits_are_counted_for_analysts_only(client: Client, db: Database):
    site = await new_site(db)
    await add_flag(db, site, rule="watchlist_hit", restricted=True)
    query = f"site={site.slug}&{PERIOD}"

    await signed_in(client, db, "harbour_master", site)
    own = await client.get(f"/admin/insight/flags.csv?{query}")
    await signed_in(client, db, "analyst")
    hub = await client.get(f"/admin/insight/flags.csv?{query}")

    assert csv_rows(own.content) == []
    assert csv_rows(hub.content) == [{"week": str(WEEK_1), "rule": "watchlist_hit", "flags": "1"}]


@pytest.mark.real_threshold
async def test_a_count_of_one_is_shown_as_fewer_than_five_on_the_page_and_in_the_csv(
    client: Client, db: Database
):
    """Issue 17, finding 11c: the analyst's charts and CSVs showed cells with a count of 1."""
    site = await new_site(db)
    await add_flag(db, site, rule="watchlist_hit", restricted=True)
    await signed_in(client, db, "analyst")
    query = f"site={site.slug}&{PERIOD}"

    page = await client.get(f"/admin/insight?{query}")
    flags = await client.get(f"/admin/insight/flags.csv?{query}")

    assert csv_rows(flags.content) == [
        {"week": str(WEEK_1), "rule": "watchlist_hit", "flags": "<5"}
    ]
    assert flags.text.rstrip().splitlines()[-1].startswith("# Counts from 1 to 4 are shown as <5")
    assert "&lt;5" in page.text
    assert "as statistics offices do" in page.text
    assert "<td>1</td>" not in page.text


@pytest.mark.real_threshold
async def test_a_hidden_count_cannot_be_worked_out_from_its_rows_total_on_the_page_or_csv(
    client: Client, db: Database
):
    """Issue 17, finding 11c: 2, 6 and 9 flags in three weeks with the total 17 shown gave the
    hidden 2 away (17 - 6 - 9). The 6 is hidden too, on the page and in the CSV alike."""
    site = await new_site(db)
    for week, flags in enumerate((2, 6, 9)):
        for _ in range(flags):
            await add_flag(db, site, start=TUESDAY_NIGHT + timedelta(weeks=week))
    await signed_in(client, db, "analyst")
    query = f"site={site.slug}&{PERIOD}"

    page = await client.get(f"/admin/insight?{query}")
    flags = await client.get(f"/admin/insight/flags.csv?{query}")

    assert csv_rows(flags.content) == [
        {"week": str(WEEK_1), "rule": "night_movement", "flags": "<5"},
        {"week": str(WEEK_2), "rule": "night_movement", "flags": "x"},
        {"week": str(WEEK_3), "rule": "night_movement", "flags": "9"},
    ]
    assert "shown as x" in flags.text.rstrip().splitlines()[-1]
    header, row = tables(page.text)["Flags per rule per week"]
    assert row[1:] == ["<5", "x", "9", "0", "17"]
    assert header[-1] == "Total"
    assert "shown as “x”" in page.text


# --- the numbers ------------------------------------------------------------------------------


@pytest.mark.counts_only
async def test_the_csv_files_hold_the_numbers_the_page_shows(
    client: Client, db: Database, make_agreement: Any
):
    site = await new_site(db, "Haven Telling")
    agreement_id = await make_agreement()
    for days in (0, 0, 1, 7, 21):
        await add_visit(db, site, arrived=TUESDAY_NIGHT + timedelta(days=days))
    for days, rule in ((0, "night_movement"), (7, "night_movement"), (8, "site_hopping")):
        flag_id = await add_flag(db, site, rule=rule, start=TUESDAY_NIGHT + timedelta(days=days))
        await add_signal(db, flag_id, site, agreement_id, TUESDAY_NIGHT + timedelta(days=days))
    await signed_in(client, db, "analyst")
    query = f"site={site.slug}&{PERIOD}"

    page = await client.get(f"/admin/insight?{query}")
    files = {name: await client.get(f"/admin/insight/{name}.csv?{query}") for name in CSV_PATHS}

    assert page.status_code == 200
    shown = tables(page.text)
    assert all(f.status_code == 200 for f in files.values())
    assert files["flags"].headers["content-type"].startswith("text/csv")
    assert (
        f"insight-flags-{site.slug}-2031-03-03-2031-03-30.csv"
        in (files["flags"].headers["content-disposition"])
    )
    # Flags: per rule and week, as in the table (whose columns are the weeks, then the total).
    flag_table = shown["Flags per rule per week"]
    weeks = flag_table[0][1:-1]
    assert len(weeks) == 4
    from_csv = {(r["rule"], r["week"]): int(r["flags"]) for r in csv_rows(files["flags"].content)}
    assert from_csv == {
        ("night_movement", str(WEEK_1)): 1,
        ("night_movement", str(WEEK_2)): 1,
        ("site_hopping", str(WEEK_2)): 1,
    }
    by_rule = {row[0]: row[1:] for row in flag_table[1:]}
    assert by_rule["Night movements"] == ["1", "1", "0", "0", "2"]
    assert by_rule["Site hopping"] == ["0", "1", "0", "0", "1"]
    # Arrivals: Tuesday 22:00 twice in week 1, once in week 2 and in week 4; Wednesday once.
    arrival_table = table_cells(shown["Arrivals at Haven Telling by weekday and hour"])
    from_csv_arrivals = {
        (int(r["weekday"]), int(r["hour"])): int(r["arrivals"])
        for r in csv_rows(files["arrivals"].content)
    }
    assert from_csv_arrivals == {(2, 22): 4, (3, 22): 1}
    assert arrival_table[("Tuesday", "22")] == "4"
    assert arrival_table[("Wednesday", "22")] == "1"
    assert arrival_table[("Tuesday", "Total")] == "4"
    assert sum(int(v) for (_r, c), v in arrival_table.items() if c == "Total") == 5
    # Signals: per week of forwarding at the site.
    signal_table = shown["Forwarded signals per site per week"]
    assert signal_table[1] == ["Haven Telling", "1", "2", "0", "0", "3"]
    assert [(r["week"], r["site"], r["signals"]) for r in csv_rows(files["signals"].content)] == [
        (str(WEEK_1), site.slug, "1"),
        (str(WEEK_2), site.slug, "2"),
    ]
    # The picture names its numbers in words too.
    assert "3 flags in the period; most often: Night movements (2)." in page.text
    assert "5 arrivals in the period (Europe/Amsterdam time)" in page.text


async def test_the_default_period_is_this_week_and_the_eleven_before_it(
    client: Client, db: Database
):
    site = await new_site(db)
    account = await signed_in(client, db, "harbour_master", site)

    page = await client.get("/admin/insight")

    # The test clock stands at Tuesday 14 July 2026; its week began on Monday 13 July.
    assert page.status_code == 200
    assert 'name="from" type="date" value="2026-04-27"' in page.text
    assert 'name="to" type="date" value="2026-07-14"' in page.text
    event = (await events_of(db, account))[-1]
    assert event.action == "insight_viewed"
    assert json.loads(event.details) == {"site": None, "from": "2026-04-27", "to": "2026-07-14"}


async def test_every_page_view_and_download_is_in_the_audit_trail(client: Client, db: Database):
    site = await new_site(db)
    account = await signed_in(client, db, "security", site)
    query = f"site={site.slug}&{PERIOD}"

    await client.get(f"/admin/insight?{query}")
    await client.get(f"/admin/insight/signals.csv?{query}")

    events = (await events_of(db, account))[-2:]
    assert [e.action for e in events] == ["insight_viewed", "insight_exported"]
    assert [e.site_id for e in events] == [site.id, site.id]
    assert json.loads(events[-1].details) == {
        "site": site.slug,
        "from": "2031-03-03",
        "to": "2031-03-30",
        "chart": "signals",
    }


async def test_bad_filters_come_back_with_a_message_next_to_the_field(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "harbour_master", site)

    bad_date = await client.get("/admin/insight?from=2031-02-30")
    backwards = await client.get("/admin/insight?from=2031-03-30&to=2031-03-03")
    too_long = await client.get("/admin/insight?from=2029-01-01&to=2031-03-03")
    bad_csv = await client.get("/admin/insight/flags.csv?to=yesterday")
    far_off = await client.get("/admin/insight?to=1950-01-01")

    assert bad_date.status_code == 400
    assert 'id="err-from"' in bad_date.text
    assert "Please enter a date like" in bad_date.text
    assert 'value="2031-02-30"' in bad_date.text  # what was typed is kept
    assert backwards.status_code == 400
    assert 'id="err-to"' in backwards.text
    assert "The first date must not be after the second." in backwards.text
    assert too_long.status_code == 400
    assert "Please choose a period of at most a year." in too_long.text
    assert bad_csv.status_code == 400
    assert 'id="err-to"' in bad_csv.text
    assert far_off.status_code == 400
    assert "Please enter a date between 2000 and 2099." in far_off.text
    assert "<svg" not in bad_date.text


# --- site hopping: shared subjects, small counts hidden ----------------------------------------


async def test_sites_sharing_fewer_than_three_subjects_show_a_hidden_count(
    client: Client, db: Database
):
    a, b, c = [await new_site(db, f"Haven {n}") for n in "ABC"]
    for n in range(3):
        await hopper(db, f"NL-HOP-{n}{secrets.token_hex(2)}", a, b)
    await hopper(db, f"NL-ONE-{secrets.token_hex(2)}", a, c)
    await signed_in(client, db, "analyst")

    page = await client.get(f"/admin/insight?{PERIOD}")
    shared = await client.get(f"/admin/insight/shared.csv?{PERIOD}")

    matrix = table_cells(tables(page.text)["Sites that share subjects (site hopping)"])
    assert matrix[("Haven A", "Haven B")] == "3"
    assert matrix[("Haven B", "Haven A")] == "3"
    assert matrix[("Haven A", "Haven C")] == "<3"
    assert matrix[("Haven B", "Haven C")] == "0"
    assert matrix[("Haven A", "Haven A")] == "4"  # four subjects flagged with visits at A
    assert matrix[("Haven C", "Haven C")] == "<3"
    rows = {(r["site_a_name"], r["site_b_name"]): r["subjects"] for r in csv_rows(shared.content)}
    assert rows[("Haven A", "Haven B")] == "3"
    assert rows[("Haven A", "Haven C")] == "<3"
    assert ("Haven B", "Haven C") not in rows
    assert "&lt;3" in page.text.split('id="chart-shared-', 1)[0] or "&lt;3</text>" in page.text
    assert "so that no number points at a single boat or car" in page.text


async def test_a_chosen_site_is_paired_with_every_other_site(client: Client, db: Database):
    a, b, c = [await new_site(db, f"Haven {n}") for n in "DEF"]
    for n in range(3):
        await hopper(db, f"NL-DE-{n}{secrets.token_hex(2)}", a, b)
        await hopper(db, f"NL-EF-{n}{secrets.token_hex(2)}", b, c)
    await signed_in(client, db, "analyst")

    page = await client.get(f"/admin/insight?site={a.slug}&{PERIOD}")

    matrix = tables(page.text)["Sites that share subjects (site hopping)"]
    assert [row[0] for row in matrix[1:]] == ["Haven D"]
    assert table_cells(matrix)[("Haven D", "Haven E")] == "3"
    assert "Haven F" not in matrix[0]  # E and F share subjects, but not with D


async def test_a_harbour_master_sees_shared_subjects_only_between_own_sites(
    client: Client, db: Database
):
    a, b, stranger = [await new_site(db, f"Haven {n}") for n in "GHI"]
    for n in range(3):
        await hopper(db, f"NL-GH-{n}{secrets.token_hex(2)}", a, b, stranger)
    await signed_in(client, db, "harbour_master", a, b)

    answer = await client.get(f"/admin/insight/shared.csv?{PERIOD}")

    pairs = {(r["site_a_name"], r["site_b_name"]) for r in csv_rows(answer.content)}
    assert pairs == {("Haven G", "Haven G"), ("Haven H", "Haven H"), ("Haven G", "Haven H")}


# --- no personal data, and nothing a name can inject ----------------------------------------------


async def test_no_name_plate_or_registration_appears_in_any_page_or_file(
    client: Client, db: Database, make_agreement: Any
):
    site, other = await new_site(db), await new_site(db)
    secrets_planted: dict[str, Any] = {
        "guest_name": "Wilhelmina Zonderland-Pietersz",
        "residence": "Xanadu-aan-Zee",
        "vessel_name": "Geheimzinnige Vlucht",
        "registration": "NL-ZQX-987",
        "mmsi": "244999871",
    }
    boat = await add_visit(db, site, arrived=TUESDAY_NIGHT, **secrets_planted)
    car = await add_visit(
        db, other, kind="vehicle", arrived=TUESDAY_NIGHT, plate="ZX-999-Q",
        guest_name="Wilhelmina Zonderland-Pietersz", residence="Xanadu-aan-Zee",
    )  # fmt: skip
    for n in range(3):
        await add_flag(db, site, rule="site_hopping", subject=f"reg:NLZQX98{n}", visits=[boat, car])
    flag_id = await add_flag(db, site, subject="reg:NLZQX987", visits=[boat])
    body = json.dumps({"visits": [{**secrets_planted, "plate": "ZX-999-Q"}]})
    await add_signal(db, flag_id, site, await make_agreement(), TUESDAY_NIGHT, body=body)
    forbidden = [*secrets_planted.values(), "ZX-999-Q", "NLZQX98", "ZX999Q", boat.reference]

    answers = []
    for role, sites in (("analyst", ()), ("harbour_master", (site, other))):
        await signed_in(client, db, role, *sites)
        answers.append(await client.get(f"/admin/insight?{PERIOD}"))
        answers.append(await client.get(f"/admin/insight?site={site.slug}&{PERIOD}"))
        for name in CSV_PATHS:
            answers.append(await client.get(f"/admin/insight/{name}.csv?{PERIOD}"))

    assert all(a.status_code == 200 for a in answers)
    assert "<svg" in answers[0].text  # the pictures were drawn from these very visits
    for answer in answers:
        text = answer.content.decode("utf-8").casefold()
        for value in forbidden:
            assert value.casefold() not in text, (value, answer.url)


async def test_a_site_named_like_markup_is_shown_as_text_in_the_charts(
    client: Client, db: Database
):
    site = await new_site(db, '<script>alert("x")</script> $\\frac{1}{2}$')
    await add_visit(db, site, arrived=TUESDAY_NIGHT)
    await signed_in(client, db, "harbour_master", site)

    page = await client.get(f"/admin/insight?{PERIOD}")

    assert page.status_code == 200
    assert "<script>alert" not in page.text
    svg = page.text[page.text.index('<svg xmlns="http://www.w3.org/2000/svg"') :]
    svg = svg[: svg.index("</svg>")]
    assert "&lt;script&gt;alert(" in svg  # the heat map's title, escaped by the SVG writer
    assert "$\\frac{1}{2}$" in svg  # no TeX: the name as it was typed


async def test_a_site_name_that_looks_like_a_formula_is_escaped_in_the_csv(
    client: Client, db: Database
):
    site = await new_site(db, '=HYPERLINK("http://x.example")')
    await add_visit(db, site, arrived=TUESDAY_NIGHT)
    await signed_in(client, db, "harbour_master", site)

    answer = await client.get(f"/admin/insight/arrivals.csv?{PERIOD}")

    [row] = csv_rows(answer.content)
    assert row["site_name"] == '\'=HYPERLINK("http://x.example")'


# --- the service on the clock of each site ----------------------------------------------------


async def test_arrivals_are_counted_in_the_hour_of_the_sites_own_clock(db: Database):
    amsterdam = await new_site(db, timezone="Europe/Amsterdam")
    new_york = await new_site(db, timezone="America/New_York")
    # The night the clocks go back in Europe: 02:30 happens twice in Amsterdam.
    for at in ("2026-10-25T00:30:00", "2026-10-25T01:30:00", "2026-10-24T23:30:00"):
        await add_visit(db, amsterdam, arrived=datetime.fromisoformat(at).replace(tzinfo=UTC))
    await add_visit(db, new_york, arrived=datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    analyst = staff("analyst")
    sites = [
        s for s in await insight.visible_sites(db, analyst) if s.id in (amsterdam.id, new_york.id)
    ]
    filters = insight.choose(
        sites, slug=None, date_from=date(2026, 10, 24), date_to=date(2026, 10, 25)
    )

    rows = await insight.arrivals_by_hour(db, analyst, filters)

    assert rows == [
        ArrivalCount(amsterdam.id, 6, 1, 1),  # Sunday 01:30 summer time
        ArrivalCount(amsterdam.id, 6, 2, 2),  # Sunday 02:30, summer and winter time
        ArrivalCount(new_york.id, 5, 21, 1),  # Saturday 21:30 in New York
    ]


async def test_a_flag_on_sunday_night_after_the_clocks_went_back_counts_in_its_own_week(
    db: Database,
):
    site = await new_site(db)
    await add_flag(db, site, start=datetime(2026, 10, 25, 22, 59, tzinfo=UTC))  # Sun 23:59
    await add_flag(db, site, start=datetime(2026, 10, 25, 23, 0, tzinfo=UTC))  # Mon 00:00
    actor = staff("harbour_master", site)
    sites = await insight.visible_sites(db, actor)
    filters = insight.choose(
        sites, slug=site.slug, date_from=date(2026, 10, 19), date_to=date(2026, 11, 1)
    )

    rows = await insight.flags_per_week(db, actor, filters)

    assert rows == [
        FlagCount(date(2026, 10, 19), "night_movement", 1),
        FlagCount(date(2026, 10, 26), "night_movement", 1),
    ]


async def test_flags_outside_the_period_on_the_sites_clock_are_not_counted(db: Database):
    site = await new_site(db)
    await add_flag(db, site, start=datetime(2031, 3, 2, 22, 59, tzinfo=UTC))  # Sun 23:59
    await add_flag(db, site, start=datetime(2031, 3, 2, 23, 0, tzinfo=UTC))  # Mon 00:00
    actor = staff("harbour_master", site)
    filters = insight.choose(
        await insight.visible_sites(db, actor), slug=None, date_from=FROM, date_to=TO
    )

    assert await insight.flags_per_week(db, actor, filters) == [
        FlagCount(WEEK_1, "night_movement", 1)
    ]
