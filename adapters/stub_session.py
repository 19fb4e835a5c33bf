"""A broker kept in memory, for testing the consumer's loop without RabbitMQ.

``StubBroker`` stands where ``adapters.rabbitmq.Broker`` does for the consumer: it has the topology
and opens consumer sessions. Its queues are lists of messages by name; a session delivers from the
work queue (``prefetch`` unacknowledged at most), and what it publishes again lands in the queue
it is addressed to (the dead-letter exchange routes to the dead-letter queue, as in RabbitMQ).
Each delivery gets a tag of its own, as on a channel. Acknowledged messages are gone; the ones a
session held when it closed or lost its connection (``drop_connections``) go back to the front of
the work queue, and the broker delivers them again. Thread-safe: tests put messages and wait from
their own thread while the consumer runs.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from adapters.rabbitmq import Incoming
from schemas.errors import BrokerUnavailable
from schemas.topology import Topology


@dataclass(frozen=True)
class Published:
    """A message a session published again, and where to."""

    exchange: str
    routing_key: str
    message: Incoming


class StubBroker:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.queues: defaultdict[str, deque[Incoming]] = defaultdict(deque)
        self.published: list[Published] = []
        #: every delivery, and the tags acknowledged
        self.delivered: list[Incoming] = []
        self.acked: list[int] = []
        self.sessions: list[StubSession] = []
        self.changed = threading.Condition()
        self._tags = 0

    def put(self, body: bytes, headers: dict[str, Any] | None = None, **props: Any) -> Incoming:
        """A message into the work queue, as a publisher would put it (its tag is set when it
        is delivered)."""
        with self.changed:
            message = Incoming(0, body, dict(headers or {}), **props)
            self.queues[self.topology.queue].append(message)
            self.changed.notify_all()
        return message

    def messages(self, queue: str) -> list[Incoming]:
        """The messages waiting in ``queue``, first out first."""
        with self.changed:
            return list(self.queues[queue])

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        """Wait until ``condition()`` holds (checked whenever the broker's state changes)."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.05))
        return True

    def drop_connections(self) -> None:
        """Every open session loses its connection: what it held goes back to the work queue,
        and its next call raises ``BrokerUnavailable``."""
        for session in self.sessions:
            session.close()

    def consumer(self, *, prefetch: int, on_message: Callable[[Incoming], None]) -> StubSession:
        session = StubSession(self, prefetch=prefetch, on_message=on_message)
        self.sessions.append(session)
        return session

    def _route(self, exchange: str, routing_key: str, message: Incoming) -> None:
        with self.changed:
            message = replace(message, tag=0)
            self.published.append(Published(exchange, routing_key, message))
            self.queues[routing_key].append(message)
            self.changed.notify_all()

    def _next_delivery(self) -> Incoming | None:
        queue = self.queues[self.topology.queue]
        if not queue:
            return None
        self._tags += 1
        message = replace(queue.popleft(), tag=self._tags)
        self.delivered.append(message)
        return message


class StubSession:
    """One consumer on the stub broker's work queue (see ``worker.session.Session``)."""

    def __init__(
        self, broker: StubBroker, *, prefetch: int, on_message: Callable[[Incoming], None]
    ) -> None:
        self.broker = broker
        self.prefetch = prefetch
        self._on_message = on_message
        self._open = False
        self._consuming = False
        self._unacked: dict[int, Incoming] = {}
        self._callbacks: list[Callable[[], None]] = []

    def open(self) -> None:
        self._open = self._consuming = True

    def poll(self, time_limit_s: float) -> None:
        changed = self.broker.changed
        with changed:
            self._check_open()
            if not self._callbacks and not self._deliverable():
                changed.wait(time_limit_s)
                self._check_open()
            callbacks, self._callbacks = self._callbacks, []
            deliveries = []
            while self._deliverable() and (message := self.broker._next_delivery()) is not None:
                self._unacked[message.tag] = message
                deliveries.append(message)
        for message in deliveries:
            self._on_message(message)
        for fn in callbacks:
            fn()

    def _deliverable(self) -> bool:
        return (
            self._consuming
            and len(self._unacked) < self.prefetch
            and bool(self.broker.queues[self.broker.topology.queue])
        )

    def cancel(self) -> None:
        self._check_open()
        self._consuming = False

    def ack(self, tag: int) -> None:
        with self.broker.changed:
            self._check_open()
            if self._unacked.pop(tag, None) is None:  # RabbitMQ closes the channel for this
                raise BrokerUnavailable(f"unknown delivery tag {tag}")
            self.broker.acked.append(tag)
            self.broker.changed.notify_all()

    def republish(
        self, exchange: str, routing_key: str, message: Incoming, headers: dict[str, Any]
    ) -> None:
        self._check_open()
        self.broker._route(exchange, routing_key, replace(message, headers=dict(headers)))

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        with self.broker.changed:
            if self._open:
                self._callbacks.append(fn)
                self.broker.changed.notify_all()

    def close(self) -> None:
        with self.broker.changed:
            self._open = self._consuming = False
            held = sorted(self._unacked.values(), key=lambda m: m.tag)  # as delivered
            self._unacked.clear()
            self.broker.queues[self.broker.topology.queue].extendleft(reversed(held))
            self.broker.changed.notify_all()

    def abandon(self) -> None:
        self.close()

    def _check_open(self) -> None:
        if not self._open:
            raise BrokerUnavailable("stub session is closed")
