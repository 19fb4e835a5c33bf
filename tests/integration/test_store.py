"""The store against the real MongoDB-compatible server: idempotent writes, re-processing."""

from __future__ import annotations

import threading
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


OTHER = ReportMessage.build(
    SubmitReport(raw_text="Quillon Ltd reported revenue of $3 million for Q2 2024."),
    Provenance(channel="api"),
)


def exact_counts(store: MongoStore) -> dict[str, Any]:
    reports = store.report_counts()
    return {
        "reports": reports,
        "facts_stored": store.count_facts(),
        "companies": store.company_counts(),
    }


def running(store: MongoStore) -> dict[str, Any]:
    counts = store.running_counts()
    return {
        **counts.status_counts(("queued", "processing", "done", "failed", "dead")),
        "companies": counts.company_totals(),
    }


def test_running_counts_follow_every_write_and_match_a_full_count(store) -> None:
    assert running(store)["facts_stored"] == 0  # counted once, from empty collections
    both = [
        found("$12.0 million", "revenue", "12000000"),
        found("$2.5 million", "net income", "2500000"),
    ]
    save(store, both, T0)
    save(store, both, T0 + timedelta(hours=1))  # a redelivery changes nothing
    assert running(store)["companies"] == {"Pellucid Labs": 2}
    save(store, both[:1], T0 + timedelta(days=1))  # re-processed: one fact less
    store.mark_reports([OTHER.report_id], "failed", T0, error="timeout")
    store.mark_reports([OTHER.report_id], "dead", T0, error="gave up")
    store.mark_reports([MSG.report_id], "failed", T0, error="retried")
    counts = running(store)
    assert counts == exact_counts(store)
    assert counts["reports"]["done"] == 0 and counts["reports"]["dead"] == 1
    save(store, both, T0 + timedelta(days=2))  # done again, with both facts
    counts = running(store)
    assert counts == exact_counts(store)
    assert (counts["facts_stored"], counts["reports"]["done"]) == (2, 1)


class RecordingDatabase:
    """The database; each collection call is recorded as (collection, operation, filter)."""

    def __init__(self, inner: Any, calls: list[tuple[str, str, Any]]) -> None:
        self._inner, self._calls = inner, calls

    def __getitem__(self, name: str) -> Any:
        inner, calls = self._inner[name], self._calls

        class Collection:
            def __getattr__(self, op: str) -> Any:
                attr = getattr(inner, op)

                def call(*args: Any, **kwargs: Any) -> Any:
                    calls.append((name, op, args[0] if args else None))
                    return attr(*args, **kwargs)

                return call if callable(attr) else attr

        return Collection()


class RecordingStore(MongoStore):
    calls: list[tuple[str, str, Any]]

    @property
    def db(self) -> Any:
        return RecordingDatabase(super().db, self.calls)


def test_status_companies_and_facts_of_a_company_read_no_whole_collection(settings) -> None:
    from adapters.mongo.queries import fact_filter

    store = RecordingStore.from_settings(settings)
    store.calls = []
    try:
        save(store, [found("$12.0 million", "revenue", "12000000")], T0)
        store.running_counts().document()  # the one full count, on first use
        store.calls.clear()

        assert store.running_counts().status_counts(["done"])["facts_stored"] == 1
        assert store.running_counts().company_totals() == {"Pellucid Labs": 1}
        names = ["Pellucid Labs", "PELLUCID LABS"]
        assert len(store.facts(fact_filter(companies=names), limit=1)) == 1
    finally:
        store.close()
    whole = [c for c in store.calls if c[1] in ("aggregate", "count_documents", "distinct")]
    assert whole == []
    assert all(
        not isinstance(f, dict) or not isinstance(f.get("company"), dict) for _, _, f in store.calls
    )
    assert [(c, op) for c, op, _ in store.calls if c == "financial_data"] == [
        ("financial_data", "find"),
        ("financial_data", "find"),
    ]


def test_recount_replaces_running_counts_that_drifted(store, db) -> None:
    save(store, [found("$12.0 million", "revenue", "12000000")], T0)
    store.running_counts().document()
    db.financial_data.delete_many({})  # behind the store's back
    assert running(store)["facts_stored"] == 1
    store.running_counts().recount()
    assert running(store) == exact_counts(store)
    assert running(store)["facts_stored"] == 0


def test_workers_starting_together_on_a_store_without_counts_all_start(settings) -> None:
    # each worker counts a store that has no running counts yet at start; several starting at the
    # same moment all try to create the document (one of them exited on a duplicate key)
    stores = [MongoStore.from_settings(settings) for _ in range(6)]
    together = threading.Barrier(len(stores))
    failures: list[BaseException] = []

    def start(store: MongoStore) -> None:
        together.wait()
        try:
            store.running_counts().document()
        except BaseException as exc:  # collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        for s in stores:
            s.close()
    assert failures == []
