"""What a batch costs the database on the worker's path (extraction through the model with the
stored cache, then storage), counted at the store's collections against the real server: new
reports cost inserts only; reports seen before cost ``_id`` lookups, never a collection-wide
query."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.mongo import CACHE, FACTS, REPORTS, USAGE, MongoStore
from fakes.openai_server import FakeOpenAI
from schemas.settings import Settings
from tests.integration.conftest import one_sentence_reports
from worker.model.cache import FilteredCache, cache_key
from worker.model.engine import OpenAIExtractor
from worker.pipeline import Pipeline

#: operations that read (or, on FerretDB v1, scan like a read: updates and upserts)
SCANS = {
    "find",
    "find_one",
    "aggregate",
    "count_documents",
    "distinct",
    "update_one",
    "update_many",
    "bulk_write",
    "replace_one",
}


class CountingCollection:
    def __init__(self, inner: Any, calls: Counter[tuple[str, str]]) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, op: str) -> Any:
        attr = getattr(self._inner, op)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls[(self._inner.name, op)] += 1
            return attr(*args, **kwargs)

        return call


class CountingDatabase:
    def __init__(self, inner: Any, calls: Counter[tuple[str, str]]) -> None:
        self._inner = inner
        self._calls = calls

    def __getitem__(self, name: str) -> CountingCollection:
        return CountingCollection(self._inner[name], self._calls)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CountingStore(MongoStore):
    """The real store; every collection operation it issues is counted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[tuple[str, str]] = Counter()

    @property
    def db(self) -> Any:
        return CountingDatabase(super().db, self.calls)

    def scans(self) -> Counter[tuple[str, str]]:
        return Counter({k: n for k, n in self.calls.items() if k[1] in SCANS})


@pytest.fixture
def store(settings: Settings) -> Iterator[CountingStore]:
    s = CountingStore(settings.mongo_uri, settings.mongo_db, write_concern=settings.write_concern)
    s.ensure_indexes()
    yield s
    s.close()


@pytest.fixture
def pipeline(settings: Settings, store: CountingStore) -> Iterator[Pipeline]:
    with FakeOpenAI() as server:
        model_settings = Settings(
            **{
                **settings.model_dump(),
                "provider": "openai",
                "openai_api_key": "test",
                "openai_base_url": server.base_url,
            }
        )
        # answers to other snippets already stored: the cache is not empty
        store.put_many(
            {
                cache_key(f"Older{i} reported revenue of $1 million.", model_settings.model): {
                    "status": "openai",
                    "facts": [],
                }
                for i in range(50)
            }
        )
        cache = FilteredCache(store)
        cache.load()
        with OpenAIExtractor(model_settings, cache=cache) as engine:
            yield Pipeline(engine, store)


def test_a_batch_of_new_snippets_costs_no_read_only_inserts_and_one_count_update(
    store, pipeline, db
) -> None:
    msgs = one_sentence_reports(20, "hot")
    store.calls.clear()
    outcomes = pipeline.process(msgs)
    assert {o.action for o in outcomes.values()} == {"ack"}
    # the running counts of facts and reports: one _id update per batch
    assert store.scans() == Counter({("counters", "update_one"): 1})
    assert store.calls == Counter(
        {
            (FACTS, "insert_many"): 1,
            (REPORTS, "insert_many"): 1,
            (CACHE, "insert_many"): 1,
            (USAGE, "insert_one"): 1,
            ("counters", "update_one"): 1,
        }
    )
    assert db[FACTS].count_documents({}) == 20
    assert db[CACHE].count_documents({}) == 70


def test_a_batch_seen_before_costs_an_id_lookup_per_snippet_fact_and_report(
    store, pipeline, db
) -> None:
    msgs = one_sentence_reports(20, "again")
    pipeline.process(msgs)
    store.calls.clear()
    outcomes = pipeline.process(msgs)
    assert {o.action for o in outcomes.values()} == {"ack"}
    # one answer, one fact and one report record read by _id each; nothing changed, so
    # nothing is written but the cache-hit counter
    assert store.scans() == Counter(
        {
            (CACHE, "find_one"): 20,
            (FACTS, "find_one"): 20,
            (REPORTS, "find_one"): 20,
            ("counters", "update_one"): 1,
        }
    )
    assert db[FACTS].count_documents({}) == 20


def test_reports_the_batch_step_answered_after_start_up_cost_one_answer_lookup_per_snippet(
    store, pipeline, db
) -> None:
    msgs = one_sentence_reports(20, "batched")
    model = pipeline.extractor.model
    # written by the nightly batch step after this worker read the cache's keys
    store.put_many(
        {
            cache_key(m.raw_text, model): {"status": "openai", "facts": [], "response_format": "x"}
            for m in msgs
        }
    )
    store.calls.clear()
    outcomes = pipeline.process(msgs, prefilled={m.report_id for m in msgs})
    assert {o.action for o in outcomes.values()} == {"ack"}
    # no model call (no usage written): each answer read by _id, in the format the job used;
    # the counters take the cache hits and the running counts of the new reports, one write each
    assert store.scans() == Counter({(CACHE, "find_one"): 20, ("counters", "update_one"): 2})
    assert (USAGE, "insert_one") not in store.calls
