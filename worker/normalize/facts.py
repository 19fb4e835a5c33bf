"""A proposed fact (a model's raw strings) to a validated :class:`schemas.fact.Fact`. Pure.

:func:`build_fact` is the one place where a proposal becomes a fact: the value is parsed and scaled
here from the text itself, the proposer is never trusted with arithmetic or scaling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from schemas.errors import NormalizationError, validation_summary
from schemas.fact import Fact
from schemas.standards import (
    INCOME_METRICS,
    Unit,
    currency_form,
    is_known_metric,
    metric_base,
    unit_of,
)
from worker.normalize.amounts import (
    AMOUNT_RE,
    PER_SHARE,
    Amount,
    amount_from_match,
    parse_amount,
    parse_currency,
)
from worker.normalize.metrics import canonical_metric
from worker.normalize.period_text import period_from_text

_LOSS_BEFORE = re.compile(
    r"\bloss(?:es)?\s(?:\w+\s){0,3}?(?:of|was|were|totall?ed|amounted\sto|came\sto|narrowed\sto|"
    r"widened\sto|to|at)?\s?(?:approximately\s|about\s|some\s|nearly\s)?$",
    re.IGNORECASE,
)


def _locate(snippet: str, value_text: str) -> tuple[int, int]:
    i = snippet.find(value_text)
    if i >= 0:
        return i, i + len(value_text)
    # the same characters with the snippet's own spacing ("EUR 5.3  million")
    pattern = r"\s*".join(re.escape(ch) for ch in value_text if not ch.isspace())
    m = re.search(pattern, snippet, re.IGNORECASE)
    if m is None:
        raise NormalizationError(value_text, "value_text does not occur in the snippet")
    return m.start(), m.end()


@dataclass(slots=True)
class _Reading:
    """An amount as read at its place in the snippet: what the span and its neighbours say."""

    amount: Amount
    unit: Unit
    currency: str | None
    per_share: bool


def _read_amount(snippet: str, start: int, end: int, currency_hint: str | None) -> _Reading:
    """The amount at ``snippet[start:end]``, with a currency written just beside the span ("EUR"
    before "5.3 million") or, failing that, the hint."""
    amount = parse_amount(snippet[start:end])
    if amount.points:
        raise NormalizationError(snippet[start:end], "a change in points is not a level")
    unit, currency = amount.unit, amount.currency
    if currency is None and unit is not Unit.PERCENT:
        lo = max(0, start - 6)
        for m in AMOUNT_RE.finditer(snippet[lo : min(len(snippet), end + 12)]):
            if m.start() + lo <= start and m.end() + lo >= end:
                around, _, _ = amount_from_match(m)
                currency = around.currency
                if around.unit is Unit.CURRENCY_PER_SHARE:
                    unit = around.unit
                break
    if currency is None and unit is not Unit.PERCENT and currency_hint:
        currency = parse_currency(currency_hint)
    per_share = bool(re.match(PER_SHARE, snippet[end : end + 30]))
    return _Reading(amount, unit, currency, per_share or unit is Unit.CURRENCY_PER_SHARE)


def _unit_for(metric: str, reading: _Reading, value_text: str) -> tuple[str, Unit, str | None]:
    """(metric, unit, currency) once the metric's unit and the amount's agree, or raise."""
    unit, currency = reading.unit, reading.currency
    expected = unit_of(metric)
    if expected is Unit.PERCENT and unit is not Unit.PERCENT:
        renamed = currency_form(metric)
        if renamed is None:
            raise NormalizationError(value_text, f"{metric} is a percentage")
        metric, expected = renamed, unit_of(renamed)
    if expected is None:
        if unit is Unit.PERCENT:
            expected = Unit.PERCENT
        elif currency is not None:
            expected = Unit.CURRENCY_PER_SHARE if reading.per_share else Unit.CURRENCY
        else:
            expected = Unit.COUNT
    if expected is Unit.PERCENT:
        currency = None
    elif unit is Unit.PERCENT:
        raise NormalizationError(value_text, f"{metric} is not a percentage")
    elif expected in (Unit.CURRENCY, Unit.CURRENCY_PER_SHARE) and currency is None:
        raise NormalizationError(value_text, "no currency in the text and no currency hint")
    elif expected is Unit.COUNT:
        currency = None
    if expected is Unit.CURRENCY and reading.per_share:
        raise NormalizationError(value_text, f"{metric} is not a per-share amount")
    return metric, expected, currency


def build_fact(
    *,
    snippet: str,
    value_text: str,
    metric_text: str,
    period_text: str | None,
    company: str | None,
    currency_hint: str | None,
    company_hint: str | None = None,
    context: str = "",
) -> Fact:
    """Turn a proposed fact (raw strings) into a validated :class:`Fact` or raise
    :class:`NormalizationError`. The value is parsed and scaled here, never taken from a model."""
    start, end = _locate(snippet, value_text)
    reading = _read_amount(snippet, start, end, currency_hint)
    name = canonical_metric(metric_text)
    metric, unit, currency = _unit_for(name.metric, reading, value_text)
    value = reading.amount.value
    loss = name.loss or bool(_LOSS_BEFORE.search(snippet[max(0, start - 60) : start]))
    if metric_base(metric) in INCOME_METRICS and value > 0 and loss:
        value = -value
    who = _company(company, snippet, context) or (company_hint.strip() if company_hint else None)
    try:
        return Fact(
            company=who or None,
            metric=metric,
            metric_known=is_known_metric(metric),
            value=value,
            currency=currency,
            unit=unit,
            quarter=period_from_text(period_text),
            value_text=snippet[start:end],
            start=start,
            end=end,
        )
    except ValidationError as exc:
        reason = validation_summary(exc, limit=None, fields=False)
        raise NormalizationError(value_text, reason) from exc


def _company(company: str | None, snippet: str, context: str) -> str | None:
    """The proposed company if the text names it (never an invented name)."""
    if not company or not company.strip():
        return None
    name = company.strip()
    haystack = f"{context}\n{snippet}".lower()
    words = [w for w in re.findall(r"[\w&]+", name.lower()) if len(w) > 1]
    if words and any(w in haystack for w in words):
        return name
    return None
