"""Staff accounts: create and change them (sign-in itself is the staff side's business)."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from nightreg.db import Database
from nightreg.i18n import N_, gettext
from nightreg.models import AuditEvent, Site, StaffSession, User
from nightreg.passwords import MIN_LENGTH, check_password
from nightreg.security import hash_password
from nightreg.services import audit, auth
from nightreg.services.access import CLI, Actor, NotFound
from nightreg.vocabulary import ROLES

MIN_PASSWORD_LENGTH = MIN_LENGTH


class UserError(ValueError):
    """An account cannot be created; the message says why."""


async def add_user(
    db: Database,
    *,
    email: str,
    password: str,
    role: str,
    site_slugs: list[str],
    now: datetime,
) -> User:
    """`nightreg user add` and the demo: create_user (checked and audited) as the operator.

    The command line always sets a password: a reset link needs somebody to pass it on.
    """
    if not password:
        raise AccountInvalid({"password": check_password(password, email=email) or ""})
    user, _token = await create_user(
        db, CLI, email=email, role=role, site_slugs=site_slugs, password=password, now=now
    )
    return user


async def set_password(db: Database, email: str, password: str) -> None:
    problem = check_password(password, email=email)
    if problem:
        raise UserError(f"password: {problem}")
    async with db.write() as session:
        user = await session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise UserError(f"no account for {email}")
        user.password_hash = hash_password(password)


# --- the admin's pages: accounts with their sites, created and changed by an Actor -------------

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MSG_EMAIL = N_("Please enter an e-mail address like name@example.org.")
MSG_EMAIL_TAKEN = N_("There is an account with this e-mail address already.")
MSG_ROLE = N_("Please choose a role.")
MSG_SITES = N_("Please choose sites from the list.")
MSG_ACTIVE = N_("Please choose whether the account may sign in.")
MSG_SELF_DISABLE = N_("You cannot disable your own account; ask another administrator.")
MSG_SELF_GRANT = N_(
    "You cannot give yourself access to a site's register; ask another administrator."
)
MSG_SELF_DEMOTE = N_(
    "You cannot take the administrator role from yourself; ask another administrator."
)


class AccountInvalid(UserError):
    """The account form has mistakes: msgids by field name."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# The address the audit trail shows for what a command at the server's shell did as a user.
SHELL_ADDRESS = "cli"


async def acting_as(db: Database, email: str) -> Actor:
    """The active staff account `email` as the actor of a command (`nightreg flag --as`).

    The command then holds exactly the account's role and sites, as on the pages, and the
    audit trail names the account (from the address "cli"). NotFound for an unknown or
    switched-off account.
    """
    wanted = email.strip().lower()
    async with db.read() as session:
        user = await session.scalar(
            select(User).where(User.email == wanted).options(selectinload(User.sites))
        )
    if user is None or not user.is_active:
        raise NotFound(wanted)
    return Actor(
        kind="user",
        id=user.id,
        name=user.email,
        role=user.role,
        site_ids=frozenset(site.id for site in user.sites),
        address=SHELL_ADDRESS,
    )


async def list_users(db: Database, actor: Actor) -> list[User]:
    """Every staff account with its sites, by e-mail."""
    actor.require("users.manage")
    async with db.read() as session:
        return list(
            await session.scalars(
                select(User).options(selectinload(User.sites)).order_by(User.email)
            )
        )


async def get_user(db: Database, actor: Actor, user_id: int) -> User:
    actor.require("users.manage")
    async with db.read() as session:
        user = await session.scalar(
            select(User).where(User.id == user_id).options(selectinload(User.sites))
        )
    if user is None:
        raise NotFound(str(user_id))
    return user


async def _sites_by_slug(session: Any, slugs: Iterable[str]) -> list[Site] | None:
    """The sites named, or None when one of them does not exist."""
    wanted = set(slugs)
    if not wanted:
        return []
    found = list(await session.scalars(select(Site).where(Site.slug.in_(wanted))))
    return found if len(found) == len(wanted) else None


async def create_user(
    db: Database,
    actor: Actor,
    *,
    email: str,
    role: str,
    site_slugs: Iterable[str],
    password: str,
    now: datetime,
) -> tuple[User, str | None]:
    """A new account; without a password it gets a one-time reset link (its token returned)."""
    # Longer than most: the checks of a new account follow the form field by field.
    actor.require("users.manage")
    email = email.strip().lower()
    errors: dict[str, str] = {}
    if len(email) > 254 or not EMAIL_RE.match(email):
        errors["email"] = MSG_EMAIL
    if role not in ROLES:
        errors["role"] = MSG_ROLE
    if password:
        problem = check_password(password, email=email)
        if problem:
            errors["password"] = problem
    if errors:
        raise AccountInvalid(errors)
    # Without a password the account gets one nobody knows: only the reset link opens it.
    secret = password or secrets.token_urlsafe(32)
    password_hash = await asyncio.to_thread(hash_password, secret)
    slugs = sorted(set(site_slugs))
    try:
        async with db.write() as session:
            sites = await _sites_by_slug(session, slugs)
            if sites is None:
                raise AccountInvalid({"sites": MSG_SITES})
            user = User(
                email=email,
                password_hash=password_hash,
                role=role,
                is_active=True,
                created_at=now,
                sites=sites,
            )
            session.add(user)
            await session.flush()
            await audit.record(
                session,
                actor,
                "user_created",
                at=now,
                object_type="user",
                object_id=user.id,
                object_ids=[s.id for s in sites],
                details={
                    "email": email,
                    "role": role,
                    "sites": slugs,
                    "password": "set" if password else "reset_link",
                },
            )
            # A new account holding a site is a grant like any other: on the site's trail and
            # its home page, so that a second account of the admin's own shows (finding 11b).
            for site in sites:
                await _record_grant(session, actor, site, user, now=now, new_account=True)
    except IntegrityError:
        raise AccountInvalid({"email": MSG_EMAIL_TAKEN}) from None
    token = None if password else await auth.issue_reset(db, actor, user.id, now=now)
    return user, token


async def change_user(
    db: Database,
    actor: Actor,
    user_id: int,
    *,
    role: str,
    site_slugs: Iterable[str],
    active: bool | None,
    now: datetime,
) -> dict[str, Any]:
    """Change role, sites and whether the account may sign in; returns what changed.

    A change ends the account's sessions, so that it holds from the next click on (the
    administrator's own sessions excepted: they cannot disable or demote themselves).
    """
    # Longer than most: every change of role, sites and access is checked, applied and audited
    # together.
    actor.require("users.manage")
    errors: dict[str, str] = {}
    if role not in ROLES:
        errors["role"] = MSG_ROLE
    if active is None:
        errors["active"] = MSG_ACTIVE
    is_self = actor.kind == "user" and actor.id == user_id
    if is_self and active is False:
        errors["active"] = MSG_SELF_DISABLE
    if is_self and role in ROLES and role != "admin":
        errors["role"] = MSG_SELF_DEMOTE
    slugs = sorted(set(site_slugs))
    async with db.write() as session:
        user = await session.scalar(
            select(User).where(User.id == user_id).options(selectinload(User.sites))
        )
        if user is None:
            raise NotFound(str(user_id))
        sites = await _sites_by_slug(session, slugs)
        if sites is None:
            errors["sites"] = MSG_SITES
        added = [s for s in sites or [] if s.slug not in {old.slug for old in user.sites}]
        removed = [s for s in user.sites if s.slug not in set(slugs)]
        if is_self and added:
            # Four eyes: an administrator reads a site's register only when someone else gave
            # them the site (issue 17, finding 11b); each grant is on that site's trail.
            errors["sites"] = MSG_SELF_GRANT
        if errors or sites is None or active is None:
            raise AccountInvalid(errors)
        changes: dict[str, Any] = {}
        if user.role != role:
            changes["role"] = {"before": user.role, "after": role}
            user.role = role
        before_slugs = sorted(s.slug for s in user.sites)
        if before_slugs != slugs:
            changes["sites"] = {"before": before_slugs, "after": slugs}
            user.sites = sites
        if user.is_active != active:
            changes["active"] = {"before": user.is_active, "after": active}
            user.is_active = active
        if changes:
            if not is_self:
                await session.execute(delete(StaffSession).where(StaffSession.user_id == user_id))
            await audit.record(
                session,
                actor,
                "user_changed",
                at=now,
                object_type="user",
                object_id=user_id,
                details={"email": user.email, "changes": changes},
            )
            for site in added:  # on the site's own trail too, for its staff and the auditor
                await _record_grant(session, actor, site, user, now=now)
            for site in removed:
                await _record_grant(session, actor, site, user, now=now, revoked=True)
    return changes


async def _record_grant(
    session: Any,
    actor: Actor,
    site: Site,
    user: User,
    *,
    now: datetime,
    new_account: bool = False,
    revoked: bool = False,
) -> None:
    details: dict[str, Any] = {"email": user.email, "role": user.role}
    if new_account:
        details["new_account"] = True
    await audit.record(
        session, actor, "site_access_revoked" if revoked else "site_access_granted", at=now,
        site_id=site.id, object_type="user", object_id=user.id, details=details,
    )  # fmt: skip


MSG_NO_ACCOUNT = "no account {email!r}"
MSG_NO_SITE = "no site {site!r}"


async def grant_site(
    db: Database, actor: Actor, email: str, slug: str, *, now: datetime, revoke: bool = False
) -> bool:
    """`nightreg user grant|revoke EMAIL SITE`: give an account a site's register, or take it
    away; False when it had (or lacked) it already. Audited on the site's trail like a grant
    on the accounts page; the account's sessions end, so that it holds from the next click on.
    The operator's way for an administrator's own account (issue 17, finding 11b)."""
    actor.require("users.manage")
    async with db.write() as session:
        user = await session.scalar(
            select(User)
            .where(User.email == email.strip().lower())
            .options(selectinload(User.sites))
        )
        if user is None:
            raise UserError(MSG_NO_ACCOUNT.format(email=email))
        site = await session.scalar(select(Site).where(Site.slug == slug))
        if site is None:
            raise UserError(MSG_NO_SITE.format(site=slug))
        has = any(s.id == site.id for s in user.sites)
        if has != revoke:
            return False
        if actor.kind == "user" and actor.id == user.id and not revoke:
            raise UserError(MSG_SELF_GRANT)
        before = sorted(s.slug for s in user.sites)
        user.sites = [s for s in user.sites if s.id != site.id] if revoke else [*user.sites, site]
        after = sorted(s.slug for s in user.sites)
        await session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
        await audit.record(
            session, actor, "user_changed", at=now, object_type="user", object_id=user.id,
            details={"email": user.email, "changes": {"sites": {"before": before, "after": after}}},
        )  # fmt: skip
        await _record_grant(session, actor, site, user, now=now, revoked=revoke)
    return True


@dataclass(frozen=True)
class Grant:
    at: datetime
    email: str  # whose account was given the site
    role: str
    by: str  # who gave it (the audit's actor)


async def site_grants(db: Database, site_id: int, *, most: int = 10) -> list[Grant]:
    """The newest accounts given access to a site (`site_access_granted`), for its home page:
    the site's own staff see who was let into their register, and by whom."""
    async with db.read() as session:
        rows = await session.execute(
            select(AuditEvent.at, User.email, User.role, AuditEvent.actor)
            .join(User, User.id == AuditEvent.object_id)
            .where(AuditEvent.action == "site_access_granted", AuditEvent.site_id == site_id)
            .order_by(AuditEvent.id.desc())
            .limit(most)
        )
        return [Grant(*row) for row in rows]


async def chosen_site_id(db: Database, user_id: int) -> int | None:
    """The site the account last chose in the navigation (None: never, or it is gone)."""
    async with db.read() as session:
        found: int | None = await session.scalar(
            select(User.chosen_site_id).where(User.id == user_id)
        )
        return found


async def choose_site(db: Database, actor: Actor, site_id: int) -> None:
    """Remember the site the account works on now; only one of its own sites.

    A preference, not personal data of anyone else: not audited.
    """
    if actor.id is None or site_id not in actor.site_ids:
        raise NotFound(str(site_id))
    async with db.write() as session:
        user = await session.get(User, actor.id)
        if user is None:
            raise NotFound(str(actor.id))
        user.chosen_site_id = site_id


_LABEL = re.compile(r"^(user|token):(\d+)(?: (.*))?$")


async def display_names(db: Database, labels: Iterable[str]) -> dict[str, str]:
    """Audit actors ("user:12 jan@haven.nl", "cli", "system") as a page names them: a staff
    member by their account's current address, the rest by what they are."""
    wanted = {int(m.group(2)) for m in map(_LABEL.match, labels) if m and m.group(1) == "user"}
    emails: dict[int, str] = {}
    if wanted:
        async with db.read() as session:
            rows = await session.execute(select(User.id, User.email).where(User.id.in_(wanted)))
            emails = dict(rows.all())
    return {label: _display(label, emails) for label in set(labels)}


def _display(label: str, emails: Mapping[int, str]) -> str:
    match = _LABEL.match(label)
    if match and match.group(1) == "user":
        return emails.get(int(match.group(2))) or match.group(3) or gettext("a former account")
    if match:
        return gettext("API token %(name)s", name=match.group(3) or match.group(2))
    kind, _, rest = label.partition(" ")
    names = {
        "cli": N_("Command line"),
        "system": N_("The system"),
        "anonymous": N_("The visitor"),
    }
    if kind in names:
        return gettext(names[kind]) + (f" ({rest})" if rest else "")
    return label
