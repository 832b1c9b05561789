"""Uploaded register files kept between the import page's steps (mapping, check, import).

A file is kept under `<DATA_DIR>/imports/` by a random token, with a small JSON note of whose
it is (the account and the site) and its name; only that account may use it, for that site. A
file is deleted when its import has run, and any file older than STAGE_TTL when the next one is
kept. The files hold personal data: they are readable by the server's user only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

STAGE_TTL_SECONDS = 3600
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


@dataclass(frozen=True)
class Staged:
    token: str
    path: Path
    filename: str


def _folder(data_dir: Path) -> Path:
    folder = data_dir / "imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def sweep(data_dir: Path, *, now: float | None = None) -> int:
    """Delete kept files older than STAGE_TTL_SECONDS; returns how many."""
    limit = (now if now is not None else time.time()) - STAGE_TTL_SECONDS
    removed = 0
    for path in _folder(data_dir).iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def keep(data_dir: Path, stream: IO[bytes], *, filename: str, site_id: int, owner: str) -> Staged:
    """Copy an upload into the staging folder (blocking: call it in a worker thread)."""
    sweep(data_dir)
    folder = _folder(data_dir)
    token = secrets.token_urlsafe(24)
    path = folder / f"{token}.upload"
    stream.seek(0)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    note: dict[str, str | int] = {"filename": filename[:200], "site_id": site_id, "owner": owner}
    fd = os.open(folder / f"{token}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(note, out)
    return Staged(token, path, filename[:200])


def find(data_dir: Path, token: str, *, site_id: int, owner: str) -> Staged | None:
    """A kept file of this owner for this site, or None (unknown, expired, someone else's)."""
    if not _TOKEN.fullmatch(token or ""):
        return None
    folder = _folder(data_dir)
    try:
        note = json.loads((folder / f"{token}.json").read_text())
    except (OSError, ValueError):
        return None
    path = folder / f"{token}.upload"
    if note.get("site_id") != site_id or note.get("owner") != owner or not path.is_file():
        return None
    if path.stat().st_mtime < time.time() - STAGE_TTL_SECONDS:
        return None
    return Staged(token, path, str(note.get("filename", "")))


def discard(data_dir: Path, token: str) -> None:
    if not _TOKEN.fullmatch(token or ""):
        return
    for suffix in (".upload", ".json"):
        (_folder(data_dir) / f"{token}{suffix}").unlink(missing_ok=True)


__all__ = ["STAGE_TTL_SECONDS", "Staged", "discard", "find", "keep", "sweep"]
