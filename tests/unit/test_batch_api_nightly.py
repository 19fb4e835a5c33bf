"""Batch mode's run over the fake server through the real SDK: the cache is filled from batch
answers, what did not come back is asked synchronously, and the engine then makes no call."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAI
from fakes.script import Echo, Status
from schemas.errors import Interrupted, ModelConfigError
from schemas.settings import Settings
from worker.batch_api.delivery import ResultSink
from worker.batch_api.jobstore import MemoryJobStore
from worker.batch_api.nightly import plan_requests, prefill_cache, runner_for
from worker.llm import MemoryCache, OpenAIExtractor, SnippetRequest, cache_key, estimate_cost_usd
from worker.model.profiles import load_table

NAMES = ["ABC", "DEF", "GHI", "JKL", "MNO", "PQR"]
ITEMS = [
    (f"r{i}", f"Company {n} reported revenue of ${i + 1}.5 million for Q2 2024. Staff grew.", None)
    for i, n in enumerate(NAMES)
]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as srv:
        yield srv


def engine_for(server: FakeOpenAI, cache: MemoryCache, **overrides: Any) -> OpenAIExtractor:
    settings = Settings(
        openai_api_key="test",
        openai_base_url=server.base_url,
        provider="openai",
        llm_mode="batch",
        batch_snippets=2,
        llm_max_retries=0,
        **overrides,
    )
    return OpenAIExtractor(settings, cache=cache)


def run(engine: OpenAIExtractor, store: MemoryJobStore) -> Any:
    def make_runner(sink: ResultSink) -> Any:
        return runner_for(engine, store, sink, now=time.time)

    return prefill_cache(engine, ITEMS, make_runner, poll_s=0, sleep=lambda _: None)


def test_every_snippet_comes_back_from_the_batch_and_the_engine_makes_no_call(
    server: FakeOpenAI,
) -> None:
    cache, store = MemoryCache(), MemoryJobStore()
    with engine_for(server, cache) as engine:
        report = run(engine, store)
        assert server.calls == 0 and server.batch_lines == 3
        assert report.requests == 3 and report.answered == 3 and report.entries == 6
        assert report.sync_requests == 0 and len(report.jobs) == 1
        assert {u.tier for u in cache.usages} == {"batch"} and len(cache.usages) == 3
        result = engine.extract_texts(ITEMS)
    assert server.calls == 0
    assert all(len(result[i].facts) == 1 for i, _, _ in ITEMS)


def test_a_second_run_submits_nothing(server: FakeOpenAI) -> None:
    cache, store = MemoryCache(), MemoryJobStore()
    with engine_for(server, cache) as engine:
        run(engine, store)
        again = run(engine, store)
    assert again.cached_before == 6 and again.requests == 0 and again.jobs == []
    assert len(server.batches.created) == 1


def test_per_request_errors_and_an_expired_job_go_synchronous_and_nothing_is_lost(
    server: FakeOpenAI,
) -> None:
    server.batches.fail_requests(lambda body: "ABC" in str(body["messages"]), 500, "boom")
    server.batches.expire_next(after_requests=2)
    cache, store = MemoryCache(), MemoryJobStore()
    with engine_for(server, cache) as engine:
        report = run(engine, store)
        # line 1 (ABC, DEF) failed, line 2 answered, then expired: line 3 never ran
        assert report.answered == 1 and report.sync_requests == 2
        assert server.calls == 2
        calls = server.calls
        result = engine.extract_texts(ITEMS)
    assert server.calls == calls
    assert all(len(result[i].facts) == 1 for i, _, _ in ITEMS)


def test_a_failed_job_is_asked_synchronously(server: FakeOpenAI) -> None:
    server.batches.fail_next("input file invalid")
    cache, store = MemoryCache(), MemoryJobStore()
    with engine_for(server, cache) as engine:
        report = run(engine, store)
        assert report.answered == 0 and report.sync_requests == 3 and server.calls == 3
        result = engine.extract_texts(ITEMS)
    assert server.calls == 3
    assert all(len(result[i].facts) == 1 for i, _, _ in ITEMS)


def test_requests_of_a_job_collected_before_are_not_batched_again(server: FakeOpenAI) -> None:
    server.batches.fail_requests(lambda body: "ABC" in str(body["messages"]), 500, "boom")
    store = MemoryJobStore()
    with engine_for(server, MemoryCache()) as engine:
        run(engine, store)
    # the run stopped before its synchronous calls: a fresh cache (nothing of it kept)
    with engine_for(server, MemoryCache()) as engine:
        again = run(engine, store)
    assert len(server.batches.created) == 1
    assert again.requests == 0 and again.sync_requests == 3


def test_a_configuration_error_on_the_synchronous_path_stops_the_run(server: FakeOpenAI) -> None:
    server.batches.fail_next("input file invalid")
    server.always(lambda snippets: True, Status(401, message="Incorrect API key provided"))
    with engine_for(server, MemoryCache()) as engine, pytest.raises(ModelConfigError):
        run(engine, MemoryJobStore())


def test_a_stop_while_waiting_leaves_the_job_stored_for_the_next_run() -> None:
    with FakeOpenAI(batch_options={"advance_on_retrieve": False}) as server:
        store = MemoryJobStore()

        def stopping(_seconds: float) -> None:
            raise Interrupted("stopping")

        with engine_for(server, MemoryCache()) as engine:

            def make_runner(sink: ResultSink) -> Any:
                return runner_for(engine, store, sink, now=time.time)

            with pytest.raises(Interrupted):
                prefill_cache(engine, ITEMS, make_runner, poll_s=1, sleep=stopping)
        server.batches.finish()
        cache = MemoryCache()
        with engine_for(server, cache) as engine:
            report = run(engine, store)
    assert len(server.batches.created) == 1 and report.answered == 3 and server.calls == 0


def test_a_job_resumed_under_another_model_caches_and_books_its_answers_as_its_own_model() -> None:
    with FakeOpenAI(batch_options={"advance_on_retrieve": False}) as server:
        store = MemoryJobStore()

        def stopping(_seconds: float) -> None:
            raise Interrupted("stopping")

        with engine_for(server, MemoryCache(), model="gpt-6-luna") as engine:

            def make_runner(sink: ResultSink) -> Any:
                return runner_for(engine, store, sink, now=time.time)

            with pytest.raises(Interrupted):
                prefill_cache(engine, ITEMS, make_runner, poll_s=1, sleep=stopping)
        server.batches.finish()
        server.batches.advance_on_retrieve = True  # the new model's own job, submitted now
        cache = MemoryCache()
        # FINPIPE_MODEL changed before the next night: the open job is resumed and collected
        with engine_for(server, cache, model="gpt-4o-mini") as engine:
            run(engine, store)
    texts = [text for _, text, _ in ITEMS]
    first_sentences = [t.split(". ")[0] + "." for t in texts]
    answered = {cache_key(s, "gpt-6-luna") for s in first_sentences}
    assert answered <= set(cache.entries)  # under the model that answered
    booked = [u for u in cache.usages if u.tier == "batch" and u.model == "gpt-6-luna"]
    assert len(booked) == 3  # and at its price
    luna = load_table(None).lookup("gpt-6-luna")
    assert luna is not None
    for u in booked:
        tokens = (u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens)
        assert u.cost_usd == estimate_cost_usd(luna.price, *tokens, tier="batch")


def test_an_answer_asked_with_an_older_prompt_is_not_cached_under_this_one(
    server: FakeOpenAI,
) -> None:
    with engine_for(server, MemoryCache()) as engine:
        group = [SnippetRequest("r0", ITEMS[0][1].split(". ")[0] + ".")]
        body = engine.first_body(group)
        completion = server.batch_answer(body)[1]
        assert engine.batch_entries(group, body, completion)  # this prompt: cached
        old = {
            **body,
            "messages": [{"role": "system", "content": "an older prompt"}, *body["messages"][1:]],
        }
        assert engine.batch_entries(group, old, completion) == {}


def test_a_batch_answer_that_fails_validation_is_asked_again_once_not_from_scratch(
    server: FakeOpenAI,
) -> None:
    answered: set[str] = set()

    def the_first_time(text: str) -> bool:
        """Each snippet's first answer (the batch's) names an amount its text does not have."""
        first = text not in answered
        answered.add(text)
        return first

    server.always(lambda _snippets: True, Echo(corrupt=the_first_time))
    cache, store = MemoryCache(), MemoryJobStore()
    with engine_for(server, cache) as engine:
        report = run(engine, store)
        assert server.batch_lines == 3 and report.sync_requests == 0
        # as the synchronous path goes on from its first answer: one re-ask per call, no new ask
        assert server.calls == 3
        assert [u.purpose for u in cache.usages if u.tier != "batch"] == ["reask"] * 3
        assert all("s1" in str(r.body["messages"][2:]) for r in server.requests)
        result = engine.extract_texts(ITEMS)
    assert server.calls == 3  # the workers then find every answer in the cache
    facts = [f for i, _, _ in ITEMS for f in result[i].facts]
    assert len(facts) == 6 and {f.extractor for f in facts} == {"openai"}


def test_the_request_lines_are_the_calls_the_synchronous_path_makes_with_some_snippets_cached(
    server: FakeOpenAI,
) -> None:
    """One plan for both paths: with the second report's snippet cached and a text repeated, the
    bodies of the request lines are exactly the calls the synchronous path makes."""
    items = [*ITEMS, ("again", ITEMS[4][1], None)]
    cache = MemoryCache()
    with engine_for(server, cache) as engine:
        engine.extract_texts([ITEMS[1]])
        planned, snippets, cached = plan_requests(engine, items)
        sent_before = len(server.requests)
        engine.extract_texts(items)
    assert (snippets, cached) == (7, 1)
    synchronous = [r.body for r in server.requests[sent_before:]]
    assert synchronous == [r.body for r in planned.requests]
    assert [len(groups[0]) for groups in planned.groups.values()] == [2, 2, 1]
