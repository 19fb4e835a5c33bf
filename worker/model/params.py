"""The arguments of one chat completion request, shaped by the model's profile. Pure apart from
a lock.

:func:`request_body` is the whole request (the Batch API mode writes the same bodies to its
JSONL file); :class:`RequestShape` remembers, for the run, the optional parameters the server
refused, so each costs one warning and is never sent again.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from worker.model.profiles import CONSERVATIVE_PARAMS, ModelProfile

log = logging.getLogger(__name__)

#: parameters finpipe can leave out when a server refuses them (the request still makes sense)
OPTIONAL_PARAMS = (
    "temperature",
    "reasoning_effort",
    "max_completion_tokens",
    "max_tokens",
    "service_tier",
    "prompt_cache_key",
)
#: the two names of the completion budget; a server that refuses one usually takes the other
TOKEN_LIMITS = ("max_completion_tokens", "max_tokens")
#: completion tokens per call: a base, per snippet, and room for hidden reasoning per effort
BUDGET_BASE = 512
BUDGET_PER_SNIPPET = 400
REASONING_ROOM = {
    "none": 0,
    "minimal": 512,
    "low": 2_048,
    "medium": 8_192,
    "high": 16_384,
    "xhigh": 32_768,
    "max": 65_536,
}
#: once the ledger has measured answers: a base, the largest answer per snippet seen times a margin
MEASURED_BASE = 256
MEASURED_MARGIN = 1.5
#: what to change when a parameter stays refused
HINTS = {
    "reasoning_effort": "FINPIPE_REASONING_EFFORT",
    "temperature": "FINPIPE_MODEL (or a profile in FINPIPE_PRICES_FILE)",
}


def completion_budget(n_snippets: int, effort: str | None, per_snippet: float | None = None) -> int:
    """``max_completion_tokens`` for a call of ``n_snippets``: enough for their answers plus the
    reasoning the effort allows. ``per_snippet`` is the answer size per snippet the ledger
    measured (:meth:`worker.model.ledger.CostLedger.answer_tokens_per_snippet`); with it the
    budget is that with a margin, since a rate limit charges the budget asked for, not the answer.
    A call that runs out is split in halves (never lost)."""
    room = REASONING_ROOM.get(effort or "none", 0)
    fixed = BUDGET_BASE + BUDGET_PER_SNIPPET * n_snippets + room
    if per_snippet is None:
        return fixed
    measured = MEASURED_BASE + math.ceil(per_snippet * MEASURED_MARGIN * n_snippets) + room
    return min(fixed, measured)


def effort_for(profile: ModelProfile | None, wanted: str) -> str | None:
    """The ``reasoning_effort`` to send: ``wanted`` when the model takes it, else the lowest
    level the model lists; None for models without the parameter."""
    if profile is None or "reasoning_effort" not in profile.params:
        return None
    if not profile.reasoning_efforts or wanted in profile.reasoning_efforts:
        return wanted
    return profile.reasoning_efforts[0]


def optional_params(
    profile: ModelProfile | None,
    *,
    n_snippets: int,
    effort: str | None,
    cache_key: str | None,
    dropped: frozenset[str] = frozenset(),
    service_tier: str | None = None,
    per_snippet: float | None = None,
) -> dict[str, Any]:
    """The optional parameters for a call, as the profile allows and minus those ``dropped``.
    A model without a profile gets ``temperature=0`` and ``max_tokens`` only."""
    accepted = set(profile.params if profile is not None else CONSERVATIVE_PARAMS)
    reasoning = profile is not None and profile.family == "reasoning"
    out: dict[str, Any] = {}
    if "temperature" in accepted and not reasoning:
        out["temperature"] = 0
    if effort is not None and "reasoning_effort" in accepted:
        out["reasoning_effort"] = effort
    limit = _token_limit(accepted, dropped)
    if limit is not None:
        out[limit] = completion_budget(n_snippets, effort, per_snippet)
    if cache_key and "prompt_cache_key" in accepted:
        out["prompt_cache_key"] = cache_key
    if service_tier and "service_tier" in accepted:
        out["service_tier"] = service_tier
    return {k: v for k, v in out.items() if k not in dropped}


def _token_limit(accepted: set[str], dropped: frozenset[str]) -> str | None:
    preferred = [name for name in TOKEN_LIMITS if name in accepted]
    others = [name for name in TOKEN_LIMITS if name not in accepted]
    for name in preferred + others if preferred else []:
        if name not in dropped:
            return name
    return None


def request_body(
    model: str,
    messages: Sequence[Mapping[str, str]],
    response_format: Mapping[str, Any] | None,
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """The arguments of ``chat.completions.create`` (one line of a Batch API file's ``body``)."""
    body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages]}
    if response_format is not None:
        body["response_format"] = dict(response_format)
    body.update(params)
    return body


class RequestShape:
    """The parameters refused so far in this run (shared by the engine's threads)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._dropped: set[str] = set()

    @property
    def dropped(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._dropped)

    def drop(self, name: str, why: str, sent: Mapping[str, Any] | None = None) -> bool:
        """Leave ``name`` out from now on; True when the request ``sent`` is worth asking again
        without it: ``name`` was dropped now, or by a call in flight beside this one (``sent``
        still had it). False when it was left out already and still refused (the server refuses
        something else, or refuses regardless)."""
        with self._lock:
            if name not in OPTIONAL_PARAMS:
                return False
            if name in self._dropped:
                return sent is not None and name in sent
            self._dropped.add(name)
        other = next(n for n in TOKEN_LIMITS if n != name) if name in TOKEN_LIMITS else None
        log.warning(
            "model %s: the server refused %r (%s); leaving it out for the rest of this run%s",
            self.model,
            name,
            why,
            f" and sending {other!r} instead" if other else "",
        )
        return True
