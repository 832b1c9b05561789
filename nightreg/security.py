"""Tokens, password hashing and the encrypted cookie that remembers a visitor's boat or car."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher, extract_parameters, low_level
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Crockford's base32 without I, L, O, U: a reference read aloud over the phone stays unambiguous.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_hasher = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4: above OWASP's minimum


def new_point_token() -> str:
    """The unguessable part of a check-in point's URL (192 bits)."""
    return secrets.token_urlsafe(24)


def new_reference() -> str:
    """A visit's reference as the visitor sees it, e.g. K7QX-M2PD (40 bits, unique in the db)."""
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(18)


@lru_cache(maxsize=64)
def derive_key(secret_key: str, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose, so that one secret never signs two kinds of thing."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(
        secret_key.encode()
    )


def private_link_token(secret_key: str, idempotency_key: str | None) -> str:
    """The token of a visit's private link.

    Derived from the form's idempotency key, so that a double submit answers with the same link
    (the first answer may never have reached the visitor), yet unguessable without the secret.
    Without an idempotency key it is simply random.
    """
    if not idempotency_key:
        return secrets.token_urlsafe(32)
    mac = hmac.new(
        derive_key(secret_key, "visit-link"), idempotency_key.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """What the database keeps of a high-entropy token: its SHA-256 (no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Check a password against its argon2 hash, computing the hash's lanes on one thread.

    argon2's result depends on its lanes (the hash's `p`), not on how many threads compute
    them; libargon2's own verify starts a thread per lane, so one check would take every core
    of a small server. On one thread it takes one core a little longer, and the pages served
    meanwhile keep the other (issue 17, finding 5). Every check, of a real account's hash or
    of the dummy for an unknown e-mail, goes this same way, so the time tells nothing.
    """
    try:
        return _verify_on_one_thread(password_hash, password.encode("utf-8"))
    except (VerificationError, InvalidHashError, ValueError):
        return False


_TYPES = {
    "argon2id": low_level.Type.ID,
    "argon2i": low_level.Type.I,
    "argon2d": low_level.Type.D,
}


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _verify_on_one_thread(encoded: str, secret: bytes) -> bool:
    """libargon2's argon2_ctx (argon2-cffi's documented low-level `core`) with threads=1."""
    params = extract_parameters(encoded)
    parts = encoded.split("$")  # "", type, v=19, m=..,t=..,p=.., salt, hash
    if len(parts) != 6 or parts[1] not in _TYPES:
        raise InvalidHashError(encoded)
    salt, expected = _b64(parts[4]), _b64(parts[5])
    ffi = low_level.ffi
    out = ffi.new("uint8_t[]", len(expected))
    c_secret = ffi.new("uint8_t[]", secret)
    c_salt = ffi.new("uint8_t[]", salt)
    context = ffi.new(
        "argon2_context *",
        {
            "out": out, "outlen": len(expected), "pwd": c_secret, "pwdlen": len(secret),
            "salt": c_salt, "saltlen": len(salt), "secret": ffi.NULL, "secretlen": 0,
            "ad": ffi.NULL, "adlen": 0, "t_cost": params.time_cost,
            "m_cost": params.memory_cost, "lanes": params.parallelism, "threads": 1,
            "version": params.version, "allocate_cbk": ffi.NULL, "free_cbk": ffi.NULL,
            "flags": low_level.lib.ARGON2_DEFAULT_FLAGS,
        },
    )  # fmt: skip
    if low_level.core(context, _TYPES[parts[1]].value) != low_level.lib.ARGON2_OK:
        raise InvalidHashError(encoded)
    return hmac.compare_digest(bytes(ffi.buffer(out, len(expected))), expected)


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


class CookieBox:
    """Encrypts and authenticates small JSON values kept in a visitor's own cookie (Fernet)."""

    def __init__(self, secret_key: str, purpose: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret_key, purpose)))

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def open(self, sealed: str | None, max_age_seconds: int) -> dict[str, Any] | None:
        if not sealed:
            return None
        try:
            raw = self._fernet.decrypt(sealed.encode(), ttl=max_age_seconds)
            value = json.loads(raw)
        except (InvalidToken, ValueError):
            return None
        return value if isinstance(value, dict) else None
