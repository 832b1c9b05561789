"""Retention: how long each kind of data lives, what holds it longer, and the purge.

The periods (README "Retention"; docs/privacy.md):

- a visit lives `visit_days` after its departure, or after its expected departure if it was
  never checked out, and as long as any flag rests on it (the evidence lives with the flag);
- an open or watched flag lives at most `open_flag_days` after it was raised;
- a dismissed (or expired) flag lives `dismissed_flag_days` after the review;
- a forwarded flag and its signals live as long as the agreement it went under says
  (`keep_days`, the longest if it went under several), counted from the forwarding;
- observations live as long as visits do (from when they were made), and while their visit
  or a flag needs them;
- audit events, job runs and the aggregates are kept for the whole installation;
- failed sign-ins (an address and the e-mail tried) go after a week, ended staff sessions at
  once (they can no longer be used).

Visits and flags take the site's own policy where it has one (`RetentionPolicy`), the
settings' defaults otherwise. A legal hold in force keeps everything it covers: named visits,
a subject's visits and flags (at one site or all), or everything of a site.

The purge deletes rows (never blanks them) in small transactions so that check-ins go on
between them; each batch deletes and counts its visits into the non-personal aggregates in
one transaction (DELETE … RETURNING), so an interrupted purge, run again, ends in the same
state. The receipt (`purge_completed` in the audit trail) holds counts by category and the
oldest date kept, nothing personal. SQLite runs with `secure_delete` (nightreg.db), so freed
pages are overwritten; the purge then checkpoints the WAL so that no copy of a deleted page
stays in it. PostgreSQL's deleted rows are removed from the tables and their indexes
(including the trigram search index) by VACUUM, which the purge runs on the tables it changed.
"""

from __future__ import annotations

import json
import logging
import time as monotonic
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.clock import local_day
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import (
    AuditAnchor,
    AuditEvent,
    Flag,
    JobRun,
    LegalHold,
    Observation,
    RetentionPolicy,
    SharingAgreement,
    Signal,
    SignInFailure,
    Site,
    StaffSession,
    Visit,
    VisitAggregate,
    flag_visit,
    legal_hold_visit,
)
from nightreg.services import aggregates, audit
from nightreg.services.access import SYSTEM, Actor, NotFound
from nightreg.settings import Settings

log = logging.getLogger("nightreg.retention")

VIEW = "retention.view"
MANAGE = "retention.manage"

# The categories of a purge, in the order it deletes them: flags first, so that the visits
# they rested on can go in the same run.
CATEGORIES = (
    "flags_open",
    "flags_dismissed",
    "flags_forwarded",
    "visits",
    "observations",
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
    "audit_events": N_("Audit events"),
    "job_runs": N_("Job runs"),
    "aggregates": N_("Aggregates (non-personal)"),
    "sign_in_failures": N_("Failed sign-ins (address and e-mail tried)"),
    "sessions": N_("Ended staff sessions"),
}
# Failed sign-ins slow down guessing for 15 minutes; the audit trail keeps each one anyway.
SIGN_IN_FAILURE_DAYS = 7
# Small enough that a batch takes tens of milliseconds, so a check-in waits at most that long
# for the write lock; big enough that a million rows take minutes, not hours. On SQLite every
# check-in queues behind the batch's transaction, and a DELETE costs more per row in bigger
# batches: 100 cut that wait fivefold against 500 (bench/purge.py, bench/README.md "Purge").
BATCH = 500
SQLITE_BATCH = 100
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
        return await _policies(session, Defaults.of(settings))


async def _policies(session: AsyncSession, defaults: Defaults) -> list[Policy]:
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


class PolicyInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


def parse_days(values: dict[str, str]) -> dict[str, int | None]:
    """The policy form's fields as days (None: the default); PolicyInvalid names bad ones."""
    out: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for name in SITE_FIELDS:
        raw = (values.get(name) or "").strip()
        if not raw:
            out[name] = None
            continue
        try:
            days = int(raw)
        except ValueError:
            errors[name] = MSG_DAYS
            continue
        if not 1 <= days <= MAX_DAYS:
            errors[name] = MSG_DAYS
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


# --- holds ----------------------------------------------------------------------------------


def hold_in_force(today: date) -> ColumnElement[bool]:
    return and_(
        LegalHold.released_at.is_(None), or_(LegalHold.until.is_(None), LegalHold.until >= today)
    )


def visit_held(today: date) -> ColumnElement[bool]:
    """True for a visit that a hold in force covers (by name, by subject or by site)."""
    by_site_or_subject = exists().where(
        hold_in_force(today),
        or_(
            and_(LegalHold.scope == "site", LegalHold.site_id == Visit.site_id),
            and_(
                LegalHold.scope == "subject",
                LegalHold.subject_key == Visit.subject_key,
                or_(LegalHold.site_id.is_(None), LegalHold.site_id == Visit.site_id),
            ),
        ),
    )
    by_name = exists().where(
        legal_hold_visit.c.visit_id == Visit.id,
        LegalHold.id == legal_hold_visit.c.hold_id,
        hold_in_force(today),
    )
    return or_(by_site_or_subject, by_name)


def flag_held(today: date) -> ColumnElement[bool]:
    """True for a flag that a hold covers: its site, its subject, or any visit it rests on."""
    held_visit = (
        select(Visit.id)
        .join(flag_visit, flag_visit.c.visit_id == Visit.id)
        .where(flag_visit.c.flag_id == Flag.id, visit_held(today))
        .exists()
    )
    by_site_or_subject = exists().where(
        hold_in_force(today),
        or_(
            and_(LegalHold.scope == "site", LegalHold.site_id == Flag.site_id),
            and_(
                LegalHold.scope == "subject",
                LegalHold.subject_key == Flag.subject,
                or_(LegalHold.site_id.is_(None), LegalHold.site_id == Flag.site_id),
            ),
        ),
    )
    return or_(held_visit, by_site_or_subject)


# --- what is due ----------------------------------------------------------------------------


def _visit_ends() -> ColumnElement[datetime]:
    return func.coalesce(Visit.departed_at, Visit.expected_departure_at)


def _due_visits(
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
        _visit_ends() < now - timedelta(days=policy.visit_days),
        ~evidence.exists(),
        ~visit_held(today),
    )


def _due_flags_simple(
    category: str, policy: Policy, now: datetime, today: date
) -> ColumnElement[bool]:
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


async def _due_forwarded(
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


def _today(settings: Settings, now: datetime) -> date:
    return local_day(now, settings.tz)


def _aggregate_cutoff(defaults: Defaults, today: date) -> date:
    try:
        return today.replace(year=today.year - defaults.aggregate_years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - defaults.aggregate_years, day=28)


# --- preview --------------------------------------------------------------------------------


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
    today = _today(settings, at)
    out = {c: CategoryPreview(c) for c in CATEGORIES}
    dates: dict[str, Counter[date]] = defaultdict(Counter)
    async with db.read() as session:
        pols = await _policies(session, defaults)
        due_flag_ids: list[int] = []
        for policy in pols:
            for category in ("flags_open", "flags_dismissed"):
                rows = list(
                    await session.execute(
                        select(Flag.id, Flag.created_at, Flag.reviewed_at, Flag.updated_at).where(
                            _due_flags_simple(category, policy, at, today)
                        )
                    )
                )
                due_flag_ids += [r[0] for r in rows]
                stamps = [r[1] if category == "flags_open" else (r[2] or r[3]) for r in rows]
                _count(out[category], dates[category], policy, stamps)
        forwarded = await _due_forwarded(session, defaults, at, today)
        due_flag_ids += [f[0] for f in forwarded]
        zones = {p.site_id: p for p in pols}
        for _flag_id, site_id, since in forwarded:
            _count(out["flags_forwarded"], dates["flags_forwarded"], zones[site_id], [since])
        for policy in pols:
            stamps = list(
                await session.scalars(
                    select(_visit_ends()).where(_due_visits(policy, at, today, due_flag_ids))
                )
            )
            _count(out["visits"], dates["visits"], policy, stamps)
            stamps = list(
                await session.scalars(
                    select(Observation.observed_at).where(_due_observations(policy, at, today))
                )
            )
            _count(out["observations"], dates["observations"], policy, stamps)
        tz = settings.tz
        audit_cut = at - timedelta(days=defaults.audit_days)
        audit_rows = await session.execute(
            select(func.count(), func.min(AuditEvent.at))
            .select_from(AuditEvent)
            .where(AuditEvent.at < audit_cut)
        )
        n_audit, oldest_audit = audit_rows.one()
        out["audit_events"].count = n_audit
        if oldest_audit is not None:
            out["audit_events"].by_date = [(local_day(oldest_audit, tz), n_audit)]
        out["job_runs"].count = (
            await session.scalar(
                select(func.count()).select_from(JobRun).where(_due_job_runs(defaults, at))
            )
            or 0
        )
        cut = _aggregate_cutoff(defaults, today)
        out["aggregates"].count = (
            await session.scalar(
                select(func.count()).select_from(VisitAggregate).where(VisitAggregate.day < cut)
            )
            or 0
        )
        out["sign_in_failures"].count = (
            await session.scalar(
                select(func.count()).select_from(SignInFailure).where(_due_failures(at))
            )
            or 0
        )
        out["sessions"].count = (
            await session.scalar(
                select(func.count()).select_from(StaffSession).where(_due_sessions(settings, at))
            )
            or 0
        )
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


def _count(
    entry: CategoryPreview, dates: Counter[date], policy: Policy, stamps: list[datetime]
) -> None:
    if not stamps:
        return
    entry.count += len(stamps)
    entry.by_site[policy.site_id] = entry.by_site.get(policy.site_id, 0) + len(stamps)
    dates.update(_by_date(stamps, policy.tz))


def _due_observations(policy: Policy, now: datetime, today: date) -> ColumnElement[bool]:
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


def _due_failures(now: datetime) -> ColumnElement[bool]:
    return SignInFailure.at < now - timedelta(days=SIGN_IN_FAILURE_DAYS)


def _due_sessions(settings: Settings, now: datetime) -> ColumnElement[bool]:
    """Sessions that can no longer be used: idle too long, or past their absolute limit."""
    return or_(
        StaffSession.last_seen_at < now - timedelta(minutes=settings.session_idle_minutes),
        StaffSession.created_at < now - timedelta(hours=settings.session_absolute_hours),
    )


def _due_job_runs(defaults: Defaults, now: datetime) -> ColumnElement[bool]:
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


# --- the purge ------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    at: datetime
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    aggregated_visits: int = 0
    oldest_kept: dict[str, str] = field(default_factory=dict)
    finished: bool = True

    def counts(self) -> dict[str, int]:
        out = {**self.deleted, "aggregated_visits": self.aggregated_visits}
        if not self.finished:
            out["unfinished"] = 1
        return out


async def purge(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    actor: Actor = SYSTEM,
    batch: int | None = None,
    time_budget: timedelta | None = None,
) -> PurgeResult:
    """Delete what has passed its retention, in batches; record the receipt in the audit."""
    batch = batch or (SQLITE_BATCH if db.is_sqlite else BATCH)
    defaults = Defaults.of(settings)
    today = _today(settings, now)
    result = PurgeResult(at=now)
    deadline = None if time_budget is None else monotonic.monotonic() + time_budget.total_seconds()
    try:
        async with db.read() as session:
            pols = await _policies(session, defaults)
        for policy in pols:
            for category in ("flags_open", "flags_dismissed"):
                result.deleted[category] += await _delete_in_batches(
                    db, delete(Flag), Flag.id, _due_flags_simple(category, policy, now, today),
                    batch, deadline,
                )  # fmt: skip
        async with db.read() as session:
            forwarded = [f[0] for f in await _due_forwarded(session, defaults, now, today)]
        for start in range(0, len(forwarded), batch):
            ids = forwarded[start : start + batch]
            async with db.write() as session:
                # Signals go with their flag (ON DELETE CASCADE); the status is checked again
                # in case new evidence reopened the flag meanwhile.
                gone = await session.execute(
                    delete(Flag)
                    .where(Flag.id.in_(ids), Flag.status == "forwarded")
                    .returning(Flag.id)
                )
                result.deleted["flags_forwarded"] += len(gone.all())
        for policy in pols:
            deleted, aggregated = await _purge_visits(db, policy, now, today, batch, deadline)
            result.deleted["visits"] += deleted
            result.aggregated_visits += aggregated
            result.deleted["observations"] += await _delete_in_batches(
                db, delete(Observation), Observation.id, _due_observations(policy, now, today),
                batch, deadline,
            )  # fmt: skip
        result.deleted["audit_events"] = await _purge_audit(db, defaults, now, batch * 10)
        async with db.write() as session:
            gone = await session.execute(
                delete(JobRun).where(_due_job_runs(defaults, now)).returning(JobRun.id)
            )
            result.deleted["job_runs"] = len(gone.all())
            gone = await session.execute(
                delete(VisitAggregate)
                .where(VisitAggregate.day < _aggregate_cutoff(defaults, today))
                .returning(VisitAggregate.site_id)
            )
            result.deleted["aggregates"] = len(gone.all())
            gone = await session.execute(
                delete(SignInFailure).where(_due_failures(now)).returning(SignInFailure.id)
            )
            result.deleted["sign_in_failures"] = len(gone.all())
            gone = await session.execute(
                delete(StaffSession).where(_due_sessions(settings, now)).returning(StaffSession.id)
            )
            result.deleted["sessions"] = len(gone.all())
    except _OutOfTime:
        result.finished = False
    except BaseException:
        result.finished = False
        await _receipt(db, actor, settings, result, interrupted=True)
        raise
    await _clean_up(db, settings, result)
    await _receipt(db, actor, settings, result, interrupted=False)
    return result


class _OutOfTime(Exception):
    """The run used its time budget; the rest goes next run."""


def _check_time(deadline: float | None) -> None:
    if deadline is not None and monotonic.monotonic() > deadline:
        raise _OutOfTime


async def _delete_in_batches(
    db: Database,
    stmt: Any,
    id_column: Any,
    condition: ColumnElement[bool],
    batch: int,
    deadline: float | None,
) -> int:
    """DELETE … WHERE id IN (a batch of the due ids) until none is left; how many."""
    total = 0
    while True:
        _check_time(deadline)
        async with db.write() as session:
            # correlate(None): the batch's subquery reads its own copy of the table.
            ids = select(id_column).where(condition).limit(batch).correlate(None)
            result = await session.execute(stmt.where(id_column.in_(ids)).returning(id_column))
            gone = len(result.all())
        total += gone
        if gone < batch:
            return total


async def _purge_visits(
    db: Database, policy: Policy, now: datetime, today: date, batch: int, deadline: float | None
) -> tuple[int, int]:
    """Delete the site's due visits, counting each batch into the aggregates as it goes."""
    deleted = aggregated = 0
    zones = {policy.site_id: policy.tz}
    condition = _due_visits(policy, now, today)
    while True:
        _check_time(deadline)
        async with db.write() as session:
            ids = select(Visit.id).where(condition).limit(batch).correlate(None)
            rows = (
                await session.execute(
                    delete(Visit).where(Visit.id.in_(ids)).returning(*aggregates.stay_columns())
                )
            ).all()
            stays = [aggregates.stay_row(tuple(r)) for r in rows]
            await aggregates.add(session, aggregates.contributions(stays, zones))
        deleted += len(rows)
        aggregated += len(stays)
        if len(rows) < batch:
            return deleted, aggregated


async def _purge_audit(db: Database, defaults: Defaults, now: datetime, batch: int) -> int:
    """Delete audit events past retention, oldest first, moving the chain's anchor along."""
    cutoff = now - timedelta(days=defaults.audit_days)
    total = 0
    while True:
        async with db.write() as session:
            last = await session.execute(
                select(AuditEvent.id, AuditEvent.hash)
                .where(AuditEvent.at < cutoff)
                .order_by(AuditEvent.id)
                .limit(batch)
            )
            rows = last.all()
            if not rows:
                return total
            through_id, through_hash = rows[-1]
            # Only a prefix of the chain may go: events are appended in time order, but an id
            # is what the chain follows, so delete by id up to the last one found.
            gone = await session.execute(
                delete(AuditEvent).where(AuditEvent.id <= through_id).returning(AuditEvent.id)
            )
            count = len(gone.all())
            anchor = await session.get(AuditAnchor, 1)
            if anchor is None:
                session.add(
                    AuditAnchor(
                        id=1, removed_through_id=through_id, prev_hash=through_hash,
                        removed_count=count, at=now,
                    )
                )  # fmt: skip
            else:
                anchor.removed_through_id = through_id
                anchor.prev_hash = through_hash
                anchor.removed_count += count
                anchor.at = now
        total += count
        if len(rows) < batch:
            return total


async def _clean_up(db: Database, settings: Settings, result: PurgeResult) -> None:
    """Leave no copy of what was deleted: SQLite's WAL, PostgreSQL's dead rows."""
    if not any(result.deleted.values()):
        return
    async with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            return
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        tables = ["flag", "flag_visit", "signal", "visit", "visit_note", "observation",
                  "audit_event", "job_run", "visit_aggregate", "sign_in_failure",
                  "staff_session"]  # fmt: skip
        for table in tables:
            await conn.execute(text(f"VACUUM {table}"))


async def oldest_kept(db: Database, settings: Settings) -> dict[str, str]:
    """The oldest date still held per category (local dates), for the receipt and the page."""
    tz = settings.tz
    out: dict[str, str] = {}
    async with db.read() as session:
        probes = {
            "visits": select(func.min(Visit.arrived_at)),
            "flags": select(func.min(Flag.created_at)),
            "observations": select(func.min(Observation.observed_at)),
            "audit_events": select(func.min(AuditEvent.at)),
        }
        for name, stmt in probes.items():
            value = await session.scalar(stmt)
            if value is not None:
                out[name] = local_day(value, tz).isoformat()
        day = await session.scalar(select(func.min(VisitAggregate.day)))
        if day is not None:
            out["aggregates"] = day.isoformat()
    return out


async def _receipt(
    db: Database, actor: Actor, settings: Settings, result: PurgeResult, *, interrupted: bool
) -> None:
    """The run's receipt in the audit trail: counts and dates, nothing personal."""
    result.oldest_kept = await oldest_kept(db, settings)
    async with db.write() as session:
        anchor = await session.get(AuditAnchor, 1)
        details: dict[str, Any] = {
            "deleted": result.deleted,
            "aggregated_visits": result.aggregated_visits,
            "oldest_kept": result.oldest_kept,
            "finished": result.finished and not interrupted,
        }
        if anchor is not None and result.deleted["audit_events"]:
            details["audit_anchor"] = {
                "removed_through_id": anchor.removed_through_id,
                "prev_hash": anchor.prev_hash,
            }
        await audit.record(session, actor, "purge_completed", at=result.at, details=details)


async def receipt(db: Database, actor: Actor, event_id: int) -> dict[str, Any]:
    """One purge receipt; NotFound for any other audit event. Not audited: it names no one."""
    actor.require(VIEW)
    async with db.read() as session:
        event = await session.get(AuditEvent, event_id)
    if event is None or event.action != "purge_completed":
        raise NotFound(str(event_id))
    return {"id": event.id, "at": event.at, "actor": event.actor, **json.loads(event.details)}


async def receipts(db: Database, actor: Actor, limit: int = 20) -> list[dict[str, Any]]:
    """The latest purge receipts (they name no one, so reading them is not audited)."""
    actor.require(VIEW)
    async with db.read() as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "purge_completed")
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
        return [
            {"id": e.id, "at": e.at, "actor": e.actor, **json.loads(e.details or "{}")}
            for e in rows
        ]
