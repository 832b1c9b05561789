"""The outbox at a glance, for the admin's Jobs page: signals by status, and the latest that
failed or are waiting for another try. Delivering them is nightreg.services.dispatch's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from nightreg.db import Database
from nightreg.models import Signal, Site
from nightreg.settings import Settings


@dataclass(frozen=True)
class OutboxSignal:
    """A signal as the Jobs page lists it: no payload, no personal data."""

    uid: str
    site: str
    rule: str
    attempts: int
    last_status_code: int | None
    last_error: str
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    withheld: bool = False  # its agreement lapsed first: never sent, so never sent again


@dataclass(frozen=True)
class Outbox:
    push: bool
    hub: str  # the hub's address without its path: where signals go
    pending: int
    delivered: int
    failed: int
    failed_recent: list[OutboxSignal]
    retrying_recent: list[OutboxSignal]


async def outbox(db: Database, settings: Settings, *, limit: int = 10) -> Outbox:
    """Counts by status, the latest failed signals, and pending ones whose last try failed."""
    async with db.read() as session:
        by_status = dict(
            (
                await session.execute(
                    select(Signal.status, func.count()).group_by(Signal.status)
                )
            ).all()
        )  # fmt: skip

        def listed(status: str) -> Any:
            return (
                select(
                    Signal.uid, Site.name, Signal.rule, Signal.attempts, Signal.last_status_code,
                    Signal.last_error, Signal.last_attempt_at, Signal.next_attempt_at,
                    Signal.withheld,
                )
                .join(Site, Site.id == Signal.site_id)
                .where(Signal.status == status)
            )  # fmt: skip

        failed_rows = (
            await session.execute(
                listed("failed")
                .order_by(Signal.last_attempt_at.desc().nulls_last(), Signal.id.desc())
                .limit(limit)
            )
        ).all()
        retrying_rows = (
            await session.execute(
                listed("pending")
                .where(Signal.last_error.is_not(None))
                .order_by(Signal.last_attempt_at.desc().nulls_last(), Signal.id.desc())
                .limit(limit)
            )
        ).all()

    def item(row: Any, *, next_attempt: bool) -> OutboxSignal:
        uid, site, rule, attempts, code, error, last_at, next_at, withheld = row
        return OutboxSignal(
            uid, site, rule, attempts, code, error or "", last_at,
            next_at if next_attempt else None, withheld,
        )  # fmt: skip

    parts = urlsplit(settings.hub_url)
    return Outbox(
        push=bool(settings.hub_url),
        hub=f"{parts.scheme}://{parts.netloc}" if settings.hub_url else "",
        pending=int(by_status.get("pending", 0)),
        delivered=int(by_status.get("delivered", 0)),
        failed=int(by_status.get("failed", 0)),
        failed_recent=[item(r, next_attempt=False) for r in failed_rows],
        retrying_recent=[item(r, next_attempt=True) for r in retrying_rows],
    )
