"""What becomes of a delivered message once its report was processed. Pure: values in, a verdict.

The consumer (``worker.consumer``) carries a verdict out with the broker session; here it is
decided, from the report's ``Outcome``, the delayed retries the message already went through (its
``x-finpipe-attempt`` header) and the topology:

- ``Ack``: the facts are stored; the message is done.
- ``Retry``: a transient failure; published again into the delay queue of the next step, its
  attempt header one higher, then acked.
- ``DeadLetter``: a permanent failure, a message that cannot be taken as it is, or the delay steps
  used up; published into the dead-letter queue with the reason, then acked.
- ``HandBack``: the worker is stopping; back to the work queue as it came, no attempt spent.

The headers each of them writes are built here too (``retry_headers``, ``dead_headers``,
``handback_headers``), so that the header names appear once (``schemas.topology``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.topology import (
    HEADER_ATTEMPT,
    HEADER_DEAD_AT,
    HEADER_DELIVERY_COUNT,
    HEADER_ERROR_KIND,
    HEADER_REASON,
    Topology,
)
from worker.pipeline import Outcome

#: the longest reason a retried message carries (the dead-letter one may say more)
RETRY_REASON_CHARS = 500
DEAD_REASON_CHARS = 1000


@dataclass(frozen=True)
class Ack:
    facts: int = 0


@dataclass(frozen=True)
class Retry:
    """Publish into ``queue`` (the delay queue of ``step``: ``delay_s`` seconds), as delayed retry
    number ``attempt``."""

    queue: str
    step: int
    delay_s: int
    attempt: int
    reason: str


@dataclass(frozen=True)
class DeadLetter:
    """Publish into the dead-letter queue; ``kind`` and ``reason`` go into its headers."""

    reason: str
    kind: str


@dataclass(frozen=True)
class HandBack:
    """Publish into the work queue as it came, without spending a delivery attempt."""


Settlement = Ack | Retry | DeadLetter | HandBack


def settle(outcome: Outcome | None, attempt: int, topology: Topology) -> Settlement:
    """The verdict on a message that went through ``attempt`` delayed retries (0: a fresh one)
    and whose report came out of the pipeline as ``outcome`` (None: the pipeline gave none for
    it, which is treated as a transient failure)."""
    if outcome is None:
        return retry(attempt, "no outcome", topology)
    if outcome.action == "ack":
        return Ack(outcome.facts)
    if outcome.action == "handback":
        return HandBack()
    if outcome.action == "retry":
        return retry(
            attempt, outcome.reason or "transient failure", topology, outcome.retry_after_s
        )
    return DeadLetter(outcome.reason or "rejected", "permanent")


def retry(
    attempt: int, reason: str, topology: Topology, retry_after_s: float | None = None
) -> Retry | DeadLetter:
    """A transient failure of a message after ``attempt`` delayed retries: the next delay step
    (at least ``retry_after_s`` long if a server asked for that), or the dead-letter queue once
    the steps are used up."""
    step = topology.retry_step(attempt + 1, at_least_s=retry_after_s)
    if step is None:
        return DeadLetter(f"gave up after {attempt} delayed retries: {reason}", "retries_exhausted")
    return Retry(
        topology.retry_queue(step), step, topology.retry_delays_s[step], attempt + 1, reason
    )


def retry_headers(headers: Mapping[str, Any], verdict: Retry) -> dict[str, Any]:
    """The headers of a message published into a delay queue."""
    return {
        **headers,
        HEADER_ATTEMPT: verdict.attempt,
        HEADER_REASON: verdict.reason[:RETRY_REASON_CHARS],
    }


def dead_headers(headers: Mapping[str, Any], verdict: DeadLetter, now: datetime) -> dict[str, Any]:
    """The headers of a message published into the dead-letter queue at ``now``."""
    return {
        **headers,
        HEADER_REASON: verdict.reason[:DEAD_REASON_CHARS],
        HEADER_ERROR_KIND: verdict.kind,
        HEADER_DEAD_AT: now.isoformat(),
    }


def handback_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers of a message handed back to the work queue: as they came, attempt header
    included, without the broker's delivery count (the quorum queue starts it again)."""
    return {k: v for k, v in headers.items() if k != HEADER_DELIVERY_COUNT}
