"""Check in, look up and check out a visit: the visitor's side of the register."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from nightreg.db import Database
from nightreg.models import Visit
from nightreg.security import private_link_token, token_hash
from nightreg.services import duplicates, visits
from nightreg.services.writer import VisitWriter
from nightreg.validation import CheckinData

# A retried submit within this window gets the first answer again (with its private link);
# later, the same form replayed (say, from a kiosk's browser history) gets nothing back.
REPLAY_WINDOW = timedelta(minutes=10)

# Form fields that say nothing about the visit and so do not make two submits different.
_NOT_FINGERPRINTED = frozenset({"_csrf_token", "idempotency_key", "remember", "website"})


class ReplayRefused(Exception):
    """The idempotency key was used before for a different request, or too long ago."""


@dataclass(frozen=True)
class CheckinResult:
    visit: Visit
    private_token: str
    replayed: bool


def request_fingerprint(form: Mapping[str, str]) -> str:
    """A digest of what the visitor sent, to tell a double submit from a reused form."""
    digest = hashlib.sha256()
    for key in sorted(k for k in form if k not in _NOT_FINGERPRINTED):
        digest.update(key.encode() + b"\0" + str(form[key]).encode() + b"\0")
    return digest.hexdigest()


async def check_in(
    db: Database,
    *,
    writer: VisitWriter | None = None,
    site_id: int,
    point_id: int | None,
    data: CheckinData,
    now: datetime,
    secret_key: str,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    source: str = "kiosk",
    watchlist_key: str = "",
) -> CheckinResult:
    """Write one visit; a repeat of the same request returns the visit written the first time.

    With a `watchlist_key`, the new visit is then matched against the hub's watchlist; a hit
    raises a flag only analysts see, and the visitor's answer is the same either way.
    """
    token = private_link_token(secret_key, idempotency_key)
    row = visits.visit_row(
        data,
        site_id=site_id,
        point_id=point_id,
        source=source,
        now=now,
        private_token_hash=token_hash(token),
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    written = await visits.write(db, row, now=now, writer=writer, watchlist_key=watchlist_key)
    if written.replayed:
        return _replay(written.visit, token, fingerprint, now)
    return CheckinResult(visit=written.visit, private_token=token, replayed=False)


def _replay(earlier: Visit, token: str, fingerprint: str | None, now: datetime) -> CheckinResult:
    if earlier.request_fingerprint != fingerprint or now - earlier.created_at > REPLAY_WINDOW:
        raise ReplayRefused(earlier.reference)
    return CheckinResult(visit=earlier, private_token=token, replayed=True)


async def visit_by_private_token(db: Database, token: str) -> Visit | None:
    """The one visit a private link shows; nothing else is reachable through it.

    The link of a visit that staff merged into another shows the visit it went into.
    """
    if not token or len(token) > 128:
        return None
    async with db.read() as session:
        return await session.scalar(
            select(Visit)
            .where(duplicates.with_token_hash(token_hash(token)))
            .options(joinedload(Visit.site))
        )


async def check_out(db: Database, token: str, now: datetime) -> Visit | None:
    """Set the departure of the visit behind a private link; a second check-out changes nothing."""
    if not token or len(token) > 128:
        return None
    async with db.write() as session:
        await session.execute(
            update(Visit)
            .where(duplicates.with_token_hash(token_hash(token)), Visit.departed_at.is_(None))
            .values(departed_at=now, updated_at=now)
        )
    return await visit_by_private_token(db, token)
