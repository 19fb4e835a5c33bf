"""The verdict on each settled message, as a table: outcome, attempts so far, topology in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.topology import (
    HEADER_ATTEMPT,
    HEADER_DEAD_AT,
    HEADER_DELIVERY_COUNT,
    HEADER_ERROR_KIND,
    HEADER_REASON,
    Topology,
)
from worker.pipeline import Outcome
from worker.settling import (
    Ack,
    DeadLetter,
    HandBack,
    Retry,
    Settlement,
    dead_headers,
    handback_headers,
    retry_headers,
    settle,
)

TOPOLOGY = Topology("reports", retry_delays_s=(2, 10, 60))


@pytest.mark.parametrize(
    ("outcome", "attempt", "verdict"),
    [
        (Outcome("ack", facts=3), 0, Ack(3)),
        (Outcome("ack"), 2, Ack(0)),
        (Outcome("handback", reason="stopping"), 0, HandBack()),
        (Outcome("handback"), 3, HandBack()),
        (Outcome("dead", reason="ParseError: x"), 0, DeadLetter("ParseError: x", "permanent")),
        (Outcome("dead"), 1, DeadLetter("rejected", "permanent")),
        (Outcome("retry", reason="down"), 0, Retry("reports.retry.2s", 0, 2, 1, "down")),
        (Outcome("retry", reason="down"), 1, Retry("reports.retry.10s", 1, 10, 2, "down")),
        (Outcome("retry"), 2, Retry("reports.retry.60s", 2, 60, 3, "transient failure")),
        # a server's Retry-After moves the message to the first delay that long
        (
            Outcome("retry", reason="429", retry_after_s=30),
            0,
            Retry("reports.retry.60s", 2, 60, 1, "429"),
        ),
        (
            Outcome("retry", reason="429", retry_after_s=5000),
            1,
            Retry("reports.retry.60s", 2, 60, 2, "429"),
        ),
        # the delay steps used up: dead-lettered with what went wrong last
        (
            Outcome("retry", reason="down"),
            3,
            DeadLetter("gave up after 3 delayed retries: down", "retries_exhausted"),
        ),
        (
            Outcome("retry", reason="down", retry_after_s=1),
            7,
            DeadLetter("gave up after 7 delayed retries: down", "retries_exhausted"),
        ),
        # no outcome for a report in its lot: tried again later
        (None, 0, Retry("reports.retry.2s", 0, 2, 1, "no outcome")),
        (None, 3, DeadLetter("gave up after 3 delayed retries: no outcome", "retries_exhausted")),
    ],
)
def test_each_outcome_and_attempt_count_gets_its_verdict(
    outcome: Outcome | None, attempt: int, verdict: Settlement
) -> None:
    assert settle(outcome, attempt, TOPOLOGY) == verdict


def test_a_topology_without_delay_steps_dead_letters_the_first_transient_failure() -> None:
    verdict = settle(Outcome("retry", reason="down"), 0, Topology("q", retry_delays_s=()))
    assert verdict == DeadLetter("gave up after 0 delayed retries: down", "retries_exhausted")


def test_a_retried_message_carries_its_new_attempt_and_a_bounded_reason() -> None:
    verdict = Retry("reports.retry.10s", 1, 10, 2, "x" * 900)
    headers = retry_headers({"keep": 1, HEADER_ATTEMPT: 1}, verdict)
    assert headers == {"keep": 1, HEADER_ATTEMPT: 2, HEADER_REASON: "x" * 500}


def test_a_dead_letter_carries_its_reason_kind_and_time() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    headers = dead_headers({HEADER_ATTEMPT: 3}, DeadLetter("y" * 1200, "retries_exhausted"), now)
    assert headers == {
        HEADER_ATTEMPT: 3,
        HEADER_REASON: "y" * 1000,
        HEADER_ERROR_KIND: "retries_exhausted",
        HEADER_DEAD_AT: "2024-05-01T12:00:00+00:00",
    }


def test_a_handed_back_message_keeps_its_attempt_and_sheds_the_delivery_count() -> None:
    headers = {HEADER_ATTEMPT: 2, HEADER_DELIVERY_COUNT: 1, "keep": "me"}
    assert handback_headers(headers) == {HEADER_ATTEMPT: 2, "keep": "me"}
