"""Metric mentions in a sentence: which vocabulary metric (or non-vocabulary blocker) each
phrase names, and whether it is adjusted, a loss, a segment's, a change or a percentage's base.
Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.standards import ADJUSTED_WORDS, METRIC_SYNONYMS
from worker.normalize.metrics import ADJUSTED_AFTER_RE, ADJUSTED_BEFORE_RE, is_loss_form


def words(text: str) -> frozenset[str]:
    """A set of words written as one whitespace-separated block."""
    return frozenset(text.split())


_BLOCKERS = (
    "income tax",
    "income taxes",
    "tax benefit",
    "tax expense",
    "deferred revenue",
    "deferred revenues",
    "unearned revenue",
    "total income",
    "other income",
    "interest income",
    "net interest income",
    "ebita",
    "dividends paid",
    "dividend payments",
    "dividend payment",
    "total dividends",
    "net debt",
    "order intake",
    "order backlog",
    "backlog",
    "comprehensive income",
    "comprehensive loss",
    "book value",
    "revenue recognition",
    "cost of sales",
    "cost of revenue",
    "cost of revenues",
    "sales and marketing",
    "noncontrolling interests",
    "non-controlling interests",
    "minority interest",
    "sales growth",
    "revenue growth",
    "net sales growth",
    "earnings growth",
    "comparable sales",
    "same-store sales",
    "like-for-like sales",
    "sales volume",
    "sales volumes",
    "sales price",
    "sales prices",
    "selling price",
    "loss on",
    "gain on",
    "profit warning",
    "cash flow hedge",
    "cash flow hedges",
    "operating expenses",
    "operating costs",
    "operating lease",
    "operating leases",
    "operating activities",
    "sales tax",
    "net assets",
    "revenue per",
    "sales per",
    "earnings call",
    "earnings release",
    "income statement",
)
_BARE = ("profit", "loss", "losses", "earnings")
FORMS: dict[str, str | None] = {f: m for m, forms in METRIC_SYNONYMS.items() for f in forms}
FORMS.update({b: None for b in _BLOCKERS})
FORMS.update({b: "" for b in _BARE})
MENTION_RE = re.compile(
    r"(?<![\w-])(?:"
    + "|".join(
        r"\s+".join(re.escape(w) for w in f.split()) for f in sorted(FORMS, key=len, reverse=True)
    )
    + r")(?![\w-])",
    re.IGNORECASE,
)
_CHANGE_IN = re.compile(
    r"\b(?:increase|decrease|growth|decline|rise|fall|reduction|improvement|change|drop|"
    r"deterioration|increases|decreases|declines|reductions|changes)\s+in\s+(?:the\s+|our\s+|its\s+|"
    r"total\s+|net\s+)*$",
    re.IGNORECASE,
)
_BASE_BEFORE = re.compile(
    r"(?:%|percent|per cent|pct)\s*(?:\(\s*[\d.,]+\s*%\s*\)\s*)?of\s+(?:the\s+|our\s+|its\s+|"
    r"total\s+|consolidated\s+)*$",
    re.IGNORECASE,
)
_ALLOWED_BEFORE = words(
    """
    final interim special quarterly annual proposed ordinary cash recommended its their our his
    her the a an total consolidated group group's company company's reported quarterly annual
    full-year yearly record and or of in for with as to from at on by that which while whereas
    but quarter half year half-year period months interim diluted basic gaap ifrs statutory 's s
    ' was were is are reported posted recorded generated earned achieved had has have saw booked
    delivered showed also both when where than versus vs compared said says reports stated
    combined overall corporate entire
    """
)
SEGMENT_CAPS = words(
    """
    wireless cable media consumer enterprise services products software hardware international
    domestic americas europe asia emea segment division mobile retail wholesale commercial
    industrial residential
    """
)


@dataclass(slots=True)
class MetricMention:
    start: int
    end: int
    canonical: str | None  # None: a blocker (non-vocabulary phrase); "": bare profit / loss
    loss: bool = False
    adjusted: bool = False
    segment: bool = False
    change: bool = False
    base: bool = False


def find_metrics(s: str, spans: list[tuple[int, int]]) -> list[MetricMention]:
    out: list[MetricMention] = []
    for m in MENTION_RE.finditer(s):
        form = " ".join(m.group(0).lower().split())
        canonical = FORMS[form]
        start, end = m.start(), m.end()
        before = s[:start]
        adjusted = False
        adj = ADJUSTED_BEFORE_RE.search(before)
        if adj:
            adjusted, start = True, adj.start()
            before = s[:start]
        after = ADJUSTED_AFTER_RE.match(s[end:])
        if after:
            adjusted, end = True, end + after.end()
        loss = is_loss_form(form)
        mention = MetricMention(start, end, canonical, loss, adjusted)
        if canonical is not None:
            mention.segment = _is_segment(s, start, spans)
            mention.change = bool(_CHANGE_IN.search(before))
            mention.base = bool(_BASE_BEFORE.search(before))
        out.append(mention)
    # a bare "loss" / "profit" refers to the metric just named ("operating profit ... from a loss")
    last: MetricMention | None = None
    for mention in out:
        if mention.canonical == "":
            if last is not None and last.canonical:
                mention.canonical = last.canonical
                mention.adjusted = mention.adjusted or last.adjusted
                mention.segment = mention.segment or last.segment
            else:
                mention.canonical = "net income"
        if mention.canonical and not mention.base:
            last = mention
    return out


def _is_segment(s: str, start: int, spans: list[tuple[int, int]]) -> bool:
    """A metric qualified by a word that is not the company's ("Mobile phone sales")."""
    i = start
    while True:
        prev = re.search(r"([\w'&.-]+|[^\w\s])\s*$", s[:i])
        if prev is None:
            return False
        word = prev.group(1)
        if any(a <= prev.start(1) < b for a, b in spans):
            return False
        if not word[0].isalnum():
            return False
        low = word.lower()
        if low in ADJUSTED_WORDS or low in ("total", "consolidated"):
            i = prev.start(1)
            continue
        if low in _ALLOWED_BEFORE or word.isdigit():
            return False
        if word[0].isupper():
            return low in SEGMENT_CAPS
        return True
