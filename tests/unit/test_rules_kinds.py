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


# --- a loss named by a word earlier in the clause ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Operating result turned to a profit of EUR 1.4 mn in 2010 from a loss of EUR 2.2 mn "
            "in 2009 .",
            {
                row("operating income", "1400000", "EUR", "FY 2010"),
                row("operating income", "-2200000", "EUR", "FY 2009"),
            },
        ),
        (
            "Pre-tax result improved to a profit of GBP 3.3 million in 2008 , against a loss of "
            "GBP 0.9 million in 2007 .",
            {
                row("profit before tax", "3300000", "GBP", "FY 2008"),
                row("profit before tax", "-900000", "GBP", "FY 2007"),
            },
        ),
        (
            "The loss after taxes for January-June 2009 amounted to SEK 0.9 million .",
            {row("net income", "-900000", "SEK", "H1 2009")},
        ),
        (
            "Net loss attributable to shareholders was $12.4 million in 2018.",
            {row("net income", "-12400000", "USD", "FY 2018")},
        ),
    ],
)
def test_a_loss_named_before_the_amount_makes_it_negative(text: str, expected: set[Row]) -> None:
    assert facts(text) == expected


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "Operating result was a loss of EUR 2.5 mn in 2011 compared with EUR 1.1 mn in 2010 .",
            row("operating income", "-2500000", "EUR", "FY 2011"),
        ),
        (
            "In 2016, EBITDA came to a loss of USD 7.0 million, versus USD 3.2 million in 2015.",
            row("ebitda", "-7000000", "USD", "FY 2016"),
        ),
    ],
)
def test_a_loss_word_of_the_first_amount_does_not_decide_the_sign_of_the_comparison(
    text: str, kept: Row
) -> None:
    assert facts(text) == {kept}
    [withheld] = extract_report(text).withheld
    assert withheld.reason == "sign: loss word of an earlier amount"


# --- prior-period values in labelled parentheses ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Revenue increased to EUR 1,204.5 million ( prior year : EUR 1,098.2 million ) in the "
            "2018 financial year .",
            {
                row("revenue", "1204500000", "EUR", "FY 2018"),
                row("revenue", "1098200000", "EUR", "FY 2017"),
            },
        ),
        (
            "Earnings per share amounted to CHF 1.45 (previous year: CHF 1.31) for 2017.",
            {
                row("earnings per share", "1.45", "CHF", "FY 2017"),
                row("earnings per share", "1.31", "CHF", "FY 2016"),
            },
        ),
        (
            "Operating profit was GBP 31.6 million (2016: GBP 27.0 million) for the year 2017.",
            {
                row("operating income", "31600000", "GBP", "FY 2017"),
                row("operating income", "27000000", "GBP", "FY 2016"),
            },
        ),
        (
            "Operating cash flow amounted to EUR 18.9 million in 2011 ( 2010 : EUR 15.2 million ; "
            "2009 : EUR 9.7 million ) .",
            {
                row("operating cash flow", "18900000", "EUR", "FY 2011"),
                row("operating cash flow", "15200000", "EUR", "FY 2010"),
                row("operating cash flow", "9700000", "EUR", "FY 2009"),
            },
        ),
        (
            "Net sales totalled USD 12.0 million (2012: USD 11.1 million, 2011: USD 9.9 million) "
            "in 2013.",
            {
                row("revenue", "12000000", "USD", "FY 2013"),
                row("revenue", "11100000", "USD", "FY 2012"),
                row("revenue", "9900000", "USD", "FY 2011"),
            },
        ),
    ],
)
def test_labelled_parentheses_give_each_prior_value_its_period(
    text: str, expected: set[Row]
) -> None:
    assert facts(text) == expected


# --- a part's amount inside a sentence about the total -------------------------------------------


@pytest.mark.parametrize(
    ("text", "total"),
    [
        (
            "Operating profit in 2016 was USD 77 million , of which USD 52 million came from the "
            "Marine business .",
            row("operating income", "77000000", "USD", "FY 2016"),
        ),
        (
            "Net sales were EUR 500 million in 2015, including approximately EUR 120 million "
            "from acquisitions.",
            row("revenue", "500000000", "EUR", "FY 2015"),
        ),
        (
            "Net sales in 2013 were SEK 2.3 billion , and Industrial Solutions net sales were SEK "
            "1.1 billion .",
            row("revenue", "2300000000", "SEK", "FY 2013"),
        ),
        (
            "EBITDA for the first quarter of 2019 was GBP 40.2 million; Northern Europe EBITDA "
            "was GBP 18.5 million.",
            row("ebitda", "40200000", "GBP", "Q1 2019"),
        ),
        (
            "Net sales increased to $412.6 million in fiscal 2019, due to an increase in "
            "Industrial net sales of $38.1 million.",
            row("revenue", "412600000", "USD", "FY 2019"),
        ),
    ],
)
def test_a_parts_amount_beside_the_total_is_not_stored_as_the_total(text: str, total: Row) -> None:
    assert facts(text) == {total}


# --- a recorded value beside a forecast ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "recorded"),
    [
        (
            "The company expects net sales to grow to about EUR 160 million in 2012 , compared "
            "with EUR 142.3 million recorded in 2011 .",
            row("revenue", "142300000", "EUR", "FY 2011"),
        ),
        (
            "Operating profit for 2014 is expected to exceed the NOK 21.5 million reached in 2013.",
            row("operating income", "21500000", "NOK", "FY 2013"),
        ),
        (
            "Management forecasts EBITDA of SEK 95 million for 2016 , after SEK 88 million in "
            "2015 .",
            row("ebitda", "88000000", "SEK", "FY 2015"),
        ),
        (
            "Revenue this year is seen at around $2.4 billion, versus the $2.1 billion recorded "
            "last year.",
            row("revenue", "2100000000", "USD", "FY"),
        ),
    ],
)
def test_the_recorded_value_beside_a_forecast_is_a_fact_and_the_forecast_is_not(
    text: str, recorded: Row
) -> None:
    assert facts(text) == {recorded}


@pytest.mark.parametrize(
    "text",
    [
        "Revenue exceeded EUR 1 billion in 2010 .",
        "The company expects operating profit to exceed USD 50 million in 2012.",
        "Net sales for 2012 are expected to be EUR 300 million, up from 2011.",
    ],
)
def test_thresholds_and_forecasts_alone_are_not_facts(text: str) -> None:
    assert facts(text) == set()


# --- "zero" and "nil" as values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Operating profit for the fourth quarter of 2009 was zero , compared with EUR 1.1 "
            "million a year earlier .",
            {
                row("operating income", "0", "EUR", "Q4 2009"),
                row("operating income", "1100000", "EUR", "Q4 2008"),
            },
        ),
        (
            "Basic earnings per share were zero in 2015, against $0.08 in 2014.",
            {
                row("earnings per share", "0", "USD", "FY 2015"),
                row("earnings per share", "0.08", "USD", "FY 2014"),
            },
        ),
        (
            "Pretax profit came to nil in the first half of 2012 ( H1 2011 : GBP 2.6 million ) .",
            {
                row("profit before tax", "0", "GBP", "H1 2012"),
                row("profit before tax", "2600000", "GBP", "H1 2011"),
            },
        ),
    ],
)
def test_zero_in_words_is_a_value_in_the_currency_of_the_sentence(
    text: str, expected: set[Row]
) -> None:
    assert facts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Net income for 2012 was zero .",  # no currency named
        "EBITDA was zero in 2011 , while sales were EUR 4 million and USD 5 million .",
        "Net debt was zero at the end of 2010 .",
        "The company issued zero-coupon notes in 2011 .",
    ],
)
def test_zero_without_one_currency_or_a_vocabulary_metric_is_not_stored(text: str) -> None:
    assert {f for f in facts(text) if f[1] == 0} == set()


# --- tables flattened into one line, periods with abbreviated years ------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Key figures 9M '11 9M '10 Q3 '11 Q3 '10 , EUR m Net sales 312.4 287.0 108.9 96.5",
            {
                row("revenue", "312400000", "EUR", "9M 2011"),
                row("revenue", "287000000", "EUR", "9M 2010"),
                row("revenue", "108900000", "EUR", "Q3 2011"),
                row("revenue", "96500000", "EUR", "Q3 2010"),
            },
        ),
        (
            "USD million Q4 '19 Q4 '18 FY '19 Net income 96 88 371",
            {
                row("net income", "96000000", "USD", "Q4 2019"),
                row("net income", "88000000", "USD", "Q4 2018"),
                row("net income", "371000000", "USD", "FY 2019"),
            },
        ),
        (
            "H1 ’12 H1 ’11: SEK m EBITDA 112 101 Operating profit (4) 59",
            {
                row("ebitda", "112000000", "SEK", "H1 2012"),
                row("ebitda", "101000000", "SEK", "H1 2011"),
                row("operating income", "-4000000", "SEK", "H1 2012"),
                row("operating income", "59000000", "SEK", "H1 2011"),
            },
        ),
        (
            "EUR thousand Q2 '14 Q2 '13 Order intake 15,002 14,110 Revenue 14,532 13,870",
            {
                row("revenue", "14532000", "EUR", "Q2 2014"),
                row("revenue", "13870000", "EUR", "Q2 2013"),
            },
        ),
    ],
)
def test_a_flattened_table_with_abbreviated_years_is_read_in_the_header_scale(
    text: str, expected: set[Row]
) -> None:
    assert facts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Q1 '15 Q1 '14 Net sales 80.2 75.5",  # no scale: 80.2 of what
        "Q1 '15 Q1 '14 , EUR m Net sales 80.2 75.5 70.1",  # more cells than columns
    ],
)
def test_a_table_whose_scale_or_columns_are_not_decided_gives_nothing(text: str) -> None:
    assert facts(text) == set()


# --- the company after an opening phrase, or with unusual characters -----------------------------


@pytest.mark.parametrize(
    ("text", "company"),
    [
        (
            "According to Statistics Finland , Kesko closed the year 2010 with net sales of EUR "
            "9.4 bn .",
            "Kesko",
        ),
        (
            "According to CEO Jane Smith, Brightwater posted operating profit of GBP 12 million "
            "for 2015.",
            "Brightwater",
        ),
        (
            "In the third quarter of 2010 , Ålandsbanken Abp reported net profit of EUR 3.1 mn .",
            "Ålandsbanken Abp",
        ),
        (
            "Despite weak demand , Åkerholm & Sons Ltd recorded turnover of SEK 415 million in "
            "2010 .",
            "Åkerholm & Sons Ltd",
        ),
        (
            "HELSINKI ( Nordic Business Wire ) - Kone closed 2006 with net sales of EUR 3.4 bn .",
            "Kone",
        ),
    ],
)
def test_the_company_is_found_after_an_opening_phrase_and_with_unusual_letters(
    text: str, company: str
) -> None:
    [rf] = extract_report(text).facts
    assert rf.fact.company == company


def test_the_source_named_in_an_opening_phrase_is_not_the_company() -> None:
    [rf] = extract_report(
        "According to Reuters, the company's net sales were EUR 5 mn in 2011."
    ).facts
    assert rf.fact.company is None


# --- the period of a comparison is not the current value's ---------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Operating profit totalled EUR 5.2 mn , while in 2009 it was EUR 3.1 mn .",
        "Net sales grew 5 % to EUR 75 mn , exceeding the 2009 level .",
        "Operating profit was USD 5.2 million, or twice the level of 2009.",
        "Net sales were SEK 75 million , the highest since 2007 .",
        "Net income stood at GBP 5 million, an improvement on the 2008 result.",
        "Revenue was $88 million, compared with the 2017 figure of $80 million.",
    ],
)
def test_a_period_named_as_a_point_of_reference_is_not_the_current_values(text: str) -> None:
    years = {"FY 2007", "FY 2008", "FY 2009", "FY 2017"}
    current = {f for f in facts(text) if f[1] in (Decimal(5200000), Decimal(75000000))}
    current |= {f for f in facts(text) if f[1] in (Decimal(5000000), Decimal(88000000))}
    assert not {f for f in current if f[3] in years}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "EBITDA amounted to EUR 3.3 million compared to EUR 2.9 million in the first half of "
            "2013 .",
            {row("ebitda", "3300000", "EUR", None), row("ebitda", "2900000", "EUR", "H1 2013")},
        ),
        (
            "Net profit reached NOK 14.2 million, up from NOK 11.0 million in 2010.",
            {
                row("net income", "14200000", "NOK", None),
                row("net income", "11000000", "NOK", "FY 2010"),
            },
        ),
        (
            "Operating profit was SEK 120 million in 2011 versus SEK 98 million in 2010 .",
            {
                row("operating income", "120000000", "SEK", "FY 2011"),
                row("operating income", "98000000", "SEK", "FY 2010"),
            },
        ),
    ],
)
def test_each_side_of_a_comparison_takes_its_own_period(text: str, expected: set[Row]) -> None:
    assert facts(text) == expected


# --- fiscal-year phrasing on cash-flow and dividend sentences -----------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "For fiscal year 2018 , the Board declared dividends of $1.24 per share .",
            row("dividend per share", "1.24", "USD", "FY 2018"),
        ),
        (
            "Dividends declared per share were CAD 1.08 in fiscal 2017.",
            row("dividend per share", "1.08", "CAD", "FY 2017"),
        ),
        (
            "In fiscal 2020, cash flow from operations was $1.2 billion.",
            row("operating cash flow", "1200000000", "USD", "FY 2020"),
        ),
        (
            "Net cash provided by operating activities was EUR 845 million for fiscal year 2019.",
            row("operating cash flow", "845000000", "EUR", "FY 2019"),
        ),
        (
            "Pretax loss widened to GBP 14.2 million in the year to March 2012 .",
            row("profit before tax", "-14200000", "GBP", "FY 2012"),
        ),
        (
            "Revenue for the 12 months to September 2015 rose to AUD 600 million .",
            row("revenue", "600000000", "AUD", "FY 2015"),
        ),
    ],
)
def test_fiscal_year_phrasing_names_the_year(text: str, expected: Row) -> None:
    assert facts(text) == {expected}


def test_dividends_paid_in_total_are_not_a_dividend_per_share() -> None:
    assert facts("The company paid dividends of EUR 45 million in 2010 .") == set()


# --- prior values listed together ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "EBITDA for the second quarter of 2015 was $80 million , compared to $75 million in "
            "the previous quarter and $70 million in the second quarter of 2014 .",
            {
                row("ebitda", "80000000", "USD", "Q2 2015"),
                row("ebitda", "75000000", "USD", "Q1 2015"),
                row("ebitda", "70000000", "USD", "Q2 2014"),
            },
        ),
        (
            "Net income was EUR 34.0 million for the fourth quarter of 2016, versus EUR 29.5 "
            "million in the prior quarter and EUR 27.1 million in the year-ago quarter.",
            {
                row("net income", "34000000", "EUR", "Q4 2016"),
                row("net income", "29500000", "EUR", "Q3 2016"),
                row("net income", "27100000", "EUR", "Q4 2015"),
            },
        ),
        (
            "Operating profit was SEK 12 million ( 1-9/2010 ) and SEK 9 million ( 1-9/2009 ) .",
            {
                row("operating income", "12000000", "SEK", "9M 2010"),
                row("operating income", "9000000", "SEK", "9M 2009"),
            },
        ),
        (
            "Revenue was $1.21 billion in 2018, $1.09 billion in 2017 and $0.98 billion in 2016.",
            {
                row("revenue", "1210000000", "USD", "FY 2018"),
                row("revenue", "1090000000", "USD", "FY 2017"),
                row("revenue", "980000000", "USD", "FY 2016"),
            },
        ),
    ],
)
def test_prior_values_listed_together_each_take_their_period(text: str, expected: set[Row]) -> None:
    assert facts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The company 's order backlog was EUR 80 mn at the end of 2009 , while net sales were "
        "EUR 60 mn .",
        "Net debt stood at USD 40 million in 2011, and operating profit was USD 9 million.",
    ],
)
def test_the_period_of_a_non_vocabulary_item_is_not_lent_to_the_metric_after_it(
    text: str,
) -> None:
    assert {f[3] for f in facts(text)} <= {None}


# --- "adjusted" carried over or dropped ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Adjusted EBITDA was EUR 45.3 million in 2019 and net income EUR 12.0 million .",
            {
                row("adjusted ebitda", "45300000", "EUR", "FY 2019"),
                row("net income", "12000000", "EUR", "FY 2019"),
            },
        ),
        (
            "Net income was $12.0 million in 2019, and adjusted EBITDA was $45.3 million.",
            {
                row("net income", "12000000", "USD", "FY 2019"),
                row("adjusted ebitda", "45300000", "USD", "FY 2019"),
            },
        ),
        (
            "Operating profit , excluding one-off items , was SEK 9.9 million in 2012 .",
            {row("adjusted operating income", "9900000", "SEK", "FY 2012")},
        ),
        (
            "Adjusted for non-recurring items , operating profit was EUR 5.1 mn in 2010 .",
            {row("adjusted operating income", "5100000", "EUR", "FY 2010")},
        ),
        (
            "EPS excluding items was $1.10 in 2015, and revenue was $2.0 billion.",
            {
                row("adjusted earnings per share", "1.10", "USD", "FY 2015"),
                row("revenue", "2000000000", "USD", "FY 2015"),
            },
        ),
        (
            "Underlying EBIT amounted to GBP 44 million in 2017 ; reported EBIT was GBP 39 "
            "million .",
            {
                row("adjusted operating income", "44000000", "GBP", "FY 2017"),
                row("operating income", "39000000", "GBP", "FY 2017"),
            },
        ),
    ],
)
def test_adjusted_belongs_to_the_metric_it_qualifies(text: str, expected: set[Row]) -> None:
    assert facts(text) == expected


def test_after_an_opening_adjustment_phrase_only_the_first_metric_is_decided() -> None:
    text = "Excluding one-off items , operating profit was EUR 5.1 mn and net sales EUR 50.2 mn ."
    assert facts(text) == {row("adjusted operating income", "5100000", "EUR", None)}
    [withheld] = extract_report(text).withheld
    assert withheld.reason == "adjusted: undecided after an opening phrase"


@pytest.mark.parametrize(
    ("text", "company"),
    [
        ("SÃ¤Ã¤stÃ¶pankki reported net profit of EUR 3.0 mn for 2010 .", "SÃ¤Ã¤stÃ¶pankki"),
        ("Ã…landsbanken Abp posted net profit of EUR 3.0 mn for 2010 .", "Ã…landsbanken Abp"),
        ("F-Secure 's net sales rose to EUR 30.1 mn in 2010 .", "F-Secure"),
    ],
)
def test_a_name_written_in_mis_decoded_letters_or_with_a_hyphen_is_kept_as_written(
    text: str, company: str
) -> None:
    [rf] = extract_report(text).facts
    assert rf.fact.company == company


@pytest.mark.parametrize(
    "text",
    [
        "Product revenue was $120 million and service revenue $80 million in 2016.",
        "North America revenue was EUR 300 million in 2018 .",
        "Subscription revenue for fiscal 2018 was $800 million.",
        "Nordic net sales amounted to SEK 40 million in 2009 .",
    ],
)
def test_a_product_line_or_region_before_the_metric_is_a_part(text: str) -> None:
    assert facts(text) == set()


def test_a_division_named_with_a_possessive_is_not_the_company() -> None:
    text = (
        "The Group 's net sales were EUR 400 mn in 2010 , and the Paper division 's net sales "
        "EUR 150 mn ."
    )
    [rf] = extract_report(text).facts
    assert (rf.fact.company, rf.fact.value) == (None, Decimal(400000000))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Revenue grew 12 percent to (  x20ac ) 3.6 billion ( US$ 4.5 billion ) .",
            row("revenue", "3600000000", "EUR", None),
        ),
        (
            "Operating profit rose to x20ac 12.5 million in 2009 .",
            row("operating income", "12500000", "EUR", "FY 2009"),
        ),
    ],
)
def test_a_mis_decoded_euro_sign_is_the_euro(text: str, expected: Row) -> None:
    assert facts(text) == {expected}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Acme 's net sales in the first quarter are expected to be EUR 10-12 mn , as compared "
            "to EUR 14.5 mn in the first quarter of 2008 .",
            {row("revenue", "14500000", "EUR", "Q1 2008")},
        ),
        ("Net sales were USD 10-12 million in 2009.", set()),
        (
            "Earnings per share were EUR -0.04 -0.06 .",
            {row("earnings per share", "-0.04", "EUR", None)},
        ),
    ],
)
def test_a_range_written_with_one_scale_is_never_a_level(text: str, expected: set[Row]) -> None:
    assert facts(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Statutory net profit after tax for FY19 was $5.1 million, compared to $4.2 million "
            "in FY18.",
            {
                row("net income", "5100000", "USD", "FY 2019"),
                row("net income", "4200000", "USD", "FY 2018"),
            },
        ),
        (
            "Underlying EBITDA was AUD 5.1 million in FY19.",
            {row("adjusted ebitda", "5100000", "AUD", "FY 2019")},
        ),
    ],
)
def test_a_period_written_as_one_token_after_in_is_a_period_not_a_component(
    text: str, expected: set[Row]
) -> None:
    assert facts(text) == expected
    assert {rf.fact.company for rf in extract_report(text).facts} == {None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "the company 2019s operating income for 2016 was $ 320 million .",
            {row("operating income", "320000000", "USD", "FY 2016")},
        ),
        (
            "the company 2019s net revenues were $ 2.1 billion in 2012 .",
            {row("revenue", "2100000000", "USD", "FY 2012")},
        ),
        ("the wireless segment 2019s operating income was $ 50 million in 2016 .", set()),
    ],
)
def test_a_possessive_flattened_to_2019s_is_a_possessive(text: str, expected: set[Row]) -> None:
    assert facts(text) == expected
