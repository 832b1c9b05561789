"""watchlist_hit: a check-in whose normalised identifier is on the hub's watchlist.

Rationale: the regional hub knows boats and vehicles of interest from its own cases. It
shares them as keyed hashes (nightreg.services.watchlist), so the site never holds the list
in plain text; a match is raised at check-in, silently, and shown only to analysts, so that
nobody at the site can tip the visitor off.
"""

from __future__ import annotations

from nightreg.i18n import N_
from nightreg.rules.base import FiledRule

CODE = "watchlist_hit"

RULE = FiledRule(
    code=CODE,
    title=N_("Watchlist hit"),
    rationale=N_(
        "The hub's watchlist names boats and vehicles of interest from its own cases, as "
        "keyed hashes; a check-in that matches one is raised at once and shown only to "
        "analysts."
    ),
    reason=N_("A %(identifier)s of this visit is on the hub's watchlist."),
    restricted=True,
)
