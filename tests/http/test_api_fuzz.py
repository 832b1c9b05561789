"""schemathesis over the whole JSON API, in-process and signed in: whatever it sends, the API
answers without a server error, as its OpenAPI document says, and every 4xx in the documented
JSON error shape (admin/api/common.py).

Bounded for CI: MAX_EXAMPLES per operation and mode (valid and invalid data), derandomized so
that a run is repeatable, no deadline (the first request of a run warms the app up).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar import Litestar
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from nightreg.app import create_app
from nightreg.clock import FrozenClock
from nightreg.services import sites, tokens, walk_ins
from nightreg.services.access import CLI
from nightreg.settings import Settings
from nightreg.web.errors import API_ERROR_CODES
from tests.browser.live import run_async
from tests.factories import SUMMER_EVENING, unique_slug

MAX_EXAMPLES = 25
SCHEMA_PATH = "/schema/openapi.json"
STABLE_CODES = set(API_ERROR_CODES.values())


@dataclass(frozen=True)
class FuzzTarget:
    """What the fuzzed app holds: one site with visits, and a token for each side of the API."""

    site_slug: str
    visit_ids: tuple[int, ...]
    register_token: str  # an admin of the site: the register, visits, corrections, export
    analyst_token: str  # the hub: signals


def make_target(database_url: str) -> FuzzTarget:
    from nightreg.db import Database

    async def build() -> FuzzTarget:
        db = Database(database_url)
        try:
            slug = unique_slug("fuzz")
            await sites.create_site(
                db, slug=slug, name="Jachthaven Fuzz", kind="marina", now=SUMMER_EVENING,
                contact="havenmeester@test.example",
            )  # fmt: skip
            site = await sites.get_site(db, slug)
            visit_ids = []
            for n in range(3):
                local = (SUMMER_EVENING - timedelta(hours=n + 1)).astimezone(site_tz(site))
                visit = await walk_ins.create_visit(
                    db, CLI, site.id,
                    {
                        "kind": "vessel", "guest_name": f"Jan de Vries {n}", "residence": "Hoorn",
                        "persons": "2", "vessel_name": "Zeemeeuw", "registration": f"NL-{n}-AB",
                        "arrived_at": local.strftime("%Y-%m-%dT%H:%M"),
                        "expected_departure_at": (local + timedelta(days=1)).strftime(
                            "%Y-%m-%dT%H:%M"
                        ),
                    },
                    now=SUMMER_EVENING,
                )  # fmt: skip
                visit_ids.append(visit.id)
            _t, register_token = await tokens.create_token(
                db, CLI, name="fuzz admin", role="admin", site_slugs=[slug], expires_at=None,
                now=SUMMER_EVENING,
            )  # fmt: skip
            _t, analyst_token = await tokens.create_token(
                db, CLI, name="fuzz analyst", role="analyst", site_slugs=[], expires_at=None,
                now=SUMMER_EVENING,
            )  # fmt: skip
            return FuzzTarget(slug, tuple(visit_ids), register_token, analyst_token)
        finally:
            await db.dispose()

    return run_async(build)


def site_tz(site: object) -> object:
    from zoneinfo import ZoneInfo

    return ZoneInfo(site.timezone)  # type: ignore[attr-defined]


@pytest.fixture
def fuzz_target(database_url: str) -> FuzzTarget:
    return make_target(database_url)


def openapi_document() -> dict[str, object]:
    """The API's OpenAPI document, as the app builds it (the same one it serves, see below).

    schemathesis builds its tests when this module is imported, before any fixture exists, so
    the document comes from an app with throwaway settings; each test then sends its requests
    to an app of its own, on the test database.
    """
    settings = Settings(
        data_dir=Path(tempfile.gettempdir()),
        database_url=f"sqlite+aiosqlite:///{tempfile.gettempdir()}/nightreg-fuzz-unused.db",
        secret_key="fuzz-Vq3xR8mZk1LwT7nYb0HcJ5sD9fGpA2eU6iOyKtE4",
    )
    document: dict[str, object] = create_app(settings).openapi_schema.to_schema()
    return document


DOCUMENT = openapi_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture
def fuzzed_app(settings: Settings, clock: FrozenClock) -> Iterator[Litestar]:
    app = create_app(settings, clock=clock)
    yield app
    # schemathesis runs the app's lifespan on its own event loop; end it with the test.
    asgi.shutdown_lifespans()


def test_the_fuzzed_document_is_the_one_the_app_serves(fuzzed_app: Litestar):
    from litestar.testing import TestClient

    with TestClient(app=fuzzed_app) as client:
        served = client.get(SCHEMA_PATH)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(DOCUMENT))
    operations = [
        f"{method.upper()} {path}"
        for path, item in served.json()["paths"].items()
        for method in item
        if path.startswith("/api/")
    ]
    assert len(operations) >= 11, operations


def api_error_shape(ctx: object, response: object, case: object) -> bool | None:
    """Every 4xx answer is JSON with a stable `code`, a `message` and the `field` at fault."""
    status = response.status_code  # type: ignore[attr-defined]
    if not 400 <= status < 500:
        return None
    try:
        body = json.loads(response.content)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise AssertionError(f"a {status} that is not JSON: {response.content[:200]!r}") from exc  # type: ignore[attr-defined]
    assert isinstance(body, dict), body
    assert {"code", "message", "field"} <= body.keys(), body
    assert body["code"] in STABLE_CODES, body
    assert isinstance(body["message"], str), body
    assert body["message"], body
    assert body["field"] is None or isinstance(body["field"], str), body
    if status == 422 and "errors" in body:
        assert isinstance(body["errors"], dict), body
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    api_error_shape,
]


def aim_at_real_objects(case: object, target: FuzzTarget) -> None:
    """Valid cases go to the site and visits that exist; random slugs and ids only find 404s."""
    meta = case.meta  # type: ignore[attr-defined]
    if meta is not None and meta.generation.mode.is_negative:
        return
    params = case.path_parameters  # type: ignore[attr-defined]
    if params is None:
        return
    if "slug" in params:
        params["slug"] = target.site_slug
    if "id" in params and isinstance(params["id"], int) and params["id"] % 2 == 0:
        params["id"] = target.visit_ids[params["id"] // 2 % len(target.visit_ids)]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_request_as_documented_and_never_with_a_server_error(
    case: object, fuzz_target: FuzzTarget, fuzzed_app: Litestar
) -> None:
    path = case.path  # type: ignore[attr-defined]
    token = fuzz_target.analyst_token if "/signals" in path else fuzz_target.register_token
    aim_at_real_objects(case, fuzz_target)
    # The ASGI transport, in-process, to this test's app.
    case.operation.schema.app = fuzzed_app  # type: ignore[attr-defined]
    case.call_and_validate(  # type: ignore[attr-defined]
        headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, app=fuzzed_app
    )
