"""short_stay_repeat's candidates: subjects with enough short stays."""

from __future__ import annotations

from sqlalchemy import and_, case, func
from sqlalchemy.sql.elements import ColumnElement

from nightreg.models import Visit
from nightreg.rules.short_stay_repeat import RULE
from nightreg.services.scan.context import Scan, SubjectScanner
from nightreg.services.scan.sql import hours_between


def wants(scan: Scan) -> ColumnElement[bool]:
    short_hours = scan.loosest(RULE, "hours", max)
    hours = hours_between(Visit.arrived_at, Visit.departed_at, scan.dialect)
    short_stays = func.sum(
        case((and_(Visit.departed_at.is_not(None), hours < short_hours), 1), else_=0)
    )
    return short_stays >= scan.loosest(RULE, "count")


SCANNER = SubjectScanner(RULE, wants)
