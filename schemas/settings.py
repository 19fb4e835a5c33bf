"""Settings: one frozen object built once from the environment by the CLI and passed down.

pydantic-settings reads the variables: ``FINPIPE_<FIELD>`` for every field (``OPENAI_API_KEY`` and
``OPENAI_BASE_URL`` for the two OpenAI ones), empty variables count as unset. A bad value stops
start-up with one line naming that variable. Secrets are ``SecretStr`` and URLs with credentials
are redacted in ``repr`` and in errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from schemas.errors import ConfigError
from schemas.fact import DEFAULT_MIN_CONFIDENCE
from schemas.topology import RETRY_DELAYS_S

ENV_PREFIX = "FINPIPE_"
_SECRETS = ("openai_api_key", "api_token")


_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_URL_START = re.compile(rf"\s*{_SCHEME}")
#: ``scheme://user:`` and everything up to the last ``@``: the password, however malformed
_LOGIN = re.compile(rf"^(\s*{_SCHEME}[^:/@]*:)(.*)@", re.DOTALL)
#: a URL cut at a comma inside its password: ``scheme://user:`` and no ``@`` after it yet
_OPEN_LOGIN = re.compile(rf"^\s*{_SCHEME}[^:/@]*:[^@]*$", re.DOTALL)
#: a password fragment at least this long is hidden wherever it appears in a message
_FRAGMENT_MIN = 4


def split_urls(value: str) -> list[str]:
    """The URLs of a comma-separated list; a comma inside a password (the URL's ``@`` comes
    after it, before the next URL) does not split its URL."""
    pieces = value.split(",")
    out: list[str] = []
    i = 0
    while i < len(pieces):
        url, i = pieces[i], i + 1
        if _OPEN_LOGIN.match(url):
            j = i
            while j < len(pieces) and not _URL_START.match(pieces[j]) and "@" not in pieces[j]:
                j += 1
            if j < len(pieces) and not _URL_START.match(pieces[j]):
                url, i = ",".join(pieces[i - 1 : j + 1]), j + 1
        out.append(url)
    return out


def redact_url(url: str) -> str:
    """``amqp://user:secret@host/`` -> ``amqp://user:***@host/``: whatever stands between
    ``scheme://user:`` and the last ``@`` is hidden, so a password with an unencoded ``#``,
    ``?``, ``/`` or ``,`` is too. No password: unchanged. Each URL of a comma-separated list
    (``FINPIPE_AMQP_URL``) is redacted."""
    return ",".join(_LOGIN.sub(r"\1***@", part) for part in split_urls(url))


def redact_secrets(text: str, url: str) -> str:
    """``text`` (an error message about ``url``) with the passwords of ``url`` hidden, and the
    pieces of them a parser may have cut at ``#``, ``?``, ``/`` or ``,`` too."""
    for part in split_urls(url):
        m = _LOGIN.match(part)
        if m is None or not m.group(2):
            continue
        secret = m.group(2)
        pieces = [p for p in re.split(r"[#?/,@]", secret) if len(p) >= _FRAGMENT_MIN]
        for piece in sorted({secret, *pieces}, key=len, reverse=True):
            text = text.replace(piece, "***")
    return text


#: the port pika connects to when an address names none
_AMQP_PORTS = {"amqp": 5672, "amqps": 5671}


def amqp_node(url: str) -> tuple[str, str, int]:
    """The node ``url`` connects to, normalized: scheme, host in lower case, port (the scheme's
    default when none is given), so ``amqp://H`` and ``amqp://h:5672/`` are one node."""
    parts = urlsplit(url)
    port = parts.port or _AMQP_PORTS.get(parts.scheme, 0)
    return parts.scheme, (parts.hostname or "").lower(), port


def amqp_login(url: str) -> tuple[str, str, str]:
    """The user, password and virtual host ``url`` logs in with, decoded as pika decodes them
    (``%2f`` and ``%2F`` are both ``/``, as is no path at all)."""
    parts = urlsplit(url)
    vhost = parts.path[1:] if parts.path not in ("", "/") else "%2F"
    return unquote(parts.username or ""), unquote(parts.password or ""), unquote(vhost)


def amqp_addresses(value: str) -> tuple[str, ...]:
    """The broker addresses in ``FINPIPE_AMQP_URL``: one ``amqp://`` or ``amqps://`` URL, or several
    separated by commas (the nodes of one cluster), each with a host and a numeric port if any,
    all with the same user, password and virtual host, and no node twice (addresses compared
    normalized: ``amqp_node``, ``amqp_login``). ``ValueError`` says what is wrong in one line,
    passwords hidden."""
    urls = tuple(u.strip() for u in split_urls(value))
    if not all(urls):
        raise ValueError("an empty address in the comma-separated list")
    seen: dict[tuple[str, str, int], str] = {}
    login: tuple[str, str, str] | None = None
    for url in urls:
        shown = f"{redact_url(url)}: " if len(urls) > 1 else ""
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ValueError(f"{shown}must start with amqp:// or amqps://")
        if not parts.hostname:
            raise ValueError(f"{shown}no host")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError(f"{shown}the port must be a number from 1 to 65535")
        this = amqp_login(url)
        if login is not None and this != login:
            raise ValueError(
                f"{shown}every address needs the same user, password and virtual host "
                "(the nodes of one cluster share them)"
            )
        login = this
        node = amqp_node(url)
        if node in seen:
            same = "" if seen[node] == url else f" (as {redact_url(seen[node])})"
            raise ValueError(f"{shown}listed twice{same}")
        seen[node] = url
    return urls


def _openai(name: str) -> AliasChoices:
    return AliasChoices(name, name.upper())


class Settings(BaseSettings):
    """Everything finpipe reads from its environment, validated once. Build it with
    ``from_env``; the constructor itself reads no environment."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        case_sensitive=False,
        populate_by_name=True,
    )

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    mongo_uri: str = "mongodb://127.0.0.1:27017"
    mongo_db: str = Field("finpipe", min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    queue: str = Field("finpipe.reports", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    openai_api_key: SecretStr | None = Field(None, validation_alias=_openai("openai_api_key"))
    openai_base_url: str | None = Field(None, validation_alias=_openai("openai_base_url"))
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
    min_confidence: float = Field(DEFAULT_MIN_CONFIDENCE, ge=0, le=1)
    #: the account's limits for the model, tokens and requests per minute, when the operator
    #: states them (the answers' x-ratelimit headers teach them anyway, after the first call)
    tpm: int | None = Field(None, gt=0)
    rpm: int | None = Field(None, gt=0)
    llm_mode: Literal["sync", "flex", "batch"] = "sync"
    batch_poll_s: float = Field(60.0, gt=0)
    batch_cancel_margin_s: float = Field(900.0, ge=0)
    max_cost_usd: float | None = Field(None, gt=0)
    prefetch: int = Field(200, ge=1, le=65535)
    delivery_limit: int = Field(5, ge=1)
    republish_budget_s: float = Field(30.0, gt=0)
    retry_delays_s: Annotated[tuple[int, ...], NoDecode] = RETRY_DELAYS_S
    write_concern: str = "majority"
    inbox: Path = Path("inbox")
    export_dir: Path = Path("exports")
    company_aliases: Path | None = None
    sweep_cron: str = "0 2 * * *"
    export_cron: str = "30 2 * * *"
    timezone: str = "UTC"
    export_wait_s: float = Field(1800.0, ge=0)
    api_token: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    @field_validator("amqp_url")
    @classmethod
    def _amqp_addresses(cls, v: str) -> str:
        amqp_addresses(v)
        return ",".join(u.strip() for u in v.split(","))

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

    @field_validator("llm_mode", mode="before")
    @classmethod
    def _mode(cls, v: object) -> object:
        return v.strip().lower() if isinstance(v, str) else v

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
    def amqp_urls(self) -> tuple[str, ...]:
        """The broker addresses of ``FINPIPE_AMQP_URL`` (one, or the nodes of a cluster)."""
        return amqp_addresses(self.amqp_url)

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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what ``from_env`` passes in: the environment is read there, from the mapping given.
        return (init_settings,)

    def to_env(self) -> dict[str, str]:
        """The environment variables that make ``from_env`` build these settings again (for a
        child process); unset values are left out."""
        env: dict[str, str] = {}
        for field in type(self).model_fields:
            value = getattr(self, field)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            env[env_var(field)] = str(value)
        return env

    def process_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for a child ``finpipe`` process: ``base`` (default ``os.environ``)
        without finpipe's own variables, plus these settings."""
        env = {
            k: v
            for k, v in (os.environ if base is None else base).items()
            if not k.startswith((ENV_PREFIX, "OPENAI_"))
        }
        env.update(self.to_env())
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); empty variables are unset,
        ``overrides`` that are not None win."""
        source = _MappingEnvSource(cls, os.environ if environ is None else environ)
        values = {**source(), **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise _config_error(exc) from None


def env_var(field: str) -> str:
    """The environment variable a settings field comes from."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[-1])
    return f"{ENV_PREFIX}{field.upper()}"


def _field_of(loc: str) -> str:
    """The field a validation error location names (a field or one of its variables)."""
    for name in Settings.model_fields:
        if loc.lower() in (name, env_var(name).lower()):
            return name
    return loc


def _config_error(exc: ValidationError) -> ConfigError:
    """One line naming the variable and the value (secrets hidden, URLs redacted)."""
    err = exc.errors()[0]
    field = _field_of(str(err["loc"][0])) if err["loc"] else "?"
    shown = err.get("input")
    if field in _SECRETS:
        shown = "***"
    msg = str(err["msg"])
    if field not in _SECRETS and isinstance(shown, str) and "://" in shown:
        msg = redact_secrets(msg, shown)
        shown = redact_url(shown)
    var = env_var(field) if field in Settings.model_fields else field
    return ConfigError(f"{var}={shown!r} is invalid: {msg}")


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``;
    values are stripped and empty ones are unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {k.lower(): v.strip() for k, v in environ.items() if v.strip() != ""}
