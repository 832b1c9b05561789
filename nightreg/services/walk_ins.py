"""A visit entered by staff (a walk-in) or through the API, written like a check-in."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import Visit
from nightreg.services import audit, visits
from nightreg.services.access import Actor
from nightreg.services.register import EDIT, VisitInvalid, site_tz
from nightreg.services.sites import scoped_site
from nightreg.validation import MSG_CHOICE, FieldError, validate_checkin
from nightreg.vocabulary import SOURCES

MSG_IDEMPOTENCY = N_("This form was used for another site; please start again.")


async def create_visit(
    db: Database,
    actor: Actor,
    site_id: int,
    form: Mapping[str, str],
    *,
    now: datetime,
    source: str = "staff",
    watchlist_key: str = "",
    allow_duplicate: bool = False,
    found: str | None = None,
) -> Visit:
    """A visit entered by staff (a walk-in) or through the API, with the kiosk's validation.

    The arrival may lie up to 7 days back (last night's arrivals entered in the morning); an
    empty arrival means now. A repeated `idempotency_key` returns the visit made the first time.
    A boat, vehicle or guest present at the site now is refused (presence.AlreadyPresent,
    naming the open visit) unless `allow_duplicate`: then it is written, and its audit event
    names the open visit it was added beside.
    The visit and its audit event share one transaction, so the check-ins' group commit is not
    used.
    """
    if source not in SOURCES:
        raise VisitInvalid({"source": FieldError(MSG_CHOICE)})
    key = form.get("idempotency_key") or None
    if key is not None and (not isinstance(key, str) or len(key) > 64):
        key = None
    async with db.read() as session:
        site = await scoped_site(session, actor, EDIT, site_id=site_id)
    if key is not None:
        earlier = await visits.by_idempotency_key(db, key)
        if earlier is not None:
            return await _replay(db, actor, _same_site(earlier, site.id), now)
    data, errors = validate_checkin(
        form, kind=form.get("kind", ""), allowed_kinds=site.visit_kinds, now=now, tz=site_tz(site)
    )
    if data is None:
        raise VisitInvalid(errors)
    row = visits.visit_row(data, site_id=site.id, source=source, now=now, idempotency_key=key)

    async def audit_created(
        session: AsyncSession, visit_id: int, values: Mapping[str, Any]
    ) -> None:
        details = {"kind": data.kind, "source": source, "reference": values["reference"]}
        if found:  # how staff came to add it: "ais" or "camera" (Tonight's "not in the register")
            details["found"] = found
        if values.get("present_visit_id") is not None:
            details["added_beside"] = values["present_visit_id"]
        await audit.record(
            session,
            actor,
            "visit_created",
            at=now,
            site_id=site.id,
            object_type="visit",
            object_id=visit_id,
            details=details,
        )

    written = await visits.write(
        db, row, now=now, in_transaction=audit_created, watchlist_key=watchlist_key,
        on_present="allow" if allow_duplicate else "refuse",
    )  # fmt: skip
    if written.replayed:  # the same form sent twice at once: the other one was first
        return await _replay(db, actor, _same_site(written.visit, site.id), now)
    written.visit.site = site
    return written.visit


async def _replay(db: Database, actor: Actor, earlier: Visit, now: datetime) -> Visit:
    """A repeated key hands out a visit written before: audited as a read of it, so that
    nobody reads a visit through its key without a trace (issue 17, finding 9)."""
    await audit.log(
        db,
        actor,
        "visit_viewed",
        at=now,
        site_id=earlier.site_id,
        object_type="visit",
        object_id=earlier.id,
        details={"replayed": True},
    )
    return earlier


def _same_site(earlier: Visit, site_id: int) -> Visit:
    """The visit an idempotency key names, if it was written for this site."""
    if earlier.site_id != site_id:
        raise VisitInvalid({"idempotency_key": FieldError(MSG_IDEMPOTENCY)})
    return earlier
