"""The scan's catalogue: for each scanned rule, the query that narrows the register for it.

A new scanned rule is its pure function in nightreg/rules/ (listed in nightreg.rules.RULES)
and a module here with its candidate query and a `SCANNER`, listed below; the scan's core
(nightreg.services.scan.core) names no rule. The overdue rule has its own job
(nightreg.services.scan.overdue); watchlist hits and observations are filed from outside.
"""

from __future__ import annotations

from nightreg.services.scan.candidates import (
    arrival_surge,
    boat_meets_vehicle,
    fast_craft_night,
    identity_change,
    night_movement,
    repeat_overnight_unit,
    short_stay_repeat,
    site_hopping,
    unit_night_traffic,
)
from nightreg.services.scan.context import Scanner, SubjectScanner

SCANNERS: tuple[Scanner | SubjectScanner, ...] = (
    night_movement.SCANNER,
    fast_craft_night.SCANNER,
    short_stay_repeat.SCANNER,
    site_hopping.SCANNER,
    identity_change.SCANNER,
    boat_meets_vehicle.SCANNER,
    unit_night_traffic.SCANNER,
    repeat_overnight_unit.SCANNER,
    arrival_surge.SCANNER,
)
