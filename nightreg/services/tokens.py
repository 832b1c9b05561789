"""API tokens: create one (its plain text is shown once), revoke it, and find the actor behind it.

A token is "nrt_" followed by 256 random bits; the table keeps only its SHA-256, so a copy of the
database does not open the API. A token carries a role and sites like a staff account.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import selectinload

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import ApiToken, Site, api_token_site
from nightreg.security import token_hash
from nightreg.services import audit
from nightreg.services.access import Actor, NotFound
from nightreg.vocabulary import TOKEN_ROLES

PREFIX = "nrt_"
MANAGE = "users.manage"
MAX_NAME_LENGTH = 120
# A real token is 4 + 43 characters; anything much longer is not worth hashing.
MAX_TOKEN_LENGTH = 128
# last_used_at is written at most this often: a busy integration would otherwise write per call.
TOUCH_INTERVAL = timedelta(minutes=1)

MSG_NAME = N_("Please give the token a name.")
MSG_NAME_LONG = N_("Please use at most %(max)s characters.")
MSG_ROLE = N_("Please choose a role.")
MSG_SITE = N_("There is no site %(slug)s.")
MSG_EXPIRES = N_("The expiry must be in the future.")
MSG_SENSOR_SITE = N_("A sensor token posts to its own sites: please name at least one.")


class TokenInvalid(ValueError):
    """A token cannot be created as asked: messages (gettext msgids) by field name."""

    def __init__(self, errors: Mapping[str, str], params: Mapping[str, object] | None = None):
        super().__init__(", ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
        self.errors: dict[str, str] = dict(errors)
        self.params: dict[str, object] = dict(params or {})


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def create_token(
    db: Database,
    actor: Actor,
    *,
    name: str,
    role: str,
    site_slugs: Iterable[str],
    expires_at: datetime | None,
    now: datetime,
) -> tuple[ApiToken, str]:
    """A new token and its plain text, which is shown once and never stored."""
    actor.require(MANAGE)
    name = name.strip()
    slugs = sorted({slug.strip() for slug in site_slugs if slug.strip()})
    errors: dict[str, str] = {}
    params: dict[str, object] = {}
    if not name:
        errors["name"] = MSG_NAME
    elif len(name) > MAX_NAME_LENGTH:
        errors["name"] = MSG_NAME_LONG
        params["max"] = MAX_NAME_LENGTH
    if role not in TOKEN_ROLES:
        errors["role"] = MSG_ROLE
    elif role == "sensor" and not slugs:
        errors["sites"] = MSG_SENSOR_SITE
    if expires_at is not None and expires_at <= now:
        errors["expires_at"] = MSG_EXPIRES
    if errors:
        raise TokenInvalid(errors, params)
    plain = new_token()
    async with db.write() as session:
        sites = list(await session.scalars(select(Site).where(Site.slug.in_(slugs))))
        missing = sorted(set(slugs) - {site.slug for site in sites})
        if missing:
            raise TokenInvalid({"sites": MSG_SITE}, {"slug": missing[0]})
        token = ApiToken(
            name=name,
            token_hash=token_hash(plain),
            role=role,
            created_at=now,
            expires_at=expires_at,
            last_used_at=None,
            revoked_at=None,
            sites=sites,
        )
        session.add(token)
        await session.flush()
        await audit.record(
            session,
            actor,
            "token_created",
            at=now,
            object_type="token",
            object_id=token.id,
            details={
                "name": name,
                "role": role,
                "sites": slugs,
                "expires_at": _iso(expires_at),
            },
        )
    return token, plain


async def actor_for_token(
    db: Database, plain: str, *, now: datetime, address: str = ""
) -> Actor | None:
    """The actor behind a bearer token, or None when it is unknown, expired or revoked."""
    if not plain.startswith(PREFIX) or len(plain) > MAX_TOKEN_LENGTH:
        return None
    async with db.read() as session:
        token = await session.scalar(
            select(ApiToken).where(ApiToken.token_hash == token_hash(plain))
        )
        if token is None or token.revoked_at is not None:
            return None
        if token.expires_at is not None and token.expires_at <= now:
            return None
        site_ids = frozenset(
            await session.scalars(
                select(api_token_site.c.site_id).where(api_token_site.c.token_id == token.id)
            )
        )
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL:
        async with db.write() as session:
            # Several requests at once: the condition lets only the first of them write.
            await session.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == token.id,
                    or_(
                        ApiToken.last_used_at.is_(None),
                        ApiToken.last_used_at <= now - TOUCH_INTERVAL,
                    ),
                )
                .values(last_used_at=now)
            )
    return Actor(
        kind="token",
        id=token.id,
        name=token.name,
        role=token.role,
        site_ids=site_ids,
        address=address[:64],
    )


async def list_tokens(db: Database, actor: Actor) -> list[ApiToken]:
    """Every token, newest first, with its sites loaded (revoked ones too: they are history)."""
    actor.require(MANAGE)
    async with db.read() as session:
        return list(
            await session.scalars(
                select(ApiToken)
                .options(selectinload(ApiToken.sites))
                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
            )
        )


async def revoke_token(
    db: Database, actor: Actor, token_id: int, *, now: datetime, reason: str = ""
) -> ApiToken:
    """The token stops working at once; revoking it twice changes nothing."""
    actor.require(MANAGE)
    async with db.write() as session:
        token = await session.scalar(
            select(ApiToken).where(ApiToken.id == token_id).options(selectinload(ApiToken.sites))
        )
        if token is None:
            raise NotFound(f"token {token_id}")
        if token.revoked_at is not None:
            return token
        token.revoked_at = now
        await audit.record(
            session,
            actor,
            "token_revoked",
            at=now,
            object_type="token",
            object_id=token.id,
            details={
                "name": token.name,
                "reason": reason.strip(),
                "before": {"revoked_at": None},
                "after": {"revoked_at": _iso(now)},
            },
        )
    return token


def is_active(token: ApiToken, now: datetime) -> bool:
    """Whether the token still opens the API (for lists: active, expired, revoked)."""
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)
