"""The backup file: a readable header, then the database's bytes encrypted in authenticated chunks.

    NRBACKUP | header length (4 bytes, big-endian) | header (JSON, UTF-8) | chunk | chunk | ...
    chunk = ciphertext length (4 bytes, big-endian) | AES-256-GCM ciphertext with its 16-byte tag

The header names the format version, the database kind, the app version, the migration head,
when the copy was taken, the audit chain's signed checkpoint at that moment, the key id, a salt
and a nonce prefix; it holds nothing personal, so `nightreg restore` can say what a file is
before it asks for the key. Each file gets its own key, HKDF-SHA256 over NIGHTREG_BACKUP_KEY
with the header's salt. Chunk i is sealed with the nonce prefix (7 bytes), i (4 bytes) and a
last-chunk flag (1 byte), and the whole header as associated data (the STREAM construction):
a changed header or chunk, chunks swapped, dropped or cut off at the end, and a wrong key all
fail to decrypt, and the file is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"NRBACKUP"
FORMAT_VERSION = 1
CHUNK_SIZE = 1024 * 1024
_TAG = 16
_LENGTH = struct.Struct(">I")
_MAX_HEADER = 64 * 1024


class BackupFileError(Exception):
    """The file is not a backup, is damaged or changed, or needs another key; one line."""


@dataclass(frozen=True)
class Header:
    database: str  # "sqlite" | "postgresql"
    content: str  # "sqlite-database" | "pg_dump-custom"
    app_version: str
    migration_head: str
    created_at: str  # ISO 8601, UTC
    snapshot_began: str  # the copy shows the database as it was between these two moments
    snapshot_ended: str
    key_id: str
    audit_checkpoint: dict[str, Any] = field(default_factory=dict)
    salt: str = ""
    nonce_prefix: str = ""
    chunk_size: int = CHUNK_SIZE
    format: int = FORMAT_VERSION

    def encoded(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decoded(cls, raw: bytes) -> Header:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            if data.get("format") != FORMAT_VERSION:
                raise BackupFileError(
                    f"backup format {data.get('format')!r} is not one this version reads "
                    f"({FORMAT_VERSION}); restore it with the version that made it"
                )
            known = set(cls.__dataclass_fields__)
            return cls(**{k: v for k, v in data.items() if k in known})
        except BackupFileError:
            raise
        except (ValueError, TypeError) as exc:
            raise BackupFileError(f"the backup's header is unreadable ({exc})") from None


def key_id(key: str) -> str:
    """The key's public name: a fingerprint that says which key a file needs."""
    return "bk-" + hmac.new(key.encode(), b"nightreg backup key id", "sha256").hexdigest()[:12]


def _file_key(key: str, salt: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"nightreg backup v1")
    return hkdf.derive(key.encode())


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= 2**32:
        raise BackupFileError("the backup is too large for one file (4 PiB)")
    return prefix + struct.pack(">IB", index, 1 if last else 0)


class Writer:
    """Encrypts what is written to it into `out`; `close()` seals the last chunk.

    Without `close()` the file has no last chunk and is refused on restore: a backup cut short
    (a crash, a full disk) cannot pass for a whole one.
    """

    def __init__(self, out: BinaryIO, header: Header, key: str) -> None:
        salt, prefix = os.urandom(16), os.urandom(7)
        self.header = Header(
            **{
                **asdict(header),
                "key_id": key_id(key),
                "salt": base64.b64encode(salt).decode(),
                "nonce_prefix": base64.b64encode(prefix).decode(),
                "chunk_size": CHUNK_SIZE,
            }
        )
        encoded = self.header.encoded()
        self._preamble = MAGIC + _LENGTH.pack(len(encoded)) + encoded
        self._aead = AESGCM(_file_key(key, salt))
        self._prefix = prefix
        self._out = out
        self._buffer = bytearray()
        self._index = 0
        self.plain_bytes = 0
        out.write(self._preamble)

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.plain_bytes += len(data)
        # Keep at least one byte back: the last chunk is sealed as the last one by close().
        while len(self._buffer) > CHUNK_SIZE:
            self._seal(bytes(self._buffer[:CHUNK_SIZE]), last=False)
            del self._buffer[:CHUNK_SIZE]

    def close(self) -> None:
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index, last), chunk, self._preamble)
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1


def _read_exactly(source: BinaryIO, n: int) -> bytes:
    data = source.read(n)
    return data if data is not None else b""


def read_header(source: BinaryIO) -> tuple[Header, bytes]:
    """The header (not yet authenticated: the first chunk does that) and the preamble's bytes."""
    magic = _read_exactly(source, len(MAGIC))
    if magic != MAGIC:
        raise BackupFileError("not a Nachtregister backup (it does not start with NRBACKUP)")
    raw_length = _read_exactly(source, _LENGTH.size)
    if len(raw_length) != _LENGTH.size:
        raise BackupFileError("the backup is cut off in its header")
    (length,) = _LENGTH.unpack(raw_length)
    if length > _MAX_HEADER:
        raise BackupFileError("the backup's header is implausibly long: not a backup")
    raw = _read_exactly(source, length)
    if len(raw) != length:
        raise BackupFileError("the backup is cut off in its header")
    return Header.decoded(raw), magic + raw_length + raw


def _key_for(header: Header, keys: Sequence[str]) -> str:
    for key in keys:
        if key and hmac.compare_digest(key_id(key), header.key_id):
            return key
    raise BackupFileError(
        f"the backup was encrypted with another key ({header.key_id}); set NIGHTREG_BACKUP_KEY "
        "to that key (or name it in NIGHTREG_BACKUP_KEYS_OLD)"
    )


def decrypt(source: BinaryIO, keys: Sequence[str]) -> Iterator[bytes]:
    """The plain bytes, chunk by chunk, each one authenticated before it is handed out.

    Raises BackupFileError for a wrong key, a changed or reordered chunk, a changed header, a
    file cut off before its last chunk, or bytes after it. A caller that must not act on part of
    a file (a restore) reads it through once before it uses it (`check`).
    """
    header, preamble = read_header(source)
    key = _key_for(header, keys)
    try:
        salt = base64.b64decode(header.salt, validate=True)
        prefix = base64.b64decode(header.nonce_prefix, validate=True)
    except ValueError:
        raise BackupFileError("the backup's header is damaged (salt, nonce)") from None
    if len(prefix) != 7 or not 0 < header.chunk_size <= 64 * CHUNK_SIZE:
        raise BackupFileError("the backup's header is damaged (nonce, chunk size)")
    aead = AESGCM(_file_key(key, salt))
    index = 0
    while True:
        raw_length = _read_exactly(source, _LENGTH.size)
        if not raw_length:
            raise BackupFileError(
                "the backup is cut off: its last chunk is missing (an interrupted copy?)"
            )
        if len(raw_length) != _LENGTH.size:
            raise BackupFileError("the backup is cut off inside a chunk")
        (length,) = _LENGTH.unpack(raw_length)
        if not _TAG <= length <= header.chunk_size + _TAG:
            raise BackupFileError(f"chunk {index} of the backup is damaged (length {length})")
        sealed = _read_exactly(source, length)
        if len(sealed) != length:
            raise BackupFileError("the backup is cut off inside a chunk")
        plain, last = _open(aead, prefix, index, sealed, preamble)
        yield plain
        index += 1
        if last:
            break
    if _read_exactly(source, 1):
        raise BackupFileError("the backup has bytes after its last chunk: it was changed")


def _open(aead: AESGCM, prefix: bytes, index: int, sealed: bytes, aad: bytes) -> tuple[bytes, bool]:
    """Open chunk `index`, as a middle chunk or as the last one (the flag is in the nonce)."""
    for last in (False, True):
        try:
            return aead.decrypt(_nonce(prefix, index, last), sealed, aad), last
        except InvalidTag:
            continue
    raise BackupFileError(
        f"the backup does not authenticate at chunk {index}: it was changed or damaged "
        "(or the key is not the one it was made with)"
    )


def check(source: BinaryIO, keys: Sequence[str]) -> tuple[Header, int]:
    """Read the whole file through; its header and plain size, or BackupFileError."""
    header, _ = read_header(source)
    source.seek(0)
    size = sum(len(chunk) for chunk in decrypt(source, keys))
    return header, size


def digest(path: os.PathLike[str] | str) -> str:
    """SHA-256 of a file (the backup's own, as the audit event names it)."""
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_SIZE), b""):
            sha.update(block)
    return sha.hexdigest()
