"""The hub settings (issue 18): who sends, over what, how many at once; refused at start-up."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nightreg.settings import Settings, SettingsError, hub_url_problem

SECRET = "hub-secret-" + "s" * 40


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"NIGHTREG_DATA_DIR": str(tmp_path), **extra}


def hub_env(tmp_path: Path, url: str = "https://hub.example.org/signals", **extra: str) -> dict:
    return env(tmp_path, NIGHTREG_HUB_URL=url, NIGHTREG_HUB_SECRET=SECRET, **extra)


@pytest.mark.parametrize(
    "url",
    [
        "http://hub.example.org/signals",
        "http://10.0.0.8/signals",
        "http://[2001:db8::1]:8080/signals",
        "http://127.0.0.1.example.org/signals",
        "http://localhost.example.org/signals",
        "http://0.0.0.0:9000/signals",
    ],
)
def test_an_http_hub_url_is_refused_at_start_up_unless_it_is_loopback(tmp_path: Path, url: str):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(hub_env(tmp_path, url, NIGHTREG_INSTALLATION_ID="haven"))

    message = str(refused.value)
    assert message.startswith("NIGHTREG_HUB_URL:")
    assert "unencrypted" in message
    assert "https://" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/signals",
        "http://127.8.9.10/signals",
        "http://[::1]:9000/signals",
        "http://localhost:9000/signals",
        "http://LOCALHOST/signals",
        "https://hub.example.org/signals",
        "https://10.0.0.8/signals",
    ],
)
def test_https_or_a_loopback_http_hub_url_is_accepted(tmp_path: Path, url: str):
    settings = Settings.from_env(hub_env(tmp_path, url, NIGHTREG_INSTALLATION_ID="haven"))

    assert settings.hub_url == url
    assert hub_url_problem(url) is None


def test_a_hub_url_that_is_no_url_is_refused(tmp_path: Path):
    with pytest.raises(SettingsError, match="NIGHTREG_HUB_URL: expected https://host/path"):
        Settings.from_env(hub_env(tmp_path, "hub.example.org/signals"))


def test_the_key_id_is_the_installations_own_unless_one_is_set(tmp_path: Path):
    derived = Settings.from_env(hub_env(tmp_path, NIGHTREG_INSTALLATION_ID="jachthaven-hoorn"))
    chosen = Settings.from_env(
        hub_env(tmp_path, NIGHTREG_INSTALLATION_ID="jachthaven-hoorn",
                NIGHTREG_HUB_KEY_ID="jachthaven-hoorn-k2")
    )  # fmt: skip

    assert derived.installation_id == "jachthaven-hoorn"
    assert derived.hub_signing_key_id == "jachthaven-hoorn-k1"
    assert chosen.hub_signing_key_id == "jachthaven-hoorn-k2"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NIGHTREG_INSTALLATION_ID", "jachthaven hoorn"),
        ("NIGHTREG_INSTALLATION_ID", "jachthaven.hoorn"),
        ("NIGHTREG_INSTALLATION_ID", "-haven"),
        ("NIGHTREG_INSTALLATION_ID", "h" * 65),
        ("NIGHTREG_INSTALLATION_ID", "havén"),
        ("NIGHTREG_HUB_KEY_ID", "k1,t=1"),
        ("NIGHTREG_DISPATCH_CONCURRENCY", "0"),
        ("NIGHTREG_DISPATCH_CONCURRENCY", "257"),
        ("NIGHTREG_DISPATCH_CONCURRENCY", "many"),
    ],
)
def test_a_wrong_hub_setting_stops_start_up_naming_it(tmp_path: Path, name: str, value: str):
    settings_env = hub_env(tmp_path, NIGHTREG_INSTALLATION_ID="haven")

    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**settings_env, name: value})

    assert str(refused.value).startswith(name + ":")


def test_up_to_sixteen_posts_at_once_unless_configured(tmp_path: Path):
    assert Settings.from_env(env(tmp_path)).dispatch_concurrency == 16
    configured = Settings.from_env(env(tmp_path, NIGHTREG_DISPATCH_CONCURRENCY="4"))
    assert configured.dispatch_concurrency == 4


def test_without_an_installation_id_the_app_refuses_to_push(tmp_path: Path):
    from nightreg.app import create_app

    settings = Settings.from_env(hub_env(tmp_path))
    with pytest.raises(SettingsError) as refused:
        create_app(settings)

    message = str(refused.value)
    assert message.startswith("NIGHTREG_INSTALLATION_ID:")
    assert "hub.example.org" in message
    # Without a hub URL nothing is pushed: no installation id is needed.
    create_app(replace(settings, hub_url=""))


@pytest.mark.parametrize("command", [["serve"], ["jobs", "run", "dispatch"], ["scheduler"]])
def test_without_an_installation_id_serve_dispatch_and_the_scheduler_refuse_before_migrating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: list[str],
):  # fmt: skip
    from nightreg import cli, migrate

    for name, value in hub_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NIGHTREG_INSTALLATION_ID", raising=False)
    monkeypatch.setattr(migrate, "upgrade", lambda url: pytest.fail("migrated without an id"))

    assert cli.main(command) == 2
    assert "NIGHTREG_INSTALLATION_ID:" in capsys.readouterr().err


class Reached(Exception):
    pass


def test_the_demo_names_itself_demo_when_no_installation_id_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from nightreg import cli, migrate

    for name, value in hub_env(tmp_path, "http://127.0.0.1:9/signals").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NIGHTREG_INSTALLATION_ID", raising=False)

    def upgrade(url: str) -> None:
        raise Reached  # past the start-up checks

    monkeypatch.setattr(migrate, "upgrade", upgrade)
    with pytest.raises(Reached):
        cli.main(["serve", "--demo"])
