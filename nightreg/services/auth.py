"""Staff sign-in: passwords, server-side sessions, password change and reset links.

Failed attempts slow the next ones down (throttle.py, shared with the second factor).

A session is a row in `staff_session`; the browser's cookie carries a random token of which the
table keeps only the SHA-256. Signing in always makes a new token (and ends the session the
browser had before), so a session id planted in a victim's browser is worthless.

With a second factor (twofactor.py) the password opens no session: it gives a short-lived,
encrypted "half signed in" value naming the account and what comes next (a code, or enrolment
for a role that must have a second factor). Only the second step opens the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, select, update

from nightreg import metrics
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import SignInFailure, StaffSession, User, user_site
from nightreg.security import (
    CookieBox,
    hash_password,
    password_needs_rehash,
    token_hash,
    verify_password,
)
from nightreg.services import audit, throttle, twofactor
from nightreg.services.access import Actor
from nightreg.services.throttle import Attempt, RefusalTally, Throttled

_T = TypeVar("_T")

RESET_LINK_VALID = timedelta(hours=24)
# Between the password and the second step: at most this long.
PENDING_VALID = timedelta(minutes=10)
STAGE_CODE = "code"
STAGE_ENROL = "enrol"
# last_seen_at is written at most this often: a busy page would otherwise write on every poll.
TOUCH_INTERVAL = timedelta(minutes=1)

# argon2 takes ~200 ms of CPU and 64 MiB per check on purpose: the checks take turns on one
# worker thread of their own, at a lower priority, and each computes its lanes on that one
# thread (nightreg.security.verify_password), so that a burst of them (the 20 wrong passwords
# one address may send before it must wait) leaves the other cores to the pages served
# meanwhile.
PASSWORD_WORK_NICENESS = 10


def _lower_priority() -> None:
    """On Linux the nice value belongs to the thread, and argon2's lane threads inherit it."""
    with contextlib.suppress(AttributeError, OSError):  # not on every platform
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_WORK_NICENESS)


_PASSWORD_WORKER = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="argon2", initializer=_lower_priority
)


async def _password_work(work: Callable[..., _T], *args: str) -> _T:
    """`work(*args)` (a hash or a check of a password) on the password worker, off the loop."""
    return await asyncio.get_running_loop().run_in_executor(_PASSWORD_WORKER, work, *args)


# Compared against when the account does not exist, so that an unknown e-mail costs the same
# time as a wrong password and the answer's timing tells nothing.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))

MSG_BAD_CREDENTIALS = N_("The e-mail address or the password is not right.")
MSG_THROTTLED = N_("Too many failed attempts. Please wait %(seconds)s seconds and try again.")
MSG_CURRENT_PASSWORD = N_("Your current password is not right.")
MSG_PASSWORDS_DIFFER = N_("The two new passwords are not the same.")
MSG_RESET_INVALID = N_("This link is not valid any more. Ask an administrator for a new one.")
MSG_PENDING_EXPIRED = N_("Your sign-in has expired. Please sign in again.")


class TooManyAttempts(Exception):
    """Too many failed attempts on the account or from the address: wait `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"wait {retry_after} seconds")


@dataclass(frozen=True)
class SignInOutcome:
    """Either a new session token, or a message for the form (and a wait, when throttled)."""

    session_token: str | None = None
    user_id: int | None = None
    message: str | None = None
    retry_after: int = 0
    # The password was right, a second step follows: the sealed half-done sign-in and its stage.
    pending: str | None = None
    stage: str | None = None


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


async def sign_in(
    db: Database,
    *,
    email: str,
    password: str,
    address: str,
    now: datetime,
    secret_key: str,
    two_factor_roles: Collection[str] = (),
    next_page: str = "/admin/",
    previous_token: str | None = None,
    refusals: RefusalTally | None = None,
) -> SignInOutcome:
    """Check e-mail and password; on success open a new session (and end `previous_token`'s).

    An account with a second factor, or whose role must have one, gets no session yet: the
    outcome carries the sealed half-done sign-in and its stage (STAGE_CODE or STAGE_ENROL).
    `refusals` (the app's, one per instance) counts the attempts refused during a wait.
    """
    email = email.strip().lower()[:254]
    address = address[:64]
    anonymous = Actor(kind="anonymous", address=address)
    refusals = refusals if refusals is not None else RefusalTally()
    await throttle.write_refusals(db, refusals, now)
    attempt = await throttle.begin_attempt(db, email, address, now, tally=refusals)
    if isinstance(attempt, Throttled):
        # Counted, not chained: one audit event per account or address and window.
        refusals.note(attempt, email=email, address=address, now=now)
        metrics.sign_in_failed("throttled")
        return SignInOutcome(message=MSG_THROTTLED, retry_after=attempt.seconds)

    async with db.read() as session:
        user = await session.scalar(select(User).where(User.email == email))
    stored = user.password_hash if user is not None else _DUMMY_HASH
    ok = await _password_work(verify_password, stored, password)
    if user is None or not user.is_active or not ok:
        reason = "unknown or disabled account" if user is None or not user.is_active else "password"
        # The attempt's row, written before the check, is the failure.
        await audit.log(
            db, anonymous, "sign_in_failed", at=now, details={"email": email, "reason": reason}
        )
        metrics.sign_in_failed("password")
        return SignInOutcome(message=MSG_BAD_CREDENTIALS)

    rehashed = False
    if password_needs_rehash(user.password_hash):
        new_hash = await _password_work(hash_password, password)
        async with db.write() as session:
            await session.execute(
                update(User).where(User.id == user.id).values(password_hash=new_hash)
            )
        user.password_hash = new_hash
        rehashed = True
    stage = None
    if twofactor.is_enabled(user):
        stage = STAGE_CODE
    elif user.role in two_factor_roles:
        stage = STAGE_ENROL
    if stage is not None:
        user = await _password_step_done(db, user, attempt, secret_key=secret_key)
        sealed = seal_pending(secret_key, user, stage=stage, next_page=next_page, now=now)
        return SignInOutcome(user_id=user.id, pending=sealed, stage=stage)
    token = await _open_session(
        db,
        user,
        address=address,
        now=now,
        previous_token=previous_token,
        details={"rehashed": rehashed},
    )
    return SignInOutcome(session_token=token, user_id=user.id)


async def _password_step_done(
    db: Database, user: User, attempt: Attempt, *, secret_key: str
) -> User:
    """The password was right and a second step follows; the account as it is now.

    The attempt is no failure. An account with a second factor gets its TOTP secret sealed
    afresh (the same secret, a new ciphertext): the half-done sign-in about to be issued is
    bound to it (see `_fingerprint`), and every one issued before it is worthless from now on.
    """
    async with db.write() as session:
        await throttle.succeeded(session, attempt)
        resealed = (
            twofactor.reseal_secret(secret_key, user.totp_secret)
            if twofactor.is_enabled(user)
            else None
        )
        if resealed is not None:
            # Compare-and-swap: the second factor was not switched off or reset meanwhile.
            await session.execute(
                update(User)
                .where(User.id == user.id, User.totp_secret == user.totp_secret)
                .values(totp_secret=resealed)
            )
        fresh = await session.get(User, user.id, populate_existing=True)
    return fresh if fresh is not None else user


async def _open_session(
    db: Database,
    user: User,
    *,
    address: str,
    now: datetime,
    previous_token: str | None,
    details: dict[str, object],
) -> str:
    """The signed-in session: a new token; the browser's previous session ends."""
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
        await session.execute(update(User).where(User.id == user.id).values(last_sign_in_at=now))
        await session.execute(delete(SignInFailure).where(SignInFailure.email == user.email))
        await audit.record(
            session,
            actor,
            "sign_in",
            at=now,
            object_type="user",
            object_id=user.id,
            details=details,
        )
    return token


# --- the second step ---------------------------------------------------------------------


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in whose password was right and whose second step is to come."""

    user: User
    stage: str
    next_page: str


def _pending_box(secret_key: str) -> CookieBox:
    return CookieBox(secret_key, "sign-in-pending")


def _fingerprint(user: User) -> str:
    """Changes when the password, the second factor, the role or the account's state change,
    when a code is accepted and when the password is entered again: a half-done sign-in from
    before such a change is worthless."""
    state = "|".join(
        str(v)
        for v in (
            user.password_hash,
            user.totp_enabled_at,
            user.role,
            user.is_active,
            user.id,
            *_second_factor_state(user),
        )
    )
    return hashlib.sha256(state.encode()).hexdigest()[:32]


def _second_factor_state(user: User) -> tuple[object, ...]:
    """What changes when a code or a recovery code is accepted, or a newer password step
    re-seals the secret: a half-done sign-in is good for one second step, and only the newest.

    (Before enrolment is confirmed the secret is written when the enrolment page is shown, so
    it cannot count then; confirming switches the second factor on, which changes the state.)
    """
    if not twofactor.is_enabled(user):
        return ()
    return (user.totp_secret, user.totp_last_step, user.recovery_codes)


def seal_pending(secret_key: str, user: User, *, stage: str, next_page: str, now: datetime) -> str:
    """The half-done sign-in, encrypted and authenticated (Fernet), valid PENDING_VALID."""
    return _pending_box(secret_key).seal(
        {
            "u": user.id,
            "s": stage,
            "n": next_page[:500],
            "f": _fingerprint(user),
            "x": int((now + PENDING_VALID).timestamp()),
        }
    )


async def pending_sign_in(
    db: Database, sealed: str | None, *, secret_key: str, now: datetime
) -> PendingSignIn | None:
    """The half-done sign-in behind a sealed value, while it is valid and still applies."""
    if not sealed or len(sealed) > 2000:
        return None
    value = _pending_box(secret_key).open(sealed, int(PENDING_VALID.total_seconds()))
    if value is None:
        return None
    user_id, stage, expires = value.get("u"), value.get("s"), value.get("x")
    if (
        not isinstance(user_id, int)
        or not isinstance(expires, int)
        or stage
        not in (
            STAGE_CODE,
            STAGE_ENROL,
        )
    ):
        return None
    if now.timestamp() > expires:
        return None
    async with db.read() as session:
        user = await session.get(User, user_id)
    if user is None or not user.is_active or value.get("f") != _fingerprint(user):
        return None
    if (stage == STAGE_CODE) != twofactor.is_enabled(user):
        return None
    next_page = value.get("n")
    return PendingSignIn(
        user=user, stage=stage, next_page=next_page if isinstance(next_page, str) else ""
    )


async def complete_sign_in(
    db: Database,
    pending: PendingSignIn,
    code: str,
    *,
    secret_key: str,
    address: str,
    now: datetime,
    previous_token: str | None = None,
    refusals: RefusalTally | None = None,
) -> SignInOutcome:
    """The second step: a code or a recovery code; counted and throttled like passwords.

    A code that is accepted uses the half-done sign-in up (its fingerprint changes with the
    account's last accepted step or its recovery codes).
    """
    user = pending.user
    address = address[:64]
    actor = Actor(kind="user", id=user.id, name=user.email, role=user.role, address=address)
    anonymous = Actor(kind="anonymous", address=address)
    refusals = refusals if refusals is not None else RefusalTally()
    await throttle.write_refusals(db, refusals, now)
    attempt = await throttle.begin_attempt(db, user.email, address, now, tally=refusals)
    if isinstance(attempt, Throttled):
        refusals.note(attempt, email=user.email, address=address, now=now)
        metrics.sign_in_failed("throttled")
        return SignInOutcome(message=MSG_THROTTLED, retry_after=attempt.seconds)
    method = await twofactor.verify(db, actor, user, code, secret_key=secret_key, now=now)
    if method is None:
        await audit.log(
            db,
            anonymous,
            "sign_in_failed",
            at=now,
            details={"email": user.email, "reason": "second factor"},
        )
        metrics.sign_in_failed("second_factor")
        return SignInOutcome(message=twofactor.MSG_CODE_OR_RECOVERY)
    token = await _open_session(
        db,
        user,
        address=address,
        now=now,
        previous_token=previous_token,
        details={"second_factor": method},
    )
    return SignInOutcome(session_token=token, user_id=user.id)


async def enrol_and_sign_in(
    db: Database,
    pending: PendingSignIn,
    code: str,
    *,
    secret_key: str,
    address: str,
    now: datetime,
    previous_token: str | None = None,
) -> tuple[SignInOutcome, list[str]]:
    """The second step of an account that must enrol: its first code switches the second
    factor on and opens the session. Returns the outcome and the recovery codes (shown once).

    Raises twofactor.TwoFactorInvalid for a wrong code (a typo while enrolling is not counted
    as a failed sign-in: the account has no second factor to guess yet).
    """
    user = pending.user
    address = address[:64]
    actor = Actor(kind="user", id=user.id, name=user.email, role=user.role, address=address)
    codes = await twofactor.confirm_enrolment(
        db, actor, user.id, code, secret_key=secret_key, now=now
    )
    token = await _open_session(
        db,
        user,
        address=address,
        now=now,
        previous_token=previous_token,
        details={"second_factor": "enrolled"},
    )
    return SignInOutcome(session_token=token, user_id=user.id), codes


async def session_actor(
    db: Database,
    token: str | None,
    *,
    now: datetime,
    idle: timedelta,
    absolute: timedelta,
    address: str = "",
    touch: bool = True,
) -> Actor | None:
    """The signed-in user behind a session cookie, or None when it is unknown or expired.

    `touch=False` (a page refreshing itself in the background) reads the session without
    counting as activity: an unattended screen still signs out after the idle time.
    """
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
    if touch and now - staff_session.last_seen_at >= TOUCH_INTERVAL:
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
    """Change one's own password; other sessions of the account end. Returns errors by field.

    The current password is a guess like any sign-in (a session left open must not let one
    find it out faster): counted first, throttled, and a wrong one is audited. Raises
    TooManyAttempts while the account or the address must wait.
    """
    async with db.read() as session:
        user = await session.get(User, actor.id)
    if user is None:
        return {"current": MSG_CURRENT_PASSWORD}
    attempt = await throttle.begin_attempt(db, user.email, actor.address, now)
    if isinstance(attempt, Throttled):
        raise TooManyAttempts(attempt.seconds)
    if not await _password_work(verify_password, user.password_hash, current):
        await audit.log(
            db,
            actor,
            "password_change_failed",
            at=now,
            object_type="user",
            object_id=user.id,
            details={"reason": "current password"},
        )
        return {"current": MSG_CURRENT_PASSWORD}
    async with db.write() as session:
        await throttle.succeeded(session, attempt)
    problem = _password_problem(new, user.email)
    if problem:
        return {"new": problem}
    if new != repeat:
        return {"repeat": MSG_PASSWORDS_DIFFER}
    new_hash = await _password_work(hash_password, new)
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


async def issue_reset(
    db: Database, actor: Actor, user_id: int, *, now: datetime, keep_token: str | None = None
) -> str:
    """A one-time link token for an admin to pass on; valid 24 hours, replaces any earlier one.

    Every session of the account ends at once (a reset usually means the password is lost or
    known to others); an admin resetting their own keeps the session `keep_token` names.
    """
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
        sessions = delete(StaffSession).where(StaffSession.user_id == user_id)
        if keep_token:
            sessions = sessions.where(StaffSession.token_hash != token_hash(keep_token))
        await session.execute(sessions)
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
    new_hash = await _password_work(hash_password, new)
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
