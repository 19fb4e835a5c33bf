"""The model path under an account's rate limit, against the local server enforcing it."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest

from fakes.limits import RateLimits, duration
from fakes.openai_server import FakeOpenAI
from fakes.script import Status
from schemas.errors import Interrupted
from schemas.settings import Settings
from worker.llm import EXTRACTOR_OPENAI, OpenAIExtractor, SnippetRequest
from worker.model.pacing import Pacer
from worker.model.ratelimit import Budget, parse_duration_s

RATE_LIMITED = Status(
    429,
    message="Rate limit reached for gpt-6-luna on tokens per min (TPM): Limit 1000, Used 990, "
    "Requested 500. Please try again in 0.2s.",
    error_code="rate_limit_exceeded",
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_test_server_charges_at_admission_and_refuses_as_openai_does() -> None:
    clock = Clock()
    limits = RateLimits(tpm=1_200, rpm=100, clock=clock)
    body = {"model": "m", "messages": [{"content": "x" * 400}], "max_completion_tokens": 500}
    status, error, headers = limits.admit(body)
    assert (status, error) == (200, None)
    assert headers["x-ratelimit-remaining-tokens"] == "600"  # 100 prompt + 500 asked for
    assert headers["x-ratelimit-remaining-requests"] == "99"
    assert parse_duration_s(headers["x-ratelimit-reset-tokens"]) == pytest.approx(30.0)
    limits.admit(body)
    status, error, headers = limits.admit(body)
    assert status == 429 and error is not None
    assert error["error"]["code"] == "rate_limit_exceeded"
    assert error["error"]["message"].endswith("Please try again in 30s.")
    assert "retry-after" not in headers
    clock.now += 30  # continuous refill: half a minute, half the limit
    assert limits.admit(body)[0] == 200
    assert (limits.admitted, limits.refused) == (3, 1)


@pytest.mark.parametrize(("seconds", "text"), [(0.0201, "21ms"), (1.2, "1.2s"), (360, "6m0s")])
def test_the_test_server_writes_durations_as_openai_does(seconds, text) -> None:
    assert duration(seconds) == text
    assert parse_duration_s(text) == pytest.approx(seconds, abs=0.001)


def _engine(server: FakeOpenAI, **overrides: Any) -> OpenAIExtractor:
    values: dict[str, Any] = {
        "openai_api_key": "test-key",
        "openai_base_url": server.base_url,
        "provider": "openai",
        "llm_timeout_s": 5.0,
        "llm_max_retries": 1,
        "batch_snippets": 2,
    }
    values.update(overrides)
    return OpenAIExtractor(Settings(**values), sleep=_no_retry_sleep, rand=lambda: 0.0)


def _no_retry_sleep(seconds: float) -> None:
    raise AssertionError(f"a retry with backoff ({seconds} s): a rate limit is no failure")


def _snippets(n: int) -> list[tuple[str, str, str | None]]:
    return [
        (f"r{i}", f"Firm{i} reported revenue of ${i + 1}.25 million for Q2 2024.", None)
        for i in range(n)
    ]


def test_a_429_for_the_rate_limit_is_waited_out_without_spending_retries() -> None:
    with FakeOpenAI() as server:
        server.script(*[RATE_LIMITED] * 4)  # more than llm_max_retries
        with _engine(server) as engine:
            started = time.monotonic()
            out = engine.extract_batch(
                [SnippetRequest("r0", "ABC had revenue of $5.3 million in Q1 2024.")]
            )
            elapsed = time.monotonic() - started
        assert server.calls == 5
    assert out["r0"].facts[0].extractor == EXTRACTOR_OPENAI
    assert elapsed >= 4 * 0.2


def test_calls_are_paced_under_the_servers_limit_with_no_refusal() -> None:
    with FakeOpenAI(tpm=60_000) as server:
        with _engine(server) as engine:
            first = engine.request([("s1", "x")], engine.formats.current)
        from worker.model.ratelimit import estimate_charge

        per_call = estimate_charge(first) + 60  # two snippets instead of one
        # a limit that admits about seven of the eight calls at once, the rest paced
        tpm = int(per_call * 7.6)
        server.limits = RateLimits(tpm=tpm)
        with _engine(server, llm_concurrency=4) as engine:
            started = time.monotonic()
            found = engine.extract_texts(_snippets(16), concurrency=4)
            elapsed = time.monotonic() - started
        assert server.limits.refused <= 1
        assert server.limits.admitted == 8
    assert all(ext.facts for ext in found.values())
    ideal_s = max(server.limits.admitted_tokens - tpm, 0) / (tpm / 60)
    assert ideal_s * 0.8 <= elapsed <= ideal_s * 1.5 + 1.5


def test_a_waiting_call_gives_up_at_once_when_the_worker_stops() -> None:
    budget = Budget(tokens_per_min=60)
    budget.book(60, time.monotonic())
    waits: list[tuple[float, str]] = []
    pacer = Pacer(budget, on_wait=lambda s, why: waits.append((s, why)))
    raised: list[BaseException] = []

    def call() -> None:
        try:
            pacer.acquire(30)
        except Interrupted as exc:
            raised.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    pacer.interrupt()
    thread.join(2)
    assert not thread.is_alive() and time.monotonic() - started < 0.5
    assert raised and isinstance(raised[0], Interrupted)
    assert len(waits) == 1 and waits[0][1] == "tokens" and waits[0][0] >= 0.2


def test_the_completion_budget_follows_the_measured_answers_and_a_cut_answer_still_splits() -> None:
    from fakes.script import truncated

    with FakeOpenAI() as server, _engine(server, batch_snippets=20) as engine:
        engine.extract_texts(_snippets(20))
        first = server.requests[0].body["max_completion_tokens"]
        assert first == 512 + 400 * 20  # nothing measured yet
        per_snippet = engine.ledger.answer_tokens_per_snippet()
        assert per_snippet is not None and per_snippet < 100
        server.reset()
        server.script(truncated())
        found = engine.extract_texts(_snippets(40)[20:])
        sized = server.requests[0].body["max_completion_tokens"]
        assert sized == 256 + math.ceil(per_snippet * 1.5 * 20)
        assert sized < first / 3
        assert server.snippets_per_call[:3] == [20, 10, 10]  # cut off: split in halves
    assert all(ext.facts for ext in found.values())
