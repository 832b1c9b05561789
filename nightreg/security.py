"""Tokens, password hashing and the encrypted cookie that remembers a visitor's boat or car."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
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
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


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
