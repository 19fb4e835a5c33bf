"""The engine's hooks for the Batch API and flex modes: the body of its first call, its reading of
an answer that came back in a batch job, batch-rate usage, and flex calls with their fallback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAI
from fakes.script import Status, chat_completion, echo_rules
from schemas.settings import Settings
from worker.llm import MemoryCache, OpenAIExtractor, SnippetRequest
from worker.model.prompt import request_snippets

TEXTS = [
    "Company ABC reported a net income of $5.3 million for Q1 2024.",
    "Company DEF reported revenue of $48.1 million for Q2 2024.",
]
GROUP = [SnippetRequest(f"r{i}:0", t) for i, t in enumerate(TEXTS)]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as srv:
        yield srv


def settings_for(server: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": "test",
        "openai_base_url": server.base_url,
        "provider": "openai",
        "llm_max_retries": 1,
        **overrides,
    }
    return Settings(**values)


def echo(body: dict[str, Any]) -> dict[str, Any]:
    return chat_completion(body, json.dumps(echo_rules(request_snippets(body["messages"]))))


def test_first_body_is_exactly_the_engine_s_first_call(server: FakeOpenAI) -> None:
    with OpenAIExtractor(settings_for(server), cache=MemoryCache()) as engine:
        body = engine.first_body(GROUP)
        engine.extract_batch(GROUP)
    assert server.calls == 1
    assert server.requests[0].body == body
    assert "service_tier" not in body


def test_a_batch_answer_fills_the_cache_and_the_engine_then_makes_no_call(
    server: FakeOpenAI,
) -> None:
    cache = MemoryCache()
    with OpenAIExtractor(settings_for(server), cache=cache) as engine:
        body = engine.first_body(GROUP)
        entries = engine.batch_entries(GROUP, body, echo(body))
        assert len(entries) == 2
        cache.put_many(entries)
        outcomes = engine.extract_batch(GROUP)
    assert server.calls == 0
    assert all(o.cached and o.facts for o in outcomes.values())


def test_a_snippet_whose_batch_answer_does_not_ground_is_left_for_a_synchronous_call(
    server: FakeOpenAI,
) -> None:
    cache = MemoryCache()
    with OpenAIExtractor(settings_for(server), cache=cache) as engine:
        body = engine.first_body(GROUP)
        wrong = echo_rules(request_snippets(body["messages"]), corrupt=lambda t: "DEF" in t)
        entries = engine.batch_entries(GROUP, body, chat_completion(body, json.dumps(wrong)))
        assert len(entries) == 1
        truncated = chat_completion(body, '{"snippets": [', finish_reason="length")
        assert engine.batch_entries(GROUP, body, truncated) == {}
        assert engine.batch_entries(GROUP, body, {"not": "a completion"}) == {}
        cache.put_many(entries)
        engine.extract_batch(GROUP)
    assert server.calls == 1 and len(server.snippets_per_call) == 1
    assert server.snippets_per_call == [1]


def test_a_batch_answer_is_priced_at_the_batch_rate(server: FakeOpenAI) -> None:
    cache = MemoryCache()
    with OpenAIExtractor(settings_for(server), cache=cache) as engine:
        body = engine.first_body(GROUP)
        completion = echo(body)
        call = engine.record_batch_usage(body, completion, len(GROUP))
        assert call is not None and call.tier == "batch" and call.purpose == "batch-api"
        assert engine.price is not None and call.cost_usd is not None
        full = (
            completion["usage"]["prompt_tokens"] * float(engine.price.input)
            + completion["usage"]["completion_tokens"] * float(engine.price.output)
        ) / 1e6
        assert call.cost_usd == pytest.approx(full * float(engine.price.batch))
        assert call.cost_usd < full
    assert cache.usages == [call]


def test_flex_mode_asks_the_flex_tier_with_a_long_timeout(server: FakeOpenAI) -> None:
    cache = MemoryCache()
    with OpenAIExtractor(settings_for(server, llm_mode="flex"), cache=cache) as engine:
        engine.extract_batch(GROUP)
    assert server.requests[0].body["service_tier"] == "flex"
    assert server.requests[0].headers.get("x-stainless-read-timeout") == "900.0"
    assert cache.usages[0].tier == "flex"


def test_flex_without_capacity_falls_back_to_standard_for_that_batch_once_logged(
    server: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Status(429, message="Resource unavailable, please retry later", error_code=None))
    cache = MemoryCache()
    caplog.set_level(logging.WARNING)
    with OpenAIExtractor(settings_for(server, llm_mode="flex"), cache=cache) as engine:
        outcomes = engine.extract_batch(GROUP)
        engine.extract_batch([SnippetRequest("r9:0", "Company GHI had revenue of $7 million.")])
    tiers = [r.body.get("service_tier") for r in server.requests]
    assert tiers == ["flex", None, "flex"]  # one refusal, no retry at flex; next batch flex again
    assert all(o.facts for o in outcomes.values())
    warnings = [r for r in caplog.records if "flex tier unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert [u.tier for u in cache.usages] == ["standard", "flex"]
