"""API tokens: made once and shown once, stored hashed, scoped, expiring, revocable, audited."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import ApiToken, AuditEvent, Site
from nightreg.security import token_hash
from nightreg.services import tokens
from nightreg.services.access import CLI, AccessDenied, Actor, NotFound
from tests.factories import SUMMER_EVENING, make_point, unique_slug

LATER = SUMMER_EVENING + timedelta(days=30)


async def _site_id(db: Database, slug: str) -> int:
    async with db.read() as session:
        site_id = await session.scalar(select(Site.id).where(Site.slug == slug))
    assert site_id is not None
    return site_id


async def _events(db: Database, action: str, token_id: int) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == action,
                    AuditEvent.object_type == "token",
                    AuditEvent.object_id == token_id,
                )
            )
        )


async def test_a_new_token_is_shown_once_and_only_its_hash_is_kept(db: Database):
    point = await make_point(db)
    token, plain = await tokens.create_token(
        db, CLI, name="boekhouding", role="security", site_slugs=[point.site_slug],
        expires_at=LATER, now=SUMMER_EVENING,
    )  # fmt: skip
    assert plain.startswith("nrt_")
    assert len(plain) > 40
    async with db.read() as session:
        stored = await session.get(ApiToken, token.id)
    assert stored is not None
    assert stored.token_hash == token_hash(plain)
    assert plain not in stored.token_hash
    [event] = await _events(db, "token_created", token.id)
    details = json.loads(event.details)
    assert details == {
        "name": "boekhouding",
        "role": "security",
        "sites": [point.site_slug],
        "expires_at": LATER.isoformat(),
    }
    assert plain not in event.details


async def test_a_token_acts_with_its_role_and_sites(db: Database):
    point = await make_point(db)
    token, plain = await tokens.create_token(
        db, CLI, name="hub", role="harbour_master", site_slugs=[point.site_slug],
        expires_at=None, now=SUMMER_EVENING,
    )  # fmt: skip
    actor = await tokens.actor_for_token(db, plain, now=SUMMER_EVENING, address="10.0.0.7")
    assert actor == Actor(
        kind="token",
        id=token.id,
        name="hub",
        role="harbour_master",
        site_ids=frozenset({await _site_id(db, point.site_slug)}),
        address="10.0.0.7",
    )
    assert actor.label == f"token:{token.id} hub"


@pytest.mark.parametrize(
    "plain", ["", "nrt_", "nrt_not-a-token-at-all", "Bearer x", "nrt_" + "x" * 500]
)
async def test_an_unknown_token_gives_no_actor(db: Database, plain: str):
    assert await tokens.actor_for_token(db, plain, now=SUMMER_EVENING) is None


async def test_an_expired_token_gives_no_actor(db: Database):
    _token, plain = await tokens.create_token(
        db, CLI, name="short", role="security", site_slugs=[],
        expires_at=SUMMER_EVENING + timedelta(hours=1), now=SUMMER_EVENING,
    )  # fmt: skip
    assert await tokens.actor_for_token(db, plain, now=SUMMER_EVENING) is not None
    later = SUMMER_EVENING + timedelta(hours=1)
    assert await tokens.actor_for_token(db, plain, now=later) is None


async def test_a_revoked_token_gives_no_actor_and_the_revocation_is_audited_once(db: Database):
    token, plain = await tokens.create_token(
        db, CLI, name="old", role="security", site_slugs=[], expires_at=None, now=SUMMER_EVENING
    )
    revoked = await tokens.revoke_token(db, CLI, token.id, now=SUMMER_EVENING, reason="leaked")
    assert revoked.revoked_at == SUMMER_EVENING
    assert await tokens.actor_for_token(db, plain, now=SUMMER_EVENING) is None
    await tokens.revoke_token(db, CLI, token.id, now=SUMMER_EVENING + timedelta(minutes=5))
    [event] = await _events(db, "token_revoked", token.id)
    details = json.loads(event.details)
    assert details["reason"] == "leaked"
    assert details["before"] == {"revoked_at": None}
    assert details["after"] == {"revoked_at": SUMMER_EVENING.isoformat()}


async def test_last_used_is_written_at_most_once_a_minute(db: Database):
    token, plain = await tokens.create_token(
        db, CLI, name="busy", role="security", site_slugs=[], expires_at=None, now=SUMMER_EVENING
    )

    async def last_used():
        async with db.read() as session:
            return await session.scalar(
                select(ApiToken.last_used_at).where(ApiToken.id == token.id)
            )

    assert await last_used() is None
    await tokens.actor_for_token(db, plain, now=SUMMER_EVENING)
    assert await last_used() == SUMMER_EVENING
    await tokens.actor_for_token(db, plain, now=SUMMER_EVENING + timedelta(seconds=30))
    assert await last_used() == SUMMER_EVENING
    await tokens.actor_for_token(db, plain, now=SUMMER_EVENING + timedelta(seconds=61))
    assert await last_used() == SUMMER_EVENING + timedelta(seconds=61)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"role": "captain"}, "role"),
        ({"expires_at": SUMMER_EVENING}, "expires_at"),
        ({"site_slugs": ["no-such-site-anywhere"]}, "sites"),
    ],
)
async def test_a_token_asked_for_wrongly_is_refused_with_the_field(
    db: Database, changes: dict, field: str
):
    values: dict = {"name": "ok", "role": "security", "site_slugs": [], "expires_at": None}
    values.update(changes)
    with pytest.raises(tokens.TokenInvalid) as caught:
        await tokens.create_token(db, CLI, now=SUMMER_EVENING, **values)
    assert field in caught.value.errors


@pytest.mark.parametrize("role", ["harbour_master", "security", "analyst", "auditor"])
async def test_only_an_admin_manages_tokens(db: Database, role: str):
    staff = Actor(kind="user", id=1, name="x@test.example", role=role)
    token, _plain = await tokens.create_token(
        db, CLI, name="t", role="security", site_slugs=[], expires_at=None, now=SUMMER_EVENING
    )
    with pytest.raises(AccessDenied):
        await tokens.create_token(
            db, staff, name="t", role="admin", site_slugs=[], expires_at=None, now=SUMMER_EVENING
        )
    with pytest.raises(AccessDenied):
        await tokens.list_tokens(db, staff)
    with pytest.raises(AccessDenied):
        await tokens.revoke_token(db, staff, token.id, now=SUMMER_EVENING)


async def test_an_admin_lists_tokens_with_their_sites_and_revokes_them(db: Database):
    point = await make_point(db)
    admin = Actor(kind="user", id=1, name="admin@test.example", role="admin")
    token, _plain = await tokens.create_token(
        db, admin, name="listed", role="analyst", site_slugs=[point.site_slug],
        expires_at=LATER, now=SUMMER_EVENING,
    )  # fmt: skip
    listed = {t.id: t for t in await tokens.list_tokens(db, admin)}
    assert [s.slug for s in listed[token.id].sites] == [point.site_slug]
    assert tokens.is_active(listed[token.id], SUMMER_EVENING)
    await tokens.revoke_token(db, admin, token.id, now=SUMMER_EVENING)
    listed = {t.id: t for t in await tokens.list_tokens(db, admin)}
    assert not tokens.is_active(listed[token.id], SUMMER_EVENING)


async def test_revoking_an_unknown_token_is_not_found(db: Database):
    with pytest.raises(NotFound):
        await tokens.revoke_token(db, CLI, 987_654_321, now=SUMMER_EVENING)


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("NIGHTREG_DATABASE_URL", database_url)
    monkeypatch.setenv("NIGHTREG_DATA_DIR", str(tmp_path))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from nightreg.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_token_add_prints_the_token_once_and_list_never_shows_it(
    cli_env: None, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli-token")
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    code, out, err = run(
        capsys, "token", "add", "hub koppeling", "--role", "security", "--site", slug,
        "--expires-days", "90",
    )  # fmt: skip
    assert code == 0, err
    plain = out.strip().splitlines()[-1]
    assert plain.startswith("nrt_")
    token_id = int(out.split()[1])
    code, listing, _ = run(capsys, "token", "list")
    assert code == 0
    [line] = [row for row in listing.splitlines() if row.startswith(f"{token_id}\t")]
    assert "hub koppeling\tsecurity\t" + slug in line
    assert "active until" in line
    assert "never" in line
    assert plain not in listing


def test_token_revoke_stops_the_token(cli_env: None, capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "token", "add", "old", "--role", "analyst")
    assert code == 0
    token_id = out.split()[1]
    code, out, _ = run(capsys, "token", "revoke", token_id, "--reason", "laptop lost")
    assert code == 0
    assert "revoked" in out
    _, listing, _ = run(capsys, "token", "list")
    assert any(row.startswith(f"{token_id}\t") and "revoked" in row for row in listing.splitlines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "add", "x", "--role", "security", "--site", "no-such-site-here"], "sites"),
        (["token", "add", " ", "--role", "security"], "name"),
        (["token", "add", "x", "--role", "security", "--expires-days", "0"], "expires-days"),
        (["token", "revoke", "987654321"], "no token"),
    ],
)
def test_token_commands_say_what_is_wrong_in_one_line(
    cli_env: None, capsys: pytest.CaptureFixture[str], args: list[str], message: str
):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
