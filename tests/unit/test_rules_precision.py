"""The rules extractor on unseen kinds of sentence: the right period, sign and scope, or nothing.

Every sentence here is written for these tests; each stands for a kind of sentence, not for one
report.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.message import ReportMessage
from worker.extract import RulesExtractor
from worker.rules import extract_report
from worker.rules.company import find_company

Row = tuple[str, Decimal, str | None, str | None]


def facts(text: str) -> list[Row]:
    return [
        (f.metric, f.value, f.currency, f.quarter)
        for f in (rf.fact for rf in extract_report(text).facts)
    ]


def d(x: str) -> Decimal:
    return Decimal(x)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Net income was $81 million in Q3 2021, compared with $64 million in the prior "
            "quarter and $59 million in the year-ago quarter.",
            [
                ("net income", d("81000000"), "USD", "Q3 2021"),
                ("net income", d("64000000"), "USD", "Q2 2021"),
                ("net income", d("59000000"), "USD", "Q3 2020"),
            ],
        ),
        (
            "Harbourside plc reported operating profit of £4.8 million (2020: £4.2 million).",
            [
                ("operating income", d("4800000"), "GBP", None),
                ("operating income", d("4200000"), "GBP", "FY 2020"),
            ],
        ),
        (
            "Operating profit for the first half of 2009 was EUR 3.3 mn (H1 2008: EUR 2.1 mn).",
            [
                ("operating income", d("3300000"), "EUR", "H1 2009"),
                ("operating income", d("2100000"), "EUR", "H1 2008"),
            ],
        ),
        (
            "Net sales for 2021 were EUR 410 million against EUR 388 million in 2020.",
            [
                ("revenue", d("410000000"), "EUR", "FY 2021"),
                ("revenue", d("388000000"), "EUR", "FY 2020"),
            ],
        ),
        (
            "Revenue for the first half of 2022 was $3.1 billion versus $2.8 billion a year "
            "earlier.",
            [
                ("revenue", d("3100000000"), "USD", "H1 2022"),
                ("revenue", d("2800000000"), "USD", "H1 2021"),
            ],
        ),
        (
            "Operating profit in the third quarter rose to EUR 6.0 mn from EUR 4.1 mn in the "
            "corresponding period of 2019.",
            [
                ("operating income", d("6000000"), "EUR", "Q3"),
                ("operating income", d("4100000"), "EUR", "Q3 2019"),
            ],
        ),
        (
            "Kestrel reported a third-quarter net loss of EUR 9 million compared with a net "
            "profit of EUR 14 million in 2008.",
            [
                ("net income", d("-9000000"), "EUR", "Q3"),
                ("net income", d("14000000"), "EUR", "Q3 2008"),
            ],
        ),
        # no current period is stated: the comparison's period cannot be placed
        (
            "Operating profit rose to EUR 15.1 mn from EUR 12.6 mn in the corresponding period "
            "of 2019.",
            [("operating income", d("15100000"), "EUR", None)],
        ),
        (
            "Revenue for 2021 was $3.1 billion, up from $2.8 billion.",
            [
                ("revenue", d("3100000000"), "USD", "FY 2021"),
            ],
        ),
        # the year in a later clause is not the comparison's own
        (
            "Northwind made an operating profit of EUR 51.0 mn, up from EUR 43.7 mn, which made "
            "2007 its best year.",
            [("operating income", d("51000000"), "EUR", "FY 2007")],
        ),
    ],
)
def test_comparatives_get_their_own_period_or_none(text: str, expected: list[Row]) -> None:
    assert facts(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Operating cash flow was $912 million, $874 million and $801 million in 2017, 2016 "
            "and 2015, respectively.",
            [
                ("operating cash flow", d("912000000"), "USD", "FY 2017"),
                ("operating cash flow", d("874000000"), "USD", "FY 2016"),
                ("operating cash flow", d("801000000"), "USD", "FY 2015"),
            ],
        ),
        (
            "In 2021, revenue and net income were $5.1 million and $0.4 million, respectively.",
            [
                ("revenue", d("5100000"), "USD", "FY 2021"),
                ("net income", d("400000"), "USD", "FY 2021"),
            ],
        ),
        (
            "Total revenue for fiscal 2019 and 2018 was $52.3 million and $48.1 million, "
            "respectively.",
            [
                ("revenue", d("52300000"), "USD", "FY 2019"),
                ("revenue", d("48100000"), "USD", "FY 2018"),
            ],
        ),
        (
            "Operating cash flow was $912 million and $874 million in 2017, 2016 and 2015, "
            "respectively.",
            [],
        ),
        (
            "net revenues were $ 4.2 billion , $ 3.9 billion and $ 3.1 billion for 2008 , 2007 "
            "and 2006 .",
            [
                ("revenue", d("4200000000"), "USD", "FY 2008"),
                ("revenue", d("3900000000"), "USD", "FY 2007"),
                ("revenue", d("3100000000"), "USD", "FY 2006"),
            ],
        ),
        ("net revenues were $ 4.2 billion and $ 3.9 billion for 2008 , 2007 and 2006 .", []),
        (
            "as of december 31 , 2019 and 2018 , total assets were $ 5.1 billion and $ 4.8 "
            "billion , respectively .",
            [
                ("total assets", d("5100000000"), "USD", "2019-12-31"),
                ("total assets", d("4800000000"), "USD", "2018-12-31"),
            ],
        ),
        (
            "Revenue was $5.1 million and $4.4 million in the first quarters of 2021 and 2020, "
            "respectively.",
            [],
        ),
        (
            "Both operating profit and net sales for the six-month period rose , respectively , "
            "from EUR4 .1 m and EUR52 .7 m , as compared to the corresponding period in 2012 .",
            [
                ("operating income", d("4100000"), "EUR", "H1 2012"),
                ("revenue", d("52700000"), "EUR", "H1 2012"),
            ],
        ),
    ],
)
def test_respectively_lists_pair_in_order_or_abstain(text: str, expected: list[Row]) -> None:
    assert facts(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Brightwater Oyj reported a net loss of EUR 2.3 mn for 2019.",
            ("net income", d("-2300000"), "EUR", "FY 2019"),
        ),
        (
            "The company's operating loss was EUR 1.1 mn in the second quarter of 2020.",
            ("operating income", d("-1100000"), "EUR", "Q2 2020"),
        ),
        (
            "Loss before taxes was $5.2 million in fiscal 2019.",
            ("profit before tax", d("-5200000"), "USD", "FY 2019"),
        ),
        (
            "Kestrel AB swung to a pre-tax loss of SEK 40 mn in the fourth quarter of 2009.",
            ("profit before tax", d("-40000000"), "SEK", "Q4 2009"),
        ),
        (
            "In 2010 the company closed in the red with a net result of EUR 0.5 mn.",
            ("net income", d("-500000"), "EUR", "FY 2010"),
        ),
        (
            "In the first quarter of 2014 , the operating result closed in red with EUR 1.7 mn .",
            ("operating income", d("-1700000"), "EUR", "Q1 2014"),
        ),
        (
            "Loss per share was EUR 0.12 in 2018.",
            ("earnings per share", d("-0.12"), "EUR", "FY 2018"),
        ),
        (
            "Earnings per share in 2017 amounted to a loss of EUR 0.31.",
            ("earnings per share", d("-0.31"), "EUR", "FY 2017"),
        ),
    ],
)
def test_signs_given_by_words(text: str, expected: Row) -> None:
    assert facts(text) == [expected]


def test_from_a_loss_of_is_a_negative_comparative() -> None:
    assert facts(
        "Operating profit for 2009 was EUR 3.0 mn, up from a loss of EUR 1.2 mn in 2008."
    ) == [
        ("operating income", d("3000000"), "EUR", "FY 2009"),
        ("operating income", d("-1200000"), "EUR", "FY 2008"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Growth in 2021 was driven by higher Sensors net sales of $52.3 million.",
        "Services revenue grew by $6.1 million in 2021.",
        "The Marine segment reported operating profit of $ 12 million during fiscal 2015.",
        "In 2021, revenue in the Marine division was EUR 88 million.",
        "Cost of net revenue rose to $81.2 million for the year ended December 31, 2021.",
        "Income ( loss ) from discontinued operations for 2016 was a loss of $ 18 million.",
        "In the second quarter of 2015 , the hedging result came to a pretax profit of EUR 8 "
        "million.",
        "The main index rose 1.2 pct to 3,105.40 on turnover of 420.5 mln eur .",
        "Net loss for the fourth quarter of 2014 was EUR 1.4 mn smaller than a year before.",
        "Harrow , which holds a 70 percent stake in Vinter , said its sales reached 22.0 "
        "million euros last year .",
    ],
)
def test_parts_changes_and_other_entities_are_not_the_company_level(text: str) -> None:
    assert facts(text) == []


def test_a_flattened_table_is_read_with_the_headers_scale_and_columns() -> None:
    text = (
        "EUR million unless stated otherwise Q3/21 Q3/20 9M/21 9M/20 Net sales 142.0 120.4 "
        "411.7 365.2 Operating profit 12.1 9.8 30.2 25.0"
    )
    assert facts(text) == [
        ("revenue", d("142000000"), "EUR", "Q3 2021"),
        ("revenue", d("120400000"), "EUR", "Q3 2020"),
        ("revenue", d("411700000"), "EUR", "9M 2021"),
        ("revenue", d("365200000"), "EUR", "9M 2020"),
        ("operating income", d("12100000"), "EUR", "Q3 2021"),
        ("operating income", d("9800000"), "EUR", "Q3 2020"),
        ("operating income", d("30200000"), "EUR", "9M 2021"),
        ("operating income", d("25000000"), "EUR", "9M 2020"),
    ]


def test_table_rows_name_their_own_units_and_other_rows_are_left_out() -> None:
    text = (
        "MEUR 2019 2018 Net sales 1,204.5 1,150.2 Operating margin, % 8.1 7.4 Earnings per "
        "share, EUR 0.52 0.47 Order intake 1,300.1 1,100.0 Operating profit (3.2) 10.5"
    )
    assert facts(text) == [
        ("revenue", d("1204500000"), "EUR", "FY 2019"),
        ("revenue", d("1150200000"), "EUR", "FY 2018"),
        ("operating margin", d("8.1"), None, "FY 2019"),
        ("operating margin", d("7.4"), None, "FY 2018"),
        ("earnings per share", d("0.52"), "EUR", "FY 2019"),
        ("earnings per share", d("0.47"), "EUR", "FY 2018"),
        ("operating income", d("-3200000"), "EUR", "FY 2019"),
        ("operating income", d("10500000"), "EUR", "FY 2018"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        # a row with fewer cells than columns: which cell is which is not decided
        "EUR million Q3/21 Q3/20 9M/21 9M/20 Net sales 142.0 120.4 411.7 Operating profit 12.1",
        # no scale in the header: never 142.0 as 142 euros
        "Q3/21 Q3/20 Net sales 142.0 120.4 Operating profit 12.1 9.8",
    ],
)
def test_a_table_that_cannot_be_read_whole_gives_nothing(text: str) -> None:
    assert facts(text) == []


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("Revenue in fiscal 2019 was $1.4 billion.", "FY 2019"),
        ("FY19 revenue was $1.4 billion.", "FY 2019"),
        ("For the year ended 30 June 2019, revenue was AUD 88 million.", "FY 2019"),
        ("For the fiscal years ended june 30 , 2016 revenue was $ 181 million.", "FY 2016"),
        ("Net sales in 1-9/2008 were EUR 45.2 mn.", "9M 2008"),
        ("Net sales in January-September 2008 were EUR 45.2 mn.", "9M 2008"),
        ("Net sales in the last quarter of 2010 were EUR 12.5 mn.", "Q4 2010"),
        ("Net profit in the first half of 2009 was EUR 3.3 mn.", "H1 2009"),
        ("Last year, net sales were EUR 3.9 million.", "FY"),
        ("12 June 2014 - Its net sales were EUR 4.4 mn in the first quarter of 2014.", "Q1 2014"),
    ],
)
def test_periods_as_written(text: str, period: str) -> None:
    [(_, _, _, found)] = facts(text)
    assert found == period


def test_one_period_stated_for_several_amounts() -> None:
    assert facts(
        "Acme reported net income of $7.7 million and revenue of $42.1 million for Q2 2024."
    ) == [
        ("net income", d("7700000"), "USD", "Q2 2024"),
        ("revenue", d("42100000"), "USD", "Q2 2024"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Net sales were EUR 5.0 mn, and the company expects growth in 2010.",
        "Net sales were EUR 10.2 mn and the order book stood at EUR 5.1 mn at the end of 2010.",
        "Net sales were EUR 10.2 mn and cash was EUR 5.1 mn in 2010.",
    ],
)
def test_a_later_period_that_may_be_another_items_leaves_the_period_undecided(text: str) -> None:
    assert facts(text) == []


def test_the_prior_year_quarter_is_the_same_quarter_a_year_before() -> None:
    assert facts(
        "Diluted earnings per share were $1.12 in the fourth quarter of 2019 compared with $0.98 "
        "in the prior-year quarter."
    ) == [
        ("earnings per share", d("1.12"), "USD", "Q4 2019"),
        ("earnings per share", d("0.98"), "USD", "Q4 2018"),
    ]


@pytest.mark.parametrize(
    ("text", "value", "currency"),
    [
        ("Earnings per share were EUR1 .25 in 2008.", d("1.25"), "EUR"),
        ("Revenue was NOK3 .4 bn in 2008.", d("3400000000"), "NOK"),
        ("The dividend is AU 12 cents per share for 2019.", d("0.12"), "AUD"),
        ("Revenue was $ 2218 million in 2019.", d("2218000000"), "USD"),
        ("Revenue rose to euro52 .4 million in 2013.", d("52400000"), "EUR"),
        ("Revenue was EURO 1.9 billion in 2013.", d("1900000000"), "EUR"),
        ("In 2006 the lender earned a net profit of Lt 3.6 mn .", d("3600000"), "LTL"),
    ],
)
def test_amount_forms(text: str, value: Decimal, currency: str) -> None:
    [(_, found, cur, _)] = facts(text)
    assert (found, cur) == (value, currency)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # two values sharing one scale: the first one's scale is not decided
        ("Net sales were EUR 64.1 58.9 million in 2009.", []),
        # a comparative whose parentheses were lost is not a fact
        (
            "Operating cash flow was EUR 5.2 million EUR 4.9 million in 2012.",
            [("operating cash flow", d("5200000"), "EUR", "FY 2012")],
        ),
        (
            "Revenue in 2012 was CAD 50 million ( approximately EUR 34 million ).",
            [("revenue", d("50000000"), "CAD", "FY 2012")],
        ),
    ],
)
def test_amounts_side_by_side(text: str, expected: list[Row]) -> None:
    assert facts(text) == expected


@pytest.mark.parametrize(
    ("sentence", "name"),
    [
        ("3M reported net income of $1.2 billion for the first quarter of 2021.", "3M"),
        ("7-Eleven posted revenue of $22.4 billion in fiscal 2020.", "7-Eleven"),
        ("Company C12 reported revenue of EUR 4.0 mn in 2018.", "C12"),
        ("Swedish engineering group Lindqvist reports net sales of SEK 5.2 bn.", "Lindqvist"),
        ("Northwind , however , narrowed its net loss to EUR 4.2 mn.", "Northwind"),
        ("The Brightwater group posted sales of 61 million kroons for 2006 .", "Brightwater group"),
        ("Finnish maker Salvia Oy ( HEL : SLV2V ) said today its sales rose.", "Salvia Oy"),
        ("The Estonian dairy 's sales reached 22.0 million euros .", None),
        ("In Q3 2021 revenue was $5 million.", None),
        ("Prices increased by 5 % in 2010 .", None),
        ("Demand improved in the second half .", None),
    ],
)
def test_company_names(sentence: str, name: str | None) -> None:
    assert find_company(sentence) == name


def test_amounts_left_unassigned_are_counted() -> None:
    text = (
        "Revenue for 2021 was $3.1 billion, up from $2.8 billion. Services revenue grew by "
        "$6.1 million."
    )
    result = extract_report(text)
    assert len(result.facts) == 1
    assert (result.amounts, result.unassigned) == (3, 2)


def test_the_rules_extractor_reports_the_unassigned_count() -> None:
    message = ReportMessage.model_construct(
        report_id="r1",
        raw_text="Revenue for 2021 was $3.1 billion, up from $2.8 billion.",
        company_hint=None,
    )
    [extraction] = RulesExtractor().extract([message]).values()
    assert len(extraction.facts) == 1
    assert extraction.unassigned_amounts == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # in a forecast, the level it starts from is an actual
        (
            "Net sales for 2011 are seen to reach EUR 61.0 m , up from EUR 58.2 m in 2010 .",
            [("revenue", d("58200000"), "EUR", "FY 2010")],
        ),
        (
            "The company expects revenue to rise to $5 billion in 2012 from $4.2 billion in 2011.",
            [("revenue", d("4200000000"), "USD", "FY 2011")],
        ),
        # "larger-than-expected" describes an actual
        (
            "Alder posted a larger-than-expected pretax loss of EUR12m in the second quarter "
            "of 2013 .",
            [("profit before tax", d("-12000000"), "EUR", "Q2 2013")],
        ),
        # a period after "compared to" is the comparison's, not the amount's
        (
            "Gross margin as a percent of net sales was 34 percent , flat compared to fiscal "
            "2012 .",
            [("gross margin", d("34"), None, None)],
        ),
        # a stray currency code between the metric and its amount
        (
            "Group revenue EUR rose to EUR 860.2 mn in January-June 2013 .",
            [("revenue", d("860200000"), "EUR", "H1 2013")],
        ),
        (
            "Earnings per share EPS for 2012 came to a loss of EUR0 .31 .",
            [("earnings per share", d("-0.31"), "EUR", "FY 2012")],
        ),
        (
            "Operating profit excluding restructuring costs grew to EUR 14.5 million in 2008 .",
            [("adjusted operating income", d("14500000"), "EUR", "FY 2008")],
        ),
        (
            "Cash provided by operations was $ 3.2 billion in 2016 , $ 2.9 billion in 2015 and "
            "$ 2.4 billion in 2014 .",
            [
                ("operating cash flow", d("3200000000"), "USD", "FY 2016"),
                ("operating cash flow", d("2900000000"), "USD", "FY 2015"),
                ("operating cash flow", d("2400000000"), "USD", "FY 2014"),
            ],
        ),
    ],
)
def test_more_kinds_of_sentence(text: str, expected: list[Row]) -> None:
    assert facts(text) == expected


def test_uk_style_comparatives_for_earnings_per_share_in_pence() -> None:
    assert facts(
        "The Group's profit before tax for the year was £45.6m (2018: £40.2m), and basic "
        "earnings per share was 21.3p (2018: 19.8p)."
    ) == [
        ("profit before tax", d("45600000"), "GBP", None),
        ("profit before tax", d("40200000"), "GBP", "FY 2018"),
        ("earnings per share", d("0.213"), "GBP", None),
        ("earnings per share", d("0.198"), "GBP", "FY 2018"),
    ]


def test_a_profit_as_a_percentage_of_revenue_is_its_margin() -> None:
    assert facts(
        "Gross profit as a percentage of revenue was 42% in fiscal 2019 compared to 40% in "
        "fiscal 2018."
    ) == [
        ("gross margin", d("42"), None, "FY 2019"),
        ("gross margin", d("40"), None, "FY 2018"),
    ]


def test_a_dividend_proposed_for_a_year_and_its_sterling_equivalent() -> None:
    assert facts(
        "The final dividend proposed for 2016 of 4.10 cents per Ordinary Share is equivalent to "
        "3.15 pence per Ordinary Share."
    ) == [("dividend per share", d("0.041"), "USD", "FY 2016")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Vantor swung to a pretax loss of EUR31m in the third quarter of 2012 from a "
            "year-earlier profit of EUR18m .",
            [
                ("profit before tax", d("-31000000"), "EUR", "Q3 2012"),
                ("profit before tax", d("18000000"), "EUR", "Q3 2011"),
            ],
        ),
        (
            "Operating profit for the first half was EUR9 .1 m , falling short of the EUR11 .4 m "
            "it made in the same period of 2013 .",
            [
                ("operating income", d("9100000"), "EUR", "H1"),
                ("operating income", d("11400000"), "EUR", "H1 2013"),
            ],
        ),
        (
            "Operating result including non-recurring items rose to EUR 52mn in 2015 .",
            [("operating income", d("52000000"), "EUR", "FY 2015")],
        ),
        (
            "Revenue in the second quarter is expected to be EUR3 -4 m , as compared to EUR5 .2 m "
            "in the second quarter 2014 .",
            [("revenue", d("5200000"), "EUR", "Q2 2014")],
        ),
        (
            "Operating income was EUR -12.3 mn in 2016 .",
            [
                ("operating income", d("-12300000"), "EUR", "FY 2016"),
            ],
        ),
    ],
)
def test_comparisons_and_reported_figures(text: str, expected: list[Row]) -> None:
    assert facts(text) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "Revenue",
                "net loss",
                "of",
                "was",
                "EUR",
                "$",
                "5.3",
                "12 ,000",
                "million",
                "mn",
                "(",
                ")",
                "2020:",
                "in",
                "Q3 2021",
                "respectively",
                ",",
                "and",
                "from",
                "a year earlier",
                "segment",
                "%",
                "-",
                ".",
            ]
        ),
        max_size=40,
    )
)
def test_any_sequence_of_words_gives_valid_facts_and_a_count(tokens: list[str]) -> None:
    result = extract_report(" ".join(tokens))
    assert 0 <= result.unassigned <= result.amounts
    for rf in result.facts:
        assert rf.snippet.text[rf.fact.start : rf.fact.end] == rf.fact.value_text
