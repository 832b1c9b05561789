"""Tokens, references, password hashes and the visitor's sealed cookie."""

from __future__ import annotations

import re

import pytest

from nightreg.security import (
    CookieBox,
    hash_password,
    new_point_token,
    new_reference,
    private_link_token,
    token_hash,
    verify_password,
)

SECRET = "a-test-secret-that-is-long-enough-000"


def test_point_tokens_are_long_random_and_url_safe():
    tokens = {new_point_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in tokens)


def test_a_reference_is_easy_to_read_aloud():
    for _ in range(200):
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", new_reference())


def test_the_same_form_gets_the_same_private_link_and_another_form_another():
    assert private_link_token(SECRET, "form-1") == private_link_token(SECRET, "form-1")
    assert private_link_token(SECRET, "form-1") != private_link_token(SECRET, "form-2")
    assert private_link_token(SECRET, "form-1") != private_link_token(SECRET + "x", "form-1")


def test_without_a_form_key_the_private_link_is_random():
    assert private_link_token(SECRET, None) != private_link_token(SECRET, None)


def test_only_a_hash_of_a_token_is_kept():
    token = private_link_token(SECRET, "k")
    assert token_hash(token) != token
    assert len(token_hash(token)) == 64


def test_passwords_are_hashed_with_argon2id_and_verified():
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "wrong horse battery")
    assert not verify_password("not a hash", "anything")


def test_a_password_is_checked_on_one_thread_with_the_same_verdict_as_argon2s_own(
    monkeypatch: pytest.MonkeyPatch,
):
    """Issue 17, finding 5: libargon2's verify starts a thread per lane (p=4) and takes every
    core of a small server; the check computes the same lanes on one thread."""
    from argon2 import PasswordHasher, Type, low_level

    threads: list[int] = []
    core = low_level.core

    def counted(context: object, kind: int) -> int:
        threads.append(context.threads)  # type: ignore[attr-defined]
        return core(context, kind)  # type: ignore[arg-type]

    monkeypatch.setattr(low_level, "core", counted)
    for hasher in (
        PasswordHasher(time_cost=1, memory_cost=8192, parallelism=4),
        PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1),
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=2, type=Type.I),
    ):
        stored = hasher.hash("correct horse battery")
        assert verify_password(stored, "correct horse battery")
        assert hasher.verify(stored, "correct horse battery")
        assert not verify_password(stored, "wrong horse battery")
        assert not verify_password(stored[:-4], "correct horse battery")
    assert threads
    assert set(threads) == {1}
    assert not verify_password("$argon2id$v=19$m=1024,t=1,p=1$!!$!!", "anything")
    assert not verify_password("$argon2id$v=19$m=1024,t=1,p=1", "anything")


def test_a_sealed_cookie_opens_with_the_same_key_only():
    box = CookieBox(SECRET, "remember")
    sealed = box.seal({"vessel": {"vessel_name": "Zeemeeuw"}})
    assert "Zeemeeuw" not in sealed
    assert box.open(sealed, 3600) == {"vessel": {"vessel_name": "Zeemeeuw"}}
    assert CookieBox(SECRET, "other purpose").open(sealed, 3600) is None
    assert box.open(sealed[:-4] + "AAAA", 3600) is None
    assert box.open("garbage", 3600) is None
    assert box.open(None, 3600) is None
