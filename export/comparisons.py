"""Period-over-period changes: each period against the one before it and the same period a year
earlier. Pure: DataFrames and labels in, DataFrames and labels out.

- ``sequential_partner``: the previous period of the same kind (Q2 2024 -> Q1 2024, Q1 2024 ->
  Q4 2023, H1 2024 -> H2 2023, a quarter-end date -> the previous quarter end).
- ``year_over_year_partner``: the same period a year earlier (Q2 2024 -> Q2 2023, H1 -> H1,
  9M -> 9M, FY -> FY, Q4 FY2024 -> Q4 FY2023, 2024-06-30 -> 2023-06-30).

For a full year and for nine months both partners are the year before; that pair is one
``year_over_year`` row. ``period_over_period`` compares only values of the same company, metric,
unit and currency, so currencies and units are never mixed. A percent change is left empty from
zero and across a sign change (a loss turning into a profit).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pandas as pd

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


# -- period labels ------------------------------------------------------------------------------
# switch to schemas.periods at merge
_LABEL_RE = re.compile(r"^(?P<sub>Q[1-4]|H[12]|9M|FY) (?P<fy>FY)?(?P<year>\d{4})$")
_DATE_RE = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})$")
_QUARTER_ENDS = ((3, 31), (6, 30), (9, 30), (12, 31))
_SUB_END_MONTH = {"Q1": 3, "Q2": 6, "Q3": 9, "Q4": 12, "H1": 6, "H2": 12, "9M": 9, "FY": 12}
_SUB_SPAN = {"Q": 3, "H": 6, "9": 9, "F": 12}


@dataclass(frozen=True, slots=True)
class _Label:
    """A dated period label: ``sub`` is Q1..Q4, H1, H2, 9M, FY, or ``""`` for an ISO date."""

    sub: str
    fiscal: bool
    year: int
    month: int = 12
    day: int = 31

    def text(self) -> str:
        if not self.sub:
            return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
        if self.sub == "FY":
            return f"FY {self.year}"
        return f"{self.sub} {'FY' if self.fiscal else ''}{self.year}"

    def sort_key(self) -> tuple[int, int, int, int, bool]:
        if not self.sub:
            return (self.year, self.month, 0, self.day, False)
        return (self.year, _SUB_END_MONTH[self.sub], _SUB_SPAN[self.sub[0]], 31, self.fiscal)


def _parse(label: str | None) -> _Label | None:
    """A label of the standard's grammar with a year, or ``None`` (year-less, unknown, missing).
    ``FY 2024`` has no fiscal mark; ``Q4 FY2024`` does."""
    text = (label or "").strip()
    m = _LABEL_RE.match(text)
    if m:
        if m.group("sub") == "FY" and m.group("fy"):
            return None  # "FY FY2024" is not a label
        return _Label(m.group("sub"), bool(m.group("fy")), int(m.group("year")))
    d = _DATE_RE.match(text)
    if d:
        try:
            when = date(int(d.group("y")), int(d.group("m")), int(d.group("d")))
        except ValueError:
            return None
        return _Label("", False, when.year, when.month, when.day)
    return None


def _shifted(p: _Label, years: int) -> _Label | None:
    year = p.year + years
    if not 1 <= year <= 9999:
        return None
    if not p.sub:
        try:
            date(year, p.month, p.day)
        except ValueError:  # 29 February has no partner in a common year
            return None
    return _Label(p.sub, p.fiscal, year, p.month, p.day)


def year_over_year_partner(label: str | None) -> str | None:
    """The same period a year earlier: ``Q2 2024`` -> ``Q2 2023``, ``H1 FY2021`` ->
    ``H1 FY2020``, ``2024-06-30`` -> ``2023-06-30``. ``None`` for a year-less or unknown label
    and for 29 February."""
    p = _parse(label)
    q = _shifted(p, -1) if p is not None else None
    return q.text() if q is not None else None


def sequential_partner(label: str | None) -> str | None:
    """The previous period of the same kind: the quarter before (``Q1 2024`` -> ``Q4 2023``), the
    half before, the previous nine months or year (a year earlier), the previous quarter end for
    a quarter-end date. ``None`` for other dates and for year-less or unknown labels."""
    p = _parse(label)
    if p is None:
        return None
    q: _Label | None
    if p.sub.startswith("Q") and p.sub != "Q1":
        q = _Label(f"Q{int(p.sub[1]) - 1}", p.fiscal, p.year)
    elif p.sub == "Q1":
        q = _shifted(_Label("Q4", p.fiscal, p.year), -1)
    elif p.sub == "H2":
        q = _Label("H1", p.fiscal, p.year)
    elif p.sub == "H1":
        q = _shifted(_Label("H2", p.fiscal, p.year), -1)
    elif p.sub in ("9M", "FY"):
        q = _shifted(p, -1)
    elif (p.month, p.day) in _QUARTER_ENDS:
        i = _QUARTER_ENDS.index((p.month, p.day))
        month, day = _QUARTER_ENDS[i - 1]  # before 31 March: 31 December of the year before
        year = p.year - 1 if i == 0 else p.year
        q = _Label("", False, year, month, day) if year >= 1 else None
    else:
        q = None
    return q.text() if q is not None else None


def _period_order(label: str | None) -> tuple[int, tuple[int, int, int, int, bool], str]:
    p = _parse(label)
    text = label or ""
    return (0, p.sort_key(), text) if p is not None else (1, (0, 0, 0, 0, False), text)


# -- values -------------------------------------------------------------------------------------
def percent_change(previous: Decimal, current: Decimal) -> Decimal | None:
    """Change relative to the size of the previous value, in percent, to two decimals (half
    up). ``None`` from zero and across a sign change (a loss of 20 to a profit of 30 has no
    meaningful percent). A loss shrinking from -100 to -50 is +50 %."""
    if previous == 0 or (previous < 0 < current) or (current < 0 < previous):
        return None
    return ((current - previous) * 100 / abs(previous)).quantize(_PCT_QUANTUM, ROUND_HALF_UP)


def _missing(x: Any) -> bool:
    return x is None or x is pd.NA or x is pd.NaT or (isinstance(x, float) and x != x)


def _decimal(x: Any) -> Decimal | None:
    if _missing(x) or isinstance(x, bool):
        return None
    try:
        d = Decimal(repr(x)) if isinstance(x, float) else Decimal(str(x).strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _text(x: Any) -> str:
    return "" if _missing(x) else str(x)


def _when(x: Any) -> datetime:
    if isinstance(x, pd.Timestamp):
        x = x.to_pydatetime()
    if isinstance(x, datetime):
        return x if x.tzinfo is not None else x.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


_Series = tuple[str, str, str, str]  # company, metric, unit, currency


def _latest_points(facts: pd.DataFrame) -> dict[_Series, dict[str, Decimal]]:
    """Per company, metric, unit and currency: period label -> the most recently extracted
    value. The company is ``company_canonical`` when the facts carry it."""
    company_col = "company_canonical" if "company_canonical" in facts.columns else "company"
    best: dict[tuple[_Series, str], tuple[tuple[datetime, str], Decimal]] = {}
    for r in facts.to_dict("records") if len(facts) else []:
        value = _decimal(r.get("value"))
        period = _text(r.get("period")).strip()
        if value is None or _parse(period) is None:
            continue
        series = (
            _text(r.get(company_col)),
            _text(r.get("metric")),
            _text(r.get("unit")),
            _text(r.get("currency")),
        )
        rank = (_when(r.get("extracted_at")), _text(r.get("fact_id")))
        key = (series, period)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, value)
    points: dict[_Series, dict[str, Decimal]] = defaultdict(dict)
    for (series, period), (_, value) in best.items():
        points[series][period] = value
    return points


# -- the table ----------------------------------------------------------------------------------
def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series([r.get(c) for r in rows], dtype=object) for c in POP_COLUMNS},
        columns=list(POP_COLUMNS),
    )


def period_over_period(facts: pd.DataFrame) -> pd.DataFrame:
    """``POP_COLUMNS``: for each company, metric, unit and currency, each period against its
    sequential partner and its year-over-year partner where that period's value exists (one
    ``year_over_year`` row when both are the same period). Values are the most recently
    extracted per period; the company is the canonical name when the facts carry
    ``company_canonical``. Sorted by company, metric, unit, currency, period, comparison."""
    rows: list[dict[str, Any]] = []
    for (company, metric, unit, currency), values in _latest_points(facts).items():
        for period, value in values.items():
            yoy = year_over_year_partner(period)
            seq = sequential_partner(period)
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
            _period_order(r["period"]),
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
            _period_order(r.get("period")),
        )
    )
    return _frame(rows[: max(n, 0)])
