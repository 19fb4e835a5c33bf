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
- :mod:`worker.rules.units`: whether an amount's unit fits its metric; "zero" in words.
- :mod:`worker.rules.sentence`: one sentence's facts.
- :mod:`worker.rules.evidence`: what decided each part of a fact, and its confidence.

Each fact carries its evidence and a confidence derived from it; a fact below
``min_confidence`` is not returned as a fact but listed in :attr:`RulesResult.withheld` with the
reason, and counts among the unassigned amounts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas.fact import Fact
from schemas.standards import is_known_metric
from worker.rules.candidate import Candidate
from worker.rules.company import find_company
from worker.rules.evidence import DEFAULT_MIN_CONFIDENCE, Evidence, confidence, weakest
from worker.rules.sentence import sentence_facts
from worker.snippets import Snippet, has_amount, split_snippets

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "RuleFact",
    "RulesResult",
    "extract_facts",
    "extract_report",
    "find_company",
]


@dataclass(frozen=True, slots=True)
class RuleFact:
    """A fact and the snippet it came from; ``fact.start/end`` index ``snippet.text``.
    ``evidence`` names the pattern that decided each part; ``confidence`` is derived from it."""

    snippet: Snippet
    fact: Fact
    evidence: tuple[Evidence, ...] = ()
    confidence: float = 1.0

    @property
    def reason(self) -> str:
        """Why the fact is doubtful: its weakest evidence."""
        return weakest(self.evidence)

    def evidence_record(self) -> dict[str, str]:
        return dict(self.evidence)


@dataclass(slots=True)
class RulesResult:
    """The facts of a report, and the amounts (with a currency, a percent sign or a scale word)
    found in it: ``unassigned`` of them became no fact (not a level, or a level whose metric,
    period, sign or company the text does not decide)."""

    facts: list[RuleFact] = field(default_factory=list)
    amounts: int = 0
    #: facts below the minimum confidence: not facts, listed with their reason
    withheld: list[RuleFact] = field(default_factory=list)

    @property
    def unassigned(self) -> int:
        return self.amounts - len(self.facts)


#: a sentence about one company's holding in another: which one reports is not decided
_HOLDING = re.compile(
    r"\b(?:(?:a|its|the)\s+[\d.,]+\s*(?:%|percent|per\s+cent|pct)\s+stake\s+in|controls\s+[A-Z]"
    r"|owned\s+by|majority[\s-]owned|parent\s+company\s+of)\b",
    re.IGNORECASE,
)


def extract_report(
    text: str,
    company_hint: str | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    *,
    snippets: Sequence[Snippet] | None = None,
) -> RulesResult:
    """All facts the rules find in ``text`` with at least ``min_confidence``, in reading order;
    those below it (withheld, with the reason); and how many amounts the text holds.
    ``snippets``: ``split_snippets(text)`` when the caller has split it already (a report is
    split once on its way through the worker)."""
    result = RulesResult()
    hint = company_hint.strip() if company_hint else None
    doc_company: str | None = None
    period: str | None = None
    for snippet in split_snippets(text) if snippets is None else snippets:
        named = find_company(snippet.text)
        if named:
            doc_company = named
        if not has_amount(snippet):
            continue
        company, company_how = _company_of(named, doc_company, hint)
        found = sentence_facts(snippet.text, period)
        period = found.carry
        result.amounts += found.amounts
        if _HOLDING.search(snippet.text):
            continue
        for cand in found.facts:
            evidence = (*cand.evidence, ("company", company_how))
            rf = RuleFact(snippet, _fact(snippet, cand, company), evidence, confidence(evidence))
            (result.facts if rf.confidence >= min_confidence else result.withheld).append(rf)
    return result


def _company_of(named: str | None, earlier: str | None, hint: str | None) -> tuple[str | None, str]:
    if named:
        return named, "named in the sentence"
    if earlier:
        return earlier, "named in an earlier sentence"
    if hint:
        return hint, "hint"
    return None, "not named"


def extract_facts(
    text: str, company_hint: str | None = None, min_confidence: float = DEFAULT_MIN_CONFIDENCE
) -> list[RuleFact]:
    """All facts the rules find in ``text`` with at least ``min_confidence``, in reading order."""
    return extract_report(text, company_hint, min_confidence).facts


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
