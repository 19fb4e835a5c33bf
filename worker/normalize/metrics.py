"""Metric names: written forms to canonical names, and the words that mark a variant. Pure.

The "adjusted" and loss rules here are the only definitions: the rules extractor reads them
too, so a metric is adjusted or a loss by the same words whoever proposes the fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.errors import NormalizationError
from schemas.standards import (
    ADJUSTED_PREFIX,
    ADJUSTED_WORDS,
    METRIC_SYNONYMS,
    is_known_metric,
)

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

#: Words before a metric that make it adjusted ("non-GAAP", "comparable underlying"), at the end
#: of the text before the metric.
ADJUSTED_BEFORE_RE = re.compile(
    r"(?:(?:" + "|".join(re.escape(w) for w in _ADJ_WORDS) + r")\s+)+$", re.IGNORECASE
)
#: Words after a metric that make it adjusted ("operating profit excluding non-recurring items",
#: "(ex one-off costs)"): at the start of the text after a metric, or at the end of a metric name.
_ONE_OFFS = (
    r"(?:one-?offs|(?:non-?recurring|one-?off|special|exceptional|extraordinary|one-?time|"
    r"restructuring)\s(?:items|charges|costs)|(?:certain\s)?items)"
)
_ADJUSTED_AFTER = rf"\s*,?\s*\(?(?:excluding|before|excl\.?|ex)\s{_ONE_OFFS}\)?"
ADJUSTED_AFTER_RE = re.compile("^" + _ADJUSTED_AFTER, re.IGNORECASE)
_ADJUSTED_SUFFIX_RE = re.compile(_ADJUSTED_AFTER + "$", re.IGNORECASE)
#: words after a metric that say it is the reported figure ("operating result including
#: non-recurring items"): part of the metric's name, not a component
INCLUDING_AFTER_RE = re.compile(rf"^,?\s*\(?(?:including|incl\.?)\s{_ONE_OFFS}\)?", re.IGNORECASE)
_LOSS_FORM = re.compile(r"\bloss(?:es)?\b|\bused in\b", re.IGNORECASE)


def is_loss_form(form: str) -> bool:
    """A written metric that names a loss or an outflow ("net loss", "cash used in operating
    activities"): its amount is stored negative."""
    return bool(_LOSS_FORM.search(form))


@dataclass(frozen=True, slots=True)
class MetricName:
    metric: str
    known: bool
    loss: bool


def _strip_adjusted(s: str) -> tuple[str, bool]:
    """The metric without its adjusted words and qualifiers, and whether it had adjusted words."""
    adjusted = False
    m = _ADJUSTED_SUFFIX_RE.search(s)
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
    return s, adjusted


def canonical_metric(text: str) -> MetricName:
    """A metric as written -> canonical name ("net profit" -> "net income", "Non-GAAP EPS" ->
    "adjusted earnings per share"). Unknown names are kept (lower case) and marked unknown."""
    s = " ".join(text.lower().replace("’", "'").split()).strip(" .:;")
    if not s:
        raise NormalizationError(text, "empty metric")
    s, adjusted = _strip_adjusted(s)
    loss = is_loss_form(s)
    metric = _SYNONYM_INDEX.get(s)
    if metric is None and s in METRIC_SYNONYMS:
        metric = s
    if metric is None:
        if s.startswith(ADJUSTED_PREFIX) and is_known_metric(s):
            return MetricName(s, True, loss)
        return MetricName((ADJUSTED_PREFIX if adjusted else "") + s, False, loss)
    return MetricName((ADJUSTED_PREFIX if adjusted else "") + metric, True, loss)
