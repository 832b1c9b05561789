"""A site's rule thresholds: the catalogue's defaults, overridden per site, changed audited."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import Site
from nightreg.rules import RULES
from nightreg.services import audit
from nightreg.services.access import Actor, NotFound

MAX_THRESHOLD = 100_000


class ThresholdError(ValueError):
    """An unknown rule or threshold, or a value that is not a whole number in range."""


def overrides_of(site: Site) -> dict[str, dict[str, int]]:
    raw = site.rule_thresholds
    return raw if isinstance(raw, dict) else {}


def effective(site: Site) -> dict[str, dict[str, int]]:
    """Every rule's thresholds as they apply at this site."""
    overrides = overrides_of(site)
    return {code: rule.resolve(overrides.get(code)) for code, rule in RULES.items()}


def parse_assignment(text: str) -> tuple[str, str, int | None]:
    """'night_movement.count=3' -> (rule, name, 3); '…=default' -> (rule, name, None)."""
    target, sep, value = text.partition("=")
    code, dot, name = target.strip().partition(".")
    if not sep or not dot:
        raise ThresholdError(f"expected RULE.THRESHOLD=VALUE, got {text!r}")
    rule = RULES.get(code)
    if rule is None:
        raise ThresholdError(f"unknown rule {code!r}; see `nightreg rules list`")
    if name not in rule.defaults:
        known = ", ".join(rule.defaults) or "none"
        raise ThresholdError(f"{code} has no threshold {name!r} (it has: {known})")
    value = value.strip()
    if value == "default":
        return code, name, None
    if not value.isdigit() or not 0 <= int(value) <= MAX_THRESHOLD:
        raise ThresholdError(f"{code}.{name}: expected a whole number from 0 to {MAX_THRESHOLD}")
    return code, name, int(value)


async def set_thresholds(
    db: Database,
    actor: Actor,
    slug: str,
    changes: Mapping[tuple[str, str], int | None],
    *,
    now: datetime,
) -> dict[str, dict[str, int]]:
    """Override (or, with None, reset) thresholds of one site; returns the new overrides."""
    actor.require("sites.manage")
    async with db.write() as session:
        site = await session.scalar(select(Site).where(Site.slug == slug))
        if site is None:
            raise NotFound(slug)
        before = overrides_of(site)
        after = {code: dict(values) for code, values in before.items()}
        for (code, name), value in changes.items():
            if value is None or value == RULES[code].defaults[name]:
                after.get(code, {}).pop(name, None)
            else:
                after.setdefault(code, {})[name] = value
        after = {code: values for code, values in after.items() if values}
        if after != before:
            site.rule_thresholds = after
            await audit.record(
                session, actor, "site_changed", at=now, site_id=site.id, object_type="site",
                object_id=site.id,
                details={"rule_thresholds": {"before": before, "after": after}},
            )  # fmt: skip
    return after
