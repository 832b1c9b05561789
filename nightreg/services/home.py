"""The staff home page's figures: per role, what needs doing now. Counts only, no HTTP.

Every figure here is a number, a time or a state; none names a guest, so building the home
page reads no personal data and is not audited (the pages the figures link to are).

A figure whose source does not exist yet is a hook that returns None, and the page leaves its
tile out: `possible_duplicates` (the duplicate markers) and `last_round` (the night round).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg import visit_status_sql
from nightreg.clock import local_midnight
from nightreg.db import Database
from nightreg.models import (
    AuditEvent,
    JobRun,
    LegalHold,
    NightRound,
    PossibleDuplicate,
    RoundMark,
    Signal,
    Site,
    User,
    Visit,
)
from nightreg.services import agreements as agreement_rules
from nightreg.services import audit, audit_checkpoints, rounds
from nightreg.services import flags as flag_queue
from nightreg.services.access import Actor
from nightreg.services.holds import hold_in_force

# How far ahead an agreement's end counts as "soon" on the admin's home.
AGREEMENT_ENDS_SOON = timedelta(days=30)
# The window in which a job's failed runs are counted.
FAILURES_SINCE = timedelta(days=7)


@dataclass(frozen=True)
class RoundSummary:
    """The last night round of a site (from the night round, once it exists)."""

    ended_at: datetime
    walked_by: str
    not_seen: int


@dataclass(frozen=True)
class SiteFigures:
    """One site on the home of a harbour master or security guard."""

    site: Site
    present: int
    arrived_today: int
    leaving_today: int
    overdue: int
    open_flags: int | None  # None: the account may not open the queue
    possible_duplicates: int | None  # None: not counted (yet); the tile is left out
    last_round: RoundSummary | None  # None: no round (yet); the tile is left out


@dataclass(frozen=True)
class JobHealth:
    name: str
    last_run: JobRun | None
    failures: int  # failed runs within FAILURES_SINCE


@dataclass(frozen=True)
class AgreementEnd:
    id: int
    name: str
    ends: object  # a date


@dataclass
class Home:
    """What the home page shows; a section is None where the role has no part of it."""

    sites: list[SiteFigures] = field(default_factory=list)
    last_scan: JobRun | None = None
    # the analyst
    new_signals: int | None = None
    signals_since: datetime | None = None
    agreements_in_force: int | None = None
    # the auditor (and the admin)
    checkpoint: audit_checkpoints.Checkpoint | None = None
    checkpoint_problem: str | None = None
    chain_events: int | None = None
    last_purge: AuditEvent | None = None
    holds_in_force: int | None = None
    # the admin
    jobs: list[JobHealth] = field(default_factory=list)
    outbox_pending: int | None = None
    outbox_failed: int | None = None
    without_two_factor: int | None = None
    agreements_ending: list[AgreementEnd] = field(default_factory=list)


# --- hooks for figures whose source is being built -----------------------------------------


async def possible_duplicates(session: AsyncSession, site_id: int, now: datetime) -> int | None:
    """Possible duplicates not yet merged or kept (nightreg.services.duplicates)."""
    return await session.scalar(
        select(func.count())
        .select_from(PossibleDuplicate)
        .where(PossibleDuplicate.site_id == site_id)
    )


async def last_round(session: AsyncSession, site_id: int) -> RoundSummary | None:
    """The site's last finished night round (marinas); None when none was walked."""
    walked = await session.scalar(
        select(NightRound)
        .where(NightRound.site_id == site_id, NightRound.ended_at.is_not(None))
        .order_by(NightRound.ended_at.desc())
        .limit(1)
    )
    if walked is None or walked.ended_at is None:
        return None
    marks = await session.scalars(select(RoundMark).where(RoundMark.round_id == walked.id))
    # A boat marked twice on one round counts by its last mark, as the round's page does.
    missing = rounds.counts_of(rounds.last_marks(marks)).get("missing", 0)
    return RoundSummary(ended_at=walked.ended_at, walked_by=walked.walked_by, not_seen=missing)


# --- the figures -------------------------------------------------------------------------


async def site_figures(
    session: AsyncSession, actor: Actor, site: Site, *, now: datetime
) -> SiteFigures:
    """Tonight's board in numbers: the same definitions as nightreg.services.tonight."""
    tz = ZoneInfo(site.timezone)
    today = now.astimezone(tz).date()
    midnight = local_midnight(today, tz)
    next_midnight = local_midnight(today + timedelta(days=1), tz)
    here = Visit.site_id == site.id
    # Who is here (the partial index of present visits), then who came today (by arrival).
    present = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(
                    Visit.expected_departure_at > now, Visit.expected_departure_at < next_midnight
                ),
                func.count().filter(Visit.expected_departure_at <= now),
            ).where(here, visit_status_sql.present_at(now))
        )
    ).one()
    arrived_today = await session.scalar(
        select(func.count()).where(here, Visit.arrived_at >= midnight, Visit.arrived_at <= now)
    )
    open_flags = (
        await flag_queue.open_flag_count_in(session, actor, site.id)
        if actor.can(flag_queue.VIEW, site.id)
        else None
    )
    return SiteFigures(
        site=site,
        present=int(present[0]),
        arrived_today=int(arrived_today or 0),
        leaving_today=int(present[1]),
        overdue=int(present[2]),
        open_flags=open_flags,
        possible_duplicates=await possible_duplicates(session, site.id, now),
        last_round=await last_round(session, site.id) if site.kind == "marina" else None,
    )


async def _last_run(session: AsyncSession, job: str) -> JobRun | None:
    found: JobRun | None = await session.scalar(
        select(JobRun).where(JobRun.job == job).order_by(JobRun.started_at.desc()).limit(1)
    )
    return found


async def _previous_sign_in(session: AsyncSession, actor: Actor) -> datetime | None:
    """When the account signed in before this session (its second latest sign-in)."""
    found: datetime | None = await session.scalar(
        select(AuditEvent.at)
        .where(AuditEvent.actor == actor.label, AuditEvent.action == "sign_in")
        .order_by(AuditEvent.at.desc())
        .offset(1)
        .limit(1)
    )
    return found


async def home(
    db: Database,
    actor: Actor,
    sites: Sequence[Site],
    *,
    now: datetime,
    tz: ZoneInfo,
    job_names: Sequence[str] = (),
    checkpoint_dir: Path | None = None,
) -> Home:
    """The figures for `actor`'s home: `sites` are the sites its navigation offers."""
    out = Home()
    today = now.astimezone(tz).date()
    async with db.read() as session:
        if actor.can("register.view"):
            for site in sites:
                if actor.can("register.view", site.id):
                    out.sites.append(await site_figures(session, actor, site, now=now))
            out.last_scan = await _last_run(session, "scan")
        if actor.can("signals.view"):
            since = await _previous_sign_in(session, actor) or now - timedelta(days=7)
            out.signals_since = since
            out.new_signals = int(
                await session.scalar(
                    select(func.count()).select_from(Signal).where(Signal.created_at > since)
                )
                or 0
            )
        if actor.can("agreements.view") or actor.can("signals.view"):
            every = await agreement_rules.all_agreements(session)
            out.agreements_in_force = sum(agreement_rules.in_force(a, now, tz) for a in every)
            if actor.can("agreements.manage"):
                horizon = (now + AGREEMENT_ENDS_SOON).astimezone(tz).date()
                out.agreements_ending = [
                    AgreementEnd(a.id, a.name, a.valid_until)
                    for a in every
                    if agreement_rules.in_force(a, now, tz)
                    and a.valid_until is not None
                    and a.valid_until <= horizon
                ]
        if actor.can("retention.view"):
            out.holds_in_force = int(
                await session.scalar(
                    select(func.count()).select_from(LegalHold).where(hold_in_force(today))
                )
                or 0
            )
            out.last_purge = await session.scalar(
                select(AuditEvent)
                .where(AuditEvent.action == "purge_completed")
                .order_by(AuditEvent.id.desc())
                .limit(1)
            )
        if actor.can("jobs.manage"):
            for name in job_names:
                failures = await session.scalar(
                    select(func.count())
                    .select_from(JobRun)
                    .where(
                        JobRun.job == name,
                        JobRun.status == "failed",
                        JobRun.started_at >= now - FAILURES_SINCE,
                    )
                )
                out.jobs.append(JobHealth(name, await _last_run(session, name), int(failures or 0)))
            by_status = dict(
                (
                    await session.execute(
                        select(Signal.status, func.count())
                        .where(Signal.status.in_(("pending", "failed")))
                        .group_by(Signal.status)
                    )
                ).all()
            )  # fmt: skip
            out.outbox_pending = int(by_status.get("pending", 0))
            out.outbox_failed = int(by_status.get("failed", 0))
            out.without_two_factor = int(
                await session.scalar(
                    select(func.count())
                    .select_from(User)
                    .where(User.is_active.is_(True), User.totp_enabled_at.is_(None))
                )
                or 0
            )
    if actor.can("audit.view") and checkpoint_dir is not None:
        out.checkpoint = audit_checkpoints.latest_in(checkpoint_dir)
        _head_id, _hash, count, _keyless = await audit.head(db)
        out.chain_events = count
        if out.checkpoint is not None:
            out.checkpoint_problem = await audit_checkpoints.compare(db, out.checkpoint)
    return out
