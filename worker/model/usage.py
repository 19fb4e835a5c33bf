"""What one answered call is billed: its :class:`~worker.model.ledger.CallUsage`, from the
completion's token counts and the model's price. Pure."""

from __future__ import annotations

from worker.model.client import ChatCompletion, token_counts
from worker.model.ledger import CallUsage
from worker.model.profiles import Price, Tier, estimate_cost_usd


def call_usage(
    completion: ChatCompletion,
    *,
    model: str,
    price: Price | None,
    purpose: str,
    snippets: int,
    latency_ms: int,
    response_format: str,
    reasoning_effort: str | None,
    tier: Tier,
) -> CallUsage:
    """The usage of ``completion``, priced at ``tier`` (None when the model has no price)."""
    t = token_counts(completion)
    choices = completion.choices
    return CallUsage(
        model=model,
        purpose=purpose,
        snippets=snippets,
        prompt_tokens=t.prompt,
        completion_tokens=t.completion,
        cached_tokens=t.cached,
        cost_usd=estimate_cost_usd(
            price, t.prompt, t.completion, t.cached, t.cache_write, tier=tier
        ),
        latency_ms=latency_ms,
        finish_reason=choices[0].finish_reason if choices else None,
        reasoning_tokens=t.reasoning,
        cache_write_tokens=t.cache_write,
        response_format=response_format,
        reasoning_effort=reasoning_effort,
        tier=tier,
    )
