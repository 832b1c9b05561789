"""arrival_surge: more arrivals at a site in one day than its own history makes likely.

Rationale: a site's arrivals follow its own rhythm (weekends, season). A day with far more
arrivals than the same weekday over the last eight weeks, so many that chance explains it
less than once in a thousand (Poisson tail), is an event worth knowing about: a gathering, a
convoy, or a harbour used as a transfer point. At least five arrivals are needed, so that a
quiet site's second visitor is not a surge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nightreg.rules.base import Finding, NightCount, Rule, Threshold, Thresholds
from nightreg.validation import N_

CODE = "arrival_surge"
# A weekday that had no arrivals in eight weeks still has some small chance of one: without
# a floor, any arrival at all would be "impossible" and every new site would surge.
MIN_BASELINE = 0.5


def poisson_tail(n: int, mean: float) -> float:
    """P(X >= n) for X ~ Poisson(mean)."""
    if n <= 0:
        return 1.0
    term = math.exp(-mean)
    below = term
    for k in range(1, n):
        term *= mean / k
        below += term
    return max(0.0, 1.0 - below)


def evaluate(
    nights: Sequence[NightCount],
    t: Thresholds,
    now: datetime,
    tz: ZoneInfo | None = None,
) -> list[Finding]:
    """`nights`: one site's arrivals per local date; dates without arrivals are left out."""
    tz = tz or ZoneInfo("Europe/Amsterdam")
    if not nights:
        return []
    counts = {n.night: n.arrivals for n in nights}
    first = min(counts)
    weeks = t["weeks"]
    findings = []
    for night in sorted(counts):
        arrivals = counts[night]
        if arrivals < t["min_arrivals"] or night - timedelta(weeks=weeks) < first:
            continue
        baseline = [counts.get(night - timedelta(weeks=w), 0) for w in range(1, weeks + 1)]
        mean = max(MIN_BASELINE, sum(baseline) / weeks)
        tail = poisson_tail(arrivals, mean)
        if tail * 1_000_000 >= t["p_max_per_million"]:
            continue
        start = datetime.combine(night, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(night + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        findings.append(
            Finding(
                rule=CODE,
                subject=f"site:{nights[0].site_id}",
                visit_ids=(),
                window_start=start,
                window_end=end,
                score=min(100, 40 + int(-math.log10(max(tail, 1e-12)) * 5)),
                params={
                    "arrivals": arrivals,
                    "date": night.isoformat(),
                    "baseline": f"{mean:.1f}",
                    "weeks": weeks,
                },
                site_id=nights[0].site_id,
            )
        )
    return findings


RULE = Rule(
    code=CODE,
    scope="counts",
    title=N_("Arrival surge"),
    rationale=N_(
        "Far more arrivals in one day than the same weekday over the last eight weeks, so "
        "many that chance explains it less than once in a thousand."
    ),
    reason=N_(
        "%(arrivals)s arrivals on %(date)s, where the same weekday averaged %(baseline)s over "
        "%(weeks)s weeks."
    ),
    thresholds=(
        Threshold("weeks", 8, N_("weeks of baseline")),
        Threshold("min_arrivals", 5, N_("arrivals at least")),
        Threshold("p_max_per_million", 1000, N_("chance below (per million)")),
    ),
    evaluate=evaluate,
)
