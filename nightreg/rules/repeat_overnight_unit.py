"""repeat_overnight_unit: people sleeping in the same business-park unit, night after night.

Rationale: business parks are not for living; someone who sleeps in the same unit on three or
more nights in two weeks is guarding something or running something (a lab needs tending
around the clock). One night after a late job is ordinary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

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

CODE = "repeat_overnight_unit"
# A stay covers the night of date D when it is there at this hour on the morning of D + 1.
CHECK_HOUR = time(2, 0)


def _nights(visit: VisitFacts, now: datetime) -> list[tuple[datetime, date]]:
    """The nights a stay covers, as (the instant it was checked, in UTC; the night's date).

    Present at the check means arrived at or before it and not yet gone: departed after it,
    or still there and `now` is past it.
    """
    end = visit.departed_at or now
    day = visit.arrived_at.astimezone(visit.tz).date() - timedelta(days=1)
    covered = []
    while True:
        # In UTC, so that sorting and the days between checks are exact across a DST change;
        # on the spring night 02:00 does not exist and zoneinfo reads it as 03:00 summer time.
        wall = datetime.combine(day + timedelta(days=1), CHECK_HOUR, tzinfo=visit.tz)
        check = wall.astimezone(UTC)
        if check >= end:
            break
        if check >= visit.arrived_at:
            covered.append((check, day))
        day += timedelta(days=1)
    return covered


def evaluate(visits: Sequence[VisitFacts], t: Thresholds, now: datetime) -> list[Finding]:
    """`visits`: the stays of one business park; grouped here by unit."""
    by_unit: dict[str, dict[date, tuple[datetime, set[int]]]] = defaultdict(dict)
    site_of = {v.id: v.site_id for v in visits}
    for v in visits:
        if v.kind != "stay" or not v.unit or v.site_kind != "business_park":
            continue
        for check, night in _nights(v, now):
            at, ids = by_unit[v.unit].get(night, (check, set()))
            ids.add(v.id)
            by_unit[v.unit][night] = (at, ids)
    findings = []
    for unit, nights in sorted(by_unit.items()):
        events = sorted((at, night) for night, (at, _ids) in nights.items())
        for group in clusters(events, count=t["nights"], window=timedelta(days=t["days"])):
            visit_ids = sorted({vid for _at, night in group for vid in nights[night][1]})
            findings.append(
                Finding(
                    rule=CODE,
                    subject=f"unit:{unit}",
                    visit_ids=tuple(visit_ids),
                    window_start=group[0][0],
                    window_end=group[-1][0],
                    score=score(50, len(group), t["nights"]),
                    params={"unit": unit, "nights": len(group), "days": t["days"]},
                    site_id=site_of[visit_ids[0]],
                )
            )
    return findings


RULE = ScannedRule(
    code=CODE,
    scope="site",
    title=N_("Repeated overnight stays in a unit"),
    rationale=N_(
        "Business parks are not for living: sleeping in the same unit night after night is "
        "guarding or tending something."
    ),
    reason=N_("Overnight stays in unit %(unit)s on %(nights)s nights within %(days)s days."),
    thresholds=(
        Threshold("nights", 3, N_("nights")),
        Threshold("days", 14, N_("days")),
    ),
    reason_fields={"unit": "unit"},  # whom the stay or calls were for: never shared
    evaluate=evaluate,
)
