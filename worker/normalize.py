"""Normalization: amounts, currencies, periods and metric names as the standard defines them. Pure.

Every function takes text and returns values (``Decimal`` for money) or raises
:class:`schemas.errors.NormalizationError` with the raw text and the reason. ``build_fact`` is the
one place where a proposed fact (a model's raw strings, or the rules extractor's spans) becomes a
validated :class:`schemas.fact.Fact`: the proposer is never trusted with arithmetic or scaling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from schemas.errors import NormalizationError
from schemas.fact import Fact
from schemas.standards import (
    ADJUSTED_PREFIX,
    ADJUSTED_WORDS,
    CURRENCIES,
    CURRENCY_SYMBOLS,
    CURRENCY_WORDS,
    INCOME_METRICS,
    METRIC_SYNONYMS,
    SCALES,
    SUBUNITS,
    Unit,
    is_known_metric,
    metric_base,
    unit_of,
)

# --------------------------------------------------------------------------------------------
# Numbers and amounts
# --------------------------------------------------------------------------------------------

#: Currency tokens that also carry a scale ("TEUR 1,234" = EUR 1,234 thousand).
_SCALED_CODES: dict[str, tuple[str, int]] = {
    "TEUR": ("EUR", 10**3),
    "KEUR": ("EUR", 10**3),
    "MEUR": ("EUR", 10**6),
    "MUSD": ("USD", 10**6),
    "MSEK": ("SEK", 10**6),
    "MNOK": ("NOK", 10**6),
    "MDKK": ("DKK", 10**6),
    "TSEK": ("SEK", 10**3),
}
_LOWER_CODES = ("eur", "usd", "sek", "nok", "dkk", "gbp", "chf", "jpy", "cny", "inr", "rmb")


def _alt(words: list[str] | tuple[str, ...] | set[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_CODE_WORDS = sorted(CURRENCIES | {"RMB"} | set(_SCALED_CODES))
_SYMBOL_WORDS = [s for s in CURRENCY_SYMBOLS if s != "RMB"]
_PREFIX = (
    rf"(?:(?<![A-Za-z])(?:{_alt(_SYMBOL_WORDS)})|(?<![A-Za-z])(?:{_alt(_CODE_WORDS)})(?![A-Za-z]))"
)
_SUFFIX = (
    rf"(?:(?:{_alt(_CODE_WORDS)}|{_alt(_LOWER_CODES)})(?![A-Za-z])"
    rf"|(?i:{_alt(list(CURRENCY_WORDS))})(?![A-Za-z])|[€£¥₹])"
)
_NUM = (
    r"(?:\d{1,3}(?:(?:[,.'\u00a0\u202f]| [.,])\d{3})+(?:(?:[.,]| [.,])\d+)?"
    r"|\d+(?:(?:[.,]| [.,])\d+)?|[.,]\d+)(?!\d)"
)
_SCALE = (
    r"(?:(?i:thousands?|millions?|billions?|trillion|mln|mn|bln|bn|tn|crores?|lakhs?|lacs?)"
    r"(?![A-Za-z])|(?i:mio)(?![A-Za-z])\.?|(?:MM|m|M)(?![A-Za-z])|(?<=[\d)])[kKbB](?![A-Za-z]))"
)
_SUB = r"(?:\s?(?i:euro ?cents?|hk cents|us cents|cents?|pence|penny)|(?<=\d)[pc])(?![A-Za-z])"
_PCT = r"(?:%|(?i:percent|per cent|pct)(?![A-Za-z]))"
_PP = r"(?i:percentage points?|pp|basis points|bps)(?![A-Za-z])"
_PER_SHARE = r"(?i:\s?(?:per|a|/)\s?(?:diluted |basic |fully diluted |ordinary |common )?share)"

AMOUNT_RE = re.compile(
    rf"(?P<neg>(?i:negative|minus)\s+|[-−](?=\s?[\d$€£¥₹(A-Z]))?"
    rf"(?P<open>\()?"
    rf"(?P<pre>{_PREFIX})?"
    rf"(?P<open2>\s?\()?"
    rf"\s?(?P<num>{_NUM})"
    rf"(?P<close2>\))?"
    rf"(?:\s?(?P<scale>{_SCALE}))?"
    rf"(?P<sub>{_SUB})?"
    rf"(?:\s?(?P<pp>{_PP})|\s?(?P<pct>{_PCT}))?"
    rf"(?:\s?(?P<suf>{_SUFFIX}))?"
    rf"(?P<ps>{_PER_SHARE})?"
    rf"(?P<close>\))?"
)


@dataclass(frozen=True, slots=True)
class Amount:
    """A parsed amount: fully scaled value, ISO currency if the text gives one, and its unit."""

    value: Decimal
    currency: str | None
    unit: Unit
    #: the text gave a scale word (million, bn, ...) or a sub-unit (cents, p)
    scaled: bool = False
    #: the amount is a change in percentage points or basis points, not a level
    points: bool = False


@dataclass(frozen=True, slots=True)
class AmountMention:
    """An amount found in a text: ``text[start:end]`` is its ``value_text``."""

    start: int
    end: int
    amount: Amount
    #: parentheses tight around the amount, or a minus / "negative" marked it negative
    negative_marked: bool


def parse_number(raw: str) -> Decimal:
    """Digits with grouping and decimal separators, as written, to a ``Decimal``.

    Both "," and "." present: the last one is the decimal mark ("1,234.5", "1.234,5"). One kind
    only: groups of exactly three digits are thousands ("12,500", "1.234.567"); a single "." is a
    decimal point ("1.234" = 1.234, the English convention); a single "," followed by one or two
    digits is a decimal comma ("12,5"). Tokenized text ("297 .3", "995 ,000") reads the same way.
    """
    s = raw.strip().replace(" .", ".").replace(" ,", ",")
    for ch in ("'", "\u00a0", "\u202f", " "):
        s = s.replace(ch, "")
    if not s or not re.fullmatch(r"[\d.,]+", s) or not re.search(r"\d", s):
        raise NormalizationError(raw, "not a number")
    has_comma, has_dot = "," in s, "." in s
    if has_comma and has_dot:
        dec = "," if s.rfind(",") > s.rfind(".") else "."
        grp = "." if dec == "," else ","
        head, _, tail = s.rpartition(dec)
        if not _grouped(head, grp) or grp in tail:
            raise NormalizationError(raw, "inconsistent digit grouping")
        s = head.replace(grp, "") + "." + tail
    elif has_comma:
        parts = s.split(",")
        if _grouped(s, ","):
            s = s.replace(",", "")
        elif len(parts) == 2:
            s = parts[0] + "." + parts[1]
        else:
            raise NormalizationError(raw, "inconsistent digit grouping")
    elif has_dot and s.count(".") > 1:
        if not _grouped(s, "."):
            raise NormalizationError(raw, "inconsistent digit grouping")
        s = s.replace(".", "")
    try:
        return Decimal(s if not s.startswith(".") else "0" + s)
    except InvalidOperation as exc:  # pragma: no cover - guarded by the regex above
        raise NormalizationError(raw, "not a number") from exc


def _grouped(s: str, sep: str) -> bool:
    parts = s.split(sep)
    return (
        len(parts) > 1
        and 1 <= len(parts[0]) <= 3
        and all(len(p) == 3 for p in parts[1:])
        and all(p.isdigit() for p in parts)
    )


def parse_currency(raw: str) -> str:
    """A currency as written ("$", "US$", "€", "EUR", "euros", "pounds sterling") -> ISO 4217.

    A bare "$" or "dollars" is USD: the documented default for an ambiguous dollar.
    """
    s = raw.strip()
    if s in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[s]
    if s.upper() in CURRENCIES:
        return s.upper()
    if s.upper() == "RMB":
        return "CNY"
    if s.upper() in _SCALED_CODES:
        return _SCALED_CODES[s.upper()][0]
    word = " ".join(s.lower().split())
    if word in CURRENCY_WORDS:
        return CURRENCY_WORDS[word]
    raise NormalizationError(raw, "unknown currency")


def _scale_of(token: str) -> int:
    t = token.rstrip(".")
    if t in ("M", "MM"):
        return 10**6
    if t in ("b", "B"):
        return 10**9
    return SCALES[t.lower()]


def _amount_from_match(m: re.Match[str]) -> tuple[Amount, bool, bool]:
    """(amount, has_currency_or_percent, negative_marked) for one AMOUNT_RE match."""
    raw = m.group(0)
    value = parse_number(m.group("num"))
    currency: str | None = None
    scaled = False
    for key in ("pre", "suf"):
        tok = m.group(key)
        if tok and currency is None:
            code = tok.strip()
            if code.upper() in _SCALED_CODES:
                cur, mult = _SCALED_CODES[code.upper()]
                currency, value, scaled = cur, value * mult, True
            else:
                currency = parse_currency(code)
    if m.group("scale"):
        value *= _scale_of(m.group("scale"))
        scaled = True
    sub = m.group("sub")
    if sub:
        sub_word = " ".join(sub.strip().lower().split())
        if sub_word == "eurocents":
            sub_word = "euro cents"
        value /= 100
        scaled = True
        own = SUBUNITS.get(sub_word, SUBUNITS.get(sub_word.rstrip("s")))
        if own is not None and (currency is None or sub_word not in ("cents", "cent", "c")):
            currency = own
        elif currency is None:
            currency = "USD"
    # "(1.2)", "$(1.2) million", "(1.2) EUR", "($1.2 million)" are accounting negatives;
    # "(USD 43.5 m)" is a conversion or comparative written in parentheses, not a negative.
    inner = bool(m.group("open") or m.group("open2")) and bool(m.group("close2"))
    outer = bool(m.group("open")) and bool(m.group("close"))
    outer = outer and not m.group("suf") and not (m.group("pre") or "$")[-1].isalpha()
    parens = inner or outer
    negative = bool(m.group("neg")) or parens
    if negative:
        value = -abs(value)
    if m.group("pct") or m.group("pp"):
        unit = Unit.PERCENT
        currency = None
    elif m.group("ps") and currency is not None:
        unit = Unit.CURRENCY_PER_SHARE
    elif currency is not None:
        unit = Unit.CURRENCY
    else:
        unit = Unit.COUNT
    amount = Amount(
        value=_clean(value), currency=currency, unit=unit, scaled=scaled, points=bool(m.group("pp"))
    )
    known = currency is not None or unit is Unit.PERCENT
    del raw
    return amount, known, negative


def _clean(value: Decimal) -> Decimal:
    """Exact value without exponent or trailing zeros: 5.300E+6 -> 5300000, 1.00 -> 1."""
    if value == value.to_integral_value():
        return Decimal(int(value))
    return value.normalize()


_WORD_NUMBERS = {"nil": Decimal(0), "zero": Decimal(0), "none": Decimal(0)}


def parse_amount(text: str) -> Amount:
    """One amount as written ("$(9.8) million", "15.94p", "₹1,234 crore", "EUR 2.01 mn", "45.2%").

    The whole text must be the amount; raises :class:`NormalizationError` otherwise.
    """
    s = re.sub(r"[ \t\r\n]+", " ", text).strip()
    if not s:
        raise NormalizationError(text, "empty amount")
    if s.lower() in _WORD_NUMBERS:
        return Amount(value=_WORD_NUMBERS[s.lower()], currency=None, unit=Unit.COUNT)
    m = AMOUNT_RE.fullmatch(s)
    if m is None:
        raise NormalizationError(
            text,
            "not an amount (expected a number with optional currency, "
            "scale, sub-unit or percent sign)",
        )
    if s.count("(") != s.count(")"):
        raise NormalizationError(text, "unbalanced parentheses")
    amount, _, _ = _amount_from_match(m)
    return amount


def find_amounts(text: str) -> list[AmountMention]:
    """Amounts in running text that carry a currency, a percent sign or a scale word.

    Bare numbers (years, counts, phone numbers, table cells without a unit) are not returned.
    """
    out: list[AmountMention] = []
    for m in AMOUNT_RE.finditer(text):
        start, end = m.start(), m.end()
        start += len(m.group(0)) - len(m.group(0).lstrip())
        if m.group("ps"):
            end = m.start("ps")  # value_text stops before "per share"
        if m.group("open") and not m.group("close"):
            start += 1
        if m.group("close") and not m.group("open"):
            end -= 1
        glued = start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")
        if glued and (not m.group("pre") or text[start - 1].isdigit()):
            continue  # inside a token such as "SAA1V" or "2019s"
        if end < len(text) and text[end].isalnum() and not m.group("scale"):
            continue
        try:
            amount, known, negative = _amount_from_match(m)
        except NormalizationError:
            continue
        if not known and not amount.scaled:
            continue
        out.append(AmountMention(start, end, amount, negative))
    return out


# --------------------------------------------------------------------------------------------
# Periods
# --------------------------------------------------------------------------------------------

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
    sub-period in ``year``), ``unresolved`` ("the prior period": cannot be labelled)."""

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


def period_label(sub: str, year: int | None, fiscal: bool = False) -> str:
    """("Q1", 2024) -> "Q1 2024"; ("Q4", 2024, fiscal) -> "Q4 FY2024"; ("FY", 2023) -> "FY 2023"."""
    if year is None:
        return sub
    if sub == "FY":
        return f"FY {year}"
    return f"{sub} FY{year}" if fiscal else f"{sub} {year}"


def split_label(label: str) -> tuple[str, int | None, bool]:
    """Inverse of :func:`period_label`."""
    parts = label.split()
    if len(parts) == 1:
        return parts[0], None, False
    if parts[1].startswith("FY"):
        return parts[0], int(parts[1][2:]), True
    return parts[0], int(parts[1]), False


def shift_label(label: str, *, to_year: int | None = None, by_years: int = 0) -> str | None:
    sub, year, fiscal = split_label(label)
    if year is None:
        return None
    return period_label(sub, to_year if to_year is not None else year + by_years, fiscal)


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
            rf"\b(?:the\s)?(?:{_FIS}|fiscal\s)?(?:year|twelve months)\s"
            rf"(?:ended|ending)\s(?:on\s)?(?:{_DATE}|{_DATE_DMY})",
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
            "month_range",
            rf"\b(?P<m1>{'|'.join(sorted(_MONTHS, key=len, reverse=True))})\.?\s?"
            rf"(?:-|–|to|through|until)\s?(?P<m2>"
            rf"{'|'.join(sorted(_MONTHS, key=len, reverse=True))})\.?"
            rf"(?:\s?,?\s(?P<year>{_YEAR}))?",
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
            r"|\byear[\s-](?:on|over)[\s-]year\b|\by-?o-?y\b|\bthe\syear-ago\s\w+",
        ),
        (
            "unresolved",
            r"\b(?:the\s)?(?:prior|previous|preceding)[\s-](?:period|quarter)\b"
            r"|\bsequential(?:ly)?\b",
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


def _mention(name: str, m: re.Match[str]) -> PeriodMention | None:
    g = m.groupdict()
    s, e = m.start(), m.end()
    if name == "iso":
        return PeriodMention(s, e, "date", m.group(0))
    if name == "as_of":
        year, mon, day = g["year"] or g["year2"], g["mon"] or g["mon2"], g["day"] or g["day2"]
        return PeriodMention(
            s, e, "date", f"{int(year):04d}-{_MONTHS[mon.lower()]:02d}-{int(day):02d}"
        )
    if name == "months_ended":
        n = {"three": 3, "3": 3, "six": 6, "6": 6, "nine": 9, "9": 9, "twelve": 12, "12": 12}[
            g["n"].lower()
        ]
        mon, year = _MONTHS[(g["mon"] or g["mon2"]).lower()], int(g["year"] or g["year2"])
        if n == 3:
            sub = f"Q{(mon - 1) // 3 + 1}"
        elif n == 6:
            sub = "H1" if mon <= 6 else "H2"
        elif n == 9:
            sub = "9M"
        else:
            sub = "FY"
        return PeriodMention(s, e, "abs", period_label(sub, year))
    if name == "year_ended":
        return PeriodMention(s, e, "abs", period_label("FY", int(g["year"] or g["year2"])))
    if name == "quarter_ended":
        mon, year = _MONTHS[(g["mon"] or g["mon2"]).lower()], int(g["year"] or g["year2"])
        return PeriodMention(s, e, "abs", period_label(f"Q{(mon - 1) // 3 + 1}", year))
    if name in ("ord_quarter", "quarterly_inst"):
        fiscal = bool(g.get("fis0") or g.get("fis1") or g.get("fis"))
        return PeriodMention(
            s, e, "abs", period_label(f"Q{_ORDINALS[g['ord'].lower()]}", _year(g["year"]), fiscal)
        )
    if name in ("q_label", "q_pre", "fy_q"):
        fiscal = bool(g.get("fy")) or name == "fy_q"
        return PeriodMention(s, e, "abs", period_label(f"Q{g['q']}", _year(g["year"]), fiscal))
    if name in ("h_label", "h_pre"):
        return PeriodMention(
            s, e, "abs", period_label(f"H{g['h']}", _year(g["year"]), bool(g["fy"]))
        )
    if name == "half":
        sub = "H1" if g["hw"].lower() == "first" else "H2"
        return PeriodMention(s, e, "abs", period_label(sub, _year(g["year"]), bool(g["fis"])))
    if name == "nine_label":
        return PeriodMention(s, e, "abs", period_label("9M", _year(g["year"]), bool(g["fy"])))
    if name == "nine":
        return PeriodMention(s, e, "abs", period_label("9M", _year(g["year"]), bool(g["fis"])))
    if name == "month_range":
        key = (_MONTHS[g["m1"].lower()], _MONTHS[g["m2"].lower()])
        if key not in _RANGE_SUB:
            return None
        return PeriodMention(s, e, "abs", period_label(_RANGE_SUB[key], _year(g["year"])))
    if name in ("fiscal_year", "fy_label", "split_year", "fiscal_short"):
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
        elif name == "split_year":
            return None
        return PeriodMention(s, e, "abs", period_label("FY", year))
    if name == "full_year":
        return PeriodMention(s, e, "abs", period_label("FY", _year(g["year"])))
    if name == "same_period":
        if g.get("year"):
            year = int(g["year"])
            if g.get("y2"):
                year = (year // 100) * 100 + int(g["y2"])
            return PeriodMention(s, e, "same", year=year)
        return PeriodMention(s, e, "prev")
    if name == "prev_year":
        return PeriodMention(s, e, "prev")
    if name == "unresolved":
        return PeriodMention(s, e, "unresolved")
    if name == "year":
        return PeriodMention(s, e, "abs", period_label("FY", int(g["year"])))
    return None  # pragma: no cover


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


def parse_period(text: str | None) -> str | None:
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


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------

_SYNONYM_INDEX: dict[str, str] = {
    form: metric for metric, forms in METRIC_SYNONYMS.items() for form in forms
}
_QUALIFIERS = (
    "total ",
    "consolidated ",
    "group ",
    "reported ",
    "quarterly ",
    "annual ",
    "diluted ",
    "basic ",
    "the ",
    "company ",
    "gaap ",
    "ifrs ",
    "statutory ",
)
_ADJ_WORDS = sorted(ADJUSTED_WORDS, key=len, reverse=True)
_ADJ_SUFFIX = re.compile(
    r",?\s*\(?(?:excluding|before|excl\.?|ex)\s(?:non-?recurring|one-?off|special|exceptional|"
    r"extraordinary|one-?time)\s(?:items|charges|costs)\)?$"
)


@dataclass(frozen=True, slots=True)
class MetricName:
    metric: str
    known: bool
    loss: bool


def canonical_metric(text: str) -> MetricName:
    """A metric as written -> canonical name ("net profit" -> "net income", "Non-GAAP EPS" ->
    "adjusted earnings per share"). Unknown names are kept (lower case) and marked unknown."""
    s = " ".join(text.lower().replace("’", "'").split()).strip(" .:;")
    if not s:
        raise NormalizationError(text, "empty metric")
    adjusted = False
    m = _ADJ_SUFFIX.search(s)
    if m:
        adjusted, s = True, s[: m.start()].strip()
    while s not in _SYNONYM_INDEX:
        word = next((w for w in _ADJ_WORDS if s.startswith(w + " ")), None)
        if word is not None:
            adjusted, s = True, s[len(word) + 1 :]
            continue
        qual = next((q for q in _QUALIFIERS if s.startswith(q)), None)
        if qual is None:
            break
        s = s[len(qual) :]
    loss = bool(re.search(r"\bloss(es)?\b|\bused in\b", s))
    metric = _SYNONYM_INDEX.get(s)
    if metric is None and s in METRIC_SYNONYMS:
        metric = s
    if metric is None:
        if s.startswith(ADJUSTED_PREFIX) and is_known_metric(s):
            return MetricName(s, True, loss)
        return MetricName((ADJUSTED_PREFIX if adjusted else "") + s, False, loss)
    return MetricName((ADJUSTED_PREFIX if adjusted else "") + metric, True, loss)


# --------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------

_LOSS_BEFORE = re.compile(
    r"\bloss(?:es)?\s(?:\w+\s){0,3}?(?:of|was|were|totall?ed|amounted\sto|came\sto|narrowed\sto|"
    r"widened\sto|to|at)?\s?(?:approximately\s|about\s|some\s|nearly\s)?$",
    re.IGNORECASE,
)


def _locate(snippet: str, value_text: str) -> tuple[int, int]:
    i = snippet.find(value_text)
    if i >= 0:
        return i, i + len(value_text)
    # the same characters with the snippet's own spacing ("EUR 5.3  million")
    pattern = r"\s*".join(re.escape(ch) for ch in value_text if not ch.isspace())
    m = re.search(pattern, snippet, re.IGNORECASE)
    if m is None:
        raise NormalizationError(value_text, "value_text does not occur in the snippet")
    return m.start(), m.end()


def build_fact(
    *,
    snippet: str,
    value_text: str,
    metric_text: str,
    period_text: str | None,
    company: str | None,
    currency_hint: str | None,
    company_hint: str | None = None,
    context: str = "",
) -> Fact:
    """Turn a proposed fact (raw strings) into a validated :class:`Fact` or raise
    :class:`NormalizationError`. The value is parsed and scaled here, never taken from a model."""
    start, end = _locate(snippet, value_text)
    located = snippet[start:end]
    amount = parse_amount(located)
    name = canonical_metric(metric_text)
    metric = name.metric
    value = amount.value
    if amount.points:
        raise NormalizationError(value_text, "a change in points is not a level")
    unit = amount.unit
    currency = amount.currency
    if currency is None and unit is not Unit.PERCENT:
        # a currency written just next to the span ("EUR" before "5.3 million")
        for m in AMOUNT_RE.finditer(snippet[max(0, start - 6) : min(len(snippet), end + 12)]):
            window_start = max(0, start - 6)
            if m.start() + window_start <= start and m.end() + window_start >= end:
                around, _, _ = _amount_from_match(m)
                currency = around.currency
                if around.unit is Unit.CURRENCY_PER_SHARE:
                    unit = around.unit
                break
    if currency is None and unit is not Unit.PERCENT and currency_hint:
        currency = parse_currency(currency_hint)
    after = snippet[end : end + 30]
    per_share = bool(re.match(_PER_SHARE, after)) or unit is Unit.CURRENCY_PER_SHARE
    expected = unit_of(metric)
    if (
        expected is Unit.PERCENT
        and metric_base(metric) == "gross margin"
        and unit is not Unit.PERCENT
    ):
        metric = metric.replace("gross margin", "gross profit")
        expected = Unit.CURRENCY
    if expected is None:
        if unit is Unit.PERCENT:
            expected = Unit.PERCENT
        elif currency is not None:
            expected = Unit.CURRENCY_PER_SHARE if per_share else Unit.CURRENCY
        else:
            expected = Unit.COUNT
    if expected is Unit.PERCENT:
        if unit is not Unit.PERCENT:
            raise NormalizationError(value_text, f"{metric} is a percentage")
        currency = None
    elif unit is Unit.PERCENT:
        raise NormalizationError(value_text, f"{metric} is not a percentage")
    elif expected in (Unit.CURRENCY, Unit.CURRENCY_PER_SHARE) and currency is None:
        raise NormalizationError(value_text, "no currency in the text and no currency hint")
    elif expected is Unit.COUNT:
        currency = None
    if expected is Unit.CURRENCY and per_share:
        raise NormalizationError(value_text, f"{metric} is not a per-share amount")
    loss = name.loss or bool(_LOSS_BEFORE.search(snippet[max(0, start - 60) : start]))
    if metric_base(metric) in INCOME_METRICS and value > 0 and loss:
        value = -value
    who = _company(company, snippet, context) or (company_hint.strip() if company_hint else None)
    try:
        return Fact(
            company=who or None,
            metric=metric,
            metric_known=is_known_metric(metric),
            value=value,
            currency=currency,
            unit=expected,
            quarter=parse_period(period_text),
            value_text=located,
            start=start,
            end=end,
        )
    except ValidationError as exc:
        reason = "; ".join(e["msg"] for e in exc.errors())
        raise NormalizationError(value_text, reason) from exc


def _company(company: str | None, snippet: str, context: str) -> str | None:
    """The proposed company if the text names it (never an invented name)."""
    if not company or not company.strip():
        return None
    name = company.strip()
    haystack = f"{context}\n{snippet}".lower()
    words = [w for w in re.findall(r"[\w&]+", name.lower()) if len(w) > 1]
    if words and any(w in haystack for w in words):
        return name
    return None
