"""The backup file format: what goes in comes out, and a changed, cut or wrongly keyed file is
refused."""

from __future__ import annotations

import io
import os
import struct

import pytest

from nightreg.services import backup_file
from nightreg.services.backup_file import BackupFileError, Header, Writer, check, decrypt
from nightreg.settings import Settings, SettingsError

KEY = "backup-key-" + "k" * 32
OTHER_KEY = "backup-key-" + "o" * 32


def header() -> Header:
    return Header(
        database="sqlite", content="sqlite-database", app_version="0.1.0",
        migration_head="0015", created_at="2026-07-14T19:00:00+00:00",
        snapshot_began="2026-07-14T19:00:00+00:00", snapshot_ended="2026-07-14T19:00:01+00:00",
        key_id="",
    )  # fmt: skip


def sealed(data: bytes, key: str = KEY) -> bytes:
    out = io.BytesIO()
    writer = Writer(out, header(), key)
    for start in range(0, len(data), 100):
        writer.write(data[start : start + 100])
    writer.close()
    return out.getvalue()


def opened(blob: bytes, keys: tuple[str, ...] = (KEY,)) -> bytes:
    return b"".join(decrypt(io.BytesIO(blob), keys))


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 64 bytes, so that a few hundred bytes make many chunks."""
    monkeypatch.setattr(backup_file, "CHUNK_SIZE", 64)


def chunks(blob: bytes) -> tuple[int, list[tuple[int, int]]]:
    """Where the chunks start: (end of the preamble, [(offset, length incl. prefix)])."""
    (length,) = struct.unpack(">I", blob[8:12])
    at = 12 + length
    found = []
    while at < len(blob):
        (n,) = struct.unpack(">I", blob[at : at + 4])
        found.append((at, 4 + n))
        at += 4 + n
    return 12 + length, found


def test_what_is_written_comes_back_byte_for_byte_over_many_chunks() -> None:
    data = os.urandom(1000)

    blob = sealed(data)

    assert opened(blob) == data
    assert len(chunks(blob)[1]) == 16
    assert data not in blob


def test_an_empty_database_file_still_makes_a_file_that_opens() -> None:
    assert opened(sealed(b"")) == b""


def test_the_header_is_readable_without_the_key_and_names_what_the_file_is() -> None:
    found, _ = backup_file.read_header(io.BytesIO(sealed(b"x" * 10)))

    assert (found.database, found.migration_head, found.format) == ("sqlite", "0015", 1)
    assert found.key_id == backup_file.key_id(KEY)


def test_a_changed_byte_anywhere_after_the_header_is_refused() -> None:
    blob = bytearray(sealed(os.urandom(300)))
    start, _ = chunks(bytes(blob))
    for position in (start + 10, len(blob) // 2, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(BackupFileError, match=r"does not authenticate|damaged"):
            opened(bytes(tampered))


def test_a_changed_header_is_refused_though_it_still_parses() -> None:
    blob = sealed(b"visitors" * 20)
    tampered = blob.replace(b'"migration_head":"0015"', b'"migration_head":"0014"')
    assert tampered != blob

    with pytest.raises(BackupFileError, match="does not authenticate"):
        opened(tampered)


def test_a_file_cut_off_or_with_its_last_chunk_dropped_or_extended_is_refused() -> None:
    blob = sealed(os.urandom(300))
    _, found = chunks(blob)
    last_at, _ = found[-1]

    with pytest.raises(BackupFileError, match="cut off"):
        opened(blob[:last_at])  # the last chunk dropped: whole chunks, but no end
    with pytest.raises(BackupFileError, match="cut off"):
        opened(blob[:-5])
    with pytest.raises(BackupFileError, match="bytes after its last chunk"):
        opened(blob + b"\x00")


def test_chunks_swapped_are_refused() -> None:
    blob = sealed(os.urandom(300))
    _, found = chunks(blob)
    (a, n), (b, m) = found[0], found[1]
    swapped = blob[:a] + blob[b : b + m] + blob[a : a + n] + blob[b + m :]

    with pytest.raises(BackupFileError, match="does not authenticate"):
        opened(swapped)


def test_a_wrong_key_is_refused_with_the_id_of_the_key_it_needs_and_an_old_key_opens_it() -> None:
    blob = sealed(b"register" * 10)

    with pytest.raises(BackupFileError, match=backup_file.key_id(KEY)):
        opened(blob, (OTHER_KEY,))
    assert opened(blob, (OTHER_KEY, KEY)) == b"register" * 10


def test_a_file_that_is_not_a_backup_is_refused_before_any_key_is_tried() -> None:
    with pytest.raises(BackupFileError, match="not a Nachtregister backup"):
        check(io.BytesIO(b"SQLite format 3\x00" + b"\x00" * 100), [KEY])


def test_backups_need_a_long_key_and_a_backup_folder_needs_a_key(tmp_path) -> None:
    base = {"NIGHTREG_DATA_DIR": str(tmp_path), "NIGHTREG_SECRET_KEY": "s" * 16 + "x" * 32}
    with pytest.raises(SettingsError, match="BACKUP_KEY: use at least 32"):
        Settings.from_env({**base, "NIGHTREG_BACKUP_KEY": "short"})
    with pytest.raises(SettingsError, match="set NIGHTREG_BACKUP_KEY too"):
        Settings.from_env({**base, "NIGHTREG_BACKUP_DIR": str(tmp_path / "b")})

    settings = Settings.from_env(
        {**base, "NIGHTREG_BACKUP_DIR": str(tmp_path / "b"), "NIGHTREG_BACKUP_KEY": KEY}
    )

    assert (settings.backup_keep, settings.backup_cron) == (7, "30 4 * * *")
    assert settings.backup_dir == tmp_path / "b"
