"""The standard as data, and the Fact validation that enforces it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from schemas.fact import Fact
from schemas.periods import is_period_label
from schemas.standards import (
    CURRENCIES,
    CURRENCY_SYMBOLS,
    CURRENCY_WORDS,
    LABELLED_METRICS,
    METRIC_SYNONYMS,
    METRICS,
    SUBUNITS,
    Unit,
    is_known_metric,
    metric_base,
    unit_of,
)


def test_every_synonym_table_entry_names_a_metric_of_the_vocabulary() -> None:
    assert set(METRIC_SYNONYMS) <= set(METRICS)
    assert set(METRICS) >= LABELLED_METRICS


def test_no_written_form_maps_to_two_metrics() -> None:
    seen: dict[str, str] = {}
    for metric, forms in METRIC_SYNONYMS.items():
        for form in forms:
            assert seen.setdefault(form, metric) == metric, form


def test_currency_tables_give_iso_codes() -> None:
    codes = set(CURRENCY_SYMBOLS.values()) | set(CURRENCY_WORDS.values())
    codes |= {c for c in SUBUNITS.values() if c}
    assert codes <= CURRENCIES
    assert CURRENCY_SYMBOLS["$"] == "USD"


@pytest.mark.parametrize(
    ("metric", "known", "unit"),
    [
        ("revenue", True, Unit.CURRENCY),
        ("adjusted ebitda", True, Unit.CURRENCY),
        ("adjusted earnings per share", True, Unit.CURRENCY_PER_SHARE),
        ("gross margin", True, Unit.PERCENT),
        ("order intake", False, None),
    ],
)
def test_metric_lookup(metric: str, known: bool, unit: Unit | None) -> None:
    assert is_known_metric(metric) is known
    assert unit_of(metric) == unit


def test_adjusted_prefix_is_stripped_for_the_base_metric() -> None:
    assert metric_base("adjusted operating income") == "operating income"


@pytest.mark.parametrize(
    "label",
    [
        "Q1 2024",
        "H1 2024",
        "9M 2024",
        "FY 2023",
        "Q4 FY2024",
        "H1 FY2021",
        "Q4",
        "FY",
        "2023-12-31",
    ],
)
def test_period_labels_of_the_grammar(label: str) -> None:
    assert is_period_label(label)


@pytest.mark.parametrize("label", ["Q5 2024", "FY FY2024", "2024", "first quarter", "Q1 24"])
def test_labels_outside_the_grammar(label: str) -> None:
    assert not is_period_label(label)


def _fact(**kw: object) -> Fact:
    base: dict[str, object] = {
        "metric": "revenue",
        "value": Decimal(1),
        "currency": "USD",
        "unit": "currency",
        "value_text": "$1",
    }
    base.update(kw)
    return Fact.model_validate(base)


@pytest.mark.parametrize(
    "bad",
    [
        {"currency": None},
        {"currency": "XXX"},
        {"unit": "percent"},
        {"quarter": "early 2024"},
        {"metric": "order intake"},
        {"metric": "gross margin", "unit": "percent", "currency": "USD"},
        {"value": Decimal("NaN")},
    ],
)
def test_invalid_facts_are_rejected_with_a_reason(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _fact(**bad)


def test_unknown_metric_marked_unknown_is_accepted() -> None:
    fact = _fact(metric="order intake", metric_known=False)
    assert fact.metric_known is False
