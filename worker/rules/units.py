"""The unit of a fact: whether an amount's unit fits the metric that governs it, the unit and
currency it is stored in, how its scale was decided; and "zero" / "nil" written as words. Pure."""

from __future__ import annotations

import re
from decimal import Decimal

from schemas.standards import (
    ADJUSTED_PREFIX,
    MARGIN_OF,
    Unit,
    currency_form,
    metric_base,
    unit_of,
)
from worker.normalize.amounts import Amount, AmountMention
from worker.rules.cues import AS_SHARE_OF_SALES, MARGIN_BASE_AFTER
from worker.rules.mentions import MetricMention
from worker.rules.roles import Amt

#: "zero" or "nil" as the value of a metric: "operating profit was zero", "came to nil"
_ZERO_WORD = re.compile(
    r"\b(?:was|were|is|are|came\s+to|amounted\s+to|stood\s+at|totall?ed|remained(?:\s+at)?|"
    r"fell\s+to|dropped\s+to|declined\s+to|decreased\s+to)\s+(?P<zero>zero|nil)\b(?![-\w])",
    re.IGNORECASE,
)


def zero_words(s: str) -> list[AmountMention]:
    zero = Amount(Decimal(0), None, Unit.COUNT)
    return [
        AmountMention(m.start("zero"), m.end("zero"), zero, False) for m in _ZERO_WORD.finditer(s)
    ]


def metric_and_unit(
    text: str, amounts: list[Amt], idx: int, metric: MetricMention
) -> tuple[str, Unit, str | None, str] | None:
    """(metric name, unit, currency, how the scale was decided) when the amount's unit fits the
    metric, else None."""
    assert metric.canonical is not None
    prefix = ADJUSTED_PREFIX if metric.adjusted else ""
    name = prefix + metric.canonical
    cur = amounts[idx]
    amount = cur.mention.amount
    currency, unit = amount.currency, amount.unit
    scale_how = scale_how_of(cur)
    if unit is Unit.COUNT and amount.value == 0 and not amount.scaled:
        # "zero", "nil": in the one currency the sentence names, or a percent for a margin
        if unit_of(name) is Unit.PERCENT:
            return name, Unit.PERCENT, None, "zero in words"
        named = {a.mention.amount.currency for a in amounts} - {None}
        if len(named) != 1:
            return None
        currency, unit, scale_how = named.pop(), Unit.CURRENCY, "zero in words"
        if unit_of(currency_form(name) or name) is Unit.CURRENCY_PER_SHARE:
            unit = Unit.CURRENCY_PER_SHARE
    elif unit is Unit.COUNT:  # "EUR 5.3 million and 4.1 million": the currency of the one before
        before = reversed(amounts[:idx])
        currency = next(
            (a.mention.amount.currency for a in before if a.mention.amount.currency), None
        )
        if currency is None:
            return None
        unit = Unit.CURRENCY
        scale_how = "currency of the amount before"
    expected = unit_of(name)
    if unit is Unit.PERCENT:
        if expected is Unit.PERCENT:
            return name, Unit.PERCENT, None, "as written"
        margin = MARGIN_OF.get(metric_base(name))
        of_sales = MARGIN_BASE_AFTER.match(text[cur.end :]) or AS_SHARE_OF_SALES.match(
            text[metric.end :]
        )
        if margin is None or not of_sales:
            return None
        return prefix + margin, Unit.PERCENT, None, "as written"
    renamed = currency_form(name)
    if renamed is None:
        return None
    name, expected = renamed, unit_of(renamed)
    if unit is Unit.CURRENCY_PER_SHARE and expected is Unit.CURRENCY:
        if metric_base(name) != "net income":
            return None
        return name.replace("net income", "earnings per share"), unit, currency, "as written"
    if expected is Unit.CURRENCY_PER_SHARE and unit is Unit.CURRENCY:
        if abs(amount.value) >= 1000:  # "EUR 5 million": not a per-share amount
            return None
        return name, expected, currency, "per share by the metric"
    if expected is not unit:
        return None
    if unit is Unit.CURRENCY_PER_SHARE:
        scale_how = "as written"
    return name, unit, currency, scale_how


def scale_how_of(cur: Amt) -> str:
    """How the scale of an amount was decided: written with it, after a parenthesised
    comparative ("EUR 84.6 ( 79.1 ) million"), or not written (a small currency amount without
    a scale word is more often a lost scale than a level in units)."""
    amount = cur.mention.amount
    if cur.mention.scale_end is not None:
        return "after a parenthesised comparative"
    if amount.scaled or amount.unit is not Unit.CURRENCY:
        return "as written"
    return "none written, small currency amount" if abs(amount.value) < 1000 else "none written"
