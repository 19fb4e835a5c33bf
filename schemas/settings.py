"""Settings: one frozen object built once from the environment by the CLI and passed down.

Every field names the environment variable it comes from; a bad value stops start-up with one line
naming that variable. Secrets are ``SecretStr`` and URLs with credentials are redacted in ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from schemas.errors import ConfigError

# field name -> environment variable
ENV_VARS: dict[str, str] = {
    "amqp_url": "FINPIPE_AMQP_URL",
    "mongo_uri": "FINPIPE_MONGO_URI",
    "mongo_db": "FINPIPE_MONGO_DB",
    "queue": "FINPIPE_QUEUE",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "model": "FINPIPE_MODEL",
    "reasoning_effort": "FINPIPE_REASONING_EFFORT",
    "response_format": "FINPIPE_RESPONSE_FORMAT",
    "prices_file": "FINPIPE_PRICES_FILE",
    "provider": "FINPIPE_PROVIDER",
    "max_report_bytes": "FINPIPE_MAX_REPORT_BYTES",
    "max_body_bytes": "FINPIPE_MAX_BODY_BYTES",
    "max_file_bytes": "FINPIPE_MAX_FILE_BYTES",
    "batch_snippets": "FINPIPE_BATCH_SNIPPETS",
    "batch_chars": "FINPIPE_BATCH_CHARS",
    "batch_wait_ms": "FINPIPE_BATCH_WAIT_MS",
    "llm_concurrency": "FINPIPE_LLM_CONCURRENCY",
    "llm_timeout_s": "FINPIPE_LLM_TIMEOUT_S",
    "llm_max_retries": "FINPIPE_LLM_MAX_RETRIES",
    "max_cost_usd": "FINPIPE_MAX_COST_USD",
    "prefetch": "FINPIPE_PREFETCH",
    "delivery_limit": "FINPIPE_DELIVERY_LIMIT",
    "retry_delays_s": "FINPIPE_RETRY_DELAYS_S",
    "write_concern": "FINPIPE_WRITE_CONCERN",
    "inbox": "FINPIPE_INBOX",
    "export_dir": "FINPIPE_EXPORT_DIR",
    "sweep_cron": "FINPIPE_SWEEP_CRON",
    "export_cron": "FINPIPE_EXPORT_CRON",
    "timezone": "FINPIPE_TIMEZONE",
    "export_wait_s": "FINPIPE_EXPORT_WAIT_S",
    "api_token": "FINPIPE_API_TOKEN",
    "log_level": "FINPIPE_LOG_LEVEL",
}


def redact_url(url: str) -> str:
    """``amqp://user:secret@host/`` -> ``amqp://user:***@host/``; no password: unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class Settings(BaseModel):
    """Everything finpipe reads from its environment, validated once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    mongo_uri: str = "mongodb://127.0.0.1:27017"
    mongo_db: str = Field("finpipe", min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    queue: str = Field("finpipe.reports", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    model: str = "gpt-6-luna"
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] = "none"
    response_format: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    prices_file: Path | None = None
    provider: Literal["auto", "rules", "openai"] = "auto"
    max_report_bytes: int = Field(1_000_000, gt=0)
    max_body_bytes: int = Field(5_000_000, gt=0)
    max_file_bytes: int = Field(100_000_000, gt=0)
    batch_snippets: int = Field(20, ge=1, le=500)
    batch_chars: int = Field(12_000, ge=200)
    batch_wait_ms: int = Field(500, ge=0)
    llm_concurrency: int = Field(4, ge=1, le=64)
    llm_timeout_s: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(4, ge=0, le=20)
    max_cost_usd: float | None = Field(None, gt=0)
    prefetch: int = Field(200, ge=1, le=65535)
    delivery_limit: int = Field(5, ge=1)
    retry_delays_s: tuple[int, ...] = (2, 10, 60, 300, 1800)
    write_concern: str = "majority"
    inbox: Path = Path("inbox")
    export_dir: Path = Path("exports")
    sweep_cron: str = "0 2 * * *"
    export_cron: str = "30 2 * * *"
    timezone: str = "UTC"
    export_wait_s: float = Field(1800.0, ge=0)
    api_token: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("amqp_url")
    @classmethod
    def _amqp_scheme(cls, v: str) -> str:
        if urlsplit(v).scheme not in ("amqp", "amqps"):
            raise ValueError("must start with amqp:// or amqps://")
        return v

    @field_validator("mongo_uri")
    @classmethod
    def _mongo_scheme(cls, v: str) -> str:
        if urlsplit(v).scheme not in ("mongodb", "mongodb+srv"):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return v

    @field_validator("openai_base_url")
    @classmethod
    def _http_scheme(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("must start with http:// or https://")
        return v

    @field_validator("retry_delays_s", mode="before")
    @classmethod
    def _delays(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                v = tuple(int(x) for x in v.split(",") if x.strip())
            except ValueError as exc:
                raise ValueError("must be comma-separated whole seconds, e.g. 2,10,60") from exc
        if isinstance(v, tuple | list) and (not v or any(int(x) < 1 for x in v)):
            raise ValueError("needs at least one delay, each of 1 s or more")
        return v

    @field_validator("write_concern")
    @classmethod
    def _write_concern(cls, v: str) -> str:
        if v != "majority" and not v.isdigit():
            raise ValueError("must be 'majority' or a number of nodes such as 1")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @property
    def effective_provider(self) -> Literal["rules", "openai"]:
        """``auto`` means the OpenAI provider when a key is set, the rules extractor otherwise."""
        if self.provider == "auto":
            return "openai" if self.openai_api_key else "rules"
        return self.provider

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name in ("amqp_url", "mongo_uri", "openai_base_url") and isinstance(value, str):
                yield name, redact_url(value)
            else:
                yield name, value

    def to_env(self) -> dict[str, str]:
        """The environment variables that make ``from_env`` build these settings again (for a
        child process); unset values are left out."""
        env: dict[str, str] = {}
        for field, var in ENV_VARS.items():
            value = getattr(self, field)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            env[var] = str(value)
        return env

    def process_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for a child ``finpipe`` process: ``base`` (default ``os.environ``)
        without finpipe's own variables, plus these settings."""
        env = {
            k: v
            for k, v in (os.environ if base is None else base).items()
            if not k.startswith(("FINPIPE_", "OPENAI_"))
        }
        env.update(self.to_env())
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); empty variables are unset."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is not None and raw.strip() != "":
                values[field] = raw.strip()
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = ENV_VARS.get(field, field)
            shown = values.get(field)
            if field in ("openai_api_key", "api_token"):
                shown = "***"
            elif isinstance(shown, str) and "://" in shown:
                shown = redact_url(shown)
            raise ConfigError(f"{var}={shown!r} is invalid: {err['msg']}") from None
