"""Staff sign-in: passwords, throttling, server-side sessions, password change and reset links.

A session is a row in `staff_session`; the browser's cookie carries a random token of which the
table keeps only the SHA-256. Signing in always makes a new token (and ends the session the
browser had before), so a session id planted in a victim's browser is worthless.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from nightreg.db import Database
from nightreg.models import SignInFailure, StaffSession, User, user_site
from nightreg.security import hash_password, password_needs_rehash, token_hash, verify_password
from nightreg.services import audit
from nightreg.services.access import Actor
from nightreg.validation import N_

# Failed attempts are counted over this window; past a limit, each attempt waits longer.
THROTTLE_WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
FIRST_DELAY_SECONDS = 30
MAX_DELAY_SECONDS = 15 * 60
RESET_LINK_VALID = timedelta(hours=24)
# last_seen_at is written at most this often: a busy page would otherwise write on every poll.
TOUCH_INTERVAL = timedelta(minutes=1)

# Compared against when the account does not exist, so that an unknown e-mail costs the same
# time as a wrong password and the answer's timing tells nothing.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))

MSG_BAD_CREDENTIALS = N_("The e-mail address or the password is not right.")
MSG_THROTTLED = N_("Too many failed attempts. Please wait %(seconds)s seconds and try again.")
MSG_CURRENT_PASSWORD = N_("Your current password is not right.")
MSG_PASSWORDS_DIFFER = N_("The two new passwords are not the same.")
MSG_RESET_INVALID = N_("This link is not valid any more. Ask an administrator for a new one.")


@dataclass(frozen=True)
class SignInOutcome:
    """Either a new session token, or a message for the form (and a wait, when throttled)."""

    session_token: str | None = None
    user_id: int | None = None
    message: str | None = None
    retry_after: int = 0


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def _delay(failures: int, limit: int) -> int:
    """Seconds to wait after the last failure: 30 s at the limit, doubling with each failure."""
    if failures < limit:
        return 0
    return int(min(FIRST_DELAY_SECONDS * 2 ** (failures - limit), MAX_DELAY_SECONDS))


async def _throttle_wait(db: Database, email: str, address: str, now: datetime) -> int:
    since = now - THROTTLE_WINDOW
    async with db.read() as session:
        by_account = (
            await session.execute(
                select(func.count(), func.max(SignInFailure.at)).where(
                    SignInFailure.email == email, SignInFailure.at > since, SignInFailure.at <= now
                )
            )
        ).one()
        by_address = (
            await session.execute(
                select(func.count(), func.max(SignInFailure.at)).where(
                    SignInFailure.address == address,
                    SignInFailure.at > since,
                    SignInFailure.at <= now,
                )
            )
        ).one()
    wait = 0
    for (count, last), limit in ((by_account, ACCOUNT_LIMIT), (by_address, ADDRESS_LIMIT)):
        if last is not None:
            remaining = _delay(count, limit) - (now - last).total_seconds()
            wait = max(wait, int(remaining + 0.999))
    return wait


async def sign_in(
    db: Database,
    *,
    email: str,
    password: str,
    address: str,
    now: datetime,
    previous_token: str | None = None,
) -> SignInOutcome:
    """Check e-mail and password; on success open a new session (and end `previous_token`'s)."""
    email = email.strip().lower()[:254]
    address = address[:64]
    anonymous = Actor(kind="anonymous", address=address)
    wait = await _throttle_wait(db, email, address, now)
    if wait > 0:
        await audit.log(
            db, anonymous, "sign_in_failed", at=now, details={"email": email, "reason": "throttled"}
        )
        return SignInOutcome(message=MSG_THROTTLED, retry_after=wait)

    async with db.read() as session:
        user = await session.scalar(select(User).where(User.email == email))
    stored = user.password_hash if user is not None else _DUMMY_HASH
    # argon2 takes ~50 ms of CPU on purpose: keep it off the event loop.
    ok = await asyncio.to_thread(verify_password, stored, password)
    if user is None or not user.is_active or not ok:
        reason = "unknown or disabled account" if user is None or not user.is_active else "password"
        async with db.write() as session:
            session.add(SignInFailure(email=email, address=address, at=now))
            await audit.record(
                session,
                anonymous,
                "sign_in_failed",
                at=now,
                details={"email": email, "reason": reason},
            )
        return SignInOutcome(message=MSG_BAD_CREDENTIALS)

    new_hash = None
    if password_needs_rehash(user.password_hash):
        new_hash = await asyncio.to_thread(hash_password, password)
    token = new_session_token()
    actor = Actor(kind="user", id=user.id, name=user.email, role=user.role, address=address)
    async with db.write() as session:
        if previous_token:
            await session.execute(
                delete(StaffSession).where(StaffSession.token_hash == token_hash(previous_token))
            )
        session.add(
            StaffSession(
                token_hash=token_hash(token),
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                address=address,
            )
        )
        values: dict[str, object] = {"last_sign_in_at": now}
        if new_hash:
            values["password_hash"] = new_hash
        await session.execute(update(User).where(User.id == user.id).values(**values))
        await session.execute(delete(SignInFailure).where(SignInFailure.email == email))
        await audit.record(
            session,
            actor,
            "sign_in",
            at=now,
            object_type="user",
            object_id=user.id,
            details={"rehashed": bool(new_hash)},
        )
    return SignInOutcome(session_token=token, user_id=user.id)


async def session_actor(
    db: Database,
    token: str | None,
    *,
    now: datetime,
    idle: timedelta,
    absolute: timedelta,
    address: str = "",
) -> Actor | None:
    """The signed-in user behind a session cookie, or None when it is unknown or expired."""
    if not token or len(token) > 128:
        return None
    digest = token_hash(token)
    async with db.read() as session:
        row = (
            await session.execute(
                select(StaffSession, User)
                .join(User, User.id == StaffSession.user_id)
                .where(StaffSession.token_hash == digest)
            )
        ).first()
        if row is None:
            return None
        staff_session, user = row
        site_ids = frozenset(
            await session.scalars(select(user_site.c.site_id).where(user_site.c.user_id == user.id))
        )
    expired = now - staff_session.last_seen_at > idle or now - staff_session.created_at > absolute
    if expired or not user.is_active:
        async with db.write() as session:
            await session.execute(delete(StaffSession).where(StaffSession.id == staff_session.id))
        return None
    if now - staff_session.last_seen_at >= TOUCH_INTERVAL:
        async with db.write() as session:
            await session.execute(
                update(StaffSession)
                .where(StaffSession.id == staff_session.id)
                .values(last_seen_at=now)
            )
    return Actor(
        kind="user",
        id=user.id,
        name=user.email,
        role=user.role,
        site_ids=site_ids,
        address=address[:64],
    )


async def sign_out(db: Database, actor: Actor, token: str | None, *, now: datetime) -> None:
    """End the session on the server: the cookie is worthless from now on, wherever it is."""
    async with db.write() as session:
        if token:
            await session.execute(
                delete(StaffSession).where(StaffSession.token_hash == token_hash(token))
            )
        await audit.record(
            session, actor, "sign_out", at=now, object_type="user", object_id=actor.id
        )


def _password_problem(password: str, email: str) -> str | None:
    from nightreg.passwords import check_password

    return check_password(password, email=email)


async def change_password(
    db: Database,
    actor: Actor,
    *,
    current: str,
    new: str,
    repeat: str,
    keep_token: str | None,
    now: datetime,
) -> dict[str, str]:
    """Change one's own password; other sessions of the account end. Returns errors by field."""
    async with db.read() as session:
        user = await session.get(User, actor.id)
    if user is None:
        return {"current": MSG_CURRENT_PASSWORD}
    if not await asyncio.to_thread(verify_password, user.password_hash, current):
        return {"current": MSG_CURRENT_PASSWORD}
    problem = _password_problem(new, user.email)
    if problem:
        return {"new": problem}
    if new != repeat:
        return {"repeat": MSG_PASSWORDS_DIFFER}
    new_hash = await asyncio.to_thread(hash_password, new)
    async with db.write() as session:
        await session.execute(
            update(User)
            .where(User.id == user.id)
            .values(
                password_hash=new_hash,
                password_changed_at=now,
                reset_token_hash=None,
                reset_expires_at=None,
            )
        )
        others = delete(StaffSession).where(StaffSession.user_id == user.id)
        if keep_token:
            others = others.where(StaffSession.token_hash != token_hash(keep_token))
        await session.execute(others)
        await audit.record(
            session, actor, "password_changed", at=now, object_type="user", object_id=user.id
        )
    return {}


async def issue_reset(db: Database, actor: Actor, user_id: int, *, now: datetime) -> str:
    """A one-time link token for an admin to pass on; valid 24 hours, replaces any earlier one."""
    actor.require("users.manage")
    token = secrets.token_urlsafe(32)
    async with db.write() as session:
        result = await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(reset_token_hash=token_hash(token), reset_expires_at=now + RESET_LINK_VALID)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            from nightreg.services.access import NotFound

            raise NotFound(str(user_id))
        await audit.record(
            session, actor, "password_reset_issued", at=now, object_type="user", object_id=user_id
        )
    return token


async def reset_account(db: Database, token: str, *, now: datetime) -> User | None:
    """The account a reset link belongs to, while the link is valid."""
    if not token or len(token) > 128:
        return None
    async with db.read() as session:
        user = await session.scalar(select(User).where(User.reset_token_hash == token_hash(token)))
    if user is None or user.reset_expires_at is None or user.reset_expires_at < now:
        return None
    return user


async def use_reset(
    db: Database, token: str, *, new: str, repeat: str, address: str, now: datetime
) -> dict[str, str]:
    """Set a new password through a reset link; the link dies and every session ends."""
    user = await reset_account(db, token, now=now)
    if user is None:
        return {"link": MSG_RESET_INVALID}
    problem = _password_problem(new, user.email)
    if problem:
        return {"new": problem}
    if new != repeat:
        return {"repeat": MSG_PASSWORDS_DIFFER}
    new_hash = await asyncio.to_thread(hash_password, new)
    actor = Actor(kind="user", id=user.id, name=user.email, role=user.role, address=address)
    async with db.write() as session:
        result = await session.execute(
            update(User)
            .where(User.id == user.id, User.reset_token_hash == token_hash(token))
            .values(
                password_hash=new_hash,
                password_changed_at=now,
                reset_token_hash=None,
                reset_expires_at=None,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return {"link": MSG_RESET_INVALID}  # used a moment ago in another tab
        await session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
        await session.execute(delete(SignInFailure).where(SignInFailure.email == user.email))
        await audit.record(
            session, actor, "password_reset_used", at=now, object_type="user", object_id=user.id
        )
    return {}
