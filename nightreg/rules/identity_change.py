"""identity_change: a boat that changes its name, or a name that changes its number.

Rationale: a registration or MMSI seen with another vessel name, or the same boat name with
the same skipper under another registration, within half a year, is how a known boat hides:
repainted, renamed, re-registered. Vehicles are not covered: a licence plate carries no name
that could change beside it, and a swapped plate is invisible to a register.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from nightreg.rules.base import Finding, Rule, Threshold, Thresholds, VisitFacts, score
from nightreg.validation import N_

CODE = "identity_change"
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def _name(visit: VisitFacts) -> str:
    """A vessel name as compared: "Zee-Meeuw" and "zeemeeuw" are one name."""
    return _NOT_ALNUM.sub("", visit.vessel_name or "")


def _changes(
    visits: Sequence[VisitFacts],
    window: timedelta,
    value: Callable[[VisitFacts], str],
) -> list[list[VisitFacts]]:
    """Visits that differ in `value` from another visit within `window`, chained in time."""
    ordered = sorted(visits, key=lambda v: (v.arrived_at, v.id))
    involved: set[int] = set()
    for i, later in enumerate(ordered):
        for earlier in reversed(ordered[:i]):
            if later.arrived_at - earlier.arrived_at > window:
                break
            if value(earlier) != value(later):
                involved.update((earlier.id, later.id))
    groups: list[list[VisitFacts]] = []
    for visit in ordered:
        if visit.id not in involved:
            continue
        if groups and visit.arrived_at - groups[-1][-1].arrived_at <= window:
            groups[-1].append(visit)
        else:
            groups.append([visit])
    return groups


def evaluate(visits: Sequence[VisitFacts], t: Thresholds, now: datetime) -> list[Finding]:
    """`visits`: any vessel visits; grouped here by identifier and by name and guest."""
    window = timedelta(days=t["days"])
    vessels = [v for v in visits if v.kind == "vessel" and _name(v)]
    by_identifier: dict[str, list[VisitFacts]] = defaultdict(list)
    by_name: dict[str, list[VisitFacts]] = defaultdict(list)
    for v in vessels:
        if v.registration:
            by_identifier[f"reg:{v.registration}"].append(v)
        if v.mmsi:
            by_identifier[f"mmsi:{v.mmsi}"].append(v)
        if v.guest:
            by_name[f"name:{_name(v)}|{v.guest}"].append(v)

    def identifier(v: VisitFacts) -> str:
        return v.registration or f"mmsi:{v.mmsi}"

    findings = []
    for groups, value, kind in (
        (by_identifier, _name, "name"),
        (by_name, identifier, "identifier"),
    ):
        for subject, members in sorted(groups.items()):
            for run in _changes(members, window, value):
                distinct = len({value(v) for v in run})
                findings.append(
                    Finding(
                        rule=CODE,
                        subject=subject,
                        visit_ids=tuple(sorted(v.id for v in run)),
                        window_start=run[0].arrived_at,
                        window_end=run[-1].arrived_at,
                        score=score(60, distinct, 2),
                        params={"what": kind, "count": distinct, "days": t["days"]},
                    )
                )
    return findings


RULE = Rule(
    code=CODE,
    scope="vessels",
    title=N_("Changed identity"),
    rationale=N_(
        "A registration or MMSI seen under another boat name, or the same boat and skipper "
        "under another registration, is how a known boat hides."
    ),
    reason=N_("Seen with %(count)s different values of its %(what)s within %(days)s days."),
    thresholds=(Threshold("days", 180, N_("days")),),
    evaluate=evaluate,
)
