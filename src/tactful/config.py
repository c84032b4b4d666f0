"""Typed settings, built once from `TACTFUL_*` environment variables and an optional config file.

Precedence, highest first: explicit keyword arguments, environment variables, the file named by
`TACTFUL_CONFIG_FILE` (TOML or YAML), defaults. `create_app(settings)` and the CLI receive the object;
nothing reads the environment at import time.

Secrets (the key-encryption key and the subject-token secret) have no value in the source:

    production mode ── missing or short ──▶ refused at start
    local mode ──── not given ──▶ load_settings reads them from the secrets file beside the
                                  database, or creates it (random values, mode 0600) on first run
    Settings(...) directly ─────▶ random values of its own (tests, embedding); nothing is written
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from tactful.errors import ConfigurationError

SECRETS = ("secret_key", "subject_token_secret")
SECRETS_FILE_NAME = "tactful-secrets.json"
MIN_SECRET_CHARS = 32


def random_secret() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(48))


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Limits(BaseModel):
    """Bounds on what collection reads (DESIGN §4; issue on collection)."""

    model_config = ConfigDict(extra="forbid")

    max_event_bytes: int = Field(32 * 1024, ge=1024)
    max_request_bytes: int = Field(500 * 1024, ge=1024)
    max_api_body_bytes: int = Field(64 * 1024, ge=1024)
    max_json_depth: int = Field(32, ge=4, le=256)
    max_object_keys: int = Field(500, ge=10)
    max_events_per_batch: int = Field(2500, ge=1)
    quarantine_retention_days: int = Field(
        30,
        ge=1,
        le=365,
        description="days a quarantined message is kept (sealed), for its sender to see why it was refused",
    )


KeyScope = Literal["write", "server", "admin"]
"""A key's scope, as `tactful.keys` names them (this layer sits below it)."""
_WRITE_ONLY: list[KeyScope] = ["write"]


class RateLimits(BaseModel):
    """Request rates on the routes a key can reach (`tactful.api.ratelimit`). The write key sits in web
    pages, so anyone can send with it: these bound what one client, and all clients of one key, may
    send. A limit of 0 turns that limit off."""

    model_config = ConfigDict(extra="forbid")

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
    privacy_filings: int = Field(
        10, ge=0, description="privacy requests one key may file from one address per filing window"
    )
    privacy_filing_window_seconds: int = Field(3600, ge=1, le=86400)

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


class PolicySettings(BaseModel):
    """Legal defaults a deployment may change (DESIGN §1). Engineering, not legal advice."""

    model_config = ConfigDict(extra="forbid")

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


class PrivacySettings(BaseModel):
    """Privacy requests (`tactful.rights`): the calendar their legal due dates are counted in, and
    how the server runs their jobs. Engineering, not legal advice: the calendar is configuration."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field("UTC", description="the business's time zone: a due date ends at its midnight")
    holiday_country: str = Field("US", min_length=2, max_length=3, description="ISO 3166 country")
    holiday_subdivision: str | None = Field("CA", max_length=8, description="its subdivision, if any")
    run_jobs: bool = Field(True, description="`tactful serve` runs privacy request jobs itself")
    unproven_answer_ms: int = Field(
        200,
        ge=0,
        le=5000,
        description="a request filed without proof by a public key (an opt-out, ...) is answered no sooner "
        "than this after it arrived: carried out before the answer, it takes longer for a person held than "
        "for no one, and the time must not tell which (0: off)",
    )
    job_poll_seconds: float = Field(5.0, gt=0, le=3600)
    job_lease_seconds: int = Field(300, ge=10, le=86400, description="how long one process holds a job")
    erasure_log_days: int = Field(
        400,
        ge=30,
        description="how long the erasure log keeps erased subjects, to erase them again from a restored "
        "backup: at least as long as backups of the main database are kept",
    )
    export_dir: Path | None = Field(
        None,
        description="where sealed access and portability packages are kept until they expire (every "
        "process that serves downloads must see the same folder); default beside the database",
    )
    export_days: int = Field(
        7, ge=1, le=90, description="a package is deleted this many days after it is made"
    )
    export_downloads: int = Field(
        3, ge=1, le=100, description="completed downloads a package's link allows before it is deleted"
    )
    request_record_days: int = Field(
        730,
        ge=730,
        description="a closed privacy request's record is kept this long as proof it was answered (CCPA "
        "regulations §7101: at least 24 months), then deleted by the retention sweep",
    )
    review_record_days: int = Field(
        730,
        ge=30,
        description="an answered review of a significant decision is kept this long after its answer, then "
        "deleted by the retention sweep (open reviews never are); an overturned decision stays overturned "
        "for that person while its review is kept",
    )
    consent_proof_days: int = Field(
        1095,
        ge=365,
        description="an erased person's pseudonymised consent records are kept this long after the erasure, "
        "as proof that consent existed for the limitation period (GDPR Art. 17(3)(b), (e)), then deleted",
    )

    @model_validator(mode="after")
    def _known_calendar(self) -> PrivacySettings:
        # Refused at start, not at the first due date computed.
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        try:
            holidays.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision)
        except NotImplementedError:
            raise ValueError(
                f"no holiday calendar for {self.holiday_country!r} / {self.holiday_subdivision!r}"
            ) from None
        return self


class RetentionSettings(BaseModel):
    """The server's own retention sweep (`tactful.rights.schedule`): on by default, daily."""

    model_config = ConfigDict(extra="forbid")

    schedule: bool = Field(True, description="`tactful serve` runs the retention sweep on its own schedule")
    every_hours: float = Field(24.0, gt=0, le=24 * 7, description="how often the sweep runs")
    poll_seconds: float = Field(300.0, gt=0, le=86400, description="how often a process looks if it is due")
    lease_seconds: int = Field(3600, ge=60, le=86400, description="how long one process holds the sweep")


class DecideSettings(BaseModel):
    """Decisions (`tactful.decide`)."""

    model_config = ConfigDict(extra="forbid")

    audience_k: int = Field(
        50,
        ge=1,
        description="a 1:many audience serves once it has matched this many distinct subjects in 30 days "
        "(DESIGN §3, invariant 7); until then it is evaluated in shadow",
    )
    audience_count_inline: int = Field(
        1000,
        ge=0,
        le=1_000_000,
        description="stored profiles a 1:many audience's size is estimated from in the request that creates "
        "or changes it; the scheduled pass reads the rest (0: the schedule alone)",
    )
    audience_count_schedule: bool = Field(
        True, description="`tactful serve` estimates every audience's size from stored profiles on a schedule"
    )
    audience_count_every_hours: float = Field(
        24.0,
        gt=0,
        le=24 * 7,
        description="how often the scheduled pass reads every stored profile (it also runs, for the "
        "audiences changed since, at the first look after a change; looked for every "
        "`retention.poll_seconds`)",
    )


class Settings(BaseSettings):
    """Every knob of a Tactful deployment."""

    model_config = SettingsConfigDict(env_prefix="TACTFUL_", env_nested_delimiter="__", extra="forbid")

    mode: Literal["local", "production"] = "local"
    database_url: str = "sqlite:///./tactful.db"
    keystore_url: str = "sqlite:///./tactful-keys.db"
    redis_url: str | None = None
    redis_prefix: str = "tactful:"
    secret_key: SecretStr = Field(default_factory=random_secret)
    subject_token_secret: SecretStr = Field(default_factory=random_secret)
    secrets_file: Path | None = Field(
        None, description="local mode: where generated secrets are kept; default beside the database"
    )
    subject_token_max_lifetime: timedelta = Field(
        timedelta(days=1),
        gt=timedelta(0),
        description="subject tokens expiring further ahead than this are refused (seconds or ISO 8601)",
    )
    catalog_path: Path | None = None
    cors_origins: list[str] = Field(default_factory=list)
    dedup_retention_days: int = Field(30, ge=7)
    decision_log_retention_days: int = Field(
        395,
        ge=1,
        description="how long served decisions are kept for explanations and accountability "
        "(Art. 15(1)(h)); `tactful retention run` deletes older ones",
    )
    limits: Limits = Field(default_factory=Limits)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    decide: DecideSettings = Field(default_factory=DecideSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    log_level: str = "INFO"

    @field_validator("subject_token_max_lifetime", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        # An environment variable is text: "3600" means seconds, as a number in a config file does.
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("database_url", "keystore_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @model_validator(mode="after")
    def _refuse_missing_secrets(self) -> Settings:
        if self.mode == "local":
            return self
        for name in SECRETS:
            secret: SecretStr = getattr(self, name)
            if name not in self.model_fields_set or len(secret.get_secret_value()) < MIN_SECRET_CHARS:
                raise ValueError(
                    f"TACTFUL_{name.upper()} must be set to a random value of at least "
                    f"{MIN_SECRET_CHARS} characters outside local mode (generate one with: "
                    "python -c 'import secrets; print(secrets.token_urlsafe(48))')"
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


def _problem(error: Mapping[str, Any]) -> str:
    """One line for one invalid setting: the environment variable, what is wrong, the fix. Never the
    value (it may be a secret)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    location = [str(part) for part in error["loc"]]
    if not location:  # a rule across settings: its message names the variables
        return message
    if error["type"] == "extra_forbidden":
        parent = "TACTFUL_" + "__".join(location[:-1]).upper() if location[:-1] else "the settings"
        return f"{parent} has no setting named {location[-1]!r}: remove it"
    name = "TACTFUL_" + "__".join(location).upper()
    detail = message[:1].lower() + message[1:]
    return f"{name} is invalid: {detail}; set it to a valid value (or unset it for the default)"


def load_settings(**overrides: object) -> Settings:
    """Build the settings; a bad value becomes one ConfigurationError that names the variable.

    In local mode, secrets that were not given come from the secrets file (created on first run)."""
    from pydantic import ValidationError

    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError("\n".join(_problem(e) for e in exc.errors())) from exc
    missing = [name for name in SECRETS if name not in settings.model_fields_set]
    if settings.mode != "local" or not missing:
        return settings
    path = settings.secrets_file or default_secrets_file(settings)
    try:
        stored = local_secrets(path)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot keep the local secrets file {path}: {exc.strerror or exc}; set TACTFUL_SECRETS_FILE "
            "to a writable path (or TACTFUL_SECRET_KEY and TACTFUL_SUBJECT_TOKEN_SECRET)"
        ) from exc
    return settings.model_copy(update={name: SecretStr(stored[name]) for name in missing})


# -- local mode's secrets file ------------------------------------------------------------------


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def default_secrets_file(settings: Settings) -> Path:
    """Beside the main database when it is an SQLite file, else beside the keystore's, else here."""
    for url in (settings.database_url, settings.keystore_url):
        found = _sqlite_file(url)
        if found is not None:
            return found.parent / SECRETS_FILE_NAME
    return Path(SECRETS_FILE_NAME)


EXPORTS_DIR_NAME = "tactful-exports"


def export_dir(settings: Settings) -> Path:
    """Where privacy export packages are kept: `privacy.export_dir`, else beside the main database
    when it is an SQLite file, else `tactful-exports` in the working directory."""
    if settings.privacy.export_dir is not None:
        return settings.privacy.export_dir
    found = _sqlite_file(settings.database_url)
    return (found.parent if found is not None else Path()) / EXPORTS_DIR_NAME


def local_secrets(path: Path) -> dict[str, str]:
    """The secrets kept in `path`, created there with random values (owner-only, 0600) if absent.

    Two processes starting at once agree: the file is written aside and linked into place, and the
    loser reads the winner's. A file others may read is refused rather than used."""
    if not path.exists():
        _create_secrets_file(path)
    info = path.stat()
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ConfigurationError(f"{path} holds secrets but others may read it: chmod 600 {path}")
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path} is not a readable secrets file ({type(exc).__name__})") from exc
    if not isinstance(stored, dict) or not all(
        isinstance(stored.get(name), str) and len(stored[name]) >= MIN_SECRET_CHARS for name in SECRETS
    ):
        raise ConfigurationError(f"{path} must hold {', '.join(SECRETS)} of {MIN_SECRET_CHARS}+ characters")
    return {name: stored[name] for name in SECRETS}


def _create_secrets_file(path: Path) -> None:
    text = json.dumps({name: random_secret().get_secret_value() for name in SECRETS}, indent=2) + "\n"
    aside = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        os.write(descriptor, text.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(aside, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        aside.unlink()
