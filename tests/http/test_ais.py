"""AIS at a marina, with the database: the admin's switch (which needs the DPIA reference) and
harbour area, a replayed log becoming entries and exits matched to visits, a night trip the
register missed raising night_movement, Tonight's "on AIS, not in the register", the purge of
unmatched movements, and the listener (UDP and TCP) surviving garbage and a restarted source."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import AisMovement, AuditEvent, Flag, LegalHold, Site
from nightreg.services import retention
from nightreg.services.access import CLI
from nightreg.services.ais.harbour import change_ais
from nightreg.services.ais.listen import AisError, Feed, Source, listen, replay
from nightreg.services.scan import run_scan
from nightreg.settings import Settings
from tests.ais_sentences import (
    CENTRE,
    RADIUS_M,
    at_distance,
    at_offset,
    l_corners,
    l_geojson,
    l_polygon_text,
)
from tests.factories import add_visit, events, new_site
from tests.pages import run, signed_in

Client = AsyncTestClient[Litestar]
BOAT = "244123456"
STRANGER = "244999001"


def ts(text: str) -> float:
    """A UTC time written as 2026-07-14T18:00, as seconds since the epoch."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def passage(mmsi: str, distances: list[float], start: float, step: float = 30) -> list[bytes]:
    return [
        at_distance(int(mmsi), metres, start + i * step).encode()
        for i, metres in enumerate(distances)
    ]


IN = [1500, 800, 400, 100, 0, 0, 0]  # from outside to the berth
OUT = [0, 100, 500, 900, 1500, 2500, 3000]  # from the berth to sea


async def ais_marina(db: Database) -> Site:
    site = await new_site(db)
    await change_ais(
        db,
        CLI,
        site.slug,
        enabled=True,
        dpia_reference="DPIA-2026-07",
        lat=CENTRE[0],
        lon=CENTRE[1],
        radius_m=RADIUS_M,
        now=datetime.now(UTC),
    )
    return site


async def stored_site(db: Database, site: Site) -> Site:
    async with db.read() as session:
        stored = await session.get(Site, site.id)
    assert stored is not None
    return stored


async def movements(db: Database, site: Site) -> list[AisMovement]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AisMovement)
                .where(AisMovement.site_id == site.id)
                .order_by(AisMovement.at, AisMovement.id)
            )
        )


# --- the switch and the area on the site's page ------------------------------------------


async def test_switching_ais_on_needs_the_dpia_reference_next_to_its_field(
    client: Client, db: Database
):
    site = await new_site(db)
    csrf = await signed_in(client, db, "admin", site)
    form = {
        "_csrf_token": csrf,
        "ais_enabled": "yes",
        "ais_area_lat": "52,6405",
        "ais_area_lon": "5.06",
        "ais_area_radius_m": "300",
        "ais_dpia_reference": "",
    }

    refused = await client.post(f"/admin/sites/{site.slug}/ais", data=form)
    saved = await client.post(
        f"/admin/sites/{site.slug}/ais",
        data={**form, "ais_dpia_reference": "DPIA-2026-07"},
        follow_redirects=False,
    )

    assert refused.status_code == 422
    assert re.search(
        r'<p class="error" id="ais-ais_dpia_reference-error">Switching AIS on needs the '
        r"reference of the DPIA",
        refused.text,
    )
    assert 'value="52,6405"' in refused.text  # what was typed is kept
    assert saved.status_code == 303
    async with db.read() as session:
        stored = await session.get(Site, site.id)
    assert stored is not None
    assert (stored.ais_enabled, stored.ais_dpia_reference) == (True, "DPIA-2026-07")
    assert (stored.ais_area_lat, stored.ais_area_lon, stored.ais_area_radius_m) == (
        52.6405,
        5.06,
        300,
    )
    (event,) = await events(db, "site_changed", site)
    page = await client.get(saved.headers["location"])
    assert "The AIS setting has been saved." in page.text
    assert 'value="DPIA-2026-07"' in page.text
    assert event.id


async def test_a_wrong_area_is_refused_field_by_field_and_ais_stays_off(
    client: Client, db: Database
):
    site = await new_site(db)
    csrf = await signed_in(client, db, "admin", site)

    answer = await client.post(
        f"/admin/sites/{site.slug}/ais",
        data={
            "_csrf_token": csrf,
            "ais_enabled": "yes",
            "ais_area_lat": "north",
            "ais_area_lon": "200",
            "ais_area_radius_m": "5",
            "ais_dpia_reference": "D-1",
        },
    )

    assert answer.status_code == 422
    for field in ("ais_area_lat", "ais_area_lon", "ais_area_radius_m"):
        assert f'id="ais-{field}-error"' in answer.text
    async with db.read() as session:
        stored = await session.get(Site, site.id)
    assert stored is not None
    assert stored.ais_enabled is False


async def test_a_polygon_on_the_site_page_replaces_the_circle_and_is_shown_with_its_size(
    client: Client, db: Database
):
    site = await ais_marina(db)
    csrf = await signed_in(client, db, "admin", site)
    form = {
        "_csrf_token": csrf,
        "ais_enabled": "yes",
        "ais_dpia_reference": "DPIA-2026-07",
        # The circle's fields still hold the stored circle, as the page filled them in.
        "ais_area_lat": str(CENTRE[0]),
        "ais_area_lon": str(CENTRE[1]),
        "ais_area_radius_m": str(RADIUS_M),
        "ais_area_polygon": l_polygon_text(),
    }

    unchosen = await client.post(f"/admin/sites/{site.slug}/ais", data=form)
    saved = await client.post(
        f"/admin/sites/{site.slug}/ais",
        data={**form, "ais_area_shape": "polygon"},
        follow_redirects=False,
    )

    assert unchosen.status_code == 422
    assert re.search(
        r'<p class="error" id="ais-shape-error">Both a circle and a polygon are filled in: '
        r"choose which one to keep.</p>",
        unchosen.text,
    )
    assert saved.status_code == 303
    stored = await stored_site(db, site)
    assert json.loads(stored.ais_area_polygon or "") == [list(c) for c in l_corners()]
    assert (stored.ais_area_lat, stored.ais_area_lon, stored.ais_area_radius_m) == (None,) * 3
    *_, event = await events(db, "site_changed", site)
    changed = json.loads(event.details)["changes"]
    assert set(changed) == {
        "ais_area_lat", "ais_area_lon", "ais_area_radius_m", "ais_area_polygon",
    }  # fmt: skip
    page = await client.get(saved.headers["location"])
    assert "Now: 6 corners, 27.0 hectares." in page.text
    assert f"{l_corners()[0][0]}, {l_corners()[0][1]}\n" in page.text  # ready to edit
    assert 'name="ais_area_lat" type="text" value=""' in page.text


async def test_a_polygon_whose_edges_cross_is_refused_next_to_its_field_and_ais_stays_off(
    client: Client, db: Database
):
    site = await new_site(db)
    csrf = await signed_in(client, db, "admin", site)
    corners = l_polygon_text().splitlines()
    crossing = "\n".join([corners[1], corners[0], *corners[2:]])

    answer = await client.post(
        f"/admin/sites/{site.slug}/ais",
        data={
            "_csrf_token": csrf,
            "ais_enabled": "yes",
            "ais_dpia_reference": "D-1",
            "ais_area_polygon": crossing,
        },
    )

    assert answer.status_code == 422
    assert re.search(
        r'<textarea id="ais-ais_area_polygon" [^>]*aria-describedby="ais-ais_area_polygon-hint '
        r'ais-ais_area_polygon-error" aria-invalid="true">',
        answer.text,
    )
    assert re.search(
        r'<p class="error" id="ais-ais_area_polygon-error">Edges 2 and 6 of the polygon cross '
        r"or touch",
        answer.text,
    )
    assert corners[2] in answer.text  # what was typed is kept
    stored = await stored_site(db, site)
    assert (stored.ais_enabled, stored.ais_area_polygon) == (False, None)


async def test_a_harbour_master_cannot_switch_ais_on(client: Client, db: Database):
    site = await new_site(db)
    csrf = await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        f"/admin/sites/{site.slug}/ais",
        data={"_csrf_token": csrf, "ais_enabled": "yes", "ais_dpia_reference": "D-1"},
    )

    assert answer.status_code == 403


def test_the_area_and_the_switch_are_set_from_the_command_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    code, _out, _ = run(capsys, "site", "add", "haven-ais", "--name", "Haven", "--kind", "marina")
    assert code == 0

    no_dpia = run(
        capsys,
        "site",
        "area",
        "haven-ais",
        "--lat",
        "52.64",
        "--lon",
        "5.06",
        "--radius-m",
        "400",
        "--enable",
    )
    area = run(
        capsys, "site", "area", "haven-ais", "--lat", "52.64", "--lon", "5.06", "--radius-m", "400"
    )
    switched = run(capsys, "site", "area", "haven-ais", "--enable", "--dpia", "DPIA-9")

    assert no_dpia[0] == 2 or no_dpia[0] == 1
    assert "DPIA" in no_dpia[2]
    assert area[0] == 0
    assert "ais_area_radius_m" in area[1]
    assert switched[0] == 0
    assert "ais_enabled" in switched[1]


def test_a_polygon_is_set_from_the_command_line_or_a_geojson_file_but_not_with_a_circle(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    code, _out, _ = run(capsys, "site", "add", "haven-l", "--name", "Haven", "--kind", "marina")
    assert code == 0
    geojson = cli_env / "harbour.geojson"
    geojson.write_text(l_geojson(), encoding="utf-8")

    typed = run(capsys, "site", "area", "haven-l", "--polygon", l_polygon_text(";"))
    again = run(capsys, "site", "area", "haven-l", "--polygon-file", str(geojson))
    both = run(
        capsys, "site", "area", "haven-l", "--polygon", l_polygon_text(";"), "--lat", "52.6",
        "--lon", "5.06", "--radius-m", "300",
    )  # fmt: skip
    crossing = run(capsys, "site", "area", "haven-l", "--polygon", "52.6,5.0;52.61,5.01;"
                   "52.6,5.01;52.61,5.0")  # fmt: skip
    missing = run(capsys, "site", "area", "haven-l", "--polygon-file", str(cli_env / "none"))
    circle = run(
        capsys, "site", "area", "haven-l", "--lat", "52.64", "--lon", "5.06", "--radius-m", "400"
    )

    assert typed[0] == 0
    assert "ais_area_polygon changed" in typed[1]
    assert again[0] == 0
    assert "nothing changed" in again[1]  # the same corners, from GeoJSON's lon/lat
    assert both[0] != 0
    assert "not both" in both[2]
    assert crossing[0] != 0
    assert "ais_area_polygon: Edges 1 and 3 of the polygon cross" in crossing[2]
    assert missing[0] != 0
    assert "cannot read" in missing[2]
    assert circle[0] == 0
    assert "ais_area_polygon" in circle[1]  # the circle clears the polygon


# --- a replayed log: entries, exits, the visit, the scan ------------------------------------


async def test_a_log_replayed_for_a_site_without_ais_is_refused(db: Database):
    site = await new_site(db)

    with pytest.raises(AisError, match="AIS is off"):
        await replay(db, site.slug, [], FrozenClock(datetime.now(UTC)))


async def test_a_night_trip_the_register_missed_is_on_the_visit_and_raises_night_movement(
    client: Client, db: Database
):
    site = await ais_marina(db)
    stay = await add_visit(
        db,
        site,
        arrived=datetime(2026, 7, 14, 18, 0, tzinfo=UTC),
        expected=datetime(2026, 7, 17, 10, tzinfo=UTC),
        mmsi=BOAT,
    )
    log = [
        *passage(BOAT, IN, ts("2026-07-14T17:50")),  # comes in, then checks in
        b"garbage",
        b"!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*00",
        *passage(BOAT, OUT, ts("2026-07-14T23:30")),  # 01:30 local: out
        *passage(BOAT, IN, ts("2026-07-15T02:00")),  # 04:00 local: back
    ]

    feed = await replay(db, site.slug, log, FrozenClock(datetime(2026, 7, 15, 6, tzinfo=UTC)))
    again = await replay(db, site.slug, log, FrozenClock(datetime(2026, 7, 15, 6, tzinfo=UTC)))

    assert feed.counts["written"] == 3
    assert again.counts.get("written", 0) == 0  # nothing twice
    moved = await movements(db, site)
    assert [(m.direction, m.visit_id) for m in moved] == [
        ("in", stay.id), ("out", stay.id), ("in", stay.id),
    ]  # fmt: skip
    summary = await run_scan(db, now=datetime(2026, 7, 15, 6, tzinfo=UTC), full=True)
    assert summary.by_rule.get("night_movement", 0) >= 0
    async with db.read() as session:
        (flag,) = await session.scalars(select(Flag).where(Flag.rule == "night_movement"))
    assert "source: AIS for 2 of them" in flag.reason
    await signed_in(client, db, "harbour_master", site)
    page = await client.get(f"/admin/visits/{stay.id}")
    assert "AIS movements" in page.text
    assert page.text.count("· left the harbour area") == 1


async def test_a_log_replayed_at_a_polygon_harbour_records_the_boat_in_its_arm_not_its_notch(
    db: Database,
):
    site = await new_site(db)
    await change_ais(
        db, CLI, site.slug, enabled=True, dpia_reference="DPIA-2026-07", lat=None, lon=None,
        radius_m=None, polygon=l_geojson(), now=datetime.now(UTC),
    )  # fmt: skip
    start = ts("2026-07-14T17:00")
    # In from the north into the L's west arm and out again; a stranger lies in the notch
    # (the north-east quarter), 150 m from the harbour though inside its corners' circle.
    way_in = [*range(900, 0, -150), 0, 0, 0]
    log = [at_offset(int(BOAT), north, -150, start + i * 30).encode()
           for i, north in enumerate([*way_in, *reversed(way_in)])]  # fmt: skip
    log += [at_offset(int(STRANGER), 150, 150, start + i * 30).encode() for i in range(20)]

    feed = await replay(db, site.slug, log, FrozenClock(datetime(2026, 7, 14, 19, tzinfo=UTC)))

    assert feed.counts["written"] == 2
    moved = await movements(db, site)
    assert [(m.mmsi, m.direction) for m in moved] == [(BOAT, "in"), (BOAT, "out")]
    # 300 m north is on the edge, in the band; 150 m is the first report inside.
    assert moved[0].at == datetime.fromtimestamp(start + 5 * 30, UTC)


async def test_a_movement_before_its_walk_in_is_matched_by_the_next_scan(db: Database):
    site = await ais_marina(db)
    clock = FrozenClock(datetime(2026, 7, 14, 19, tzinfo=UTC))
    await replay(db, site.slug, passage(STRANGER, IN, ts("2026-07-14T17:00")), clock)
    assert [m.visit_id for m in await movements(db, site)] == [None]

    later = await add_visit(db, site, arrived=datetime(2026, 7, 14, 18, tzinfo=UTC), mmsi=STRANGER)
    await run_scan(db, now=datetime(2026, 7, 14, 20, tzinfo=UTC))

    assert [m.visit_id for m in await movements(db, site)] == [later.id]


# --- Tonight ----------------------------------------------------------------------------------


async def test_tonight_lists_a_boat_on_ais_that_is_not_in_the_register_with_a_walk_in_link(
    client: Client, db: Database
):
    site = await ais_marina(db)
    await add_visit(db, site, arrived=datetime(2026, 7, 14, 16, tzinfo=UTC), mmsi=BOAT)
    clock = FrozenClock(datetime(2026, 7, 14, 18, tzinfo=UTC))
    log = passage(BOAT, IN, ts("2026-07-14T16:00")) + passage(STRANGER, IN, ts("2026-07-14T17:00"))
    await replay(db, site.slug, log, clock)
    await signed_in(client, db, "harbour_master", site)

    tonight = await client.get(f"/admin/sites/{site.slug}/tonight")

    listed = tonight.text.split('id="on-ais"')[1].split("</section>")[0]
    assert "On AIS, not in the register" in tonight.text
    assert f"MMSI {STRANGER}" in listed
    assert BOAT not in listed
    link = re.search(r'href="([^"]*walk-in[^"]*)"', listed)
    assert link is not None
    form = await client.get(link.group(1).replace("&amp;", "&"))
    assert f'value="{STRANGER}"' in form.text
    assert 'value="2026-07-14T19:01"' in form.text  # came in 17:01:30 UTC
    async with db.read() as session:
        (seen,) = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "tonight_viewed")
        )
    assert seen.site_id == site.id


async def test_tonight_has_no_ais_list_while_ais_is_off(client: Client, db: Database):
    site = await ais_marina(db)
    await replay(
        db,
        site.slug,
        passage(STRANGER, IN, ts("2026-07-14T17:00")),
        FrozenClock(datetime(2026, 7, 14, 18, tzinfo=UTC)),
    )
    await change_ais(
        db,
        CLI,
        site.slug,
        enabled=False,
        dpia_reference=None,
        lat=None,
        lon=None,
        radius_m=None,
        now=datetime.now(UTC),
        keep_area=True,
    )
    await signed_in(client, db, "harbour_master", site)

    tonight = await client.get(f"/admin/sites/{site.slug}/tonight")

    assert "On AIS, not in the register" not in tonight.text


async def test_tonight_says_every_boat_on_ais_is_in_the_register_when_none_is_missing(
    client: Client, db: Database
):
    site = await ais_marina(db)
    await add_visit(db, site, arrived=datetime(2026, 7, 14, 16, tzinfo=UTC), mmsi=BOAT)
    clock = FrozenClock(datetime(2026, 7, 14, 18, tzinfo=UTC))
    await replay(db, site.slug, passage(BOAT, IN, ts("2026-07-14T16:00")), clock)
    await signed_in(client, db, "harbour_master", site)

    tonight = await client.get(f"/admin/sites/{site.slug}/tonight")

    listed = tonight.text.split('id="on-ais"')[1].split("</section>")[0]
    assert "(0)" in listed
    assert "is in the register" in listed
    assert "walk-in" not in listed


# --- retention --------------------------------------------------------------------------------


async def test_unmatched_movements_go_after_28_days_with_a_receipt_matched_ones_with_their_visit(
    db: Database, settings: Settings
):
    site = await ais_marina(db)
    old = datetime(2026, 6, 1, tzinfo=UTC)
    stay = await add_visit(db, site, arrived=old, mmsi=BOAT)
    clock = FrozenClock(old)
    await replay(db, site.slug, passage(BOAT, IN, old.timestamp() + 600), clock)
    await replay(db, site.slug, passage(STRANGER, IN, old.timestamp()), clock)
    await replay(db, site.slug, passage("244999002", IN, ts("2026-07-10T12:00")), clock)

    result = await retention.purge(db, settings, now=datetime(2026, 7, 14, tzinfo=UTC))

    assert result.deleted["ais_movements"] == 1
    left = {(m.mmsi, m.visit_id) for m in await movements(db, site)}
    assert left == {(BOAT, stay.id), ("244999002", None)}
    async with db.read() as session:
        receipt = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "purge_completed")
        )
    assert receipt is not None


async def test_a_hold_on_the_site_keeps_unmatched_movements(db: Database, settings: Settings):
    site = await ais_marina(db)
    old = datetime(2026, 6, 1, tzinfo=UTC)
    await replay(db, site.slug, passage(STRANGER, IN, old.timestamp()), FrozenClock(old))
    async with db.write() as session:
        session.add(
            LegalHold(
                scope="site", site_id=site.id, case_reference="PV-1", reason="case", created_at=old
            )
        )

    result = await retention.purge(db, settings, now=datetime(2026, 7, 14, tzinfo=UTC))

    assert result.deleted["ais_movements"] == 0
    assert len(await movements(db, site)) == 1


# --- the listener -----------------------------------------------------------------------------


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def until(check, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_udp_listener_survives_garbage_and_a_receiver_that_restarts(db: Database):
    site = await ais_marina(db)
    port = free_port(socket.SOCK_DGRAM)
    stop = asyncio.Event()
    feeds: list[Feed] = []
    task = asyncio.create_task(
        listen(
            db,
            site.slug,
            Source("udp", "127.0.0.1", port),
            FrozenClock(datetime.now(UTC)),
            stop=stop,
            ready=feeds.append,
        )
    )
    await until(lambda: bool(feeds))
    feed = feeds[0]

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        for junk in (b"\x00\xff" * 300, b"!AIVDM,9,9,,,,*", b"hello\n\n\n"):
            receiver.sendto(junk, ("127.0.0.1", port))
        for line in passage(BOAT, IN, ts("2026-07-14T17:00")):
            receiver.sendto(line + b"\r\n", ("127.0.0.1", port))
    await until(lambda: feed.counts["transitions"] == 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as restarted:
        restarted.sendto(
            b"\n".join(passage(BOAT, OUT, ts("2026-07-14T18:00"))), ("127.0.0.1", port)
        )
    await until(lambda: feed.counts["transitions"] == 2)
    stop.set()
    await task

    assert feed.counts["corrupt"] + feed.counts["not_ais"] >= 3
    assert [m.direction for m in await movements(db, site)] == ["in", "out"]


async def test_the_tcp_listener_connects_again_when_the_receiver_comes_back(db: Database):
    site = await ais_marina(db)
    port = free_port(socket.SOCK_STREAM)

    async def receiver(lines: list[bytes]) -> asyncio.Server:
        async def serve(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"".join(line + b"\r\n" for line in lines) + b"garbage\n")
            await writer.drain()
            writer.close()

        return await asyncio.start_server(serve, "127.0.0.1", port)

    first = await receiver(passage(BOAT, IN, ts("2026-07-14T17:00")))
    stop = asyncio.Event()
    feeds: list[Feed] = []
    task = asyncio.create_task(
        listen(
            db,
            site.slug,
            Source("tcp", "127.0.0.1", port),
            FrozenClock(datetime.now(UTC)),
            stop=stop,
            ready=feeds.append,
        )
    )
    await until(lambda: bool(feeds) and feeds[0].counts["transitions"] == 1)
    first.close()
    await first.wait_closed()
    second = await receiver(passage(BOAT, OUT, ts("2026-07-14T18:00")))
    await until(lambda: feeds[0].counts["transitions"] == 2, seconds=10)
    stop.set()
    await task
    second.close()
    with contextlib.suppress(Exception):
        await second.wait_closed()

    assert feeds[0].counts["connections"] >= 2
    assert [m.direction for m in await movements(db, site)] == ["in", "out"]


def test_the_listen_setting_names_sites_and_sources(tmp_path: Path):
    # Its own data directory: the settings would otherwise make ./data for the secret key.
    env = {"NIGHTREG_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(
        {**env, "NIGHTREG_AIS_LISTEN": "haven=udp://127.0.0.1:10110, noord=tcp://10.0.0.5:5631"}
    )
    assert settings.ais_listen == (
        ("haven", "udp://127.0.0.1:10110"),
        ("noord", "tcp://10.0.0.5:5631"),
    )
    with pytest.raises(Exception, match="AIS_LISTEN"):
        Settings.from_env({**env, "NIGHTREG_AIS_LISTEN": "haven=http://x"})


# --- subject requests -------------------------------------------------------------------------


async def test_a_subject_request_reports_and_erases_the_boat_s_ais_movements(
    db: Database, settings: Settings
):
    from nightreg.services import subjects

    site = await ais_marina(db)
    stay = await add_visit(db, site, arrived=datetime(2026, 7, 14, 12, tzinfo=UTC), mmsi=BOAT)
    clock = FrozenClock(datetime(2026, 7, 14, 19, tzinfo=UTC))
    await replay(db, site.slug, passage(BOAT, IN, ts("2026-07-14T12:10")), clock)
    await replay(db, site.slug, passage(BOAT, IN, ts("2026-07-01T08:00")), clock)  # no visit
    await replay(db, site.slug, passage(STRANGER, IN, ts("2026-07-14T12:00")), clock)

    report = await subjects.report(db, settings, CLI, BOAT, now=clock.now(), fmt="json")
    body = subjects.report_json(report)
    erased = await subjects.erase(
        db, settings, CLI, BOAT, "asked by the owner", [stay.id], now=clock.now()
    )

    (record,) = body["visits"]
    assert [m["direction"] for m in record["ais_movements"]] == ["in"]
    assert [m["mmsi"] for m in body["ais_movements_unmatched"]] == [BOAT]
    assert erased.counts["ais_movements"] == 2
    assert [m.mmsi for m in await movements(db, site)] == [STRANGER]
