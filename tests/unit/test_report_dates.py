"""A report's own date: where it comes from, how facts carry it, and that a report received again
keeps the date of its first receipt."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from schemas.message import (
    DOCUMENT_DATE,
    Provenance,
    ReportMessage,
    SubmitReport,
    report_date_kept,
)
from tests.unit.test_pipeline import RecordingStore
from worker.extract import RulesExtractor
from worker.pipeline import Pipeline

RECEIVED = datetime(2024, 7, 1, 9, 30, tzinfo=UTC)
TEXT = "Quillon Corp reported revenue of $5.3 million for Q1 2024."


def message(
    reported_at: str | None = None, metadata: dict[str, str] | None = None
) -> ReportMessage:
    return ReportMessage.build(
        SubmitReport(raw_text=TEXT, reported_at=reported_at),
        Provenance(channel="api", ingested_at=RECEIVED),
        metadata,
    )


@pytest.mark.parametrize(
    ("reported_at", "metadata", "expected"),
    [
        (
            "2024-05-01",
            {DOCUMENT_DATE: "2024-04-30"},
            (datetime(2024, 5, 1, tzinfo=UTC), "reported"),
        ),
        (
            "2024-05-01T08:00:00+02:00",
            {},
            (datetime(2024, 5, 1, 6, 0, tzinfo=UTC), "reported"),
        ),
        ("2024-05-01T08:00:00", {}, (datetime(2024, 5, 1, 8, 0, tzinfo=UTC), "reported")),
        (None, {DOCUMENT_DATE: "2024-04-30"}, (datetime(2024, 4, 30, tzinfo=UTC), "document")),
        (None, {DOCUMENT_DATE: "last spring"}, (RECEIVED, "received")),
        (None, {}, (RECEIVED, "received")),
    ],
)
def test_the_report_date_is_reported_at_else_the_documents_else_when_received(
    reported_at: str | None,
    metadata: dict[str, str],
    expected: tuple[datetime, str],
) -> None:
    assert message(reported_at, metadata).report_date() == expected


def test_every_fact_carries_its_reports_date() -> None:
    store = RecordingStore()
    dated = message("2024-05-01")
    Pipeline(RulesExtractor(), store, clock=lambda: RECEIVED).process([dated])
    [fact] = store.facts[dated.report_id]
    assert fact["report_date"] == datetime(2024, 5, 1, tzinfo=UTC)
    assert fact["report_date_source"] == "reported"
    assert fact["report_date"].date() == date(2024, 5, 1)


def stored(when: datetime, source: str) -> dict[str, object]:
    return {"report_date": when, "report_date_source": source}


def test_a_report_received_again_keeps_its_first_receipt() -> None:
    later = RECEIVED + timedelta(days=30)
    kept = ("report_date", "report_date_source")
    assert report_date_kept(stored(RECEIVED, "received"), stored(later, "received")) == kept
    # an earlier receipt than the one stored is the first one
    assert report_date_kept(stored(later, "received"), stored(RECEIVED, "received")) == ()
    # a date the report now states replaces its receipt, and a corrected date replaces the old
    assert report_date_kept(stored(RECEIVED, "received"), stored(later, "reported")) == ()
    assert report_date_kept(stored(RECEIVED, "reported"), stored(later, "reported")) == ()
    # the store keeps milliseconds, without a zone
    given = RECEIVED + timedelta(microseconds=123_456)
    as_stored = RECEIVED.replace(tzinfo=None) + timedelta(microseconds=123_000)
    assert report_date_kept(stored(as_stored, "reported"), stored(given, "reported")) == kept
    assert report_date_kept({}, stored(RECEIVED, "received")) == ()
