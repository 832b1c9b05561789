"""Signing a signal for the hub and checking such a signature: pure functions, no I/O.

Every POST to the hub carries the headers

    Nightreg-Installation: <installation id>
    Nightreg-Signature: keyid=<key id>,t=<unix seconds>,v2=<hex HMAC-SHA256>

where v2 = HMAC-SHA256(key=<secret as UTF-8>, msg=b"<t>.<installation id>." + <body bytes>).
The timestamp inside the signed message stops a captured request from being replayed later
(the hub refuses one older than its tolerance); the installation id inside it says which
installation sent the request, and nobody can change it without the secret; the key id names
the secret, so that the hub can accept an old and a new key side by side while they rotate.
Keys belong to an installation: the hub looks a secret up by (installation id, key id).

(Scheme v1, before issue 18, signed b"<t>." + body and named no installation; it is no longer
sent.) docs/hub.md spells this out for the hub's developers, with a stand-alone `verify`.

`signature_header` signs any bytes: the pull API attaches such a value to each pulled item as a
detached signature over its canonical bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from nightreg import __version__

SIGNATURE_HEADER = "Nightreg-Signature"
INSTALLATION_HEADER = "Nightreg-Installation"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "v2"
DEFAULT_TOLERANCE = 300
USER_AGENT = f"nightreg/{__version__} (signal dispatch)"
# An installation id: letters, digits, `-` and `_`, up to 64 (no `.`, `,`, `=` or spaces, so
# that it sits unambiguously in the signed message, in a header and in a key id).
INSTALLATION_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# A key id: the same characters, and `.`.
KEY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DIGITS = re.compile(r"[0-9]{1,12}")


class SignatureInvalid(ValueError):
    """The request is not signed by a key the hub knows, or not recently; `code` says why.

    Codes: missing, malformed, unknown_key, stale (the timestamp is outside the tolerance: the
    hub answers 401 with the JSON code `stale_timestamp`), mismatch.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Verified:
    installation_id: str
    key_id: str
    timestamp: int


def default_key_id(installation_id: str) -> str:
    """The key id an installation uses unless told otherwise: its own, never a shared `k1`."""
    return f"{installation_id}-k1"


def _bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def _unix(at: datetime | float) -> int:
    return int(at.timestamp()) if isinstance(at, datetime) else int(at)


def signature(secret: str, installation_id: str, timestamp: int, body: bytes | str) -> str:
    """The v2 signature: hex HMAC-SHA256 over b"<timestamp>.<installation id>." + the body."""
    message = f"{int(timestamp)}.{installation_id}.".encode("ascii") + _bytes(body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(
    secret: str, key_id: str, installation_id: str, timestamp: int, body: bytes | str
) -> str:
    """`keyid=<key id>,t=<timestamp>,v2=<signature>`: the header value, or a detached signature.

    Sign any bytes with it (the pull API signs each item's canonical bytes); the installation
    id is part of what is signed, so the verifier needs it beside this value.
    """
    timestamp = int(timestamp)
    signed = signature(secret, installation_id, timestamp, body)
    return f"keyid={key_id},t={timestamp},{SCHEME}={signed}"


def request_headers(
    body: bytes | str,
    *,
    secret: str,
    key_id: str,
    installation_id: str,
    uid: str,
    at: datetime | float,
) -> dict[str, str]:
    """The headers of one delivery attempt (a new timestamp, hence signature, each time)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        IDEMPOTENCY_HEADER: uid,
        INSTALLATION_HEADER: installation_id,
        SIGNATURE_HEADER: signature_header(secret, key_id, installation_id, _unix(at), body),
    }


def parse_signature_header(value: str) -> tuple[str, int, list[str]]:
    """(key id, timestamp, v2 signatures) of a header; unknown parts (v1, later ones) ignored."""
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
            # ASCII digits only: int() would take "²", " 1" or "1_000".
            if not _DIGITS.fullmatch(item):
                raise SignatureInvalid("malformed", "t is not a whole number of seconds")
            timestamp = int(item)
        elif name == SCHEME:
            signatures.append(item)
    if not key_id or timestamp is None or not signatures:
        raise SignatureInvalid("malformed", f"{SIGNATURE_HEADER} needs keyid, t and {SCHEME}")
    return key_id, timestamp, signatures


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    secrets: Mapping[tuple[str, str], str],
    now: datetime | float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> Verified:
    """Check a request as the hub would; raise SignatureInvalid, or say who signed it.

    `secrets` maps (installation id, key id) to a secret; `headers` may use any
    capitalisation; `now` is a datetime or unix seconds; a timestamp more than `tolerance`
    seconds away from `now` (either way) is refused with the code `stale`.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(SIGNATURE_HEADER.lower())
    if not value:
        raise SignatureInvalid("missing", f"no {SIGNATURE_HEADER} header")
    installation_id = lowered.get(INSTALLATION_HEADER.lower(), "")
    if not INSTALLATION_ID_RE.fullmatch(installation_id):
        raise SignatureInvalid("malformed", f"no valid {INSTALLATION_HEADER} header")
    key_id, timestamp, signatures = parse_signature_header(value)
    secret = secrets.get((installation_id, key_id))
    if secret is None:
        raise SignatureInvalid(
            "unknown_key", f"unknown key id {key_id!r} of installation {installation_id!r}"
        )
    if abs(_unix(now) - timestamp) > tolerance:
        raise SignatureInvalid("stale", f"timestamp {timestamp} is outside the tolerance")
    expected = signature(secret, installation_id, timestamp, body).encode("ascii")
    # Compare every candidate, in constant time each (as bytes: a header may hold any text).
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8"))
    if not matched:
        raise SignatureInvalid("mismatch", "the signature does not match the body")
    return Verified(installation_id=installation_id, key_id=key_id, timestamp=timestamp)
