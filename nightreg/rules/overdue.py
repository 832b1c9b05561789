"""overdue: still registered as present a day after the expected departure.

Rationale: an operational reminder rather than a risk signal: either the visitor forgot to
check out (the register is then wrong, which matters at an inspection) or a boat or car was
left behind, which the harbour master wants to know. It is never forwarded to the hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from nightreg import visit_status
from nightreg.i18n import N_
from nightreg.rules.base import Finding, ScannedRule, Threshold, Thresholds, VisitFacts, score

CODE = "overdue"


def evaluate(visits: Sequence[VisitFacts], t: Thresholds, now: datetime) -> list[Finding]:
    """Each visit on its own, judged at `now`: overdue by at least the `hours` threshold.

    The register's pages call a visit overdue as soon as its expected departure has passed
    (visit_status); the rule waits `hours` longer before it files a reminder.
    """
    late = timedelta(hours=t["hours"])
    findings = []
    for visit in visits:
        if not visit_status.is_overdue(visit, now, grace=late):
            continue
        hours = int((now - visit.expected_departure_at).total_seconds() // 3600)
        findings.append(
            Finding(
                rule=CODE,
                subject=f"visit:{visit.id}",
                visit_ids=(visit.id,),
                window_start=visit.expected_departure_at,
                window_end=visit.expected_departure_at + late,
                # Step 0: a reminder, not a risk; it does not grow more urgent by the hour.
                score=score(20, hours, t["hours"], step=0),
                params={"hours": hours},
            )
        )
    return findings


RULE = ScannedRule(
    code=CODE,
    scope="visit",
    title=N_("Overdue"),
    rationale=N_(
        "Still registered as present a day after the expected departure: a forgotten "
        "check-out or something left behind. Operational; never forwarded."
    ),
    reason=N_("Still present %(hours)s hours after the expected departure."),
    thresholds=(Threshold("hours", 24, N_("hours after the expected departure")),),
    evaluate=evaluate,
    forwardable=False,
)
