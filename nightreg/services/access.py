"""Who is asking (an Actor) and what each role may do, on which sites.

Every service that touches personal data takes an Actor and filters by `sites_for(actor, ...)`
itself: a guard in front of a page is one control, the query's WHERE clause is the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# What each permission means, and which roles hold it. Register permissions hold only on the
# sites an account is assigned to, for every role, admin included: managing the system does not
# by itself give a right to read who slept in the harbour.
PERMISSIONS: dict[str, frozenset[str]] = {
    # see tonight, search the register, open a visit
    "register.view": frozenset({"admin", "harbour_master", "security"}),
    # walk-ins, corrections, notes, check-out by staff
    "register.edit": frozenset({"admin", "harbour_master"}),
    # the night round at a marina: walk it, mark boats seen or not there, add a boat found
    # (a walk-in, hence only for those who enter walk-ins)
    "rounds.walk": frozenset({"admin", "harbour_master"}),
    # police print, export, import
    "register.export": frozenset({"admin", "harbour_master"}),
    # check-in points of one's own sites: add, rename, disable, rotate, poster
    "points.manage": frozenset({"admin", "harbour_master"}),
    # create and change sites (all sites)
    "sites.manage": frozenset({"admin"}),
    # staff accounts and API tokens (all sites)
    "users.manage": frozenset({"admin"}),
    # the audit trail (all sites; it is the privacy officer's instrument)
    "audit.view": frozenset({"admin", "auditor"}),
    # the review queue: see flags with their evidence visits (watchlist hits: analysts only)
    "flags.view": frozenset({"admin", "harbour_master", "security", "analyst"}),
    # dismiss, keep watching, forward
    "flags.review": frozenset({"admin", "harbour_master", "security", "analyst"}),
    # export flagged entries with their visits (CSV, JSON); not analysts, who get what an
    # agreement allows, as signals, and never the register's rows themselves
    "flags.export": frozenset({"admin", "harbour_master", "security"}),
    # record what one saw on a visit or at a place on the site
    "observations.add": frozenset({"admin", "harbour_master", "security"}),
    # the scheduled jobs: their runs, and running one now (all sites)
    "jobs.manage": frozenset({"admin"}),
    # sharing agreements with the hub: read them (the privacy officer signs them off) ...
    "agreements.view": frozenset({"admin", "auditor"}),
    # ... and make and end them
    "agreements.manage": frozenset({"admin"}),
    # the signals forwarded to the hub, across all sites, as sent; the hub's pull API
    "signals.view": frozenset({"analyst"}),
    # acknowledge pulled signals (the hub's API)
    "signals.ack": frozenset({"analyst"}),
    # information pictures: aggregates, no personal data (analysts: across all sites)
    "insight.view": frozenset({"admin", "harbour_master", "security", "analyst"}),
    # the same pictures over every site rather than one's own
    "insight.all": frozenset({"analyst"}),
    # retention: the policies, the next purge's preview, its receipts, the legal holds
    # (all sites; the privacy officer's instrument, with no personal data on it) ...
    "retention.view": frozenset({"admin", "auditor"}),
    # ... and changing a site's periods, placing and lifting legal holds
    "retention.manage": frozenset({"admin"}),
    # subject requests (AVG): find, report and erase early a person's, boat's or car's
    # visits and flags on one's own sites
    "subjects.manage": frozenset({"admin", "harbour_master"}),
    # the tourist-tax return of one's own sites: counts only
    "tourist_tax.view": frozenset({"admin", "harbour_master"}),
    # a gate camera system's token (role sensor, API only) posts sightings to its own sites,
    # and that is all it may do: it reads nothing
    "sightings.post": frozenset({"sensor"}),
}

# Permissions that reach across all sites rather than the account's own.
GLOBAL_PERMISSIONS = frozenset(
    {
        "sites.manage",
        "users.manage",
        "audit.view",
        "jobs.manage",
        "agreements.view",
        "agreements.manage",
        "signals.view",
        "signals.ack",
        "insight.all",
        "retention.view",
        "retention.manage",
    }
)


class AccessDenied(Exception):
    """The actor may not do this (or the object is outside its sites, which looks the same)."""


class NotFound(LookupError):
    """No such object, or not one of the actor's sites: the two look the same from outside."""


@dataclass(frozen=True)
class Actor:
    """A signed-in user, an API token, the CLI or a job: whoever an audit line names."""

    kind: str  # "user" | "token" | "cli" | "system" | "anonymous"
    id: int | None = None
    name: str = ""
    role: str | None = None
    site_ids: frozenset[int] = field(default_factory=frozenset)
    address: str = ""

    @property
    def label(self) -> str:
        if self.id is not None:
            return f"{self.kind}:{self.id} {self.name}".strip()
        return f"{self.kind} {self.name}".strip()

    def can(self, permission: str, site_id: int | None = None) -> bool:
        if self.kind == "cli":  # the operator at the server's shell holds every right
            return True
        if self.role is None or self.role not in PERMISSIONS.get(permission, frozenset()):
            return False
        if site_id is None or permission in GLOBAL_PERMISSIONS:
            return True
        return site_id in self.site_ids

    def require(self, permission: str, site_id: int | None = None) -> None:
        if not self.can(permission, site_id):
            raise AccessDenied(permission)

    def sites_for(self, permission: str, site_ids: Iterable[int] | None = None) -> frozenset[int]:
        """The actor's sites on which it holds `permission` (narrowed to `site_ids` if given)."""
        if self.kind != "cli" and (
            self.role is None or self.role not in PERMISSIONS.get(permission, frozenset())
        ):
            return frozenset()
        if self.kind == "cli":
            return frozenset(site_ids or ())
        mine = self.site_ids
        return mine if site_ids is None else mine & frozenset(site_ids)


CLI = Actor(kind="cli", name="")
SYSTEM = Actor(kind="system")
ANONYMOUS = Actor(kind="anonymous")
