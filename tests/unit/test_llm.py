"""The OpenAI extraction engine against the local OpenAI-compatible server (a real socket)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAI
from fakes.script import Delay, Echo, Refuse, Reply, Status, malformed, truncated
from schemas.errors import ModelConfigError, ModelRejected, ModelUnavailable
from schemas.message import Provenance, ReportMessage, report_id_for
from schemas.settings import Settings
from worker.llm import (
    EXTRACTOR_FALLBACK,
    EXTRACTOR_OPENAI,
    CallUsage,
    MemoryCache,
    OpenAIExtractor,
    SnippetRequest,
    cache_key,
    extract_reports,
)
from worker.model.prompt import PROMPT_VERSION

SEED = "Company XYZ reported a net income of $5.3 million for Q1 2024."
NAMES = ["ABC", "DEF", "GHI", "JKL", "MNO", "PQR", "STU", "VWX", "XYZ", "KLM"]


def sentence(name: str, tenths: int) -> str:
    amount = f"${tenths // 10}.{tenths % 10} million"
    return f"Company {name} reported a net income of {amount} for Q1 2024."


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as srv:
        yield srv


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def settings_for(server: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": "test-key",
        "openai_base_url": server.base_url,
        "provider": "openai",
        "llm_timeout_s": 5.0,
        "llm_max_retries": 2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_engine(server: FakeOpenAI, sleeps: Sleeps) -> Iterator[Any]:
    engines: list[OpenAIExtractor] = []

    def make(cache: MemoryCache | None = None, **overrides: Any) -> OpenAIExtractor:
        engine = OpenAIExtractor(
            settings_for(server, **overrides),
            cache=cache,
            sleep=sleeps,
            rand=lambda: 0.0,
            backoff_base_s=0.01,
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def requests_of(*texts: str) -> list[SnippetRequest]:
    return [SnippetRequest(f"r{i}", text) for i, text in enumerate(texts)]


# --------------------------------------------------------------------------- the happy path


def test_seed_example_goes_through_the_openai_provider(server: FakeOpenAI) -> None:
    found = extract_reports(settings_for(server), [("r1", SEED, None)])
    [ff] = found["r1"]
    assert ff.extractor == EXTRACTOR_OPENAI
    assert ff.fact.company == "XYZ"
    assert ff.fact.metric == "net income"
    assert ff.fact.value == Decimal("5300000")
    assert ff.fact.json_value() == 5300000
    assert ff.fact.currency == "USD"
    assert ff.fact.quarter == "Q1 2024"
    assert ff.fact.value_text == "$5.3 million"
    assert ff.snippet.text[ff.fact.start : ff.fact.end] == "$5.3 million"
    assert server.calls == 1


def test_twenty_one_sentence_reports_make_one_call(server: FakeOpenAI, make_engine: Any) -> None:
    engine = make_engine()
    items = [(f"rep{i}", sentence(NAMES[i % 10] + str(i), 11 + i), None) for i in range(20)]
    result = engine.extract_texts(items)
    assert server.calls == 1
    assert server.snippets_per_call == [20]
    for i in range(20):
        [ff] = result[f"rep{i}"].facts
        assert ff.extractor == EXTRACTOR_OPENAI
        assert ff.fact.value == Decimal(11 + i) * 100_000
        assert ff.model == "gpt-6-luna"


def test_batches_are_cut_at_the_snippet_limit(server: FakeOpenAI, make_engine: Any) -> None:
    engine = make_engine(batch_snippets=8)
    items = [(f"rep{i}", sentence("XYZ", 11 + i), None) for i in range(20)]
    engine.extract_texts(items, concurrency=3)
    assert sorted(server.snippets_per_call) == [4, 8, 8]


def test_snippets_without_an_amount_are_counted_not_sent(
    server: FakeOpenAI, make_engine: Any
) -> None:
    engine = make_engine()
    text = "Company XYZ is a maker of widgets. " + SEED
    result = engine.extract_texts([("r1", text, None)])
    assert result["r1"].snippets == 2
    assert result["r1"].snippets_without_amount == 1
    assert server.snippets_per_call == [1]
    assert len(result["r1"].facts) == 1


def test_report_messages_go_through_the_extractor_interface(
    server: FakeOpenAI, make_engine: Any
) -> None:
    engine = make_engine()
    msgs = [
        ReportMessage(
            report_id=report_id_for(text),
            raw_text=text,
            provenance=Provenance(channel="api"),
        )
        for text in (SEED, sentence("ABC", 72))
    ]
    result = engine.extract(msgs)
    assert server.calls == 1
    assert [len(result[m.report_id].facts) for m in msgs] == [1, 1]


# --------------------------------------------------------------------------- cache


def test_rerun_makes_no_call_at_all(server: FakeOpenAI, make_engine: Any) -> None:
    cache = MemoryCache()
    texts = [sentence(n, 20 + i) for i, n in enumerate(NAMES[:5])]
    first = make_engine(cache).extract_batch(requests_of(*texts))
    assert server.calls == 1
    second_engine = make_engine(cache)
    second = second_engine.extract_batch(requests_of(*texts))
    assert server.calls == 1
    assert all(o.cached for o in second.values())
    assert second_engine.ledger.totals().cache_hits == 5
    assert second_engine.ledger.totals().calls == 0
    assert {k: [f.fact for f in o.facts] for k, o in first.items()} == {
        k: [f.fact for f in o.facts] for k, o in second.items()
    }


def test_fallback_outcome_is_cached_too(server: FakeOpenAI, make_engine: Any) -> None:
    cache = MemoryCache()
    server.script(Refuse())
    first = make_engine(cache).extract_batch(requests_of(SEED))
    assert first["r0"].facts[0].extractor == EXTRACTOR_FALLBACK
    second = make_engine(cache).extract_batch(requests_of(SEED))
    assert server.calls == 1
    assert second["r0"].facts[0].extractor == EXTRACTOR_FALLBACK


def test_identical_snippets_in_one_batch_are_asked_once(
    server: FakeOpenAI, make_engine: Any
) -> None:
    out = make_engine().extract_batch(requests_of(SEED, SEED, sentence("ABC", 31)))
    assert server.snippets_per_call == [2]
    assert [len(o.facts) for o in out.values()] == [1, 1, 1]


def test_cache_key_depends_on_text_model_and_output_format() -> None:
    assert cache_key(SEED, "gpt-6-luna") == cache_key(SEED, "gpt-6-luna", "json_schema")
    assert cache_key(SEED, "gpt-6-luna") != cache_key(SEED, "gpt-4o")
    assert cache_key(SEED, "gpt-6-luna") != cache_key(SEED + " ", "gpt-6-luna")
    assert cache_key(SEED, "gpt-6-luna") != cache_key(SEED, "gpt-6-luna", "json_object")


# --------------------------------------------------------------------------- validation


def test_only_the_failed_snippet_is_asked_again(server: FakeOpenAI, make_engine: Any) -> None:
    texts = [sentence("ABC", 11), sentence("DEF", 22), sentence("GHI", 33)]
    server.script(Echo(corrupt=lambda t: "DEF" in t))
    out = make_engine().extract_batch(requests_of(*texts))
    assert server.snippets_per_call == [3, 1]
    reask = server.requests[1]
    assert [m["role"] for m in reask.body["messages"]] == ["system", "user", "assistant", "user"]
    assert "does not occur in the snippet" in reask.body["messages"][-1]["content"]
    assert reask.snippets[0]["text"] == texts[1]
    assert all(f.extractor == EXTRACTOR_OPENAI for o in out.values() for f in o.facts)
    assert out["r1"].facts[0].fact.value == Decimal(2_200_000)
    assert [r.attempt for r in out["r1"].rejected] == [1]
    assert out["r0"].rejected == [] and out["r2"].rejected == []


def test_ungrounded_facts_are_never_kept(server: FakeOpenAI, make_engine: Any) -> None:
    always = Echo(corrupt=lambda t: True)
    server.script(always, always)
    out = make_engine().extract_batch(requests_of(SEED))
    outcome = out["r0"]
    assert server.calls == 2
    assert [r.reason for r in outcome.rejected] == ["value_text does not occur in the snippet"] * 2
    assert all(r.candidate["value_text"] == "$987.6 million" for r in outcome.rejected)
    [ef] = outcome.facts
    assert ef.extractor == EXTRACTOR_FALLBACK
    assert ef.fact.value == Decimal(5_300_000)
    assert outcome.fallback_reason == "no grounded fact after re-ask"


def _answer(value: float, value_text: str = "$5.3 million") -> Reply:
    fact = {
        "company": "XYZ",
        "metric": "net income",
        "value_text": value_text,
        "value": value,
        "period": "Q1 2024",
        "currency": "$",
    }
    return Reply(lambda snips: {"snippets": [{"id": snips[0]["id"], "facts": [fact]}]})


def test_claimed_value_must_match_the_normalized_text(server: FakeOpenAI, make_engine: Any) -> None:
    server.script(_answer(53_000_000), _answer(5_300_000))
    out = make_engine().extract_batch(requests_of(SEED))["r0"]
    assert server.calls == 2
    assert "claims" in out.rejected[0].reason
    [ef] = out.facts
    assert ef.extractor == EXTRACTOR_OPENAI and ef.fact.value == Decimal(5_300_000)


def test_model_scaling_is_not_trusted_partial_value_text(
    server: FakeOpenAI, make_engine: Any
) -> None:
    # "5.3" alone occurs in the text but does not mean 5.3 million
    server.script(_answer(5_300_000, "5.3"), _answer(5_300_000, "5.3"))
    out = make_engine().extract_batch(requests_of(SEED))["r0"]
    assert len(out.rejected) == 2
    assert all(f.extractor == EXTRACTOR_FALLBACK for f in out.facts)


def test_malformed_json_is_asked_again(server: FakeOpenAI, make_engine: Any) -> None:
    server.script(malformed())
    out = make_engine().extract_batch(requests_of(SEED, sentence("ABC", 40)))
    assert server.snippets_per_call == [2, 2]
    assert all(f.extractor == EXTRACTOR_OPENAI for o in out.values() for f in o.facts)


def test_missing_snippet_is_asked_again_alone(server: FakeOpenAI, make_engine: Any) -> None:
    server.script(Echo(drop=lambda t: "DEF" in t))
    texts = [sentence("ABC", 11), sentence("DEF", 22), sentence("GHI", 33)]
    out = make_engine().extract_batch(requests_of(*texts))
    assert server.snippets_per_call == [3, 1]
    assert out["r1"].facts[0].extractor == EXTRACTOR_OPENAI


def test_truncated_answer_splits_the_batch(server: FakeOpenAI, make_engine: Any) -> None:
    server.script(truncated())
    texts = [sentence(n, 10 + i) for i, n in enumerate(NAMES[:4])]
    out = make_engine().extract_batch(requests_of(*texts))
    assert server.snippets_per_call == [4, 2, 2]
    assert all(o.facts[0].extractor == EXTRACTOR_OPENAI for o in out.values())


def test_truncated_single_snippet_falls_back_to_rules(server: FakeOpenAI, make_engine: Any) -> None:
    server.script(truncated())
    out = make_engine().extract_batch(requests_of(SEED))["r0"]
    assert server.calls == 1
    assert out.fallback_reason == "answer truncated"
    assert out.facts[0].extractor == EXTRACTOR_FALLBACK
    assert out.facts[0].fact.value == Decimal(5_300_000)


def test_refusal_is_recorded_and_isolated_by_splitting(
    server: FakeOpenAI, make_engine: Any
) -> None:
    server.script(Refuse("no"), Echo(), Refuse("not this one"))
    out = make_engine().extract_batch(requests_of(SEED, sentence("ABC", 44)))
    assert server.snippets_per_call == [2, 1, 1]
    assert out["r0"].refusal is None
    assert out["r0"].facts[0].extractor == EXTRACTOR_OPENAI
    assert out["r1"].refusal == "not this one"
    assert out["r1"].facts[0].extractor == EXTRACTOR_FALLBACK
    assert out["r1"].fallback_reason == "refused: not this one"


# --------------------------------------------------------------------------- errors and retries


def test_rate_limit_and_server_errors_are_retried_honouring_retry_after(
    server: FakeOpenAI, make_engine: Any, sleeps: Sleeps
) -> None:
    server.script(Status(429, retry_after="2"), Status(500))
    out = make_engine().extract_batch(requests_of(SEED))
    assert server.calls == 3
    assert sleeps[0] == pytest.approx(2.0)
    assert sleeps[1] < 1.0
    assert out["r0"].facts[0].extractor == EXTRACTOR_OPENAI


def test_retries_stop_at_the_limit_with_a_transient_error(
    server: FakeOpenAI, make_engine: Any, sleeps: Sleeps
) -> None:
    server.script(*[Status(503, retry_after="1")] * 5)
    with pytest.raises(ModelUnavailable) as info:
        make_engine(llm_max_retries=2).extract_batch(requests_of(SEED))
    assert server.calls == 3
    assert len(sleeps) == 2
    assert info.value.retry_after_s == pytest.approx(1.0)
    assert "3 attempt(s)" in str(info.value)


def test_a_long_retry_after_goes_back_to_the_broker(server: FakeOpenAI, make_engine: Any) -> None:
    server.script(Status(429, retry_after="3600"))
    with pytest.raises(ModelUnavailable) as info:
        make_engine().extract_batch(requests_of(SEED))
    assert server.calls == 1
    assert info.value.retry_after_s == pytest.approx(3600)


def test_timeouts_are_retried(server: FakeOpenAI, make_engine: Any) -> None:
    server.script(Delay(1.0))
    out = make_engine(llm_timeout_s=0.2).extract_batch(requests_of(SEED))
    assert server.calls == 2
    assert out["r0"].facts[0].extractor == EXTRACTOR_OPENAI


@pytest.mark.parametrize("status", [401, 403, 404])
def test_bad_key_or_model_stops_without_retrying(
    server: FakeOpenAI, make_engine: Any, status: int
) -> None:
    server.script(Status(status, message="Incorrect API key provided"))
    with pytest.raises(ModelConfigError, match="OPENAI_API_KEY"):
        make_engine().extract_batch(requests_of(SEED))
    assert server.calls == 1


def test_wrong_key_is_refused_by_the_server(make_engine: Any) -> None:
    with FakeOpenAI(api_key="right-key") as srv:
        engine = OpenAIExtractor(settings_for(srv, openai_api_key="wrong-key"))
        try:
            with pytest.raises(ModelConfigError):
                engine.extract_batch(requests_of(SEED))
        finally:
            engine.close()


def test_bad_request_is_rejected_without_retrying(server: FakeOpenAI, make_engine: Any) -> None:
    server.script(Status(400, message="bad input"))
    with pytest.raises(ModelRejected, match="bad input"):
        make_engine().extract_batch(requests_of(SEED))
    assert server.calls == 1


def test_every_request_carries_the_strict_schema_and_the_reasoning_parameters(
    server: FakeOpenAI, make_engine: Any
) -> None:
    make_engine().extract_batch(requests_of(SEED))
    body = server.requests[0].body
    assert body["model"] == "gpt-6-luna"
    assert "temperature" not in body
    assert body["reasoning_effort"] == "none"
    assert body["max_completion_tokens"] == 512 + 400
    assert body["prompt_cache_key"] == f"finpipe-{PROMPT_VERSION}-json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True


def test_a_classic_model_gets_temperature_zero_and_no_reasoning_effort(
    server: FakeOpenAI, make_engine: Any
) -> None:
    make_engine(model="gpt-4o-mini").extract_batch(requests_of(SEED))
    body = server.requests[0].body
    assert body["temperature"] == 0
    assert "reasoning_effort" not in body
    assert body["max_completion_tokens"] == 912


# --------------------------------------------------------------------------- cost


def test_usage_and_cost_are_recorded_per_call_and_per_snippet(
    server: FakeOpenAI, make_engine: Any
) -> None:
    cache = MemoryCache()
    engine = make_engine(cache)
    out = engine.extract_batch(requests_of(SEED, sentence("ABC", 12)))
    [call] = cache.usages
    assert isinstance(call, CallUsage)
    assert call.snippets == 2 and call.purpose == "batch"
    assert call.prompt_tokens > 0 and call.completion_tokens > 0
    assert call.cost_usd is not None and call.cost_usd > 0
    totals = engine.ledger.totals()
    assert (totals.calls, totals.prompt_tokens) == (1, call.prompt_tokens)
    shares = [o.usage for o in out.values()]
    assert sum(s.cost_usd or 0 for s in shares) == pytest.approx(call.cost_usd)
    assert abs(sum(s.prompt_tokens for s in shares) - call.prompt_tokens) <= 1


def test_unknown_model_records_tokens_without_cost(server: FakeOpenAI, make_engine: Any) -> None:
    engine = make_engine(model="llama3.1:8b")
    engine.extract_batch(requests_of(SEED))
    totals = engine.ledger.totals()
    assert totals.calls == 1 and totals.prompt_tokens > 0
    assert totals.cost_usd is None


def test_cost_budget_stops_new_calls(server: FakeOpenAI, make_engine: Any) -> None:
    cache = MemoryCache()
    engine = make_engine(cache, max_cost_usd=1e-9)
    engine.extract_batch(requests_of(SEED))
    with pytest.raises(ModelUnavailable, match="cost budget"):
        engine.extract_batch(requests_of(sentence("ABC", 12)))
    assert server.calls == 1
    # what was paid for stays usable
    again = engine.extract_batch(requests_of(SEED))
    assert again["r0"].cached


# --------------------------------------------------------------------------- small pieces


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # in the past
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after_header_forms(headers: dict[str, str], expected: float | None) -> None:
    from worker.model.failures import retry_after_s

    assert retry_after_s(headers, now_s=2_000_000_000.0) == expected


def test_usage_with_an_unknown_cost_stays_unknown() -> None:
    from worker.llm import Usage

    total = Usage(calls=1, cost_usd=0.5)
    total.add(Usage(calls=1, cost_usd=None))
    total.add(Usage(calls=1, cost_usd=0.25))
    assert total.calls == 3
    assert total.cost_usd is None


def test_company_named_earlier_in_the_report_reaches_the_fallback(
    server: FakeOpenAI, make_engine: Any
) -> None:
    text = "Company XYZ published its results. " + SEED
    server.script(Refuse())
    result = make_engine().extract_texts([("r1", text, None)])
    [ff] = result["r1"].facts
    assert ff.extractor == EXTRACTOR_FALLBACK
    assert ff.fact.company == "XYZ"
    assert ff.snippet.text[ff.fact.start : ff.fact.end] == "$5.3 million"


def test_a_loss_is_negative_and_a_sign_mismatch_is_not_trusted(
    server: FakeOpenAI, make_engine: Any
) -> None:
    loss = "Company XYZ reported a net loss of $3 million for Q1 2024."
    out = make_engine().extract_batch(requests_of(loss))["r0"]
    assert out.facts[0].extractor == EXTRACTOR_OPENAI
    assert out.facts[0].fact.value == Decimal(-3_000_000)
    server.script(_answer(-5_300_000), _answer(5_300_000))
    seed = make_engine().extract_batch(requests_of(SEED))["r0"]
    assert "claims" in seed.rejected[0].reason
    assert seed.facts[0].fact.value == Decimal(5_300_000)
