"""The password policy for staff accounts: long enough, and not one everybody tries first."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from nightreg.i18n import N_

MIN_LENGTH = 12
MAX_LENGTH = 1024

MSG_TOO_SHORT = N_("Please use at least 12 characters.")
MSG_TOO_LONG = N_("Please use at most 1024 characters.")
MSG_COMMON = N_("This password is too common or too easy to guess; please choose another.")

_COMMON_FILE = Path(__file__).parent / "common_passwords.txt"
_TRAILING = re.compile(r"[\d\W_]+$")
_LEADING = re.compile(r"^[\d\W_]+")
_SEQUENCES = (
    "0123456789012345678901234567890",
    "9876543210987654321098765432109",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiop",
    "qwertzuiopasdfghjklyxcvbnmqwertzuiop",
    "azertyuiopqsdfghjklmwxcvbnazertyuiop",
    "1q2w3e4r5t6y7u8i9o0p",
)


@cache
def common_passwords() -> frozenset[str]:
    lines = _COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _is_run(text: str) -> bool:
    """One character repeated, or a stretch of the alphabet, the digits or a keyboard row."""
    if len(set(text)) <= 2:
        return True
    return any(text in sequence for sequence in _SEQUENCES)


def check_password(password: str, *, email: str = "") -> str | None:
    """None when the password will do, else the message (a msgid) that says why not."""
    if len(password) < MIN_LENGTH:
        return MSG_TOO_SHORT
    if len(password) > MAX_LENGTH:
        return MSG_TOO_LONG
    folded = password.casefold()
    core = _LEADING.sub("", _TRAILING.sub("", folded))
    local_part = email.casefold().split("@", 1)[0]
    common = common_passwords()
    if folded in common or core in common or _is_run(folded) or _is_run(core or folded):
        return MSG_COMMON
    if local_part and len(local_part) >= 4 and core in (local_part, email.casefold()):
        return MSG_COMMON
    # A common word repeated ("welkomwelkom") is still a common word.
    for size in range(3, len(core) // 2 + 1):
        if len(core) % size == 0 and core == core[:size] * (len(core) // size):
            return MSG_COMMON
    return None
