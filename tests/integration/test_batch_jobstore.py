"""The MongoDB job store of batch mode against the real server: the same rules as the memory
store (compare-and-set on ``version``, idempotent request saves), and a runner over it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.mongo import BATCH_JOBS, BATCH_REQUESTS, MongoStore
from schemas.errors import StaleJob
from schemas.settings import Settings
from worker.batch_api.jobs import BatchJob, JobPart, PartState
from worker.batch_api.jobstore import JobStore


def job_doc(job_id: str, version: int, created_at: float = 1.0, *, open_: bool = True) -> dict:
    part = JobPart(0, 2, 100)
    if not open_:
        part.state = PartState.COLLECTED
    job = BatchJob(job_id, created_at, "gpt-6-luna", "/v1/chat/completions", [part])
    job.version = version
    return job.to_doc()


@pytest.fixture
def store(settings: Settings) -> Any:
    s = MongoStore.from_settings(settings)
    s.ensure_indexes()
    yield s
    s.close()


def test_a_job_is_saved_once_per_version_and_a_stale_save_is_refused(store: JobStore) -> None:
    store.save_job(job_doc("j1", 1))
    with pytest.raises(StaleJob):
        store.save_job(job_doc("j1", 1))
    store.save_job(job_doc("j1", 2))
    with pytest.raises(StaleJob):
        store.save_job(job_doc("j1", 2))
    with pytest.raises(StaleJob):
        store.save_job(job_doc("j1", 4))
    loaded = store.load_job("j1")
    assert loaded is not None and BatchJob.from_doc(loaded).version == 2
    assert store.load_job("nope") is None


def test_open_jobs_are_found_newest_first(store: JobStore) -> None:
    store.save_job(job_doc("old", 1, created_at=10.0))
    store.save_job(job_doc("new", 1, created_at=20.0))
    store.save_job(job_doc("done", 1, created_at=30.0, open_=False))
    assert [d["_id"] for d in store.find_jobs(open_only=True)] == ["new", "old"]
    assert [d["_id"] for d in store.find_jobs(limit=2)] == ["done", "new"]


def test_requests_keep_their_order_and_saving_them_again_changes_nothing(store: JobStore) -> None:
    lines = [(f"fp-{i:03d}", json.dumps({"body": {"$defs": {}, "n": i}})) for i in range(12, 0, -1)]
    store.save_requests("j1", 0, lines)
    store.save_requests("j1", 0, lines)
    store.save_requests("j1", 1, [("fp-x", "{}")])
    assert store.load_requests("j1", 0) == lines
    assert store.load_requests("j1", 1) == [("fp-x", "{}")]
    assert store.load_requests("j2", 0) == []


def test_the_collections_are_the_ones_the_protocol_names(settings: Settings, db: Any) -> None:
    store = MongoStore.from_settings(settings)
    store.save_job(job_doc("j1", 1))
    store.save_requests("j1", 0, [("fp-a", "{}")])
    store.close()
    assert db[BATCH_JOBS].find_one({"_id": "j1"})["open"] is True
    assert db[BATCH_REQUESTS].find_one({"_id": "j1:fp-a"})["part"] == 0


def test_cache_lookups_by_many_threads_at_once_never_fail_on_the_hit_counter(
    settings: Settings,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = MongoStore.from_settings(settings)
    store.put_many({"k": {"status": "openai", "facts": []}})
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: store.get_many(["k"]), range(16)))
    assert all(f == {"k": {"status": "openai", "facts": []}} for f in found)
    # FerretDB v1 may lose concurrent increments; MongoDB counts all 16
    assert 1 <= store.usage_totals()["cache_hits"] <= 16
    hits = store.usage_totals()["cache_hits"]
    store.get_many(["k"])
    assert store.usage_totals()["cache_hits"] == hits + 1
    store.close()
