"""RabbitMQ topology as data: names and arguments both sides declare. Pure (no pika here).

- ``<queue>``: durable quorum work queue with a delivery limit; rejected or over-delivered messages
  are dead-lettered (at-least-once) through ``<queue>.dlx`` into ``<queue>.dead``.
- ``<queue>.retry.<n>s``: delay queues, one per backoff step; a message waits there for the step's
  TTL and is dead-lettered back into the work queue. One queue per step (queue-level TTL) so a long
  delay never holds back a short one.

Every queue that holds reports is a quorum queue, replicated over the nodes of a cluster: a node
that stops takes no report with it. Dead-lettering out of them is at-least-once (which needs
``x-overflow: reject-publish``): a message leaves a queue only once the next one has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.settings import Settings

#: backoff steps for transient failures, seconds (``FINPIPE_RETRY_DELAYS_S``)
RETRY_DELAYS_S: tuple[int, ...] = (2, 10, 60, 300, 1800)

#: every header finpipe writes starts with this
HEADER_PREFIX = "x-finpipe-"
HEADER_REASON = f"{HEADER_PREFIX}reason"
HEADER_ATTEMPT = f"{HEADER_PREFIX}attempt"
HEADER_ERROR_KIND = f"{HEADER_PREFIX}error"
#: when a worker dead-lettered the message (ISO 8601, UTC)
HEADER_DEAD_AT = f"{HEADER_PREFIX}dead-at"
#: on a dead letter sent back to the work queue by ``finpipe dlq replay``
HEADER_REPLAYED = f"{HEADER_PREFIX}replayed"
#: on a report the nightly batch step answered: its model answers are in the extraction cache, so
#: a worker looks its snippets' cache keys up even when they were written after the worker started
HEADER_PREFILLED = f"{HEADER_PREFIX}prefilled"
#: the quorum queue's count of deliveries (RabbitMQ's): a message published again sheds it
HEADER_DELIVERY_COUNT = "x-delivery-count"

#: more delayed retries than any topology has steps: such a header was not written by a worker
MAX_ATTEMPT = 1000


def attempt_of(headers: Mapping[str, Any]) -> int | str:
    """The delayed retries a message went through (``x-finpipe-attempt``; absent means 0), or,
    since headers come from the broker and are untrusted, why the header is unusable."""
    value = headers.get(HEADER_ATTEMPT)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ATTEMPT:
        shown = repr(value)[:60]
        return f"header {HEADER_ATTEMPT} is {shown}; expected a whole number 0-{MAX_ATTEMPT}"
    return value


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Topology:
    queue: str
    delivery_limit: int = 5
    retry_delays_s: tuple[int, ...] = RETRY_DELAYS_S

    @classmethod
    def for_settings(cls, settings: Settings) -> Topology:
        return cls(settings.queue, settings.delivery_limit, tuple(settings.retry_delays_s))

    @property
    def dlx(self) -> str:
        return f"{self.queue}.dlx"

    @property
    def dead_queue(self) -> str:
        return f"{self.queue}.dead"

    def retry_queue(self, step: int) -> str:
        return f"{self.queue}.retry.{self.retry_delays_s[step]}s"

    def backlog_queues(self) -> list[str]:
        """The queues holding work not yet done: the work queue and the delayed-retry queues."""
        return [self.queue, *(self.retry_queue(i) for i in range(len(self.retry_delays_s)))]

    def work_spec(self) -> QueueSpec:
        return QueueSpec(
            self.queue,
            {
                "x-queue-type": "quorum",
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": self.dlx,
                "x-dead-letter-routing-key": self.dead_queue,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )

    def dead_spec(self) -> QueueSpec:
        return QueueSpec(self.dead_queue, {"x-queue-type": "quorum"})

    def retry_specs(self) -> list[QueueSpec]:
        return [
            QueueSpec(
                self.retry_queue(i),
                {
                    "x-queue-type": "quorum",
                    "x-message-ttl": delay * 1000,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.queue,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
            for i, delay in enumerate(self.retry_delays_s)
        ]

    def classic_retry_specs(self) -> list[QueueSpec]:
        """The delayed-retry queues as finpipe declared them before they became quorum queues:
        classic queues, each kept by one node. ``declare_topology`` migrates them."""
        return [
            QueueSpec(
                spec.name,
                {k: spec.arguments[k] for k in ("x-message-ttl", "x-dead-letter-exchange")}
                | {"x-dead-letter-routing-key": self.queue},
            )
            for spec in self.retry_specs()
        ]

    def all_queues(self) -> list[str]:
        return [self.queue, self.dead_queue, *(s.name for s in self.retry_specs())]

    def all_exchanges(self) -> list[str]:
        return [self.dlx]

    def retry_step(self, attempt: int, at_least_s: float | None = None) -> int | None:
        """Index of the delay queue for a message that already failed ``attempt`` times (1-based);
        ``None`` once the steps are used up and the message belongs in the dead-letter queue.
        ``at_least_s`` (a server's Retry-After) moves it to the first delay that long, if any."""
        if attempt < 1 or attempt > len(self.retry_delays_s):
            return None
        step = attempt - 1
        if at_least_s is not None:
            while step + 1 < len(self.retry_delays_s) and self.retry_delays_s[step] < at_least_s:
                step += 1
        return step
