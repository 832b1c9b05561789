"""Write the current signal schema into docs/hub.md (or, with --check, say whether it is there).

    python docs/hub_schema.py           # rewrite the block between the schema markers
    python docs/hub_schema.py --check   # exit 1 when docs/hub.md carries another schema

The block is json.dumps(nightreg.services.signals.SIGNAL_SCHEMA, indent=2); a test
(tests/unit/test_hubsign.py) fails when the two drift apart.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: docs/ is sys.path[0], the app is one up
    sys.path.insert(0, str(REPO))

DOC = REPO / "docs" / "hub.md"
START = "<!-- signal-schema:start (python docs/hub_schema.py writes this block) -->"
END = "<!-- signal-schema:end -->"
BLOCK = re.compile(re.escape(START) + r"\n```json\n(.*?)\n```\n" + re.escape(END), re.DOTALL)


def current_schema() -> str:
    from nightreg.services.signals import SIGNAL_SCHEMA

    return json.dumps(SIGNAL_SCHEMA, indent=2)


def documented_schema(text: str) -> str | None:
    match = BLOCK.search(text)
    return match.group(1) if match else None


def rewrite(text: str, schema: str) -> str:
    block = f"{START}\n```json\n{schema}\n```\n{END}"
    if BLOCK.search(text) is None:
        raise SystemExit(f"{DOC}: no schema markers found")
    return BLOCK.sub(lambda _match: block, text, count=1)


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    schema = current_schema()
    if "--check" in argv:
        same = documented_schema(text) == schema
        print("docs/hub.md carries the current schema" if same else "docs/hub.md is out of date")
        return 0 if same else 1
    DOC.write_text(rewrite(text, schema), encoding="utf-8")
    print(f"wrote the signal schema into {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
