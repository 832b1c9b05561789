"""Recording what the rules found: flags created once, grown when a finding grows.

Each finding goes through nightreg.services.flagging. Running the scan twice changes nothing
the second time: findings already wholly in a flag of their rule are not written again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from nightreg.models import Flag, flag_visit
from nightreg.rules.base import Finding
from nightreg.services import audit, flagging, signals
from nightreg.services.access import SYSTEM
from nightreg.services.scan.context import Scan, ScanSummary, chunks

# Findings are recorded in transactions of this many, so SQLite's one writer is not held for
# the whole scan while check-ins wait.
RECORD_BATCH = 200


async def _known(scan: Scan, findings: Sequence[Finding]) -> tuple[set[int], set[int]]:
    """Indexes of findings already wholly in a flag of their rule (nothing to record), and
    of those with no flag of their rule on any of their visits (a new flag, surely).

    A rescan finds mostly what it found before; one read per batch tells which, so the
    write transaction (SQLite's single writer) is only taken for what is new.
    """
    visit_ids = sorted({v for f in findings for v in f.visit_ids})
    flags_of: dict[int, set[tuple[int, str]]] = defaultdict(set)
    members: dict[int, set[int]] = defaultdict(set)
    async with scan.db.read() as session:
        for chunk in chunks(visit_ids):
            rows = await session.execute(
                select(flag_visit.c.visit_id, flag_visit.c.flag_id, Flag.rule)
                .join(Flag, Flag.id == flag_visit.c.flag_id)
                .where(flag_visit.c.visit_id.in_(chunk))
            )
            for visit_id, flag_id, rule in rows:
                flags_of[visit_id].add((flag_id, rule))
                members[flag_id].add(visit_id)
    done: set[int] = set()
    fresh: set[int] = set()
    for index, finding in enumerate(findings):
        if not finding.visit_ids:
            continue
        same_rule = {
            fid for v in finding.visit_ids for fid, rule in flags_of[v] if rule == finding.rule
        }
        if any(set(finding.visit_ids) <= members[fid] for fid in same_rule):
            done.add(index)
        elif not same_rule:
            fresh.add(index)
    return done, fresh


async def record(scan: Scan, summary: ScanSummary) -> None:
    """Write the scan's findings as flags, batch by batch, and count what changed."""
    recorded: dict[str, set[int]] = defaultdict(set)
    for start in range(0, len(scan.findings), RECORD_BATCH):
        batch = scan.findings[start : start + RECORD_BATCH]
        known, fresh = await _known(scan, [finding for finding, _s, _t in batch])
        todo = [(i, item) for i, item in enumerate(batch) if i not in known]
        if not todo:
            continue
        async with scan.db.write() as session:
            # The batch's audit events are chained and written together at its end.
            events: list[dict[str, Any]] = []
            new: list[tuple[Finding, int, dict[str, int]]] = []
            rest: list[tuple[Finding, int, dict[str, int]]] = []
            for index, item in todo:
                # Fresh as of the batch's read, unless a finding before it in this batch
                # shares a visit with it (then it grows that one's flag, written first).
                mine = recorded[item[0].rule]
                fresh_here = index in fresh and mine.isdisjoint(item[0].visit_ids)
                mine.update(item[0].visit_ids)
                (new if fresh_here else rest).append(item)
            ids = await flagging.create_many(session, new, now=scan.now, audit_log=events)
            summary.created += sum(flag_id is not None for flag_id in ids)
            rest += [item for item, flag_id in zip(new, ids, strict=True) if flag_id is None]
            # Flags a reviewer has not seen in this state: new, or reopened by evidence.
            unseen = [flag_id for flag_id in ids if flag_id is not None]
            for finding, site_id, thresholds in rest:
                done = await flagging.record(
                    session, finding, site_id=site_id, now=scan.now, thresholds=thresholds,
                    audit_log=events,
                )  # fmt: skip
                summary.created += done.created
                summary.grown += bool(done.added_visits) and not done.created
                summary.reopened += done.reopened
                if done.created or done.reopened:
                    unseen.append(done.flag_id)
            await audit.record_many(session, SYSTEM, events)
            summary.forwarded += await signals.auto_forward(session, unseen, now=scan.now)
    summary.findings += len(scan.findings)
    for finding, _site_id, _t in scan.findings:
        summary.by_rule[finding.rule] = summary.by_rule.get(finding.rule, 0) + 1
    scan.findings.clear()
