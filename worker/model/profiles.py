"""Model profiles: parameters, prices and shutdown dates, read from a dated data file. Pure
apart from reading that file.

``profiles.toml`` (next to this module) says, per model name prefix, whether the model is a
classic or a reasoning model, which optional request parameters it accepts, its prices and its
shutdown date. ``FINPIPE_PRICES_FILE`` names a file of the same form whose entries replace or
extend the packaged ones.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from schemas.errors import ConfigError

Family = Literal["classic", "reasoning"]
Tier = Literal["standard", "batch", "flex"]
#: days before a listed shutdown date from which a worker warns at start-up
SHUTDOWN_WARNING_DAYS = 60
#: what a model without a profile is sent: what nearly every OpenAI-compatible server accepts
CONSERVATIVE_PARAMS = ("temperature", "max_tokens")


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens; ``batch`` and ``flex`` multiply the standard price."""

    input: Decimal
    cached_input: Decimal
    output: Decimal
    cache_write: Decimal | None = None
    batch: Decimal = Decimal(1)
    flex: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class ModelProfile:
    prefix: str
    family: Family
    params: frozenset[str]
    price: Price | None
    reasoning_efforts: tuple[str, ...] = ()
    shutdown: date | None = None
    retired: bool = False
    replacement: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileTable:
    profiles: Mapping[str, ModelProfile]
    as_of: date | None
    source: str

    def lookup(self, model: str) -> ModelProfile | None:
        """The profile of the longest prefix of ``model``: a dated snapshot
        ("gpt-4o-mini-2024-07-18") or a tag ("llama3.1:8b") takes its family's."""
        best = None
        for prefix in self.profiles:
            if (model == prefix or model.startswith((prefix + "-", prefix + ":"))) and (
                best is None or len(prefix) > len(best)
            ):
                best = prefix
        return self.profiles[best] if best is not None else None


def parse_table(doc: Mapping[str, Any], where: str) -> ProfileTable:
    """A :class:`ProfileTable` from a parsed TOML document; :class:`ConfigError` naming
    ``where`` and the entry when an entry is malformed."""
    out: dict[str, ModelProfile] = {}
    for prefix, entry in (doc.get("models") or {}).items():
        try:
            out[prefix] = _profile(prefix, entry)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ConfigError(f"{where}: model {prefix!r} is malformed: {exc!r}") from None
    as_of = doc.get("as_of")
    return ProfileTable(out, as_of if isinstance(as_of, date) else None, str(doc.get("source", "")))


def _profile(prefix: str, entry: Mapping[str, Any]) -> ModelProfile:
    family = entry.get("family", "classic")
    if family not in ("classic", "reasoning"):
        raise ValueError(f"family must be classic or reasoning, not {family!r}")
    price = None
    if "input" in entry:
        price = Price(
            input=Decimal(str(entry["input"])),
            cached_input=Decimal(str(entry.get("cached_input", entry["input"]))),
            output=Decimal(str(entry["output"])),
            cache_write=Decimal(str(entry["cache_write"])) if "cache_write" in entry else None,
            batch=Decimal(str(entry.get("batch", 1))),
            flex=Decimal(str(entry.get("flex", 1))),
        )
    shutdown = entry.get("shutdown")
    if shutdown is not None and not isinstance(shutdown, date):
        raise ValueError("shutdown must be a date such as 2027-01-14")
    return ModelProfile(
        prefix=prefix,
        family=family,
        params=frozenset(entry.get("params", CONSERVATIVE_PARAMS)),
        price=price,
        reasoning_efforts=tuple(entry.get("reasoning_efforts", ())),
        shutdown=shutdown,
        retired=bool(entry.get("retired", False)),
        replacement=entry.get("replacement"),
    )


def load_table(override: Path | None = None) -> ProfileTable:
    """The packaged table, with the entries of ``override`` (FINPIPE_PRICES_FILE) on top."""
    text = resources.files("worker.model").joinpath("profiles.toml").read_text("utf-8")
    table = parse_table(tomllib.loads(text), "worker/model/profiles.toml")
    if override is None:
        return table
    try:
        doc = tomllib.loads(override.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"FINPIPE_PRICES_FILE={str(override)!r} cannot be read: {exc}") from None
    extra = parse_table(doc, f"FINPIPE_PRICES_FILE={str(override)!r}")
    return ProfileTable(
        {**table.profiles, **extra.profiles},
        extra.as_of or table.as_of,
        extra.source or table.source,
    )


def estimate_cost_usd(
    price: Price | None,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
    cache_write_tokens: int = 0,
    tier: Tier = "standard",
) -> float | None:
    """Estimated price of one call; None when the model has no price. Reasoning tokens are part
    of ``completion_tokens`` (billed as output); cache writes are billed at their own price when
    the profile lists one."""
    if price is None:
        return None
    write_price = price.cache_write if price.cache_write is not None else price.input
    uncached = max(prompt_tokens - cached_tokens - cache_write_tokens, 0)
    total = (
        uncached * price.input
        + cached_tokens * price.cached_input
        + cache_write_tokens * write_price
        + completion_tokens * price.output
    ) / Decimal(1_000_000)
    factor = {"standard": Decimal(1), "batch": price.batch, "flex": price.flex}[tier]
    return float(total * factor)


def shutdown_warning(
    model: str, profile: ModelProfile | None, today: date, *, days: int = SHUTDOWN_WARNING_DAYS
) -> str | None:
    """A start-up warning when ``model`` is shut down or shuts down within ``days``."""
    if profile is None:
        return None
    instead = f"; set FINPIPE_MODEL={profile.replacement}" if profile.replacement else ""
    if profile.retired or (profile.shutdown is not None and profile.shutdown <= today):
        when = f" on {profile.shutdown.isoformat()}" if profile.shutdown else ""
        return f"model {model} was shut down{when}: calls will fail{instead}"
    if profile.shutdown is not None and (profile.shutdown - today).days <= days:
        left = (profile.shutdown - today).days
        return (
            f"model {model} shuts down on {profile.shutdown.isoformat()} (in {left} days){instead}"
        )
    return None


def start_up_warnings(
    model: str,
    profile: ModelProfile | None,
    today: date,
    *,
    effort: str | None,
    wanted_effort: str,
    budget: bool,
) -> list[str]:
    """What a worker says at start-up about its model: no profile, no price, a shutdown close
    by, a reasoning effort the model does not list."""
    out = []
    if profile is None:
        out.append(
            f"model {model} has no profile (worker/model/profiles.toml or FINPIPE_PRICES_FILE): "
            "sending temperature and max_tokens only; tokens are counted, cost is unknown"
            + (" and FINPIPE_MAX_COST_USD cannot be enforced" if budget else "")
        )
    elif profile.price is None:
        out.append(f"model {model} has no price: cost is not estimated")
    retiring = shutdown_warning(model, profile, today)
    if retiring:
        out.append(retiring)
    if effort is not None and effort != wanted_effort:
        out.append(
            f"model {model} does not list reasoning_effort {wanted_effort!r} "
            f"(FINPIPE_REASONING_EFFORT); using {effort!r}"
        )
    return out
