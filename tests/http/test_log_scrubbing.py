"""The logs never hold a secret or a visitor's data, even at DEBUG: a whole evening's work
(a check-in, a sign-in, the register searched, the visit opened) leaves only paths, methods,
statuses and times behind."""

from __future__ import annotations

import logging
import re
import secrets

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import Visit
from tests.factories import make_point, make_staff
from tests.pages import csrf_from

Client = AsyncTestClient[Litestar]

# What an operator gets with NIGHTREG_LOG_LEVEL=DEBUG (the root logger at DEBUG, which the
# database drivers' loggers inherit), with the server's, the framework's and SQLAlchemy's own
# loggers turned up to DEBUG as well.
LOGGERS = (
    None,  # the root logger
    "uvicorn", "uvicorn.error", "uvicorn.access", "litestar", "sqlalchemy", "nightreg",
    "apscheduler", "asyncio", "multipart",
)  # fmt: skip
# The test's own HTTP client logs the URLs it asks for (with the tokens in them): those lines
# are written by the test, not by the server.
TEST_CLIENT_LOGGERS = ("httpx", "httpcore")


def server_log(caplog: pytest.LogCaptureFixture) -> str:
    lines = []
    for record in caplog.records:
        if record.name.startswith(TEST_CLIENT_LOGGERS):
            continue
        lines.append(f"{record.name} {record.getMessage()}")
        if record.exc_text:
            lines.append(record.exc_text)
        if record.exc_info and record.exc_info[1] is not None:
            lines.append(repr(record.exc_info[1]))
    return "\n".join(lines)


async def test_an_evening_of_work_leaves_no_secret_and_no_visitor_data_in_the_logs(
    client: Client, db: Database, caplog: pytest.LogCaptureFixture
):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    marker = secrets.token_hex(4)
    guest = f"Ottoline Vermeulen {marker}"
    residence = f"Wervershoof{marker}"
    boat = f"Zeehond {marker}"
    password = f"moonlit-harbour-{secrets.token_hex(6)}"
    wrong_password = f"not-my-password-{secrets.token_hex(6)}"
    point = await make_point(db)
    staff = await make_staff(db, "harbour_master", [point.site_slug], password=password)

    # The visitor checks in on their phone and opens their private link.
    form = await client.get(f"{point.url}?kind=vessel")
    answer = await client.post(
        point.url,
        data={
            "_csrf_token": csrf_from(form.text),
            "kind": "vessel",
            "vessel_name": boat,
            "registration": f"NL-{marker}",
            "guest_name": guest,
            "residence": residence,
            "persons": "2",
            "phone": "+31 6 1234 5678",
            "email": f"ottoline.{marker}@example.org",
            "notes": f"Late arrival {marker}",
            "expected_departure_at": "2026-07-16T11:00",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    link = answer.headers["location"]
    private_token = re.fullmatch(r"/k/v/([^?]+)\?new=1", link).group(1)  # type: ignore[union-attr]
    assert guest in (await client.get(link)).text

    # The harbour master mistypes the password once, then signs in and looks the visit up.
    page = await client.get("/admin/sign-in")
    csrf = csrf_from(page.text)
    refused = await client.post(
        "/admin/sign-in",
        data={"_csrf_token": csrf, "email": staff.email, "password": wrong_password},
    )
    assert refused.status_code in (400, 429)  # 429: other tests' failures from this address
    signed_in = await client.post(
        "/admin/sign-in",
        data={"_csrf_token": csrf, "email": staff.email, "password": password},
        follow_redirects=False,
    )
    assert signed_in.status_code == 302
    session = client.cookies["nightreg_session"]
    csrf_cookie = client.cookies["nightreg_csrf"]
    search = await client.get(f"/admin/sites/{point.site_slug}/register", params={"q": guest})
    assert guest in search.text
    async with db.read() as s:
        visit = await s.scalar(select(Visit).where(Visit.guest_name == guest))
    assert visit is not None
    opened = await client.get(f"/admin/visits/{visit.id}/")
    assert opened.status_code == 200
    assert guest in opened.text

    log = server_log(caplog)
    # The request log was on and saw every request, by its route template only.
    assert "POST /k/{token} 303" in log
    assert "GET /admin/visits/{id} 200" in log
    secrets_and_data = {
        "password": password,
        "mistyped password": wrong_password,
        "session cookie": session,
        "CSRF token": csrf,
        "CSRF cookie": csrf_cookie,
        "private link token": private_token,
        "check-in point token": point.token,
        "visitor's name": guest,
        "visitor's name, searched": guest.replace(" ", "+"),
        "visitor's residence": residence,
        "boat's name": boat,
        "visitor's e-mail": f"ottoline.{marker}",
        "visitor's notes": f"Late arrival {marker}",
        "staff e-mail": staff.email,
        "visit reference": visit.reference,
    }
    found = [what for what, value in secrets_and_data.items() if value in log]
    # The marker is in every value above: nothing of it may be anywhere in the log.
    assert found == []
    assert marker not in log
