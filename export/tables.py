"""Export summaries as DataFrames. Pure: DataFrames in, DataFrames out; no I/O, no clock.

``facts_table`` turns the stored documents into a tidy table; the other builders derive from it:

- ``summary_by_company_period``: one row per company and period, one column per metric with the
  currency beside it. A metric that one company reports in two currencies for the same period gets
  one column pair per currency; values are never added or compared across currencies or units.
- ``metric_stats``: per metric, unit and currency: count, companies, min, median, max and the
  latest period.
- ``period_over_period`` (``export/comparisons.py``): each period against the previous one of
  its kind (``sequential``) and the same period a year earlier (``year_over_year``), only where
  both periods exist, for the same company, metric, unit and currency.

When several stored facts give the same company, period, metric, unit and currency (the same
figure from several reports), the summaries show the value of the most recent report by the
report's own date, and ``conflicts.csv`` lists the values that cannot all be true
(``export/conflicts.py``); ``facts.csv`` keeps them all. Money stays ``Decimal`` from
``value_decimal``; ``csv_text`` writes numbers exactly (integers as integers, no float artefacts,
no scientific notation) and neutralizes spreadsheet formulas in text columns only.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from export.cells import (
    as_datetime,
    as_int,
    as_text,
    csv_text,
    exact_value,
    missing,
)
from export.companies import add_company_canonical, company_as_canonical
from export.comparisons import POP_TEXT_COLUMNS, period_over_period
from export.conflicts import (
    CONFLICT_TEXT_COLUMNS,
    DATE_EXTRACTED,
    Figure,
    Key,
    conflicts_table,
    figures,
    report_date_shown,
    shown_values,
)
from schemas.periods import parse_label, sort_key
from schemas.standards import ADJUSTED_PREFIX, METRICS

#: Fields read from ``financial_data`` (the reader's projection).
STORED_FIELDS: tuple[str, ...] = (
    "_id",
    "report_id",
    "company",
    "metric",
    "metric_known",
    "value",
    "value_decimal",
    "currency",
    "unit",
    "quarter",
    "value_text",
    "snippet",
    "snippet_start",
    "snippet_end",
    "page",
    "source",
    "file_name",
    "line",
    "row",
    "extractor",
    "model",
    "prompt_version",
    "extracted_at",
    "report_date",
    "report_date_source",
)

FACT_COLUMNS: tuple[str, ...] = (
    "company",
    "company_canonical",
    "period",
    "metric",
    "value",
    "currency",
    "unit",
    "metric_known",
    "value_text",
    "report_id",
    "report_date",
    "report_date_source",
    "source",
    "file_name",
    "page",
    "row",
    "line",
    "snippet",
    "snippet_start",
    "snippet_end",
    "extractor",
    "model",
    "prompt_version",
    "extracted_at",
    "fact_id",
)
FACT_TEXT_COLUMNS = frozenset(
    {
        "company",
        "company_canonical",
        "period",
        "metric",
        "currency",
        "unit",
        "value_text",
        "report_id",
        "report_date_source",
        "source",
        "file_name",
        "snippet",
        "extractor",
        "model",
        "prompt_version",
        "fact_id",
    }
)

SUMMARY_KEY_COLUMNS: tuple[str, ...] = ("company", "period")
#: The summary's last column: the value columns of the row whose reports disagree
CONFLICTS_COLUMN = "conflicts"

METRIC_STATS_COLUMNS: tuple[str, ...] = (
    "metric",
    "unit",
    "currency",
    "count",
    "companies",
    "min",
    "median",
    "max",
    "latest_period",
)
METRIC_STATS_TEXT_COLUMNS = frozenset({"metric", "unit", "currency", "latest_period"})


# -- order --------------------------------------------------------------------------------------
def metric_order(metric: str) -> tuple[int, int, str]:
    """Vocabulary order (revenue, net income, ...), adjusted variants after their base,
    unknown metrics last in alphabetical order."""
    order = list(METRICS)
    base = metric.removeprefix(ADJUSTED_PREFIX)
    if base in METRICS:
        return (0, order.index(base) * 2 + (base != metric), metric)
    return (1, 0, metric)


# -- the facts table ----------------------------------------------------------------------------
def _fact_row(doc: Mapping[str, Any], value: Decimal) -> dict[str, Any]:
    """One stored document as a row of ``FACT_COLUMNS`` (without ``company_canonical``)."""
    known = doc.get("metric_known")
    extracted = as_datetime(doc.get("extracted_at"))
    dated = as_datetime(doc.get("report_date"))
    return {
        "company": as_text(doc.get("company")),
        "period": as_text(doc.get("quarter")),
        "metric": as_text(doc.get("metric")) or "",
        "value": value,
        "currency": as_text(doc.get("currency")),
        "unit": as_text(doc.get("unit")) or "",
        "metric_known": None if missing(known) else bool(known),
        "value_text": as_text(doc.get("value_text")),
        "report_id": as_text(doc.get("report_id")),
        # facts stored before reports were dated: their extraction stands in
        "report_date": report_date_shown(dated or extracted),
        "report_date_source": (
            as_text(doc.get("report_date_source")) or DATE_EXTRACTED if dated or extracted else None
        ),
        "source": as_text(doc.get("source")),
        "file_name": as_text(doc.get("file_name")),
        "page": as_int(doc.get("page")),
        "row": as_int(doc.get("row")),
        "line": as_int(doc.get("line")),
        "snippet": as_text(doc.get("snippet")),
        "snippet_start": as_int(doc.get("snippet_start")),
        "snippet_end": as_int(doc.get("snippet_end")),
        "extractor": as_text(doc.get("extractor")),
        "model": as_text(doc.get("model")),
        "prompt_version": as_text(doc.get("prompt_version")),
        "extracted_at": extracted,
        "fact_id": as_text(doc.get("_id")),
    }


def _fact_order(r: Mapping[str, Any]) -> tuple[Any, ...]:
    """Company (canonical, then as written), period (chronologically), metric, unit, currency,
    extraction time, id; facts without a company last."""
    canonical = r["company_canonical"] or ""
    written = r["company"] or ""
    return (
        canonical == "",
        canonical.casefold(),
        canonical,
        sort_key(r["period"]),
        r["metric"],
        r["unit"],
        r["currency"] or "",
        written.casefold(),
        written,
        r["extracted_at"] or datetime.min.replace(tzinfo=UTC),
        r["fact_id"] or "",
    )


def facts_table(raw: pd.DataFrame, aliases: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Stored documents (columns ``STORED_FIELDS``) -> ``FACT_COLUMNS``, one row per fact with
    ``value`` as ``Decimal`` and the company both as written (``company``) and as its display
    name (``company_canonical``, ``export/companies.py``, with the ``aliases`` given), sorted by
    company, period (chronologically) and metric."""
    rows: list[dict[str, Any]] = []
    for doc in raw.to_dict("records") if len(raw) else []:
        value = exact_value(doc.get("value_decimal"), doc.get("value"))
        if value is not None:
            rows.append(_fact_row(doc, value))
    written = _frame(rows, [c for c in FACT_COLUMNS if c != "company_canonical"])
    named = add_company_canonical(written, aliases)[list(FACT_COLUMNS)]
    records = named.to_dict("records")
    order = sorted(range(len(records)), key=lambda i: _fact_order(records[i]))
    return named.iloc[order].reset_index(drop=True)


def _frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """An object-dtype frame (keeps ``Decimal``, ``None`` and Python ints as they are)."""
    return pd.DataFrame(
        {c: pd.Series([r.get(c) for r in rows], dtype=object) for c in columns},
        columns=list(columns),
    )


@dataclass(frozen=True, slots=True)
class _Value:
    company: str
    period: str
    metric: str
    unit: str
    currency: str
    value: Decimal
    in_conflict: bool = False


def by_company(facts: pd.DataFrame) -> pd.DataFrame:
    """The facts with ``company`` as the company's display name where the facts carry
    ``company_canonical`` (``company_as_canonical``): what summaries, statistics and charts
    group by."""
    return company_as_canonical(facts) if "company_canonical" in facts.columns else facts


def latest_values(facts: pd.DataFrame, figs: Mapping[Key, Figure] | None = None) -> list[_Value]:
    """One value per company (its canonical name, ``by_company``), period, metric, unit and
    currency: the one ``export/conflicts.py`` shows (the most recent report's by its own date),
    and whether the reports disagree. ``figs``: the facts' ``figures``, if known."""
    if figs is None:
        figs = figures(facts)
    return [_Value(*key, fig.shown.value, fig.in_conflict) for key, fig in figs.items()]


# -- summary by company and period --------------------------------------------------------------
def _value_header(metric: str, unit: str) -> str:
    if unit == "percent":
        return f"{metric} (%)"
    if unit == "currency_per_share" and "per share" not in metric:
        return f"{metric} (per share)"
    if unit == "count":
        return f"{metric} (count)"
    return metric


def summary_by_company_period(
    facts: pd.DataFrame, figs: Mapping[Key, Figure] | None = None
) -> pd.DataFrame:
    """One row per company and period; per metric a value column and, for money, its currency
    column beside it. Where one company and period has a metric in several currencies, the metric
    is split into one column pair per currency (``revenue [EUR]``, ``revenue [EUR] currency``).
    The last column, ``conflicts``, names the value columns whose reports disagree
    (``conflicts.csv`` lists their values)."""
    return summary_table(facts, figs)[0]


def summary_table(
    facts: pd.DataFrame, figs: Mapping[Key, Figure] | None = None
) -> tuple[pd.DataFrame, frozenset[str]]:
    """``summary_by_company_period`` and its text columns, known from each column's role (the
    company, the period, a currency beside a value, the conflicts), never from a column's name:
    a metric named "net income in constant currency" is a number column."""
    values = latest_values(facts, figs)
    # which (metric, unit) pairs need a column pair per currency
    currencies_per_cell: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for v in values:
        currencies_per_cell[(v.company, v.period, v.metric, v.unit)].add(v.currency)
    split = {(m, u) for (_, _, m, u), cur in currencies_per_cell.items() if len(cur) > 1}

    def group_of(v: _Value) -> tuple[str, str, str]:
        return (v.metric, v.unit, v.currency if (v.metric, v.unit) in split else "")

    groups = sorted(
        {group_of(v) for v in values},
        key=lambda g: (metric_order(g[0]), g[1], g[2]),
    )
    columns: list[str] = list(SUMMARY_KEY_COLUMNS)
    value_col: dict[tuple[str, str, str], str] = {}
    currency_col: dict[tuple[str, str, str], str | None] = {}
    for g in groups:
        metric, unit, cur = g
        name = _value_header(metric, unit)
        if cur:
            name = f"{name} [{cur}]"
        value_col[g] = name
        columns.append(name)
        if unit in ("currency", "currency_per_share"):
            currency_col[g] = f"{name} currency"
            columns.append(f"{name} currency")
        else:
            currency_col[g] = None
    if len(set(columns)) != len(columns):  # two units for one metric name: name the unit
        columns = list(SUMMARY_KEY_COLUMNS)
        for g in groups:
            name = f"{g[0]} ({g[1]})" + (f" [{g[2]}]" if g[2] else "")
            value_col[g] = name
            columns.append(name)
            if currency_col[g] is not None:
                currency_col[g] = f"{name} currency"
                columns.append(f"{name} currency")

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for v in values:
        row = rows.setdefault(
            (v.company, v.period), {"company": v.company or None, "period": v.period or None}
        )
        g = group_of(v)
        row[value_col[g]] = v.value
        if v.in_conflict:
            row["conflicts"] = "; ".join(filter(None, [row.get("conflicts"), value_col[g]]))
        cur_col = currency_col[g]
        if cur_col is not None:
            row[cur_col] = v.currency or None
    ordered = sorted(
        rows.items(),
        key=lambda kv: (
            kv[0][0] == "",
            kv[0][0].casefold(),
            kv[0][0],
            sort_key(kv[0][1]),
        ),
    )
    text = frozenset(SUMMARY_KEY_COLUMNS) | {CONFLICTS_COLUMN}
    text |= {c for c in currency_col.values() if c is not None}
    return _frame([row for _, row in ordered], [*columns, CONFLICTS_COLUMN]), text


# -- metric statistics --------------------------------------------------------------------------
def metric_stats(facts: pd.DataFrame, figs: Mapping[Key, Figure] | None = None) -> pd.DataFrame:
    """Per metric, unit and currency (never across them): how many company-period values, how
    many companies, min, median, max, and the latest dated period."""
    by_group: dict[tuple[str, str, str], list[_Value]] = defaultdict(list)
    for v in latest_values(facts, figs):
        by_group[(v.metric, v.unit, v.currency)].append(v)
    rows = []
    for (metric, unit, currency), vals in sorted(by_group.items()):
        numbers = [v.value for v in vals]
        dated = [p for p in (parse_label(v.period) for v in vals) if p.year is not None]
        latest = max(dated, key=lambda p: p.sort_key).label if dated else None
        rows.append(
            {
                "metric": metric,
                "unit": unit,
                "currency": currency or None,
                "count": len(vals),
                "companies": len({v.company for v in vals if v.company}),
                "min": min(numbers),
                "median": statistics.median(numbers),
                "max": max(numbers),
                "latest_period": latest,
            }
        )
    return _frame(rows, METRIC_STATS_COLUMNS)


@dataclass(frozen=True)
class ExportFrames:
    facts: pd.DataFrame
    summary: pd.DataFrame
    stats: pd.DataFrame
    pop: pd.DataFrame
    conflicts: pd.DataFrame
    summary_text: frozenset[str]  # the text columns of ``summary`` (``summary_table``)

    def tables(self) -> dict[str, tuple[pd.DataFrame, frozenset[str]]]:
        """CSV file name -> (frame, its text columns), in the order an analyst reads them."""
        return {
            "facts.csv": (self.facts, FACT_TEXT_COLUMNS),
            "summary_by_company_period.csv": (self.summary, self.summary_text),
            "conflicts.csv": (self.conflicts, CONFLICT_TEXT_COLUMNS),
            "metric_stats.csv": (self.stats, METRIC_STATS_TEXT_COLUMNS),
            "period_over_period.csv": (self.pop, POP_TEXT_COLUMNS),
        }

    def csv_files(self) -> dict[str, str]:
        """File name -> CSV text, in the order an analyst reads them."""
        return {name: csv_text(frame, text) for name, (frame, text) in self.tables().items()}

    def workbook(self) -> bytes:
        """``summary.xlsx``: one sheet per CSV, named after it, holding the same cells typed."""
        from export.workbook import workbook_bytes

        return workbook_bytes(self.tables())


def build_frames(raw: pd.DataFrame, aliases: Mapping[str, str] | None = None) -> ExportFrames:
    """Every table of an export from the stored documents; companies are folded to one name each
    (``export/companies.py``) with the ``aliases`` given."""
    facts = facts_table(raw, aliases)
    figs = figures(facts)  # which value each figure shows, and the conflicts: decided once
    summary, summary_text = summary_table(facts, figs)
    return ExportFrames(
        facts=facts,
        summary=summary,
        stats=metric_stats(facts, figs),
        pop=period_over_period(facts, shown_values(facts, figs)),
        conflicts=conflicts_table(facts, figs),
        summary_text=summary_text,
    )
