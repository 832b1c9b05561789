"""observation: something a member of staff saw, from the indicator checklist.

Rationale: people on the quay notice what no register shows: a boat low in the water, a name
painted over, taped windows, chemical smells. The published indicator lists for harbours and
business parks name what is worth writing down; an observation enters the same queue as the
rules' findings, so one reviewer sees both together.
"""

from __future__ import annotations

from nightreg.i18n import N_
from nightreg.rules.base import FiledRule

CODE = "observation"

RULE = FiledRule(
    code=CODE,
    title=N_("Staff observation"),
    rationale=N_(
        "Staff on the quay notice what no register shows; an observation from the indicator "
        "checklist enters the same queue as the rules' findings."
    ),
    reason=N_("Staff observed: %(indicators)s."),
)
