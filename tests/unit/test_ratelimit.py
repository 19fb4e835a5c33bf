"""The rate-limit budget: pure, on an injected clock; several workers against one simulated
server that charges like OpenAI (at admission, continuous refill, a minute's worth at most)."""

from __future__ import annotations

import heapq
import random

import pytest

from worker.model.ratelimit import (
    Budget,
    estimate_charge,
    parse_duration_s,
    read_headers,
    try_again_in_s,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5", 0.5),
        ("", None),
        ("soon", None),
        ("5x", None),
        (None, None),
    ],
)
def test_durations_of_the_headers_are_read_in_seconds(text, seconds) -> None:
    assert parse_duration_s(text) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        (
            "Rate limit reached on tokens per min (TPM). Please try again in 1.2s.",
            1.2,
        ),
        ("Please try again in 6ms.", 0.006),
        ("Please try again in 1m30s.", 90.0),
        ("You exceeded your current quota", None),
    ],
)
def test_the_wait_a_429_asks_for_is_read_from_its_message(message, seconds) -> None:
    assert try_again_in_s(message) == (pytest.approx(seconds) if seconds is not None else None)


def test_a_call_is_charged_its_prompt_by_characters_and_the_completion_it_asks_for() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 401}], "max_completion_tokens": 300}
    assert estimate_charge(body) == 101 + 300
    assert estimate_charge({"messages": [], "max_tokens": 7}) == 7


def test_headers_are_read_case_insensitively() -> None:
    r = read_headers(
        {
            "X-RateLimit-Limit-Tokens": "200000",
            "x-ratelimit-remaining-tokens": "150",
            "x-ratelimit-reset-tokens": "59s",
        },
        "tokens",
    )
    assert (r.limit, r.remaining, r.reset_s) == (200000, 150, 59)


def test_without_a_known_limit_nothing_waits() -> None:
    budget = Budget()
    for _ in range(100):
        assert budget.wait_s(100_000, 0.0) == (0.0, "")
        budget.book(100_000, 0.0)


def test_a_stated_limit_paces_the_first_minute_after_the_burst() -> None:
    budget = Budget(tokens_per_min=60_000)  # 1,000 tokens a second, 60,000 at once
    for _ in range(6):
        assert budget.wait_s(10_000, 0.0) == (0.0, "")
        budget.book(10_000, 0.0)
    wait, why = budget.wait_s(10_000, 0.0)
    assert why == "tokens" and wait == pytest.approx(10.0)
    assert budget.wait_s(10_000, 10.0) == (0.0, "")


def test_the_headers_of_an_answer_teach_what_the_others_spent() -> None:
    budget = Budget()
    ticket = budget.book(1_000, 0.0)
    budget.answered(
        ticket, {"x-ratelimit-limit-tokens": "60000", "x-ratelimit-remaining-tokens": "0"}, 0.0
    )
    wait, why = budget.wait_s(5_000, 0.0)
    assert why == "tokens" and wait == pytest.approx(5.0)


def test_a_request_limit_holds_calls_back_too() -> None:
    budget = Budget(requests_per_min=60)
    for _ in range(60):
        budget.book(1, 0.0)
    wait, why = budget.wait_s(1, 0.0)
    assert why == "requests" and wait == pytest.approx(1.0)


def test_a_429_puts_a_barrier_for_every_call_and_costs_nothing() -> None:
    budget = Budget(tokens_per_min=60_000)
    ticket = budget.book(5_000, 0.0)
    waited = budget.refused(ticket, {}, "Please try again in 2.5s.", 0.1)
    assert waited == pytest.approx(2.5)
    assert budget.wait_s(1, 1.0) == (pytest.approx(1.6), "refused")
    assert budget.wait_s(1, 2.7) == (0.0, "")
    assert budget.tokens.level(2.7) == pytest.approx(60_000)  # the refused call spent nothing


class _Server:
    """A limit as OpenAI enforces it: charged at admission, refilled continuously, a minute's
    worth at most; remaining in the headers, a 429 with "Please try again in" otherwise."""

    def __init__(self, per_min: int) -> None:
        self.per_min, self.rate = per_min, per_min / 60
        self.full_at = 0.0

    def admit(self, now: float, charge: int) -> tuple[bool, dict[str, str], str]:
        level = self.per_min - self.rate * max(self.full_at - now, 0.0)
        headers = {"x-ratelimit-limit-tokens": str(self.per_min)}
        if level >= charge:
            self.full_at = max(self.full_at, now) + charge / self.rate
            headers["x-ratelimit-remaining-tokens"] = str(int(level - charge))
            return True, headers, ""
        headers["x-ratelimit-remaining-tokens"] = str(int(level))
        return False, headers, f"Please try again in {(charge - level) / self.rate:.3f}s."


def _night(
    workers: int, calls: int, charge: int, *, stated: int | None, seed: int
) -> tuple[float, float, int]:
    """``workers`` budgets with 4 calls in flight each against one server until ``calls`` are
    admitted: (wall time, ideal time for the admitted tokens, refused calls)."""
    rnd = random.Random(seed)
    server = _Server(200_000)
    budgets = [Budget(tokens_per_min=stated) for _ in range(workers)]
    events: list[tuple[float, int, str, int, object]] = []
    order = iter(range(10**9))
    for w in range(workers):
        for _ in range(4):
            heapq.heappush(events, (rnd.random() * 0.05, next(order), "try", w, None))
    admitted = refused = 0
    now = 0.0
    while admitted < calls:
        now, _, kind, w, data = heapq.heappop(events)
        budget = budgets[w]
        if kind == "try":
            wait, _why = budget.wait_s(charge, now)
            if wait > 0:
                heapq.heappush(events, (now + min(wait, 2.0), next(order), "try", w, None))
                continue
            ticket = budget.book(charge, now)
            answer = (ticket, now, *server.admit(now, charge))
            later = now + 0.2 + 0.4 * rnd.random()
            heapq.heappush(events, (later, next(order), "answer", w, answer))
            continue
        ticket, sent, ok, headers, message = data  # type: ignore[misc]
        if ok:
            admitted += 1
            budget.answered(ticket, headers, sent)
        else:
            refused += 1
            budget.refused(ticket, headers, message, now, sent)
        heapq.heappush(events, (now, next(order), "try", w, None))
    ideal = max(calls * charge - server.per_min, 0) / server.rate
    return now, ideal, refused


@pytest.mark.parametrize("workers", [1, 2, 4])
@pytest.mark.parametrize("stated", [None, 200_000])
def test_workers_sharing_a_limit_converge_through_the_headers(workers, stated) -> None:
    for seed in (1, 2, 3):
        wall, ideal, refused = _night(workers, 120, 3_500, stated=stated, seed=seed)
        assert wall <= ideal * 1.1 + 2
        assert refused <= 0.05 * 120
