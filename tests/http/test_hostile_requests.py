"""Hostile requests: bodies over the limit (413), malformed multipart and JSON (400), and slow
clients against a real uvicorn server (408, while everyone else is still served)."""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from nightreg.db import Database
from nightreg.models import Visit
from nightreg.services import sites, tokens
from nightreg.services.access import CLI
from tests.browser.live import LiveServer, live_server, run_async
from tests.factories import SUMMER_EVENING, PointRef, make_point, make_staff
from tests.pages import csrf_from, sign_in

Client = AsyncTestClient[Litestar]
ERROR_KEYS = {"code", "message", "field"}


async def count_visits(db: Database, point: PointRef) -> int:
    info = await sites.point_by_token(db, point.token)
    assert info is not None
    async with db.read() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Visit).where(Visit.site_id == info.site_id)
            )
            or 0
        )


async def kiosk_csrf(client: Client, point: PointRef) -> str:
    return csrf_from((await client.get(f"{point.url}?kind=vessel")).text)


async def api_token(db: Database, role: str, *slugs: str) -> str:
    _token, plain = await tokens.create_token(
        db, CLI, name=f"hostile {role}", role=role, site_slugs=list(slugs), expires_at=None,
        now=SUMMER_EVENING,
    )  # fmt: skip
    return plain


def assert_api_error(answer: object, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert body.keys() >= ERROR_KEYS
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]


# --- oversized bodies -----------------------------------------------------------------------


async def test_a_kiosk_form_declaring_more_than_the_limit_is_refused_before_it_is_read(
    client: Client, db: Database
):
    point = await make_point(db)
    csrf = await kiosk_csrf(client, point)
    answer = await client.post(
        point.url,
        content=b"kind=vessel",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "content-length": str(10 * 1024 * 1024),
            "x-csrftoken": csrf,
        },
    )
    assert answer.status_code == 413
    assert "The form is too large." in answer.text
    assert await count_visits(db, point) == 0


async def test_an_api_body_over_the_limit_gets_413_in_the_api_error_shape(
    client: Client, db: Database
):
    point = await make_point(db)
    token = await api_token(db, "harbour_master", point.site_slug)
    answer = await client.post(
        f"/api/v1/sites/{point.site_slug}/visits",
        content=b'{"kind": "vessel", "notes": "' + b"x" * 100_000 + b'"}',
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    assert_api_error(answer, 413, "too_large")
    assert await count_visits(db, point) == 0


async def test_an_import_over_its_own_larger_limit_is_refused_before_it_is_read(
    client: Client, db: Database
):
    point = await make_point(db)
    staff = await make_staff(db, "harbour_master", [point.site_slug])
    csrf = await sign_in(client, staff.email, staff.password)
    answer = await client.post(
        f"/admin/sites/{point.site_slug}/import",
        content=b"--x\r\n",
        headers={
            "content-type": "multipart/form-data; boundary=x",
            "content-length": str(51 * 1024 * 1024),
            "x-csrftoken": csrf,
        },
    )
    assert answer.status_code == 413
    assert await count_visits(db, point) == 0


# --- malformed bodies -----------------------------------------------------------------------

_PART = b'--x\r\nContent-Disposition: form-data; name="guest_name"\r\n\r\nJan\r\n'
MALFORMED_MULTIPART = {
    "no boundary": ("multipart/form-data", _PART + b"--x--\r\n"),
    "another boundary": ("multipart/form-data; boundary=other", _PART + b"--x--\r\n"),
    "cut off": ("multipart/form-data; boundary=x", _PART[:-8]),
    "no end": ("multipart/form-data; boundary=x", _PART),
    "binary noise": ("multipart/form-data; boundary=x", bytes(range(256)) * 8),
    "part without disposition": ("multipart/form-data; boundary=x", b"--x\r\nX: y\r\n\r\n1\r\n"),
    "header without colon": (
        "multipart/form-data; boundary=x",
        b"--x\r\nContent-Disposition form-data\r\n\r\n1\r\n--x--\r\n",
    ),
    "boundary of 4000 characters": ("multipart/form-data; boundary=" + "b" * 4000, _PART),
    "empty body": ("multipart/form-data; boundary=x", b""),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_MULTIPART))
async def test_a_malformed_multipart_check_in_is_refused_with_400(
    client: Client, db: Database, marina: PointRef, case: str
):
    content_type, body = MALFORMED_MULTIPART[case]
    csrf = await kiosk_csrf(client, marina)
    answer = await client.post(
        marina.url, content=body, headers={"content-type": content_type, "x-csrftoken": csrf}
    )
    # 400 for what cannot be parsed; 422 when it parses to an empty form (fields missing).
    assert answer.status_code in (400, 422), answer.status_code
    assert "text/html" in answer.headers["content-type"]
    assert await count_visits(db, marina) == 0


@pytest.mark.parametrize("case", sorted(MALFORMED_MULTIPART))
async def test_a_malformed_multipart_import_is_refused_with_400(
    client: Client, db: Database, case: str
):
    point = await make_point(db)
    staff = await make_staff(db, "harbour_master", [point.site_slug])
    csrf = await sign_in(client, staff.email, staff.password)
    content_type, body = MALFORMED_MULTIPART[case]
    answer = await client.post(
        f"/admin/sites/{point.site_slug}/import",
        content=body,
        headers={"content-type": content_type, "x-csrftoken": csrf},
    )
    assert answer.status_code == 400, answer.status_code
    assert await count_visits(db, point) == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"kind": "vessel", '),
        ("application/json", b"\xff\xfe\x00{"),
        ("application/json", b"[" * 5000),
        ("application/json", b'{"kind": "vessel", "persons": 1e999999}'),
        ("text/plain", b"kind=vessel"),
        ("multipart/form-data; boundary=x", _PART + b"--x--\r\n"),
    ],
    ids=["cut off", "not utf-8", "deeply nested", "huge number", "plain text", "multipart"],
)
async def test_a_malformed_api_body_gets_a_4xx_in_the_api_error_shape(
    client: Client, db: Database, content_type: str, body: bytes
):
    point = await make_point(db)
    token = await api_token(db, "harbour_master", point.site_slug)
    answer = await client.post(
        f"/api/v1/sites/{point.site_slug}/visits",
        content=body,
        headers={"content-type": content_type, "authorization": f"Bearer {token}"},
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.status_code in (400, 413, 415, 422)
    body_json = answer.json()
    assert body_json.keys() >= ERROR_KEYS
    assert await count_visits(db, point) == 0


# --- slow clients, against a real server ------------------------------------------------------

BODY_TIMEOUT = 1  # seconds, for the server in these tests


@pytest.fixture(scope="module")
def slow_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with live_server(
        shared_database_url, tmp_path_factory.mktemp("slow"), body_timeout_seconds=BODY_TIMEOUT
    ) as server:
        yield server


def address(server: LiveServer) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").split(":")
    return host, int(port)


def start_trickling(
    server: LiveServer,
    path: str,
    *,
    declared: int,
    headers: str = "",
    pause: float = 0.25,
    complete: bool = False,
) -> tuple[socket.socket, threading.Event]:
    """Send a request's headers, then its body a byte at a time until told to stop (one
    byte short of what it declared, unless `complete`)."""
    conn = socket.create_connection(address(server), timeout=10)
    conn.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: {address(server)[0]}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {declared}\r\n{headers}\r\n"
        ).encode()
    )
    stop = threading.Event()

    def trickle() -> None:
        for _ in range(declared if complete else declared - 1):
            if stop.wait(pause):
                return
            try:
                conn.sendall(b"x")
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    return conn, stop


def read_answer(conn: socket.socket, *, within: float) -> tuple[bytes, bool]:
    """What the server answered and whether it then closed the connection."""
    conn.settimeout(within)
    received = b""
    closed = False
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            break
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        received += chunk
        if complete(received):
            # The whole answer is in; whether the server then closes is worth a moment more.
            conn.settimeout(0.5)
            deadline = min(deadline, time.monotonic() + 0.5)
    return received, closed


def complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return bool(sep) and length is not None and len(body) >= int(length.group(1))


def health_time(server: LiveServer) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(server.url("/health"), timeout=5) as answer:
        assert answer.status == 200
    return time.monotonic() - started


def test_a_client_that_trickles_its_check_in_is_cut_off_with_408_and_the_connection_closed(
    slow_server: LiveServer,
):
    point = slow_server.new_point()
    started = time.monotonic()
    conn, stop = start_trickling(slow_server, f"/k/{point.token}", declared=2000)
    try:
        answer, closed = read_answer(conn, within=BODY_TIMEOUT + 8)
    finally:
        stop.set()
        conn.close()
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer.lower()
    assert closed
    assert BODY_TIMEOUT * 0.9 <= took < BODY_TIMEOUT + 6
    assert slow_server.stored_visit("none-such") is None


def test_while_many_clients_trickle_everyone_else_is_served_at_once(slow_server: LiveServer):
    point = slow_server.new_point()
    slow = [
        start_trickling(slow_server, f"/k/{point.token}", declared=5000, pause=0.1)
        for _ in range(30)
    ]
    try:
        times = [health_time(slow_server) for _ in range(10)]
        page = urllib.request.urlopen(slow_server.url(point.url), timeout=5)
        assert page.status == 200
        answers = [read_answer(conn, within=BODY_TIMEOUT + 8) for conn, _stop in slow]
    finally:
        for conn, stop in slow:
            stop.set()
            conn.close()
    assert max(times) < 1.0, times
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer, _closed in answers)
    # After the slow ones are gone the server is still there.
    assert health_time(slow_server) < 1.0


def test_a_stalled_api_request_gets_408_in_the_api_error_shape(slow_server: LiveServer):
    import json

    point = slow_server.new_point()

    async def make_token() -> str:
        db = Database(slow_server.settings.database_url)
        try:
            return await api_token(db, "harbour_master", point.site_slug)
        finally:
            await db.dispose()

    token = run_async(make_token)
    conn = socket.create_connection(address(slow_server), timeout=10)
    try:
        conn.sendall(
            (
                f"POST /api/v1/sites/{point.site_slug}/visits HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            ).encode()
        )
        answer, closed = read_answer(conn, within=BODY_TIMEOUT + 8)
    finally:
        conn.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert closed
    error = json.loads(body)
    assert error["code"] == "timeout"
    assert error.keys() >= ERROR_KEYS


def test_a_body_that_arrives_in_time_is_not_cut_off(slow_server: LiveServer, tmp_path: Path):
    """The deadline is for the whole body: a normal client, even with pauses, is served."""
    point = slow_server.new_point()
    conn, stop = start_trickling(
        slow_server, f"/k/{point.token}", declared=3, pause=0.2, complete=True
    )
    try:
        answer, _closed = read_answer(conn, within=BODY_TIMEOUT + 5)
    finally:
        stop.set()
        conn.close()
    # Three bytes in 0.4 s: read in time, then refused for what they are (no CSRF token).
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]


def test_a_chunked_body_that_grows_past_the_limit_is_refused_with_413(slow_server: LiveServer):
    """No Content-Length to refuse up front: the server counts what arrives and stops."""
    point = slow_server.new_point()
    conn = socket.create_connection(address(slow_server), timeout=10)
    try:
        conn.sendall(
            (
                f"POST /k/{point.token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        chunk = b"x" * 1024
        try:
            for _ in range(200):  # 200 KiB, over the 64 KiB limit
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may stop reading (and close) once it has refused
        answer, _closed = read_answer(conn, within=5)
    finally:
        conn.close()
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


async def test_a_page_asked_for_an_id_beyond_the_databases_integers_is_not_found(
    client: AsyncTestClient[Litestar], db: Database
):
    staff = await make_staff(db, "admin")
    await sign_in(client, staff.email)

    for path in ("/admin/visits/2957287029", "/admin/flags/2957287029", "/admin/users/99999999999"):
        response = await client.get(path)
        assert response.status_code == 404, path


async def test_a_register_date_off_the_calendars_ends_is_a_message_not_an_error(
    client: AsyncTestClient[Litestar], db: Database
):
    point = await make_point(db, "marina")
    staff = await make_staff(db, "harbour_master", [point.site_slug])
    await sign_in(client, staff.email)

    # The register names the field; the police list refuses the period as a whole.
    messages = {
        "register": "Please enter a date like 2026-07-14.",
        "print": "Please enter two dates, the first not after the second.",
    }
    for query in ("from=0001-01-01", "to=9999-12-31"):
        for page, message in messages.items():
            response = await client.get(f"/admin/sites/{point.site_slug}/{page}?{query}")
            assert response.status_code == 400, (page, query)
            assert message in response.text, (page, query)
