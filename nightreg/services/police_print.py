"""The police print: one site's register for a period, or who is present now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select

from nightreg import visit_status_sql
from nightreg.db import Database
from nightreg.models import Site, Visit
from nightreg.services import audit, duplicates, presence
from nightreg.services.access import Actor
from nightreg.services.register import EXPORT, QueryInvalid, period, site_tz
from nightreg.services.sites import scoped_site


@dataclass(frozen=True)
class PrintOut:
    """The police print: one site's register for a period, or who is present now."""

    site: Site
    visits: list[Visit]
    date_from: date | None
    date_to: date | None
    printed_at: datetime
    # Possible duplicates on the print: visit id -> the visit it may double (staff have not
    # resolved them yet). Those whose visit is on the print too are not counted again.
    marked: dict[int, Visit] = field(default_factory=dict)
    doubled: frozenset[int] = frozenset()

    @property
    def entries(self) -> int:
        """The entries the print counts: a subject present twice counts once."""
        return len(self.visits) - len(self.doubled)


async def print_register(
    db: Database,
    actor: Actor,
    site_id: int,
    *,
    date_from: date | None,
    date_to: date | None,
    now: datetime,
) -> PrintOut:
    """The register for the police: every visit of a period, or (no dates) who is present now.

    Arrival order, complete (no pages): what is printed is what the register holds.
    """
    if date_from and date_to and date_from > date_to:
        raise QueryInvalid("date_to", "must not be before date_from")
    async with db.read() as session:
        site = await scoped_site(session, actor, EXPORT, site_id=site_id)
        stmt = select(Visit).where(Visit.site_id == site.id)
        if date_from is None and date_to is None:
            stmt = stmt.where(visit_status_sql.present_at(now))
        else:
            stmt = period(stmt, site_tz(site), date_from, date_to)
        visits = list(await session.scalars(stmt.order_by(Visit.arrived_at, Visit.id)))
        pairs = await duplicates.pairs_among(session, [v.id for v in visits])
    marked = {p.duplicate.id: p.original for p in pairs}
    doubled = presence.doubled((v.id for v in visits), {dup: of.id for dup, of in marked.items()})
    await audit.log(
        db,
        actor,
        "register_printed",
        at=now,
        site_id=site.id,
        object_ids=[v.id for v in visits],
        details={
            "from": date_from.isoformat() if date_from else None,
            "to": date_to.isoformat() if date_to else None,
            "count": len(visits),
            **({"possible_duplicates": sorted(marked)} if marked else {}),
        },
    )
    return PrintOut(
        site=site, visits=visits, date_from=date_from, date_to=date_to, printed_at=now,
        marked=marked, doubled=frozenset(doubled),
    )  # fmt: skip
