"""The worker's side of RabbitMQ: one connection consuming the work queue, opened by
``channel.open_channel``, with the primitives the consumer settles deliveries with (ack, nack,
publish again into the retry and dead queues). The decisions are the worker's.

The connection lives on one thread, which receives deliveries and settles them; work done
elsewhere comes back through ``ConsumerSession.call_threadsafe`` so heartbeats keep flowing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from adapters.rabbitmq.channel import Link, open_channel, translated
from adapters.rabbitmq.policy import Nodes
from adapters.rabbitmq.records import Incoming
from schemas.settings import redact_url
from schemas.topology import Topology

log = logging.getLogger(__name__)


class ConsumerSession:
    """One connection consuming the work queue: a channel for deliveries (``prefetch``
    unacknowledged at most) and a confirmed channel to publish into the retry and dead queues.
    Use it from the thread that opened it, except ``call_threadsafe``."""

    def __init__(
        self,
        amqp_url: str | Nodes,
        topology: Topology,
        *,
        prefetch: int,
        on_message: Callable[[Incoming], None],
    ) -> None:
        self.topology = topology
        self.nodes = Nodes.of(amqp_url)
        self._prefetch = prefetch
        self._on_message = on_message
        self._link: Link | None = None
        self._url: str | None = None

    def _prepare(self, link: Link) -> None:
        link.open_republishing()
        link.consume(self.topology.queue, prefetch=self._prefetch, on_message=self._on_message)

    def open(self) -> None:
        link = open_channel(self.nodes, self.topology, purpose="consuming", prepare=self._prepare)
        self._link, self._url = link, link.url
        log.info("consuming from RabbitMQ at %s", redact_url(link.url))

    def _open_link(self) -> Link:
        assert self._link is not None, "open the session first"
        return self._link

    def poll(self, time_limit_s: float) -> None:
        """Deliver what arrived and run the callbacks queued by other threads."""
        link = self._open_link()
        with translated("connection lost"):
            link.poll(time_limit_s)

    def cancel(self) -> None:
        """Stop new deliveries; the ones in hand can still be settled."""
        link = self._open_link()
        with translated("cancel failed"):
            link.cancel()

    def ack(self, tag: int) -> None:
        link = self._open_link()
        with translated("ack failed"):
            link.ack(tag)

    def nack(self, tag: int, *, requeue: bool = True) -> None:
        link = self._open_link()
        with translated("nack failed"):
            link.nack(tag, requeue=requeue)

    def republish(
        self, exchange: str, routing_key: str, message: Incoming, headers: dict[str, Any]
    ) -> None:
        """Publish ``message`` again with ``headers``; returns once the broker confirmed it."""
        link = self._open_link()
        with translated("republish failed"):
            link.republish(exchange, routing_key, message, headers)

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the connection's thread. If the connection is already gone, nothing
        runs: the broker redelivers the messages it was about."""
        link = self._link
        if link is not None:
            link.call_threadsafe(fn)

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def abandon(self) -> None:
        """Drop a connection that failed, so the next one starts at another node; errors closing
        it are ignored."""
        link, self._link = self._link, None
        self.nodes.lost(self._url)
        if link is not None:
            link.close_quietly()
