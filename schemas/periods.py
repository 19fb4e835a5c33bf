"""Period labels: the one grammar every package uses. Pure: the standard library only.

A label is ``Q1 2024``, ``H1 2024``, ``9M 2024`` or ``FY 2023`` (calendar), ``Q4 FY2024``,
``H1 FY2021`` or ``9M FY2020`` (a company's fiscal sub-periods), a year-less ``Q4`` / ``H1`` /
``9M`` / ``FY`` (the text did not state the year), or an ISO date ``2024-03-31`` (a point-in-time
balance). This module parses and formats labels, moves them by years or by steps of their own
kind (the previous quarter, the previous half), and orders them. Reading periods out of running
text ("the first quarter of 2024") is the normalizer's job; it produces these labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

#: Every valid label (year-less sub-periods included).
PERIOD_RE = re.compile(r"^(?:(?:Q[1-4]|H[12]|9M|FY)(?: (?:FY)?\d{4})?|FY \d{4}|\d{4}-\d{2}-\d{2})$")
_LABEL_RE = re.compile(r"^(?P<sub>Q[1-4]|H[12]|9M|FY)(?: (?P<fy>FY)?(?P<year>\d{4}))?$")
_DATE_RE = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})$")
_QUARTER_ENDS = {(3, 31): 1, (6, 30): 2, (9, 30): 3, (12, 31): 4}
_QUARTER_END_DAYS = {1: (3, 31), 2: (6, 30), 3: (9, 30), 4: (12, 31)}
_YEARS = range(1, 10000)  # a label's year has four digits; year 0 does not exist

#: sub-period -> (kind, last month, length in months, steps per year)
_SUBS: dict[str, tuple[str, int, int, int]] = {
    "Q1": ("quarter", 3, 3, 4),
    "Q2": ("quarter", 6, 3, 4),
    "Q3": ("quarter", 9, 3, 4),
    "Q4": ("quarter", 12, 3, 4),
    "H1": ("half", 6, 6, 2),
    "H2": ("half", 12, 6, 2),
    "9M": ("nine months", 9, 9, 1),
    "FY": ("year", 12, 12, 1),
}


def is_period_label(label: str) -> bool:
    """``Q1 2024`` and ``Q4 FY2024`` are labels; ``FY FY2024`` and ``first quarter`` are not."""
    return bool(PERIOD_RE.match(label)) and not label.startswith("FY FY")


def format_label(sub: str, year: int | None, fiscal: bool = False) -> str:
    """("Q1", 2024) -> "Q1 2024"; ("Q4", 2024, fiscal) -> "Q4 FY2024"; ("FY", 2023) -> "FY 2023";
    ("Q4", None) -> "Q4"."""
    if year is None:
        return sub
    if sub == "FY":
        return f"FY {year}"
    return f"{sub} FY{year}" if fiscal else f"{sub} {year}"


@dataclass(frozen=True, slots=True)
class Period:
    """A parsed label. ``kind`` is quarter, half, nine months, year, quarter end (a balance date at
    a quarter's end), date (any other date) or "" (not a label). ``step`` numbers the periods of
    one series (``kind`` and ``basis``): two periods are consecutive when their steps differ by
    one. ``sub`` is ``Q1`` .. ``FY`` ("" for dates)."""

    label: str
    kind: str
    basis: str  # calendar | fiscal | "" (years, dates, non-labels)
    year: int | None
    end_month: int
    end_day: int
    span_months: int
    step: int | None
    sub: str = ""

    @property
    def fiscal(self) -> bool:
        return self.basis == "fiscal"

    @property
    def series(self) -> tuple[str, str]:
        return (self.kind, self.basis)

    @property
    def sort_key(self) -> tuple[int, int, int, int, int, str, str]:
        """Chronological by end, shorter periods first at the same end; year-less labels after
        dated ones, non-labels last."""
        if self.kind == "":
            return (2, 0, 0, 0, 0, "", self.label)
        if self.year is None:
            return (1, 0, self.end_month, self.span_months, 0, self.basis, self.label)
        return (
            0,
            self.year,
            self.end_month,
            self.span_months,
            self.end_day,
            self.basis,
            self.label,
        )


def parse_label(label: str | None) -> Period:
    """The parts of a label. Anything else (or ``None``) gives ``kind == ""``: it sorts last and
    has no step, so it is never compared."""
    text = (label or "").strip()
    m = _LABEL_RE.match(text)
    if m and not text.startswith("FY FY"):
        sub = m.group("sub")
        year = int(m.group("year")) if m.group("year") else None
        kind, end_month, span, per_year = _SUBS[sub]
        basis = "" if sub == "FY" else ("fiscal" if m.group("fy") else "calendar")
        index = int(sub[1]) - 1 if sub[0] in "QH" else 0
        step = year * per_year + index if year is not None else None
        return Period(text, kind, basis, year, end_month, 31, span, step, sub)
    d = _DATE_RE.match(text)
    if d:
        try:
            when = date(int(d.group("y")), int(d.group("m")), int(d.group("d")))
        except ValueError:
            return Period(text, "", "", None, 0, 0, 0, None)
        q = _QUARTER_ENDS.get((when.month, when.day))
        if q is not None:
            step = when.year * 4 + q - 1
            return Period(text, "quarter end", "", when.year, when.month, when.day, 0, step)
        return Period(text, "date", "", when.year, when.month, when.day, 0, None)
    return Period(text, "", "", None, 0, 0, 0, None)


def sort_key(label: str | None) -> tuple[int, int, int, int, int, str, str]:
    """Key for ordering labels chronologically (see :attr:`Period.sort_key`)."""
    return parse_label(label).sort_key


def with_year(label: str, year: int) -> str | None:
    """The same sub-period in another year: ("Q3 2021", 2019) -> "Q3 2019"; a year-less label
    gets the year ("Q3", 2007) -> "Q3 2007". None for dates and non-labels."""
    p = parse_label(label)
    if not p.sub:
        return None
    return format_label(p.sub, year, p.fiscal)


def shift_years(label: str | None, years: int) -> str | None:
    """The same sub-period ``years`` later (negative: earlier): ("Q3 2021", -1) -> "Q3 2020";
    ("2024-03-31", -1) -> "2023-03-31". None when the label has no year or the result would
    fall outside the years 1 to 9999."""
    p = parse_label(label)
    if p.year is None or p.year + years not in _YEARS:
        return None
    if p.sub:
        return format_label(p.sub, p.year + years, p.fiscal)
    try:
        return date(p.year + years, p.end_month, p.end_day).isoformat()
    except ValueError:  # 29 February
        return None


def shift_steps(label: str | None, steps: int) -> str | None:
    """The period ``steps`` periods of the same kind later (negative: earlier): ("Q1 2024", -1) ->
    "Q4 2023"; ("H1 2024", -1) -> "H2 2023"; ("9M 2024", -1) -> "9M 2023"; ("2024-03-31", -1) ->
    "2023-12-31". None for year-less labels, other dates, non-labels and results outside the
    years 1 to 9999."""
    p = parse_label(label)
    if p.step is None:
        return None
    step = p.step + steps
    per_year = 4 if p.kind == "quarter end" else _SUBS[p.sub][3]
    year, index = divmod(step, per_year)
    if year not in _YEARS:
        return None
    if p.kind == "quarter end":
        month, day = _QUARTER_END_DAYS[index + 1]
        return date(year, month, day).isoformat()
    sub = p.sub if per_year == 1 else f"{p.sub[0]}{index + 1}"
    return format_label(sub, year, p.fiscal)


def previous(label: str | None) -> str | None:
    """The sequential partner: the period of the same kind just before (Q2 -> Q1, Q1 -> Q4 of
    the year before, FY 2024 -> FY 2023)."""
    return shift_steps(label, -1)


def year_ago(label: str | None) -> str | None:
    """The year-over-year partner: the same sub-period a year before."""
    return shift_years(label, -1)
