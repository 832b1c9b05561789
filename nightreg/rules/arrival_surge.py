"""arrival_surge: more arrivals at a site in one day than its own history makes likely.

Rationale: a site's arrivals follow its own rhythm (weekends, season). A day with far more
arrivals than the same weekday over the last eight weeks, so many that chance explains it
less than once in a thousand (Poisson tail), is an event worth knowing about: a gathering, a
convoy, or a harbour used as a transfer point. At least five arrivals are needed, so that a
quiet site's second visitor is not a surge. The baseline never drops below half an arrival
a day, so that a weekday that has been empty for eight weeks does not make any arrival at
all look impossible.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nightreg.i18n import N_
from nightreg.rules.base import Finding, NightCount, ScannedRule, Threshold, Thresholds, score

CODE = "arrival_surge"
# A weekday that had no arrivals in eight weeks still has some small chance of one: without
# a floor, any arrival at all would be "impossible" and every new site would surge.
MIN_BASELINE = 0.5


def poisson_tail(n: int, mean: float) -> float:
    """P(X >= n) for X ~ Poisson(mean).

    Summed upwards from n rather than as 1 - P(X < n), which loses every digit once the tail
    is smaller than about 1e-16 (and the score is read from the tail's order of magnitude).
    """
    if n <= 0:
        return 1.0
    if n <= mean:
        below, term = 0.0, math.exp(-mean)
        for k in range(n):
            below += term
            term *= mean / (k + 1)
        return max(0.0, 1.0 - below)
    term = math.exp(n * math.log(mean) - mean - math.lgamma(n + 1))
    tail, k = 0.0, n
    while term > tail * 1e-17:
        tail += term
        k += 1
        term *= mean / k
    return tail


def _decades(p: float) -> int:
    """How many powers of ten below 1 a probability is."""
    return int(-math.log10(max(p, 1e-30)))


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
    counts: dict[date, int] = defaultdict(int)
    for n in nights:
        counts[n.night] += n.arrivals
    first = min(counts)
    weeks = t["weeks"]
    if weeks < 1:
        return []
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
                # 50 at the threshold, 5 more for each power of ten beyond it.
                score=score(50, _decades(tail), _decades(t["p_max_per_million"] / 1e6), step=5),
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


RULE = ScannedRule(
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
