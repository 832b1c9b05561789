"""`nightreg rules`: the catalogue, and a site's thresholds changed from the command line."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from nightreg import cli
from nightreg.db import Database
from nightreg.models import AuditEvent, Site
from tests.factories import unique_slug


def test_the_rule_list_names_every_rule_with_its_defaults(
    cli_env: object, capsys: pytest.CaptureFixture[str]
):
    assert cli.main(["rules", "list"]) == 0
    out = capsys.readouterr().out
    for code in ("night_movement", "arrival_surge", "watchlist_hit", "observation"):
        assert code in out
    assert "overdue" in out
    assert "never forwarded" in out


def a_site(capsys: pytest.CaptureFixture[str]) -> str:
    slug = unique_slug("haven")
    assert cli.main(["site", "add", slug, "--name", "Haven", "--kind", "marina"]) == 0
    capsys.readouterr()
    return slug


def site_row(database_url: str, slug: str) -> tuple[Site, AuditEvent | None]:
    async def read() -> tuple[Site, AuditEvent | None]:
        db = Database(database_url)
        try:
            async with db.read() as session:
                site = await session.scalar(select(Site).where(Site.slug == slug))
                assert site is not None
                event = await session.scalar(
                    select(AuditEvent).where(
                        AuditEvent.action == "site_changed", AuditEvent.site_id == site.id
                    )
                )
            return site, event
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_a_threshold_is_overridden_and_reset_per_site_and_audited(
    cli_env: object, database_url: str, capsys: pytest.CaptureFixture[str]
):
    slug = a_site(capsys)

    assert cli.main(["rules", "thresholds", slug, "night_movement.count=3"]) == 0
    assert "night_movement           count=3, days=14" in capsys.readouterr().out
    site, event = site_row(database_url, slug)
    assert site.rule_thresholds == {"night_movement": {"count": 3}}
    assert event is not None
    assert "rule_thresholds" in event.details

    assert cli.main(["rules", "thresholds", slug, "night_movement.count=default"]) == 0
    site, _event = site_row(database_url, slug)
    assert site.rule_thresholds == {}


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("night_movement.count=three", "whole number"),
        ("no_such_rule.count=3", "unknown rule"),
        ("night_movement.colour=3", "has no threshold"),
        ("night_movement", "RULE.THRESHOLD=VALUE"),
    ],
)
def test_a_wrong_threshold_is_refused_with_a_clear_message(
    cli_env: object, capsys: pytest.CaptureFixture[str], assignment: str, message: str
):
    slug = a_site(capsys)

    assert cli.main(["rules", "thresholds", slug, assignment]) == 2
    assert message in capsys.readouterr().err
