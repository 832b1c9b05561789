"""A small factory for the facts rules see, so that rule tests read as the pattern they plant."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from nightreg.rules.base import Finding, ScannedRule, VisitFacts

AMS = ZoneInfo("Europe/Amsterdam")
_ids = itertools.count(1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def visit(
    arrived_at: datetime,
    *,
    departed_at: datetime | None = None,
    stay: timedelta | None = None,
    expected_departure_at: datetime | None = None,
    id: int | None = None,
    site_id: int = 1,
    site_kind: str = "marina",
    kind: str = "vessel",
    subject_key: str = "reg:NL123AB",
    tz: ZoneInfo = AMS,
    **fields: str | None,
) -> VisitFacts:
    """One visit; `stay` is a shorthand for a departure that long after the arrival."""
    assert arrived_at.tzinfo is UTC, "instants are UTC"
    if stay is not None:
        departed_at = arrived_at + stay
    return VisitFacts(
        id=next(_ids) if id is None else id,
        site_id=site_id,
        site_kind=site_kind,
        tz=tz,
        kind=kind,
        subject_key=subject_key,
        arrived_at=arrived_at,
        expected_departure_at=expected_departure_at or arrived_at + timedelta(days=1),
        departed_at=departed_at,
        **fields,  # type: ignore[arg-type]
    )


def vehicle(arrived_at: datetime, plate: str = "AB123C", **kw: object) -> VisitFacts:
    kw.setdefault("site_kind", "business_park")
    kw.setdefault("kind", "vehicle")
    kw.setdefault("subject_key", f"plate:{plate}")
    return visit(arrived_at, plate=plate, **kw)  # type: ignore[arg-type]


def run(
    rule: ScannedRule,
    items: Sequence[object],
    now: datetime | None = None,
    overrides: Mapping[str, object] | None = None,
    **kw: object,
) -> list[Finding]:
    """The rule's findings with its defaults (and `overrides`); every reason must format."""
    findings = rule.evaluate(items, rule.resolve(overrides), now or utc(2027, 1, 1), **kw)
    for finding in findings:
        assert finding.rule == rule.code
        assert rule.reason_for(finding.params) % dict(finding.params)
        assert all(isinstance(p, str | int) for p in finding.params.values())
        assert 0 <= finding.score <= 100
        assert finding.window_start <= finding.window_end
    return findings
