"""The dead-letter queue, on channels opened by ``channel.session`` (the one way to open one).

Browsing takes messages with ``basic_get`` and never acknowledges the ones it only looks at:
closing the channel returns them. Replay publishes a message back to the work queue with confirms,
and only then removes it from the dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from adapters.rabbitmq.channel import session
from adapters.rabbitmq.policy import Nodes
from adapters.rabbitmq.records import Incoming
from schemas.topology import Topology


class DeadLetterBox:
    """The dead-letter queue of ``topology``: count, browse, replay into the work queue, purge.
    Each call opens and closes its own connection."""

    def __init__(self, amqp_url: str | Nodes, topology: Topology) -> None:
        self.nodes = Nodes.of(amqp_url)
        self.topology = topology

    def count(self) -> int:
        with session(self.nodes, self.topology, purpose="counting the dead letters") as link:
            return link.depth(self.topology.dead_queue).messages

    def browse(self, limit: int | None = None) -> Iterator[Incoming]:
        """Dead letters oldest first, up to ``limit`` (default all), as read; none is removed."""
        with session(self.nodes, self.topology, purpose="reading the dead letters") as link:
            yield from link.take(self.topology.dead_queue, 1 << 62 if limit is None else limit)

    def replay(self, headers_for: Callable[[Incoming], dict[str, Any] | None]) -> list[Incoming]:
        """Publish each dead letter for which ``headers_for`` gives headers back into the work
        queue (confirmed), then remove it from the dead-letter queue; return those replayed."""
        replayed: list[Incoming] = []
        with session(self.nodes, self.topology, purpose="replaying the dead letters") as link:
            link.open_republishing()
            for msg in link.take(self.topology.dead_queue, 1_000_000):
                headers = headers_for(msg)
                if headers is None:
                    continue
                link.republish("", self.topology.queue, msg, headers)
                link.ack(msg.tag)
                replayed.append(msg)
        return replayed

    def purge(self) -> int:
        with session(self.nodes, self.topology, purpose="purging the dead letters") as link:
            return link.purge(self.topology.dead_queue)
