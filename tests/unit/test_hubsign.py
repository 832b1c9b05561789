"""Signing signals for the hub, checking signatures, and the hub's documentation."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nightreg import __version__, hubsign
from nightreg.services.signals import SIGNAL_SCHEMA

DOC = Path(__file__).resolve().parents[2] / "docs" / "hub.md"
SECRET = "s3cret-" + "x" * 40
T = 1_795_942_351
BODY = b'{"id":"0b7f6c7e-3c55-4d8e-9d3a-5f2f1c9e8a41","reason":"Zeemeeuw \xc3\xa9t\xc3\xa9"}'


def signed(body: bytes = BODY, *, secret: str = SECRET, key_id: str = "k1", at: int = T) -> dict:
    return hubsign.request_headers(
        body, secret=secret, key_id=key_id, uid="0b7f6c7e-3c55-4d8e-9d3a-5f2f1c9e8a41", at=at
    )


def test_the_signature_is_hmac_sha256_over_the_timestamp_a_full_stop_and_the_body():
    expected = hmac.new(SECRET.encode(), b"1795942351." + BODY, hashlib.sha256).hexdigest()

    header = signed()["Nightreg-Signature"]

    assert header == f"keyid=k1,t=1795942351,v1={expected}"


def test_a_request_carries_the_idempotency_key_the_content_type_and_the_version():
    headers = signed()

    assert headers["Idempotency-Key"] == "0b7f6c7e-3c55-4d8e-9d3a-5f2f1c9e8a41"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"nightreg/{__version__} (signal dispatch)"


def test_a_datetime_signs_as_its_whole_unix_seconds():
    at = datetime.fromtimestamp(T + 0.75, tz=UTC)
    assert signed(at=T) == hubsign.request_headers(
        BODY, secret=SECRET, key_id="k1", uid="0b7f6c7e-3c55-4d8e-9d3a-5f2f1c9e8a41", at=at
    )


def test_a_signed_request_verifies_and_names_its_key_whatever_the_header_case():
    headers = {name.lower(): value for name, value in signed().items()}

    verified = hubsign.verify(headers, BODY, {"k1": SECRET}, now=T + 10)

    assert verified == hubsign.Verified(key_id="k1", timestamp=T)


def test_a_text_body_verifies_like_its_utf8_bytes():
    assert hubsign.verify(signed(), BODY.decode("utf-8"), {"k1": SECRET}, now=T).key_id == "k1"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("body", "mismatch"),
        ("secret", "mismatch"),
        ("key_id", "unknown_key"),
        ("old", "stale"),
        ("future", "stale"),
        ("missing", "missing"),
        ("malformed", "malformed"),
        ("non_ascii_signature", "mismatch"),
    ],
)
def test_a_request_that_was_not_signed_with_a_known_key_just_now_is_refused(change: str, code: str):
    headers, body, now = signed(), BODY, T
    if change == "body":
        body = BODY.replace(b"Zeemeeuw", b"Zeemeeuv")
    elif change == "secret":
        headers = signed(secret="another-secret-" + "y" * 40)
    elif change == "key_id":
        headers = signed(key_id="k9")
    elif change == "old":
        now = T + 301
    elif change == "future":
        now = T - 301
    elif change == "missing":
        del headers["Nightreg-Signature"]
    elif change == "malformed":
        headers["Nightreg-Signature"] = "t=abc,v1=00"
    elif change == "non_ascii_signature":
        headers["Nightreg-Signature"] = "keyid=k1,t=1795942351,v1=é"

    with pytest.raises(hubsign.SignatureInvalid) as refused:
        hubsign.verify(headers, body, {"k1": SECRET}, now=now)

    assert refused.value.code == code


def test_during_a_key_rotation_the_hub_accepts_the_old_and_the_new_key():
    keys = {"k1": SECRET, "k2": "the-new-secret-" + "z" * 40}

    assert hubsign.verify(signed(), BODY, keys, now=T).key_id == "k1"
    assert hubsign.verify(signed(secret=keys["k2"], key_id="k2"), BODY, keys, now=T).key_id == "k2"


def test_unknown_parts_of_the_signature_header_are_ignored_for_later_schemes():
    headers = signed()
    headers["Nightreg-Signature"] += ",v2=later-scheme,note"

    assert hubsign.verify(headers, BODY, {"k1": SECRET}, now=T).key_id == "k1"


# --- docs/hub.md -------------------------------------------------------------------------


def _block(text: str, start: str, end: str, language: str) -> str:
    match = re.search(
        re.escape(start) + r"[^\n]*\n```" + language + r"\n(.*?)\n```\n" + re.escape(end),
        text,
        re.DOTALL,
    )
    assert match, f"docs/hub.md has no {start} block"
    return match.group(1)


def test_the_hub_documentation_carries_the_current_signal_schema():
    text = DOC.read_text(encoding="utf-8")
    documented = _block(text, "<!-- signal-schema:start", "<!-- signal-schema:end -->", "json")

    assert documented == json.dumps(SIGNAL_SCHEMA, indent=2), (
        "docs/hub.md is out of date: run `python docs/hub_schema.py`"
    )


def test_the_example_signal_in_the_documentation_is_valid_against_the_schema():
    text = DOC.read_text(encoding="utf-8")
    example = re.search(r"An example, pretty-printed.*?```json\n(.*?)\n```", text, re.DOTALL)
    assert example

    jsonschema.Draft202012Validator(SIGNAL_SCHEMA).validate(json.loads(example.group(1)))


def test_the_verification_example_in_the_documentation_agrees_with_the_signer():
    text = DOC.read_text(encoding="utf-8")
    code = _block(text, "<!-- verify-example:start", "<!-- verify-example:end -->", "python")
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/hub.md", "exec"), namespace)  # the hub's copy-paste example
    verify, bad = namespace["verify"], namespace["BadSignature"]
    keys = {"k1": SECRET}

    assert verify(signed(), BODY, keys, now=T + 5) == "k1"
    with pytest.raises(bad):
        verify(signed(), BODY + b" ", keys, now=T)
    with pytest.raises(bad):
        verify(signed(), BODY, keys, now=T + 3600)
    with pytest.raises(bad):
        verify(signed(key_id="k2"), BODY, keys, now=T)
