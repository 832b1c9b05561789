"""The catalogue: stable codes, explainable reasons, thresholds a site can override."""

from __future__ import annotations

import pytest

from nightreg.rules import RULES
from nightreg.rules.base import FiledRule, Rule, ScannedRule

CODES = (
    "night_movement", "fast_craft_night", "short_stay_repeat", "site_hopping",
    "identity_change", "boat_meets_vehicle", "unit_night_traffic", "repeat_overnight_unit",
    "overdue", "arrival_surge", "watchlist_hit", "observation",
)  # fmt: skip
SCOPES = {"subject", "site", "visit", "counts", "vessels", "external"}


def test_the_codes_are_the_stable_ones_in_order() -> None:
    assert tuple(RULES) == CODES


@pytest.mark.parametrize("rule", RULES.values(), ids=list(RULES))
def test_every_rule_explains_itself_in_one_sentence(rule: Rule) -> None:
    assert rule.scope in SCOPES
    assert rule.title
    assert rule.rationale
    assert rule.reason.endswith(".")
    assert ". " not in rule.reason
    assert isinstance(rule, FiledRule if rule.scope == "external" else ScannedRule)
    assert all(isinstance(t.default, int) and t.label for t in rule.thresholds)
    assert len({t.name for t in rule.thresholds}) == len(rule.thresholds)


def test_only_overdue_stays_at_the_site() -> None:
    assert [code for code, rule in RULES.items() if not rule.forwardable] == ["overdue"]


def test_a_site_overrides_a_threshold_and_keeps_the_other_defaults() -> None:
    rule = RULES["short_stay_repeat"]
    assert rule.resolve(None) == {"count": 3, "hours": 6, "days": 30}
    assert rule.resolve({"count": 4}) == {"count": 4, "hours": 6, "days": 30}


def test_unknown_and_invalid_overrides_are_ignored() -> None:
    rule = RULES["site_hopping"]
    resolved = rule.resolve({"sites": "9", "days": True, "quick_hours": 1.5, "colour": 3})
    assert resolved == rule.defaults
    assert rule.defaults == {"sites": 3, "days": 7, "quick_sites": 2, "quick_hours": 12}


def test_resolving_does_not_change_the_defaults() -> None:
    rule = RULES["arrival_surge"]
    rule.resolve({"weeks": 4})["min_arrivals"] = 99
    assert rule.defaults == {"weeks": 8, "min_arrivals": 5, "p_max_per_million": 1000}
