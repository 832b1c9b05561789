"""Gate cameras (issue 19): the sensor token's scope, posting sightings, the switch, Tonight's
"on camera, not in the register" and the 28-day purge."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from nightreg.db import Database
from nightreg.models import Sighting, Site, Visit
from nightreg.services import retention
from nightreg.services.access import CLI
from nightreg.services.sightings import set_cameras
from nightreg.settings import Settings
from tests.factories import (
    SUMMER_EVENING,
    add_visit,
    audit_events,
    last_event_id,
    local,
    make_point,
    new_site,
    new_token,
)

NOW = SUMMER_EVENING  # 21:00 in Amsterdam


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sighting(plate: str = "AB-123-C", minutes_ago: int = 5, **changes: Any) -> dict[str, Any]:
    at = (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"plate": plate, "time": at, "camera": "gate-north", "direction": "in", **changes}


async def park(db: Database, *, cameras: bool = True) -> Site:
    site = await new_site(db, "business_park")
    if cameras:
        await set_cameras(db, CLI, site.slug, enabled=True, dpia_reference="DPIA-7", now=NOW)
    return site


async def stored(db: Database, site: Site) -> list[Sighting]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(Sighting).where(Sighting.site_id == site.id).order_by(Sighting.id)
            )
        )


async def vehicle(db: Database, site: Site, plate: str, **kwargs: Any) -> Visit:
    """A vehicle visit whose subject key is its plate's, as a check-in makes it."""
    visit = await add_visit(db, site, kind="vehicle", plate=plate, **kwargs)
    key = "plate:" + re.sub(r"[^A-Z0-9]", "", plate.upper())
    async with db.write() as session:
        await session.execute(update(Visit).where(Visit.id == visit.id).values(subject_key=key))
    return visit


# --- the sensor token's scope ---------------------------------------------------------------


async def test_a_sensor_token_posts_sightings_to_its_own_site_only(
    client: AsyncTestClient[Litestar], db: Database
):
    own, other = await park(db), await park(db)
    token = await new_token(db, "sensor", own.slug)
    answer = await client.post(
        f"/api/v1/sites/{own.slug}/sightings", json=sighting(), headers=auth(token)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 1, "stored": 1, "duplicates": 0, "errors": []}
    [row] = await stored(db, own)
    assert (row.plate, row.subject_key, row.camera, row.direction) == (
        "AB-123-C", "plate:AB123C", "gate-north", "in",
    )  # fmt: skip
    assert row.seen_at == NOW - timedelta(minutes=5)
    elsewhere = await client.post(
        f"/api/v1/sites/{other.slug}/sightings", json=sighting(), headers=auth(token)
    )
    assert elsewhere.status_code == 404
    assert await stored(db, other) == []


async def test_a_sensor_token_reads_nothing(client: AsyncTestClient[Litestar], db: Database):
    site = await park(db)
    visit = await vehicle(db, site, "AB-123-C", arrived=NOW - timedelta(hours=1))
    token = await new_token(db, "sensor", site.slug)
    for path in (
        "/api/v1/sites",
        f"/api/v1/sites/{site.slug}/visits",
        f"/api/v1/sites/{site.slug}/register.csv",
        f"/api/v1/visits/{visit.id}",
        "/api/v1/signals",
    ):
        answer = await client.get(path, headers=auth(token))
        assert answer.status_code == 403, path
    walk_in = await client.post(
        f"/api/v1/sites/{site.slug}/visits", json={"kind": "vehicle"}, headers=auth(token)
    )
    assert walk_in.status_code == 403
    # Staff pages take no bearer token at all: the sign-in page, never the register.
    page = await client.get(
        f"/admin/sites/{site.slug}/tonight", headers=auth(token), follow_redirects=False
    )
    assert page.status_code in (302, 303)


async def test_staff_tokens_may_not_post_sightings(client: AsyncTestClient[Litestar], db: Database):
    site = await park(db)
    token = await new_token(db, "harbour_master", site.slug)
    answer = await client.post(
        f"/api/v1/sites/{site.slug}/sightings", json=sighting(), headers=auth(token)
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden"


# --- posting --------------------------------------------------------------------------------


async def test_a_repeated_sighting_is_acknowledged_without_a_second_row(
    client: AsyncTestClient[Litestar], db: Database
):
    site = await park(db)
    token = await new_token(db, "sensor", site.slug)
    url = f"/api/v1/sites/{site.slug}/sightings"
    first = await client.post(url, json=sighting(), headers=auth(token))
    # The same read again, the plate written differently and the time with an offset.
    again = sighting(plate="ab 123 c", time=(NOW - timedelta(minutes=5)).astimezone(
        local("2026-07-14T12:00").tzinfo or UTC).isoformat())  # fmt: skip
    batch = await client.post(
        url, json={"sightings": [sighting(), again, sighting()]}, headers=auth(token)
    )
    assert first.json()["stored"] == 1
    assert batch.status_code == 200
    assert batch.json() == {"received": 3, "stored": 0, "duplicates": 3, "errors": []}
    assert len(await stored(db, site)) == 1


async def test_a_batch_stores_its_valid_sightings_and_names_each_bad_one(
    client: AsyncTestClient[Litestar], db: Database
):
    site = await park(db)
    token = await new_token(db, "sensor", site.slug)
    since = await last_event_id(db)
    items = [
        sighting("AB-123-C"),
        sighting("🚗🚗"),
        sighting("12-XYZ-3", time="yesterday"),
        sighting("12-XYZ-3", minutes_ago=-60),
        sighting("12-XYZ-3", direction="sideways"),
        sighting("12-XYZ-3", camera=""),
        sighting("12-XYZ-3", minutes_ago=60 * 24 * 40),
        sighting("12-XYZ-3", time="2026-07-14T20:55:00"),
        sighting("34-ABC-5", direction="out"),
    ]
    answer = await client.post(
        f"/api/v1/sites/{site.slug}/sightings", json={"sightings": items}, headers=auth(token)
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["received"], body["stored"], body["duplicates"]) == (9, 2, 0)
    assert [(e["index"], e["code"], e["field"]) for e in body["errors"]] == [
        (1, "bad_plate", "plate"),
        (2, "bad_time", "time"),
        (3, "future_time", "time"),
        (4, "bad_direction", "direction"),
        (5, "bad_camera", "camera"),
        (6, "too_old", "time"),
        (7, "bad_time", "time"),
    ]
    assert [s.plate for s in await stored(db, site)] == ["AB-123-C", "34-ABC-5"]
    [event] = await audit_events(db, "sightings_received", since)
    assert '"stored":2' in event.details


async def test_a_request_with_nothing_to_store_is_refused(
    client: AsyncTestClient[Litestar], db: Database
):
    site = await park(db)
    token = await new_token(db, "sensor", site.slug)
    url = f"/api/v1/sites/{site.slug}/sightings"
    bad = await client.post(url, json=sighting(direction="up"), headers=auth(token))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["code"] == "bad_direction"
    empty = await client.post(url, json={"sightings": []}, headers=auth(token))
    assert (empty.status_code, empty.json()["code"]) == (422, "empty")
    many = await client.post(url, json={"sightings": [sighting()] * 501}, headers=auth(token))
    assert (many.status_code, many.json()["code"]) == (422, "batch_too_large")
    both = await client.post(url, json={**sighting(), "sightings": [sighting()]},
                             headers=auth(token))  # fmt: skip
    assert both.status_code == 422
    assert await stored(db, site) == []


async def test_the_openapi_schema_describes_sightings_with_examples(
    client: AsyncTestClient[Litestar],
):
    schema = (await client.get("/schema/openapi.json")).json()
    operation = schema["paths"]["/api/v1/sites/{slug}/sightings"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(operation["responses"])
    assert "sensor" in operation["description"]
    body = operation["requestBody"]["content"]["application/json"]
    assert "sightings" in str(body["schema"]["examples"])


# --- the switch -----------------------------------------------------------------------------


async def test_sightings_are_refused_while_the_site_has_its_cameras_off(
    client: AsyncTestClient[Litestar], db: Database
):
    site = await park(db, cameras=False)
    token = await new_token(db, "sensor", site.slug)
    answer = await client.post(
        f"/api/v1/sites/{site.slug}/sightings", json=sighting(), headers=auth(token)
    )
    assert answer.status_code == 409
    assert answer.json()["code"] == "source_off"
    assert await stored(db, site) == []


async def test_an_admin_switches_cameras_on_only_with_a_dpia_reference(
    client: AsyncTestClient[Litestar], db: Database, staff_client
):
    site = await park(db, cameras=False)
    _ref, csrf = await staff_client("admin", [site.slug])
    url = f"/admin/sites/{site.slug}/cameras"
    missing = await client.post(
        url, data={"cameras_enabled": "yes", "cameras_dpia_reference": " ", "_csrf_token": csrf}
    )
    assert missing.status_code == 422
    assert "reference of the DPIA" in missing.text
    since = await last_event_id(db)
    done = await client.post(
        url,
        data={"cameras_enabled": "yes", "cameras_dpia_reference": "DPIA-2026-07",
              "_csrf_token": csrf},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    async with db.read() as session:
        saved = await session.get(Site, site.id)
    assert saved is not None
    assert (saved.cameras_enabled, saved.cameras_dpia_reference) == (True, "DPIA-2026-07")
    [event] = await audit_events(db, "site_changed", since)
    assert event.site_id == site.id
    page = await client.get(f"/admin/sites/{site.slug}?saved=cameras")
    assert "DPIA-2026-07" in page.text
    assert "The gate camera setting has been saved." in page.text


# --- Tonight --------------------------------------------------------------------------------


async def post_as_camera(
    client: AsyncTestClient[Litestar], db: Database, site: Site, items: list[dict[str, Any]]
) -> None:
    token = await new_token(db, "sensor", site.slug)
    answer = await client.post(
        f"/api/v1/sites/{site.slug}/sightings", json={"sightings": items}, headers=auth(token)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["errors"] == []


def at(text: str) -> str:
    return local(text).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_tonight_lists_vehicles_on_camera_at_night_that_the_register_lacks(
    client: AsyncTestClient[Litestar], db: Database, staff_client, clock
):
    site = await park(db)
    clock.set(local("2026-07-15T02:30"))
    await vehicle(db, site, "11-AAA-1", arrived=local("2026-07-14T23:05"))
    await post_as_camera(client, db, site, [
        # in the register (checked in four minutes after the camera saw it)
        sighting("11-AAA-1", time=at("2026-07-14T23:01")),
        # came at night, nobody registered it, still here
        sighting("22-BBB-2", time=at("2026-07-15T01:10")),
        # came in the afternoon and never left: on the park when the night began
        sighting("33-CCC-3", time=at("2026-07-14T15:00")),
        # came and went before the night: not listed
        sighting("44-DDD-4", time=at("2026-07-14T10:00")),
        sighting("44-DDD-4", time=at("2026-07-14T18:00"), direction="out"),
        # came and went during the night: listed, gone
        sighting("55-EEE-5", time=at("2026-07-15T00:10")),
        sighting("55-EEE-5", time=at("2026-07-15T00:40"), direction="out"),
    ])  # fmt: skip
    _ref, _csrf = await staff_client("security", [site.slug])
    since = await last_event_id(db)
    page = await client.get(f"/admin/sites/{site.slug}/tonight")
    assert page.status_code == 200
    section = page.text.split('id="on-camera"')[1].split("</section>")[0]
    listed = re.findall(r"<strong>([^<]+)</strong>", section)
    assert listed == ["33-CCC-3", "55-EEE-5", "22-BBB-2"]
    assert "still on the site" in section
    # Security reads the list but may not enter walk-ins: no link for it.
    assert "walk-in" not in section
    [viewed] = await audit_events(db, "sightings_viewed", since)
    assert len(re.findall(r"\d+", viewed.object_ids)) == 4


async def test_a_harbour_master_adds_a_vehicle_on_camera_as_a_walk_in(
    client: AsyncTestClient[Litestar], db: Database, staff_client, clock
):
    site = await park(db)
    clock.set(local("2026-07-15T01:30"))
    await post_as_camera(client, db, site, [sighting("22-BBB-2", time=at("2026-07-15T01:10"))])
    await staff_client("harbour_master", [site.slug])
    page = await client.get(f"/admin/sites/{site.slug}/tonight")
    link = re.search(
        r'href="(/admin/sites/[^"]+/walk-in\?kind=vehicle&amp;plate=[^"]+)"', page.text
    )
    assert link is not None
    form = await client.get(link.group(1).replace("&amp;", "&"))
    assert form.status_code == 200
    assert re.search(r'name="plate"[^>]*value="22-BBB-2"', form.text) or (
        'value="22-BBB-2"' in form.text
    )
    # As from "on AIS": the time it was first seen is the arrival, and the walk-in's audit
    # event will say the cameras found it.
    assert 'value="2026-07-15T01:10"' in form.text
    assert '<input type="hidden" name="found" value="camera">' in form.text


async def test_tonight_shows_no_camera_list_while_the_cameras_are_off(
    client: AsyncTestClient[Litestar], db: Database, staff_client
):
    site = await park(db, cameras=False)
    await staff_client("security", [site.slug])
    page = await client.get(f"/admin/sites/{site.slug}/tonight")
    assert 'id="on-camera"' not in page.text


# --- retention ------------------------------------------------------------------------------


async def test_unmatched_sightings_go_after_28_days_with_a_receipt_and_matched_ones_stay(
    client: AsyncTestClient[Litestar], db: Database, settings: Settings
):
    site = await park(db)
    other = await make_point(db, "business_park")
    assert other
    token = await new_token(db, "sensor", site.slug)
    visit = await vehicle(
        db, site, "11-AAA-1", arrived=NOW - timedelta(hours=2), departed=NOW - timedelta(hours=1)
    )
    answer = await client.post(
        f"/api/v1/sites/{site.slug}/sightings",
        json={"sightings": [sighting("11-AAA-1", minutes_ago=125), sighting("22-BBB-2")]},
        headers=auth(token),
    )
    assert answer.json()["stored"] == 2
    # 27 days later nothing is due; 29 days later the unmatched one goes, the matched stays.
    early = await retention.purge(db, settings, now=NOW + timedelta(days=27))
    assert early.deleted["sightings"] == 0
    since = await last_event_id(db)
    later = await retention.purge(db, settings, now=NOW + timedelta(days=29))
    assert later.deleted["sightings"] == 1
    assert [s.plate for s in await stored(db, site)] == ["11-AAA-1"]
    [receipt] = await audit_events(db, "purge_completed", since)
    assert '"sightings":1' in receipt.details
    assert "22-BBB-2" not in receipt.details
    # The visit's own period ends: its sightings follow it.
    long_after = NOW + timedelta(days=settings.retention_visit_days + 2)
    await retention.purge(db, settings, now=long_after)
    async with db.read() as session:
        assert await session.get(Visit, visit.id) is None
        left = await session.scalar(
            select(func.count()).select_from(Sighting).where(Sighting.site_id == site.id)
        )
    assert left == 0


# --- the scan -------------------------------------------------------------------------------


async def test_the_scan_flags_night_traffic_that_only_the_gate_camera_saw(
    client: AsyncTestClient[Litestar], db: Database
):
    from nightreg.models import Flag
    from nightreg.services.scan import run_scan

    site = await park(db)
    reads = []
    for day in (1, 3, 5):
        # The register says the van left at 21:40; the camera saw it go out at 22:05.
        arrived, left = local(f"2026-07-0{day}T20:00"), local(f"2026-07-0{day}T21:40")
        await vehicle(db, site, "66-FFF-6", arrived=arrived, departed=left, unit="A12")
        reads.append(sighting("66-FFF-6", time=at(f"2026-07-0{day}T22:05"), direction="out"))
    await post_as_camera(client, db, site, reads)
    await run_scan(db, now=NOW, full=True)
    async with db.read() as session:
        flags = list(
            await session.scalars(
                select(Flag).where(Flag.site_id == site.id, Flag.rule == "unit_night_traffic")
            )
        )
    [flag] = flags
    assert flag.reason_params["reason"] == "nights_camera"
    assert "gate camera" in flag.reason


# --- holds and subject requests -------------------------------------------------------------


async def test_a_hold_on_the_plate_keeps_its_sightings_past_28_days(
    client: AsyncTestClient[Litestar], db: Database, settings: Settings
):
    from zoneinfo import ZoneInfo

    from nightreg.services import holds

    site = await park(db)
    await vehicle(db, site, "77-GGG-7", arrived=NOW - timedelta(days=3),
                  departed=NOW - timedelta(days=2))  # fmt: skip
    await post_as_camera(client, db, site, [sighting("77-GGG-7"), sighting("88-HHH-8")])
    await holds.place(
        db, CLI, scope="subject", subject_key="plate:77GGG7", site_id=site.id,
        case_reference="CASE-7", reason="an inquiry", now=NOW, tz=ZoneInfo("Europe/Amsterdam"),
    )  # fmt: skip
    result = await retention.purge(db, settings, now=NOW + timedelta(days=29))
    assert result.deleted["sightings"] == 1
    assert [s.plate for s in await stored(db, site)] == ["77-GGG-7"]


async def test_a_subject_request_reports_and_erases_the_plate_s_sightings(
    client: AsyncTestClient[Litestar], db: Database, settings: Settings
):
    from nightreg.services import subjects
    from tests.factories import staff

    site = await park(db)
    visit = await vehicle(db, site, "99-JJJ-9", arrived=NOW - timedelta(hours=2))
    await post_as_camera(client, db, site, [sighting("99-JJJ-9"), sighting("10-KKK-1")])
    actor = staff("harbour_master", site)
    report = await subjects.report(db, settings, actor, "99-JJJ-9", now=NOW, fmt="json")
    document = subjects.report_json(report)
    assert [(s["plate"], s["direction"]) for s in document["sightings"]] == [("99-JJJ-9", "in")]
    erased = await subjects.erase(
        db, settings, actor, "99-JJJ-9", "asked by the owner", [visit.id], now=NOW
    )
    assert erased.counts["sightings"] == 1
    assert [s.plate for s in await stored(db, site)] == ["10-KKK-1"]
