"""Period-over-period changes: each period against the one before it and the same period a year
earlier. Pure: DataFrames and labels in, DataFrames and labels out.

- ``sequential``: the previous period of the same kind (``schemas.periods.previous``: Q2 2024 ->
  Q1 2024, Q1 2024 -> Q4 2023, H1 2024 -> H2 2023, a quarter-end date -> the previous quarter
  end).
- ``year_over_year``: the same period a year earlier (``schemas.periods.year_ago``: Q2 2024 ->
  Q2 2023, H1 -> H1, 9M -> 9M, FY -> FY, Q4 FY2024 -> Q4 FY2023, 2024-06-30 -> 2023-06-30).

For a full year and for nine months both partners are the year before; that pair is one
``year_over_year`` row. ``period_over_period`` compares only values of the same company, metric,
unit and currency, so currencies and units are never mixed. A percent change is left empty from
zero and across a sign change (a loss turning into a profit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pandas as pd

from export.cells import missing
from export.conflicts import Key, shown_values
from schemas import periods

SEQUENTIAL = "sequential"
YEAR_OVER_YEAR = "year_over_year"

#: The columns of ``period_over_period.csv``: today's columns, ``comparison`` now saying which
#: partner the row compares with (``sequential`` or ``year_over_year``).
POP_COLUMNS: tuple[str, ...] = (
    "company",
    "metric",
    "unit",
    "currency",
    "comparison",
    "previous_period",
    "period",
    "previous_value",
    "value",
    "change",
    "change_pct",
)
POP_TEXT_COLUMNS = frozenset(
    {"company", "metric", "unit", "currency", "comparison", "previous_period", "period"}
)

_PCT_QUANTUM = Decimal("0.01")
_COMPARISON_ORDER = {SEQUENTIAL: 0, YEAR_OVER_YEAR: 1}


# -- values -------------------------------------------------------------------------------------
def percent_change(previous: Decimal, current: Decimal) -> Decimal | None:
    """Change relative to the size of the previous value, in percent, to two decimals (half
    up). ``None`` from zero and across a sign change (a loss of 20 to a profit of 30 has no
    meaningful percent). A loss shrinking from -100 to -50 is +50 %."""
    if previous == 0 or (previous < 0 < current) or (current < 0 < previous):
        return None
    return ((current - previous) * 100 / abs(previous)).quantize(_PCT_QUANTUM, ROUND_HALF_UP)


def _decimal(x: Any) -> Decimal | None:
    if missing(x) or isinstance(x, bool):
        return None
    try:
        d = Decimal(repr(x)) if isinstance(x, float) else Decimal(str(x).strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _text(x: Any) -> str:
    return "" if missing(x) else str(x)


_Series = tuple[str, str, str, str]  # company, metric, unit, currency


def _latest_points(
    facts: pd.DataFrame, shown: Mapping[Key, Decimal] | None
) -> dict[_Series, dict[str, Decimal]]:
    """Per company, metric, unit and currency: period label -> the value the summaries show
    (``export/conflicts.py``: the most recent report's). The company is ``company_canonical``
    when the facts carry it."""
    points: dict[_Series, dict[str, Decimal]] = defaultdict(dict)
    if shown is None:
        shown = shown_values(facts)
    for (company, period, metric, unit, currency), value in shown.items():
        period = period.strip()
        if periods.parse_label(period).year is not None:
            points[(company, metric, unit, currency)][period] = value
    return points


# -- the table ----------------------------------------------------------------------------------
def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series([r.get(c) for r in rows], dtype=object) for c in POP_COLUMNS},
        columns=list(POP_COLUMNS),
    )


def period_over_period(
    facts: pd.DataFrame, shown: Mapping[Key, Decimal] | None = None
) -> pd.DataFrame:
    """``POP_COLUMNS``: for each company, metric, unit and currency, each period against its
    sequential partner and its year-over-year partner where that period's value exists (one
    ``year_over_year`` row when both are the same period). Values are the summaries' per period
    (``shown``, else decided from the facts: the most recent report's); the company is the
    canonical name when the facts carry ``company_canonical``. Sorted by company, metric, unit,
    currency, period, comparison."""
    rows: list[dict[str, Any]] = []
    for (company, metric, unit, currency), values in _latest_points(facts, shown).items():
        for period, value in values.items():
            yoy = periods.year_ago(period)
            seq = periods.previous(period)
            partners = [(YEAR_OVER_YEAR, yoy)]
            if seq != yoy:
                partners.insert(0, (SEQUENTIAL, seq))
            for comparison, previous in partners:
                if previous is None or previous not in values:
                    continue
                before = values[previous]
                rows.append(
                    {
                        "company": company or None,
                        "metric": metric,
                        "unit": unit,
                        "currency": currency or None,
                        "comparison": comparison,
                        "previous_period": previous,
                        "period": period,
                        "previous_value": before,
                        "value": value,
                        "change": value - before,
                        "change_pct": percent_change(before, value),
                    }
                )
    rows.sort(
        key=lambda r: (
            r["company"] is None,
            (r["company"] or "").casefold(),
            r["company"] or "",
            r["metric"],
            r["unit"],
            r["currency"] or "",
            periods.sort_key(r["period"]),
            _COMPARISON_ORDER[r["comparison"]],
        )
    )
    return _frame(rows)


def largest_moves(pop: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` year-over-year rows of a ``period_over_period`` table with the largest absolute
    percent change (rows without a percent are left out), largest first; ties by company,
    metric and period. For the page's "largest year-over-year moves"."""
    rows = [
        r
        for r in (pop.to_dict("records") if len(pop) else [])
        if r.get("comparison") == YEAR_OVER_YEAR and _decimal(r.get("change_pct")) is not None
    ]
    rows.sort(
        key=lambda r: (
            -abs(_decimal(r["change_pct"]) or Decimal(0)),
            _text(r.get("company")).casefold(),
            _text(r.get("metric")),
            _text(r.get("currency")),
            periods.sort_key(r.get("period")),
        )
    )
    return _frame(rows[: max(n, 0)])
