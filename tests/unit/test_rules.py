"""The rules extractor: general rules on sentences written for these tests."""

from __future__ import annotations

from decimal import Decimal

import pytest

from worker.rules import extract_facts, find_company

SEED = "Company XYZ reported a net income of $5.3 million for Q1 2024."


def facts(text: str) -> list[tuple[object, ...]]:
    return [
        (f.company, f.metric, f.value, f.currency, f.unit.value, f.quarter)
        for f in (rf.fact for rf in extract_facts(text))
    ]


def test_seed_example_is_extracted() -> None:
    [rf] = extract_facts(SEED)
    fact = rf.fact
    assert (fact.company, fact.metric, fact.value, fact.currency, fact.unit, fact.quarter) == (
        "XYZ",
        "net income",
        Decimal(5300000),
        "USD",
        "currency",
        "Q1 2024",
    )
    assert fact.value_text == "$5.3 million"
    assert rf.snippet.text[fact.start : fact.end] == "$5.3 million"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Revenue rose to $10.2 billion in Q1 2024, up from $9.1 billion in Q1 2023.",
            [
                (None, "revenue", 10200000000, "USD", "currency", "Q1 2024"),
                (None, "revenue", 9100000000, "USD", "currency", "Q1 2023"),
            ],
        ),
        (
            "Globex plc said its net loss widened to EUR 4.2 mn in the first half of 2023 from "
            "EUR 1.1 mn a year earlier.",
            [
                ("Globex plc", "net income", -4200000, "EUR", "currency", "H1 2023"),
                ("Globex plc", "net income", -1100000, "EUR", "currency", "H1 2022"),
            ],
        ),
        (
            "In fiscal 2023, Initech net sales were SEK 4.5 bn and operating profit was "
            "SEK 310 mn.",
            [
                ("Initech", "revenue", 4500000000, "SEK", "currency", "FY 2023"),
                ("Initech", "operating income", 310000000, "SEK", "currency", "FY 2023"),
            ],
        ),
        (
            "We recorded net earnings of $12.0 million, or $0.45 per diluted share, for the "
            "three months ended June 30, 2024.",
            [
                (None, "net income", 12000000, "USD", "currency", "Q2 2024"),
                (
                    None,
                    "earnings per share",
                    Decimal("0.45"),
                    "USD",
                    "currency_per_share",
                    "Q2 2024",
                ),
            ],
        ),
        (
            "Gross margin was 41.5% in the fourth quarter of fiscal 2024 compared with 39.0% in "
            "the fourth quarter of fiscal 2023.",
            [
                (None, "gross margin", Decimal("41.5"), None, "percent", "Q4 FY2024"),
                (None, "gross margin", 39, None, "percent", "Q4 FY2023"),
            ],
        ),
        (
            "Adjusted EBITDA for the year ended December 31, 2023 was $88 million.",
            [(None, "adjusted ebitda", 88000000, "USD", "currency", "FY 2023")],
        ),
        (
            "The board proposed a dividend of 12.5p per share for 2023.",
            [
                (
                    None,
                    "dividend per share",
                    Decimal("0.125"),
                    "GBP",
                    "currency_per_share",
                    "FY 2023",
                )
            ],
        ),
        (
            "Operating profit was EUR 3.0 million, corresponding to an operating margin of 6.1 % "
            "of net sales.",
            [
                (None, "operating income", 3000000, "EUR", "currency", None),
                (None, "operating margin", Decimal("6.1"), None, "percent", None),
            ],
        ),
        (
            "Net cash used in operating activities was $2.5 million in 2022.",
            [(None, "operating cash flow", -2500000, "USD", "currency", "FY 2022")],
        ),
        (
            "Total assets were $5.6 billion as of December 31, 2023.",
            [(None, "total assets", 5600000000, "USD", "currency", "2023-12-31")],
        ),
    ],
)
def test_facts_are_found_with_metric_value_and_period(
    text: str, expected: list[tuple[object, ...]]
) -> None:
    assert facts(text) == expected


def test_company_named_at_the_top_applies_to_later_sentences() -> None:
    text = (
        "Acme Corp. today announced results for the fourth quarter of fiscal 2024.\n\n"
        "Revenue was $1.2 billion, up from $1.1 billion in the year-ago quarter. "
        "Net income was $90 million."
    )
    assert facts(text) == [
        ("Acme Corp.", "revenue", 1200000000, "USD", "currency", "Q4 FY2024"),
        ("Acme Corp.", "revenue", 1100000000, "USD", "currency", "Q4 FY2023"),
        ("Acme Corp.", "net income", 90000000, "USD", "currency", "Q4 FY2024"),
    ]


def test_company_hint_is_used_when_the_text_names_none() -> None:
    [rf] = extract_facts("Revenue was $3 million in 2023.", company_hint="Hinted Ltd")
    assert rf.fact.company == "Hinted Ltd"


def test_period_is_null_when_the_text_gives_none() -> None:
    assert facts("Revenue was $3 million.") == [(None, "revenue", 3000000, "USD", "currency", None)]


@pytest.mark.parametrize(
    "text",
    [
        # changes, growth rates, ranges, guidance and estimates
        "Revenue increased by $7.5 million compared with 2022.",
        "Net income rose 12% in 2023.",
        "The company expects revenue of $50 million to $55 million for fiscal 2025.",
        "Sales beat the consensus estimate of EUR 900 mn.",
        # segments, components and non-vocabulary amounts
        "Retail segment revenue was $40 million in 2023.",
        "Mobile phone sales rose to 5 billion euros in 2009.",
        "Working capital decreased primarily due to $3.1 billion of cash used for buybacks.",
        "Income tax expense was $4.2 million in 2023.",
        "Order intake was EUR 120 million in Q2 2024.",
        # non-financial numbers
        "On March 15, 2024, the company had 12,000 employees and 3.5 million customers.",
        "For questions call +1 (555) 123-4567 or visit us at 100 Main Street, Suite 2024.",
        "The company repurchased 2.5 million shares in 2023; shares closed at $12.50.",
        "Net income is reported in 2023 and 2022.",
    ],
)
def test_non_facts_are_ignored(text: str) -> None:
    assert facts(text) == []


def test_currency_conversion_in_parentheses_is_not_a_fact() -> None:
    text = "Net profit rose to EUR 10.0 million ( USD 13.2 m ) in the second quarter of 2010."
    assert facts(text) == [(None, "net income", 10000000, "EUR", "currency", "Q2 2010")]


def test_bare_comparative_without_period_is_left_out() -> None:
    text = "In 2010, net sales were EUR 50,000 thousand ( EUR 45,000 thousand )."
    assert facts(text) == [(None, "revenue", 50000000, "EUR", "currency", "FY 2010")]


@pytest.mark.parametrize(
    ("sentence", "name"),
    [
        ("Danish Kolding Tools reports its operating profit increased.", "Kolding Tools"),
        ("Vestfjord Group 's operating profit increased.", "Vestfjord Group"),
        ("Apple Inc. reported record revenue.", "Apple Inc."),
        ("OSLO ( Wire ) - Fjordline Shipping reported a profit.", "Fjordline Shipping"),
        ("Net sales increased to EUR 5 mn.", None),
        ("The group 's net profit rose.", None),
    ],
)
def test_company_names_as_written(sentence: str, name: str | None) -> None:
    assert find_company(sentence) == name
