"""site_hopping: a subject at several different sites within days, or two within hours.

Rationale: a boat or van that turns up at three harbours or parks in a week, or at two within
twelve hours, is spreading its movements so that no single harbour master sees a pattern. The
register of one site cannot show this; the regional register can.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from nightreg.i18n import N_
from nightreg.rules.base import Finding, ScannedRule, Threshold, Thresholds, VisitFacts, score

CODE = "site_hopping"


def _windows(
    arrivals: Sequence[tuple[datetime, int, int]], sites: int, window: timedelta
) -> list[list[tuple[datetime, int, int]]]:
    """Arrivals that lie in some window of `window` holding `sites` different sites, chained."""
    marked = [False] * len(arrivals)
    start = 0
    for end in range(len(arrivals)):
        while arrivals[end][0] - arrivals[start][0] > window:
            start += 1
        if len({site for _at, site, _id in arrivals[start : end + 1]}) >= sites:
            for k in range(start, end + 1):
                marked[k] = True
    groups: list[list[tuple[datetime, int, int]]] = []
    for arrival, keep in zip(arrivals, marked, strict=True):
        if not keep:
            continue
        if groups and arrival[0] - groups[-1][-1][0] <= window:
            groups[-1].append(arrival)
        else:
            groups.append([arrival])
    return groups


def evaluate(visits: Sequence[VisitFacts], t: Thresholds, now: datetime) -> list[Finding]:
    """`visits` are one subject's visits (any sites); only arrival times count."""
    arrivals = sorted((v.arrived_at, v.site_id, v.id) for v in visits)
    findings = []
    clauses = (
        (t["sites"], timedelta(days=t["days"]), "days", t["days"]),
        (t["quick_sites"], timedelta(hours=t["quick_hours"]), "hours", t["quick_hours"]),
    )
    # A quick hop inside a week-long pattern already found is the same pattern, not a second.
    found: list[frozenset[int]] = []
    for needed, window, unit, amount in clauses:
        for group in _windows(arrivals, needed, window):
            visit_ids = tuple(sorted(visit_id for _at, _site, visit_id in group))
            if any(known.issuperset(visit_ids) for known in found):
                continue
            found.append(frozenset(visit_ids))
            site_count = len({site for _at, site, _id in group})
            findings.append(
                Finding(
                    rule=CODE,
                    subject=visits[0].subject_key,
                    visit_ids=visit_ids,
                    window_start=group[0][0],
                    window_end=group[-1][0],
                    score=score(50, site_count, needed),
                    params={"sites": site_count, unit: amount, "reason": unit},
                )
            )
    return findings


RULE = ScannedRule(
    code=CODE,
    scope="subject",
    title=N_("Site hopping"),
    rationale=N_(
        "Turning up at three sites in a week, or at two within twelve hours, spreads "
        "movements so that no single harbour master sees the pattern."
    ),
    reason=N_("Seen at %(sites)s different sites within %(days)s days."),
    variants={
        "days": N_("Seen at %(sites)s different sites within %(days)s days."),
        "hours": N_("Seen at %(sites)s different sites within %(hours)s hours."),
    },
    thresholds=(
        Threshold("sites", 3, N_("different sites")),
        Threshold("days", 7, N_("days")),
        Threshold("quick_sites", 2, N_("different sites, in quick succession")),
        Threshold("quick_hours", 12, N_("hours")),
    ),
    evaluate=evaluate,
)
