"""``Broker``, everything finpipe does with RabbitMQ for one work queue, and the queue depths."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from adapters.rabbitmq import policy
from adapters.rabbitmq.channel import session
from adapters.rabbitmq.consumer import ConsumerSession
from adapters.rabbitmq.deadletters import DeadLetterBox
from adapters.rabbitmq.policy import Nodes
from adapters.rabbitmq.publisher import Publisher
from adapters.rabbitmq.records import Incoming, QueueDepth
from schemas.settings import Settings
from schemas.topology import Topology


def read_queues(
    amqp_url: str | Nodes, names: Iterable[str], *, timeout_s: float = 3.0
) -> list[QueueDepth]:
    """The depth of each queue in ``names``; ``BrokerUnavailable`` when no node answers."""
    with session(
        Nodes.of(amqp_url), None, purpose="reading queue depths", timeout_s=timeout_s
    ) as link:
        return [link.depth(name) for name in names]


class Broker:
    """Everything finpipe does with RabbitMQ, for one work queue and its topology. Builds the
    objects of this package; opens nothing until one of them is used. They share one ``Nodes``:
    a node one of them lost is the last the others try."""

    def __init__(
        self,
        amqp_url: str | Nodes,
        topology: Topology,
        *,
        rng: random.Random | None = None,
        backoff: policy.Backoff | None = None,
    ) -> None:
        self.nodes = Nodes.of(amqp_url, rng=rng)
        self.amqp_url = ",".join(self.nodes.urls)
        self.topology = topology
        self.backoff = backoff or policy.Backoff()

    @classmethod
    def from_settings(cls, settings: Settings, *, rng: random.Random | None = None) -> Broker:
        """``rng`` shuffles the addresses of ``FINPIPE_AMQP_URL`` (default: a fresh random
        order for each process)."""
        backoff = policy.Backoff(budget_s=settings.republish_budget_s)
        return cls(settings.amqp_url, Topology.for_settings(settings), rng=rng, backoff=backoff)

    def publisher(self, **options: Any) -> Publisher:
        """A publisher with confirms (see ``Publisher`` for ``options``); one per thread."""
        options.setdefault("backoff", self.backoff)
        return Publisher(self.nodes, self.topology, **options)

    def consumer(self, *, prefetch: int, on_message: Callable[[Incoming], None]) -> ConsumerSession:
        return ConsumerSession(self.nodes, self.topology, prefetch=prefetch, on_message=on_message)

    def dead_letters(self) -> DeadLetterBox:
        return DeadLetterBox(self.nodes, self.topology)

    def queue_depths(self, *, timeout_s: float = 3.0) -> tuple[QueueDepth, QueueDepth]:
        """The work queue and the dead-letter queue; ``BrokerUnavailable`` when unreachable."""
        work, dead = read_queues(
            self.nodes, (self.topology.queue, self.topology.dead_queue), timeout_s=timeout_s
        )
        return work, dead

    def work_queue_depth(self) -> QueueDepth:
        return self.queue_depths()[0]
