"""What the consumer needs from a broker: a session on the work queue, and something that opens
one. ``adapters.rabbitmq.Broker`` opens real ones; ``adapters.stub_session.StubBroker`` keeps its
queues in memory, so that the consumer's loop is tested without RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from adapters.rabbitmq import Incoming
from schemas.topology import Topology


class Session(Protocol):
    """One consumer's hold on the work queue. Used from the thread that opened it, except
    ``call_threadsafe``. Broker failures raise ``BrokerUnavailable``."""

    def open(self) -> None:
        """Connect, declare the topology and start consuming."""

    def poll(self, time_limit_s: float) -> None:
        """Deliver what arrived (to the ``on_message`` the session was made with) and run the
        callbacks other threads queued; wait ``time_limit_s`` at most when there are none."""

    def cancel(self) -> None:
        """Stop new deliveries; the ones in hand can still be settled."""

    def ack(self, tag: int) -> None: ...

    def republish(
        self, exchange: str, routing_key: str, message: Incoming, headers: dict[str, Any]
    ) -> None:
        """Publish ``message`` again with ``headers``; returns once the broker has it."""

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the session's thread during a ``poll``; nothing runs once it is gone."""

    def close(self) -> None: ...

    def abandon(self) -> None:
        """Drop a session that failed; errors closing it are ignored."""


class Sessions(Protocol):
    """Opens consumer sessions on one work queue and its topology."""

    @property
    def topology(self) -> Topology: ...

    def consumer(self, *, prefetch: int, on_message: Callable[[Incoming], None]) -> Session: ...
