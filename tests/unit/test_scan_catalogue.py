"""The scan's catalogue: every scanned rule has exactly one candidate query, named once."""

from __future__ import annotations

from nightreg.rules import RULES
from nightreg.rules.base import ScannedRule
from nightreg.services.scan.candidates import SCANNERS


def test_every_scanned_rule_but_overdue_has_one_scanner() -> None:
    scanned = [code for code, rule in RULES.items() if isinstance(rule, ScannedRule)]
    # overdue is its own job (nightreg.services.scan.overdue), not part of the scan.
    assert [s.rule.code for s in SCANNERS] == [code for code in scanned if code != "overdue"]


def test_each_scanner_holds_the_catalogues_rule() -> None:
    assert all(RULES[s.rule.code] is s.rule for s in SCANNERS)
