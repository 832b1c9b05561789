"""Staff accounts: create them (sign-in itself is the staff side's business)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from nightreg.db import Database
from nightreg.models import ROLES, Site, User
from nightreg.passwords import MIN_LENGTH, check_password
from nightreg.security import hash_password

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
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise UserError(f"e-mail {email!r} does not look like an address")
    if role not in ROLES:
        raise UserError(f"role {role!r}: use one of {', '.join(ROLES)}")
    problem = check_password(password, email=email)
    if problem:
        raise UserError(f"password: {problem}")
    password_hash = hash_password(password)
    try:
        async with db.write() as session:
            sites = list(await session.scalars(select(Site).where(Site.slug.in_(site_slugs))))
            missing = set(site_slugs) - {s.slug for s in sites}
            if missing:
                raise UserError(f"no site with slug {sorted(missing)[0]!r}")
            user = User(
                email=email,
                password_hash=password_hash,
                role=role,
                is_active=True,
                created_at=now,
                sites=sites,
            )
            session.add(user)
    except IntegrityError:
        raise UserError(f"an account for {email} exists already") from None
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
