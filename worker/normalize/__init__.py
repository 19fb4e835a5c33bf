"""Normalization: amounts, currencies, periods and metric names as the standard defines them. Pure.

- :mod:`worker.normalize.amounts`: numbers, currencies, scales, sub-units, percentages.
- :mod:`worker.normalize.period_text`: periods named in text, to labels of :mod:`schemas.periods`.
- :mod:`worker.normalize.metrics`: metric names, and the words that make one adjusted or a loss.
- :mod:`worker.normalize.facts`: :func:`build_fact`, a proposed fact to a validated one.

Every function takes text and returns values (``Decimal`` for money) or raises
:class:`schemas.errors.NormalizationError` with the raw text and the reason.
"""

from worker.normalize.amounts import (
    AMOUNT_RE,
    Amount,
    AmountMention,
    find_amounts,
    parse_amount,
    parse_currency,
    parse_number,
)
from worker.normalize.facts import build_fact
from worker.normalize.metrics import MetricName, canonical_metric, is_loss_form
from worker.normalize.period_text import PeriodMention, find_dates, find_periods, period_from_text

__all__ = [
    "AMOUNT_RE",
    "Amount",
    "AmountMention",
    "MetricName",
    "PeriodMention",
    "build_fact",
    "canonical_metric",
    "find_amounts",
    "find_dates",
    "find_periods",
    "is_loss_form",
    "parse_amount",
    "parse_currency",
    "parse_number",
    "period_from_text",
]
