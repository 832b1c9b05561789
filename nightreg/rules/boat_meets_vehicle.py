"""boat_meets_vehicle: at a marina, a car or van moving at night close in time to a boat.

Rationale: goods landed by boat leave by road. A vehicle that arrives or leaves between 22:00
and 06:00 within half an hour of a boat arriving or leaving is the hand-over the regional
programme looks for; by day, cars and boats come and go together all the time.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta

from nightreg.rules.base import Finding, Rule, Threshold, Thresholds, VisitFacts, in_window
from nightreg.validation import N_

CODE = "boat_meets_vehicle"


def evaluate(visits: Sequence[VisitFacts], t: Thresholds, now: datetime) -> list[Finding]:
    """`visits`: the visits of one site; one finding per vehicle visit and vessel visit."""
    if not visits or visits[0].site_kind != "marina":
        return []
    gap = timedelta(minutes=t["minutes"])
    vehicle_moves = sorted(
        (
            (at, v)
            for v in visits
            if v.kind == "vehicle"
            for at, _what in v.movements()
            if in_window(at, v.tz, t["night_start_hour"], t["night_end_hour"])
        ),
        key=lambda move: (move[0], move[1].id),
    )
    vessel_moves = sorted(
        ((at, v) for v in visits if v.kind == "vessel" for at, _what in v.movements()),
        key=lambda move: (move[0], move[1].id),
    )
    boat_times = [at for at, _v in vessel_moves]
    pairs: dict[tuple[int, int], tuple[datetime, datetime, VisitFacts, VisitFacts]] = {}
    for car_at, car in vehicle_moves:
        near = vessel_moves[
            bisect_left(boat_times, car_at - gap) : bisect_right(boat_times, car_at + gap)
        ]
        for boat_at, boat in near:
            key = (car.id, boat.id)
            first, last = min(car_at, boat_at), max(car_at, boat_at)
            if key in pairs:
                first, last = min(first, pairs[key][0]), max(last, pairs[key][1])
            pairs[key] = (first, last, car, boat)
    findings = []
    for (_car_id, _boat_id), (first, last, car, boat) in sorted(pairs.items()):
        minutes = int(abs((last - first).total_seconds()) // 60)
        findings.append(
            Finding(
                rule=CODE,
                subject=f"{car.subject_key}+{boat.subject_key}"[:240],
                visit_ids=tuple(sorted((car.id, boat.id))),
                window_start=first,
                window_end=last,
                score=max(40, 70 - minutes),
                params={"minutes": minutes},
                site_id=car.site_id,
            )
        )
    return findings


RULE = Rule(
    code=CODE,
    scope="site",
    title=N_("Boat meets vehicle"),
    rationale=N_(
        "Goods landed by boat leave by road: a vehicle coming or going at night within half "
        "an hour of a boat is the hand-over to look for."
    ),
    reason=N_(
        "A vehicle arrived or left at night %(minutes)s minutes apart from a boat arriving or "
        "leaving."
    ),
    thresholds=(
        Threshold("minutes", 30, N_("minutes")),
        Threshold("night_start_hour", 22, N_("night starts (hour)")),
        Threshold("night_end_hour", 6, N_("night ends (hour)")),
    ),
    evaluate=evaluate,
)
