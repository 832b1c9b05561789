"""Two-factor sign-in: TOTP codes from an authenticator app, and one-time recovery codes.

The TOTP secret (RFC 6238: 30-second steps, 6 digits, SHA-1 as every app expects) is kept
encrypted (Fernet) under a key derived from NIGHTREG_SECRET_KEY, so that a copy of the database
alone does not give the codes away. A code is accepted one step early or late (clocks drift),
and never twice: the account remembers the last step it accepted. Recovery codes are 80-bit
random strings of which only keyed hashes are kept; each works once.

An account's second factor is on when `totp_enabled_at` is set. A secret without it is an
enrolment that waits for its first code. Signing in with it is auth.py's business.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, or_, select, update

from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import StaffSession, User
from nightreg.security import REFERENCE_ALPHABET, derive_key
from nightreg.services import audit, throttle
from nightreg.services.access import Actor, NotFound

ISSUER = "Nachtregister"
INTERVAL = 30
DIGITS = 6
VALID_WINDOW = 1  # steps either side of now
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 16  # characters of a 32-letter alphabet: 80 bits

MSG_CODE = N_("The code is not right. Enter the 6 digits your app shows now.")
MSG_CODE_OR_RECOVERY = N_(
    "The code is not right. Enter the 6 digits your app shows now, or one of your recovery codes."
)
MSG_REQUIRED = N_(
    "Your role must sign in with a second factor, so it cannot be switched off. An administrator "
    "can reset it if you lose your phone."
)
MSG_NOT_ENABLED = N_("Two-factor sign-in is not switched on for this account.")
MSG_SELF_RESET = N_(
    "You cannot reset your own second factor here; switch it off on your own two-factor page or "
    "ask another administrator."
)
MSG_THROTTLED = N_("Too many failed attempts. Please wait %(seconds)s seconds and try again.")


class TwoFactorInvalid(ValueError):
    """A form of the two-factor pages has a mistake: msgids by field name."""

    def __init__(self, errors: dict[str, str], retry_after: int = 0) -> None:
        self.errors = errors
        self.retry_after = retry_after
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# --- secrets, codes and their checks (no database) ----------------------------------------


def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive_key(secret_key, "totp-secret")))


def new_secret() -> str:
    """A new TOTP secret: 32 base32 characters (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32()


def seal_secret(secret_key: str, secret: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def open_secret(secret_key: str, sealed: str | None) -> str | None:
    """The secret in plain text, or None when there is none or it was sealed under another key."""
    if not sealed:
        return None
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def reseal_secret(secret_key: str, sealed: str | None) -> str | None:
    """The same secret sealed afresh (Fernet: a new ciphertext), or None when it cannot be
    opened. The authenticator app notices nothing; what was bound to the old ciphertext ends."""
    secret = open_secret(secret_key, sealed)
    return seal_secret(secret_key, secret) if secret is not None else None


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=email, issuer_name=ISSUER
    )


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // INTERVAL


def code_at(secret: str, step: int) -> str:
    """The code of one time step (what the app shows during those 30 seconds)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).generate_otp(step)


def normalise_code(text: str) -> str:
    """What was typed, without the spaces and dashes some apps show between the digits."""
    return "".join(ch for ch in text[:40] if ch not in " -\t")


def matching_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step whose code `code` is (now, one before or one after), unless it was used.

    A step at or before `last_step` has been used already: its code, or an earlier one, does not
    count again.
    """
    code = normalise_code(code)
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return None
    current = time_step(now)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        # Compare with every candidate, so that the time taken does not tell which one matched.
        if hmac.compare_digest(code_at(secret, step), code) and found is None:
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


_CROCKFORD_READS = str.maketrans({"I": "1", "L": "1", "O": "0"})


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Codes like 7K2M-QX9D-04HT-PZ3A: no I, L, O or U, so that they can be read aloud."""
    codes = []
    for _ in range(count):
        chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        codes.append("-".join(chars[i : i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4)))
    return codes


def normalise_recovery_code(text: str) -> str:
    """Upper case, without spaces and dashes; I and L read as 1, O as 0."""
    kept = "".join(ch for ch in text[:80].upper() if ch.isascii() and ch.isalnum())
    return kept.translate(_CROCKFORD_READS)


def recovery_code_hash(secret_key: str, user_id: int, code: str) -> str:
    """A keyed hash, bound to the account: a copy of the table alone cannot test guesses."""
    key = derive_key(secret_key, "recovery-code")
    message = f"{user_id}:{normalise_recovery_code(code)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _hashes(stored: str | None) -> list[str]:
    if not stored:
        return []
    try:
        value = json.loads(stored)
    except ValueError:
        return []
    return [h for h in value if isinstance(h, str)] if isinstance(value, list) else []


def is_enabled(user: User) -> bool:
    return user.totp_enabled_at is not None


def required_for(user: User, required_roles: tuple[str, ...] | frozenset[str]) -> bool:
    return user.role in required_roles


# --- an account's second factor -----------------------------------------------------------


@dataclass(frozen=True)
class Status:
    enabled: bool
    enabled_at: datetime | None
    recovery_codes_left: int
    required: bool


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret as text and as an otpauth:// URI (QR code)."""

    secret: str
    uri: str
    email: str


async def _user(db: Database, user_id: int | None) -> User:
    async with db.read() as session:
        user = await session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise NotFound(str(user_id))
    return user


async def status(db: Database, user_id: int | None, required_roles: tuple[str, ...]) -> Status:
    user = await _user(db, user_id)
    return Status(
        enabled=is_enabled(user),
        enabled_at=user.totp_enabled_at,
        recovery_codes_left=len(_hashes(user.recovery_codes)) if is_enabled(user) else 0,
        required=required_for(user, required_roles),
    )


async def begin_enrolment(
    db: Database, user_id: int | None, *, secret_key: str
) -> Enrolment | None:
    """The secret to enrol with (kept until confirmed, so a reload shows the same QR code).

    None when the account has a second factor already.
    """
    user = await _user(db, user_id)
    if is_enabled(user):
        return None
    secret = open_secret(secret_key, user.totp_secret)
    if secret is None:
        secret = new_secret()
        async with db.write() as session:
            await session.execute(
                update(User)
                .where(User.id == user.id, User.totp_enabled_at.is_(None))
                .values(totp_secret=seal_secret(secret_key, secret), totp_last_step=None)
            )
    return Enrolment(secret=secret, uri=provisioning_uri(secret, user.email), email=user.email)


async def confirm_enrolment(
    db: Database, actor: Actor, user_id: int | None, code: str, *, secret_key: str, now: datetime
) -> list[str]:
    """Switch the second factor on with a first code; returns the new recovery codes (once)."""
    user = await _user(db, user_id)
    if is_enabled(user):
        raise TwoFactorInvalid({"code": MSG_CODE})
    secret = open_secret(secret_key, user.totp_secret)
    step = matching_step(secret, code, now, None) if secret else None
    if step is None:
        raise TwoFactorInvalid({"code": MSG_CODE})
    codes = new_recovery_codes()
    hashes = [recovery_code_hash(secret_key, user.id, c) for c in codes]
    async with db.write() as session:
        result = await session.execute(
            update(User)
            .where(
                User.id == user.id,
                User.totp_enabled_at.is_(None),
                User.totp_secret == user.totp_secret,
            )
            .values(totp_enabled_at=now, totp_last_step=step, recovery_codes=json.dumps(hashes))
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise TwoFactorInvalid({"code": MSG_CODE})  # done a moment ago in another tab
        await audit.record(
            session,
            actor,
            "two_factor_enabled",
            at=now,
            object_type="user",
            object_id=user.id,
            details={"email": user.email, "recovery_codes": len(codes)},
        )
    return codes


async def verify(
    db: Database, actor: Actor, user: User, code: str, *, secret_key: str, now: datetime
) -> str | None:
    """Check a code or a recovery code of `user`; "totp", "recovery_code" or None.

    An accepted code is used up in the same step, by a conditional update: of two requests with
    the same code at the same moment, one wins.
    """
    if not is_enabled(user):
        return None
    secret = open_secret(secret_key, user.totp_secret)
    if secret is not None:
        step = matching_step(secret, code, now, user.totp_last_step)
        if step is not None:
            async with db.write() as session:
                result = await session.execute(
                    update(User)
                    .where(
                        User.id == user.id,
                        or_(User.totp_last_step.is_(None), User.totp_last_step < step),
                    )
                    .values(totp_last_step=step)
                )
            return "totp" if result.rowcount == 1 else None  # type: ignore[attr-defined]
    if len(normalise_recovery_code(code)) != RECOVERY_CODE_LENGTH:
        return None
    wanted = recovery_code_hash(secret_key, user.id, code)
    async with db.write() as session:
        stored = await session.scalar(select(User.recovery_codes).where(User.id == user.id))
        hashes = _hashes(stored)
        matches = [h for h in hashes if hmac.compare_digest(h, wanted)]
        if not matches:
            return None
        left = [h for h in hashes if h != matches[0]]
        result = await session.execute(
            update(User)
            .where(User.id == user.id, User.recovery_codes == stored)
            .values(recovery_codes=json.dumps(left))
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        await audit.record(
            session,
            actor,
            "recovery_code_used",
            at=now,
            object_type="user",
            object_id=user.id,
            details={"email": user.email, "left": len(left)},
        )
    return "recovery_code"


async def disable(
    db: Database,
    actor: Actor,
    code: str,
    *,
    secret_key: str,
    required_roles: tuple[str, ...],
    now: datetime,
) -> None:
    """Switch one's own second factor off, with a current code (or a recovery code).

    Not for a role that must have one. A wrong code counts as a failed sign-in of the account.
    """
    user = await _user(db, actor.id)
    if required_for(user, required_roles):
        raise TwoFactorInvalid({"code": MSG_REQUIRED})
    if not is_enabled(user):
        raise TwoFactorInvalid({"code": MSG_NOT_ENABLED})
    attempt = await throttle.begin_attempt(db, user.email, actor.address, now)
    if isinstance(attempt, throttle.Throttled):
        raise TwoFactorInvalid({"code": MSG_THROTTLED}, retry_after=attempt.seconds)
    method = await verify(db, actor, user, code, secret_key=secret_key, now=now)
    if method is None:
        raise TwoFactorInvalid({"code": MSG_CODE_OR_RECOVERY})  # the attempt stays, a failure
    async with db.write() as session:
        await throttle.succeeded(session, attempt)
        await session.execute(update(User).where(User.id == user.id).values(**_CLEARED))
        await audit.record(
            session,
            actor,
            "two_factor_disabled",
            at=now,
            object_type="user",
            object_id=user.id,
            details={"email": user.email, "with": method},
        )


_CLEARED: dict[str, object] = {
    "totp_secret": None,
    "totp_enabled_at": None,
    "totp_last_step": None,
    "recovery_codes": None,
}


async def reset(db: Database, actor: Actor, user_id: int, *, now: datetime) -> bool:
    """An administrator takes an account's second factor away (a lost phone).

    The account enrols again at its next sign-in (where its role requires it), and every one of
    its sessions ends now. Returns whether it had one switched on.
    """
    actor.require("users.manage")
    if actor.kind == "user" and actor.id == user_id:
        raise TwoFactorInvalid({"two_factor": MSG_SELF_RESET})
    async with db.write() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound(str(user_id))
        was_enabled = is_enabled(user)
        await session.execute(update(User).where(User.id == user_id).values(**_CLEARED))
        await session.execute(delete(StaffSession).where(StaffSession.user_id == user_id))
        await audit.record(
            session,
            actor,
            "two_factor_reset",
            at=now,
            object_type="user",
            object_id=user_id,
            details={"email": user.email, "was_enabled": was_enabled},
        )
    return was_enabled


async def reset_by_email(db: Database, actor: Actor, email: str, *, now: datetime) -> bool:
    """`reset` for the command line (the last administrator who lost their phone)."""
    async with db.read() as session:
        user_id = await session.scalar(select(User.id).where(User.email == email.strip().lower()))
    if user_id is None:
        raise NotFound(email)
    return await reset(db, actor, user_id, now=now)
