"""Check in, look up and check out a visit: the visitor's side of the register."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Visit
from nightreg.security import private_link_token, token_hash
from nightreg.services import audit, duplicates, visits
from nightreg.services.access import Actor
from nightreg.services.writer import VisitWriter
from nightreg.validation import CheckinData, FieldError, Invalid, validate_new_departure

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


# Whoever holds a private link: the audit trail names them so, and nothing more.
VISITOR = Actor(kind="visitor")
MSG_VISIT_ENDED = N_("This visit has ended: you are checked out.")

# The most private links one phone keeps in its remembered-visitor cookie.
MAX_OWN_VISITS = 5


async def own_visits(db: Database, tokens: list[str]) -> list[tuple[Visit, str]]:
    """The visits behind the private links a phone keeps (with each link), newest first."""
    wanted = {token_hash(t): t for t in tokens[:MAX_OWN_VISITS] if t and len(t) <= 128}
    if not wanted:
        return []
    async with db.read() as session:
        found = await session.scalars(
            select(Visit)
            .where(Visit.private_token_hash.in_(wanted))
            .options(joinedload(Visit.site))
            .order_by(Visit.arrived_at.desc())
        )
        return [(visit, wanted[visit.private_token_hash]) for visit in found]


async def _by_token_for_update(session: AsyncSession, token: str) -> Visit | None:
    return await session.scalar(
        select(Visit)
        .where(duplicates.with_token_hash(token_hash(token)))
        .options(joinedload(Visit.site))
        .with_for_update(of=Visit)
    )


async def check_out(db: Database, token: str, now: datetime) -> Visit | None:
    """Set the departure of the visit behind a private link; a second check-out changes nothing.

    Audited as the staff's check-out is, with the visitor as the actor.
    """
    if not token or len(token) > 128:
        return None
    async with db.write() as session:
        visit = await _by_token_for_update(session, token)
        if visit is None or visit.departed_at is not None:
            return visit
        visit.departed_at = now
        visit.updated_at = now
        await audit.record(
            session, VISITOR, "visit_checked_out", at=now, site_id=visit.site_id,
            object_type="visit", object_id=visit.id,
            details={"before": {"departed_at": None}, "after": {"departed_at": now}},
        )  # fmt: skip
    return visit


async def extend_stay(db: Database, token: str, departure: str, *, now: datetime) -> Visit | None:
    """A new expected departure for the visit behind a private link (extend my stay).

    Checked as the check-in's is (after the arrival, within a year of it) and later than now;
    a visit that has ended is not changed. Raises Invalid on "expected_departure_at";
    audited with the old and the new time.
    """
    if not token or len(token) > 128:
        return None
    async with db.write() as session:
        visit = await _by_token_for_update(session, token)
        if visit is None:
            return None
        if visit.departed_at is not None:
            raise Invalid({"expected_departure_at": FieldError(MSG_VISIT_ENDED)})
        new, error = validate_new_departure(
            departure, arrived_at=visit.arrived_at, now=now, tz=ZoneInfo(visit.site.timezone)
        )
        if new is None:
            assert error is not None
            raise Invalid({"expected_departure_at": error})
        before = visit.expected_departure_at
        visit.expected_departure_at = new
        visit.updated_at = now
        await audit.record(
            session, VISITOR, "visit_extended", at=now, site_id=visit.site_id,
            object_type="visit", object_id=visit.id,
            details={
                "before": {"expected_departure_at": before},
                "after": {"expected_departure_at": new},
            },
        )  # fmt: skip
    return visit
