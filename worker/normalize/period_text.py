"""Periods in text: "the first quarter of 2024", "fiscal 2019", "as of June 30, 2024" to period
labels (:mod:`schemas.periods`). Pure.

:func:`find_periods` finds every period a sentence names, absolute ("Q1 2024") or relative to the
current one ("a year earlier", "the corresponding period of 2019"); :func:`period_from_text`
reads one period given on its own (a model's ``period`` field).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from schemas.errors import NormalizationError
from schemas.periods import format_label

_MONTHS = {
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_ORDINALS = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "last": 4,
    "final": 4,
}
_RANGE_SUB = {
    (1, 3): "Q1",
    (4, 6): "Q2",
    (7, 9): "Q3",
    (10, 12): "Q4",
    (1, 6): "H1",
    (7, 12): "H2",
    (1, 9): "9M",
    (1, 12): "FY",
}

_MON = r"(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?:19|20)\d{2}"
_DATE = rf"{_MON}\s(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s?,?\s?(?P<year>{_YEAR})"
_MON2 = _MON.replace("?P<mon>", "?P<mon2>")
_DATE_DMY = rf"(?P<day2>\d{{1,2}})\s{_MON2}\s?,?\s?(?P<year2>{_YEAR})"
_ORD = r"(?P<ord>" + "|".join(_ORDINALS) + r")"
_FIS = r"(?P<fis>(?:fiscal|financial)\s(?:year\s)?)"
_Y = rf"(?P<year>{_YEAR}|'\d{{2}})"
_YY = rf"(?P<year>{_YEAR}|'?\d{{2}})"


@dataclass(frozen=True, slots=True)
class PeriodMention:
    """A period named in a text. ``kind``: ``abs`` (label set), ``date`` (ISO label, a balance
    date), ``prev`` (the same sub-period a year before the current one), ``same`` (the current
    sub-period in ``year``), ``prev_step`` (the quarter before the current one), ``unresolved``
    ("the prior period": cannot be labelled)."""

    start: int
    end: int
    kind: str
    label: str | None = None
    year: int | None = None


def _year(tok: str | None) -> int | None:
    if not tok:
        return None
    t = tok.lstrip("'")
    return int(t) if len(t) == 4 else 2000 + int(t)


_PERIOD_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(rx, re.IGNORECASE))
    for name, rx in [
        ("iso", r"\b(?P<year>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b"),
        (
            "months_ended",
            rf"\b(?:the\s)?(?P<n>three|3|six|6|nine|9|twelve|12)[\s-]months?\s"
            rf"(?:period\s)?(?:ended|ending|to)\s(?:on\s)?(?:{_DATE}|{_DATE_DMY})",
        ),
        (
            "year_ended",
            rf"\b(?:the\s)?(?:{_FIS}|fiscal\s)?(?:years?|twelve months)\s"
            rf"(?:ended|ending)\s(?:on\s)?(?:{_DATE}|{_DATE_DMY})",
        ),
        (
            # "the year to March 2012": a fiscal year named by the month it ends in
            "year_to",
            rf"\b(?:the\s)?(?:fiscal\s|financial\s)?(?:year|twelve\smonths|12\smonths)\s"
            rf"(?:to|through)\s(?:the\send\sof\s)?{_MON}\s?,?\s(?P<year>{_YEAR})\b",
        ),
        (
            "quarter_ended",
            rf"\b(?:the\s)?(?:fiscal\s)?quarter\s(?:ended|ending)\s(?:{_DATE}|{_DATE_DMY})",
        ),
        ("as_of", rf"\b(?:as\s(?:of|at)|at)\s(?:{_DATE}|{_DATE_DMY})"),
        (
            "ord_quarter",
            rf"\b(?:the\s)?(?P<fis0>fiscal\s)?{_ORD}[\s-](?P<fis1>fiscal\s)?quarter\b"
            rf"(?:\s(?:of\s|in\s)?(?:the\s)?(?:{_FIS})?{_Y})?(?!\d)",
        ),
        (
            "quarterly_inst",
            rf"\b{_ORD}\squarterly\s(?:installment|instalment|dividend|payment)s?"
            rf"(?:\sof\s(?:our\s|the\s|its\s)?{_Y})?",
        ),
        ("q_label", rf"\bQ(?P<q>[1-4])(?:\s?[-/]?\s?(?P<fy>FY\s?)?{_YY})?(?![\d])"),
        ("q_pre", rf"\b(?P<q>[1-4])Q\s?(?P<fy>FY\s?)?{_YY}(?!\d)"),
        ("fy_q", rf"\bFY\s?{_YY}\s?Q(?P<q>[1-4])\b"),
        ("h_label", rf"\bH(?P<h>[12])(?:\s?[-/]?\s?(?P<fy>FY\s?)?{_YY})?(?![\d])"),
        ("h_pre", rf"\b(?P<h>[12])H\s?(?P<fy>FY\s?)?{_YY}(?!\d)"),
        (
            "half",
            rf"\b(?:the\s)?(?P<hw>first|second)[\s-]half(?:[\s-]year)?(?:\s(?:of\s)?"
            rf"(?:the\s)?(?:{_FIS})?{_Y})?(?!\d)",
        ),
        ("nine_label", rf"\b9M\s?(?P<fy>FY\s?)?{_YY}?(?!\d)"),
        (
            "nine",
            rf"\b(?:the\s)?(?:first\s)?nine[\s-]months?(?:\s(?:of|in|to)\s(?:the\s)?"
            rf"(?:{_FIS})?{_Y})?(?!\d)",
        ),
        (
            "six",
            rf"\b(?:the\s)?(?:first\s)?(?:six|6)[\s-]months?(?:\speriod)?(?:\s(?:of|in|to)\s(?:the\s)?"
            rf"(?:{_FIS})?{_Y})?(?!\d)",
        ),
        (
            "twelve",
            rf"\b(?:the\s)?(?:twelve|12)[\s-]months?\speriod(?:\s(?:of|in)\s(?:the\s)?{_Y})?(?!\d)",
        ),
        (
            "month_range",
            rf"\b(?P<m1>{'|'.join(sorted(_MONTHS, key=len, reverse=True))})\.?\s?"
            rf"(?:-|–|to|through|until)\s?(?P<m2>"
            rf"{'|'.join(sorted(_MONTHS, key=len, reverse=True))})\.?"
            rf"(?:\s?,?\s(?P<year>{_YEAR}))?",
        ),
        (
            "month_num_range",
            rf"(?<![\d/.,])\b(?P<m1>1[0-2]|0?[1-9])\s?[-–]\s?(?P<m2>1[0-2]|0?[1-9])\s?/\s?"
            rf"(?P<year>{_YEAR})\b",
        ),
        ("fiscal_year", rf"\b{_FIS}(?P<year>{_YEAR})(?:\s?[-/]\s?(?P<y2>{_YEAR}|\d{{2}}))?(?!\d)"),
        ("fiscal_short", r"\bfiscal\s(?P<year>'\d{2})\b"),
        (
            "fy_label",
            r"\bFY\s?(?P<year>(?:19|20)\d{2}|'?\d{2})(?:\s?[-/]\s?(?P<y2>\d{2,4}))?(?!\d)",
        ),
        (
            "full_year",
            rf"\b(?:the\s)?(?:full|whole|calendar|financial)[\s-]year(?:\s(?:of\s)?"
            rf"(?P<year>{_YEAR}))?(?!\d)",
        ),
        ("split_year", rf"\b(?P<year>{_YEAR})\s?[-/]\s?(?P<y2>\d{{2}})(?![\d%])"),
        (
            "same_period",
            rf"\b(?:the\s)?(?:same|corresponding|comparable)\s(?:period|quarter|"
            rf"half|months|time)(?:\s(?:of|in)\s(?:the\s)?(?:{_FIS}|fiscal\s)?"
            rf"(?P<year>{_YEAR})(?:\s?-\s?(?P<y2>\d{{2}}))?"
            rf"|\s(?:of\s|in\s)?(?:the\s)?(?:previous|prior|last|preceding)\s"
            rf"(?:fiscal\s)?year|\sa\syear\s(?:earlier|ago|before)|\slast\syear)?",
        ),
        (
            "prev_year",
            r"\b(?:the\s|a\s)?(?:previous|prior|last|preceding)\s(?:fiscal\s|financial\s)?"
            r"year\b|\b(?:a|one)\syear\s(?:earlier|ago|before)\b|\blast\syear\b"
            r"|\byear[\s-](?:on|over)[\s-]year\b|\by-?o-?y\b|\bthe\syear-ago\s\w+"
            r"|\b(?:a|the)\syear-(?:earlier|ago)\b"
            r"|\b(?:the\s)?prior[\s-]year\s(?:quarter|period|half)\b",
        ),
        ("prev_quarter", r"\b(?:the\s)?(?:prior|previous|preceding)[\s-]quarter\b"),
        (
            "unresolved",
            r"\b(?:the\s)?(?:prior|previous|preceding)[\s-]period\b|\bsequential(?:ly)?\b",
        ),
        (
            "year",
            rf"(?<![\d.,$€£¥-])\b(?P<year>{_YEAR})\b(?![\d%]|\s?[-–]\s?\d|\s?(?:,\s?)?"
            rf"(?:to|and|through|-)\s(?:{_YEAR})\b)",
        ),
    ]
]

_DATE_ANY = re.compile(
    rf"\b(?:{_DATE}|{_DATE_DMY}|{_MON.replace('?P<mon>', '?:')}\s{_YEAR})", re.IGNORECASE
)
_YEAR_SPAN = re.compile(
    rf"\b{_YEAR}(?:\s?,\s?{_YEAR})*\s?,?\s(?:to|and|through|-)\s{_YEAR}\b|\b{_YEAR}\s?[-–]\s?{_YEAR}\b",
    re.IGNORECASE,
)


def _date_parts(g: dict[str, str | None]) -> tuple[int, int, int]:
    """(year, month, day) of a ``_DATE`` or ``_DATE_DMY`` match."""
    year = g["year"] or g["year2"]
    mon = g["mon"] or g["mon2"]
    day = g.get("day") or g.get("day2")
    assert year is not None and mon is not None
    return int(year), _MONTHS[mon.lower()], int(day or 0)


def _quarter_of(month: int) -> str:
    return f"Q{(month - 1) // 3 + 1}"


_MONTHS_ENDED = {"three": 3, "3": 3, "six": 6, "6": 6, "nine": 9, "9": 9, "twelve": 12, "12": 12}


def _months_ended(g: dict[str, str | None]) -> str | None:
    """ "the six months ended June 30, 2024" -> H1 2024."""
    n = _MONTHS_ENDED[(g["n"] or "").lower()]
    year, mon, _ = _date_parts(g)
    sub = {3: _quarter_of(mon), 6: "H1" if mon <= 6 else "H2", 9: "9M", 12: "FY"}[n]
    return format_label(sub, year)


def _fiscal_year(g: dict[str, str | None], split_only: bool = False) -> str | None:
    """ "fiscal 2023", "FY24", "2017-18" (a split year is labelled by the year it ends in)."""
    year = _year(g["year"])
    assert year is not None
    y2 = g.get("y2")
    if y2:
        end = int(y2) if len(y2) == 4 else (year // 100) * 100 + int(y2)
        if end < year:
            end += 100
        if end != year + 1:
            return None
        year = end
    elif split_only:
        return None
    return format_label("FY", year)


def _month_number(tok: str | None) -> int:
    t = (tok or "").lower()
    return int(t) if t.isdigit() else _MONTHS[t]


def _month_range(g: dict[str, str | None]) -> str | None:
    """ "January-June 2009" -> H1 2009; "1-9/2008" -> 9M 2008; "April to June" -> Q2."""
    key = (_month_number(g["m1"]), _month_number(g["m2"]))
    sub = _RANGE_SUB.get(key)
    return format_label(sub, _year(g["year"])) if sub else None


def _fiscal_flag(g: dict[str, str | None], *keys: str) -> bool:
    return any(g.get(k) for k in keys)


#: pattern name -> the label of an absolute period it matched (None: not a period after all)
_ABSOLUTE: dict[str, Callable[[dict[str, str | None]], str | None]] = {
    "months_ended": _months_ended,
    "year_ended": lambda g: format_label("FY", _date_parts(g)[0]),
    "year_to": lambda g: format_label("FY", int(str(g["year"]))),
    "quarter_ended": lambda g: format_label(_quarter_of(_date_parts(g)[1]), _date_parts(g)[0]),
    "ord_quarter": lambda g: format_label(
        f"Q{_ORDINALS[(g['ord'] or '').lower()]}",
        _year(g["year"]),
        _fiscal_flag(g, "fis0", "fis1", "fis"),
    ),
    "q_label": lambda g: format_label(f"Q{g['q']}", _year(g["year"]), _fiscal_flag(g, "fy")),
    "q_pre": lambda g: format_label(f"Q{g['q']}", _year(g["year"]), _fiscal_flag(g, "fy")),
    "fy_q": lambda g: format_label(f"Q{g['q']}", _year(g["year"]), True),
    "h_label": lambda g: format_label(f"H{g['h']}", _year(g["year"]), _fiscal_flag(g, "fy")),
    "h_pre": lambda g: format_label(f"H{g['h']}", _year(g["year"]), _fiscal_flag(g, "fy")),
    "half": lambda g: format_label(
        "H1" if (g["hw"] or "").lower() == "first" else "H2",
        _year(g["year"]),
        _fiscal_flag(g, "fis"),
    ),
    "nine_label": lambda g: format_label("9M", _year(g["year"]), _fiscal_flag(g, "fy")),
    "nine": lambda g: format_label("9M", _year(g["year"]), _fiscal_flag(g, "fis")),
    "six": lambda g: format_label("H1", _year(g["year"]), _fiscal_flag(g, "fis")),
    "twelve": lambda g: format_label("FY", _year(g["year"])),
    "month_range": _month_range,
    "month_num_range": _month_range,
    "fiscal_year": _fiscal_year,
    "fy_label": _fiscal_year,
    "fiscal_short": _fiscal_year,
    "split_year": lambda g: _fiscal_year(g, split_only=True),
    "full_year": lambda g: format_label("FY", _year(g["year"])),
    "year": lambda g: format_label("FY", _year(g["year"])),
}
_ABSOLUTE["quarterly_inst"] = _ABSOLUTE["ord_quarter"]


def _relative(name: str, g: dict[str, str | None], s: int, e: int) -> PeriodMention | None:
    """Dates (balances) and periods named relative to the current one."""
    if name == "iso":
        return PeriodMention(s, e, "date", f"{g['year']}-{g['m']}-{g['d']}")
    if name == "as_of":
        year, mon, day = _date_parts(g)
        return PeriodMention(s, e, "date", f"{year:04d}-{mon:02d}-{day:02d}")
    if name == "same_period" and g.get("year"):
        year = int(g["year"] or 0)
        if g.get("y2"):
            year = (year // 100) * 100 + int(g["y2"] or 0)
        return PeriodMention(s, e, "same", year=year)
    if name in ("same_period", "prev_year"):
        return PeriodMention(s, e, "prev")
    if name == "prev_quarter":
        return PeriodMention(s, e, "prev_step")
    if name == "unresolved":
        return PeriodMention(s, e, "unresolved")
    return None  # pragma: no cover


def _mention(name: str, m: re.Match[str]) -> PeriodMention | None:
    g = m.groupdict()
    if name in _ABSOLUTE:
        label = _ABSOLUTE[name](g)
        return PeriodMention(m.start(), m.end(), "abs", label) if label else None
    return _relative(name, g, m.start(), m.end())


def find_dates(text: str) -> list[tuple[int, int]]:
    """Spans of calendar dates ("June 13, 2019", "10 February 2011", "December 2018")."""
    return [(m.start(), m.end()) for m in _DATE_ANY.finditer(text)]


def find_periods(text: str) -> list[PeriodMention]:
    """Periods named in ``text``, left to right, longest match first, not overlapping.

    Calendar dates ("June 13, 2019", "10 February 2011") are not periods (only "as of <date>" is,
    for balances), and year ranges or lists ("2015 to 2018") are not periods either.
    """
    blocked: list[tuple[int, int]] = []
    for m in _DATE_ANY.finditer(text):
        blocked.append((m.start(), m.end()))
    for m in _YEAR_SPAN.finditer(text):
        blocked.append((m.start(), m.end()))
    found: list[PeriodMention] = []
    for name, rx in _PERIOD_PATTERNS:
        for m in rx.finditer(text):
            if m.end() == m.start():
                continue
            mention = _mention(name, m)
            if mention is None:
                continue
            if name == "year" and any(bs <= m.start() < be for bs, be in blocked):
                continue
            found.append(mention)
    found.sort(key=lambda p: (p.start, -(p.end - p.start)))
    out: list[PeriodMention] = []
    for p in found:
        if out and p.start < out[-1].end:
            continue
        out.append(p)
    return out


def period_from_text(text: str | None) -> str | None:
    """A period as written -> its label ("first quarter of 2024" -> "Q1 2024"); None for none."""
    if text is None or not text.strip() or text.strip().lower() in ("null", "none", "n/a"):
        return None
    absolute = [p for p in find_periods(text) if p.kind in ("abs", "date")]
    if not absolute:
        raise NormalizationError(text, "no period recognised")
    labels = {p.label for p in absolute}
    if len(labels) > 1:
        # "fiscal 2005-06, ended October 31, 2006" names one period twice; otherwise ambiguous
        raise NormalizationError(text, f"several periods: {sorted(str(x) for x in labels)}")
    return absolute[0].label
