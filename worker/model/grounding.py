"""Grounding: a proposed fact is kept only when it stands in its snippet. Pure.

``value_text`` must occur in the snippet and normalize (``worker.normalize``) to the value the
model claims, sign included. Facts from the rules extractor used as a fallback pass the same
checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from schemas.errors import NormalizationError, validation_summary
from schemas.fact import Fact
from worker.model.ledger import Usage
from worker.model.schema import LLMFact

#: relative tolerance between the value the model claims and the normalized ``value_text``
VALUE_TOLERANCE = Decimal("0.005")


@dataclass(frozen=True, slots=True)
class SnippetRequest:
    """A snippet to extract. ``id`` is unique within a batch; ``context`` is the report text just
    before the snippet (a company named earlier in the report)."""

    id: str
    text: str
    company_hint: str | None = None
    context: str = ""


@dataclass(frozen=True, slots=True)
class ExtractedFact:
    fact: Fact
    extractor: str  # "openai" or "rules-fallback"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A fact the model proposed that was not kept, and why."""

    candidate: dict[str, Any]
    reason: str
    attempt: int = 1


@dataclass
class SnippetOutcome:
    facts: list[ExtractedFact] = field(default_factory=list)
    #: ungrounded or invalid candidates, with reasons (never stored)
    rejected: list[Rejection] = field(default_factory=list)
    cached: bool = False
    refusal: str | None = None
    #: why the snippet fell back to the rules extractor, if it did
    fallback_reason: str | None = None
    #: this snippet's share of the calls made for it
    usage: Usage = field(default_factory=Usage)


def ground(request: SnippetRequest, candidate: LLMFact) -> Fact:
    """The normalized fact for a candidate, or :class:`NormalizationError` saying why it is not
    grounded: ``value_text`` absent from the snippet (``build_fact`` locates it, tolerating
    only differences in spacing, and records its offsets), not normalizable, or normalizing to
    another value than the model claims."""
    from worker.normalize import build_fact

    value_text = candidate.value_text
    if not value_text.strip():
        raise NormalizationError(value_text, "empty value_text")
    try:
        fact = build_fact(
            snippet=request.text,
            value_text=value_text,
            metric_text=candidate.metric,
            period_text=candidate.period,
            company=candidate.company,
            currency_hint=candidate.currency,
            company_hint=request.company_hint,
            context=request.context,
        )
    except ValidationError as exc:
        reason = validation_summary(exc, limit=3, fields=False)
        raise NormalizationError(value_text, reason) from exc
    if candidate.value is not None and not _same_value(Decimal(str(candidate.value)), fact.value):
        raise NormalizationError(
            value_text,
            f"the model claims {candidate.value:g} but the text normalizes to {fact.value}",
        )
    return fact


def _same_value(claimed: Decimal, actual: Decimal) -> bool:
    """Equal within the tolerance, sign included: when the model reads a loss that the
    normalization does not see (or the reverse), neither is trusted."""
    if actual == 0:
        return claimed == 0
    return abs(claimed - actual) <= VALUE_TOLERANCE * abs(actual)


def ground_all(
    request: SnippetRequest, candidates: Sequence[LLMFact], attempt: int = 1
) -> tuple[list[tuple[Fact, LLMFact]], list[Rejection]]:
    """Ground every candidate; duplicates (same metric, value, period, place) are kept once."""
    kept: list[tuple[Fact, LLMFact]] = []
    rejected: list[Rejection] = []
    seen: set[tuple[object, ...]] = set()
    for cand in candidates:
        try:
            fact = ground(request, cand)
        except (NormalizationError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, NormalizationError) else str(exc)
            rejected.append(Rejection(cand.model_dump(), reason, attempt))
            continue
        ident = (fact.metric, fact.value, fact.quarter, fact.start, fact.company)
        if ident not in seen:
            seen.add(ident)
            kept.append((fact, cand))
    return kept, rejected


def rules_fallback(request: SnippetRequest) -> list[Fact]:
    """The rules extractor's facts for one snippet (read with its context, kept only when they
    stand in the snippet), offsets relative to the snippet."""
    from worker.rules import extract_facts

    sep = "\n\n" if request.context else ""
    base = len(request.context) + len(sep)
    found = extract_facts(request.context + sep + request.text, company_hint=request.company_hint)
    out = []
    for rf in found:
        if rf.snippet.start < base:
            continue
        offset = rf.snippet.start - base
        fact = rf.fact
        if fact.start is not None and fact.end is not None:
            fact = fact.model_copy(update={"start": fact.start + offset, "end": fact.end + offset})
        out.append(fact)
    return out


def fill_from_context(request: SnippetRequest, facts: list[Fact]) -> list[Fact]:
    """Company and period for grounded facts whose snippet does not name them ("The board
    proposes a dividend of 4 cents per share."): the model sees the snippet alone, so they are
    taken from the rules extractor's reading of the same amount with the report text before it.
    What the model did give is never replaced."""
    if all(f.company is not None and f.quarter is not None for f in facts):
        return facts
    by_span = {(r.start, r.end): r for r in rules_fallback(request)}
    out = []
    for f in facts:
        r = by_span.get((f.start, f.end))
        if r is not None and (f.company is None or f.quarter is None):
            f = f.model_copy(
                update={"company": f.company or r.company, "quarter": f.quarter or r.quarter}
            )
        out.append(f)
    return out


def grounded_fallback(request: SnippetRequest) -> tuple[list[Fact], list[Rejection]]:
    """The rules extractor's facts for a snippet the model could not answer, kept only when they
    pass the same grounding checks as the model's facts."""
    kept: list[Fact] = []
    rejected: list[Rejection] = []
    for fact in rules_fallback(request):
        candidate = LLMFact(
            company=fact.company,
            metric=fact.metric,
            value_text=fact.value_text,
            value=float(fact.value),
            period=fact.quarter,
            currency=fact.currency,
        )
        try:
            ground(request, candidate)
        except (NormalizationError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, NormalizationError) else str(exc)
            rejected.append(Rejection(candidate.model_dump(), f"rules fallback: {reason}"))
            continue
        kept.append(fact)
    return kept, rejected
