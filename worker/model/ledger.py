"""Tokens and estimated cost, per call and per run. Pure apart from a lock (and the metrics each
call is counted in)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

from adapters import metrics


@dataclass(frozen=True, slots=True)
class CallUsage:
    """One chat completion as billed."""

    model: str
    purpose: str  # "batch", "reask" or "split"
    snippets: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: float | None
    latency_ms: int
    finish_reason: str | None
    #: hidden reasoning, part of ``completion_tokens`` and billed as output
    reasoning_tokens: int = 0
    #: prompt tokens written to the prompt cache, when the server says
    cache_write_tokens: int = 0
    #: the output format asked for: "json_schema", "json_object" or "prompt"
    response_format: str = "json_schema"
    reasoning_effort: str | None = None
    #: the price tier billed: "standard", "flex" or "batch" (a Batch API answer)
    tier: str = "standard"


@dataclass
class Usage:
    """Tokens and cost summed over calls (or a snippet's share of them) and cache hits."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = 0.0
    cache_hits: int = 0
    reasoning_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.reasoning_tokens += other.reasoning_tokens
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.cache_hits += other.cache_hits
        if self.cost_usd is None or other.cost_usd is None:
            self.cost_usd = None
        else:
            self.cost_usd += other.cost_usd


#: answer sizes kept to size the next calls' completion budget
ANSWERS_KEPT = 64


class CostLedger:
    """Run totals, shared by the threads of one worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = Usage()
        self._known_cost = 0.0
        #: visible answer tokens per snippet of recent calls
        self._per_snippet: deque[float] = deque(maxlen=ANSWERS_KEPT)

    def answer_tokens_per_snippet(self) -> float | None:
        """The largest answer per snippet (reasoning left out) among the recent calls; an
        answer cut off by its budget counts twice its size. None before any answer."""
        with self._lock:
            return max(self._per_snippet) if self._per_snippet else None

    def add_call(self, call: CallUsage) -> None:
        metrics.model_usage(
            call.model,
            call.tier,
            prompt=call.prompt_tokens,
            cached=call.cached_tokens,
            completion=call.completion_tokens,
            cost_usd=call.cost_usd,
        )
        with self._lock:
            self._totals.add(
                Usage(
                    1,
                    call.prompt_tokens,
                    call.completion_tokens,
                    call.cached_tokens,
                    call.cost_usd,
                    reasoning_tokens=call.reasoning_tokens,
                )
            )
            self._known_cost += call.cost_usd or 0.0
            if call.snippets > 0 and call.tier != "batch":
                size = max(call.completion_tokens - call.reasoning_tokens, 0) / call.snippets
                self._per_snippet.append(size * 2 if call.finish_reason == "length" else size)

    def add_cache_hits(self, n: int) -> None:
        with self._lock:
            self._totals.cache_hits += n

    def totals(self) -> Usage:
        with self._lock:
            return replace(self._totals)

    @property
    def known_cost_usd(self) -> float:
        """Cost of the calls whose price is known (what a budget can be checked against)."""
        with self._lock:
            return self._known_cost


def shares(usage: CallUsage, weights: Sequence[int]) -> list[Usage]:
    """Split one call's usage over its snippets in proportion to their length."""
    total = sum(weights) or 1
    out = []
    for w in weights:
        frac = w / total
        out.append(
            Usage(
                calls=0,
                prompt_tokens=round(usage.prompt_tokens * frac),
                completion_tokens=round(usage.completion_tokens * frac),
                cached_tokens=round(usage.cached_tokens * frac),
                reasoning_tokens=round(usage.reasoning_tokens * frac),
                cost_usd=None if usage.cost_usd is None else usage.cost_usd * frac,
            )
        )
    return out
