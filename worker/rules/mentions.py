"""Metric mentions in a sentence: which vocabulary metric (or non-vocabulary blocker) each
phrase names, and whether it is adjusted, a loss, a segment's, a change or a percentage's base.
Pure."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from schemas.standards import ADJUSTED_WORDS, METRIC_SYNONYMS
from worker.normalize.metrics import (
    ADJUSTED_AFTER_RE,
    ADJUSTED_BEFORE_RE,
    INCLUDING_AFTER_RE,
    is_loss_form,
)


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
    "mark-to-market result",
    "mark-to-market",
    "fair value change",
    "fair value changes",
    "hedging result",
    "dividends paid",
    "dividend payments",
    "dividend payment",
    "total dividends",
    "net debt",
    "order intake",
    "order backlog",
    "order book",
    "order books",
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
    r"(?:%|percent(?:age)?|per cent|pct|share)\s*(?:\(\s*[\d.,]+\s*%\s*\)\s*)?of\s+"
    r"(?:the\s+|our\s+|its\s+|total\s+|consolidated\s+)*$",
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
    combined overall corporate entire expects expect expected sees forecasts raised lifted cut
    narrowed widened increased decreased improved boosted grew larger smaller bigger higher lower
    strong weak solid declared declares declare approved approves announced announces pay pays
    paid
    """
)
SEGMENT_CAPS = words(
    """
    wireless cable media consumer enterprise services products software hardware international
    domestic americas europe asia emea segment division mobile retail wholesale commercial
    industrial residential product service subscription subscriptions license licenses licence
    licences licensing maintenance support cloud north south east west northern southern eastern
    western central latin america american european asian pacific apac nordic nordics baltic
    baltics region regional africa china india japan germany finland sweden norway denmark
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
    bare_word: bool = False  # a bare "profit" / "loss" that takes the metric named before it
    defaulted: bool = False  # ... or, with none named before it, net income
    #: an opening "Excluding one-off items ," made it adjusted (the first metric after it), or
    #: leaves undecided whether it is (the metrics after that one)
    opening: str | None = None


def find_metrics(s: str, spans: list[tuple[int, int]]) -> list[MetricMention]:
    out: list[MetricMention] = []
    for m in MENTION_RE.finditer(s):
        form = " ".join(m.group(0).lower().split())
        canonical = FORMS[form]
        start, end = m.start(), m.end()
        lo = max(0, start - _LOOKBACK)
        before = s[lo:start]
        adjusted = False
        adj = ADJUSTED_BEFORE_RE.search(before)
        if adj:
            adjusted, start = True, lo + adj.start()
            before = s[lo:start]
        after = ADJUSTED_AFTER_RE.match(s[end:])
        if after:
            adjusted, end = True, end + after.end()
        including = INCLUDING_AFTER_RE.match(s[end:])
        if including:
            end += including.end()
        loss = is_loss_form(form)
        if canonical is not None and _not_the_metric(s, form, before, s[end:]):
            canonical = None
        mention = MetricMention(start, end, canonical, loss, adjusted)
        if canonical is not None:
            mention.segment = _is_segment(s, start, spans) or _is_part(s, before, s[end:])
            mention.change = bool(_CHANGE_IN.search(before))
            mention.base = bool(_BASE_BEFORE.search(before))
        out.append(mention)
    _predicates_of_blockers(s, out)
    _appositions(s, out)
    _bare_forms(out)
    _opening_adjustment(s, out)
    return out


#: a sentence that opens by saying its figures are adjusted: "Excluding one-off items ,",
#: "Adjusted for non-recurring items ,", "On a comparable basis ,"
_OPENING_ADJUSTED = re.compile(
    r"^\s*(?:excluding|excl\.|adjusted\s+for|before\s+(?:one-?off|non-?recurring|special|"
    r"exceptional)|on\s+an?\s+(?:adjusted|comparable|underlying|like-for-like|non-gaap)\s+basis)"
    r"[^,;.]{0,80}?,",
    re.IGNORECASE,
)


def _opening_adjustment(s: str, out: list[MetricMention]) -> None:
    """After an opening adjustment phrase the first metric is adjusted; whether the ones after
    it are is not decided."""
    opening = _OPENING_ADJUSTED.match(s)
    if opening is None:
        return
    named = [m for m in out if m.canonical and m.start >= opening.end() and not m.base]
    for k, mention in enumerate(named):
        if k == 0 or mention.adjusted:
            mention.adjusted, mention.opening = True, "opening phrase"
        else:
            mention.opening = "undecided after an opening phrase"


def _appositions(s: str, out: list[MetricMention]) -> None:
    """ "Earnings per share EPS", "operating profit ( EBIT )": the second names the first again."""
    for prev, cur in itertools.pairwise(out):
        same = prev.canonical is not None and prev.canonical == cur.canonical
        if same and re.fullmatch(r"[\s()]*", s[prev.end : cur.start]):
            cur.segment = prev.segment


def _bare_forms(out: list[MetricMention]) -> None:
    """A bare "loss" / "profit" refers to the metric just named ("operating profit ... from a
    loss"), else to net income; after a non-vocabulary item it is that item's."""
    last: MetricMention | None = None
    previous: MetricMention | None = None
    for mention in out:
        if mention.canonical == "" and previous is not None and previous.canonical is None:
            mention.canonical = None  # "... from discontinued operations was a loss of"
        elif mention.canonical == "":
            mention.bare_word = True
            if last is not None and last.canonical:
                mention.canonical = last.canonical
                mention.adjusted = mention.adjusted or last.adjusted
                mention.segment = mention.segment or last.segment
            else:
                mention.canonical = "net income"
                mention.defaulted = True
        if mention.canonical and not mention.base:
            last = mention
        previous = mention


#: words before a metric that make it something else: "cost of net revenue", "cost of sales"
_COST_OF = re.compile(r"\bcosts?\s+of\s+$", re.IGNORECASE)
#: words after a metric that make it a part: "income ( loss ) from discontinued operations"
_PART_AFTER = re.compile(
    r"^\s*\)?\s*(?:from|of)\s+(?:discontinued|continuing)\s+operations", re.IGNORECASE
)
#: share-trading turnover in a market report ("the index ... on turnover of EUR 420 mn")
_MARKET_REPORT = re.compile(
    r"\b(?:index|indices|shares?\s+(?:rose|fell|traded)|stock\s+exchange)\b"
)


def _not_the_metric(s: str, form: str, before: str, after: str) -> bool:
    """A vocabulary word used for something else: a cost line, a discontinued operation's
    result, or share-trading turnover."""
    if _COST_OF.search(before) or _PART_AFTER.match(after):
        return True
    return form == "turnover" and bool(
        re.search(r"\bon\s+$", before, re.IGNORECASE) and _MARKET_REPORT.search(s)
    )


#: what a part of the company is called when it is the subject of a clause
_PART_NOUNS = (
    r"(?:segments?|divisions?|business\s+(?:area|unit|segment)s?|units?|subsidiar(?:y|ies))"
)
_PART_SUBJECT = re.compile(rf"(?:^|[,;:]\s|\.\s)[^,;:]*?\b{_PART_NOUNS}\b[^,;:]*$", re.IGNORECASE)
_PART_AFTER_METRIC = re.compile(
    rf"^\s*(?:in|at|of|from|for)\s+(?:the|its|our|their)\s+(?:[\w&'-]+\s+){{0,3}}{_PART_NOUNS}\b",
    re.IGNORECASE,
)
#: a metric named as the cause of a change: "driven by higher Sensors net sales of ..."
_CAUSE_BEFORE = re.compile(
    r"\b(?:driven\s+by|due\s+to|reflecting|because\s+of|offset\s+by|as\s+a\s+result\s+of|"
    r"attributable\s+to|thanks\s+to|primarily\s+from|mainly\s+from)\s+(?:the\s+)?"
    r"(?:(?:higher|lower|increased|decreased|stronger|weaker|improved|strong|weak)\s+)?"
    r"(?:[A-Z][\w&-]*\s+){0,3}$",
    re.IGNORECASE,
)


def _is_part(s: str, before: str, after: str) -> bool:
    """A figure of a part of the company or a cause of a change: "the Marine segment reported
    profit of", "revenue in the Sensors division", "driven by higher Sensors net sales of"."""
    return bool(
        _PART_SUBJECT.search(before)
        or _PART_AFTER_METRIC.match(after)
        or _CAUSE_BEFORE.search(before)
    )


_PREDICATE_GAP = re.compile(
    r"^\s*(?:was|were|is|are|amounted\s+to|came\s+to)\s+(?:a|an)\s+$", re.IGNORECASE
)


def _predicates_of_blockers(s: str, out: list[MetricMention]) -> None:
    """ "the hedging result came to a pretax profit of ...": the metric names what a
    non-vocabulary item came to, not the company's metric."""
    for prev, cur in itertools.pairwise(out):
        if prev.canonical is None and _PREDICATE_GAP.match(s[prev.end : cur.start]):
            cur.canonical = None


_PREVIOUS_WORD = re.compile(r"([\w'&.-]+|[^\w\s])\s*$")
#: how far back the words before a metric are read
_LOOKBACK = 250


def _is_segment(s: str, start: int, spans: list[tuple[int, int]]) -> bool:
    """A metric qualified by a word that is not the company's ("Mobile phone sales")."""
    i = start
    while True:
        prev = _PREVIOUS_WORD.search(s, max(0, i - 80), i)
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
        if low in _ALLOWED_BEFORE or word.isdigit() or low.endswith("-expected"):
            return False
        if low == "2019s":  # "’s" (U+2019) flattened by a PDF extraction: "the company 2019s"
            return False
        if word[0].isupper():
            return low in SEGMENT_CAPS
        return True
