"""The deterministic rules extractor: the offline default and the fallback when a model fails. Pure.

A report is split into sentences. In each sentence the extractor finds amounts (currency, scale,
percent), metric mentions (the synonym table of the standard), periods and the company, then
attaches each amount to the metric that governs it when the words between them read as "metric
... was / rose to / of ... amount". Amounts that are changes ("increased by $5 million"), ranges,
guidance, analyst estimates, currency conversions, components ("$36 billion of cash") or segment
figures ("Mobile phone sales") are left out, and so is any amount whose period, sign or
whole-company scope the text does not decide: a missing fact is better than a wrong one. How many
amounts were left unassigned is counted (:class:`RulesResult`), so nothing is dropped silently.

- :mod:`worker.rules.company`: the reporting company a sentence names.
- :mod:`worker.rules.mentions`: metric mentions and their qualifiers.
- :mod:`worker.rules.cues`: the words that say what an amount is.
- :mod:`worker.rules.roles`: the phases that mark each amount of a sentence.
- :mod:`worker.rules.respectively`: listed amounts paired with listed years or metrics.
- :mod:`worker.rules.tables`: tables flattened into text.
- :mod:`worker.rules.sentence`: one sentence's facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from schemas.fact import Fact
from schemas.standards import is_known_metric
from worker.rules.candidate import Candidate
from worker.rules.company import find_company
from worker.rules.sentence import sentence_facts
from worker.snippets import Snippet, has_amount, split_snippets

__all__ = ["RuleFact", "RulesResult", "extract_facts", "extract_report", "find_company"]


@dataclass(frozen=True, slots=True)
class RuleFact:
    """A fact and the snippet it came from; ``fact.start/end`` index ``snippet.text``."""

    snippet: Snippet
    fact: Fact


@dataclass(slots=True)
class RulesResult:
    """The facts of a report, and the amounts (with a currency, a percent sign or a scale word)
    found in it: ``unassigned`` of them became no fact (not a level, or a level whose metric,
    period, sign or company the text does not decide)."""

    facts: list[RuleFact] = field(default_factory=list)
    amounts: int = 0

    @property
    def unassigned(self) -> int:
        return self.amounts - len(self.facts)


#: a sentence about one company's holding in another: which one reports is not decided
_HOLDING = re.compile(
    r"\b(?:(?:a|its|the)\s+[\d.,]+\s*(?:%|percent|per\s+cent|pct)\s+stake\s+in|controls\s+[A-Z]"
    r"|owned\s+by|majority[\s-]owned|parent\s+company\s+of)\b",
    re.IGNORECASE,
)


def extract_report(text: str, company_hint: str | None = None) -> RulesResult:
    """All facts the rules find in ``text``, in reading order, and how many amounts it holds."""
    result = RulesResult()
    doc_company: str | None = None
    period: str | None = None
    for snippet in split_snippets(text):
        named = find_company(snippet.text)
        if named:
            doc_company = named
        if not has_amount(snippet):
            continue
        company = named or doc_company or (company_hint.strip() if company_hint else None)
        found = sentence_facts(snippet.text, period)
        period = found.carry
        result.amounts += found.amounts
        if _HOLDING.search(snippet.text):
            continue
        result.facts.extend(RuleFact(snippet, _fact(snippet, c, company)) for c in found.facts)
    return result


def extract_facts(text: str, company_hint: str | None = None) -> list[RuleFact]:
    """All facts the rules find in ``text``, in reading order."""
    return extract_report(text, company_hint).facts


def _fact(snippet: Snippet, cand: Candidate, company: str | None) -> Fact:
    return Fact(
        company=company or None,
        metric=cand.metric,
        metric_known=is_known_metric(cand.metric),
        value=cand.value,
        currency=cand.currency,
        unit=cand.unit,
        quarter=cand.period,
        value_text=snippet.text[cand.start : cand.end],
        start=cand.start,
        end=cand.end,
    )
