"""The deterministic rules extractor: the offline default and the fallback when a model fails. Pure.

A report is split into sentences. In each sentence the extractor finds amounts (currency, scale,
percent), metric mentions (the synonym table of the standard), periods and the company, then
attaches each amount to the metric that governs it when the words between them read as "metric
... was / rose to / of ... amount". Amounts that are changes ("increased by $5 million"), ranges,
guidance, analyst estimates, currency conversions, components ("$36 billion of cash") or segment
figures ("Mobile phone sales") are left out: a missing fact is better than a wrong one.

- :mod:`worker.rules.company`: the reporting company a sentence names.
- :mod:`worker.rules.mentions`: metric mentions and their qualifiers.
- :mod:`worker.rules.cues`: the words that say what an amount is.
- :mod:`worker.rules.roles`: the phases that mark each amount of a sentence.
- :mod:`worker.rules.sentence`: one sentence's facts.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.fact import Fact
from schemas.standards import is_known_metric
from worker.rules.company import find_company
from worker.rules.sentence import sentence_facts
from worker.snippets import Snippet, has_amount, split_snippets

__all__ = ["RuleFact", "extract_facts", "find_company"]


@dataclass(frozen=True, slots=True)
class RuleFact:
    """A fact and the snippet it came from; ``fact.start/end`` index ``snippet.text``."""

    snippet: Snippet
    fact: Fact


def extract_facts(text: str, company_hint: str | None = None) -> list[RuleFact]:
    """All facts the rules find in ``text``, in reading order."""
    out: list[RuleFact] = []
    doc_company: str | None = None
    period: str | None = None
    for snippet in split_snippets(text):
        named = find_company(snippet.text)
        if named:
            doc_company = named
        if not has_amount(snippet):
            continue
        company = named or doc_company or (company_hint.strip() if company_hint else None)
        cands, period = sentence_facts(snippet.text, period)
        for cand in cands:
            fact = Fact(
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
            out.append(RuleFact(snippet, fact))
    return out
