"""Settings from the environment: defaults, the kept secret key, one-line errors."""

from __future__ import annotations

import secrets
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
        ("NIGHTREG_JOB_HEARTBEAT_SECONDS", "60", "at most half of NIGHTREG_JOB_LEASE_SECONDS"),
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


# --- issue 17, finding 11a: a guessable secret key is refused outside the demo ------------


@pytest.mark.parametrize(
    "key",
    [
        "a" * 32,
        "a" * 200,
        "test-secret-" + "k" * 40,
        "ab" * 40,
        "password1234" * 3,  # 11 different characters, about 120 bits
    ],
)
def test_a_weak_secret_key_is_refused_by_serve_and_the_app_with_what_to_change(
    tmp_path: Path, key: str
):
    from nightreg.app import create_app

    settings = Settings.from_env(env(tmp_path, NIGHTREG_SECRET_KEY=key))
    with pytest.raises(SettingsError) as caught:
        create_app(settings)
    message = str(caught.value)
    assert message.startswith("NIGHTREG_SECRET_KEY is too weak")
    assert "secrets.token_urlsafe(48)" in message
    assert "\n" not in message


def test_a_weak_secret_key_stops_nightreg_serve_before_it_migrates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from nightreg import cli, migrate

    monkeypatch.setenv("NIGHTREG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NIGHTREG_SECRET_KEY", "a" * 32)
    monkeypatch.setattr(migrate, "upgrade", lambda url: pytest.fail("migrated with a weak key"))

    assert cli.main(["serve"]) == 2
    assert "NIGHTREG_SECRET_KEY is too weak" in capsys.readouterr().err


def test_the_demo_accepts_a_weak_key_and_a_generated_or_random_key_passes(tmp_path: Path):
    from dataclasses import replace

    from nightreg.app import create_app

    weak = Settings.from_env(env(tmp_path, NIGHTREG_SECRET_KEY="a" * 32))
    create_app(replace(weak, demo=True))
    generated = Settings.from_env(env(tmp_path / "other"))
    generated.require_strong_secret_key()
    for key in (secrets.token_urlsafe(32), secrets.token_hex(32), secrets.token_urlsafe(48)):
        replace(weak, secret_key=key).require_strong_secret_key()


# --- issue 18, item 5: the production check of `nightreg serve` and `nightreg scheduler` -----

STRONG_KEY = "kX8uQ2-vN4pZr7Yb1LcWmE9sTgH3jAfD6oRiU0yVxKqB5nMw"


@pytest.mark.parametrize(
    "base_url",
    [
        "https://register.example.org",
        "http://127.0.0.1:8000",
        "http://127.3.4.5",
        "http://[::1]:8000",
        "http://localhost:8000",
    ],
)
def test_a_strong_key_an_https_or_loopback_address_and_no_debug_pass_the_production_check(
    tmp_path: Path, base_url: str
):
    settings = Settings.from_env(
        env(tmp_path, NIGHTREG_SECRET_KEY=STRONG_KEY, NIGHTREG_BASE_URL=base_url)
    )
    assert settings.production_problems() == []
    settings.require_production_ready()


def test_the_production_check_names_every_problem_and_what_to_change(tmp_path: Path):
    settings = Settings.from_env(
        env(
            tmp_path, NIGHTREG_SECRET_KEY="a" * 40, NIGHTREG_DEBUG="true",
            NIGHTREG_BASE_URL="http://register.example.org:8080",
        )
    )  # fmt: skip

    problems = settings.production_problems()

    assert [p.split(" ", 1)[0] for p in problems] == [
        "NIGHTREG_SECRET_KEY", "NIGHTREG_BASE_URL", "NIGHTREG_DEBUG",
    ]  # fmt: skip
    assert "secrets.token_urlsafe(48)" in problems[0]
    assert "NIGHTREG_BASE_URL=https://register.example.org:8080" in problems[1]
    assert "NIGHTREG_DEBUG=false" in problems[2]
    with pytest.raises(SettingsError) as caught:
        settings.require_production_ready()
    assert str(caught.value).splitlines()[1:] == [f"  - {p}" for p in problems]


@pytest.mark.parametrize(
    "base_url", ["http://192.168.1.20:8000", "http://10.0.0.5", "http://127.0.0.1.example.org"]
)
def test_an_http_address_others_reach_fails_the_production_check(tmp_path: Path, base_url: str):
    settings = Settings.from_env(
        env(tmp_path, NIGHTREG_SECRET_KEY=STRONG_KEY, NIGHTREG_BASE_URL=base_url)
    )
    [problem] = settings.production_problems()
    assert problem.startswith(f"NIGHTREG_BASE_URL is {base_url}")


def test_the_demo_skips_the_production_check(tmp_path: Path):
    from dataclasses import replace

    settings = Settings.from_env(
        env(tmp_path, NIGHTREG_SECRET_KEY="a" * 40, NIGHTREG_DEBUG="true",
            NIGHTREG_BASE_URL="http://register.example.org")
    )  # fmt: skip
    assert replace(settings, demo=True).production_problems() == []


@pytest.mark.parametrize("command", ["serve", "scheduler"])
def test_serve_and_the_scheduler_refuse_unfit_settings_with_exit_2_before_they_migrate(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
):
    from nightreg import cli, migrate

    monkeypatch.setenv("NIGHTREG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NIGHTREG_BASE_URL", "http://register.example.org")
    monkeypatch.setenv("NIGHTREG_DEBUG", "1")
    monkeypatch.setattr(migrate, "upgrade", lambda url: pytest.fail("migrated unfit settings"))

    assert cli.main([command]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nightreg: 2 settings must change")
    assert "  - NIGHTREG_BASE_URL is http://register.example.org" in err
    assert "  - NIGHTREG_DEBUG is on" in err
