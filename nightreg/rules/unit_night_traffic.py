"""unit_night_traffic: a business-park unit with a stream of short vehicle visits, or night traffic.

Rationale: a unit where ten or more different vehicles call in one day and most leave within
half an hour is a distribution point, not a workshop; vehicles calling between 22:00 and 06:00
on three or more nights in two weeks keep the hours of a drug lab or a stash. Ordinary
businesses have deliveries, but spread over the day and rarely at night.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from statistics import median

from nightreg.i18n import N_
from nightreg.rules.base import (
    Finding,
    ScannedRule,
    Threshold,
    Thresholds,
    VisitFacts,
    clusters,
    in_window,
    local,
    night_of,
    score,
)

CODE = "unit_night_traffic"


def _busy_days(unit: str, visits: list[VisitFacts], t: Thresholds) -> list[Finding]:
    by_day: dict[date, list[VisitFacts]] = defaultdict(list)
    for v in visits:
        by_day[local(v.arrived_at, v.tz).date()].append(v)
    findings = []
    for _day, day_visits in sorted(by_day.items()):
        plates = {v.plate or v.subject_key for v in day_visits}
        stays = [
            (v.departed_at - v.arrived_at).total_seconds() / 60
            for v in day_visits
            if v.departed_at is not None
        ]
        if len(plates) < t["vehicles"] or not stays or median(stays) >= t["median_minutes"]:
            continue
        ordered = sorted(day_visits, key=lambda v: (v.arrived_at, v.id))
        findings.append(
            Finding(
                rule=CODE,
                subject=f"unit:{unit}",
                visit_ids=tuple(sorted(v.id for v in ordered)),
                window_start=ordered[0].arrived_at,
                window_end=ordered[-1].arrived_at,
                score=score(50, len(plates), t["vehicles"], step=3),
                params={
                    "unit": unit,
                    "vehicles": len(plates),
                    "minutes": int(median(stays)),
                    "reason": "busy_day",
                },
                site_id=ordered[0].site_id,
            )
        )
    return findings


def _night_calls(unit: str, visits: list[VisitFacts], t: Thresholds) -> list[Finding]:
    start, end = t["night_start_hour"], t["night_end_hour"]
    # One event per night: the first night movement of that night, with all its visits.
    # The gate cameras' sightings count as movements too (issue 19); a night seen only by a
    # camera makes the reason say so.
    nights: dict[date, list[tuple[datetime, int]]] = defaultdict(list)
    by_camera: set[date] = set()
    for v in visits:
        for at, what in v.movements_seen():
            if in_window(at, v.tz, start, end):
                nights[night_of(at, v.tz, end)].append((at, v.id))
                if what == "camera":
                    by_camera.add(night_of(at, v.tz, end))
    events = sorted((min(moves)[0], night) for night, moves in nights.items())
    findings = []
    for group in clusters(events, count=t["nights"], window=timedelta(days=t["days"])):
        visit_ids = sorted({vid for _at, night in group for _t, vid in nights[night]})
        camera = any(night in by_camera for _at, night in group)
        findings.append(
            Finding(
                rule=CODE,
                subject=f"unit:{unit}",
                visit_ids=tuple(visit_ids),
                window_start=group[0][0],
                window_end=max(at for _at, night in group for at, _vid in nights[night]),
                score=score(55, len(group), t["nights"]),
                params={
                    "unit": unit,
                    "nights": len(group),
                    "days": t["days"],
                    "reason": "nights_camera" if camera else "nights",
                },
                site_id=visits[0].site_id,
            )
        )
    return findings


def evaluate(visits: Sequence[VisitFacts], t: Thresholds, now: datetime) -> list[Finding]:
    """`visits`: the vehicle visits of one business park; grouped here by unit or company."""
    by_unit: dict[str, list[VisitFacts]] = defaultdict(list)
    for v in visits:
        if v.kind == "vehicle" and v.unit and v.site_kind == "business_park":
            by_unit[v.unit].append(v)
    findings = []
    for unit, unit_visits in sorted(by_unit.items()):
        findings += _busy_days(unit, unit_visits, t)
        findings += _night_calls(unit, unit_visits, t)
    return findings


RULE = ScannedRule(
    code=CODE,
    scope="site",
    title=N_("Unit traffic"),
    rationale=N_(
        "Many different vehicles calling briefly in one day is a distribution point; "
        "vehicles calling at night on several nights keep the hours of a lab or a stash."
    ),
    reason=N_(
        "Unit %(unit)s: many short vehicle calls in one day, or vehicle calls at night on "
        "several nights."
    ),
    variants={
        "busy_day": N_(
            "Unit %(unit)s: %(vehicles)s different vehicles in one day, half of them gone "
            "within %(minutes)s minutes."
        ),
        "nights": N_("Unit %(unit)s: vehicles at night on %(nights)s nights within %(days)s days."),
        "nights_camera": N_(
            "Unit %(unit)s: vehicles at night on %(nights)s nights within %(days)s days "
            "(seen by the gate camera)."
        ),
    },
    thresholds=(
        Threshold("vehicles", 10, N_("different vehicles in one day")),
        Threshold("median_minutes", 30, N_("median stay under (minutes)")),
        Threshold("nights", 3, N_("nights with vehicles")),
        Threshold("days", 14, N_("days")),
        Threshold("night_start_hour", 22, N_("night starts (hour)")),
        Threshold("night_end_hour", 6, N_("night ends (hour)")),
    ),
    reason_fields={"unit": "unit"},  # whom the stay or calls were for: never shared
    evaluate=evaluate,
)
