"""boat_meets_vehicle: at a marina, a car or van moving at night close in time to a boat.

Rationale: goods landed by boat leave by road. A vehicle that arrives or leaves between 22:00
and 06:00 within half an hour of a boat arriving or leaving is the hand-over the regional
programme looks for; by day, cars and boats come and go together all the time.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta

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

CODE = "boat_meets_vehicle"


def evaluate(visits: Sequence[VisitFacts], t: Thresholds, now: datetime) -> list[Finding]:
    """`visits`: the visits of one site; one finding per vehicle visit and vessel visit."""
    gap = timedelta(minutes=t["minutes"])
    at_marina = [v for v in visits if v.site_kind == "marina"]
    vehicle_moves = sorted(
        (
            (at, v)
            for v in at_marina
            if v.kind == "vehicle"
            for at, what in v.movements_seen()
            if in_window(at, v.tz, t["night_start_hour"], t["night_end_hour"])
        ),
        key=lambda move: (move[0], move[1].id),
    )
    # The vehicle's movements the gate cameras saw (issue 19), for the reason.
    by_camera = {(at, v.id) for v in at_marina if v.kind == "vehicle" for at in v.camera_sightings}
    vessel_moves = sorted(
        ((at, v) for v in at_marina if v.kind == "vessel" for at, _what in v.movements()),
        key=lambda move: (move[0], move[1].id),
    )
    boat_times = [at for at, _v in vessel_moves]
    # (vehicle id, vessel id) -> every matched movement, the closest the two came, and
    # whether that closest movement of the vehicle was a gate camera's sighting.
    pairs: dict[
        tuple[int, int], tuple[list[datetime], timedelta, bool, VisitFacts, VisitFacts]
    ] = {}
    for car_at, car in vehicle_moves:
        near = vessel_moves[
            bisect_left(boat_times, car_at - gap) : bisect_right(boat_times, car_at + gap)
        ]
        for boat_at, boat in near:
            times, closest, camera, _car, _boat = pairs.get(
                (car.id, boat.id), ([], gap + timedelta(seconds=1), False, car, boat)
            )
            times += [car_at, boat_at]
            apart = abs(car_at - boat_at)
            if apart < closest:
                closest, camera = apart, (car_at, car.id) in by_camera
            pairs[(car.id, boat.id)] = (times, closest, camera, car, boat)
    findings = []
    for (_car_id, _boat_id), (times, closest, camera, car, boat) in sorted(pairs.items()):
        # The reason names the closest pair of movements; the window spans all of them.
        minutes = int(closest.total_seconds() // 60)
        findings.append(
            Finding(
                rule=CODE,
                subject=f"{car.subject_key}+{boat.subject_key}"[:240],
                visit_ids=tuple(sorted((car.id, boat.id))),
                window_start=min(times),
                window_end=max(times),
                score=score(40, t["minutes"], minutes, step=1),
                params={"minutes": minutes, "reason": "camera"} if camera else {"minutes": minutes},
                site_id=car.site_id,
            )
        )
    return findings


RULE = ScannedRule(
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
    variants={
        "camera": N_(
            "A vehicle seen by the gate camera at night %(minutes)s minutes apart from a boat "
            "arriving or leaving."
        ),
    },
    thresholds=(
        Threshold("minutes", 30, N_("minutes")),
        Threshold("night_start_hour", 22, N_("night starts (hour)")),
        Threshold("night_end_hour", 6, N_("night ends (hour)")),
    ),
    evaluate=evaluate,
)
