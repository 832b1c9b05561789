"""The import contracts in pyproject.toml hold today, and they catch the edits they exist for.

Each test copies the three packages and pyproject.toml into a temporary folder, makes one
forbidden edit there (never in the working tree) and runs `lint-imports` on the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e '.[dev]')"
)


def _copy_of_the_tree(tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    copy.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.mo", "*.po", "*.pot", "templates", "static")
    for package in ("nightreg", "kiosk", "admin"):
        shutil.copytree(ROOT / package, copy / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, so the graph is built from it, not from the checkout.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "pyproject.toml"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _append_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}  # noqa\n")


def test_the_contracts_hold_for_the_code_as_it_is(tmp_path: Path) -> None:
    result = _lint(_copy_of_the_tree(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_staff_side_importing_the_visitors_side_breaks_the_contracts(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    _append_import(tree / "admin" / "forms.py", "import kiosk.controllers")

    result = _lint(tree)

    assert result.returncode != 0
    assert "The visitor's side and the staff side never import each other BROKEN" in (
        " ".join(result.stdout.split())
    )


def test_a_service_importing_the_web_framework_breaks_the_contracts(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    _append_import(tree / "nightreg" / "services" / "holds.py", "import litestar")

    result = _lint(tree)

    assert result.returncode != 0
    assert "know nothing of the web or its templates BROKEN" in " ".join(result.stdout.split())


def test_a_rule_reaching_the_database_breaks_the_contracts(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    _append_import(tree / "nightreg" / "rules" / "overdue.py", "import nightreg.models")

    result = _lint(tree)

    assert result.returncode != 0
    assert "Rules are pure functions: no database, no models, no services BROKEN" in (
        " ".join(result.stdout.split())
    )


def test_an_import_cycle_breaks_the_contracts(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    # visits imports writer today; the reverse closes a cycle between two services.
    _append_import(tree / "nightreg" / "services" / "writer.py", "import nightreg.services.visits")

    result = _lint(tree)

    assert result.returncode != 0
    assert "No import cycles" in result.stdout


def test_only_the_visit_writer_makes_a_visit_row() -> None:
    """Kiosk, walk-in, API and import all go through nightreg/services/visits.py (issue 14):
    no other module of the app constructs a Visit."""
    import ast

    makers = []
    for package in ("nightreg", "kiosk", "admin"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "Visit"
                ):
                    makers.append(str(path.relative_to(ROOT)))

    assert makers == ["nightreg/services/visits.py"]
