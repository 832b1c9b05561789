"""night_movement: a boat, car or person that arrives or leaves in the small hours, repeatedly.

Rationale: harbours and business parks are quiet between 23:00 and 05:00. A crossing timed to
arrive or leave in the dark, more than once in two weeks, is the movement pattern that
shipments of drugs follow; a single late arrival after a long day is not, which is why one
is not enough.

Where the site listens to AIS, a boat's trip out of the harbour area and back during its
stay, which the register does not show, counts too: each exit and entry of it is a movement
(the reason then says how many of them AIS alone saw). The entry at the visit's arrival and
the exit at its departure are the register's own movements and are not counted twice.
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
    start, end = t["night_start_hour"], t["night_end_hour"]
    grace = timedelta(minutes=t["ais_grace_minutes"])
    events = sorted(
        [
            (at, (v.id, False))
            for v in visits
            for at, _what in v.movements()
            if in_window(at, v.tz, start, end)
        ]
        + [
            (at, (v.id, True))
            for v in visits
            for at, _direction in v.unregistered_ais(grace)
            if in_window(at, v.tz, start, end)
        ]
    )
    findings = []
    for group in clusters(events, count=t["count"], window=timedelta(days=t["days"])):
        visit_ids = tuple(sorted({visit_id for _at, (visit_id, _ais) in group}))
        params: dict[str, str | int] = {"count": len(group), "days": t["days"]}
        on_ais = sum(1 for _at, (_id, ais) in group if ais)
        if on_ais:
            params.update(reason="ais", ais=on_ais)
        findings.append(
            Finding(
                rule=CODE,
                subject=visits[0].subject_key,
                visit_ids=visit_ids,
                window_start=group[0][0],
                window_end=group[-1][0],
                score=score(50, len(group), t["count"]),
                params=params,
            )
        )
    return findings


AIS_GRACE_LABEL = N_(
    "minutes between an AIS entry or exit and the register's own arrival or departure "
    "within which they are the same movement"
)

RULE = ScannedRule(
    code=CODE,
    scope="subject",
    title=N_("Night movements"),
    rationale=N_(
        "Arriving or leaving between 23:00 and 05:00, more than once in two weeks, is the "
        "movement pattern of shipments timed for the dark."
    ),
    reason=N_("Arrived or left at night %(count)s times within %(days)s days."),
    variants={
        "ais": N_(
            "Arrived or left at night %(count)s times within %(days)s days; source: AIS "
            "for %(ais)s of them, which the register does not show."
        ),
    },
    thresholds=(
        Threshold("count", 2, N_("night arrivals or departures")),
        Threshold("days", 14, N_("days")),
        Threshold("night_start_hour", 23, N_("night starts (hour)")),
        Threshold("night_end_hour", 5, N_("night ends (hour)")),
        Threshold("ais_grace_minutes", 60, AIS_GRACE_LABEL),
    ),
    evaluate=evaluate,
)
