"""Settings from the environment: defaults, the kept secret key, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightreg.settings import Settings, SettingsError


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"NIGHTREG_DATA_DIR": str(tmp_path), **extra}


def test_with_nothing_set_the_database_is_a_sqlite_file_in_the_data_directory(tmp_path: Path):
    settings = Settings.from_env(env(tmp_path))
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/nightreg.db"
    assert settings.timezone == "Europe/Amsterdam"
    assert not settings.https


def test_a_generated_secret_key_is_kept_so_a_restart_uses_the_same_one(tmp_path: Path):
    first = Settings.from_env(env(tmp_path)).secret_key
    second = Settings.from_env(env(tmp_path)).secret_key
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_a_secret_key_can_come_from_a_file(tmp_path: Path):
    key_file = tmp_path / "key"
    key_file.write_text("s" * 40 + "\n")
    settings = Settings.from_env(env(tmp_path, NIGHTREG_SECRET_KEY_FILE=str(key_file)))
    assert settings.secret_key == "s" * 40


def test_an_unreadable_secret_file_is_named_in_one_line(tmp_path: Path):
    with pytest.raises(SettingsError, match="NIGHTREG_SECRET_KEY_FILE: cannot read"):
        Settings.from_env(env(tmp_path, NIGHTREG_SECRET_KEY_FILE=str(tmp_path / "nope")))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NIGHTREG_SECRET_KEY", "short", "at least 32"),
        ("NIGHTREG_DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("NIGHTREG_BASE_URL", "ftp://x", "BASE_URL"),
        ("NIGHTREG_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("NIGHTREG_CHECKIN_RATE_PER_ADDRESS", "many", "whole number"),
        ("NIGHTREG_DEBUG", "perhaps", "true or false"),
    ],
)
def test_a_wrong_setting_stops_start_up_with_a_message_naming_it(
    tmp_path: Path, name: str, value: str, message: str
):
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env(env(tmp_path, **{name: value}))
    assert name.removeprefix("NIGHTREG_").split("_")[0] in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_plain_postgresql_url_uses_the_async_driver(tmp_path: Path):
    settings = Settings.from_env(env(tmp_path, NIGHTREG_DATABASE_URL="postgresql://u@h/db"))
    assert settings.database_url == "postgresql+asyncpg://u@h/db"


def test_an_https_base_url_means_secure_cookies(tmp_path: Path):
    settings = Settings.from_env(env(tmp_path, NIGHTREG_BASE_URL="https://reg.example.org/"))
    assert settings.https
    assert settings.base_url == "https://reg.example.org"
