"""night_movement's candidates: subjects with enough arrivals or departures in the night."""

from __future__ import annotations

from sqlalchemy import and_, case, func
from sqlalchemy.sql.elements import ColumnElement

from nightreg.models import Visit
from nightreg.rules.night_movement import RULE
from nightreg.services.scan.context import Scan, SubjectScanner


def wants(scan: Scan) -> ColumnElement[bool]:
    departed = Visit.departed_at.is_not(None)
    night_moves = func.sum(
        case((scan.night_filter(Visit.arrived_at, RULE), 1), else_=0)
    ) + func.sum(case((and_(departed, scan.night_filter(Visit.departed_at, RULE)), 1), else_=0))
    return night_moves >= scan.loosest(RULE, "count")


SCANNER = SubjectScanner(RULE, wants)
