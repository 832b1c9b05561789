"""Signed checkpoints of the audit chain, kept where the database's owner cannot rewrite them.

A checkpoint names the chain's head (the newest event's id and hash), how many events the
chain has had (kept and purged), where the keyless events end, the time and the key id; it is
signed with HMAC-SHA256 under a key derived from the audit key. Checkpoints are appended as
JSON lines to a file a month in Settings.checkpoint_dir (NIGHTREG_AUDIT_CHECKPOINT_DIR), at
every job run, on `nightreg audit checkpoint`, and on every purge receipt; signals sent under
an agreement that says so carry one to the hub (nightreg.services.signals), as the same JSON
object, so that a copy saved from the hub is a file `nightreg audit verify --checkpoint` reads.

Whoever rewrites the database can cut off the newest events or edit one and re-chain the rest;
neither survives a comparison with a checkpoint written before: the head it names is gone or
has another hash, or the count differs.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.db import Database
from nightreg.services import audit
from nightreg.settings import Settings

VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    at: str
    head_id: int
    head_hash: str
    count: int
    keyless_through_id: int
    key_id: str
    signature: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "at": self.at,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "count": self.count,
            "keyless_through_id": self.keyless_through_id,
            "key_id": self.key_id,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}

    def line(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))


def _signature(key: bytes, checkpoint: Checkpoint) -> str:
    canonical = json.dumps(checkpoint.body(), sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), "sha256").hexdigest()


async def take(db: Database, *, now: datetime, keyring: audit.Keyring | None = None) -> Checkpoint:
    """A signed checkpoint of the chain as it is now."""
    return _signed(await audit.head(db), now, keyring)


async def take_in(
    session: AsyncSession, *, now: datetime, keyring: audit.Keyring | None = None
) -> Checkpoint:
    """A signed checkpoint of the chain as the caller's transaction sees it (a signal's: if
    the transaction is rolled back, the signal that carries it goes too)."""
    return _signed(await audit.head_in(session), now, keyring)


def _signed(
    head: tuple[int, str, int, int], now: datetime, keyring: audit.Keyring | None
) -> Checkpoint:
    keyring = keyring or audit.current_keyring()
    head_id, head_hash, count, keyless = head
    unsigned = Checkpoint(
        at=now.isoformat(), head_id=head_id, head_hash=head_hash, count=count,
        keyless_through_id=keyless, key_id=keyring.current_id,
    )  # fmt: skip
    key = keyring.checkpoint_key(keyring.current_id)
    assert key is not None  # the current key is always in the ring
    return replace(unsigned, signature=_signature(key, unsigned))


def _file_for(directory: Path, now: datetime) -> Path:
    return directory / f"checkpoints-{now:%Y-%m}.jsonl"


def append(directory: Path, checkpoint: Checkpoint, now: datetime) -> Path:
    """Append one line (O_APPEND: concurrent writers never interleave a line)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = _file_for(directory, now)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (checkpoint.line() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


async def write(
    db: Database, settings: Settings, *, now: datetime, only_if_moved: bool = False
) -> Checkpoint:
    """Take a checkpoint and append it to the directory; with `only_if_moved`, not when the
    latest one there names the same head (the dispatch job runs every minute)."""
    checkpoint = await take(db, now=now)
    if only_if_moved:
        latest = latest_in(settings.checkpoint_dir)
        if latest is not None and (latest.head_id, latest.head_hash, latest.count) == (
            checkpoint.head_id, checkpoint.head_hash, checkpoint.count,
        ):  # fmt: skip
            return latest
    append(settings.checkpoint_dir, checkpoint, now)
    return checkpoint


def parse(line: str) -> Checkpoint:
    data = json.loads(line)
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise ValueError("not a checkpoint of this version")
    return Checkpoint(
        at=str(data["at"]),
        head_id=int(data["head_id"]),
        head_hash=str(data["head_hash"]),
        count=int(data["count"]),
        keyless_through_id=int(data["keyless_through_id"]),
        key_id=str(data["key_id"]),
        signature=str(data.get("signature", "")),
    )


def latest_in_file(path: Path) -> Checkpoint | None:
    """The file's last readable checkpoint (a torn last line is skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return parse(line)
        except (ValueError, KeyError, TypeError):
            continue
    return None


def latest_in(directory: Path) -> Checkpoint | None:
    for path in sorted(directory.glob("checkpoints-*.jsonl"), reverse=True):
        found = latest_in_file(path)
        if found is not None:
            return found
    return None


async def compare(
    db: Database, checkpoint: Checkpoint, keyring: audit.Keyring | None = None
) -> str | None:
    """What does not match between the database and a checkpoint; None when it matches."""
    keyring = keyring or audit.current_keyring()
    key = keyring.checkpoint_key(checkpoint.key_id)
    if key is None:
        return f"the checkpoint's key {checkpoint.key_id} is unknown"
    if not hmac.compare_digest(_signature(key, checkpoint), checkpoint.signature):
        return "the checkpoint's signature does not match"
    count, found_hash, anchor = await audit.count_through(db, checkpoint.head_id)
    keyless = anchor.keyless_through_id if anchor is not None else 0
    if keyless > checkpoint.keyless_through_id:
        return "the keyless part of the chain was extended after the checkpoint"
    if found_hash is None:
        purged_through = anchor.removed_through_id if anchor is not None else 0
        if checkpoint.head_id == 0 and checkpoint.count == 0:
            return None
        if purged_through == checkpoint.head_id and anchor is not None:
            if anchor.prev_hash != checkpoint.head_hash:
                return "the checkpoint's head event was re-hashed before the purge removed it"
            return (
                None if count == checkpoint.count else "events were removed before the checkpoint"
            )
        return (
            f"the checkpoint's head event {checkpoint.head_id} is missing: "
            "the trail was cut off (truncated)"
        )
    if not hmac.compare_digest(found_hash, checkpoint.head_hash):
        return (
            f"event {checkpoint.head_id} has another hash than the checkpoint's head: "
            "the chain was re-hashed"
        )
    if count != checkpoint.count:
        return f"{checkpoint.count} events up to the checkpoint's head, now {count}"
    return None


async def verify(
    db: Database, settings: Settings, *, checkpoint_file: Path | None = None
) -> audit.Verification:
    """The chain, and the database against the latest checkpoint given or found."""
    result = await audit.verify_chain(db)
    checkpoint = (
        latest_in_file(checkpoint_file)
        if checkpoint_file is not None
        else latest_in(settings.checkpoint_dir)
    )
    if checkpoint is None:
        where = checkpoint_file or settings.checkpoint_dir
        note = f"no checkpoint in {where}: a cut-off tail cannot be detected"
        return _with(result, note, broken=checkpoint_file is not None)
    problem = await compare(db, checkpoint)
    note = f"checkpoint of {checkpoint.at} (event {checkpoint.head_id})"
    if problem is not None:
        return _with(result, f"{note}: {problem}", broken=True)
    return _with(result, f"{note} matches", broken=False)


def _with(result: audit.Verification, note: str, *, broken: bool) -> audit.Verification:
    if broken and result.intact:
        return replace(result, intact=False, reason=note.split(": ", 1)[-1], checkpoint=note)
    return replace(result, checkpoint=note)
