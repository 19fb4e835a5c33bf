"""The stored documents' builders (pure) and the store's one error translation (no server)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.mongo import MongoStore
from adapters.mongo.batch_jobs import batch_request_documents
from adapters.mongo.cache import cache_documents
from adapters.mongo.submissions import submission_documents
from schemas.documents import ReportFields, report_document
from schemas.errors import StoreUnavailable
from schemas.message import Provenance, ReportMessage, SubmitReport
from worker.extract import ReportExtraction
from worker.records import report_fields

T0 = datetime(2024, 7, 1, tzinfo=UTC)


def test_a_processed_reports_record_is_the_extractions_account_under_the_stores_fields() -> None:
    fields = ReportFields(snippets=3, source="api", error=None)
    doc = report_document("r1", ["f1", "f2"], fields, T0)
    assert doc == {
        "_id": "r1",
        "status": "done",
        "received_at": T0,
        "updated_at": T0,
        "fact_count": 2,
        "fact_ids": ["f1", "f2"],
        "snippets": 3,
        "source": "api",
        "error": None,
    }


def test_a_reports_record_keeps_the_first_50_rejected_snippets_and_unassigned_amounts() -> None:
    msg = ReportMessage.build(SubmitReport(raw_text="Acme had revenue."), Provenance(channel="api"))
    extraction = ReportExtraction(
        snippets=60,
        rejected=[f"s{i}" for i in range(60)],
        unassigned_amounts=60,
        unassigned_detail=[{"i": i} for i in range(60)],
    )
    fields = report_fields(msg, extraction)
    assert (len(fields["rejected"]), len(fields["unassigned_detail"])) == (50, 50)
    assert (fields["snippets"], fields["unassigned_amounts"], fields["error"]) == (60, 60, None)


def test_each_submission_is_recorded_with_its_own_time() -> None:
    docs = submission_documents({"r1": T0, "r2": T0}, channel="api")
    assert docs == [
        {"_id": "r1", "received_at": T0, "channel": "api"},
        {"_id": "r2", "received_at": T0, "channel": "api"},
    ]


def test_request_lines_are_keyed_by_job_and_custom_id_and_kept_in_order() -> None:
    docs = batch_request_documents("job", 2, [("a", "{1}"), ("b", "{2}")])
    assert [(d["_id"], d["part"], d["seq"], d["line"]) for d in docs] == [
        ("job:a", 2, 0, "{1}"),
        ("job:b", 2, 1, "{2}"),
    ]
    assert cache_documents({"k": {"facts": []}}) == [{"_id": "k", "entry": {"facts": []}}]


CALLS: dict[str, Callable[[MongoStore], Any]] = {
    "batch job lookup": lambda s: s.load_job("j"),
    "cache write": lambda s: s.put_many({"k": {}}),
    "report lookup": lambda s: s.report("r"),
    "run record": lambda s: s.record_run("last_sweep", T0),
    "submission record": lambda s: s.mark_queued({"r": T0}),
    "usage query": lambda s: s.usage_totals(),
}


@pytest.mark.parametrize("what", sorted(CALLS))
def test_every_repositorys_pymongo_error_leaves_as_store_unavailable_naming_the_operation(
    what: str,
) -> None:
    store = MongoStore("mongodb://u:s3cret@127.0.0.1:1", "db", timeout_ms=50)
    try:
        with pytest.raises(StoreUnavailable) as failed:
            CALLS[what](store)
    finally:
        store.close()
    assert str(failed.value).startswith(f"MongoDB {what} failed at ")
    assert "s3cret" not in str(failed.value)
