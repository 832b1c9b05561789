"""Turn a rule's finding into a flag: create it once, or grow the flag it already has.

Used by the scan, by a check-in that hits the watchlist and by a staff observation, so that
every flag is made, deduplicated and audited the same way.

Deduplication works on two levels:
- a finding that shares a visit with an earlier flag of the same rule is that flag, grown (a
  fourth short stay adds its visit to the flag of the first three);
- otherwise the flag's `dedupe_key` (rule, subject, start of its window) is unique in the
  database, so two scans that find the same new thing at once make one flag: the second
  insert does nothing, and that scan merges into the first one's flag instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Insert, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.models import Flag, flag_visit
from nightreg.rules import RULES
from nightreg.rules.base import Finding, Rule
from nightreg.services import audit
from nightreg.services.access import SYSTEM, Actor

# Statuses a flag leaves when new evidence arrives: a reviewer decided on less than there is.
REOPENED_BY_NEW_EVIDENCE = frozenset({"watching", "dismissed", "forwarded", "expired"})


@dataclass(frozen=True)
class Recorded:
    flag_id: int
    created: bool
    added_visits: tuple[int, ...]
    reopened: bool

    @property
    def changed(self) -> bool:
        return self.created or bool(self.added_visits)


def dedupe_key(finding: Finding, site_id: int) -> str:
    start = finding.window_start.astimezone(UTC).strftime("%Y%m%dT%H%M")
    return f"{finding.rule}|{site_id}|{finding.subject}|{start}"[:320]


def english_reason(rule: Rule, params: dict[str, str | int]) -> str:
    return rule.reason_for(params) % params


async def _flag_sharing_a_visit(
    session: AsyncSession, rule: str, visit_ids: Sequence[int]
) -> Flag | None:
    if not visit_ids:
        return None
    shared = (
        select(flag_visit.c.flag_id).where(flag_visit.c.visit_id.in_(visit_ids)).scalar_subquery()
    )
    return await session.scalar(
        select(Flag).where(Flag.rule == rule, Flag.id.in_(shared)).order_by(Flag.id).limit(1)
    )


def _insert_ignoring_duplicates(session: AsyncSession, values: dict[str, object]) -> Insert:
    """INSERT … ON CONFLICT (dedupe_key) DO NOTHING, in the session's dialect."""
    table = cast(Table, Flag.__table__)
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(table).values(**values)
        return pg.on_conflict_do_nothing(index_elements=["dedupe_key"])
    lite = sqlite.insert(table).values(**values)
    return lite.on_conflict_do_nothing(index_elements=["dedupe_key"])


async def _add_visits(session: AsyncSession, flag_id: int, visit_ids: Sequence[int]) -> None:
    if visit_ids:
        await session.execute(
            insert(flag_visit), [{"flag_id": flag_id, "visit_id": v} for v in visit_ids]
        )


def _flag_values(
    finding: Finding,
    site_id: int,
    *,
    now: datetime,
    thresholds: Mapping[str, int] | None,
    key: str,
    observation_id: int | None = None,
) -> dict[str, object]:
    rule = RULES[finding.rule]
    params = dict(finding.params)
    return {
        "site_id": site_id,
        "rule": finding.rule,
        "subject": finding.subject[:240],
        "dedupe_key": key,
        "window_start": finding.window_start,
        "window_end": finding.window_end,
        "score": finding.score,
        "reason": english_reason(rule, params),
        "reason_params": params,
        "thresholds": dict(thresholds or {}),
        "status": "open",
        "restricted": rule.restricted,
        "created_at": now,
        "updated_at": now,
        "observation_id": observation_id,
    }


async def create_many(
    session: AsyncSession,
    items: Sequence[tuple[Finding, int, Mapping[str, int]]],
    *,
    now: datetime,
    audit_log: list[dict[str, Any]],
) -> list[int | None]:
    """New flags for findings no flag holds yet, in one INSERT; their ids in order.

    The scan's bulk path: `items` are findings that share no visit with any flag of their
    rule nor with each other. None marks one whose dedupe key was taken (another scan got
    there first): the caller records that one the ordinary way.
    """
    if not items:
        return []
    rows = [
        _flag_values(finding, site_id, now=now, thresholds=t, key=dedupe_key(finding, site_id))
        for finding, site_id, t in items
    ]
    table = cast(Table, Flag.__table__)
    insert_: Any = (
        postgresql.insert(table)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite.insert(table)
    )
    stmt = insert_.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(
        table.c.id, table.c.dedupe_key
    )
    created = {key: flag_id for flag_id, key in (await session.execute(stmt, rows)).all()}
    ids: list[int | None] = []
    links = []
    for (finding, site_id, _t), row in zip(items, rows, strict=True):
        flag_id = created.pop(str(row["dedupe_key"]), None)  # a key twice: the first wins
        ids.append(flag_id)
        if flag_id is None:
            continue
        links += [{"flag_id": flag_id, "visit_id": v} for v in finding.visit_ids]
        audit_log.append(
            {
                "action": "flag_raised", "at": now, "site_id": site_id, "object_type": "flag",
                "object_id": flag_id, "object_ids": finding.visit_ids,
                "details": {"rule": finding.rule, "score": finding.score},
            }
        )  # fmt: skip
    if links:
        await session.execute(insert(flag_visit), links)
    return ids


async def _audit(
    session: AsyncSession,
    actor: Actor,
    audit_log: list[dict[str, Any]] | None,
    **event: Any,
) -> None:
    """Audit now, or (for a scan writing many flags) collect for audit.record_many."""
    if audit_log is None:
        await audit.record(session, actor, **event)
    else:
        audit_log.append(event)


async def record(
    session: AsyncSession,
    finding: Finding,
    *,
    site_id: int,
    now: datetime,
    thresholds: Mapping[str, int] | None = None,
    actor: Actor = SYSTEM,
    observation_id: int | None = None,
    audit_log: list[dict[str, Any]] | None = None,
) -> Recorded:
    """Create or grow the flag for `finding`, inside the caller's write transaction.

    Without an `audit_log` (one flag at a time: a watchlist hit, an observation) a flag that
    an agreement forwards automatically goes to the outbox here too; the scan, which
    collects its audit, does that itself after writing its batch.
    """
    recorded = await _record(
        session, finding, site_id=site_id, now=now, thresholds=thresholds, actor=actor,
        observation_id=observation_id, audit_log=audit_log,
    )  # fmt: skip
    if audit_log is None and (recorded.created or recorded.reopened):
        from nightreg.services import signals

        await signals.auto_forward(session, [recorded.flag_id], now=now)
    return recorded


async def _record(
    session: AsyncSession,
    finding: Finding,
    *,
    site_id: int,
    now: datetime,
    thresholds: Mapping[str, int] | None,
    actor: Actor,
    observation_id: int | None,
    audit_log: list[dict[str, Any]] | None,
) -> Recorded:
    params = dict(finding.params)
    # Each observation is its own flag: a second one on the same visit is a new report,
    # not more evidence for the first.
    flag = (
        None
        if observation_id is not None
        else await _flag_sharing_a_visit(session, finding.rule, finding.visit_ids)
    )
    if flag is None:
        key = (
            f"observation|{observation_id}"
            if observation_id is not None
            else dedupe_key(finding, site_id)
        )
        values = _flag_values(
            finding, site_id, now=now, thresholds=thresholds, key=key,
            observation_id=observation_id,
        )  # fmt: skip
        flag_id = await session.scalar(
            _insert_ignoring_duplicates(session, values).returning(Flag.id)
        )
        if flag_id is not None:
            await _add_visits(session, flag_id, finding.visit_ids)
            await _audit(
                session, actor, audit_log, action="flag_raised", at=now, site_id=site_id,
                object_type="flag", object_id=flag_id, object_ids=finding.visit_ids,
                details={"rule": finding.rule, "score": finding.score},
            )  # fmt: skip
            return Recorded(flag_id, True, tuple(finding.visit_ids), False)
        # Another scan made this flag a moment ago: grow that one.
        flag = await session.scalar(select(Flag).where(Flag.dedupe_key == key))
        assert flag is not None
    return await _grow(session, flag, finding, params, now=now, actor=actor, audit_log=audit_log)


async def _grow(
    session: AsyncSession,
    flag: Flag,
    finding: Finding,
    params: dict[str, str | int],
    *,
    now: datetime,
    actor: Actor,
    audit_log: list[dict[str, Any]] | None,
) -> Recorded:
    known = set(
        await session.scalars(select(flag_visit.c.visit_id).where(flag_visit.c.flag_id == flag.id))
    )
    added = tuple(sorted(set(finding.visit_ids) - known))
    if not added:
        return Recorded(flag.id, False, (), False)
    await _add_visits(session, flag.id, added)
    reopened = flag.status in REOPENED_BY_NEW_EVIDENCE
    rule = RULES[finding.rule]
    await session.execute(
        update(Flag)
        .where(Flag.id == flag.id)
        .values(
            window_start=min(flag.window_start, finding.window_start),
            window_end=max(flag.window_end, finding.window_end),
            score=max(flag.score, finding.score),
            reason=english_reason(rule, params),
            reason_params=params,
            updated_at=now,
            status="open" if reopened else flag.status,
        )
    )
    await _audit(
        session, actor, audit_log, action="flag_grown", at=now, site_id=flag.site_id,
        object_type="flag", object_id=flag.id, object_ids=added,
        details={"rule": finding.rule, "reopened_from": flag.status if reopened else None},
    )  # fmt: skip
    return Recorded(flag.id, False, added, reopened)
