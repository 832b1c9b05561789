"""site_hopping's candidates: subjects seen at two sites or more."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.sql.elements import ColumnElement

from nightreg.models import Visit
from nightreg.rules.site_hopping import RULE
from nightreg.services.scan.context import Scan, SubjectScanner


def wants(scan: Scan) -> ColumnElement[bool]:
    # Hopping takes two sites at least, whatever a site sets its thresholds to.
    return func.count(func.distinct(Visit.site_id)) >= 2


SCANNER = SubjectScanner(RULE, wants)
