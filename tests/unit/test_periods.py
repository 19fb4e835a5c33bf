"""Period labels: parse, format, move by years and steps, order."""

from __future__ import annotations

import pytest

from schemas.periods import (
    format_label,
    is_period_label,
    parse_label,
    previous,
    shift_steps,
    shift_years,
    sort_key,
    with_year,
    year_ago,
)


@pytest.mark.parametrize(
    ("sub", "year", "fiscal", "label"),
    [
        ("Q1", 2024, False, "Q1 2024"),
        ("Q4", 2024, True, "Q4 FY2024"),
        ("FY", 2023, False, "FY 2023"),
        ("FY", 2023, True, "FY 2023"),
        ("H1", None, False, "H1"),
        ("9M", 2020, True, "9M FY2020"),
    ],
)
def test_labels_are_formatted_by_the_grammar(
    sub: str, year: int | None, fiscal: bool, label: str
) -> None:
    assert format_label(sub, year, fiscal) == label
    assert is_period_label(label)


@pytest.mark.parametrize(
    ("label", "kind", "basis", "year", "sub"),
    [
        ("Q3 2021", "quarter", "calendar", 2021, "Q3"),
        ("Q4 FY2024", "quarter", "fiscal", 2024, "Q4"),
        ("H2 2023", "half", "calendar", 2023, "H2"),
        ("9M 2008", "nine months", "calendar", 2008, "9M"),
        ("FY 2019", "year", "", 2019, "FY"),
        ("Q4", "quarter", "calendar", None, "Q4"),
        ("2024-03-31", "quarter end", "", 2024, ""),
        ("2024-02-15", "date", "", 2024, ""),
        ("sometime", "", "", None, ""),
    ],
)
def test_labels_are_parsed_into_their_parts(
    label: str, kind: str, basis: str, year: int | None, sub: str
) -> None:
    p = parse_label(label)
    assert (p.kind, p.basis, p.year, p.sub) == (kind, basis, year, sub)


@pytest.mark.parametrize(
    ("label", "previous_label", "year_ago_label"),
    [
        ("Q1 2024", "Q4 2023", "Q1 2023"),
        ("Q2 2024", "Q1 2024", "Q2 2023"),
        ("Q3 2021", "Q2 2021", "Q3 2020"),
        ("Q4 2024", "Q3 2024", "Q4 2023"),
        ("H1 2024", "H2 2023", "H1 2023"),
        ("H2 2023", "H1 2023", "H2 2022"),
        ("9M 2024", "9M 2023", "9M 2023"),
        ("FY 2024", "FY 2023", "FY 2023"),
        ("Q1 FY2025", "Q4 FY2024", "Q1 FY2024"),
        ("Q3 FY2025", "Q2 FY2025", "Q3 FY2024"),
        ("H1 FY2021", "H2 FY2020", "H1 FY2020"),
        ("H2 FY2021", "H1 FY2021", "H2 FY2020"),
        ("9M FY2020", "9M FY2019", "9M FY2019"),
        # quarter-end balances
        ("2024-03-31", "2023-12-31", "2023-03-31"),
        ("2024-06-30", "2024-03-31", "2023-06-30"),
        ("2024-09-30", "2024-06-30", "2023-09-30"),
        ("2024-12-31", "2024-09-30", "2023-12-31"),
        # other dates: a year earlier only; 29 February has no partner
        ("2024-05-15", None, "2023-05-15"),
        ("2024-02-29", None, None),
        # nothing to compare with
        ("Q4", None, None),
        ("FY", None, None),
        ("FY FY2024", None, None),
        ("Q5 2024", None, None),
        ("2024-13-01", None, None),
        ("", None, None),
        (None, None, None),
        # before the year 1
        ("Q1 0001", None, None),
        ("FY 0001", None, None),
        ("0001-03-31", None, None),
    ],
)
def test_sequential_and_year_over_year_partners(
    label: str | None, previous_label: str | None, year_ago_label: str | None
) -> None:
    assert previous(label) == previous_label
    assert year_ago(label) == year_ago_label


def test_steps_and_years_move_both_ways() -> None:
    assert shift_steps("Q4 2023", 2) == "Q2 2024"
    assert shift_years("H1 2009", 1) == "H1 2010"
    assert with_year("Q3", 2007) == "Q3 2007"
    assert with_year("Q4 FY2024", 2022) == "Q4 FY2022"
    assert with_year("2024-03-31", 2020) is None
    assert shift_steps("2024-12-31", 1) == "2025-03-31"
    assert shift_steps("Q4 9999", 1) is None
    assert shift_years("2024-06-30", 7976) is None


def test_labels_sort_chronologically_undated_and_unknown_last() -> None:
    labels = [
        "FY 2024",
        "Q4 2023",
        "H2 2023",
        "Q1 2024",
        "9M 2023",
        "FY 2023",
        "H1 2024",
        "Q2 2024",
        "Q3 2023",
        "2024-03-31",
        "Q4",
        "odd",
        "FY",
        "Q1 2023",
    ]
    ordered = sorted(labels, key=lambda s: sort_key(s))
    assert ordered == [
        "Q1 2023",
        "Q3 2023",
        "9M 2023",
        "Q4 2023",
        "H2 2023",
        "FY 2023",
        "2024-03-31",
        "Q1 2024",
        "Q2 2024",
        "H1 2024",
        "FY 2024",
        "Q4",
        "FY",
        "odd",
    ]


@pytest.mark.parametrize(
    ("earlier", "later", "consecutive"),
    [
        ("Q1 2024", "Q2 2024", True),
        ("Q4 2023", "Q1 2024", True),
        ("Q1 2024", "Q3 2024", False),
        ("Q1 2023", "Q1 2024", False),
        ("H1 2024", "H2 2024", True),
        ("H2 2023", "H1 2024", True),
        ("FY 2022", "FY 2023", True),
        ("9M 2023", "9M 2024", True),
        ("Q3 FY2024", "Q4 FY2024", True),
        ("Q4 FY2024", "Q1 FY2025", True),
        ("2023-12-31", "2024-03-31", True),
        ("2024-03-31", "2024-09-30", False),
    ],
)
def test_consecutive_periods_of_one_kind(earlier: str, later: str, consecutive: bool) -> None:
    a, b = parse_label(earlier), parse_label(later)
    assert a.series == b.series
    assert a.step is not None and b.step is not None
    assert (b.step - a.step == 1) is consecutive


@pytest.mark.parametrize(
    ("a", "b"),
    [("Q4 2024", "Q4 FY2024"), ("Q2 2024", "H1 2024"), ("FY 2024", "9M 2024")],
)
def test_different_kinds_of_period_are_different_series(a: str, b: str) -> None:
    assert parse_label(a).series != parse_label(b).series


@pytest.mark.parametrize("label", ["Q4", "FY", "2024-02-15", "sometime", None])
def test_undated_or_odd_periods_are_never_compared(label: str | None) -> None:
    assert parse_label(label).step is None
