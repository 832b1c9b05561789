"""identity_change: a boat that changes its name, or a name that changes its number.

Rationale: a registration or MMSI seen with another vessel name, or the same boat name with
the same skipper under another registration, within half a year, is how a known boat hides:
repainted, renamed, re-registered. Vehicles are not covered: a licence plate carries no name
that could change beside it, and a swapped plate is invisible to a register.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from nightreg.i18n import N_
from nightreg.rules.base import (
    Finding,
    ScannedRule,
    Threshold,
    Thresholds,
    VisitFacts,
    fold_name,
    score,
)

CODE = "identity_change"


def _name(visit: VisitFacts) -> str:
    """A vessel name as compared: "Zee-Meeuw", "zee meeuw" and "ZEEMEEUW" are one name."""
    return _compared(visit.vessel_name)


@lru_cache(maxsize=65536)
def _compared(name: str | None) -> str:
    # isalnum rather than [a-z0-9], so that a name in Greek or Cyrillic letters is not erased.
    return "".join(c for c in fold_name(name) or "" if c.isalnum())


def _renamed(a: VisitFacts, b: VisitFacts) -> bool:
    return _name(a) != _name(b)


def _renumbered(a: VisitFacts, b: VisitFacts) -> bool:
    """Another registration, or another MMSI; a number given on one visit only is no change."""
    return bool(
        (a.registration and b.registration and a.registration != b.registration)
        or (a.mmsi and b.mmsi and a.mmsi != b.mmsi)
    )


def _changes(
    visits: Sequence[VisitFacts],
    window: timedelta,
    differ: Callable[[VisitFacts, VisitFacts], bool],
) -> list[list[VisitFacts]]:
    """Visits that differ from another visit within `window`, chained in time."""
    ordered = sorted(visits, key=lambda v: (v.arrived_at, v.id))
    involved: set[int] = set()
    for i, later in enumerate(ordered):
        for earlier in reversed(ordered[:i]):
            if later.arrived_at - earlier.arrived_at > window:
                break
            if differ(earlier, later):
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


def _any_renumbered(visits: Sequence[VisitFacts]) -> bool:
    return (
        len({v.registration for v in visits if v.registration}) > 1
        or len({v.mmsi for v in visits if v.mmsi}) > 1
    )


def _distinct_names(run: Sequence[VisitFacts]) -> int:
    return len({_name(v) for v in run})


def _distinct_numbers(run: Sequence[VisitFacts]) -> int:
    registrations = {v.registration for v in run if v.registration}
    mmsis = {v.mmsi for v in run if v.mmsi}
    return max(len(registrations), len(mmsis), 2)


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
        if v.guest and (v.registration or v.mmsi):
            by_name[f"name:{_name(v)}|{v.guest}"].append(v)

    findings = []
    for groups, differ, count, what in (
        (by_identifier, _renamed, _distinct_names, "name"),
        (by_name, _renumbered, _distinct_numbers, "number"),
    ):
        for subject, members in sorted(groups.items()):
            if count(members) < 2 or (count is _distinct_numbers and not _any_renumbered(members)):
                continue  # one name (or one number) throughout: nothing changed
            for run in _changes(members, window, differ):
                distinct = count(run)
                findings.append(
                    Finding(
                        rule=CODE,
                        subject=subject[:240],
                        visit_ids=tuple(sorted(v.id for v in run)),
                        window_start=run[0].arrived_at,
                        window_end=run[-1].arrived_at,
                        score=score(60, distinct, 2),
                        params={"what": what, "count": distinct, "days": t["days"]},
                    )
                )
    return findings


RULE = ScannedRule(
    code=CODE,
    scope="vessels",
    title=N_("Changed identity"),
    rationale=N_(
        "A registration or MMSI seen under another boat name, or the same boat and skipper "
        "under another registration, is how a known boat hides."
    ),
    reason=N_(
        "The same boat was seen under %(count)s different names or registration numbers "
        "within %(days)s days."
    ),
    thresholds=(Threshold("days", 180, N_("days")),),
    evaluate=evaluate,
)
