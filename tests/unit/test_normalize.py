"""Amounts, currencies, periods and metric names as the standard defines them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import NormalizationError
from schemas.standards import Unit
from worker.normalize import (
    build_fact,
    canonical_metric,
    find_amounts,
    parse_amount,
    parse_currency,
    parse_number,
    period_from_text,
)


@pytest.mark.parametrize(
    ("text", "value", "currency", "unit"),
    [
        ("$5.3 million", "5300000", "USD", Unit.CURRENCY),
        ("$(9.8) million", "-9800000", "USD", Unit.CURRENCY),
        ("($1.2 million)", "-1200000", "USD", Unit.CURRENCY),
        ("(45.0)", "-45", None, Unit.COUNT),
        ("15.94p", "0.1594", "GBP", Unit.CURRENCY),
        ("12.5 pence", "0.125", "GBP", Unit.CURRENCY),
        ("25 cents", "0.25", "USD", Unit.CURRENCY),
        ("₹1,234 crore", "12340000000", "INR", Unit.CURRENCY),
        ("Rs 5 lakh", "500000", "INR", Unit.CURRENCY),
        ("EUR 2.01 mn", "2010000", "EUR", Unit.CURRENCY),
        ("EUR297 .3 m", "297300000", "EUR", Unit.CURRENCY),
        ("EUR995 ,000", "995000", "EUR", Unit.CURRENCY),
        ("EUR0 .30", "0.3", "EUR", Unit.CURRENCY),
        ("1.234,5", "1234.5", None, Unit.COUNT),
        ("45.2%", "45.2", None, Unit.PERCENT),
        ("33 %", "33", None, Unit.PERCENT),
        ("19.2 pct", "19.2", None, Unit.PERCENT),
        ("3.64 billion euros", "3640000000", "EUR", Unit.CURRENCY),
        ("8.6 mln euro", "8600000", "EUR", Unit.CURRENCY),
        ("1.002 bln eur", "1002000000", "EUR", Unit.CURRENCY),
        ("SEK 32.266 bn", "32266000000", "SEK", Unit.CURRENCY),
        ("NOK16 .4 bn", "16400000000", "NOK", Unit.CURRENCY),
        ("3.398 million lats", "3398000", "LVL", Unit.CURRENCY),
        ("negative EUR 18.1 mn", "-18100000", "EUR", Unit.CURRENCY),
        ("C$4.5bn", "4500000000", "CAD", Unit.CURRENCY),
        ("HK$120m", "120000000", "HKD", Unit.CURRENCY),
        ("US$ 7 million", "7000000", "USD", Unit.CURRENCY),
        ("£11.1 million", "11100000", "GBP", Unit.CURRENCY),
        ("¥3 trillion", "3000000000000", "JPY", Unit.CURRENCY),
        ("RMB 10 million", "10000000", "CNY", Unit.CURRENCY),
        ("TEUR 1,234", "1234000", "EUR", Unit.CURRENCY),
        ("5,3 Mio. €", "5300000", "EUR", Unit.CURRENCY),
        ("$2b", "2000000000", "USD", Unit.CURRENCY),
        ("$750k", "750000", "USD", Unit.CURRENCY),
        ("$ 1.18 per share", "1.18", "USD", Unit.CURRENCY_PER_SHARE),
        ("nil", "0", None, Unit.COUNT),
        ("2 million Swiss francs", "2000000", "CHF", Unit.CURRENCY),
    ],
)
def test_amount_forms_parse_to_the_standard_value(
    text: str, value: str, currency: str | None, unit: Unit
) -> None:
    amount = parse_amount(text)
    assert amount.value == Decimal(value)
    assert amount.currency == currency
    assert amount.unit is unit


@pytest.mark.parametrize("text", ["", "abc", "$", "(5", "1,2,3,4", "five dollars"])
def test_unparseable_amounts_raise_with_the_raw_text(text: str) -> None:
    with pytest.raises(NormalizationError) as info:
        parse_amount(text)
    assert info.value.raw == text


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("$", "USD"),
        ("US$", "USD"),
        ("C$", "CAD"),
        ("A$", "AUD"),
        ("HK$", "HKD"),
        ("€", "EUR"),
        ("£", "GBP"),
        ("¥", "JPY"),
        ("₹", "INR"),
        ("CHF", "CHF"),
        ("eur", "EUR"),
        ("dollars", "USD"),
        ("euros", "EUR"),
        ("pounds sterling", "GBP"),
        ("yen", "JPY"),
        ("rupees", "INR"),
        ("RMB", "CNY"),
        ("yuan", "CNY"),
    ],
)
def test_currencies_map_to_iso_codes(raw: str, code: str) -> None:
    assert parse_currency(raw) == code


def test_unknown_currency_is_an_error() -> None:
    with pytest.raises(NormalizationError):
        parse_currency("doubloons")


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Q1 2024", "Q1 2024"),
        ("first quarter of 2024", "Q1 2024"),
        ("1Q24", "Q1 2024"),
        ("Q1-2024", "Q1 2024"),
        ("Q3'23", "Q3 2023"),
        ("three months ended March 31, 2024", "Q1 2024"),
        ("fiscal 2023", "FY 2023"),
        ("full year 2023", "FY 2023"),
        ("FY24", "FY 2024"),
        ("year ended December 31, 2023", "FY 2023"),
        ("year ended 31 March 2024", "FY 2024"),
        ("fourth quarter of fiscal 2024", "Q4 FY2024"),
        ("Q4 FY2024", "Q4 FY2024"),
        ("H1 2024", "H1 2024"),
        ("first half of 2024", "H1 2024"),
        ("six months ended June 30, 2024", "H1 2024"),
        ("9M 2024", "9M 2024"),
        ("the first nine months of 2010", "9M 2010"),
        ("nine months ended September 30, 2024", "9M 2024"),
        ("January-September 2010", "9M 2010"),
        ("January-June 2010", "H1 2010"),
        ("April to June 2010", "Q2 2010"),
        ("January-December 2008", "FY 2008"),
        ("fiscal 2005-06, ended October 31, 2006", "FY 2006"),
        ("2017-18", "FY 2018"),
        ("the last quarter of 2010", "Q4 2010"),
        ("fourth quarter", "Q4"),
        ("as of December 31, 2023", "2023-12-31"),
        ("in 2005", "FY 2005"),
    ],
)
def test_periods_get_their_label(text: str, label: str) -> None:
    assert period_from_text(text) == label


@pytest.mark.parametrize("text", [None, "", "null"])
def test_no_period_is_none(text: str | None) -> None:
    assert period_from_text(text) is None


@pytest.mark.parametrize("text", ["soon", "June 13, 2019", "2015 to 2018"])
def test_dates_and_year_ranges_are_not_periods(text: str) -> None:
    with pytest.raises(NormalizationError):
        period_from_text(text)


@pytest.mark.parametrize(
    ("text", "metric", "known"),
    [
        ("net profit", "net income", True),
        ("profit attributable to shareholders", "net income", True),
        ("Sales", "revenue", True),
        ("turnover", "revenue", True),
        ("net sales", "revenue", True),
        ("EPS", "earnings per share", True),
        ("diluted earnings per share", "earnings per share", True),
        ("Non-GAAP EPS", "adjusted earnings per share", True),
        ("operating profit excluding non-recurring items", "adjusted operating income", True),
        ("Unlevered free cashflow", "adjusted free cash flow", True),
        ("Consolidated adjusted EBITDA", "adjusted ebitda", True),
        ("cash from operations", "operating cash flow", True),
        ("pre-tax profit", "profit before tax", True),
        ("order intake", "order intake", False),
    ],
)
def test_metric_names_map_to_the_vocabulary(text: str, metric: str, known: bool) -> None:
    name = canonical_metric(text)
    assert (name.metric, name.known) == (metric, known)


def test_seed_fact_is_built_from_raw_strings() -> None:
    snippet = "Company XYZ reported a net income of $5.3 million for Q1 2024."
    fact = build_fact(
        snippet=snippet,
        value_text="$5.3 million",
        metric_text="net income",
        period_text="Q1 2024",
        company="XYZ",
        currency_hint=None,
    )
    assert fact.value == Decimal(5300000)
    assert (fact.company, fact.metric, fact.currency, fact.unit, fact.quarter) == (
        "XYZ",
        "net income",
        "USD",
        Unit.CURRENCY,
        "Q1 2024",
    )
    assert snippet[fact.start : fact.end] == "$5.3 million"


def test_a_loss_is_a_negative_income_metric() -> None:
    fact = build_fact(
        snippet="The group posted a net loss of EUR 3 million in 2023.",
        value_text="EUR 3 million",
        metric_text="net loss",
        period_text="2023",
        company=None,
        currency_hint=None,
        company_hint="Acme",
    )
    assert fact.value == Decimal(-3000000)
    assert fact.company == "Acme"
    assert fact.quarter == "FY 2023"


def test_currency_hint_applies_only_when_the_text_has_none() -> None:
    fact = build_fact(
        snippet="Revenue was 12.5 million in Q2 2024.",
        value_text="12.5 million",
        metric_text="revenue",
        period_text="Q2 2024",
        company=None,
        currency_hint="SEK",
    )
    assert fact.currency == "SEK"
    fact = build_fact(
        snippet="Revenue was EUR 12.5 million in Q2 2024.",
        value_text="EUR 12.5 million",
        metric_text="revenue",
        period_text="Q2 2024",
        company=None,
        currency_hint="SEK",
    )
    assert fact.currency == "EUR"


def test_invented_company_is_not_trusted() -> None:
    fact = build_fact(
        snippet="Revenue was $4 million in 2023.",
        value_text="$4 million",
        metric_text="revenue",
        period_text="2023",
        company="Contoso",
        currency_hint=None,
    )
    assert fact.company is None


def test_value_text_absent_from_snippet_is_rejected() -> None:
    with pytest.raises(NormalizationError):
        build_fact(
            snippet="Revenue was $4 million in 2023.",
            value_text="$5 million",
            metric_text="revenue",
            period_text=None,
            company=None,
            currency_hint=None,
        )


def test_percent_metric_with_a_currency_amount_is_rejected() -> None:
    with pytest.raises(NormalizationError):
        build_fact(
            snippet="Operating margin was $4 million.",
            value_text="$4 million",
            metric_text="operating margin",
            period_text=None,
            company=None,
            currency_hint=None,
        )


def test_gross_margin_in_currency_is_gross_profit() -> None:
    fact = build_fact(
        snippet="Gross margin was $2.3 billion in fiscal 2024.",
        value_text="$2.3 billion",
        metric_text="gross margin",
        period_text="fiscal 2024",
        company=None,
        currency_hint=None,
    )
    assert (fact.metric, fact.unit, fact.value) == ("gross profit", Unit.CURRENCY, 2300000000)


def test_unknown_metric_is_kept_and_marked() -> None:
    fact = build_fact(
        snippet="Order intake was EUR 40 million in 2023.",
        value_text="EUR 40 million",
        metric_text="order intake",
        period_text="2023",
        company=None,
        currency_hint=None,
    )
    assert (fact.metric, fact.metric_known) == ("order intake", False)


@pytest.mark.parametrize(
    "text", ["in 2024", "on June 13, 2019", "call +1 (555) 123-4567", "12,000 employees", "Q1 2024"]
)
def test_numbers_without_currency_or_percent_are_not_amounts(text: str) -> None:
    assert find_amounts(text) == []


# ---------------------------------------------------------------- property tests

_SCALES = [
    ("", 1),
    (" thousand", 10**3),
    (" million", 10**6),
    ("m", 10**6),
    (" mn", 10**6),
    (" bn", 10**9),
    (" billion", 10**9),
    (" crore", 10**7),
    ("k", 10**3),
]
_CURRENCIES = [
    ("$", None, "USD"),
    ("EUR ", None, "EUR"),
    ("€", None, "EUR"),
    (None, " EUR", "EUR"),
    ("£", None, "GBP"),
    (None, " euros", "EUR"),
    ("SEK ", None, "SEK"),
    ("₹", None, "INR"),
    (None, " dollars", "USD"),
]


def _group(digits: str, sep: str) -> str:
    out: list[str] = []
    while len(digits) > 3:
        out.insert(0, digits[-3:])
        digits = digits[:-3]
    out.insert(0, digits)
    return sep.join(out)


def render(value: Decimal, style: str, places: int) -> str:
    """The number part as written in one of several conventions."""
    text = f"{value:.{places}f}"
    whole, _, frac = text.partition(".")
    if style == "plain":
        return text
    if style == "comma":
        return _group(whole, ",") + ("." + frac if frac else "")
    if style == "european":
        return _group(whole, ".") + "," + (frac or "0")
    if style == "swiss":
        return _group(whole, "'") + ("." + frac if frac else "")
    if style == "nbsp":
        return _group(whole, "\u00a0") + ("." + frac if frac else "")
    raise AssertionError(style)


@given(
    cents=st.integers(min_value=0, max_value=10**11),
    places=st.integers(min_value=0, max_value=2),
    style=st.sampled_from(["plain", "comma", "european", "swiss", "nbsp"]),
    scale=st.sampled_from(_SCALES),
    currency=st.sampled_from(_CURRENCIES),
    negative=st.sampled_from(["", "parens", "minus"]),
)
def test_rendered_amounts_parse_back_to_the_same_value(
    cents: int,
    places: int,
    style: str,
    scale: tuple[str, int],
    currency: tuple[str | None, str | None, str],
    negative: str,
) -> None:
    value = (Decimal(cents) / 100).quantize(Decimal(1).scaleb(-places))
    number = render(value, style, places)
    if negative == "parens":
        number = f"({number})"
    prefix, suffix, code = currency
    text = f"{prefix or ''}{number}{scale[0]}{suffix or ''}"
    if negative == "minus":
        text = "-" + text
    amount = parse_amount(text)
    expected = value * scale[1]
    if negative and value != 0:
        expected = -expected
    assert amount.value == expected, text
    assert amount.currency == code


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False))
def test_parse_number_reads_english_grouping(value: Decimal) -> None:
    assert parse_number(render(value, "comma", 2)) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("EUR -24.5 mn", "-24500000"), ("$-5", "-5"), ("EUR -0.07", "-0.07")],
)
def test_a_minus_after_the_currency_is_a_negative(text: str, value: str) -> None:
    assert parse_amount(text).value == Decimal(value)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("the first six months of 2009", "H1 2009"),
        ("the twelve-month period of 2011", "FY 2011"),
        ("1-9/2008", "9M 2008"),
        ("January-September 2008", "9M 2008"),
        ("the last quarter of 2010", "Q4 2010"),
        ("the fiscal years ended june 30 , 2016", "FY 2016"),
    ],
)
def test_more_periods_as_written(text: str, label: str) -> None:
    assert period_from_text(text) == label
