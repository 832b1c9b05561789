"""The hub's pull API: paging with `after`, filters, unacknowledged signals, acknowledgements,
bad input as JSON errors, the payload's schema, and the audit of every pull."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from nightreg import hubsign
from nightreg.app import create_app
from nightreg.clock import FrozenClock
from nightreg.db import Database
from nightreg.models import Flag, SharingAgreement, Signal, flag_visit
from nightreg.rules.base import Finding
from nightreg.services import signals
from nightreg.services.access import CLI
from nightreg.settings import Settings
from tests.factories import (
    PARAMS,
    SUMMER_EVENING,
    add_visit,
    audit_events,
    forward,
    last_event_id,
    make_agreement,
    new_site,
    new_token,
    raise_flag,
)
from tests.pages import bearer

Client = AsyncTestClient[Litestar]
NOW = SUMMER_EVENING  # 21:00 in Amsterdam, 14 July 2026

# --- making signals ------------------------------------------------------------------------


async def load_signal(db: Database, uid: str) -> Signal:
    async with db.read() as session:
        found = await session.scalar(select(Signal).where(Signal.uid == uid))
    assert found is not None
    return found


async def analyst_token(db: Database) -> dict[str, str]:
    """The hub's token: an analyst's, without any site."""
    return bearer(await new_token(db, "analyst"))


async def pull(client: Client, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = await client.get("/api/v1/signals", params=params, headers=auth)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def uids(page: dict[str, Any]) -> list[str]:
    return [s["id"] for s in page["signals"]]


# --- pulling -------------------------------------------------------------------------------


async def test_a_pull_pages_through_a_sites_signals_oldest_first_with_after(
    client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    made = [await forward(db, site, agreement, at=NOW + timedelta(minutes=i)) for i in range(5)]
    auth = await analyst_token(db)

    first = await pull(client, auth, site=site.slug, limit=2)
    second = await pull(client, auth, site=site.slug, limit=2, after=first["next_after"])
    third = await pull(client, auth, site=site.slug, limit=2, after=second["next_after"])

    assert uids(first) + uids(second) + uids(third) == [s.uid for s in made]
    assert first["next_after"] == made[1].id
    assert second["next_after"] == made[3].id
    assert third["next_after"] is None
    assert [s["cursor"] for s in first["signals"]] == [made[0].id, made[1].id]


async def test_each_signal_carries_its_site_rule_status_and_payload(client: Client, db: Database):
    site, agreement = await new_site(db), await make_agreement(db)
    signal = await forward(db, site, agreement, rule="short_stay_repeat")

    page = await pull(client, await analyst_token(db), site=site.slug)

    assert page["signals"] == [
        {
            "id": signal.uid,
            "cursor": signal.id,
            "status": "pending",
            "created_at": "2026-07-14T19:00:00Z",
            "site": site.slug,
            "rule": "short_stay_repeat",
            "payload": json.loads(signal.body),
            # No NIGHTREG_HUB_SECRET in these tests' settings: nothing to sign with.
            "signature": None,
        }
    ]


async def test_the_payload_is_the_body_byte_for_byte_as_sent(client: Client, db: Database):
    site, agreement = await new_site(db), await make_agreement(db)
    signal = await forward(db, site, agreement)

    answer = await client.get(f"/api/v1/signals/{signal.uid}", headers=await analyst_token(db))

    assert answer.status_code == 200
    assert f'"payload":{signal.body}'.encode() in answer.content


async def test_a_flag_forwarded_through_the_outbox_is_pulled_as_queued(
    client: Client, db: Database
):
    site = await new_site(db)
    # In force for this test only, and the oldest: it never shadows another test's agreement.
    agreement = await make_agreement(db, rules=("night_movement",))
    visit = await add_visit(db, site, guest_name="Piet Nachtvaart")
    finding = Finding(
        rule="night_movement", subject=f"reg:Q{secrets.token_hex(4).upper()}",
        visit_ids=(visit.id,), window_start=NOW - timedelta(days=2), window_end=NOW, score=60,
        params=PARAMS["night_movement"],
    )  # fmt: skip
    async with db.write() as session:
        recorded = await raise_flag(session, finding, site, NOW)
        flag = await session.get(Flag, recorded.flag_id)
        assert flag is not None
        try:
            queued = await signals.queue(session, CLI, flag, now=NOW)
        finally:
            stored = await session.get(SharingAgreement, agreement.id)
            assert stored is not None
            stored.rules = "[]"
        flag.status = "forwarded"

    page = await pull(client, await analyst_token(db), site=site.slug)

    assert uids(page) == [queued.uid]
    assert page["signals"][0]["payload"] == json.loads(queued.body)
    assert page["signals"][0]["payload"]["id"] == queued.uid


async def test_a_pull_filters_by_rule_and_by_period_on_the_local_day_of_forwarding(
    client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    # 14 July, 23:30 in Amsterdam is 21:30 UTC: a local 14 July, whatever UTC says.
    late = await forward(db, site, agreement, at=datetime.fromisoformat("2026-07-14T21:30Z"))
    # 15 July, 00:30 in Amsterdam (22:30 UTC on the 14th): the 15th.
    after_midnight = await forward(
        db, site, agreement, rule="short_stay_repeat",
        at=datetime.fromisoformat("2026-07-14T22:30Z"),
    )  # fmt: skip
    auth = await analyst_token(db)

    on_14th = await pull(client, auth, site=site.slug, **{"from": "2026-07-14", "to": "2026-07-14"})
    from_15th = await pull(client, auth, site=site.slug, **{"from": "2026-07-15"})
    short_stays = await pull(client, auth, site=site.slug, rule="short_stay_repeat")

    assert uids(on_14th) == [late.uid]
    assert uids(from_15th) == [after_midnight.uid]
    assert uids(short_stays) == [after_midnight.uid]


async def test_a_site_may_be_named_by_its_slug_or_its_number(client: Client, db: Database):
    site, other, agreement = await new_site(db), await new_site(db), await make_agreement(db)
    mine = await forward(db, site, agreement)
    await forward(db, other, agreement)
    auth = await analyst_token(db)

    assert uids(await pull(client, auth, site=site.slug)) == [mine.uid]
    assert uids(await pull(client, auth, site=str(site.id))) == [mine.uid]


async def test_unacknowledged_leaves_out_what_the_hub_already_has(client: Client, db: Database):
    site, agreement = await new_site(db), await make_agreement(db)
    pending = await forward(db, site, agreement)
    await forward(db, site, agreement, status="delivered", delivered_by="push")
    failed = await forward(db, site, agreement, status="failed", last_error="HTTP 400")
    auth = await analyst_token(db)

    everything = await pull(client, auth, site=site.slug)
    open_ones = await pull(client, auth, site=site.slug, unacknowledged="true")

    assert len(everything["signals"]) == 3
    assert uids(open_ones) == [pending.uid, failed.uid]


async def test_without_filters_a_pull_reaches_every_site(client: Client, db: Database):
    agreement = await make_agreement(db)
    here = await forward(db, await new_site(db), agreement)
    there = await forward(db, await new_site(db, "business_park"), agreement)
    auth = await analyst_token(db)

    seen: list[str] = []
    after = min(here.id, there.id) - 1  # other tests' signals come before and between
    while True:
        page = await pull(client, auth, after=after, limit=500)
        seen += uids(page)
        if page["next_after"] is None:
            break
        after = page["next_after"]

    assert {here.uid, there.uid} <= set(seen)


async def test_a_pull_and_a_get_are_audited_with_the_signals_and_the_filters(
    client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    first = await forward(db, site, agreement)
    second = await forward(db, site, agreement)
    auth = await analyst_token(db)
    since = await last_event_id(db)

    await pull(client, auth, site=site.slug, rule="night_movement", unacknowledged="true")
    await client.get(f"/api/v1/signals/{second.uid}", headers=auth)

    [pulled] = await audit_events(db, "signals_viewed", since)
    assert json.loads(pulled.object_ids) == [first.id, second.id]
    assert pulled.site_id == site.id
    assert pulled.actor.startswith("token:")
    details = json.loads(pulled.details)
    assert details["filters"] == {
        "site": site.slug,
        "rule": "night_movement",
        "statuses": ["pending", "failed"],
    }
    [viewed] = await audit_events(db, "signal_viewed", since)
    assert (viewed.object_type, viewed.object_id) == ("signal", second.id)
    assert json.loads(viewed.details) == {"uid": second.uid}


async def test_an_unknown_signal_is_not_found_in_json(client: Client, db: Database):
    answer = await client.get(f"/api/v1/signals/{uuid.uuid4()}", headers=await analyst_token(db))

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


# --- acknowledging -------------------------------------------------------------------------


async def test_acknowledging_marks_signals_delivered_by_pull_in_one_audited_step(
    client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    first = await forward(db, site, agreement)
    second = await forward(db, site, agreement)
    since = await last_event_id(db)

    answer = await client.post(
        "/api/v1/signals/ack", json={"ids": [first.uid, second.uid]},
        headers=await analyst_token(db),
    )  # fmt: skip

    assert answer.status_code == 200
    assert answer.json() == {
        "acknowledged": [first.uid, second.uid],
        "already": [],
        "withheld": [],
        "unknown": [],
    }
    for uid in (first.uid, second.uid):
        stored = await load_signal(db, uid)
        assert (stored.status, stored.delivered_by, stored.delivered_at) == (
            "delivered",
            "pull",
            NOW,
        )
    [event_] = await audit_events(db, "signals_acknowledged", since)
    assert json.loads(event_.object_ids) == sorted([first.id, second.id])
    assert json.loads(event_.details)["acknowledged"] == [first.uid, second.uid]


async def test_acknowledging_twice_reports_the_signals_as_already_acknowledged(
    client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    signal = await forward(db, site, agreement)
    auth = await analyst_token(db)

    await client.post("/api/v1/signals/ack", json={"ids": [signal.uid]}, headers=auth)
    again = await client.post(
        "/api/v1/signals/ack", json={"ids": [signal.uid, signal.uid]}, headers=auth
    )

    assert again.status_code == 200
    assert again.json() == {
        "acknowledged": [],
        "already": [signal.uid],
        "withheld": [],
        "unknown": [],
    }
    assert uids(await pull(client, auth, site=site.slug, unacknowledged="true")) == []


async def test_unknown_ids_are_reported_while_the_others_are_acknowledged(
    client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    signal = await forward(db, site, agreement)
    made_up = str(uuid.uuid4())

    answer = await client.post(
        "/api/v1/signals/ack", json={"ids": [made_up, signal.uid, "not-a-uuid"]},
        headers=await analyst_token(db),
    )  # fmt: skip

    assert answer.status_code == 200
    assert answer.json() == {
        "acknowledged": [signal.uid],
        "already": [],
        "withheld": [],
        "unknown": [made_up, "not-a-uuid"],
    }


async def test_a_pushed_signal_stays_pushed_and_a_failed_one_can_be_acknowledged(
    client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    pushed = await forward(db, site, agreement, status="delivered", delivered_by="push")
    failed = await forward(db, site, agreement, status="failed", attempts=3, last_error="HTTP 400")

    answer = await client.post(
        "/api/v1/signals/ack", json={"ids": [pushed.uid, failed.uid]},
        headers=await analyst_token(db),
    )  # fmt: skip

    assert answer.json() == {
        "acknowledged": [failed.uid],
        "already": [pushed.uid],
        "withheld": [],
        "unknown": [],
    }
    assert (await load_signal(db, pushed.uid)).delivered_by == "push"
    stored = await load_signal(db, failed.uid)
    assert (stored.status, stored.delivered_by) == ("delivered", "pull")


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("after=99999999999", "after"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("unacknowledged=maybe", "unacknowledged"),
        ("from=2026-13-01", "from"),
        ("to=14-07-2026", "to"),
        ("from=2026-07-15&to=2026-07-14", "to"),
        ("site=no-such-harbour", "site"),
        ("site=99999999", "site"),
        ("site=999999999999", "site"),
        ("rule=no_such_rule", "rule"),
        ("site=" + "x" * 200, "site"),
    ],
)
async def test_a_pull_that_cannot_be_done_answers_422_naming_the_field(
    client: Client, db: Database, query: str, field: str
):
    answer = await client.get(f"/api/v1/signals?{query}", headers=await analyst_token(db))

    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "invalid"
    assert body["field"] == field
    assert body["message"]
    assert field in body["errors"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"ids": []}, "ids"),
        ({"ids": ["x" * 65]}, "ids[0]"),
        ({"ids": [str(uuid.uuid4()) for _ in range(501)]}, "ids"),
        ({"ids": "0b9f3c4e-8d1a-4c55-9e7b-2f6a1d3c8e90"}, "ids"),
        ({"ids": [42]}, "ids[0]"),
        ({}, "ids"),
        ({"ids": ["a"], "all": True}, "all"),
    ],
)
async def test_an_acknowledgement_that_cannot_be_read_answers_422_naming_the_field(
    client: Client, db: Database, payload: dict[str, Any], field: str
):
    answer = await client.post("/api/v1/signals/ack", json=payload, headers=await analyst_token(db))

    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert (body["code"], body["field"]) == ("invalid", field)


async def test_an_acknowledgement_that_is_not_json_answers_400_in_json(
    client: Client, db: Database
):
    headers = {**await analyst_token(db), "Content-Type": "application/json"}
    answer = await client.post("/api/v1/signals/ack", content=b"{ids: [", headers=headers)

    assert answer.status_code == 400
    assert answer.json()["code"] == "bad_request"


async def test_a_very_long_signal_id_is_simply_not_found(client: Client, db: Database):
    answer = await client.get("/api/v1/signals/" + "a" * 300, headers=await analyst_token(db))

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


async def test_without_a_token_the_signals_answer_401_in_json(client: Client):
    for method, path in (
        ("GET", "/api/v1/signals"),
        ("GET", "/api/v1/signals/schema"),
        ("GET", f"/api/v1/signals/{uuid.uuid4()}"),
        ("POST", "/api/v1/signals/ack"),
    ):
        answer = await client.request(method, path)
        assert answer.status_code == 401, (method, path)
        assert answer.json()["code"] == "unauthorized"


# --- what the hub reads and nothing else ------------------------------------------------------


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement this process runs meanwhile (the app's engine included)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


async def test_pulling_reading_and_acknowledging_never_touch_the_register(
    client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    signal = await forward(db, site, agreement)
    auth = await analyst_token(db)

    with statements() as seen:
        await pull(client, auth, site=site.slug)
        await client.get(f"/api/v1/signals/{signal.uid}", headers=auth)
        await client.post("/api/v1/signals/ack", json={"ids": [signal.uid]}, headers=auth)

    assert seen, "the listener saw no statement"
    register_tables = re.compile(r"\b(visit|flag_visit|flag)\b", re.IGNORECASE)
    assert [s for s in seen if register_tables.search(s)] == []


# --- the payload's schema -----------------------------------------------------------------------


async def test_the_schema_of_a_payload_is_served_as_json_schema(client: Client, db: Database):
    answer = await client.get("/api/v1/signals/schema", headers=await analyst_token(db))

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/schema+json")
    assert answer.json() == signals.SIGNAL_SCHEMA


async def test_every_payload_keeps_to_its_schema(client: Client, db: Database):
    site = await new_site(db)
    narrow = await make_agreement(db, fields=("score",))
    wide = await make_agreement(db)
    auth = await analyst_token(db)
    await forward(db, site, narrow)
    await forward(db, site, wide, rule="short_stay_repeat")

    schema = signals.SIGNAL_SCHEMA
    for item in (await pull(client, auth, site=site.slug))["signals"]:
        payload = item["payload"]
        assert set(schema["required"]) <= set(payload) <= set(schema["properties"])
        for visit in payload.get("visits", []):
            assert set(visit) <= set(schema["properties"]["visits"]["items"]["properties"])


async def test_the_openapi_document_describes_the_signals_and_their_payload(client: Client):
    answer = await client.get("/schema/openapi.json")

    document = answer.json()
    assert {
        "/api/v1/signals",
        "/api/v1/signals/{uid}",
        "/api/v1/signals/ack",
        "/api/v1/signals/schema",
    } <= set(document["paths"])
    payload = document["components"]["schemas"]["SignalOut"]["properties"]["payload"]
    assert payload["title"] == "SignalPayload"
    assert payload["type"] == ["object", "null"]  # null: a withheld signal
    assert "additionalProperties" not in payload  # hubs ignore members they do not know
    assert payload["required"] == signals.SIGNAL_SCHEMA["required"]
    assert payload["properties"] == signals.SIGNAL_SCHEMA["properties"]
    pull_responses = document["paths"]["/api/v1/signals"]["get"]["responses"]
    assert {"200", "401", "403", "422"} <= set(pull_responses)


# --- withheld signals ----------------------------------------------------------------------


async def end_agreement(db: Database, agreement: SharingAgreement) -> None:
    async with db.write() as session:
        stored = await session.get(SharingAgreement, agreement.id)
        assert stored is not None
        stored.ended_at = NOW - timedelta(minutes=1)


async def test_a_withheld_signal_is_listed_and_read_with_its_status_and_no_payload(
    client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    signal = await forward(db, site, agreement)
    await end_agreement(db, agreement)
    auth = await analyst_token(db)

    listed = await pull(client, auth, site=site.slug)
    waiting = await pull(client, auth, site=site.slug, unacknowledged="true")
    one = await client.get(f"/api/v1/signals/{signal.uid}", headers=auth)

    assert uids(listed) == uids(waiting) == [signal.uid]
    assert one.status_code == 200
    for item in (listed["signals"][0], waiting["signals"][0], one.json()):
        assert item["status"] == "withheld"
        assert item["payload"] is None
        assert item["signature"] is None
    assert "Gast" not in one.text
    assert "Gast" not in json.dumps(listed)


async def test_acknowledging_a_withheld_signal_answers_withheld_never_already(
    client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    signal = await forward(db, site, agreement)
    await end_agreement(db, agreement)
    auth = await analyst_token(db)

    first = await client.post("/api/v1/signals/ack", json={"ids": [signal.uid]}, headers=auth)
    again = await client.post("/api/v1/signals/ack", json={"ids": [signal.uid]}, headers=auth)
    waiting = await pull(client, auth, site=site.slug, unacknowledged="true")
    listed = await pull(client, auth, site=site.slug)

    expected = {"acknowledged": [], "already": [], "withheld": [signal.uid], "unknown": []}
    assert first.json() == expected
    assert again.json() == expected
    # Acknowledged, it no longer waits; it is still listed, and still withheld.
    assert uids(waiting) == []
    assert [s["status"] for s in listed["signals"]] == ["withheld"]
    stored = await load_signal(db, signal.uid)
    assert (stored.status, stored.withheld, stored.delivered_at) == ("failed", True, None)
    assert stored.withheld_seen_at == NOW


async def test_a_failed_signal_whose_agreement_ended_is_withheld_too(client: Client, db: Database):
    site, agreement = await new_site(db), await make_agreement(db)
    signal = await forward(db, site, agreement, status="failed", last_error="HTTP 400")
    await end_agreement(db, agreement)

    one = await client.get(f"/api/v1/signals/{signal.uid}", headers=await analyst_token(db))

    assert (one.json()["status"], one.json()["payload"]) == ("withheld", None)


# --- a pulled signal is signed like a pushed one ------------------------------------------

SECRET = "pull-secret-" + "s" * 40


@pytest.fixture
async def signing_client(settings: Settings, clock: FrozenClock) -> Any:
    from dataclasses import replace

    app = create_app(
        replace(settings, hub_secret=SECRET, hub_key_id="k7", installation_id="hoorn"), clock=clock
    )
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


def canonical(payload: Any) -> bytes:
    """hub.md's re-encoding of a pulled payload: the bytes a push would have carried."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


async def test_each_pulled_signal_verifies_like_a_pushed_one_over_its_canonical_bytes(
    signing_client: Client, db: Database
):
    site, agreement = await new_site(db), await make_agreement(db)
    visit = await add_visit(db, site, guest_name="Zoë Ünal-Ø", residence="Den Helder")
    signal = await forward(db, site, agreement, visit=visit)
    auth = await analyst_token(db)

    page = await pull(signing_client, auth, site=site.slug)
    one = (await signing_client.get(f"/api/v1/signals/{signal.uid}", headers=auth)).json()

    for item in (page["signals"][0], one):
        body = canonical(item["payload"])
        assert body == signal.body.encode()  # re-encoding gives the stored bytes back
        headers = {
            "Nightreg-Installation": "hoorn",
            "Nightreg-Signature": item["signature"],
            "Idempotency-Key": item["id"],
        }
        verified = hubsign.verify(headers, body, {("hoorn", "k7"): SECRET}, now=NOW)
        assert verified.key_id == "k7"
        assert verified.timestamp == int(NOW.timestamp())
    with pytest.raises(hubsign.SignatureInvalid):
        hubsign.verify(
            {"Nightreg-Installation": "hoorn", "Nightreg-Signature": one["signature"]},
            json.dumps(one["payload"]).encode(),  # not canonical: spaces, \u escapes
            {("hoorn", "k7"): SECRET},
            now=NOW,
        )


def hub_md_block(name: str) -> str:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "hub.md").read_text(encoding="utf-8")
    found = re.search(
        f"<!-- {name}:start -->\n```python\n(.*?)```\n<!-- {name}:end -->", text, re.S
    )
    assert found is not None, name
    return found.group(1)


async def test_hub_mds_example_verifies_a_pulled_signal(signing_client: Client, db: Database):
    import types

    site, agreement = await new_site(db), await make_agreement(db)
    await forward(db, site, agreement)
    page = await pull(signing_client, await analyst_token(db), site=site.slug)
    namespace: dict[str, Any] = {}
    exec(hub_md_block("verify-example"), namespace)  # our own document
    namespace["time"] = types.SimpleNamespace(time=NOW.timestamp)  # the app's frozen clock
    namespace.update(
        item=page["signals"][0], installation="hoorn", secrets={("hoorn", "k7"): SECRET}
    )

    exec(hub_md_block("pull-verify-example"), namespace)  # raises if it fails

    namespace["item"] = {**page["signals"][0], "payload": {**page["signals"][0]["payload"], "x": 1}}
    with pytest.raises(namespace["BadSignature"]):
        exec(hub_md_block("pull-verify-example"), namespace)


# --- the schema and its versions -----------------------------------------------------------


def _objects(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _objects(value)


async def test_the_schema_lets_a_hub_ignore_members_added_later(client: Client, db: Database):
    import jsonschema

    site, agreement = await new_site(db), await make_agreement(db)
    signal = await forward(db, site, agreement)
    schema = (await client.get("/api/v1/signals/schema", headers=await analyst_token(db))).json()
    payload = json.loads(signal.body)
    payload["added_later"] = {"x": 1}
    payload["site"]["added_later"] = 1
    payload["visits"][0]["added_later"] = True

    jsonschema.Draft202012Validator(schema).validate(payload)
    assert all(node.get("additionalProperties") is not False for node in _objects(schema))


async def test_the_schema_of_an_agreement_requires_its_visit_fields_and_allows_null(
    client: Client, db: Database
):
    import jsonschema

    site = await new_site(db)
    agreement = await make_agreement(db, fields=("arrived_at", "vessel_name", "mmsi"))
    signal = await forward(db, site, agreement, visit=await add_visit(db, site, mmsi=None))
    auth = await analyst_token(db)

    strict = await client.get(
        "/api/v1/signals/schema", params={"agreement": agreement.reference}, headers=auth
    )
    unknown = await client.get(
        "/api/v1/signals/schema", params={"agreement": "NO-SUCH-REF"}, headers=auth
    )
    without_token = await client.get("/api/v1/signals/schema")

    item = strict.json()["properties"]["visits"]["items"]
    assert item["required"] == ["arrived_at", "vessel_name", "mmsi"]
    payload = json.loads(signal.body)
    assert payload["visits"] == [
        {"arrived_at": payload["visits"][0]["arrived_at"], "vessel_name": "Zeemeeuw", "mmsi": None}
    ]
    jsonschema.Draft202012Validator(strict.json()).validate(payload)
    assert signals.SIGNAL_SCHEMA["properties"]["visits"]["items"]["required"] == []
    assert (unknown.status_code, unknown.json()["field"]) == (422, "agreement")
    assert without_token.status_code == 401


async def test_the_pull_openapi_names_the_withheld_status_and_bucket(client: Client):
    document = (await client.get("/schema/openapi.json")).json()
    schemas = document["components"]["schemas"]

    assert "withheld" in schemas["SignalOut"]["properties"]["status"]["enum"]
    assert "withheld" in schemas["AckOut"]["required"]
    assert "signature" in schemas["SignalOut"]["properties"]


# --- a flag whose visits span two sites ----------------------------------------------------


async def test_a_flag_whose_visits_span_two_sites_is_filed_and_sent_from_the_latest_visits_site(
    client: Client, db: Database
):
    from nightreg.services import flags as flag_queue
    from nightreg.services.scan import run_scan
    from tests.factories import add_agreement, end_agreements, staff

    first_site, latest_site = await new_site(db), await new_site(db)
    guest = f"Overstapper {secrets.token_hex(4)}"  # the rules follow the guest by name
    visits = []
    for day, site in ((5, first_site), (3, first_site), (1, latest_site)):
        at = NOW - timedelta(days=day) + timedelta(hours=5)  # 02:00 in Amsterdam
        visits.append(
            await add_visit(
                db, site, guest_name=guest, arrived=at, departed=at + timedelta(hours=1)
            )
        )
    await run_scan(db, now=NOW, full=True)
    async with db.read() as session:
        [flag] = await session.scalars(
            select(Flag)
            .join(flag_visit, flag_visit.c.flag_id == Flag.id)
            .where(Flag.rule == "night_movement", flag_visit.c.visit_id == visits[0].id)
        )
    agreement_id = await add_agreement(db, rules=["night_movement"], reference="RIEC-XSITE")
    try:
        await flag_queue.review(
            db, staff("harbour_master", latest_site), flag.id, "forward", now=NOW
        )
        page = await pull(client, await analyst_token(db), site=latest_site.slug)
    finally:  # ended, it would withhold the signal (and other tests' flags stay unforwarded)
        await end_agreements(db, [agreement_id])

    assert flag.site_id == latest_site.id
    [item] = page["signals"]
    assert item["site"] == latest_site.slug
    assert item["payload"]["site"]["slug"] == latest_site.slug
    assert item["payload"]["visit_count"] == 1
    assert item["payload"]["visits_elsewhere"] == 2
