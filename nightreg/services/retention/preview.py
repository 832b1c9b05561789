"""The purge's preview: what a run at a given time would delete, by category, site and date."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.clock import local_day
from nightreg.db import Database
from nightreg.models import (
    AisMovement,
    AuditEvent,
    Flag,
    JobRun,
    LegalHold,
    Observation,
    SignInFailure,
    StaffSession,
    Visit,
    VisitAggregate,
)
from nightreg.services.holds import hold_in_force, visit_held
from nightreg.services.retention.due import (
    aggregate_cutoff,
    due_ais_movements,
    due_failures,
    due_flags,
    due_forwarded,
    due_job_runs,
    due_observations,
    due_sessions,
    due_sightings,
    due_visits,
    today_of,
    visit_ends,
)
from nightreg.services.retention.policies import CATEGORIES, Defaults, Policy, policies_in
from nightreg.settings import Settings


@dataclass
class CategoryPreview:
    category: str
    count: int = 0
    # Local dates on which the retention clock of the due rows started, with their counts
    # (departure day for visits, review day for flags ...), oldest first.
    by_date: list[tuple[date, int]] = field(default_factory=list)
    # Per site (id → count), for the categories that belong to a site.
    by_site: dict[int, int] = field(default_factory=dict)


@dataclass
class Preview:
    at: datetime
    categories: list[CategoryPreview]
    held_visits: int
    holds_in_force: int

    def count(self, category: str) -> int:
        return next(c.count for c in self.categories if c.category == category)

    @property
    def total(self) -> int:
        return sum(c.count for c in self.categories)


def _by_date(stamps: Iterable[datetime], tz: ZoneInfo) -> Counter[date]:
    return Counter(local_day(s, tz) for s in stamps)


async def preview(db: Database, settings: Settings, *, at: datetime) -> Preview:
    """What a purge run at `at` would delete, by category, site and date; deletes nothing."""
    defaults = Defaults.of(settings)
    today = today_of(settings, at)
    out = {c: CategoryPreview(c) for c in CATEGORIES}
    dates: dict[str, Counter[date]] = defaultdict(Counter)
    async with db.read() as session:
        pols = await policies_in(session, defaults)
        await _sites_due(session, pols, defaults, at, today, out, dates)
        await _installation_due(session, settings, defaults, at, today, out)
        held = await session.scalar(
            select(func.count()).select_from(Visit).where(visit_held(today))
        )
        holds = await session.scalar(
            select(func.count()).select_from(LegalHold).where(hold_in_force(today))
        )
    for category, counter in dates.items():
        out[category].by_date = sorted(counter.items())
    return Preview(
        at=at, categories=list(out.values()), held_visits=held or 0, holds_in_force=holds or 0
    )


async def _sites_due(
    session: AsyncSession,
    pols: list[Policy],
    defaults: Defaults,
    at: datetime,
    today: date,
    out: dict[str, CategoryPreview],
    dates: dict[str, Counter[date]],
) -> None:
    """Flags, visits and observations due at each site, counted into `out` and `dates`."""
    due_flag_ids: list[int] = []
    for policy in pols:
        for category in ("flags_open", "flags_dismissed"):
            rows = list(
                await session.execute(
                    select(Flag.id, Flag.created_at, Flag.reviewed_at, Flag.updated_at).where(
                        due_flags(category, policy, at, today)
                    )
                )
            )
            due_flag_ids += [r[0] for r in rows]
            stamps = [r[1] if category == "flags_open" else (r[2] or r[3]) for r in rows]
            _count(out[category], dates[category], policy, stamps)
    forwarded = await due_forwarded(session, defaults, at, today)
    due_flag_ids += [f[0] for f in forwarded]
    zones = {p.site_id: p for p in pols}
    for _flag_id, site_id, since in forwarded:
        _count(out["flags_forwarded"], dates["flags_forwarded"], zones[site_id], [since])
    for policy in pols:
        stamps = list(
            await session.scalars(
                select(visit_ends()).where(due_visits(policy, at, today, due_flag_ids))
            )
        )
        _count(out["visits"], dates["visits"], policy, stamps)
        stamps = list(
            await session.scalars(
                select(Observation.observed_at).where(due_observations(policy, at, today))
            )
        )
        _count(out["observations"], dates["observations"], policy, stamps)
        stamps = list(
            await session.scalars(
                select(AisMovement.at).where(due_ais_movements(policy, at, today))
            )
        )
        _count(out["ais_movements"], dates["ais_movements"], policy, stamps)
        # Sightings that a visit due in the same run still covers go in that run too, but
        # count here only from the run after (a preview without deleting cannot see them).
        sightings, _last = await due_sightings(session, policy, at, today)
        _count(out["sightings"], dates["sightings"], policy, [s for _i, s in sightings])


async def _installation_due(
    session: AsyncSession,
    settings: Settings,
    defaults: Defaults,
    at: datetime,
    today: date,
    out: dict[str, CategoryPreview],
) -> None:
    """What is due of the whole installation: audit events, job runs, aggregates, sign-ins."""
    audit_cut = at - timedelta(days=defaults.audit_days)
    audit_rows = await session.execute(
        select(func.count(), func.min(AuditEvent.at))
        .select_from(AuditEvent)
        .where(AuditEvent.at < audit_cut)
    )
    n_audit, oldest_audit = audit_rows.one()
    out["audit_events"].count = n_audit
    if oldest_audit is not None:
        out["audit_events"].by_date = [(local_day(oldest_audit, settings.tz), n_audit)]
    cut = aggregate_cutoff(defaults, today)
    counts = {
        "job_runs": select(func.count()).select_from(JobRun).where(due_job_runs(defaults, at)),
        "aggregates": select(func.count())
        .select_from(VisitAggregate)
        .where(VisitAggregate.day < cut),
        "sign_in_failures": select(func.count()).select_from(SignInFailure).where(due_failures(at)),
        "sessions": select(func.count())
        .select_from(StaffSession)
        .where(due_sessions(settings, at)),
    }
    for category, query in counts.items():
        out[category].count = await session.scalar(query) or 0


def _count(
    entry: CategoryPreview, dates: Counter[date], policy: Policy, stamps: list[datetime]
) -> None:
    if not stamps:
        return
    entry.count += len(stamps)
    entry.by_site[policy.site_id] = entry.by_site.get(policy.site_id, 0) + len(stamps)
    dates.update(_by_date(stamps, policy.tz))
