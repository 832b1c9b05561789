"""night_movement: a boat, car or person that arrives or leaves in the small hours, repeatedly.

Rationale: harbours and business parks are quiet between 23:00 and 05:00. A crossing timed to
arrive or leave in the dark, more than once in two weeks, is the movement pattern that
shipments of drugs follow; a single late arrival after a long day is not, which is why one
is not enough.
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
    in_window,
    score,
)

CODE = "night_movement"


def evaluate(visits: Sequence[VisitFacts], t: Thresholds, now: datetime) -> list[Finding]:
    """`visits` are one subject's visits (any sites); each arrival and departure counts once."""
    events = sorted(
        (at, v.id)
        for v in visits
        for at, _what in v.movements()
        if in_window(at, v.tz, t["night_start_hour"], t["night_end_hour"])
    )
    findings = []
    for group in clusters(events, count=t["count"], window=timedelta(days=t["days"])):
        visit_ids = tuple(sorted({visit_id for _at, visit_id in group}))
        findings.append(
            Finding(
                rule=CODE,
                subject=visits[0].subject_key,
                visit_ids=visit_ids,
                window_start=group[0][0],
                window_end=group[-1][0],
                score=score(50, len(group), t["count"]),
                params={"count": len(group), "days": t["days"]},
            )
        )
    return findings


RULE = ScannedRule(
    code=CODE,
    scope="subject",
    title=N_("Night movements"),
    rationale=N_(
        "Arriving or leaving between 23:00 and 05:00, more than once in two weeks, is the "
        "movement pattern of shipments timed for the dark."
    ),
    reason=N_("Arrived or left at night %(count)s times within %(days)s days."),
    thresholds=(
        Threshold("count", 2, N_("night arrivals or departures")),
        Threshold("days", 14, N_("days")),
        Threshold("night_start_hour", 23, N_("night starts (hour)")),
        Threshold("night_end_hour", 5, N_("night ends (hour)")),
    ),
    evaluate=evaluate,
)
