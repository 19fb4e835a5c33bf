"""The extractor interface the worker depends on, and the offline rules provider. Pure."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas.fact import Fact
from schemas.message import ReportMessage
from worker.snippets import Snippet


@dataclass(frozen=True, slots=True)
class FoundFact:
    """A normalized fact with the snippet it came from (offsets in the report) and who found it.
    ``fact.start``/``fact.end`` locate ``fact.value_text`` inside ``snippet.text``."""

    snippet: Snippet
    fact: Fact
    extractor: str
    model: str | None = None
    prompt_version: str | None = None


@dataclass
class ReportExtraction:
    """What one report yielded, with the counts an operator wants to see."""

    facts: list[FoundFact] = field(default_factory=list)
    snippets: int = 0
    snippets_without_amount: int = 0
    rejected: list[str] = field(default_factory=list)
    #: amounts (with a currency, percent sign or scale word) the rules extractor found in the
    #: report and assigned to no fact: not a level, or a level whose metric, period, sign or
    #: company the text does not decide (None: the extractor does not count them)
    unassigned_amounts: int | None = None


class Extractor(Protocol):
    name: str

    def extract(
        self, reports: Sequence[ReportMessage], *, prefilled: Collection[str] = frozenset()
    ) -> dict[str, ReportExtraction]:
        """Facts per ``report_id`` for a batch of reports. Raises ``TransientError`` when the
        whole batch should be retried later. ``prefilled``: the reports whose model answers the
        nightly batch step put in the extraction cache (the model's extractor looks them up)."""
        ...


class RulesExtractor:
    """The deterministic offline extractor (``worker.rules``) behind the extractor interface."""

    name = "rules"

    def extract(
        self, reports: Sequence[ReportMessage], *, prefilled: Collection[str] = frozenset()
    ) -> dict[str, ReportExtraction]:
        from worker.rules import extract_report
        from worker.snippets import has_amount, split_snippets

        out: dict[str, ReportExtraction] = {}
        for report in reports:
            snippets = split_snippets(report.raw_text)
            found = extract_report(report.raw_text, company_hint=report.company_hint)
            out[report.report_id] = ReportExtraction(
                facts=[FoundFact(rf.snippet, rf.fact, "rules") for rf in found.facts],
                snippets=len(snippets),
                snippets_without_amount=sum(1 for s in snippets if not has_amount(s)),
                unassigned_amounts=found.unassigned,
            )
        return out
