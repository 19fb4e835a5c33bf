"""How the model is called: ``FINPIPE_LLM_MODE`` and the flex-tier fallback. Pure.

- ``sync`` (the default): standard synchronous calls.
- ``flex``: synchronous calls with ``service_tier="flex"`` (half the price, slower, and at times
  a 429 "resource unavailable"), with a long timeout; on that 429 the batch of snippets is asked
  again at the standard tier, once, and the fallback is logged by the caller.
- ``batch``: the nightly run goes through the Batch API (half the price, up to 24 hours); what
  does not come back takes the synchronous path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from schemas.errors import ConfigError

MODE_VARIABLE = "FINPIPE_LLM_MODE"
FLEX_TIER = "flex"
#: OpenAI's advice for flex calls, which may queue: a timeout of 15 minutes.
FLEX_TIMEOUT_S = 900.0


class LLMMode(StrEnum):
    SYNC = "sync"
    FLEX = "flex"
    BATCH = "batch"


def parse_llm_mode(raw: str | None, *, variable: str = MODE_VARIABLE) -> LLMMode:
    """The mode a setting names; unset or blank is ``sync``. Case and surrounding spaces do not
    matter; anything else is a :class:`ConfigError` naming the variable and the choices."""
    value = (raw or "").strip().lower()
    if not value:
        return LLMMode.SYNC
    try:
        return LLMMode(value)
    except ValueError:
        choices = "|".join(m.value for m in LLMMode)
        raise ConfigError(f"{variable}={raw!r} is not one of {choices}") from None


def call_options(mode: LLMMode, timeout_s: float) -> dict[str, Any]:
    """Extra arguments of a synchronous ``chat.completions.create`` in ``mode``: the flex tier and
    a timeout of at least :data:`FLEX_TIMEOUT_S` in flex mode, nothing otherwise (batch mode's
    synchronous leftovers are standard calls)."""
    if mode is LLMMode.FLEX:
        return {"service_tier": FLEX_TIER, "timeout": max(timeout_s, FLEX_TIMEOUT_S)}
    return {}


def is_flex_unavailable(status_code: int | None, error: Mapping[str, Any] | None) -> bool:
    """A 429 that says the flex tier has no capacity now ("Resource Unavailable"), as opposed to
    a rate limit (``rate_limit_exceeded``: back off and retry) or an empty account
    (``insufficient_quota``: stop)."""
    if status_code != 429:
        return False
    error = error or {}
    code = str(error.get("code") or error.get("type") or "").lower()
    message = str(error.get("message") or "").lower()
    if code in ("rate_limit_exceeded", "insufficient_quota"):
        return False
    return "resource_unavailable" in code or "resource unavailable" in message


@dataclass(frozen=True, slots=True)
class TierDecision:
    """The tier of the next attempt (None: standard, the parameter left out) and whether this
    is a fallback the caller logs."""

    service_tier: str | None
    fell_back: bool = False
    reason: str | None = None


def next_tier(
    service_tier: str | None, status_code: int | None, error: Mapping[str, Any] | None
) -> TierDecision:
    """After a failed call at ``service_tier``: a flex call refused for want of capacity is
    asked again at the standard tier (for that batch of snippets only: the next batch starts at
    flex again); every other failure keeps the tier and follows the usual retry rules."""
    if service_tier == FLEX_TIER and is_flex_unavailable(status_code, error):
        message = str((error or {}).get("message") or "resource unavailable")
        return TierDecision(None, True, f"flex tier unavailable ({message}); standard tier")
    return TierDecision(service_tier)
