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
INSTALLATION = "jachthaven-hoorn"
T = 1_795_942_351
BODY = b'{"id":"0b7f6c7e-3c55-4d8e-9d3a-5f2f1c9e8a41","reason":"Zeemeeuw \xc3\xa9t\xc3\xa9"}'
KEYS = {(INSTALLATION, "k1"): SECRET}


def signed(
    body: bytes = BODY,
    *,
    secret: str = SECRET,
    key_id: str = "k1",
    installation_id: str = INSTALLATION,
    at: int = T,
) -> dict:
    return hubsign.request_headers(
        body, secret=secret, key_id=key_id, installation_id=installation_id,
        uid="0b7f6c7e-3c55-4d8e-9d3a-5f2f1c9e8a41", at=at,
    )  # fmt: skip


def test_the_v2_signature_is_hmac_sha256_over_the_timestamp_the_installation_and_the_body():
    message = b"1795942351.jachthaven-hoorn." + BODY
    expected = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()

    headers = signed()

    assert headers["Nightreg-Signature"] == f"keyid=k1,t=1795942351,v2={expected}"
    assert headers["Nightreg-Installation"] == INSTALLATION


def test_signature_header_signs_any_bytes_as_a_detached_signature():
    value = hubsign.signature_header(SECRET, "k1", INSTALLATION, T, BODY)

    assert value == signed()["Nightreg-Signature"]
    assert value.endswith(hubsign.signature(SECRET, INSTALLATION, T, BODY))


def test_an_installations_default_key_id_is_its_own():
    assert hubsign.default_key_id(INSTALLATION) == "jachthaven-hoorn-k1"


def test_a_request_carries_the_idempotency_key_the_content_type_and_the_version():
    headers = signed()

    assert headers["Idempotency-Key"] == "0b7f6c7e-3c55-4d8e-9d3a-5f2f1c9e8a41"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"nightreg/{__version__} (signal dispatch)"


def test_a_datetime_signs_as_its_whole_unix_seconds():
    at = datetime.fromtimestamp(T + 0.75, tz=UTC)
    assert signed(at=T) == hubsign.request_headers(
        BODY, secret=SECRET, key_id="k1", installation_id=INSTALLATION,
        uid="0b7f6c7e-3c55-4d8e-9d3a-5f2f1c9e8a41", at=at,
    )  # fmt: skip


def test_a_signed_request_verifies_and_names_its_sender_whatever_the_header_case():
    headers = {name.lower(): value for name, value in signed().items()}

    verified = hubsign.verify(headers, BODY, KEYS, now=T + 10)

    assert verified == hubsign.Verified(installation_id=INSTALLATION, key_id="k1", timestamp=T)


def test_a_text_body_verifies_like_its_utf8_bytes():
    assert hubsign.verify(signed(), BODY.decode("utf-8"), KEYS, now=T).key_id == "k1"


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
        ("superscript_timestamp", "malformed"),
        ("non_ascii_signature", "mismatch"),
        ("v1_only", "malformed"),
        ("no_installation", "malformed"),
        ("other_installation", "unknown_key"),
        ("installation_changed_in_transit", "mismatch"),
    ],
)
def test_a_request_that_was_not_signed_with_a_known_key_just_now_is_refused(change: str, code: str):
    headers, body, now = signed(), BODY, T
    keys: dict[tuple[str, str], str] = dict(KEYS)
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
    elif change == "superscript_timestamp":
        headers["Nightreg-Signature"] = headers["Nightreg-Signature"].replace("t=1795942351", "t=²")
    elif change == "non_ascii_signature":
        headers["Nightreg-Signature"] = "keyid=k1,t=1795942351,v2=é"
    elif change == "v1_only":
        headers["Nightreg-Signature"] = headers["Nightreg-Signature"].replace(",v2=", ",v1=")
    elif change == "no_installation":
        del headers["Nightreg-Installation"]
    elif change == "other_installation":
        # Another installation's request under a key id that happens to be the same.
        headers = signed(installation_id="haven-elders", secret="theirs-" + "q" * 40)
    elif change == "installation_changed_in_transit":
        keys[("haven-elders", "k1")] = SECRET
        headers["Nightreg-Installation"] = "haven-elders"

    with pytest.raises(hubsign.SignatureInvalid) as refused:
        hubsign.verify(headers, body, keys, now=now)

    assert refused.value.code == code


def test_during_a_key_rotation_the_hub_accepts_the_old_and_the_new_key():
    keys = {**KEYS, (INSTALLATION, "k2"): "the-new-secret-" + "z" * 40}

    assert hubsign.verify(signed(), BODY, keys, now=T).key_id == "k1"
    new = signed(secret=keys[(INSTALLATION, "k2")], key_id="k2")
    assert hubsign.verify(new, BODY, keys, now=T).key_id == "k2"


def test_unknown_parts_of_the_signature_header_are_ignored_for_later_schemes():
    headers = signed()
    headers["Nightreg-Signature"] += ",v1=old-scheme,v3=later-scheme,note"

    assert hubsign.verify(headers, BODY, KEYS, now=T).key_id == "k1"


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


def _documented_verify() -> tuple[Any, type[Exception], type[Exception]]:
    text = DOC.read_text(encoding="utf-8")
    code = _block(text, "<!-- verify-example:start", "<!-- verify-example:end -->", "python")
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/hub.md", "exec"), namespace)  # the hub's copy-paste example
    return namespace["verify"], namespace["BadSignature"], namespace["StaleTimestamp"]


def test_the_verification_example_in_the_documentation_accepts_what_the_sender_signs():
    verify, _bad, _stale = _documented_verify()
    lowered = {name.lower(): value for name, value in signed().items()}

    assert verify(signed(), BODY, KEYS, now=T + 5) == (INSTALLATION, "k1")
    assert verify(lowered, BODY, KEYS, now=T - 300) == (INSTALLATION, "k1")


def _with_signature(value: str) -> dict[str, str]:
    return {**signed(), "Nightreg-Signature": value}


GOOD = signed()["Nightreg-Signature"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(_with_signature(GOOD.replace("t=1795942351", "t=²")), id="superscript-t"),
        pytest.param(_with_signature(GOOD.replace("t=1795942351", "t=١٧٩٥٩٤٢٣٥١")), id="arabic-t"),
        pytest.param(_with_signature(GOOD.replace("t=1795942351", "t=-1")), id="negative-t"),
        pytest.param(_with_signature(GOOD.replace("t=1795942351", "t= 1795942351")), id="space-t"),
        pytest.param(_with_signature(GOOD.replace("t=1795942351", "t=1_795_942_351")), id="t_"),
        pytest.param(_with_signature(GOOD.replace("t=1795942351", "t=" + "9" * 400)), id="long-t"),
        pytest.param(_with_signature(GOOD.replace(",t=1795942351", "")), id="no-t"),
        pytest.param(_with_signature(GOOD.replace("keyid=k1,", "")), id="no-keyid"),
        pytest.param(_with_signature(GOOD.replace(",v2=", ",v1=")), id="v1-only"),
        pytest.param(_with_signature(GOOD + "é"), id="non-ascii-v2"),
        pytest.param(_with_signature(GOOD[:-1] + "²"), id="superscript-in-v2"),
        pytest.param(_with_signature(""), id="empty"),
        pytest.param(_with_signature("=,=,,==="), id="garbage"),
        pytest.param({**signed(), "Nightreg-Installation": "jachthaven hoorn"}, id="space-id"),
        pytest.param({**signed(), "Nightreg-Installation": "jachthaven.hoorn"}, id="dot-id"),
        pytest.param({**signed(), "Nightreg-Installation": "ｊachthaven"}, id="fullwidth-id"),
        pytest.param({"Content-Type": "application/json"}, id="no-headers"),
        pytest.param({**signed(), "Nightreg-Installation": "haven-elders"}, id="other-id"),
    ],
)
def test_the_documented_verify_answers_bad_signature_for_any_malformed_header(
    headers: dict[str, str],
):
    verify, bad, _stale = _documented_verify()

    with pytest.raises(bad):
        verify(headers, BODY, {**KEYS, ("haven-elders", "k1"): SECRET}, now=T)


def test_the_documented_verify_refuses_a_wrong_body_key_or_clock_each_as_documented():
    verify, bad, stale = _documented_verify()

    with pytest.raises(bad) as changed:
        verify(signed(), BODY + b" ", KEYS, now=T)
    assert not isinstance(changed.value, stale)
    with pytest.raises(bad):
        verify(signed(key_id="k2"), BODY, KEYS, now=T)
    with pytest.raises(stale):
        verify(signed(), BODY, KEYS, now=T + 301)
    with pytest.raises(stale):
        verify(signed(), BODY, KEYS, now=T - 301)
