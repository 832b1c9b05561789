"""Unit tests of the import's own shortcuts: they give what the plain ways give."""

from __future__ import annotations

import secrets

import pytest

from nightreg.services import register_import


def test_references_drawn_in_bulk_are_the_references_of_the_same_random_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = secrets.token_bytes(5 * 200)
    monkeypatch.setattr(register_import.secrets, "token_bytes", lambda n: pool[:n])

    drawn = list(register_import._new_references(200))

    one_by_one = [
        register_import._new_reference(int.from_bytes(pool[5 * i : 5 * i + 5], "big"))
        for i in range(200)
    ]
    assert drawn == one_by_one
    assert all(register_import._REFERENCE.fullmatch(r) for r in drawn)


def test_private_link_hashes_drawn_in_bulk_are_64_hex_digits_each_and_all_different() -> None:
    tokens = register_import._Rows._tokens(3)
    drawn = [next(tokens) for _ in range(10)]
    assert all(len(t) == 64 and int(t, 16) >= 0 for t in drawn)
    assert len(set(drawn)) == 10
