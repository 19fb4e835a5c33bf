"""The dead-letter queue through the RabbitMQ adapter (``adapters/rabbitmq.py``, whose connection
helpers it uses; it needs no pika of its own).

Browsing takes messages with ``basic_get`` and never acknowledges the ones it only looks at:
closing the channel returns them. Replay publishes a message back to the work queue with confirms,
and only then removes it from the dead-letter queue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from adapters.rabbitmq import (
    BlockingChannel,
    BlockingConnection,
    Incoming,
    _close_quietly,
    _connect,
    _incoming,
    _properties,
    _translated,
    declare_topology,
)
from adapters.rabbitmq_policy import Nodes
from schemas.topology import Topology


class DeadLetterBox:
    """The dead-letter queue of ``topology``: count, browse, replay into the work queue, purge.
    Each call opens and closes its own connection."""

    def __init__(self, amqp_url: str | Nodes, topology: Topology) -> None:
        self.nodes = Nodes.of(amqp_url)
        self.topology = topology

    @contextlib.contextmanager
    def _channel(self, what: str) -> Iterator[tuple[BlockingConnection, BlockingChannel]]:
        conn, _url = _connect(self.nodes)
        try:
            with _translated(what):
                ch = conn.channel()
                declare_topology(ch, self.topology)
                yield conn, ch
        finally:
            _close_quietly(conn)  # unacknowledged messages go back to the queue

    def _take(self, ch: BlockingChannel, limit: int) -> Iterator[Incoming]:
        for _ in range(limit):
            method, props, body = ch.basic_get(self.topology.dead_queue, auto_ack=False)
            if method is None:
                return
            yield _incoming(method.delivery_tag, props, body)

    def count(self) -> int:
        with self._channel("cannot count the dead letters") as (_, ch):
            ok = ch.queue_declare(self.topology.dead_queue, passive=True)
            return int(ok.method.message_count)

    def browse(self, limit: int | None = None) -> Iterator[Incoming]:
        """Dead letters oldest first, up to ``limit`` (default all), as read; none is removed."""
        with self._channel("cannot read the dead-letter queue") as (_, ch):
            yield from self._take(ch, 1 << 62 if limit is None else limit)

    def replay(self, headers_for: Callable[[Incoming], dict[str, Any] | None]) -> list[Incoming]:
        """Publish each dead letter for which ``headers_for`` gives headers back into the work
        queue (confirmed), then remove it from the dead-letter queue; return those replayed."""
        replayed: list[Incoming] = []
        with self._channel("replay interrupted") as (conn, ch):
            pub = conn.channel()
            pub.confirm_delivery()
            for msg in self._take(ch, 1_000_000):
                headers = headers_for(msg)
                if headers is None:
                    continue
                props = _properties(msg, headers)
                pub.basic_publish("", self.topology.queue, msg.body, props, mandatory=True)
                ch.basic_ack(msg.tag)
                replayed.append(msg)
        return replayed

    def purge(self) -> int:
        with self._channel("cannot purge the dead letters") as (_, ch):
            ok = ch.queue_purge(self.topology.dead_queue)
            return int(ok.method.message_count)
