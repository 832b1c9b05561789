"""What is due: the conditions that pick the rows past their retention, for preview and purge."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.clock import local_day
from nightreg.models import (
    AisMovement,
    Flag,
    JobRun,
    LegalHold,
    Observation,
    SharingAgreement,
    Sighting,
    Signal,
    SignInFailure,
    StaffSession,
    Visit,
    flag_visit,
)
from nightreg.services.ais.store import UNMATCHED_DAYS as AIS_UNMATCHED_DAYS
from nightreg.services.holds import flag_held, hold_in_force, sighting_held, visit_held
from nightreg.services.retention.policies import SIGN_IN_FAILURE_DAYS, Defaults, Policy
from nightreg.services.sightings import UNMATCHED_DAYS as SIGHTING_UNMATCHED_DAYS
from nightreg.services.sightings import covers
from nightreg.settings import Settings


def visit_ends() -> ColumnElement[datetime]:
    return func.coalesce(Visit.departed_at, Visit.expected_departure_at)


def due_visits(
    policy: Policy, now: datetime, today: date, spared_flags: Iterable[int] = ()
) -> ColumnElement[bool]:
    """Visits of the site past retention, evidence of no flag that stays, and not held.

    `spared_flags` are flags that are themselves due (the preview, which deletes nothing,
    counts the visits their deletion will free).
    """
    spared = list(spared_flags)
    evidence = select(flag_visit.c.flag_id).where(flag_visit.c.visit_id == Visit.id)
    if spared:
        evidence = evidence.where(flag_visit.c.flag_id.not_in(spared))
    return and_(
        Visit.site_id == policy.site_id,
        visit_ends() < now - timedelta(days=policy.visit_days),
        ~evidence.exists(),
        ~visit_held(today),
    )


def due_flags(category: str, policy: Policy, now: datetime, today: date) -> ColumnElement[bool]:
    if category == "flags_open":
        return and_(
            Flag.site_id == policy.site_id,
            Flag.status.in_(("open", "watching")),
            Flag.created_at < now - timedelta(days=policy.open_flag_days),
            ~flag_held(today),
        )
    return and_(
        Flag.site_id == policy.site_id,
        Flag.status.in_(("dismissed", "expired")),
        func.coalesce(Flag.reviewed_at, Flag.updated_at)
        < now - timedelta(days=policy.dismissed_flag_days),
        ~flag_held(today),
    )


async def due_forwarded(
    session: AsyncSession, defaults: Defaults, now: datetime, today: date
) -> list[tuple[int, int, datetime]]:
    """(flag id, site id, when its retention began) of forwarded flags past their agreement's
    keep_days; the longest agreement counts when a flag went under several."""
    rows = await session.execute(
        select(
            Flag.id,
            Flag.site_id,
            func.coalesce(Flag.reviewed_at, Flag.updated_at),
            func.max(SharingAgreement.keep_days),
        )
        .outerjoin(Signal, Signal.flag_id == Flag.id)
        .outerjoin(SharingAgreement, SharingAgreement.id == Signal.agreement_id)
        .where(Flag.status == "forwarded", ~flag_held(today))
        .group_by(Flag.id, Flag.site_id, Flag.reviewed_at, Flag.updated_at)
    )
    due = []
    for flag_id, site_id, since, keep in rows:
        days = keep if keep is not None else defaults.forwarded_flag_days
        if since < now - timedelta(days=days):
            due.append((flag_id, site_id, since))
    return due


def today_of(settings: Settings, now: datetime) -> date:
    return local_day(now, settings.tz)


def aggregate_cutoff(defaults: Defaults, today: date) -> date:
    try:
        return today.replace(year=today.year - defaults.aggregate_years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - defaults.aggregate_years, day=28)


def due_observations(policy: Policy, now: datetime, today: date) -> ColumnElement[bool]:
    """Observations past the site's visit retention, whose visit is gone (or never was), that
    no flag cites, at a site without a hold."""
    cited = exists().where(Flag.observation_id == Observation.id)
    site_held = exists().where(
        hold_in_force(today), LegalHold.scope == "site", LegalHold.site_id == Observation.site_id
    )
    return and_(
        Observation.site_id == policy.site_id,
        Observation.observed_at < now - timedelta(days=policy.visit_days),
        Observation.visit_id.is_(None),
        ~cited,
        ~site_held,
    )


def due_ais_movements(policy: Policy, now: datetime, today: date) -> ColumnElement[bool]:
    """AIS movements of the site that matched no visit, older than AIS_UNMATCHED_DAYS, not held
    (a hold on the site, or on the subject `mmsi:…`). A matched movement goes with its visit."""
    held = exists().where(
        hold_in_force(today),
        or_(
            and_(LegalHold.scope == "site", LegalHold.site_id == AisMovement.site_id),
            and_(
                LegalHold.scope == "subject",
                LegalHold.subject_key == literal("mmsi:") + AisMovement.mmsi,
                or_(LegalHold.site_id.is_(None), LegalHold.site_id == AisMovement.site_id),
            ),
        ),
    )
    return and_(
        AisMovement.site_id == policy.site_id,
        AisMovement.visit_id.is_(None),
        AisMovement.at < now - timedelta(days=AIS_UNMATCHED_DAYS),
        ~held,
    )


def due_failures(now: datetime) -> ColumnElement[bool]:
    return SignInFailure.at < now - timedelta(days=SIGN_IN_FAILURE_DAYS)


def due_sessions(settings: Settings, now: datetime) -> ColumnElement[bool]:
    """Sessions that can no longer be used: idle too long, or past their absolute limit."""
    return or_(
        StaffSession.last_seen_at < now - timedelta(minutes=settings.session_idle_minutes),
        StaffSession.created_at < now - timedelta(hours=settings.session_absolute_hours),
    )


def due_job_runs(defaults: Defaults, now: datetime) -> ColumnElement[bool]:
    """Job runs past retention, except each job's newest successful run (the scan reads it)."""
    newest_ok = (
        select(func.max(JobRun.id).label("id"))
        .where(JobRun.status == "ok")
        .group_by(JobRun.job)
        .scalar_subquery()
    )
    return and_(
        JobRun.started_at < now - timedelta(days=defaults.job_run_days),
        JobRun.status != "running",
        JobRun.id.not_in(newest_ok),
    )


async def due_sightings(
    session: AsyncSession,
    policy: Policy,
    now: datetime,
    today: date,
    *,
    after_id: int = 0,
    limit: int | None = None,
) -> tuple[list[tuple[int, datetime]], int]:
    """(id, seen at) of the site's gate camera sightings past SIGHTING_UNMATCHED_DAYS that no visit
    covers and no hold keeps, among the next `limit` old ones after `after_id`; and the last
    id looked at (0 when none was).

    A sighting that a visit covers (nightreg.services.sightings.covers) lives as long as the
    visit: once the visit is purged, it is an old sighting that nothing covers. Whether a
    visit covers it is a question of time with a margin, answered here rather than in SQL.
    """
    stmt = (
        select(Sighting.id, Sighting.subject_key, Sighting.seen_at)
        .where(
            Sighting.site_id == policy.site_id,
            Sighting.seen_at < now - timedelta(days=SIGHTING_UNMATCHED_DAYS),
            Sighting.id > after_id,
            ~sighting_held(today),
        )
        .order_by(Sighting.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = (await session.execute(stmt)).all()
    if not rows:
        return [], 0
    keys = sorted({key for _id, key, _at in rows})
    stays: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for start in range(0, len(keys), 500):
        visits = await session.execute(
            select(Visit.subject_key, Visit.arrived_at, Visit.departed_at).where(
                Visit.site_id == policy.site_id, Visit.subject_key.in_(keys[start : start + 500])
            )
        )
        for key, arrived_at, departed_at in visits.all():
            stays.setdefault(key, []).append((arrived_at, departed_at))
    due = [
        (sighting_id, seen_at)
        for sighting_id, key, seen_at in rows
        if not any(covers(a, d, seen_at, now) for a, d in stays.get(key, ()))
    ]
    return due, rows[-1][0]
