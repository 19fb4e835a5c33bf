"""The pipeline's record of a report: what the extractor left undecided is counted, not hidden."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from schemas.message import Provenance, ReportMessage, SubmitReport
from worker.extract import RulesExtractor
from worker.pipeline import Pipeline


class RecordingStore:
    """Keeps what the pipeline hands over, as the MongoDB adapter would store it."""

    def __init__(self) -> None:
        self.facts: dict[str, list[dict[str, Any]]] = {}
        self.reports: dict[str, dict[str, Any]] = {}

    def save_results(
        self,
        facts_by_report: Mapping[str, list[dict[str, Any]]],
        report_fields: Mapping[str, Mapping[str, Any]],
        now: datetime,
    ) -> int:
        self.facts.update(facts_by_report)
        self.reports.update({k: dict(v) for k, v in report_fields.items()})
        return sum(len(v) for v in facts_by_report.values())


def _report(text: str) -> ReportMessage:
    return ReportMessage.build(SubmitReport(raw_text=text), Provenance(channel="api"))


def test_report_record_counts_amounts_the_rules_left_unassigned() -> None:
    store = RecordingStore()
    clear = _report("Company XYZ reported a net income of $5.3 million for Q1 2024.")
    # a change, not a level: an amount the rules find and store as no fact
    vague = _report("Company XYZ said its services revenue grew by $6.1 million.")
    outcomes = Pipeline(
        RulesExtractor(), store, clock=lambda: datetime(2024, 5, 1, tzinfo=UTC)
    ).process([clear, vague])

    assert outcomes[clear.report_id].action == "ack"
    assert outcomes[clear.report_id].facts == 1
    assert store.reports[clear.report_id]["unassigned_amounts"] == 0
    assert outcomes[vague.report_id].facts == 0
    assert store.reports[vague.report_id]["unassigned_amounts"] == 1
