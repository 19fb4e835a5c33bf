"""Model prices and the estimated cost of a call. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: Decimal
    cached_input: Decimal
    output: Decimal


#: Estimated list prices; pass ``prices=`` to the engine to override or extend. A dated snapshot
#: ("gpt-4o-mini-2024-07-18") takes the price of its longest listed prefix.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(Decimal("0.15"), Decimal("0.075"), Decimal("0.60")),
    "gpt-4o": Price(Decimal("2.50"), Decimal("1.25"), Decimal("10.00")),
    "gpt-4.1-nano": Price(Decimal("0.10"), Decimal("0.025"), Decimal("0.40")),
    "gpt-4.1-mini": Price(Decimal("0.40"), Decimal("0.10"), Decimal("1.60")),
    "gpt-4.1": Price(Decimal("2.00"), Decimal("0.50"), Decimal("8.00")),
}


def price_for(model: str, prices: Mapping[str, Price]) -> Price | None:
    best = None
    for name in prices:
        if (model == name or model.startswith(name + "-")) and (
            best is None or len(name) > len(best)
        ):
            best = name
    return prices[best] if best is not None else None


def estimate_cost_usd(
    price: Price | None, prompt_tokens: int, completion_tokens: int, cached_tokens: int
) -> float | None:
    """Estimated price of one call; None when the model is not in the price table."""
    if price is None:
        return None
    uncached = max(prompt_tokens - cached_tokens, 0)
    total = (
        uncached * price.input
        + cached_tokens * price.cached_input
        + completion_tokens * price.output
    ) / Decimal(1_000_000)
    return float(total)
