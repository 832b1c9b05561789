"""The rule catalogue: one module per rule, each a pure function with its thresholds.

Codes are stable: tests, exports and the hub rely on them. See each module for the rule's
rationale, and nightreg.rules.base for what a rule gets and returns.
"""

from __future__ import annotations

from nightreg.rules import (
    arrival_surge,
    boat_meets_vehicle,
    fast_craft_night,
    identity_change,
    night_movement,
    observation,
    overdue,
    repeat_overnight_unit,
    short_stay_repeat,
    site_hopping,
    unit_night_traffic,
    watchlist_hit,
)
from nightreg.rules.base import Rule

RULES: dict[str, Rule] = {
    module.RULE.code: module.RULE
    for module in (
        night_movement,
        fast_craft_night,
        short_stay_repeat,
        site_hopping,
        identity_change,
        boat_meets_vehicle,
        unit_night_traffic,
        repeat_overnight_unit,
        overdue,
        arrival_surge,
        watchlist_hit,
        observation,
    )
}
