"""Period-over-period changes: percent changes, the table, the largest moves (each period kind's
partners are tested with the period grammar, ``tests/unit/test_periods.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from export.comparisons import (
    POP_COLUMNS,
    largest_moves,
    percent_change,
    period_over_period,
)

T0 = datetime(2024, 8, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("previous", "current", "pct"),
    [
        ("100", "125", "25.00"),
        ("3", "4", "33.33"),
        ("3", "5", "66.67"),
        ("-100", "-50", "50.00"),  # a loss shrinking is a positive change
        ("-50", "-100", "-100.00"),
        ("100", "0", "-100.00"),
        ("-40", "0", "100.00"),
        ("0", "5", None),  # from zero
        ("-20", "30", None),  # loss to profit
        ("30", "-20", None),  # profit to loss
    ],
)
def test_percent_change(previous: str, current: str, pct: str | None) -> None:
    expected = Decimal(pct) if pct is not None else None
    assert percent_change(Decimal(previous), Decimal(current)) == expected


def fact(
    company: str | None,
    metric: str,
    value: str,
    period: str | None,
    currency: str | None = "USD",
    *,
    unit: str = "currency",
    at: datetime = T0,
    fact_id: str = "",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "company": company,
        "period": period,
        "metric": metric,
        "value": Decimal(value),
        "currency": currency,
        "unit": unit,
        "extracted_at": at,
        "fact_id": fact_id or f"{company}-{metric}-{period}-{currency}-{value}",
        **extra,
    }


def table(*facts: dict[str, Any]) -> pd.DataFrame:
    columns = list(dict.fromkeys(k for f in facts for k in f))
    return pd.DataFrame(
        {c: pd.Series([f.get(c) for f in facts], dtype=object) for c in columns}, columns=columns
    )


def rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in frame.itertuples(index=False)]


def test_same_quarter_a_year_earlier_is_compared() -> None:
    pop = period_over_period(
        table(
            fact("Tamarind Foods", "revenue", "1200000", "Q2 2023"),
            fact("Tamarind Foods", "revenue", "1500000", "Q2 2024"),
            fact("Halvorsen Marine", "net income", "-200000", "Q2 2023", "EUR"),
            fact("Halvorsen Marine", "net income", "300000", "Q2 2024", "EUR"),
        )
    )
    assert list(pop.columns) == list(POP_COLUMNS)
    assert rows(pop) == [
        (
            "Halvorsen Marine",
            "net income",
            "currency",
            "EUR",
            "year_over_year",
            "Q2 2023",
            "Q2 2024",
            Decimal("-200000"),
            Decimal("300000"),
            Decimal("500000"),
            None,  # loss to profit: no percent
        ),
        (
            "Tamarind Foods",
            "revenue",
            "currency",
            "USD",
            "year_over_year",
            "Q2 2023",
            "Q2 2024",
            Decimal("1200000"),
            Decimal("1500000"),
            Decimal("300000"),
            Decimal("25.00"),
        ),
    ]


def test_sequential_and_year_over_year_rows_side_by_side() -> None:
    pop = period_over_period(
        table(
            fact("A", "revenue", "80", "Q4 2023"),
            fact("A", "revenue", "100", "Q1 2024"),
            fact("A", "revenue", "110", "Q2 2024"),
            fact("A", "revenue", "90", "Q2 2023"),
            fact("A", "revenue", "400", "FY 2023"),
            fact("A", "revenue", "500", "FY 2024"),
            fact("A", "revenue", "0", "H2 2023"),
            fact("A", "revenue", "200", "H1 2024"),
            fact("A", "revenue", "150", "H1 2023"),
            fact("A", "revenue", "20", "9M 2023"),
            fact("A", "revenue", "30", "9M 2024"),
        )
    )
    assert [
        (r.comparison, r.previous_period, r.period, r.change, r.change_pct)
        for r in pop.itertuples(index=False)
    ] == [
        ("sequential", "H1 2023", "H2 2023", Decimal(-150), Decimal("-100.00")),
        ("sequential", "Q4 2023", "Q1 2024", Decimal(20), Decimal("25.00")),
        ("sequential", "Q1 2024", "Q2 2024", Decimal(10), Decimal("10.00")),
        ("year_over_year", "Q2 2023", "Q2 2024", Decimal(20), Decimal("22.22")),
        ("sequential", "H2 2023", "H1 2024", Decimal(200), None),  # from zero
        ("year_over_year", "H1 2023", "H1 2024", Decimal(50), Decimal("33.33")),
        ("year_over_year", "9M 2023", "9M 2024", Decimal(10), Decimal("50.00")),
        ("year_over_year", "FY 2023", "FY 2024", Decimal(100), Decimal("25.00")),
    ]


def test_fiscal_and_calendar_periods_are_not_compared() -> None:
    pop = period_over_period(
        table(
            fact("A", "revenue", "100", "Q4 2023"),
            fact("A", "revenue", "120", "Q4 FY2024"),
            fact("A", "revenue", "90", "Q4 FY2023"),
        )
    )
    assert [(r.previous_period, r.period) for r in pop.itertuples(index=False)] == [
        ("Q4 FY2023", "Q4 FY2024")
    ]


def test_currencies_and_units_are_never_mixed() -> None:
    pop = period_over_period(
        table(
            fact("A", "revenue", "100", "Q2 2023", "USD"),
            fact("A", "revenue", "95", "Q2 2024", "EUR"),
            fact("A", "earnings per share", "1.1", "Q2 2023", "USD", unit="currency_per_share"),
            fact("A", "earnings per share", "1.5", "Q2 2024", "USD", unit="currency"),
            fact("A", "revenue", "120", "Q2 2024", "USD"),
        )
    )
    assert rows(pop) == [
        (
            "A",
            "revenue",
            "currency",
            "USD",
            "year_over_year",
            "Q2 2023",
            "Q2 2024",
            Decimal(100),
            Decimal(120),
            Decimal(20),
            Decimal("20.00"),
        )
    ]


def test_companies_are_compared_by_canonical_name_and_latest_value() -> None:
    later = datetime(2024, 9, 1, tzinfo=UTC)
    pop = period_over_period(
        table(
            fact("Orion Outdoor Gear plc", "revenue", "10", "Q2 2023"),
            fact("Orion Outdoor Gear", "revenue", "12", "Q2 2024"),
            fact("ORION OUTDOOR GEAR", "revenue", "15", "Q2 2024", at=later),  # restated
        ).assign(company_canonical="Orion Outdoor Gear")
    )
    assert [(r.company, r.previous_value, r.value) for r in pop.itertuples(index=False)] == [
        ("Orion Outdoor Gear", Decimal(10), Decimal(15))
    ]


def test_percent_and_count_metrics_and_values_given_as_text() -> None:
    facts = table(
        fact("A", "gross margin", "40.5", "FY 2023", None, unit="percent"),
        fact("A", "gross margin", "42", "FY 2024", None, unit="percent"),
    )
    facts["value"] = ["40.5", 42.0]
    pop = period_over_period(facts)
    assert rows(pop) == [
        (
            "A",
            "gross margin",
            "percent",
            None,
            "year_over_year",
            "FY 2023",
            "FY 2024",
            Decimal("40.5"),
            Decimal("42.0"),
            Decimal("1.5"),
            Decimal("3.70"),
        )
    ]


def test_unknown_and_year_less_periods_and_no_facts_give_no_rows() -> None:
    assert (
        rows(
            period_over_period(
                table(fact("A", "revenue", "1", "Q4"), fact("A", "revenue", "2", None))
            )
        )
        == []
    )
    empty = period_over_period(pd.DataFrame(columns=["company", "period", "metric", "value"]))
    assert list(empty.columns) == list(POP_COLUMNS) and len(empty) == 0


def test_largest_year_over_year_moves_first() -> None:
    pop = period_over_period(
        table(
            fact("A", "revenue", "100", "Q2 2023"),
            fact("A", "revenue", "110", "Q2 2024"),  # +10 %
            fact("B", "revenue", "100", "Q2 2023"),
            fact("B", "revenue", "40", "Q2 2024"),  # -60 %
            fact("C", "net income", "-5", "Q2 2023"),
            fact("C", "net income", "5", "Q2 2024"),  # sign change: no percent, left out
            fact("D", "revenue", "100", "Q1 2024"),
            fact("D", "revenue", "300", "Q2 2024"),  # +200 % but sequential
            fact("E", "revenue", "200", "FY 2023"),
            fact("E", "revenue", "260", "FY 2024"),  # +30 %
        )
    )
    top = largest_moves(pop, 2)
    assert list(top.columns) == list(POP_COLUMNS)
    assert [(r.company, r.change_pct) for r in top.itertuples(index=False)] == [
        ("B", Decimal("-60.00")),
        ("E", Decimal("30.00")),
    ]
    assert len(largest_moves(pop)) == 3
    assert len(largest_moves(pop.iloc[0:0])) == 0


def test_reads_only_columns_the_facts_table_has() -> None:
    from export.tables import FACT_COLUMNS

    used = {"company", "period", "metric", "value", "currency", "unit", "extracted_at", "fact_id"}
    assert used <= set(FACT_COLUMNS)
