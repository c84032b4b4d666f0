from __future__ import annotations

from pathlib import Path

import pytest

from tactful.config import PLACEHOLDER_SECRET, load_settings
from tactful.errors import ConfigurationError


def test_defaults_are_the_embedded_sqlite_files(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TACTFUL_DATABASE_URL", "TACTFUL_KEYSTORE_URL", "TACTFUL_CONFIG_FILE", "TACTFUL_MODE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite:///./tactful.db"
    assert settings.keystore_url == "sqlite:///./tactful-keys.db"
    assert settings.redis_url is None


def test_environment_variables_and_postgres_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TACTFUL_DATABASE_URL", "postgresql://u@db/tactful")
    monkeypatch.setenv("TACTFUL_LIMITS__MAX_EVENT_BYTES", "4096")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://u@db/tactful"
    assert settings.limits.max_event_bytes == 4096


def test_placeholder_secret_refused_outside_local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TACTFUL_MODE", "production")
    with pytest.raises(ConfigurationError, match="TACTFUL_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("TACTFUL_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("TACTFUL_SUBJECT_TOKEN_SECRET", "t" * 40)
    assert load_settings().secret_key.get_secret_value() != PLACEHOLDER_SECRET


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("tactful.toml", 'redis_url = "redis://cache:6379/1"\ncors_origins = ["https://shop.example"]\n'),
        ("tactful.yaml", "redis_url: redis://cache:6379/1\ncors_origins: [https://shop.example]\n"),
    ],
)
def test_config_file_below_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    monkeypatch.setenv("TACTFUL_CONFIG_FILE", str(path))
    settings = load_settings()
    assert settings.redis_url == "redis://cache:6379/1"
    assert settings.cors_origins == ["https://shop.example"]
    monkeypatch.setenv("TACTFUL_REDIS_URL", "redis://other:6379/0")
    assert load_settings().redis_url == "redis://other:6379/0"


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TACTFUL_DEDUP_RETENTION_DAYS", "3")
    with pytest.raises(ConfigurationError, match="TACTFUL_DEDUP_RETENTION_DAYS"):
        load_settings()
    monkeypatch.delenv("TACTFUL_DEDUP_RETENTION_DAYS")
    monkeypatch.setenv("TACTFUL_CONFIG_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigurationError, match="not a file"):
        load_settings()
