"""Typed settings, built once from `TACTFUL_*` environment variables and an optional config file.

Precedence, highest first: explicit keyword arguments, environment variables, the file named by
`TACTFUL_CONFIG_FILE` (TOML or YAML), defaults. `create_app(settings)` and the CLI receive the object;
nothing reads the environment at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from tactful.errors import ConfigurationError

PLACEHOLDER_SECRET = "local-only-placeholder-secret-change-me"  # noqa: S105 - refused outside local mode


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Limits(BaseSettings):
    """Bounds on what collection reads (DESIGN §4; issue on collection)."""

    model_config = SettingsConfigDict(extra="forbid")

    max_event_bytes: int = Field(32 * 1024, ge=1024)
    max_request_bytes: int = Field(500 * 1024, ge=1024)
    max_api_body_bytes: int = Field(64 * 1024, ge=1024)
    max_json_depth: int = Field(32, ge=4, le=256)
    max_object_keys: int = Field(500, ge=10)
    max_events_per_batch: int = Field(2500, ge=1)


KeyScope = Literal["write", "server", "admin"]
"""A key's scope, as `tactful.keys` names them (this layer sits below it)."""
_WRITE_ONLY: list[KeyScope] = ["write"]


class RateLimits(BaseSettings):
    """Request rates on the routes a key can reach (`tactful.api.ratelimit`). The write key sits in web
    pages, so anyone can send with it: these bound what one client, and all clients of one key, may
    send. A limit of 0 turns that limit off."""

    model_config = SettingsConfigDict(extra="forbid")

    per_key: int = Field(500, ge=0, description="requests per window for one key, all addresses together")
    per_key_and_address: int = Field(100, ge=0, description="requests per window for a key from one address")
    window_seconds: int = Field(1, ge=1, le=3600)
    scopes: list[KeyScope] = Field(
        default_factory=lambda: _WRITE_ONLY.copy(),
        description="scopes whose keys are limited; server and admin keys are trusted backends",
    )
    store_retry_seconds: float = Field(
        5.0, ge=0, le=300, description="after the shared store (Redis) fails, admit without it this long"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.scopes) and (self.per_key > 0 or self.per_key_and_address > 0)


DEFAULT_CONSENT_CATEGORIES: dict[str, list[str]] = {
    # Segment / RudderStack consent categories are named by each customer (their CMP's names);
    # these defaults fit common banners and are meant to be replaced in configuration.
    "necessary": ["essential"],
    "functional": ["essential"],
    "analytics": ["analytics"],
    "performance": ["analytics"],
    "personalization": [
        "personalization.segments",
        "personalization.behavioral",
        "personalization.predictive",
        "personalization.individual",
    ],
    "marketing": ["marketing.email"],
    "advertising": ["sale_or_share"],
    "targeting": ["sale_or_share"],
}


class PolicySettings(BaseSettings):
    """Legal defaults a deployment may change (DESIGN §1). Engineering, not legal advice."""

    model_config = SettingsConfigDict(extra="forbid")

    minor_age: int = Field(18, ge=13, le=21)
    assume_minor_when_age_unknown: bool = False
    establishment_country: str | None = Field(
        None, description="ISO country of the controller's establishment; default: the catalog's controller"
    )
    regimes: dict[str, dict[str, object]] = Field(
        default_factory=dict, description="custom regimes or overrides of gdpr/ccpa, by name"
    )
    consent_categories: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_CONSENT_CATEGORIES))
    tcf_vendor_id: int | None = Field(None, ge=1, le=65535)


class Settings(BaseSettings):
    """Every knob of a Tactful deployment."""

    model_config = SettingsConfigDict(env_prefix="TACTFUL_", env_nested_delimiter="__", extra="forbid")

    mode: Literal["local", "production"] = "local"
    database_url: str = "sqlite:///./tactful.db"
    keystore_url: str = "sqlite:///./tactful-keys.db"
    redis_url: str | None = None
    redis_prefix: str = "tactful:"
    secret_key: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    subject_token_secret: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    catalog_path: Path | None = None
    cors_origins: list[str] = Field(default_factory=list)
    dedup_retention_days: int = Field(30, ge=7)
    limits: Limits = Field(default_factory=Limits)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    log_level: str = "INFO"

    @field_validator("database_url", "keystore_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.mode == "local":
            return self
        for name in ("secret_key", "subject_token_secret"):
            secret: SecretStr = getattr(self, name)
            if secret.get_secret_value() == PLACEHOLDER_SECRET or len(secret.get_secret_value()) < 32:
                raise ValueError(
                    f"TACTFUL_{name.upper()} must be set to a random value of at least 32 characters "
                    "outside local mode (generate one with: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("TACTFUL_CONFIG_FILE")
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise ConfigurationError(f"TACTFUL_CONFIG_FILE names {path}, which is not a file")
            if path.suffix == ".toml":
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            elif path.suffix in (".yaml", ".yml"):
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
            else:
                raise ConfigurationError(f"{path}: config files are .toml, .yaml or .yml")
        return tuple(sources)


def load_settings(**overrides: object) -> Settings:
    """Build the settings; a bad value becomes one ConfigurationError that names the variable."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"TACTFUL_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise ConfigurationError("invalid configuration:\n  " + "\n  ".join(lines)) from exc
