"""Settings come from the environment only, refuse unsafe values, and are all documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.settings import DEVELOPMENT_SECRET_KEY, Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_are_the_embedded_installation() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert settings.database_url == "sqlite+aiosqlite:///./var/opendpia.db"
    assert settings.is_sqlite and settings.migrate_on_start


def test_values_are_read_and_converted() -> None:
    settings = Settings.from_env(
        {
            "OPENDPIA_DATABASE_URL": "postgresql+asyncpg://u@h/db",
            "OPENDPIA_PORT": "9000",
            "OPENDPIA_ROOM_GRACE_SECONDS": "1.5",
            "OPENDPIA_AUTO_MIGRATE": "yes",
        }
    )
    assert (settings.port, settings.room_grace_seconds) == (9000, 1.5)
    assert not settings.is_sqlite and settings.migrate_on_start


def test_production_refuses_the_development_secret_key() -> None:
    with pytest.raises(SettingsError, match="OPENDPIA_SECRET_KEY is the development default"):
        Settings.from_env({"OPENDPIA_ENV": "production"})
    key = "p" * 48
    assert key != DEVELOPMENT_SECRET_KEY
    with pytest.raises(SettingsError, match="OPENDPIA_SMTP_URL is required in production"):
        Settings.from_env({"OPENDPIA_ENV": "production", "OPENDPIA_SECRET_KEY": key})
    production = Settings.from_env(
        {
            "OPENDPIA_ENV": "production",
            "OPENDPIA_SECRET_KEY": key,
            "OPENDPIA_SMTP_URL": "smtp://mail.example:587",
        }
    )
    assert not production.uses_dev_mailbox


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("OPENDPIA_PORT", "eighty", "OPENDPIA_PORT='eighty' is not a valid value"),
        ("OPENDPIA_ENV", "staging", "OPENDPIA_ENV must be one of"),
        ("OPENDPIA_SECRET_KEY", "short", "at least 32 characters"),
        ("OPENDPIA_AUTO_MIGRATE", "maybe", "is not a valid value"),
        ("OPENDPIA_MAX_FRAME_BYTES", "10", "at least 1024"),
        ("OPENDPIA_SMTP_URL", "mail.example:25", "must start with smtp://"),
    ],
)
def test_bad_values_say_what_is_wrong(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({name: value})


def test_every_setting_is_in_the_readme_table() -> None:
    documented = set(re.findall(r"^\| `(OPENDPIA_[A-Z_]+)` \|", README.read_text(), re.M))
    assert documented == set(Settings.env_names())


def test_the_bus_settings_are_checked() -> None:
    postgres = {"OPENDPIA_DATABASE_URL": "postgresql+asyncpg://u@h/db"}
    settings = Settings.from_env({**postgres, "OPENDPIA_REDIS_URL": "redis://r:6379/0"})
    assert settings.redis_url == "redis://r:6379/0" and settings.redis_prefix == "opendpia"
    with pytest.raises(SettingsError, match="OPENDPIA_REDIS_URL must start with redis://"):
        Settings.from_env({**postgres, "OPENDPIA_REDIS_URL": "http://r"})
    with pytest.raises(SettingsError, match="SQLite serves one process"):
        Settings.from_env({"OPENDPIA_REDIS_URL": "redis://r"})
    with pytest.raises(SettingsError, match="OPENDPIA_LOG_FORMAT must be one of text, json"):
        Settings.from_env({"OPENDPIA_LOG_FORMAT": "xml"})
    with pytest.raises(SettingsError, match="OPENDPIA_DB_POOL_SIZE must be at least 1"):
        Settings.from_env({"OPENDPIA_DB_POOL_SIZE": "0"})


def test_the_proxies_whose_forwarded_headers_are_believed_reach_uvicorn() -> None:
    from server.cli_serve import uvicorn_config

    assert Settings().forwarded_allow_ips == "127.0.0.1"  # uvicorn's own default
    settings = Settings.from_env({"OPENDPIA_FORWARDED_ALLOW_IPS": "10.0.0.0/8,192.0.2.7"})
    config = uvicorn_config(settings)
    assert config.proxy_headers
    assert config.forwarded_allow_ips == "10.0.0.0/8,192.0.2.7"
