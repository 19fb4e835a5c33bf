"""Servers that differ from OpenAI, and OpenAI refusing a parameter: the engine adapts once per
run, or stops the worker with a message naming what to change; never a dead letter."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAI
from fakes.script import Reply, Status
from schemas.errors import ModelConfigError, ModelUnavailable
from schemas.fact import Fact
from tests.unit.test_llm import NAMES, SEED, Sleeps, sentence, settings_for
from worker.llm import EXTRACTOR_OPENAI, MemoryCache, OpenAIExtractor, SnippetRequest
from worker.model.failures import ApiFailure, classify
from worker.model.formats import RETRY_AFTER, STRIKES, VARIANTS, Negotiator

TEXTS = [sentence(n, 11 + i) for i, n in enumerate(NAMES[:4])]


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def engine_for(sleeps: Sleeps) -> Iterator[Any]:
    made: list[tuple[FakeOpenAI, OpenAIExtractor]] = []

    def make(
        server: FakeOpenAI | None = None, cache: MemoryCache | None = None, **overrides: Any
    ) -> tuple[FakeOpenAI, OpenAIExtractor]:
        srv = server or FakeOpenAI()
        if srv._thread is None:
            srv.start()
        today = overrides.pop("today", None)
        engine = OpenAIExtractor(
            settings_for(srv, **overrides),
            cache=cache,
            today=today,
            sleep=sleeps,
            rand=lambda: 0.0,
            backoff_base_s=0.01,
        )
        made.append((srv, engine))
        return srv, engine

    yield make
    for srv, engine in made:
        engine.close()
        srv.stop()


def requests_of(*texts: str) -> list[SnippetRequest]:
    return [SnippetRequest(f"r{i}", text) for i, text in enumerate(texts)]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def all_by_model(out: dict[str, Any], n: int) -> bool:
    facts = [f for o in out.values() for f in o.facts]
    return len(facts) == n and all(f.extractor == EXTRACTOR_OPENAI for f in facts)


# --------------------------------------------------------------------------- output formats


def test_a_json_object_server_costs_one_refused_request_and_one_log_line(
    engine_for: Any, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    cache = MemoryCache()
    server, engine = engine_for(FakeOpenAI(mode="json_object"), cache)
    out = engine.extract_batch(requests_of(*TEXTS))
    assert all_by_model(out, 4)
    kinds = [r.body.get("response_format", {}).get("type") for r in server.requests]
    assert kinds == ["json_schema", "json_object"]
    assert server.requests[1].body["response_format"]["schema"]["type"] == "object"
    assert sleeps == []
    assert [w for w in warnings_of(caplog) if "output format" in w] == [
        "output format: json_schema does not work here (400: response_format type must be "
        '"text" or "json_object", not "json_schema"); using json_object with a schema field '
        "from now on"
    ]
    [call] = cache.usages
    assert call.response_format == "json_object"
    # the run stays in json_object: the next batch makes one request
    engine.extract_batch(requests_of(sentence("ABC", 77)))
    assert server.calls == 3
    # a new run over the same snippets finds the json_object answers in the cache
    _, again = engine_for(server, cache)
    assert all(o.cached for o in again.extract_batch(requests_of(*TEXTS)).values())
    assert server.calls == 3


def test_llama_cpp_python_answering_500_to_json_schema_is_not_retried(
    engine_for: Any, sleeps: Sleeps
) -> None:
    server, engine = engine_for(FakeOpenAI(mode="llama-cpp-python"))
    out = engine.extract_batch(requests_of(*TEXTS))
    assert all_by_model(out, 4)
    assert server.calls == 2 and sleeps == []


def test_a_server_that_ignores_the_format_is_asked_with_the_schema_in_the_prompt(
    engine_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server, engine = engine_for(FakeOpenAI(mode="ignore"))
    out = engine.extract_batch(requests_of(*TEXTS))
    assert all_by_model(out, 4)
    assert server.calls == 2
    assert "JSON schema" in server.requests[1].body["messages"][0]["content"]
    assert any("the answer is not JSON" in w for w in warnings_of(caplog))


def test_a_server_that_takes_no_format_at_all_gets_plain_text_requests(
    engine_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = MemoryCache()
    server, engine = engine_for(FakeOpenAI(mode="no-format"), cache)
    out = engine.extract_batch(requests_of(*TEXTS))
    assert all_by_model(out, 4)
    assert "response_format" not in server.requests[-1].body
    assert server.calls == 4  # json_schema, json_object + schema, json_object, then text
    assert len([w for w in warnings_of(caplog) if "output format" in w]) == 3
    assert [u.response_format for u in cache.usages] == ["prompt"]


def test_one_prose_answer_after_json_schema_worked_is_asked_again_in_json_schema(
    engine_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server, engine = engine_for()
    assert all_by_model(engine.extract_batch(requests_of(TEXTS[0])), 1)
    server.script(Reply("Sure! The company reported revenue, as requested."))
    assert all_by_model(engine.extract_batch(requests_of(TEXTS[1])), 1)  # re-asked once
    assert all_by_model(engine.extract_batch(requests_of(TEXTS[2])), 1)
    kinds = [r.body["response_format"]["type"] for r in server.requests]
    assert kinds == ["json_schema"] * 4
    assert not [w for w in warnings_of(caplog) if "output format" in w]


def test_a_format_that_worked_goes_after_repeated_refusals_and_is_tried_again_later() -> None:
    negotiator = Negotiator("auto")
    schema, with_field = VARIANTS[0], VARIANTS[1]
    negotiator.worked(schema)
    for _ in range(STRIKES - 1):
        assert negotiator.fall_back(schema, "refused") and negotiator.current == schema
    negotiator.worked(schema)  # an answer between: the count starts again
    for _ in range(STRIKES):
        assert negotiator.fall_back(schema, "refused")
    assert negotiator.current == with_field
    for _ in range(RETRY_AFTER - 1):
        negotiator.worked(with_field)
    assert negotiator.current == with_field
    negotiator.worked(with_field)
    assert negotiator.current == schema  # tried again
    for _ in range(STRIKES):
        negotiator.fall_back(schema, "refused")
    for _ in range(RETRY_AFTER):
        negotiator.worked(with_field)
    assert negotiator.current == with_field  # twice as long before the next try
    for _ in range(RETRY_AFTER):
        negotiator.worked(with_field)
    assert negotiator.current == schema


def test_a_format_that_never_worked_goes_at_the_first_refusal() -> None:
    negotiator = Negotiator("auto")
    assert negotiator.fall_back(VARIANTS[0], "refused")
    assert negotiator.current == VARIANTS[1]


def test_a_fixed_format_the_server_refuses_stops_the_worker(engine_for: Any) -> None:
    _, engine = engine_for(FakeOpenAI(mode="json_object"), response_format="json_schema")
    with pytest.raises(ModelConfigError, match="FINPIPE_RESPONSE_FORMAT=auto"):
        engine.extract_batch(requests_of(SEED))


def test_a_fixed_json_object_format_is_used_from_the_first_call(engine_for: Any) -> None:
    server, engine = engine_for(FakeOpenAI(mode="json_object"), response_format="json_object")
    assert all_by_model(engine.extract_batch(requests_of(SEED)), 1)
    assert server.calls == 1


# --------------------------------------------------------------------------- parameters


def test_a_refused_temperature_costs_one_warning_for_the_run(
    engine_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server, engine = engine_for(FakeOpenAI(reject_params=("temperature",)), model="gpt-4o-mini")
    assert all_by_model(engine.extract_batch(requests_of(SEED)), 1)
    assert all_by_model(engine.extract_batch(requests_of(sentence("ABC", 12))), 1)
    assert ["temperature" in r.body for r in server.requests] == [True, False, False]
    refused = [w for w in warnings_of(caplog) if "refused" in w]
    assert len(refused) == 1 and "'temperature'" in refused[0]


def test_an_unknown_reasoning_model_sheds_temperature_and_max_tokens(
    engine_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server, engine = engine_for(model="o4-mini-custom")
    assert all_by_model(engine.extract_batch(requests_of(SEED)), 1)
    assert server.calls == 3
    final = server.requests[-1].body
    assert "temperature" not in final and "max_tokens" not in final
    assert final["max_completion_tokens"] == 912
    assert any("has no profile" in w for w in warnings_of(caplog))


def test_a_parameter_still_refused_after_leaving_it_out_stops_the_worker(
    engine_for: Any,
) -> None:
    refusal = Status(
        400, message="Unsupported parameter: 'temperature' is not supported.", param="temperature"
    )
    server, engine = engine_for(model="gpt-4o-mini")
    server.script(refusal, refusal)
    with pytest.raises(ModelConfigError, match="after leaving out 'temperature'"):
        engine.extract_batch(requests_of(SEED))
    assert server.calls == 2


class RefusedTogether:
    """The engine's model client, with its first ``n`` failures each held until all ``n`` have
    come back: ``n`` calls in flight refused at once, before any of them acts on it."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner = inner
        self.n = n
        self.failed = 0
        self.lock = threading.Lock()
        self.together = threading.Barrier(n, timeout=10)

    def send(self, body: dict[str, Any], timeout_s: float | None = None) -> Any:
        try:
            return self.inner.send(body, timeout_s)
        except ApiFailure:
            with self.lock:
                self.failed += 1
                first = self.failed <= self.n
            if first:
                self.together.wait()
            raise


def test_calls_in_flight_refused_one_parameter_together_leave_it_out_and_go_on(
    engine_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # a fixed format; a worker's first call goes alone (it measures the answers' size), so the
    # server starts refusing the parameter once calls run side by side (a deploy behind the
    # address, a model alias moved to another model)
    server, engine = engine_for(
        FakeOpenAI(), model="gpt-4o-mini", response_format="json_schema", batch_snippets=1
    )
    assert all_by_model(engine.extract_batch(requests_of(SEED)), 1)
    server.reject_params = ("temperature",)
    engine._caller.client = RefusedTogether(engine._caller.client, 3)
    items = [(f"r{i}", text, None) for i, text in enumerate(TEXTS[:3])]
    out = engine.extract_texts(items, concurrency=3)
    facts = [f for ext in out.values() for f in ext.facts]
    assert len(facts) == 3 and {f.extractor for f in facts} == {EXTRACTOR_OPENAI}
    sent = ["temperature" in r.body for r in server.requests[1:]]
    assert sent.count(True) == 3 and sent.count(False) == 3
    refused = [w for w in warnings_of(caplog) if "refused" in w]
    assert len(refused) == 1 and "'temperature'" in refused[0]


def test_an_unsupported_reasoning_effort_is_dropped_with_a_warning(
    engine_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server, engine = engine_for(FakeOpenAI(reject_params=("reasoning_effort",)))
    assert all_by_model(engine.extract_batch(requests_of(SEED)), 1)
    assert "reasoning_effort" not in server.requests[-1].body


def test_insufficient_quota_stops_the_worker_without_retrying(
    engine_for: Any, sleeps: Sleeps
) -> None:
    server, engine = engine_for()
    server.script(
        Status(429, message="You exceeded your current quota", error_code="insufficient_quota")
    )
    with pytest.raises(ModelConfigError, match="no quota left"):
        engine.extract_batch(requests_of(SEED))
    assert server.calls == 1 and sleeps == []


def test_x_should_retry_false_goes_to_the_broker_at_once(engine_for: Any, sleeps: Sleeps) -> None:
    server, engine = engine_for()
    server.script(Status(503, retry_after="7", should_retry="false"))
    with pytest.raises(ModelUnavailable) as info:
        engine.extract_batch(requests_of(SEED))
    assert server.calls == 1 and sleeps == []
    assert info.value.retry_after_s == pytest.approx(7)


def test_x_should_retry_true_retries_even_a_bad_request(engine_for: Any, sleeps: Sleeps) -> None:
    server, engine = engine_for()
    server.script(Status(400, message="try again", should_retry="true"))
    assert all_by_model(engine.extract_batch(requests_of(SEED)), 1)
    assert server.calls == 2 and len(sleeps) == 1


@pytest.mark.parametrize(
    ("status", "param", "message", "code", "verdict"),
    [
        (429, None, "quota", "insufficient_quota", "config"),
        (429, None, "slow down", None, "transient"),
        (401, None, "bad key", None, "config"),
        (404, None, "no such model", None, "config"),
        (400, "temperature", "Unsupported value: 'temperature'", "unsupported_value", "param"),
        (400, None, "unsupported parameter: temperature", None, "param"),
        (422, None, "Extra inputs are not permitted: prompt_cache_key", None, "param"),
        (400, None, "max_tokens is not supported, use max_completion_tokens", None, "param"),
        (500, None, "response_format.type: Input should be 'text'", None, "format"),
        (400, "response_format", "Invalid schema", None, "format"),
        (400, "model", "The model does not exist", None, "config"),
        (400, None, "context length exceeded", None, "rejected"),
        (500, None, "internal error", None, "transient"),
    ],
)
def test_failures_are_classified_by_what_the_server_says(
    status: int, param: str | None, message: str, code: str | None, verdict: str
) -> None:
    failure = ApiFailure("status", message, status=status, param=param, code=code)
    sent = {"response_format": {}, "temperature": 0}
    decision = classify(failure, sent)
    assert decision.verdict == verdict
    if verdict == "param":
        assert decision.param in message


# --------------------------------------------------------------------------- usage and start-up


def test_reasoning_cached_and_written_tokens_reach_the_ledger(engine_for: Any) -> None:
    cache = MemoryCache()
    _, engine = engine_for(cache=cache, reasoning_effort="medium")
    engine.extract_batch(requests_of(SEED))
    engine.extract_batch(requests_of(sentence("ABC", 12)))
    first, second = cache.usages
    assert first.reasoning_tokens == 128 and first.reasoning_effort == "medium"
    assert first.cache_write_tokens > 1_000 and first.cached_tokens == 0
    assert second.cached_tokens == first.cache_write_tokens
    assert second.cost_usd is not None and first.cost_usd is not None
    assert second.cost_usd < first.cost_usd
    assert engine.ledger.totals().reasoning_tokens == 256


def test_a_retiring_model_is_announced_at_start_up(
    engine_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    engine_for(model="gpt-4o-mini", today=date(2026, 11, 30))
    assert any("shuts down on 2027-01-14" in w for w in warnings_of(caplog))


def test_fallback_facts_that_do_not_stand_in_the_snippet_are_not_kept(
    engine_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakes.script import Refuse
    from worker.model import grounding

    wrong = Fact(
        company="XYZ",
        metric="net income",
        value=Decimal(53_000_000),
        currency="USD",
        unit="currency",
        quarter="Q1 2024",
        value_text="$5.3 million",
        start=41,
        end=53,
    )
    monkeypatch.setattr(grounding, "rules_fallback", lambda request: [wrong])
    server, engine = engine_for()
    server.script(Refuse())
    [outcome] = engine.extract_batch(requests_of(SEED)).values()
    assert outcome.facts == []
    assert "rules fallback" in outcome.rejected[0].reason
