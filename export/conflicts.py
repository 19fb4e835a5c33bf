"""When reports disagree about a figure: which value the summaries show, and which values are in
conflict. Pure: facts in, values and tables out.

A *figure* is one company (display name), period, metric, unit and currency; facts of different
currencies or units are different figures, so they never conflict. Each fact states the figure
with the precision it was written with (``written_step``: "$5.3 million" to the $100,000,
"$5.30 million" to the $10,000, "$5,312,000" to the dollar). Two statements *agree* when one
could be the other rounded: their rounding intervals overlap. A figure is *in conflict* when two
of its statements cannot both be true.

The value shown (``Figure.shown``) is the one of the most recent report by the report's own date
(``report_date``: ``reported_at``, else the document's date, else when it was received; facts
stored before reports were dated fall back to when they were extracted). Among the statements that
agree with it, the most precise is shown ("$5.3 million" in June and "$5,312,000" in May show
5,312,000). When the extraction happened never matters, except between statements of one date.

``conflicts_table`` lists every statement of a figure in conflict with its ``kind``: ``shown``,
``agrees`` (with the shown value, within rounding), ``differs``, or ``scale slip`` (a power of ten
away from a better-supported value of the figure: more reports agree with it, or as many and it is
nearer the shown value; "$53 million" beside "$5.3 million").
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from export.cells import as_datetime, as_text, exact_value, missing
from schemas.numbers import plain_decimal
from schemas.periods import sort_key

if TYPE_CHECKING:
    import pandas as pd

#: Columns of ``conflicts.csv``: one row per value in conflict (a report stating the same value
#: twice is one row).
CONFLICT_COLUMNS: tuple[str, ...] = (
    "company",
    "period",
    "metric",
    "unit",
    "currency",
    "value",
    "value_text",
    "kind",
    "note",
    "report_id",
    "report_date",
    "report_date_source",
    "snippet",
    "extractor",
    "extracted_at",
    "fact_id",
)
CONFLICT_TEXT_COLUMNS = frozenset(
    {
        "company",
        "period",
        "metric",
        "unit",
        "currency",
        "value_text",
        "kind",
        "note",
        "report_id",
        "report_date_source",
        "snippet",
        "extractor",
        "fact_id",
    }
)

SHOWN = "shown"
AGREES = "agrees"
DIFFERS = "differs"
SCALE_SLIP = "scale slip"

#: ``report_date_source`` of a fact stored without a report date: its extraction time stands in
DATE_EXTRACTED = "extracted"

#: A number as written: digits with thousands or decimal separators between them.
_NUMBER = re.compile(r"\d(?:[\d,.'\u00a0\u202f ]*\d)?")
_SEPARATORS = re.compile(r"[,.'\u00a0\u202f ]")
_NEVER = datetime.min.replace(tzinfo=UTC)

Key = tuple[str, str, str, str, str]  # company, period, metric, unit, currency


# -- precision ----------------------------------------------------------------------------------
def _own_step(value: Decimal) -> Decimal:
    """The place of the value's last non-zero digit: 5300000 -> 100000, 0.45 -> 0.01."""
    if value == 0:
        return Decimal(0)
    return Decimal(1).scaleb(value.normalize().as_tuple().exponent)  # type: ignore[arg-type]


def written_step(value: Decimal, value_text: str | None) -> Decimal:
    """The precision ``value`` was written with in ``value_text``: the place of the last digit
    written, in the value's terms ("$5.3 million" -> 100000, "$5.30 million" -> 10000,
    "$5,300,000" -> 1); a last separator followed by exactly three digits separates thousands.
    When the text does not show the value (no number, or not a power of ten from it), the place
    of the value's own last non-zero digit."""
    match = _NUMBER.search(value_text or "")
    if match is None or value == 0:
        return _own_step(value)
    token = match.group()
    digits = _SEPARATORS.sub("", token)
    parts = _SEPARATORS.split(token)
    decimals = len(parts[-1]) if len(parts) > 1 and len(parts[-1]) != 3 else 0
    written = Decimal(digits).scaleb(-decimals)
    if written == 0:
        return _own_step(value)
    scale = abs(value) / written
    if scale.normalize().as_tuple().digits != (1,):  # not a power of ten: the text says another
        return _own_step(value)
    return Decimal(1).scaleb(-decimals) * scale


def agree(a: Decimal, a_step: Decimal, b: Decimal, b_step: Decimal) -> bool:
    """Whether ``a`` and ``b`` can both be true: each stands for the numbers that round to it at
    its step (half a step either way, halves rounding up), and the two ranges overlap."""
    return a == b or abs(a - b) < (a_step + b_step) / 2


def scale_slip(a: Decimal, a_step: Decimal, b: Decimal, b_step: Decimal) -> int | None:
    """``n`` when ``a`` is ``b`` times ``10**n`` (n not 0) within their rounding, else ``None``."""
    if a == 0 or b == 0 or (a < 0) != (b < 0):
        return None
    n = round(math.log10(abs(a) / abs(b)))
    if n == 0:
        return None
    return n if agree(a, a_step, b.scaleb(n), b_step.scaleb(n)) else None


# -- statements and figures ---------------------------------------------------------------------
def report_instant(x: Any) -> datetime | None:
    """A report date as stored or shown (a date is midnight UTC) as an aware date-time."""
    if isinstance(x, datetime):  # pandas' Timestamp too (a subclass)
        return as_datetime(x)
    if isinstance(x, date):
        return datetime(x.year, x.month, x.day, tzinfo=UTC)
    return None


@dataclass(frozen=True, slots=True)
class Statement:
    """One fact as a statement of its figure; ``rank`` orders reports: by the report's date,
    then by extraction, then by fact id."""

    value: Decimal
    step: Decimal
    rank: tuple[datetime, datetime, str]
    record: Mapping[str, Any]

    @property
    def when(self) -> datetime:
        """The report's date."""
        return self.rank[0]

    def agrees(self, other: Statement) -> bool:
        return agree(self.value, self.step, other.value, other.step)


@dataclass(frozen=True, slots=True)
class Figure:
    """Every statement of one figure, oldest report first, and the value shown for it."""

    statements: tuple[Statement, ...]
    shown: Statement

    @property
    def in_conflict(self) -> bool:
        """Some two statements cannot both be true."""
        distinct = list({(s.value, s.step): s for s in self.statements}.values())
        return any(not a.agrees(b) for i, a in enumerate(distinct) for b in distinct[i + 1 :])


def figure_of(statements: Iterable[Statement]) -> Figure:
    """The figure's value: the newest report's, or the most precise value agreeing with it."""
    ordered = tuple(sorted(statements, key=lambda s: s.rank))
    newest = ordered[-1]
    agreeing = [s for s in reversed(ordered) if s.agrees(newest)]
    shown = min(agreeing, key=lambda s: s.step)  # the first of the most precise: the newest
    return Figure(ordered, shown)


def company_column(facts: pd.DataFrame) -> str:
    """The display name when the facts carry it (``company_canonical``), else ``company``."""
    return "company_canonical" if "company_canonical" in facts.columns else "company"


#: The fields of a fact a statement keeps (``conflicts.csv`` shows them)
_RECORD_FIELDS = (
    "value",
    "value_text",
    "report_id",
    "report_date",
    "report_date_source",
    "snippet",
    "extractor",
    "extracted_at",
    "fact_id",
)


def _records(facts: pd.DataFrame) -> Iterable[tuple[Key, dict[str, Any]]]:
    """Each fact's figure and the fields a statement keeps (columns read as lists: a frame's
    ``to_dict`` costs seconds at 100,000 facts)."""
    names = (company_column(facts), "period", "metric", "unit", "currency", *_RECORD_FIELDS)
    n = len(facts)
    columns = [facts[c].tolist() if c in facts.columns else [None] * n for c in names]
    for row in zip(*columns, strict=True):
        key = tuple("" if missing(x) else str(x) for x in row[:5])
        yield key, dict(zip(_RECORD_FIELDS, row[5:], strict=True))  # type: ignore[misc]


def figures(facts: pd.DataFrame) -> dict[Key, Figure]:
    """The facts (``export.tables.FACT_COLUMNS``) grouped by figure, keyed by company (display
    name), period, metric, unit and currency (``""`` where missing)."""
    grouped: dict[Key, list[tuple[Decimal, dict[str, Any]]]] = defaultdict(list)
    for key, r in _records(facts):
        value = exact_value(r["value"], None)
        if value is not None:
            grouped[key].append((value, r))
    out: dict[Key, Figure] = {}
    for key, group in grouped.items():
        statements = []
        for value, r in group:
            extracted = as_datetime(r["extracted_at"]) or _NEVER
            when = report_instant(r["report_date"]) or extracted
            rank = (when, extracted, as_text(r["fact_id"]) or "")
            # alone, a statement agrees with itself whatever its precision
            step = written_step(value, as_text(r["value_text"])) if len(group) > 1 else value * 0
            statements.append(Statement(value, step, rank, r))
        out[key] = figure_of(statements)
    return out


def shown_values(
    facts: pd.DataFrame, figs: Mapping[Key, Figure] | None = None
) -> dict[Key, Decimal]:
    """Per figure, the value the summaries show (of ``figs``, the facts' ``figures``)."""
    return {
        key: fig.shown.value for key, fig in (figs if figs is not None else figures(facts)).items()
    }


# -- the conflicts table ------------------------------------------------------------------------
def _support(s: Statement, statements: tuple[Statement, ...]) -> int:
    """How many reports state a value agreeing with ``s``."""
    return len({o.record.get("report_id") for o in statements if o.agrees(s)})


def _slip_note(s: Statement, fig: Figure) -> str | None:
    """How ``s`` is a power of ten away from a better-supported value of ``fig``, if it is."""
    shown = fig.shown
    own = _support(s, fig.statements)
    for other in reversed(fig.statements):
        n = scale_slip(s.value, s.step, other.value, other.step)
        if n is None:
            continue
        more = _support(other, fig.statements)
        nearer = abs(other.value - shown.value) < abs(s.value - shown.value)
        if more > own or (more == own and nearer):
            times = f"{10**n:,}" if n > 0 else f"1/{10**-n:,}"
            return f"{times} × {_amount(other.value)} of {_day(other.when)}"
    return None


def _amount(value: Decimal) -> str:
    whole, dot, fraction = plain_decimal(value).partition(".")
    return f"{int(whole):,}{dot}{fraction}"


def _day(when: datetime) -> str:
    shown = report_date_shown(when)
    return shown.isoformat() if isinstance(shown, date) else ""


def report_date_shown(when: Any) -> date | datetime | None:
    """A report date as exports show it: a date when it is midnight UTC (a date as written),
    else the UTC date-time."""
    instant = report_instant(when)
    if instant is None:
        return None
    instant = instant.astimezone(UTC)
    if instant.time() == datetime.min.time():
        return instant.date()
    return instant


def _kind(s: Statement, fig: Figure) -> tuple[str, str | None]:
    note = _slip_note(s, fig)
    if note is not None:
        return SCALE_SLIP, note
    if s is fig.shown:
        return SHOWN, "the value the summary shows"
    if s.agrees(fig.shown):
        return AGREES, f"agrees with {_amount(fig.shown.value)} within rounding"
    return DIFFERS, f"reported {'before' if s.when <= fig.shown.when else 'after'} the value shown"


def _rows(key: Key, fig: Figure) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, Decimal]] = set()
    for s in fig.statements:
        r = s.record
        if (r.get("report_id"), s.value) in seen:
            continue
        seen.add((r.get("report_id"), s.value))
        kind, note = _kind(s, fig)
        source = r.get("report_date_source")
        rows.append(
            {
                **dict(zip(("company", "period", "metric", "unit", "currency"), key, strict=True)),
                "value": s.value,
                "value_text": r.get("value_text"),
                "kind": kind,
                "note": note,
                "report_id": r.get("report_id"),
                "report_date": report_date_shown(s.when),
                "report_date_source": DATE_EXTRACTED if missing(source) else source,
                "snippet": r.get("snippet"),
                "extractor": r.get("extractor"),
                "extracted_at": r.get("extracted_at"),
                "fact_id": r.get("fact_id"),
            }
        )
    return rows


def conflicts_table(facts: pd.DataFrame, figs: Mapping[Key, Figure] | None = None) -> pd.DataFrame:
    """``CONFLICT_COLUMNS``: every value of every figure in conflict (of ``figs``, the facts'
    ``figures``), sorted by company, period (chronologically), metric, unit and currency, then by
    report date, oldest first."""
    found = {
        key: fig
        for key, fig in (figs if figs is not None else figures(facts)).items()
        if fig.in_conflict
    }
    ordered = sorted(
        found,
        key=lambda k: (k[0] == "", k[0].casefold(), k[0], sort_key(k[1]), k[2], k[3], k[4]),
    )
    rows = [row for key in ordered for row in _rows(key, found[key])]
    for row in rows:
        for c in ("company", "period", "currency"):
            row[c] = row[c] or None
    import pandas as pd  # here, not at the top: ``finpipe facts`` starts without it (cells.py)

    return pd.DataFrame(
        {c: pd.Series([r.get(c) for r in rows], dtype=object) for c in CONFLICT_COLUMNS},
        columns=list(CONFLICT_COLUMNS),
    )


def conflict_counts(table: pd.DataFrame) -> dict[str, int]:
    """What ``run_report.json`` says of a ``conflicts_table``: figures in conflict, values
    listed, scale slips among them."""
    keys = {
        tuple(r[c] for c in ("company", "period", "metric", "unit", "currency"))
        for r in table.to_dict("records")
    }
    return {
        "figures": len(keys),
        "values": len(table),
        "scale_slips": int((table["kind"] == SCALE_SLIP).sum()) if len(table) else 0,
    }
