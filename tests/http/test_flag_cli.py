"""`nightreg flag list|dismiss|watch|forward --as EMAIL`: the review queue from the shell, as a
named staff account, audited as the page's review is."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import AuditEvent, Flag, Signal
from tests.factories import event_details, make_flag, make_staff, new_site
from tests.pages import run

MakeAgreement = Callable[..., Awaitable[int]]
REF = "RIEC-CLI-2026"


async def reviewed(db: Database, flag: int) -> tuple[str, list[AuditEvent], list[Signal]]:
    async with db.read() as session:
        found = await session.get(Flag, flag)
        assert found is not None
        events = list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.object_type.in_(("flag", "signal")))
                .where(
                    AuditEvent.action.in_(("flag_reviewed", "signal_queued", "signal_previewed"))
                )
                .order_by(AuditEvent.id)
            )
        )
        sent = list(await session.scalars(select(Signal).where(Signal.flag_id == flag)))
    return found.status, events, sent


@pytest.fixture
async def scene(db: Database, cli_env: Path, make_agreement: MakeAgreement) -> dict[str, Any]:
    """A site with an open flag, a security account there and an agreement in force."""
    await make_agreement(reference=REF, fields=["registration"])
    site = await new_site(db)
    flag = await make_flag(db, site)
    account = await make_staff(db, "security", [site.slug])
    return {"site": site, "flag": flag, "email": account.email, "user_id": account.user_id}


async def test_forward_with_yes_prints_the_preview_and_forwards_as_the_named_account(
    db: Database, scene: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    flag, email = scene["flag"], scene["email"]

    code, out, err = await asyncio.to_thread(
        run, capsys, "flag", "forward", str(flag), "--agreement", REF, "--as", email, "--yes"
    )

    assert code == 0, err
    assert REF in out
    assert "Sent: rule, reason, registration" in out
    assert "guest_name" in out.split("Never sent:")[1].splitlines()[0]
    assert f"Flag {flag} forwarded under {REF}" in out
    status, events, sent = await reviewed(db, flag)
    assert status == "forwarded"
    assert len(sent) == 1
    assert json.loads(sent[0].body)["agreement"]["reference"] == REF
    assert [e.action for e in events] == ["signal_previewed", "signal_queued", "flag_reviewed"]
    assert {e.actor for e in events} == {f"user:{scene['user_id']} {email}"}
    assert {e.address for e in events} == {"cli"}


@pytest.mark.parametrize(("answer", "forwarded"), [("n\n", False), ("", False), ("y\n", True)])
async def test_forward_asks_first_and_only_yes_forwards(
    db: Database,
    scene: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    forwarded: bool,
):
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    flag, email = scene["flag"], scene["email"]

    code, out, _err = await asyncio.to_thread(
        run, capsys, "flag", "forward", str(flag), "--agreement", REF, "--as", email
    )

    assert f"under {REF}? [y/N]" in out
    status, _events, sent = await reviewed(db, flag)
    if forwarded:
        assert (code, status, len(sent)) == (0, "forwarded", 1)
    else:
        assert (code, status, sent) == (1, "open", [])
        assert "Nothing was forwarded." in out


async def test_dismiss_and_watch_are_audited_like_the_page(
    db: Database, scene: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    flag, email = scene["flag"], scene["email"]

    code, _out, err = await asyncio.to_thread(
        run, capsys, "flag", "watch", str(flag), "--as", email
    )
    assert code == 0, err
    code, out, err = await asyncio.to_thread(
        run, capsys, "flag", "dismiss", str(flag), "--reason", "Vaste ligplaats", "--as", email
    )

    assert code == 0, err
    assert f"Flag {flag} dismissed" in out
    status, events, _sent = await reviewed(db, flag)
    assert status == "dismissed"
    details = [await event_details(db, e) for e in events]
    assert [(d["action"], d["from"], d["to"], d["reason"]) for d in details] == [
        ("watch", "open", "watching", ""),
        ("dismiss", "watching", "dismissed", "Vaste ligplaats"),
    ]


async def test_list_shows_the_accounts_flags_and_open_narrows_it(
    db: Database, scene: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    site, email = scene["site"], scene["email"]
    done = await make_flag(db, site, status="dismissed")
    elsewhere = await make_flag(db, await new_site(db))

    code, everything, err = await asyncio.to_thread(run, capsys, "flag", "list", "--as", email)
    assert code == 0, err
    code, only_open, err = await asyncio.to_thread(
        run, capsys, "flag", "list", "--site", site.slug, "--open", "--as", email
    )

    assert code == 0, err
    ids = {line.split("\t")[0] for line in everything.splitlines()}
    assert ids == {str(scene["flag"]), str(done)}
    assert str(elsewhere) not in ids
    assert [line.split("\t")[:3] for line in only_open.splitlines()] == [
        [str(scene["flag"]), site.slug, "open"]
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dismiss", "{flag}", "--reason", " "), "[reason_required]"),
        (("forward", "{flag}", "--agreement", "RIEC-NONE", "--yes"), "[agreement_not_found]"),
        (("watch", "{other}"), "no such flag {other} among the sites of"),
    ],
)
async def test_a_refusal_is_one_line_with_its_code_and_exit_code_2(
    db: Database,
    scene: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
):
    other = await make_flag(db, await new_site(db))
    values = {"flag": scene["flag"], "other": other}
    filled = [a.format(**values) for a in args]

    code, _out, err = await asyncio.to_thread(run, capsys, "flag", *filled, "--as", scene["email"])

    assert code == 2
    assert message.format(**values) in err
    assert (await reviewed(db, scene["flag"]))[0] == "open"


async def test_an_unknown_account_or_a_role_without_review_is_refused(
    db: Database, scene: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    auditor = await make_staff(db, "auditor", [scene["site"].slug])
    flag = str(scene["flag"])

    nobody = await asyncio.to_thread(
        run, capsys, "flag", "watch", flag, "--as", "nobody@test.example"
    )
    refused = await asyncio.to_thread(run, capsys, "flag", "watch", flag, "--as", auditor.email)

    assert nobody[0] == 2
    assert "no active staff account" in nobody[2]
    assert refused[0] == 2
    assert "may not review flags" in refused[2]


def test_an_id_no_flag_can_have_is_refused_by_the_parser(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
):
    with pytest.raises(SystemExit) as exited:
        run(capsys, "flag", "watch", "99999999999", "--as", "someone@test.example")

    assert exited.value.code == 2
    assert "not a flag's id" in capsys.readouterr().err
