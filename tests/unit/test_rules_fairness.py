"""No rule can score nationality: the facts do not carry it, no rule module names it (§5)."""

from __future__ import annotations

import ast
import dataclasses
import pkgutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import nightreg.rules
from nightreg.rules import RULES
from nightreg.rules.base import Finding, NightCount, VisitFacts
from tests.unit.rule_facts import run, utc, vehicle, visit

FORBIDDEN = frozenset({"country", "flag", "plate_country", "residence"})
# Ways of reading a field without naming it.
INDIRECT = frozenset({"getattr", "vars", "asdict", "astuple", "__dict__", "fields"})
RULES_DIR = Path(nightreg.rules.__file__).parent
MODULES = sorted(info.name for info in pkgutil.iter_modules([str(RULES_DIR)]))


def test_the_facts_a_rule_gets_have_no_country_flag_plate_country_or_residence() -> None:
    for facts in (VisitFacts, NightCount, Finding):
        names = {f.name for f in dataclasses.fields(facts)}
        assert not names & FORBIDDEN, facts
    sample = visit(utc(2026, 1, 1))
    assert not hasattr(sample, "__dict__"), "slots: no attribute can be added to the facts"
    with pytest.raises((AttributeError, TypeError)):
        sample.country = "NL"  # type: ignore[attr-defined]


def _names(tree: ast.AST) -> list[tuple[int, str]]:
    """Every identifier and every short string literal a module uses, docstrings excepted."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Name):
            found.append((node.lineno, node.id))
        elif (isinstance(node, ast.keyword) and node.arg) or isinstance(node, ast.arg):
            found.append((node.lineno, node.arg or ""))
        elif isinstance(node, ast.alias):
            found.append((node.lineno, node.asname or node.name.rsplit(".", 1)[-1]))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            # A field name smuggled in as a string: "country", "plate_country", "…:flag:…".
            words = set(node.value.replace(":", " ").replace(".", " ").split())
            found += [(node.lineno, w) for w in words]
    return found


@pytest.mark.parametrize("module", MODULES)
def test_no_rule_module_names_country_flag_plate_country_or_residence(module: str) -> None:
    tree = ast.parse((RULES_DIR / f"{module}.py").read_text(encoding="utf-8"))
    used = _names(tree)
    assert [(line, name) for line, name in used if name.lower() in FORBIDDEN] == []
    assert [(line, name) for line, name in used if name in INDIRECT] == [], "indirect reads"


def test_the_scan_covers_every_module_in_the_package() -> None:
    assert len(MODULES) == len(RULES) + 1  # every rule has a module, plus base


# (3) A nationality cannot even be expressed: a subclass that adds the four fields gives
# every rule exactly the same findings, whatever values they hold.


@dataclasses.dataclass(frozen=True)
class WithNationality(VisitFacts):
    country: str = ""
    flag: str = ""
    plate_country: str = ""
    residence: str = ""


def _as(cls: type[VisitFacts], v: VisitFacts, **extra: str) -> VisitFacts:
    values: dict[str, Any] = {f.name: getattr(v, f.name) for f in dataclasses.fields(VisitFacts)}
    return cls(**{**values, **extra})


def _planted() -> dict[str, list[VisitFacts]]:
    """One planted positive per rule that the scan hands visits to."""
    night = utc(2026, 2, 10, 22, 30)  # 23:30 CET
    day = utc(2026, 6, 10, 8)
    unit: dict[str, Any] = {"unit": "A12"}
    SHORT = timedelta(minutes=5)  # noqa: N806
    return {
        "night_movement": [visit(night), visit(night + timedelta(days=2))],
        "fast_craft_night": [visit(night, vessel_type="rib")],
        "short_stay_repeat": [
            visit(day + timedelta(days=d), stay=timedelta(hours=2)) for d in (0, 5, 9)
        ],
        "site_hopping": [visit(day + timedelta(days=d), site_id=d + 1) for d in range(3)],
        "identity_change": [
            visit(day, registration="NL1", vessel_name="zeemeeuw", guest="jan"),
            visit(day + timedelta(days=9), registration="NL1", vessel_name="albatros", guest="jan"),
        ],
        "boat_meets_vehicle": [
            visit(night),
            vehicle(night + timedelta(minutes=5), site_kind="marina"),
        ],
        "unit_night_traffic": [
            vehicle(day + timedelta(minutes=20 * i), plate=f"P{i}", stay=SHORT, **unit)
            for i in range(10)
        ],
        "repeat_overnight_unit": [
            visit(day, stay=timedelta(days=3), kind="stay", site_kind="business_park", **unit)
        ],
        "overdue": [visit(utc(2026, 1, 1))],
    }  # fmt: skip


@pytest.mark.parametrize("code", sorted(_planted()))
def test_every_rule_finds_the_same_whatever_a_visitor_s_nationality(code: str) -> None:
    rule, visits = RULES[code], _planted()[code]
    plain = run(rule, visits)
    assert plain, "the planted positive is found"
    for country, flag, plate_country, residence in (
        ("NL", "NL", "NL", "Urk"),
        ("AL", "PA", "MA", "Tirana"),
    ):
        dressed = [
            _as(WithNationality, v, country=country, flag=flag,
                plate_country=plate_country, residence=residence)
            for v in visits
        ]  # fmt: skip
        assert run(rule, dressed) == plain


@pytest.mark.parametrize(
    "snippet",
    [
        "def f(v):\n    return v.country",
        "def f(v):\n    return getattr(v, 'plate_country')",
        "def f(v):\n    return v.__dict__",
        "def f(residence):\n    return 1",
        "KEY = 'flag'",
    ],
)
def test_the_scan_would_catch_a_rule_that_reads_nationality(snippet: str) -> None:
    used = {name for _line, name in _names(ast.parse(snippet))}
    assert used & (FORBIDDEN | INDIRECT)
