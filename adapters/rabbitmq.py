"""RabbitMQ: the only pika import. Connection parameters, connecting, the topology, publishing
with confirms, the consume/ack/republish primitives of the worker, queue depths and the dead-letter
queue. pika's exceptions leave this module as ``BrokerUnavailable`` (``raise ... from``).

Every message is persistent and ``mandatory`` and is published with publisher confirms. Bulk
publishing keeps a window of outstanding confirms instead of waiting for each one: the blocking
connection's underlying channel is driven asynchronously and pumped with ``process_data_events``.
A message is done only when the broker acked it; nacked or returned messages are re-published a
few times and then reported. A dropped connection is re-opened with backoff and every unconfirmed
message is published again (storage is idempotent, so a duplicate costs nothing).

The consumer's connection lives on one thread, which receives deliveries and settles them; work
done elsewhere comes back through ``ConsumerSession.call_threadsafe`` so heartbeats keep flowing.
Browsing the dead-letter queue takes messages with ``basic_get`` and never acknowledges the ones it
only looks at: closing the channel returns them. Replay publishes a message back to the work queue
with confirms, and only then removes it from the dead-letter queue.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pika
import pika.channel
import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from schemas.errors import BrokerConfigError, BrokerUnavailable, PublishNotConfirmed
from schemas.message import ReportMessage
from schemas.settings import Settings, amqp_addresses, redact_url
from schemas.topology import QueueSpec, Topology

log = logging.getLogger(__name__)

#: what pika raises when the broker or the network fails
_BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)

_REPUBLISH_LIMIT = 3


# -- connecting ------------------------------------------------------------------------------------
class Nodes:
    """The broker addresses of one process (one, or the nodes of a cluster) in an order of its own,
    shuffled once with ``rng`` so that the workers of a cluster spread over its nodes. A connect
    tries them in turn from the current one; after the current one's connection is lost
    (``lost``), the next connect starts with the address after it. One per ``Broker``, shared by
    its connections."""

    def __init__(self, urls: Sequence[str], *, rng: random.Random | None = None) -> None:
        if not urls:
            raise ValueError("no broker address")
        order = list(urls)
        (rng or random.Random()).shuffle(order)
        self.urls: tuple[str, ...] = tuple(order)
        self._current = 0

    @classmethod
    def of(cls, amqp_url: str | Nodes, *, rng: random.Random | None = None) -> Nodes:
        """``amqp_url`` as ``FINPIPE_AMQP_URL`` holds it: one URL or several, comma-separated."""
        if isinstance(amqp_url, Nodes):
            return amqp_url
        try:
            urls = amqp_addresses(amqp_url)
        except ValueError as exc:
            shown = redact_url(amqp_url)
            raise BrokerConfigError(f"FINPIPE_AMQP_URL={shown!r} is invalid: {exc}") from None
        return cls(urls, rng=rng)

    def in_turn(self) -> list[str]:
        """Every address, the current one first."""
        i = self._current
        return [*self.urls[i:], *self.urls[:i]]

    def connected(self, url: str) -> None:
        self._current = self.urls.index(url)

    def lost(self, url: str | None) -> None:
        """The connection to ``url`` failed: start the next connect with the address after it."""
        if url is not None and self.urls[self._current] == url:
            self._current = (self._current + 1) % len(self.urls)

    def __str__(self) -> str:
        return ",".join(redact_url(u) for u in self.urls)


def parameters(amqp_url: str, *, timeout_s: float = 5.0) -> pika.URLParameters:
    """The connection parameters of one address, built here only: one try per call (retries are
    ours), and ``timeout_s`` for the socket (twice that for the whole handshake)."""
    try:
        params = pika.URLParameters(amqp_url)
    except ValueError as exc:  # e.g. a port that is not a number
        raise BrokerConfigError(
            f"RabbitMQ address {redact_url(amqp_url)} is invalid: {exc}"
        ) from None
    params.connection_attempts = 1
    params.retry_delay = 0
    params.socket_timeout = timeout_s
    params.stack_timeout = timeout_s * 2
    params.blocked_connection_timeout = 30
    return params


#: what OpenSSL says when the other end does not speak TLS
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE"})


def refusal(exc: BaseException) -> str | None:
    """Why connecting failed when it was our configuration: the login, the virtual host, TLS on a
    plain port or a certificate (retrying cannot help); ``None`` when a node or the network
    failed (another node, or a later try, may work)."""
    text = str(exc)
    said = re.search(r"\((\d{3})\) '([A-Z_]+ - [^']*)'", text)
    broker_said = f"{said.group(1)} {said.group(2)}" if said else text[:200]
    if isinstance(exc, pika.exceptions.AuthenticationError) or (
        isinstance(exc, pika.exceptions.ProbableAuthenticationError) and "ACCESS_REFUSED" in text
    ):
        return (
            f"RabbitMQ refused the login ({broker_said}): check the user name and password "
            "in FINPIPE_AMQP_URL"
        )
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError) and said:
        return (
            f"RabbitMQ refused the virtual host ({broker_said}): check the vhost in "
            "FINPIPE_AMQP_URL and the user's permissions on it"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"RabbitMQ's TLS certificate was not accepted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError) and exc.reason in _NOT_TLS:
        return (
            f"TLS handshake failed ({exc.reason}): that port does not speak TLS; amqps:// needs "
            "the broker's TLS port (usually 5671), the plain AMQP port (5672) takes amqp://"
        )
    return None


def _open(nodes: Nodes, timeout_s: float) -> tuple[BlockingConnection, str]:
    """One connection to the first address in turn that takes it, and that address. A refusal
    (``refusal``) is a ``BrokerConfigError`` at once; ``BrokerUnavailable`` when none answers."""
    failed: list[str] = []
    for url in nodes.in_turn():
        try:
            conn = BlockingConnection(parameters(url, timeout_s=timeout_s))
        except _BROKER_ERRORS as exc:
            why = refusal(exc)
            if why is not None:
                raise BrokerConfigError(f"{why} (at {redact_url(url)})") from exc
            failed.append(f"{redact_url(url)}: {exc!r}")
            continue
        nodes.connected(url)
        if failed:
            shown = "; ".join(failed)
            log.warning(
                "RabbitMQ unreachable at %s; connected to %s instead", shown, redact_url(url)
            )
        return conn, url
    raise BrokerUnavailable(f"RabbitMQ unreachable at {'; '.join(failed)}")


def _connect(
    nodes: Nodes, *, attempts: int = 1, backoff_s: float = 0.5, timeout_s: float = 5.0
) -> tuple[BlockingConnection, str]:
    retrying = Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=backoff_s, max=5.0),
        retry=retry_if_exception_type(BrokerUnavailable),
        reraise=True,
    )
    opened: tuple[BlockingConnection, str] = retrying(_open, nodes, timeout_s)
    return opened


def connect(
    amqp_url: str | Nodes, *, attempts: int = 1, backoff_s: float = 0.5, timeout_s: float = 5.0
) -> BlockingConnection:
    """Open a blocking connection to the first of the addresses, in turn, that takes it.
    ``attempts`` rounds over all of them with exponential backoff (capped at 5 s) in between.
    Raises ``BrokerUnavailable`` (no node answers) or ``BrokerConfigError`` (refused login, vhost
    or TLS: no retry)."""
    conn, _url = _connect(
        Nodes.of(amqp_url), attempts=attempts, backoff_s=backoff_s, timeout_s=timeout_s
    )
    return conn


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """pika's and the socket's errors leave as ``BrokerUnavailable`` saying ``what`` failed."""
    try:
        yield
    except _BROKER_ERRORS as exc:
        raise BrokerUnavailable(f"RabbitMQ {what}: {exc!r}") from exc


def _close_quietly(conn: BlockingConnection | None) -> None:
    if conn is not None and conn.is_open:
        with contextlib.suppress(*_BROKER_ERRORS):
            conn.close()


def declare_topology(channel: BlockingChannel, topology: Topology) -> None:
    """Declare exchanges and queues; idempotent, every process does it at start-up. A queue that
    exists with other arguments (406 PRECONDITION_FAILED) is a ``BrokerConfigError`` saying what to
    do; delayed-retry queues an earlier finpipe declared as classic queues are migrated
    (``_declare_retry_queue``). ``channel`` stays open unless an error is raised."""
    channel.exchange_declare(topology.dlx, exchange_type="direct", durable=True)
    for spec in (topology.work_spec(), topology.dead_spec()):
        _declare(channel, spec)
    for spec, classic in zip(topology.retry_specs(), topology.classic_retry_specs(), strict=True):
        _declare_retry_queue(channel.connection, spec, classic)
    channel.queue_bind(topology.dead_queue, topology.dlx, routing_key=topology.dead_queue)


def _declare(channel: BlockingChannel, spec: QueueSpec) -> None:
    try:
        channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 406:
            raise
        raise _inequivalent(spec, exc) from exc


def _inequivalent(spec: QueueSpec, exc: pika.exceptions.ChannelClosedByBroker) -> BrokerConfigError:
    return BrokerConfigError(
        f"RabbitMQ refused to declare queue {spec.name!r} ({exc.reply_code} {exc.reply_text}): "
        "it exists with other arguments; if it holds nothing you need, delete it "
        f"(rabbitmqctl delete_queue {spec.name}) and start again, or use another FINPIPE_QUEUE"
    )


def _declare_retry_queue(conn: BlockingConnection, spec: QueueSpec, classic: QueueSpec) -> None:
    """Declare a delayed-retry queue (a quorum queue) on channels of its own. If it exists as the
    ``classic`` queue an earlier finpipe declared, it is deleted and declared again when empty;
    when it holds messages, ``BrokerConfigError`` says to wait until their delay has sent them
    back to the work queue."""
    ch = conn.channel()
    try:
        ch.queue_declare(spec.name, durable=True, arguments=spec.arguments)
        ch.close()
        return
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 406:
            raise
        refused = exc
    ch = conn.channel()  # the refusal closed the other one
    try:  # equivalent to the earlier classic queue? Then the broker tells how many it holds.
        held = int(
            ch.queue_declare(
                classic.name, durable=True, arguments=classic.arguments
            ).method.message_count
        )
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 406:
            raise
        raise _inequivalent(spec, refused) from refused
    if held:
        delay_s = int(classic.arguments["x-message-ttl"]) // 1000
        raise BrokerConfigError(
            f"delayed-retry queue {spec.name!r} is a classic queue (kept by one node) from an "
            f"earlier finpipe and still holds {held} message(s): they return to "
            f"{classic.arguments['x-dead-letter-routing-key']!r} within {delay_s} s; start again "
            "then and it becomes a quorum queue (rabbitmqctl list_queues name messages shows when "
            "it is empty)"
        )
    try:
        ch.queue_delete(spec.name, if_empty=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 404:  # 404: another process migrated it a moment ago
            raise
        ch = conn.channel()
    _declare(ch, spec)
    ch.close()
    log.warning(
        "delayed-retry queue %s was a classic queue; declared again as a quorum queue", spec.name
    )


class Publisher:
    """Publishes ``ReportMessage``s with confirms. One instance per thread (pika is not
    thread-safe); opens its connection lazily and drops it after a failure."""

    def __init__(
        self,
        amqp_url: str | Nodes,
        topology: Topology,
        *,
        confirm_window: int = 4000,
        timeout_s: float = 30.0,
        reconnect_attempts: int = 12,
    ) -> None:
        self.nodes = Nodes.of(amqp_url)
        self.amqp_url = ",".join(self.nodes.urls)
        self.topology = topology
        self.confirm_window = confirm_window
        self.timeout_s = timeout_s
        self.reconnect_attempts = reconnect_attempts
        self._conn: BlockingConnection | None = None
        self._url: str | None = None
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
        conn, url = _connect(self.nodes, attempts=attempts)
        try:
            ch = conn.channel()
            declare_topology(ch, self.topology)
            impl: pika.channel.Channel = ch._impl  # asynchronous channel under the blocking one
            impl.confirm_delivery(ack_nack_callback=self._on_confirm)
            impl.add_on_return_callback(self._on_return)
            conn.process_data_events(time_limit=0)
        except BrokerConfigError:
            _close_quietly(conn)
            raise
        except _BROKER_ERRORS as exc:
            _close_quietly(conn)
            self.nodes.lost(url)
            raise BrokerUnavailable(f"RabbitMQ refused the topology: {exc!r}") from exc
        self._conn, self._url, self._impl, self._next_tag = conn, url, impl, 0
        log.info("publishing to RabbitMQ at %s", redact_url(url))

    def _drop(self, *, failed: bool = False) -> None:
        """Close the connection; ``failed``: it broke, so the next one starts at another node."""
        conn, self._conn, self._impl = self._conn, None, None
        if failed:
            self.nodes.lost(self._url)
        _close_quietly(conn)

    def check(self) -> None:
        """Raise ``BrokerUnavailable`` unless the broker answers (used by /healthz)."""
        if self._conn is None or not self._conn.is_open:
            self._open()
        assert self._conn is not None
        try:
            self._conn.process_data_events(time_limit=0)
        except _BROKER_ERRORS as exc:
            self._drop(failed=True)
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
            except _BROKER_ERRORS as exc:
                lost = list(self._pending.values())
                log.warning(
                    "broker connection lost with %d unconfirmed message(s); reconnecting: %r",
                    len(lost),
                    exc,
                )
                self._pending.clear()
                self._drop(failed=True)
                for m in lost:
                    attempts[m.report_id] = attempts.get(m.report_id, 0) + 1
                    if attempts[m.report_id] > self.reconnect_attempts:
                        raise BrokerUnavailable(
                            f"report {m.report_id[:12]} still unconfirmed after "
                            f"{self.reconnect_attempts} reconnects"
                        ) from exc
                retry.extend(lost)
            except (BrokerUnavailable, BrokerConfigError):
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


# -- consuming -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Incoming:
    """A message taken from a queue, as the code deciding its fate sees it."""

    tag: int
    body: bytes
    headers: dict[str, Any]
    message_id: str | None = None
    content_type: str | None = None
    type: str | None = None


def _incoming(tag: int, props: pika.spec.BasicProperties, body: bytes) -> Incoming:
    return Incoming(
        tag,
        body,
        dict(props.headers or {}),
        None if props.message_id is None else str(props.message_id),
        props.content_type,
        props.type,
    )


def _properties(like: Incoming, headers: dict[str, Any]) -> pika.BasicProperties:
    """Persistent properties of a message published again, with new ``headers``."""
    return pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent,
        content_type=like.content_type,
        message_id=like.message_id,
        type=like.type,
        headers=headers,
    )


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
        self._url: str | None = None
        self._prefetch = prefetch
        self._on_message = on_message
        self._conn: BlockingConnection | None = None
        self._ch: BlockingChannel | None = None
        self._pub: BlockingChannel | None = None
        self._tag: str | None = None

    def open(self) -> None:
        conn, url = _connect(self.nodes)
        try:
            with _translated("refused the consumer's channels"):
                ch = conn.channel()
                declare_topology(ch, self.topology)
                ch.basic_qos(prefetch_count=self._prefetch)
                pub = conn.channel()
                pub.confirm_delivery()
                self._tag = ch.basic_consume(self.topology.queue, self._deliver, auto_ack=False)
        except BrokerUnavailable:
            _close_quietly(conn)
            self.nodes.lost(url)
            raise
        except BrokerConfigError:
            _close_quietly(conn)
            raise
        self._conn, self._url, self._ch, self._pub = conn, url, ch, pub
        log.info("consuming from RabbitMQ at %s", redact_url(url))

    def _deliver(
        self,
        _ch: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        self._on_message(_incoming(method.delivery_tag, properties, body))

    def poll(self, time_limit_s: float) -> None:
        """Deliver what arrived and run the callbacks queued by other threads."""
        assert self._conn is not None
        with _translated("connection lost"):
            self._conn.process_data_events(time_limit=time_limit_s)

    def cancel(self) -> None:
        """Stop new deliveries; the ones in hand can still be settled."""
        assert self._ch is not None
        if self._tag is not None:
            with _translated("cancel failed"):
                self._ch.basic_cancel(self._tag)
            self._tag = None

    def ack(self, tag: int) -> None:
        assert self._ch is not None
        with _translated("ack failed"):
            self._ch.basic_ack(tag)

    def nack(self, tag: int, *, requeue: bool = True) -> None:
        assert self._ch is not None
        with _translated("nack failed"):
            self._ch.basic_nack(tag, requeue=requeue)

    def republish(
        self, exchange: str, routing_key: str, message: Incoming, headers: dict[str, Any]
    ) -> None:
        """Publish ``message`` again with ``headers``; returns once the broker confirmed it."""
        assert self._pub is not None
        with _translated("republish failed"):
            self._pub.basic_publish(
                exchange, routing_key, message.body, _properties(message, headers), mandatory=True
            )

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the connection's thread. If the connection is already gone, nothing
        runs: the broker redelivers the messages it was about."""
        conn = self._conn
        if conn is None:
            return
        with contextlib.suppress(*_BROKER_ERRORS, RuntimeError):
            conn.add_callback_threadsafe(fn)

    def close(self) -> None:
        conn, self._conn, self._ch, self._pub = self._conn, None, None, None
        if conn is not None and conn.is_open:
            with _translated("close failed"):
                conn.close()

    def abandon(self) -> None:
        """Drop a connection that failed, so the next one starts at another node; errors closing
        it are ignored."""
        conn, self._conn, self._ch, self._pub = self._conn, None, None, None
        self.nodes.lost(self._url)
        _close_quietly(conn)


# -- queue depths ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueDepth:
    """A queue as the broker reports it: ``messages`` are ready (not yet delivered) messages."""

    name: str
    exists: bool
    messages: int = 0
    consumers: int = 0


def queue_depth(channel: Any, name: str) -> QueueDepth:
    """Passive ``queue_declare``: reads the depth without creating the queue. A missing queue
    closes the channel (404), so use a fresh channel per call."""
    try:
        ok = channel.queue_declare(queue=name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return QueueDepth(name, exists=False)
        raise
    return QueueDepth(name, True, int(ok.method.message_count), int(ok.method.consumer_count))


def read_queues(
    amqp_url: str | Nodes, names: Iterable[str], *, timeout_s: float = 3.0
) -> list[QueueDepth]:
    """The depth of each queue in ``names``; ``BrokerUnavailable`` when no node answers."""
    conn, url = _connect(Nodes.of(amqp_url), timeout_s=timeout_s)
    with _translated(f"failed at {redact_url(url)}"):
        try:
            out = []
            for name in names:
                ch = conn.channel()
                out.append(queue_depth(ch, name))
                if ch.is_open:
                    ch.close()
            return out
        finally:
            if conn.is_open:
                conn.close()


# -- dead letters ----------------------------------------------------------------------------------
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

    def browse(self, limit: int = 1000) -> list[Incoming]:
        """Up to ``limit`` dead letters; none is removed."""
        with self._channel("cannot read the dead-letter queue") as (_, ch):
            return list(self._take(ch, limit))

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


# -- one entry point -------------------------------------------------------------------------------
class Broker:
    """Everything finpipe does with RabbitMQ, for one work queue and its topology. Builds the
    objects above; opens nothing until one of them is used."""

    def __init__(
        self, amqp_url: str | Nodes, topology: Topology, *, rng: random.Random | None = None
    ) -> None:
        self.nodes = Nodes.of(amqp_url, rng=rng)
        self.amqp_url = ",".join(self.nodes.urls)
        self.topology = topology

    @classmethod
    def from_settings(cls, settings: Settings, *, rng: random.Random | None = None) -> Broker:
        """``rng`` shuffles the addresses of ``FINPIPE_AMQP_URL`` (default: a fresh random
        order for each process)."""
        return cls(settings.amqp_url, Topology.for_settings(settings), rng=rng)

    def publisher(self, **options: Any) -> Publisher:
        """A publisher with confirms (see ``Publisher`` for ``options``); one per thread."""
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
