"""GET /metrics: the Prometheus text format, for a scraper with the token or an allowed address.

Who may read it (README "Monitoring"): a request with the header
`Authorization: Bearer <NIGHTREG_METRICS_TOKEN>`, or one from an address in
NIGHTREG_METRICS_ALLOW (loopback by default). Anyone else gets 401
(a token would help) or 403 (nothing would), with a body that says nothing more; the database is
not read for them. No session, no CSRF cookie, no language cookie: a scraper is not a browser.

Behind a reverse proxy every request comes from the proxy's address. A request that carries a
forwarding header is let in by address only when NIGHTREG_TRUSTED_PROXIES is set (uvicorn then
puts the original client's address in its place); otherwise only the token opens it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from datetime import datetime
from functools import cache
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from nightreg import metrics
from nightreg.context import AppContext
from nightreg.db_faults import cause_of, is_unavailable
from nightreg.jobs import crontabs, slot_seconds
from nightreg.services.metrics import pool_state, snapshot
from nightreg.settings import Settings

log = logging.getLogger("nightreg.metrics")

PATH = "/metrics"
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _networks(allow: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in allow)


def address_allowed(host: str, allow: tuple[str, ...]) -> bool:
    """Whether `host` (an IP address; anything else is not) lies in one of the networks."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(allow))


def refusal(
    settings: Settings, authorization: str | None, host: str, forwarded: bool
) -> int | None:
    """None when the request may read the metrics, else the status to refuse it with.

    A bearer token decides on its own: the right one opens, a wrong one is 401 even from an
    allowed address (a scraper with a stale token should hear about it).
    """
    if authorization is not None:
        scheme, _, given = authorization.partition(" ")
        token = settings.metrics_token
        if (
            token
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), token.encode())
        ):
            return None
        return 401
    trusted = not forwarded or bool(settings.trusted_proxies)
    if trusted and address_allowed(host, settings.metrics_allow):
        return None
    return 401 if settings.metrics_token else 403


def _refused(status: int) -> Response[str]:
    headers = {"WWW-Authenticate": 'Bearer realm="metrics"'} if status == 401 else {}
    text = "a bearer token is needed\n" if status == 401 else "not allowed from here\n"
    return Response(text, status_code=status, media_type="text/plain", headers=headers)


def job_slots(settings: Settings, now: datetime) -> dict[str, float | None]:
    return {job: slot_seconds(cron, settings, now) for job, cron in crontabs(settings).items()}


@get(PATH, include_in_schema=False)
async def metrics_page(
    request: Request[Any, Any, Any], ctx: NamedDependency[AppContext]
) -> Response[Any]:
    """This process's counters and the database's state, for Prometheus."""
    host = request.client.host if request.client else ""
    forwarded = any(h in request.headers for h in FORWARDING_HEADERS)
    status = refusal(ctx.settings, request.headers.get("authorization"), host, forwarded)
    if status is not None:
        return _refused(status)
    try:
        state = await snapshot(ctx.db, job_slots(ctx.settings, ctx.clock.now()))
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        # The process's own series still tell the operator something; db_up says why the rest
        # is missing.
        log.warning("metrics: the database could not be read: %s", cause_of(exc))
        state = metrics.Snapshot(
            pool=pool_state(ctx.db),
            database="sqlite" if ctx.db.is_sqlite else "postgresql",
            database_up=False,
        )
    return Response(metrics.exposition(state), media_type=metrics.CONTENT_TYPE)
