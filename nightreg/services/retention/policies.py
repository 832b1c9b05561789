"""Retention policies: the categories, the defaults, and each site's own periods.

Legal holds share retention's permissions (nightreg.services.holds: VIEW, MANAGE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import RetentionPolicy, Site
from nightreg.services import audit
from nightreg.services.access import Actor
from nightreg.services.holds import MANAGE
from nightreg.settings import Settings
from nightreg.validation import FieldError, Invalid

# The categories of a purge, in the order it deletes them: flags first, so that the visits
# they rested on can go in the same run.
CATEGORIES = (
    "flags_open",
    "flags_dismissed",
    "flags_forwarded",
    "visits",
    "observations",
    "ais_movements",
    "sightings",
    "audit_events",
    "job_runs",
    "aggregates",
    "sign_in_failures",
    "sessions",
)
CATEGORY_LABELS = {
    "flags_open": N_("Open and watched flags"),
    "flags_dismissed": N_("Dismissed and expired flags"),
    "flags_forwarded": N_("Forwarded flags and their signals"),
    "visits": N_("Visits (with their notes)"),
    "observations": N_("Observations"),
    "ais_movements": N_("AIS movements that matched no visit (28 days)"),
    "sightings": N_("Gate camera sightings that no visit covers (after 28 days)"),
    "audit_events": N_("Audit events"),
    "job_runs": N_("Job runs"),
    "aggregates": N_("Aggregates (non-personal)"),
    "sign_in_failures": N_("Failed sign-ins (address and e-mail tried)"),
    "sessions": N_("Ended staff sessions"),
}
# Failed sign-ins slow down guessing for 15 minutes; the audit trail keeps each one anyway.
SIGN_IN_FAILURE_DAYS = 7
MAX_DAYS = 3650

MSG_DAYS = N_("Give a number of days between 1 and 3650, or leave it empty for the default.")


# --- policies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Defaults:
    visit_days: int
    open_flag_days: int
    dismissed_flag_days: int
    forwarded_flag_days: int
    audit_days: int
    job_run_days: int
    aggregate_years: int

    @classmethod
    def of(cls, settings: Settings) -> Defaults:
        return cls(
            visit_days=settings.retention_visit_days,
            open_flag_days=settings.retention_open_flag_days,
            dismissed_flag_days=settings.retention_dismissed_flag_days,
            forwarded_flag_days=settings.retention_forwarded_flag_days,
            audit_days=settings.retention_audit_days,
            job_run_days=settings.retention_job_run_days,
            aggregate_years=settings.retention_aggregate_years,
        )


SITE_FIELDS = ("visit_days", "open_flag_days", "dismissed_flag_days")


@dataclass(frozen=True)
class Policy:
    """A site's retention in force: its own periods where it set them, the defaults elsewhere."""

    site_id: int
    slug: str
    name: str
    timezone: str
    visit_days: int
    open_flag_days: int
    dismissed_flag_days: int
    # The fields the site set itself (the rest follow the defaults).
    own: frozenset[str] = frozenset()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


async def policies(db: Database, settings: Settings) -> list[Policy]:
    """Every site's policy in force (inactive sites too: their data must go as well)."""
    async with db.read() as session:
        return await policies_in(session, Defaults.of(settings))


async def policies_in(session: AsyncSession, defaults: Defaults) -> list[Policy]:
    rows = await session.execute(
        select(Site, RetentionPolicy)
        .outerjoin(RetentionPolicy, RetentionPolicy.site_id == Site.id)
        .order_by(Site.name, Site.id)
    )
    out = []
    for site, own in rows:
        chosen = {f: getattr(own, f) for f in SITE_FIELDS if own and getattr(own, f) is not None}
        out.append(
            Policy(
                site_id=site.id,
                slug=site.slug,
                name=site.name,
                timezone=site.timezone,
                visit_days=chosen.get("visit_days", defaults.visit_days),
                open_flag_days=chosen.get("open_flag_days", defaults.open_flag_days),
                dismissed_flag_days=chosen.get("dismissed_flag_days", defaults.dismissed_flag_days),
                own=frozenset(chosen),
            )
        )
    return out


class PolicyInvalid(Invalid):
    """A site's retention periods that cannot be saved as submitted: errors by field name."""


def parse_days(values: dict[str, str]) -> dict[str, int | None]:
    """The policy form's fields as days (None: the default); PolicyInvalid names bad ones."""
    out: dict[str, int | None] = {}
    errors: dict[str, FieldError] = {}
    for name in SITE_FIELDS:
        raw = (values.get(name) or "").strip()
        if not raw:
            out[name] = None
            continue
        try:
            days = int(raw)
        except ValueError:
            errors[name] = FieldError(MSG_DAYS)
            continue
        if not 1 <= days <= MAX_DAYS:
            errors[name] = FieldError(MSG_DAYS)
            continue
        out[name] = days
    if errors:
        raise PolicyInvalid(errors)
    return out


async def set_policy(
    db: Database, actor: Actor, site_id: int, days: dict[str, int | None], *, now: datetime
) -> None:
    """Set a site's own periods (None: follow the default); audited with before and after."""
    actor.require(MANAGE)
    async with db.write() as session:
        site = await session.get(Site, site_id)
        if site is None:
            raise LookupError(site_id)
        row = await session.get(RetentionPolicy, site_id)
        before = {f: getattr(row, f) if row else None for f in SITE_FIELDS}
        after = {f: days.get(f) for f in SITE_FIELDS}
        if before == after:
            return
        if row is None:
            row = RetentionPolicy(site_id=site_id, updated_at=now, updated_by=actor.label[:300])
            session.add(row)
        for name, value in after.items():
            setattr(row, name, value)
        row.updated_at, row.updated_by = now, actor.label[:300]
        await audit.record(
            session, actor, "retention_policy_changed", at=now, site_id=site_id,
            object_type="site", object_id=site_id, details={"before": before, "after": after},
        )  # fmt: skip
