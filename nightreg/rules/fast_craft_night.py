"""fast_craft_night: a RIB or speedboat arriving or leaving between 23:00 and 05:00.

Rationale: fast open boats are what pick-ups from ships at sea and runs across the water are
made with; a leisure RIB has little reason to come in or go out in the dark. One such
movement is enough to look at, which is why the score starts lower than for repeated ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from nightreg.i18n import N_
from nightreg.rules.base import (
    Finding,
    ScannedRule,
    Threshold,
    Thresholds,
    VisitFacts,
    in_window,
    score,
)

CODE = "fast_craft_night"
FAST_CRAFT = frozenset({"rib", "speedboat"})


def evaluate(visits: Sequence[VisitFacts], t: Thresholds, now: datetime) -> list[Finding]:
    """Each visit on its own: one finding per fast craft that moved at night."""
    findings = []
    for visit in visits:
        if visit.kind != "vessel" or visit.vessel_type not in FAST_CRAFT:
            continue
        at_night = [
            at
            for at, _what in visit.movements()
            if in_window(at, visit.tz, t["night_start_hour"], t["night_end_hour"])
        ]
        if len(at_night) < t["count"]:
            continue
        findings.append(
            Finding(
                rule=CODE,
                subject=visit.subject_key,
                visit_ids=(visit.id,),
                window_start=at_night[0],
                window_end=at_night[-1],
                score=score(40, len(at_night), t["count"], step=20),
                params={"movements": len(at_night)},
            )
        )
    return findings


RULE = ScannedRule(
    code=CODE,
    scope="visit",
    title=N_("Fast craft at night"),
    rationale=N_(
        "RIBs and speedboats are what pick-ups at sea are made with; coming in or going out "
        "in the dark with one is worth a look."
    ),
    reason=N_("A RIB or speedboat arrived or left at night."),
    thresholds=(
        Threshold("count", 1, N_("night arrivals or departures")),
        Threshold("night_start_hour", 23, N_("night starts (hour)")),
        Threshold("night_end_hour", 5, N_("night ends (hour)")),
    ),
    evaluate=evaluate,
)
