"""The CSRF check is skipped only for the JSON API, the health check and the schema, matched
from the start of the path: a site whose slug merely contains `health`, `api` or `schema` gets
the same protection as any other (issue 17, finding 6)."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from nightreg.db import Database
from nightreg.models import CheckinPoint, Visit
from nightreg.services import sites
from tests.factories import SUMMER_EVENING, make_staff
from tests.pages import sign_in

Client = AsyncTestClient[Litestar]

SLUGS = ["health-campus", "api-x", "schema-y", "api", "x-health", "schema"]


async def site_named(db: Database, slug: str) -> int:
    site = await sites.create_site(
        db, slug=slug, name=f"Site {slug}", kind="marina", now=SUMMER_EVENING
    )
    return site.id


async def count(db: Database, model: type, site_id: int) -> int:
    async with db.read() as session:
        query = select(func.count()).select_from(model).where(model.site_id == site_id)  # type: ignore[attr-defined]
        return int(await session.scalar(query) or 0)


@pytest.mark.parametrize("slug", SLUGS)
async def test_a_walk_in_or_a_point_posted_without_a_token_is_refused_whatever_the_slug(
    client: Client, db: Database, slug: str
):
    site_id = await site_named(db, slug)
    staff = await make_staff(db, "harbour_master", [slug])
    csrf = await sign_in(client, staff.email, staff.password)
    walk_in = {
        "kind": "vessel", "vessel_name": "Zeemeeuw", "registration": "NL-1-AB",
        "guest_name": "Jan de Vries", "country": "NL", "persons": "1",
        "arrived_at": "2026-07-14T20:45", "expected_departure_at": "2026-07-16T11:00",
    }  # fmt: skip

    forged = await client.post(f"/admin/sites/{slug}/walk-in", data=walk_in)
    assert forged.status_code == 403
    forged = await client.post(f"/admin/sites/{slug}/points", data={"name": "Steiger B"})
    assert forged.status_code == 403
    assert await count(db, Visit, site_id) == 0
    assert await count(db, CheckinPoint, site_id) == 0

    # With the token the same post goes through: the refusal above was the CSRF check's.
    made = await client.post(
        f"/admin/sites/{slug}/points",
        data={"_csrf_token": csrf, "name": "Steiger B"},
        follow_redirects=False,
    )
    assert made.status_code in (302, 303), made.text
    assert await count(db, CheckinPoint, site_id) == 1


async def test_the_api_the_health_check_and_the_schema_still_need_no_token(client: Client):
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/schema/openapi.json")).status_code == 200
    # A post to the API without a token is refused for want of a bearer, not of a CSRF token.
    answer = await client.post("/api/v1/sites/x/visits", json={})
    assert answer.status_code == 401
