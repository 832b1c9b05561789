"""The `nightreg` command against the test database: sites, points, posters, users."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from tests.factories import unique_slug
from tests.pages import run


def test_a_harbour_gets_a_site_a_point_and_a_printed_kiosk_url(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli")
    code, out, _ = run(capsys, "site", "add", slug, "--name", "Haven Noord", "--kind", "marina")
    assert code == 0
    code, out, _ = run(capsys, "point", "add", slug, "Havenkantoor")
    assert code == 0
    assert re.fullmatch(r"https://register\.example\.org/k/[A-Za-z0-9_-]{32}\n", out)


def test_rotating_a_point_prints_a_new_url(cli_env: Path, capsys: pytest.CaptureFixture[str]):
    slug = unique_slug("cli")
    run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")
    _, first, _ = run(capsys, "point", "add", slug, "Steiger A")
    code, second, _ = run(capsys, "point", "rotate", slug, "Steiger A")
    assert code == 0
    assert first.strip() not in second
    assert "no longer works" in second


def test_a_poster_is_written_in_the_format_asked_for(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    slug = unique_slug("cli")
    run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")
    run(capsys, "point", "add", slug, "Kantoor")
    for fmt, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<")):
        out_file = cli_env / f"poster.{fmt}"
        code, _, _ = run(capsys, "qr", slug, "Kantoor", "--out", str(out_file))
        assert code == 0
        assert out_file.read_bytes().lstrip()[: len(magic)] == magic


def test_a_mistake_is_told_in_one_line_with_exit_code_2(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    code, _, err = run(capsys, "point", "add", "no-such-site", "Kantoor")
    assert code == 2
    assert err.count("\n") == 1
    assert "no site" in err
    slug = unique_slug("cli")
    run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")
    code, _, err = run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")
    assert code == 2
    assert "exists already" in err


def test_a_bad_setting_stops_the_command_with_one_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("NIGHTREG_TIMEZONE", "Nowhere/Land")
    code, _, err = run(capsys, "site", "add", "x", "--name", "X", "--kind", "marina")
    assert code == 2
    assert err.strip() == "nightreg: NIGHTREG_TIMEZONE: unknown time zone 'Nowhere/Land'"


def test_a_staff_account_takes_its_password_from_stdin(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    slug = unique_slug("cli")
    run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")
    email = f"havenmeester-{slug}@example.org"
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    code, out, _ = run(capsys, "user", "add", email, "--role", "harbour_master", "--site", slug)
    assert code == 0
    assert email in out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run(capsys, "user", "add", "other-" + email, "--role", "security")
    assert code == 2
    assert "12 characters" in err


def test_a_common_password_is_refused_for_a_new_account(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("sys.stdin", io.StringIO("Wachtwoord2026!\n"))
    code, _, err = run(
        capsys, "user", "add", f"{unique_slug('u')}@example.org", "--role", "auditor"
    )
    assert code == 2
    assert "too common" in err


def test_sites_points_and_accounts_made_on_the_command_line_are_in_the_audit_trail(
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
):
    import asyncio

    from sqlalchemy import select

    from nightreg.db import Database
    from nightreg.models import AuditEvent, Site, User

    slug = unique_slug("cli")
    email = f"audit-{slug}@example.org"
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    assert run(capsys, "point", "add", slug, "Kantoor")[0] == 0
    assert run(capsys, "point", "rotate", slug, "Kantoor")[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert run(capsys, "user", "add", email, "--role", "security", "--site", slug)[0] == 0

    async def events() -> list[tuple[str, str]]:
        db = Database(database_url)
        try:
            async with db.read() as session:
                site_id = await session.scalar(select(Site.id).where(Site.slug == slug))
                site_events = await session.execute(
                    select(AuditEvent.action, AuditEvent.actor)
                    .where(AuditEvent.site_id == site_id)
                    .order_by(AuditEvent.id)
                )
                user_id = await session.scalar(select(User.id).where(User.email == email))
                user_event = await session.execute(
                    select(AuditEvent.action, AuditEvent.actor).where(
                        AuditEvent.object_type == "user", AuditEvent.object_id == user_id
                    )
                )
                return [tuple(row) for row in [*site_events, *user_event]]
        finally:
            await db.dispose()

    assert asyncio.run(events()) == [
        ("site_created", "cli"),
        ("point_created", "cli"),
        ("point_rotated", "cli"),
        ("site_access_granted", "cli"),  # on the site's trail
        ("user_created", "cli"),
        ("site_access_granted", "cli"),  # and the account's
    ]


def test_the_operator_grants_and_revokes_a_site_on_the_command_line_audited_on_its_trail(
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
):
    """Issue 17, finding 11b: an administrator cannot give themself a site on the page; the
    operator can, with `nightreg user grant`, and the site's trail says so."""
    import asyncio
    import json

    from sqlalchemy import select

    from nightreg.db import Database
    from nightreg.models import AuditEvent, Site, User

    slug = unique_slug("grant")
    email = f"beheer-{slug}@example.org"
    assert run(capsys, "site", "add", slug, "--name", "Haven", "--kind", "marina")[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert run(capsys, "user", "add", email, "--role", "admin")[0] == 0

    code, out, _ = run(capsys, "user", "grant", email.upper(), slug)
    assert code == 0
    assert f"{email} now holds {slug}" in out
    assert "already" in run(capsys, "user", "grant", email, slug)[1]
    code, _, err = run(capsys, "user", "grant", email, "no-such-site")
    assert code == 2
    assert "no site" in err
    assert run(capsys, "user", "grant", "nobody@example.org", slug)[0] == 2

    async def state() -> tuple[list[str], list[tuple[str, str, dict[str, object]]]]:
        db = Database(database_url)
        try:
            async with db.read() as session:
                site_id = await session.scalar(select(Site.id).where(Site.slug == slug))
                user = await session.scalar(select(User).where(User.email == email))
                assert user is not None
                await session.refresh(user, ["sites"])
                rows = await session.execute(
                    select(AuditEvent.action, AuditEvent.actor, AuditEvent.details)
                    .where(AuditEvent.site_id == site_id, AuditEvent.object_type == "user")
                    .order_by(AuditEvent.id)
                )
                trail = [(a, who, json.loads(d)) for a, who, d in rows]
                return [s.slug for s in user.sites], trail
        finally:
            await db.dispose()

    sites, trail = asyncio.run(state())
    assert sites == [slug]
    assert trail == [("site_access_granted", "cli", {"email": email, "role": "admin"})]

    code, out, _ = run(capsys, "user", "revoke", email, slug)
    assert code == 0
    assert "no longer holds" in out
    sites, trail = asyncio.run(state())
    assert sites == []
    assert [action for action, _who, _details in trail] == [
        "site_access_granted",
        "site_access_revoked",
    ]
