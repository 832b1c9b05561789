"""The scan and the overdue job: the rules over the register, their findings as flags.

nightreg.services.scan.core runs the scan (see its docstring), each rule's candidate query
is in nightreg.services.scan.candidates, and nightreg.services.scan.overdue is the overdue job.
"""

from __future__ import annotations

from nightreg.services.scan.context import ScanSummary
from nightreg.services.scan.core import run_scan
from nightreg.services.scan.overdue import run_overdue

__all__ = ["ScanSummary", "run_overdue", "run_scan"]
