"""Signing a signal for the hub and checking such a signature: pure functions, no I/O.

Every POST to the hub carries the header

    Nightreg-Signature: keyid=<key id>,t=<unix seconds>,v1=<hex HMAC-SHA256>

where v1 = HMAC-SHA256(key=<secret as UTF-8>, msg=b"<t>." + <body bytes>). The timestamp inside
the signed message stops a captured request from being replayed later (the hub refuses one
older than its tolerance); the key id names the secret, so that the hub can accept an old and a
new key side by side while they rotate. docs/hub.md spells this out for the hub's developers,
with a stand-alone version of `verify`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from nightreg import __version__

SIGNATURE_HEADER = "Nightreg-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300
USER_AGENT = f"nightreg/{__version__} (signal dispatch)"


class SignatureInvalid(ValueError):
    """The request is not signed by a key the hub knows, or not recently; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Verified:
    key_id: str
    timestamp: int


def _bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def _unix(at: datetime | float) -> int:
    return int(at.timestamp()) if isinstance(at, datetime) else int(at)


def signature(secret: str, timestamp: int, body: bytes | str) -> str:
    """The v1 signature: hex HMAC-SHA256 over b"<timestamp>." followed by the body's bytes."""
    message = str(timestamp).encode("ascii") + b"." + _bytes(body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, key_id: str, timestamp: int, body: bytes | str) -> str:
    return f"keyid={key_id},t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def request_headers(
    body: bytes | str, *, secret: str, key_id: str, uid: str, at: datetime | float
) -> dict[str, str]:
    """The headers of one delivery attempt (a new timestamp, hence signature, each time)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        IDEMPOTENCY_HEADER: uid,
        SIGNATURE_HEADER: signature_header(secret, key_id, _unix(at), body),
    }


def parse_signature_header(value: str) -> tuple[str, int, list[str]]:
    """(key id, timestamp, v1 signatures) of a header; unknown parts are ignored."""
    key_id: str | None = None
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep:
            continue
        if name == "keyid":
            key_id = item
        elif name == "t":
            try:
                timestamp = int(item)
            except ValueError:
                raise SignatureInvalid("malformed", "t is not a whole number of seconds") from None
        elif name == SCHEME:
            signatures.append(item)
    if not key_id or timestamp is None or not signatures:
        raise SignatureInvalid("malformed", f"{SIGNATURE_HEADER} needs keyid, t and {SCHEME}")
    return key_id, timestamp, signatures


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    secrets_by_keyid: Mapping[str, str],
    now: datetime | float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> Verified:
    """Check a request as the hub would; raise SignatureInvalid, or say which key signed it.

    `headers` may use any capitalisation; `now` is a datetime or unix seconds; a timestamp
    more than `tolerance` seconds away from `now` (either way) is refused.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(SIGNATURE_HEADER.lower())
    if not value:
        raise SignatureInvalid("missing", f"no {SIGNATURE_HEADER} header")
    key_id, timestamp, signatures = parse_signature_header(value)
    secret = secrets_by_keyid.get(key_id)
    if secret is None:
        raise SignatureInvalid("unknown_key", f"unknown key id {key_id!r}")
    if abs(_unix(now) - timestamp) > tolerance:
        raise SignatureInvalid("stale", f"timestamp {timestamp} is outside the tolerance")
    expected = signature(secret, timestamp, body).encode("ascii")
    # Compare every candidate, in constant time each (as bytes: a header may hold any text).
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8"))
    if not matched:
        raise SignatureInvalid("mismatch", "the signature does not match the body")
    return Verified(key_id=key_id, timestamp=timestamp)
