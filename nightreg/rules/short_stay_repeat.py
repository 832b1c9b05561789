"""short_stay_repeat: a subject with several short visits within a month, at any sites.

Rationale: a boat or van that comes in for a few hours, again and again, is not staying the
night: it is loading or unloading. Three visits under six hours within thirty days, wherever
they were, is a pattern; one or two short visits are ordinary errands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from nightreg.i18n import N_
from nightreg.rules.base import (
    Finding,
    ScannedRule,
    Threshold,
    Thresholds,
    VisitFacts,
    clusters,
    score,
)

CODE = "short_stay_repeat"


def evaluate(visits: Sequence[VisitFacts], t: Thresholds, now: datetime) -> list[Finding]:
    """`visits` are one subject's visits (any sites); only departed visits have a length."""
    limit = timedelta(hours=t["hours"])
    short = sorted(
        (v.arrived_at, v.id)
        for v in visits
        if v.departed_at is not None and v.departed_at - v.arrived_at < limit
    )
    findings = []
    for group in clusters(short, count=t["count"], window=timedelta(days=t["days"])):
        findings.append(
            Finding(
                rule=CODE,
                subject=visits[0].subject_key,
                visit_ids=tuple(sorted(visit_id for _at, visit_id in group)),
                window_start=group[0][0],
                window_end=group[-1][0],
                score=score(40, len(group), t["count"]),
                params={"count": len(group), "hours": t["hours"], "days": t["days"]},
            )
        )
    return findings


RULE = ScannedRule(
    code=CODE,
    scope="subject",
    title=N_("Repeated short stays"),
    rationale=N_(
        "Coming in for a few hours, again and again, is loading or unloading rather than "
        "staying the night."
    ),
    reason=N_("%(count)s visits shorter than %(hours)s hours within %(days)s days."),
    thresholds=(
        Threshold("count", 3, N_("short visits")),
        Threshold("hours", 6, N_("hours (a shorter visit is short)")),
        Threshold("days", 30, N_("days")),
    ),
    evaluate=evaluate,
)
