"""The store against the real MongoDB-compatible server: idempotent writes, re-processing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.mongo import MongoStore
from schemas.fact import Fact
from schemas.message import Provenance, ReportMessage, SubmitReport
from schemas.standards import Unit
from worker.extract import FoundFact
from worker.records import fact_document
from worker.snippets import split_snippets

TEXT = "Pellucid Labs reported revenue of $12.0 million and net income of $2.5 million for Q2 2024."
T0 = datetime(2024, 7, 1, tzinfo=UTC)


def found(value_text: str, metric: str, value: str, extractor: str = "rules") -> FoundFact:
    snippet = split_snippets(TEXT)[0]
    start = snippet.text.index(value_text)
    fact = Fact(
        company="Pellucid Labs",
        metric=metric,
        value=Decimal(value),
        currency="USD",
        unit=Unit.CURRENCY,
        quarter="Q2 2024",
        value_text=value_text,
        start=start,
        end=start + len(value_text),
    )
    return FoundFact(snippet, fact, extractor)


@pytest.fixture
def store(settings: Any) -> Any:
    s = MongoStore.from_settings(settings)
    s.ensure_indexes()
    yield s
    s.close()


MSG = ReportMessage.build(SubmitReport(raw_text=TEXT), Provenance(channel="api"))


def save(store: MongoStore, facts: list[FoundFact], now: datetime) -> None:
    docs = [fact_document(MSG, f, now) for f in facts]
    store.save_results({MSG.report_id: docs}, {MSG.report_id: {"source": "test"}}, now)


def test_saving_the_same_extraction_twice_keeps_one_document_per_fact(store, db) -> None:
    facts = [
        found("$12.0 million", "revenue", "12000000"),
        found("$2.5 million", "net income", "2500000"),
    ]
    save(store, facts, T0)
    save(store, facts, T0 + timedelta(hours=1))
    docs = list(db.financial_data.find())
    assert len(docs) == 2
    assert {d["extracted_at"].replace(tzinfo=UTC) for d in docs} == {T0}  # nothing changed
    report = db.reports.find_one({"_id": MSG.report_id})
    assert report["status"] == "done" and report["fact_count"] == 2


def test_reprocessing_replaces_the_facts_of_a_report(store, db) -> None:
    save(
        store,
        [
            found("$12.0 million", "revenue", "12000000"),
            found("$2.5 million", "net income", "2500000"),
        ],
        T0,
    )
    # A new extraction no longer yields net income and reads revenue differently.
    later = T0 + timedelta(days=1)
    save(store, [found("$12.0 million", "revenue", "12000001", extractor="openai")], later)
    docs = list(db.financial_data.find())
    assert [(d["metric"], d["value"], d["extractor"]) for d in docs] == [
        ("revenue", 12000001, "openai")
    ]
    assert docs[0]["extracted_at"].replace(tzinfo=UTC) == later
    assert docs[0]["first_stored_at"].replace(tzinfo=UTC) == T0
    assert db.reports.find_one({"_id": MSG.report_id})["fact_ids"] == [docs[0]["_id"]]


def test_a_submitted_report_is_queued_until_a_worker_stores_it(store) -> None:
    store.mark_queued({MSG.report_id: T0}, channel="api")
    assert store.report(MSG.report_id)["status"] == "queued"
    save(store, [found("$12.0 million", "revenue", "12000000")], T0)
    report = store.report(MSG.report_id)
    assert report["status"] == "done"
    assert [f["metric"] for f in report["facts"]] == ["revenue"]
