"""The kinds of sentence the rules extractor reads, each tested over varied metrics, currencies,
orders and punctuation (the sentences are the project's own): a kind is read right, or not read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from worker.rules import extract_report

Row = tuple[str, Decimal, str | None, str | None]


def facts(text: str) -> set[Row]:
    """(metric, value, currency, period) of every fact stored at the default confidence."""
    return {
        (rf.fact.metric, rf.fact.value, rf.fact.currency, rf.fact.quarter)
        for rf in extract_report(text).facts
    }


def row(metric: str, value: str, currency: str | None, period: str | None) -> Row:
    return (metric, Decimal(value), currency, period)


# --- a scale word written after a parenthesised comparative -----------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Net sales for 2014 were EUR 84.6 ( 79.1 ) million .",
            row("revenue", "84600000", "EUR", "FY 2014"),
        ),
        (
            "Operating result in the third quarter of 2010 was SEK -4.3 ( +1.2 ) million.",
            row("operating income", "-4300000", "SEK", "Q3 2010"),
        ),
        (
            "The loss before taxes for 2008 was NOK 2.1 ( profit 0.6 ) billion .",
            row("profit before tax", "-2100000000", "NOK", "FY 2008"),
        ),
        (
            "In 2019, EBITDA amounted to USD 61.2 (USD 58.0) mn.",
            row("ebitda", "61200000", "USD", "FY 2019"),
        ),
        (
            "Earnings per share for 2011 were EUR 0.42 ( 0.60 ) per share .",
            row("earnings per share", "0.42", "EUR", "FY 2011"),
        ),
    ],
)
def test_a_scale_after_the_parenthesised_comparative_scales_the_level(
    text: str, expected: Row
) -> None:
    assert facts(text) == {expected}


def test_the_parenthesised_figure_before_the_scale_is_never_a_fact_of_its_own() -> None:
    found = facts("Pre-tax profit for the third quarter of 2010 was GBP 12.8 (9.4) million.")
    assert found == {row("profit before tax", "12800000", "GBP", "Q3 2010")}


def test_a_per_share_figure_after_a_scaled_parenthesis_keeps_its_metric() -> None:
    text = "Net profit for 2011 was NOK 7.9 ( 11.3 ) million , or NOK 0.42 ( 0.60 ) per share ."
    assert facts(text) == {
        row("net income", "7900000", "NOK", "FY 2011"),
        row("earnings per share", "0.42", "NOK", "FY 2011"),
    }


@pytest.mark.parametrize(
    "text",
    [
        "Net sales for 2014 were EUR 84.6 .",
        "Operating profit for the third quarter of 2010 was SEK 4.3 ( 1.2 ) .",
    ],
)
def test_a_small_currency_amount_whose_scale_is_not_written_is_not_stored(text: str) -> None:
    assert facts(text) == set()
