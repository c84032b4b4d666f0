from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tactful.config import SECRETS_FILE_NAME, Limits, PolicySettings, RateLimits, Settings, load_settings
from tactful.errors import ConfigurationError

SECRET_VARIABLES = ("TACTFUL_SECRET_KEY", "TACTFUL_SUBJECT_TOKEN_SECRET", "TACTFUL_SECRETS_FILE")


@pytest.fixture(autouse=True)
def _elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test in a directory of its own: local mode writes its secrets file beside the database."""
    monkeypatch.chdir(tmp_path)
    for name in (*SECRET_VARIABLES, "TACTFUL_MODE", "TACTFUL_DATABASE_URL", "TACTFUL_KEYSTORE_URL"):
        monkeypatch.delenv(name, raising=False)


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


def test_production_refuses_missing_or_short_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TACTFUL_MODE", "production")
    with pytest.raises(ConfigurationError, match="TACTFUL_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("TACTFUL_SECRET_KEY", "k" * 40)
    with pytest.raises(ConfigurationError, match="TACTFUL_SUBJECT_TOKEN_SECRET"):
        load_settings()
    monkeypatch.setenv("TACTFUL_SUBJECT_TOKEN_SECRET", "t" * 31)
    with pytest.raises(ConfigurationError, match="TACTFUL_SUBJECT_TOKEN_SECRET"):
        load_settings()
    monkeypatch.setenv("TACTFUL_SUBJECT_TOKEN_SECRET", "t" * 40)
    settings = load_settings()
    assert settings.secret_key.get_secret_value() == "k" * 40
    assert settings.subject_token_secret.get_secret_value() == "t" * 40
    assert not list(tmp_path.iterdir()), "production mode writes no secrets file"


def test_local_mode_creates_owner_only_secrets_beside_the_database_and_reuses_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'shop.db'}"
    first = load_settings(database_url=url)
    path = data / SECRETS_FILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in data.iterdir()] == [SECRETS_FILE_NAME], "nothing left aside"
    stored = json.loads(path.read_text())
    assert stored == {
        "secret_key": first.secret_key.get_secret_value(),
        "subject_token_secret": first.subject_token_secret.get_secret_value(),
    }
    assert len(set(stored.values())) == 2
    assert all(len(value) >= 32 for value in stored.values())
    again = load_settings(database_url=url)
    assert again.secret_key == first.secret_key
    assert again.subject_token_secret == first.subject_token_secret


def test_local_mode_secrets_of_another_database_directory_differ(tmp_path: Path) -> None:
    one = load_settings(database_url=f"sqlite:///{tmp_path / 'one.db'}")
    (tmp_path / "other").mkdir()
    two = load_settings(database_url=f"sqlite:///{tmp_path / 'other' / 'two.db'}")
    assert one.secret_key != two.secret_key


def test_given_secrets_win_over_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TACTFUL_SECRET_KEY", "k" * 40)
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'main.db'}")
    assert settings.secret_key.get_secret_value() == "k" * 40
    stored = json.loads((tmp_path / SECRETS_FILE_NAME).read_text())
    assert settings.subject_token_secret.get_secret_value() == stored["subject_token_secret"]


def test_without_an_sqlite_file_the_secrets_go_beside_the_keystore_or_here(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    load_settings(database_url="postgresql://u@db/tactful", keystore_url=f"sqlite:///{keys / 'k.db'}")
    assert (keys / SECRETS_FILE_NAME).is_file()
    load_settings(database_url="postgresql://u@db/tactful", keystore_url="postgresql://u@db/keys")
    assert (tmp_path / SECRETS_FILE_NAME).is_file(), "the working directory"
    chosen = tmp_path / "elsewhere.json"
    load_settings(database_url="postgresql://u@db/tactful", secrets_file=chosen)
    assert chosen.stat().st_mode & 0o777 == 0o600


def test_a_secrets_file_others_may_read_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'main.db'}"
    load_settings(database_url=url)
    (tmp_path / SECRETS_FILE_NAME).chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_settings(database_url=url)


@pytest.mark.parametrize("text", ["", "not json", '{"secret_key": "short", "subject_token_secret": "short"}'])
def test_a_damaged_secrets_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / SECRETS_FILE_NAME
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match=SECRETS_FILE_NAME):
        load_settings(database_url=f"sqlite:///{tmp_path / 'main.db'}")


def test_settings_built_directly_have_random_secrets_and_write_nothing(tmp_path: Path) -> None:
    one, two = Settings(), Settings()
    assert one.secret_key != two.secret_key
    assert len(one.subject_token_secret.get_secret_value()) >= 32
    assert not list(tmp_path.iterdir())


def test_subject_token_maximum_lifetime_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().subject_token_max_lifetime == timedelta(days=1)
    monkeypatch.setenv("TACTFUL_SUBJECT_TOKEN_MAX_LIFETIME", "3600")
    assert load_settings().subject_token_max_lifetime == timedelta(hours=1)
    monkeypatch.setenv("TACTFUL_SUBJECT_TOKEN_MAX_LIFETIME", "PT30M")
    assert load_settings().subject_token_max_lifetime == timedelta(minutes=30)
    monkeypatch.setenv("TACTFUL_SUBJECT_TOKEN_MAX_LIFETIME", "0")
    with pytest.raises(ConfigurationError, match="TACTFUL_SUBJECT_TOKEN_MAX_LIFETIME"):
        load_settings()


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


def test_nested_settings_read_only_their_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # An unprefixed variable used to reach collection's limits and the policy through the nested
    # models' own environment reading; only the one settings object reads the environment now.
    monkeypatch.setenv("MAX_EVENTS_PER_BATCH", "7")
    monkeypatch.setenv("MINOR_AGE", "13")
    monkeypatch.setenv("PER_KEY", "1")
    defaults = (Limits().max_events_per_batch, PolicySettings().minor_age, RateLimits().per_key)
    assert defaults == (2500, 18, 500)
    settings = Settings()
    assert (settings.limits.max_events_per_batch, settings.policy.minor_age) == (2500, 18)
    monkeypatch.setenv("TACTFUL_LIMITS__MAX_EVENTS_PER_BATCH", "9")
    monkeypatch.setenv("TACTFUL_POLICY__MINOR_AGE", "16")
    settings = Settings()
    assert (settings.limits.max_events_per_batch, settings.policy.minor_age) == (9, 16)


def test_each_invalid_setting_is_one_line_with_its_variable_and_fix_never_its_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TACTFUL_LIMITS__MAX_EVENT_BYTES", "secret-looking-value")
    monkeypatch.setenv("TACTFUL_DEDUP_RETENTION_DAYS", "3")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    lines = raised.value.message.splitlines()
    assert len(lines) == 2
    assert any(
        line.startswith("TACTFUL_LIMITS__MAX_EVENT_BYTES is invalid: input should be") for line in lines
    )
    assert any(line.startswith("TACTFUL_DEDUP_RETENTION_DAYS is invalid: input should be") for line in lines)
    assert all("unset it for the default" in line for line in lines)
    assert "secret-looking-value" not in raised.value.message

    monkeypatch.delenv("TACTFUL_LIMITS__MAX_EVENT_BYTES")
    monkeypatch.delenv("TACTFUL_DEDUP_RETENTION_DAYS")
    path = tmp_path / "tactful.toml"
    path.write_text("[limits]\nmax_event_byte = 4096\n")
    monkeypatch.setenv("TACTFUL_CONFIG_FILE", str(path))
    with pytest.raises(
        ConfigurationError, match=r"^TACTFUL_LIMITS has no setting named 'max_event_byte': remove it$"
    ):
        load_settings()


def test_a_rule_across_settings_is_reported_without_an_empty_variable_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TACTFUL_MODE", "production")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert raised.value.message.startswith("TACTFUL_SECRET_KEY must be set")
    assert "TACTFUL_:" not in raised.value.message
    assert "Value error" not in raised.value.message
