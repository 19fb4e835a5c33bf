"""Tables flattened into text: read with the header's scale and columns, or not at all. Pure.

"EUR million unless stated otherwise Q3/21 Q3/20 9M/21 9M/20 Net sales 142.0 120.4 411.7 365.2
Operating profit 12.1 9.8 30.2 25.0" is a table: a scale and currency, a row of column periods,
then rows of a metric name and one number per column. Each cell of a vocabulary metric becomes a
fact in the header's scale (142.0 is EUR 142.0 million, never EUR 142); a row whose label names
another unit ("Operating margin, %", "Earnings per share, EUR") takes that unit unscaled. A row
whose cells do not match the columns, or a header without a scale, and nothing is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from schemas.errors import NormalizationError
from schemas.numbers import exact_decimal
from schemas.periods import format_label
from schemas.standards import Unit, unit_of
from worker.normalize.amounts import parse_currency, parse_number
from worker.normalize.metrics import canonical_metric
from worker.rules.candidate import Candidate

_CODES = r"EUR|USD|SEK|NOK|DKK|GBP|CHF|JPY|CAD|AUD|€|\$|£"
_HEADER = re.compile(
    rf"(?:(?P<cur>{_CODES})\s?(?P<scale>millions?|mn|mln|m|thousands?|k|billions?|bn)\b"
    r"|\b(?P<code>MEUR|TEUR|KEUR|MSEK|TSEK|MNOK|MUSD|MDKK)\b)",
    re.IGNORECASE,
)
_SCALE = {"m": 10**6, "mn": 10**6, "mln": 10**6, "k": 10**3, "bn": 10**9, "b": 10**9}
_SCALED_CODES = {"MEUR": ("EUR", 10**6), "TEUR": ("EUR", 10**3), "KEUR": ("EUR", 10**3)}
_SCALED_CODES |= {"MSEK": ("SEK", 10**6), "TSEK": ("SEK", 10**3), "MNOK": ("NOK", 10**6)}
_SCALED_CODES |= {"MUSD": ("USD", 10**6), "MDKK": ("DKK", 10**6)}
_COLUMN = (
    r"(?:(?:Q[1-4]|H[12]|9M|FY|1-3|1-6|1-9|1-12)(?:\s?/\s?|\s?['’])(?:\d{4}|\d{2})|(?:19|20)\d{2})"
)
_COLUMN_RE = re.compile(_COLUMN)
_COLUMN_SPLIT = re.compile(r"\s?/\s?|\s?['’]")
_COLUMNS = re.compile(rf"(?<![\w/-])(?:{_COLUMN}\s+)+{_COLUMN}(?![\w/-])")
_CELL = r"(?:\(\s?\d[\d,]*(?:\.\d+)?\s?\)|-?\d[\d,]*(?:\.\d+)?)"
_CELL_AT = re.compile(rf"\s*({_CELL})(?![\w.%])")
_ROW_LABEL = re.compile(r"\s*(?P<label>[A-Za-z][A-Za-z ,%()'/-]*?)\s+(?=-?\(?\d)")
_SUB_OF_RANGE = {"1-3": "Q1", "1-6": "H1", "1-9": "9M", "1-12": "FY"}


@dataclass(frozen=True, slots=True)
class Table:
    """What a flattened table gave: facts, and how many cells it holds."""

    facts: list[Candidate]
    cells: int


def _layout(s: str) -> tuple[re.Match[str], re.Match[str], int] | None:
    """(scale header, column header, where the rows start): the scale before the periods ("EUR
    million Q3/21 Q3/20 ...") or just after them ("9M '11 9M '10 , EUR m Net sales ...")."""
    header = _HEADER.search(s)
    columns = _COLUMNS.search(s, header.end()) if header else None
    if (
        header is not None
        and columns is not None
        and s[header.end() : columns.start()].count(" ") <= 6
    ):
        return header, columns, columns.end()
    columns = _COLUMNS.search(s)
    if columns is None:
        return None
    gap = re.compile(r"\s?[,:;]?\s?").match(s, columns.end())
    header = _HEADER.match(s, gap.end()) if gap else None
    if header is None:
        return None
    return header, columns, header.end()


def read_table(s: str) -> Table | None:
    """The facts of a table flattened into ``s``; None when ``s`` holds no table."""
    layout = _layout(s)
    if layout is None:
        return None
    header, columns, pos = layout
    labels = [_column_label(m.group(0)) for m in _COLUMN_RE.finditer(columns.group(0))]
    currency, scale = _header_scale(header)
    facts: list[Candidate] = []
    cells = 0
    while True:
        row = _ROW_LABEL.match(s, pos)
        if row is None:
            break
        spans = _cells(s, row.end(), len(labels))
        if spans is None:
            return Table([], cells)  # the row does not match the columns: nothing is decided
        cells += len(spans)
        facts += _row_facts(s, row.group("label"), spans, labels, currency, scale)
        pos = spans[-1][1]
    return Table(facts if all(labels) else [], cells)


def _column_label(tok: str) -> str | None:
    parts = _COLUMN_SPLIT.split(tok)
    if len(parts) == 1:
        return format_label("FY", int(tok))
    sub, year = parts
    sub = _SUB_OF_RANGE.get(sub, sub)
    return format_label(sub, int(year) if len(year) == 4 else 2000 + int(year))


def _header_scale(header: re.Match[str]) -> tuple[str, int]:
    if header.group("code"):
        return _SCALED_CODES[header.group("code").upper()]
    word = header.group("scale").lower()
    scale = _SCALE.get(word) or {"t": 10**3, "m": 10**6, "b": 10**9}[word[0]]
    return parse_currency(header.group("cur")), scale


def _cells(s: str, pos: int, n: int) -> list[tuple[int, int]] | None:
    """Exactly ``n`` cells from ``pos``, then the end, a row label or punctuation."""
    spans = []
    for _ in range(n):
        m = _CELL_AT.match(s, pos)
        if m is None:
            return None
        spans.append((m.start(1), m.end(1)))
        pos = m.end()
    if re.match(r"\s*\d", s[pos:]):
        return None  # more cells than columns
    return spans


def _row_facts(
    s: str,
    label: str,
    spans: list[tuple[int, int]],
    columns: list[str | None],
    currency: str,
    scale: int,
) -> list[Candidate]:
    """A row of a vocabulary metric in the unit its label and the header give; else none."""
    name, unit, cur, mult = _row_unit(label, currency, scale)
    if name is None or unit is None:
        return []
    out = []
    for (a, b), period in zip(spans, columns, strict=True):
        raw = s[a:b]
        try:
            value = parse_number(raw.strip("()").strip().lstrip("-")) * mult
        except NormalizationError:
            return []
        if raw.startswith(("(", "-")):
            value = -value
        evidence = (
            ("metric", "table row label"),
            ("period", "table column"),
            ("sign", "as written"),
            ("scale", "table header" if mult != 1 else "as written"),
        )
        out.append(Candidate(a, b, name, exact_decimal(value), cur, unit, period, evidence))
    return out


def _row_unit(
    label: str, currency: str, scale: int
) -> tuple[str | None, Unit | None, str | None, Decimal | int]:
    text = label.strip(" ,")
    percent = "%" in text
    per_share = bool(re.search(r"\bper\s+share\b|\beps\b", text, re.IGNORECASE))
    code = re.search(r",\s*(EUR|USD|SEK|NOK|DKK|GBP)\s*$", text)
    text = re.sub(r",?\s*(?:%|EUR|USD|SEK|NOK|DKK|GBP|\(.*\))\s*$", "", text).strip(" ,")
    metric = canonical_metric(text)
    if not metric.known or metric.loss:
        return None, None, None, 1
    unit = unit_of(metric.metric)
    if unit is Unit.PERCENT:
        return (metric.metric, unit, None, 1) if percent else (None, None, None, 1)
    if percent:
        return None, None, None, 1
    if unit is Unit.CURRENCY_PER_SHARE or per_share:
        if unit is not Unit.CURRENCY_PER_SHARE:
            return None, None, None, 1
        return metric.metric, unit, code.group(1) if code else currency, 1
    return metric.metric, unit, currency, scale
