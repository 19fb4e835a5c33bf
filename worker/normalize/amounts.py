"""Amounts in text: numbers, currencies, scales, sub-units and percentages to values. Pure.

Every function takes text and returns values (``Decimal`` for money) or raises
:class:`schemas.errors.NormalizationError` with the raw text and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from schemas.errors import NormalizationError
from schemas.numbers import exact_decimal
from schemas.standards import (
    CURRENCIES,
    CURRENCY_SYMBOLS,
    CURRENCY_WORDS,
    SCALES,
    SUBUNITS,
    Unit,
)

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
#: currency words that are also written glued before the number ("euro52 million", "EURO 1.9")
_PREFIX_WORDS = ("euro", "euros", "EURO")
_PREFIX = (
    rf"(?:(?<![A-Za-z])(?:{_alt(_SYMBOL_WORDS)})|(?<![A-Za-z])(?:{_alt(_CODE_WORDS)})(?![A-Za-z])"
    rf"|(?<![A-Za-z])(?:{_alt(_PREFIX_WORDS)})(?=\s?\d))"
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
PER_SHARE = r"(?i:\s?(?:per|a|/)\s?(?:diluted |basic |fully diluted |ordinary |common )?share)"

AMOUNT_RE = re.compile(
    rf"(?P<neg>(?i:negative|minus)\s+|[-−](?=\s?[\d$€£¥₹(A-Z]))?"
    rf"(?P<open>\()?"
    rf"(?P<pre>{_PREFIX})?"
    rf"(?P<neg2>(?<=[A-Za-z$€£¥₹])\s?[-−](?=\d))?"
    rf"(?P<open2>\s?\()?"
    rf"\s?(?P<num>{_NUM})"
    rf"(?P<close2>\))?"
    rf"(?:\s?(?P<scale>{_SCALE}))?"
    rf"(?P<sub>{_SUB})?"
    rf"(?:\s?(?P<pp>{_PP})|\s?(?P<pct>{_PCT}))?"
    rf"(?(pre)|(?:\s?(?P<suf>{_SUFFIX}))?)"
    rf"(?P<ps>{PER_SHARE})?"
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
    #: where the scale word ends when it stands after a parenthesised comparative ("EUR 84.6
    #: ( 79.1 ) million"); the text up to there belongs to this amount
    scale_end: int | None = None


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


def amount_from_match(m: re.Match[str]) -> tuple[Amount, bool, bool]:
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
    negative = bool(m.group("neg") or m.group("neg2")) or parens
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
        value=exact_decimal(value),
        currency=currency,
        unit=unit,
        scaled=scaled,
        points=bool(m.group("pp")),
    )
    known = currency is not None or unit is Unit.PERCENT
    del raw
    return amount, known, negative


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
    amount, _, _ = amount_from_match(m)
    return amount


#: the euro sign mis-decoded into its code point, as some feeds write it: "(  x20ac ) 3.6 billion"
_MOJIBAKE_EURO = re.compile(r"\(\s*x20ac\s*\)|x20ac(?=\s?\d)", re.IGNORECASE)


def find_amounts(text: str) -> list[AmountMention]:
    """Amounts in running text that carry a currency, a percent sign or a scale word.

    Bare numbers (years, counts, phone numbers, table cells without a unit) are not returned.
    """
    out: list[AmountMention] = []
    markers = {e.end() - 1: e.start() for e in _MOJIBAKE_EURO.finditer(text)}
    read = _MOJIBAKE_EURO.sub(lambda e: " " * (len(e.group(0)) - 1) + "€", text)
    for m in AMOUNT_RE.finditer(read):
        start, end = m.start(), m.end()
        start += len(m.group(0)) - len(m.group(0).lstrip())
        start = markers.get(start, start)  # value_text keeps the marker as written
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
            amount, known, negative = amount_from_match(m)
        except NormalizationError:
            continue
        if not known and not amount.scaled:
            continue
        out.append(AmountMention(start, end, amount, negative))
    return _scale_after_comparative(text, out)


#: "EUR 84.6 ( 79.1 ) million", "EUR -4.3 ( +1.2 ) million", "NOK 0.42 ( 0.60 ) per share",
#: "EUR 2.1 ( profit 0.6 ) million": the scale (or "per share") written once, after the
#: comparative in parentheses, is the scale of both figures
_PAREN_THEN_SCALE = re.compile(
    rf"\s?\(\s?(?:[A-Za-z]+\s)?(?:{_PREFIX})?\s?[-+−]?\s?{_NUM}\s?\)"
    rf"\s?(?:(?P<scale>{_SCALE})|(?P<ps>{PER_SHARE}))"
)


def _scale_after_comparative(text: str, found: list[AmountMention]) -> list[AmountMention]:
    """An amount with a currency and no scale whose scale follows its parenthesised comparative
    takes that scale; the comparative inside the parentheses is not an amount of its own."""
    out: list[AmountMention] = []
    skip_until = -1
    for mention in found:
        if mention.start < skip_until:
            continue
        amount = mention.amount
        m = _PAREN_THEN_SCALE.match(text, mention.end)
        if m is None or amount.currency is None or amount.scaled or amount.unit is Unit.PERCENT:
            out.append(mention)
            continue
        if m.group("scale"):
            value = exact_decimal(amount.value * _scale_of(m.group("scale")))
            amount = Amount(value, amount.currency, amount.unit, scaled=True)
        else:
            amount = Amount(amount.value, amount.currency, Unit.CURRENCY_PER_SHARE)
        out.append(
            AmountMention(mention.start, mention.end, amount, mention.negative_marked, m.end())
        )
        skip_until = m.end()
    return out
