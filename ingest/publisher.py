"""Publishing reports to RabbitMQ: the only pika import on the intake side.

Every message is persistent and ``mandatory`` and is published with publisher confirms. Bulk
publishing keeps a window of outstanding confirms instead of waiting for each one: the blocking
connection's underlying channel is driven asynchronously and pumped with ``process_data_events``.
A message is done only when the broker acked it; nacked or returned messages are re-published a
few times and then reported. A dropped connection is re-opened with backoff and every unconfirmed
message is published again (storage is idempotent, so a duplicate costs nothing).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

import pika
import pika.channel
import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from schemas.errors import BrokerUnavailable, PublishNotConfirmed
from schemas.message import ReportMessage
from schemas.settings import Settings, redact_url
from schemas.topology import Topology

log = logging.getLogger(__name__)

_REPUBLISH_LIMIT = 3


def declare_topology(channel: BlockingChannel, topology: Topology) -> None:
    """Declare exchanges and queues; idempotent, every process does it at start-up."""
    channel.exchange_declare(topology.dlx, exchange_type="direct", durable=True)
    for spec in (topology.work_spec(), topology.dead_spec(), *topology.retry_specs()):
        channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    channel.queue_bind(topology.dead_queue, topology.dlx, routing_key=topology.dead_queue)


def connect(amqp_url: str, *, attempts: int = 1, backoff_s: float = 0.5) -> BlockingConnection:
    """Open a blocking connection, translating pika's errors into ``BrokerUnavailable``.
    ``attempts`` tries with exponential backoff (capped at 5 s between tries)."""
    params = pika.URLParameters(amqp_url)
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.blocked_connection_timeout = 30
    last: Exception | None = None
    for i in range(max(1, attempts)):
        try:
            return BlockingConnection(params)
        except (pika.exceptions.AMQPError, OSError) as exc:
            last = exc
            if i + 1 < attempts:
                time.sleep(min(backoff_s * 2**i, 5.0))
    raise BrokerUnavailable(f"RabbitMQ unreachable at {redact_url(amqp_url)}: {last!r}") from last


class Publisher:
    """Publishes ``ReportMessage``s with confirms. One instance per thread (pika is not
    thread-safe); opens its connection lazily and drops it after a failure."""

    def __init__(
        self,
        amqp_url: str,
        topology: Topology,
        *,
        confirm_window: int = 4000,
        timeout_s: float = 30.0,
        reconnect_attempts: int = 12,
    ) -> None:
        self.amqp_url = amqp_url
        self.topology = topology
        self.confirm_window = confirm_window
        self.timeout_s = timeout_s
        self.reconnect_attempts = reconnect_attempts
        self._conn: BlockingConnection | None = None
        self._impl: pika.channel.Channel | None = None
        self._next_tag = 0
        self._pending: dict[int, ReportMessage] = {}
        self._failed: list[tuple[ReportMessage, str]] = []
        self._returned: set[str] = set()
        self._acked = 0

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Publisher:
        return cls(settings.amqp_url, Topology.for_settings(settings), **kwargs)

    # -- connection -------------------------------------------------------------------------
    def _open(self, attempts: int = 1) -> None:
        conn = connect(self.amqp_url, attempts=attempts)
        try:
            ch = conn.channel()
            declare_topology(ch, self.topology)
            impl: pika.channel.Channel = ch._impl  # asynchronous channel under the blocking one
            impl.confirm_delivery(ack_nack_callback=self._on_confirm)
            impl.add_on_return_callback(self._on_return)
            conn.process_data_events(time_limit=0)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._drop(conn)
            raise BrokerUnavailable(f"RabbitMQ refused the topology: {exc!r}") from exc
        self._conn, self._impl, self._next_tag = conn, impl, 0

    def _drop(self, conn: BlockingConnection | None = None) -> None:
        conn = conn or self._conn
        self._conn, self._impl = None, None
        if conn is not None and conn.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                conn.close()

    def check(self) -> None:
        """Raise ``BrokerUnavailable`` unless the broker answers (used by /healthz)."""
        if self._conn is None or not self._conn.is_open:
            self._open()
        assert self._conn is not None
        try:
            self._conn.process_data_events(time_limit=0)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._drop()
            raise BrokerUnavailable(f"RabbitMQ connection lost: {exc!r}") from exc

    # -- confirms ---------------------------------------------------------------------------
    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tags = (
            [t for t in self._pending if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            msg = self._pending.pop(tag, None)
            if msg is None:
                continue
            if isinstance(method, pika.spec.Basic.Nack):
                self._failed.append((msg, "nacked by the broker"))
            elif msg.report_id in self._returned:
                self._returned.discard(msg.report_id)
                self._failed.append((msg, "returned by the broker: no queue bound"))
            else:
                self._acked += 1

    def _on_return(
        self,
        _channel: Any,
        _method: Any,
        properties: pika.spec.BasicProperties,
        _body: bytes,
    ) -> None:
        if properties.message_id:
            self._returned.add(str(properties.message_id))

    def _send(self, msg: ReportMessage) -> None:
        assert self._impl is not None
        self._impl.basic_publish(
            exchange="",
            routing_key=self.topology.queue,
            body=msg.to_body(),
            properties=pika.BasicProperties(
                delivery_mode=pika.DeliveryMode.Persistent,
                content_type="application/json",
                message_id=msg.report_id,
                type="report",
                headers={"schema_version": msg.schema_version},
            ),
            mandatory=True,
        )
        self._next_tag += 1
        self._pending[self._next_tag] = msg

    def _pump(self, deadline: float, *, until_below: int) -> None:
        assert self._conn is not None
        while len(self._pending) > until_below:
            if time.monotonic() > deadline:
                raise PublishNotConfirmed(
                    f"{len(self._pending)} message(s) not confirmed within {self.timeout_s:.0f} s"
                )
            self._conn.process_data_events(time_limit=0.05)

    # -- public -----------------------------------------------------------------------------
    def publish(self, message: ReportMessage) -> None:
        """Publish one message and wait for its confirm."""
        self.publish_many([message])

    def publish_many(self, messages: Iterable[ReportMessage]) -> int:
        """Publish all ``messages``; return how many the broker confirmed (all of them), or raise
        ``PublishNotConfirmed`` / ``BrokerUnavailable`` naming what was not confirmed."""
        start = self._acked
        attempts: dict[str, int] = {}
        queue: Iterator[ReportMessage] = iter(messages)
        retry: list[ReportMessage] = []
        exhausted = False
        while True:
            try:
                if self._conn is None or not self._conn.is_open:
                    self._open(attempts=self.reconnect_attempts)
                deadline = time.monotonic() + self.timeout_s
                while True:
                    msg = retry.pop() if retry else (None if exhausted else next(queue, None))
                    if msg is None:
                        exhausted = True
                        break
                    before = len(self._pending)
                    self._send(msg)
                    if before + 1 >= self.confirm_window:
                        self._pump(deadline, until_below=self.confirm_window // 2)
                        deadline = time.monotonic() + self.timeout_s
                    elif self._next_tag % 64 == 0:
                        assert self._conn is not None
                        self._conn.process_data_events(time_limit=0)
                    self._collect_failures(retry, attempts)
                self._pump(time.monotonic() + self.timeout_s, until_below=0)
                self._collect_failures(retry, attempts)
                if not retry:
                    return self._acked - start
            except (pika.exceptions.AMQPError, OSError) as exc:
                lost = list(self._pending.values())
                log.warning(
                    "broker connection lost with %d unconfirmed message(s); reconnecting: %r",
                    len(lost),
                    exc,
                )
                self._pending.clear()
                self._drop()
                for m in lost:
                    attempts[m.report_id] = attempts.get(m.report_id, 0) + 1
                    if attempts[m.report_id] > self.reconnect_attempts:
                        raise BrokerUnavailable(
                            f"report {m.report_id[:12]} still unconfirmed after "
                            f"{self.reconnect_attempts} reconnects"
                        ) from exc
                retry.extend(lost)
            except BrokerUnavailable:
                self._pending.clear()
                self._drop()
                raise

    def _collect_failures(self, retry: list[ReportMessage], attempts: dict[str, int]) -> None:
        """Move nacked or returned messages to ``retry``; raise once one fails too often."""
        failed, self._failed = self._failed, []
        for msg, reason in failed:
            n = attempts.get(msg.report_id, 0) + 1
            attempts[msg.report_id] = n
            if n > _REPUBLISH_LIMIT:
                raise PublishNotConfirmed(
                    f"report {msg.report_id[:12]} {reason} {n} times; not published"
                )
            log.warning("report %s %s; publishing again", msg.report_id[:12], reason)
            retry.append(msg)

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
