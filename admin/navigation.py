"""The staff side's navigation, defined once: one line an entry (route, label, permission, section).

The layout (admin/templates/admin/_layout.html) draws what `menu()` returns: a site switcher and,
for the chosen site, that site's work; the work that is not one site's; a separate settings area;
an account menu. An entry shows only where the account's role may use it (and, for a site's
work, only on the sites where it may) and only once its route exists, so a feature can add its
line before or after its page lands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nightreg.i18n import N_, gettext
from nightreg.models import Site
from nightreg.services.access import GLOBAL_PERMISSIONS, Actor
from nightreg.vocabulary import ROLE_LABELS

# The sections of the navigation.
SITE = "site"  # the chosen site's work; the route takes the site's slug
WORK = "work"  # work across one's sites (pictures, subject requests, the hub's signals)
SETTINGS = "settings"  # the system and its oversight: admins and auditors

MARINA = frozenset({"marina"})


@dataclass(frozen=True)
class Entry:
    """One link of the navigation."""

    route: str  # the route's name; a SITE route takes `slug`
    label: str  # N_-marked; translated when drawn
    permission: str  # see nightreg.services.access.PERMISSIONS
    section: str
    kinds: frozenset[str] | None = None  # the kinds of site it is for (None: every kind)
    # Other pages that belong to this entry (it is marked as the current one there). Routes
    # named `<route>-...` belong to it without being listed.
    also: tuple[str, ...] = ()


NAVIGATION: tuple[Entry, ...] = (
    Entry("admin:tonight", N_("Tonight"), "register.view", SITE),
    # The harbour master's evening round (marinas); shown once its route is registered.
    Entry("admin:round", N_("Night round"), "rounds.walk", SITE, kinds=MARINA),
    Entry(
        "admin:register",
        N_("Register"),
        "register.view",
        SITE,
        also=("admin:visit", "admin:visit-correct"),
    ),
    Entry(
        "admin:flags",
        N_("Signals"),
        "flags.view",
        SITE,
        also=("admin:flag", "admin:flag-forward", "admin:flag-export", "admin:observation-new"),
    ),
    Entry("admin:walk-in", N_("Walk-in"), "register.edit", SITE),
    Entry("admin:print", N_("Police print"), "register.export", SITE),
    Entry("admin:export", N_("Export and import"), "register.export", SITE, also=("admin:import",)),
    Entry("admin:tourist-tax", N_("Tourist tax"), "tourist_tax.view", SITE),
    Entry("admin:site", N_("Check-in points"), "points.manage", SITE),
    Entry("admin:signals", N_("Forwarded signals"), "signals.view", WORK, also=("admin:signal",)),
    Entry("admin:insight", N_("Information pictures"), "insight.view", WORK),
    Entry("admin:subjects", N_("Subject requests"), "subjects.manage", WORK),
    Entry("admin:users", N_("Users"), "users.manage", SETTINGS, also=("admin:user",)),
    Entry("admin:sites", N_("Sites"), "sites.manage", SETTINGS),
    Entry(
        "admin:agreements", N_("Agreements"), "agreements.view", SETTINGS, also=("admin:agreement",)
    ),
    Entry(
        "admin:retention",
        N_("Retention and holds"),
        "retention.view",
        SETTINGS,
        also=("admin:holds", "admin:hold", "admin:hold-new"),
    ),
    Entry("admin:jobs", N_("Jobs"), "jobs.manage", SETTINGS),
    Entry("admin:audit", N_("Audit trail"), "audit.view", SETTINGS),
)

# The account menu's pages (every signed-in account); signing out is a form beside them.
ACCOUNT: tuple[Entry, ...] = (
    Entry("admin:password", N_("Password"), "", "account"),
    Entry("admin:two-factor", N_("Two-factor sign-in"), "", "account", also=("admin:two-factor",)),
)


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    current: bool


@dataclass
class Menu:
    """What the layout draws for one request."""

    sites: list[Site]
    site: Site | None  # the chosen site
    site_links: list[Link] = field(default_factory=list)
    work_links: list[Link] = field(default_factory=list)
    settings_links: list[Link] = field(default_factory=list)
    account_links: list[Link] = field(default_factory=list)
    section: str = SITE  # the section of the page being shown
    site_route: str = ""  # the current page's SITE entry (the switcher keeps it)

    @property
    def in_settings(self) -> bool:
        return self.section == SETTINGS

    role_label: str = ""

    @property
    def tabs_are_settings(self) -> bool:
        return self.in_settings or not (self.site_links or self.work_links)

    @property
    def tabs(self) -> list[Link]:
        """The row of tabs under the bar: the settings area's pages in that area, else the
        chosen site's work (or, for an account without a site, the work across sites)."""
        if self.tabs_are_settings:
            return self.settings_links
        return self.site_links or self.work_links

    @property
    def bar_links(self) -> list[Link]:
        """The work across sites, in the bar, where the tabs show a site's work."""
        return self.work_links if self.site_links or self.in_settings else []

    @property
    def settings_entry(self) -> Link | None:
        """The way into the settings area, from outside it."""
        if self.settings_links and not self.tabs_are_settings:
            return Link(gettext("Settings"), self.settings_links[0].href, False)
        return None


Reverse = Callable[..., str]


def _belongs(entry: Entry, route_name: str) -> bool:
    return (
        route_name == entry.route
        or route_name in entry.also
        or route_name.startswith(entry.route + "-")
    )


def _holds(actor: Actor, permission: str) -> bool:
    """A page of work across sites: for a role that holds it on at least one site."""
    if permission in GLOBAL_PERMISSIONS:
        return actor.can(permission)
    return bool(actor.sites_for(permission))


def _href(reverse: Reverse, entry: Entry, **params: Any) -> str | None:
    try:
        return reverse(entry.route, **params)
    except Exception:  # a route not (yet) registered: no link
        return None


def menu(
    actor: Actor,
    sites: Sequence[Site],
    *,
    chosen: Site | None,
    route_name: str,
    reverse: Reverse,
    entries: Sequence[Entry] = NAVIGATION,
) -> Menu:
    """The navigation for `actor` on the page `route_name`, for the site `chosen`."""
    result = Menu(sites=list(sites), site=chosen)
    if actor.role in ROLE_LABELS:
        result.role_label = gettext(ROLE_LABELS[actor.role])
    for entry in entries:
        current = _belongs(entry, route_name)
        if entry.section == SITE:
            if chosen is None or not actor.can(entry.permission, chosen.id):
                continue
            if entry.kinds is not None and chosen.kind not in entry.kinds:
                continue
            href = _href(reverse, entry, slug=chosen.slug)
            target = result.site_links
        else:
            if not _holds(actor, entry.permission):
                continue
            href = _href(reverse, entry)
            target = result.work_links if entry.section == WORK else result.settings_links
        if href is None:
            continue
        if current:
            result.section = entry.section
            if entry.section == SITE:
                result.site_route = entry.route
        target.append(Link(gettext(entry.label), href, current))
    for entry in ACCOUNT:
        href = _href(reverse, entry)
        if href is not None:
            result.account_links.append(
                Link(gettext(entry.label), href, _belongs(entry, route_name))
            )
    if route_name.startswith(("admin:password", "admin:two-factor")):
        result.section = "account"
    return result


def choose_site(sites: Sequence[Site], *, page_site: Any, remembered_id: int | None) -> Site | None:
    """The site the navigation is about: the page's own, else the remembered one, else the first."""
    by_id = {s.id: s for s in sites}
    page_id = getattr(page_site, "id", None)
    if isinstance(page_id, int) and page_id in by_id:
        return by_id[page_id]
    if remembered_id in by_id:
        return by_id[remembered_id]
    return sites[0] if sites else None
