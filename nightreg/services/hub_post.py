"""One signed POST of a signal to the hub, and how long to wait after a failed one.

nightreg.services.dispatch runs the deliveries (which signals, how many at once, recording
each outcome once); this module is what one delivery attempt is: the stored body byte for
byte, a fresh signature (nightreg.hubsign), the answer read as an outcome, and the backoff.
"""

from __future__ import annotations

import email.utils
import functools
import json
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

import httpx

from nightreg import hubsign
from nightreg.settings import Settings

# Backoff: the ceiling doubles from 30 s per failed attempt and stops at an hour; the wait is
# drawn uniformly below the ceiling ("full jitter"), so signals that failed together (the hub
# was down) do not all come back in the same second. The job runs every minute, so in practice
# a signal waits at least until the next run.
BASE_DELAY_SECONDS = 30.0
MAX_DELAY_SECONDS = 3600.0
# How much of the hub's answer is kept as the error (it is shown to admins).
ERROR_CHARS = 300
READ_LIMIT = 4096

# The hub's answer to a timestamp outside its tolerance (docs/hub.md): 401 with this JSON code,
# or 425 Too Early. Either is tried again with backoff and never fails the signal: the clocks
# need fixing, not the signal.
STALE_CODE = "stale_timestamp"

Answer = Literal["delivered", "retry", "refused"]


class Jitter(Protocol):
    """Where the random wait comes from (random.Random; tests pass a fixed one)."""

    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class Due:
    """What the dispatcher needs of a pending signal: never more than the outbox row."""

    id: int
    uid: str
    body: str
    site_id: int
    agreement_id: int
    rule: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Attempt:
    """The result of one POST."""

    at: datetime
    outcome: Answer
    status_code: int | None = None
    error: str = ""
    retry_after: float | None = None
    answered: bool = True  # False: no HTTP answer at all (network error, timeout)
    # The hub refused the timestamp (clock drift): retried, never given up for it.
    stale: bool = False
    # The hub's clock, from its Date header, when it sent one.
    hub_date: datetime | None = None


# --- backoff -----------------------------------------------------------------------------


def backoff(attempts: int, rng: Jitter, retry_after: float | None = None) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt (1 for the first)."""
    if retry_after is not None:
        return timedelta(seconds=min(MAX_DELAY_SECONDS, max(0.0, retry_after)))
    ceiling = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** max(0, min(attempts - 1, 30)))
    return timedelta(seconds=rng.uniform(0.0, ceiling))


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true too
        return float(int(value))
    when = http_date(value)
    return None if when is None else max(0.0, (when - now).total_seconds())


def _retryable(status_code: int) -> bool:
    return status_code in (408, 425, 429) or 500 <= status_code <= 599


def http_date(value: str | None) -> datetime | None:
    """An HTTP Date header as an aware datetime; None if absent or unreadable."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _stale_answer(code: int, raw: bytes) -> bool:
    """425, or 401 whose JSON body says {"code": "stale_timestamp"}."""
    if code == 425:
        return True
    if code != 401:
        return False
    try:
        answer = json.loads(raw)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("code") == STALE_CODE


def clocks(at: datetime, hub_date: datetime | None) -> str:
    """Both clocks in words, for an error or a log line."""
    ours = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if hub_date is None:
        return f"our clock {ours}, no Date header from the hub"
    theirs = hub_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    skew = (hub_date - at).total_seconds()
    return f"our clock {ours}, the hub's Date {theirs} ({skew:+.0f} s)"


# --- one POST ----------------------------------------------------------------------------


async def _read_some(response: httpx.Response) -> bytes:
    """The start of the hub's answer."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= READ_LIMIT:
            break
    return b"".join(chunks)[:READ_LIMIT]


def _one_line(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return " ".join(text.split())[:ERROR_CHARS]


async def post(client: httpx.AsyncClient, settings: Settings, due: Due, at: datetime) -> Attempt:
    """POST the signal's stored body, as it is, with this attempt's signature."""
    body = due.body.encode("utf-8")
    headers = hubsign.request_headers(
        body, secret=settings.hub_secret, key_id=settings.hub_signing_key_id,
        installation_id=settings.installation_id, uid=due.uid, at=at,
    )  # fmt: skip
    try:
        async with client.stream("POST", settings.hub_url, content=body, headers=headers) as answer:
            raw = await _read_some(answer)
            code = answer.status_code
            retry_after = answer.headers.get("retry-after")
            hub_date = http_date(answer.headers.get("date"))
    except httpx.TimeoutException as exc:
        error = f"no answer within {settings.hub_timeout_seconds} s ({type(exc).__name__})"
        return Attempt(at=at, outcome="retry", error=error, answered=False)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}".strip()[:ERROR_CHARS]
        return Attempt(at=at, outcome="retry", error=error, answered=False)
    text = _one_line(raw)
    status_line = f"HTTP {code}: {text}" if text else f"HTTP {code}"
    if 200 <= code <= 299:
        return Attempt(at=at, outcome="delivered", status_code=code, hub_date=hub_date)
    if _stale_answer(code, raw):
        error = f"the hub refused our timestamp as stale ({clocks(at, hub_date)}); {status_line}"
        return Attempt(
            at=at, outcome="retry", status_code=code, error=error[:ERROR_CHARS * 2],
            stale=True, hub_date=hub_date,
        )  # fmt: skip
    if _retryable(code):
        return Attempt(
            at=at, outcome="retry", status_code=code, error=status_line,
            retry_after=retry_after_seconds(retry_after, at), hub_date=hub_date,
        )  # fmt: skip
    return Attempt(at=at, outcome="refused", status_code=code, error=status_line, hub_date=hub_date)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client and run: loading the CA bundle costs ~30 ms each time.

    httpx's default: certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR (a hub behind a
    private CA).
    """
    return httpx.create_ssl_context()


def make_client(settings: Settings, connections: int = 1) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        verify=_tls(),
        timeout=httpx.Timeout(float(settings.hub_timeout_seconds)),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        follow_redirects=False,
    )
