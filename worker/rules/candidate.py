"""A fact as the rules extractor proposes it, before it becomes a :class:`schemas.fact.Fact`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from schemas.standards import Unit
from worker.rules.evidence import Evidence


@dataclass(frozen=True, slots=True)
class Candidate:
    """A fact a sentence gives: ``start``/``end`` index the sentence; ``evidence`` names the
    pattern that decided each part (:mod:`worker.rules.evidence`)."""

    start: int
    end: int
    metric: str
    value: Decimal
    currency: str | None
    unit: Unit
    period: str | None
    evidence: tuple[Evidence, ...] = ()
