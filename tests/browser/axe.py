"""axe-core, the accessibility checker the browser tests run in the page."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
BLOCKING_IMPACTS = ("serious", "critical")


def run_axe(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, { resultTypes: ['violations'] })"
    )
    return list(result["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"[{violation['impact']}] {violation['id']}: {violation['help']} "
            f"({violation['helpUrl']})"
        )
        for node in violation["nodes"][:5]:
            lines.append(f"    at {json.dumps(node['target'])}: {node['html'][:300]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n        ")
            lines.append(f"        {summary}")
        if len(violation["nodes"]) > 5:
            lines.append(f"    … and {len(violation['nodes']) - 5} more")
    return "\n".join(lines)


# Pages' layout and accessibility depend on the templates and the stylesheet, not on the
# database: the tests that only look (the tour of every staff page, the accessibility sweeps)
# run once, on SQLite; the flows that change data run on both databases.
layout_only = pytest.mark.skipif(
    bool(os.environ.get("NIGHTREG_TEST_DATABASE_URL")),
    reason="layout and accessibility do not depend on the database: run on SQLite",
)
