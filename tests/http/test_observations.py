"""Staff observations: the checklist form, its errors, and the observation flag it raises."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import AuditEvent, Flag, Observation, Site, flag_visit
from nightreg.services import observations
from nightreg.services.access import AccessDenied, NotFound
from nightreg.services.observations import ObservationInvalid
from tests.factories import NOW, add_visit, events, make_staff, new_site, staff
from tests.pages import sign_in

Client = AsyncTestClient[Litestar]


async def signed_in(client: Client, db: Database, role: str, *site_list: Site) -> str:
    """Sign the client in (afresh) as a new account of `role`; returns the CSRF token."""
    client.cookies.clear()
    account = await make_staff(db, role, [s.slug for s in site_list])
    return await sign_in(client, account.email, account.password)


def form_url(site: Site, visit_id: int | None = None) -> str:
    url = f"/admin/sites/{site.slug}/observations/new"
    return f"{url}?visit={visit_id}" if visit_id is not None else url


async def load_flag(db: Database, flag_id: int) -> tuple[Flag, list[int]]:
    async with db.read() as session:
        flag = await session.get(Flag, flag_id)
        visits = list(
            await session.scalars(
                select(flag_visit.c.visit_id).where(flag_visit.c.flag_id == flag_id)
            )
        )
    assert flag is not None
    return flag, visits


async def load_observation(db: Database, observation_id: int) -> Observation:
    async with db.read() as session:
        observation = await session.get(Observation, observation_id)
    assert observation is not None
    return observation


def flag_id_from(location: str) -> int:
    match = re.fullmatch(r"/admin/flags/(\d+)", location)
    assert match, location
    return int(match.group(1))


# --- the form ------------------------------------------------------------------------------


async def test_a_marina_gets_the_harbour_checklist_and_a_business_park_its_own(
    client: Client, db: Database
):
    marina, park = await new_site(db), await new_site(db, "business_park")
    await signed_in(client, db, "harbour_master", marina, park)

    harbour = await client.get(form_url(marina))
    units = await client.get(form_url(park))

    assert harbour.status_code == units.status_code == 200
    assert "Boat low in the water" in harbour.text
    assert "Chemical smells" not in harbour.text
    assert "Chemical smells" in units.text
    assert "Boat low in the water" not in units.text
    for page in (harbour, units):
        assert "Interest in cameras or patrols" in page.text  # shared by both kinds
        assert 'name="_csrf_token"' in page.text
        assert 'value="2026-07-14T21:00"' in page.text  # now, on the site's clock


async def test_the_visit_page_offers_to_record_an_observation(client: Client, db: Database):
    site = await new_site(db)
    visit = await add_visit(db, site)
    await signed_in(client, db, "security", site)

    page = await client.get(f"/admin/visits/{visit.id}")
    form = await client.get(form_url(site, visit.id))

    assert f'href="/admin/sites/{site.slug}/observations/new?visit={visit.id}"' in page.text
    assert "Record an observation" in page.text
    assert form.status_code == 200
    assert visit.reference in form.text
    assert f'name="visit" value="{visit.id}"' in form.text


async def test_an_observation_on_a_visit_raises_a_flag_with_that_visit_as_evidence(
    client: Client, db: Database
):
    site = await new_site(db)
    visit = await add_visit(db, site, berth="B7")
    csrf = await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        form_url(site, visit.id),
        data={
            "_csrf_token": csrf,
            "visit": str(visit.id),
            "indicators": ["cameras_patrols", "boat_low_in_water"],
            "text": "Lag diep in het water, keek steeds naar de camera.",
            "location": "",
            "observed_at": "2026-07-14T20:30",
        },
        follow_redirects=False,
    )

    assert answer.status_code == 303, answer.text
    flag, evidence = await load_flag(db, flag_id_from(answer.headers["location"]))
    assert (flag.rule, flag.site_id, flag.status) == ("observation", site.id, "open")
    assert evidence == [visit.id]
    assert flag.subject == visit.subject_key
    # The checklist's order, whatever order the boxes were sent in.
    assert flag.reason == "Staff observed: Boat low in the water, Interest in cameras or patrols."
    assert flag.score == 50
    assert flag.window_start == flag.window_end == NOW - timedelta(minutes=30)
    assert flag.observation_id is not None
    observation = await load_observation(db, flag.observation_id)
    assert observation.visit_id == visit.id
    assert observation.indicators == ["boat_low_in_water", "cameras_patrols"]
    assert observation.text.startswith("Lag diep")
    [added] = await events(db, "observation_added", site)
    assert (added.object_id, json.loads(added.object_ids)) == (observation.id, [visit.id])
    assert json.loads(added.details)["flag_id"] == flag.id
    assert len(await events(db, "flag_raised", site)) == 1


async def test_an_empty_observation_comes_back_with_its_errors_and_what_was_typed(
    client: Client, db: Database
):
    site = await new_site(db)
    csrf = await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        form_url(site),
        data={
            "_csrf_token": csrf,
            "location": "Steiger C",
            "observed_at": "gisteravond",
            "text": "",
        },
    )

    assert answer.status_code == 422
    assert "Please tick at least one indicator or describe what you saw." in answer.text
    assert "Please enter a date and time like 2026-07-14 21:30." in answer.text
    assert 'id="err-indicators"' in answer.text
    assert 'id="err-observed_at"' in answer.text
    assert 'value="Steiger C"' in answer.text
    assert 'value="gisteravond"' in answer.text
    assert await events(db, "observation_added", site) == []


async def test_ticked_boxes_stay_ticked_when_the_place_is_missing(client: Client, db: Database):
    site = await new_site(db, "business_park")
    csrf = await signed_in(client, db, "security", site)

    answer = await client.post(
        form_url(site),
        data={"_csrf_token": csrf, "indicators": ["chemical_smells"], "text": "Sterke geur"},
    )

    assert answer.status_code == 422
    assert "Please say where you saw it" in answer.text
    assert 'id="err-location"' in answer.text
    assert re.search(r'value="chemical_smells" id="i-chemical_smells" checked', answer.text)
    assert "Sterke geur" in answer.text


async def test_an_observation_at_a_place_raises_a_flag_on_that_place(client: Client, db: Database):
    site = await new_site(db, "business_park")
    csrf = await signed_in(client, db, "security", site)

    answer = await client.post(
        form_url(site),
        data={
            "_csrf_token": csrf,
            "indicators": ["windows_blacked_out", "humming_hoses", "heavy_electricity"],
            "location": "  Unit  14 ",
            "observed_at": "2026-07-14T20:00",
        },
        follow_redirects=False,
    )

    assert answer.status_code == 303
    flag, evidence = await load_flag(db, flag_id_from(answer.headers["location"]))
    assert evidence == []
    assert flag.subject == f"place:{site.id}:unit 14"
    assert flag.score == 60
    assert flag.observation_id is not None
    assert (await load_observation(db, flag.observation_id)).location == "Unit 14"


async def test_a_visit_of_another_site_is_not_found(client: Client, db: Database):
    site, other = await new_site(db), await new_site(db)
    elsewhere = await add_visit(db, other)
    csrf = await signed_in(client, db, "harbour_master", site, other)

    shown = await client.get(form_url(site, elsewhere.id))
    sent = await client.post(
        form_url(site, elsewhere.id),
        data={"_csrf_token": csrf, "visit": str(elsewhere.id), "indicators": ["cash_large"]},
    )

    assert (shown.status_code, sent.status_code) == (404, 404)
    assert await events(db, "observation_added", site) == []


async def test_the_harbour_master_of_another_site_finds_no_form(client: Client, db: Database):
    site, other = await new_site(db), await new_site(db)
    await signed_in(client, db, "harbour_master", other)

    assert (await client.get(form_url(site))).status_code == 404


@pytest.mark.parametrize("role", ["auditor", "analyst"])
async def test_roles_without_the_right_may_not_record_observations(
    client: Client, db: Database, role: str
):
    site = await new_site(db)
    visit = await add_visit(db, site)
    csrf = await signed_in(client, db, role, site)

    shown = await client.get(form_url(site, visit.id))
    sent = await client.post(
        form_url(site, visit.id),
        data={"_csrf_token": csrf, "visit": str(visit.id), "indicators": ["cash_large"]},
    )

    assert (shown.status_code, sent.status_code) == (403, 403)
    assert await events(db, "observation_added", site) == []


async def test_a_post_without_the_csrf_token_is_refused(client: Client, db: Database):
    site = await new_site(db)
    await signed_in(client, db, "harbour_master", site)

    answer = await client.post(
        form_url(site), data={"indicators": ["cash_large"], "location": "Kade"}
    )

    assert answer.status_code == 403
    assert await events(db, "observation_added", site) == []


# --- the service ----------------------------------------------------------------------------


async def add(
    db: Database, site: Site, visit_id: int | None = None, **kwargs: object
) -> observations.Added:
    values = {"location": "Kade", "indicators": (), "text": "", "observed_at": None}
    values.update(kwargs)
    return await observations.add_observation(
        db, staff("harbour_master", site), site.id, visit_id, now=NOW, **values
    )


async def test_the_score_grows_with_each_indicator_up_to_its_cap(db: Database):
    site = await new_site(db)
    codes = [i.code for g in observations.groups_for("marina") for i in g.indicators]

    one = await add(db, site, indicators=codes[:1], location="A")
    many = await add(db, site, indicators=codes[:8], location="B")

    assert (await load_flag(db, one.flag_id))[0].score == 40
    assert (await load_flag(db, many.flag_id))[0].score == 80


async def test_a_description_alone_is_enough_and_stays_out_of_the_reason(db: Database):
    site = await new_site(db)

    added = await add(db, site, text="Twee mannen laadden dozen over in het donker.")

    flag, _ = await load_flag(db, added.flag_id)
    assert flag.reason == "Staff observed: something described in the observation."
    assert "dozen" not in flag.reason


async def test_an_indicator_of_the_other_kind_of_site_is_refused(db: Database):
    site = await new_site(db)

    with pytest.raises(ObservationInvalid) as refused:
        await add(db, site, indicators=["chemical_smells"])

    assert refused.value.errors["indicators"].message == "Please choose an option from the list."


async def test_a_time_ahead_or_long_ago_is_refused(db: Database):
    site = await new_site(db)

    with pytest.raises(ObservationInvalid) as ahead:
        await add(db, site, text="x", observed_at="2026-07-14T23:00")
    with pytest.raises(ObservationInvalid) as long_ago:
        await add(db, site, text="x", observed_at="2026-05-01T23:00")

    assert ahead.value.errors["observed_at"].message == "The time cannot be in the future."
    assert long_ago.value.errors["observed_at"].message.startswith("Please enter a time within")


async def test_a_location_too_long_is_refused(db: Database):
    site = await new_site(db)

    with pytest.raises(ObservationInvalid) as refused:
        await add(db, site, text="x", location="K" * 121)

    assert refused.value.errors["location"].params == {"max": 120}


async def test_the_service_checks_the_role_and_the_site(db: Database):
    site, other = await new_site(db), await new_site(db)
    visit = await add_visit(db, other)

    with pytest.raises(AccessDenied):
        await observations.add_observation(
            db, staff("auditor", site), site.id, None,
            location="Kade", indicators=["cash_large"], text="", observed_at=None, now=NOW,
        )  # fmt: skip
    with pytest.raises(NotFound):
        await observations.add_observation(
            db, staff("harbour_master", site, other), site.id, visit.id,
            location="", indicators=["cash_large"], text="", observed_at=None, now=NOW,
        )  # fmt: skip
    with pytest.raises(NotFound):
        await observations.add_observation(
            db, staff("security", other), site.id, None,
            location="Kade", indicators=["cash_large"], text="", observed_at=None, now=NOW,
        )  # fmt: skip


async def test_a_second_observation_of_a_visit_is_a_flag_of_its_own(db: Database):
    site = await new_site(db)
    visit = await add_visit(db, site)

    first = await add(db, site, visit.id, indicators=["cash_large"], location="")
    second = await add(db, site, visit.id, indicators=["lookout"], location="")

    assert second.flag_id != first.flag_id
    assert second.flag_created
    async with db.read() as session:
        stored = list(
            await session.scalars(select(Observation.id).where(Observation.visit_id == visit.id))
        )
        added = list(
            await session.scalars(
                select(AuditEvent.id).where(
                    AuditEvent.action == "observation_added", AuditEvent.site_id == site.id
                )
            )
        )
    assert len(stored) == len(added) == 2
