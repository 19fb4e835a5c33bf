"""RabbitMQ: the only pika import. Connecting (to one of several nodes, in turn), the topology,
publishing with confirms, the worker's consume/ack/republish primitives, queue depths, dead letters.
pika's errors leave as ``BrokerUnavailable``, or ``BrokerConfigError`` when retrying cannot help;
the decisions that need no pika are in ``adapters/rabbitmq_policy.py``.

Every message is persistent, ``mandatory`` and confirmed; bulk publishing keeps a window of
outstanding confirms, pumping the asynchronous channel under the blocking connection; every wait
ends as soon as what it waits for has arrived. Nacked or returned messages are published again
with a backoff, for a time budget, then reported; after a dropped connection every
unconfirmed message is published again, at another node first (storage is idempotent).

The consumer's connection lives on one thread, which receives deliveries and settles them; work
done elsewhere comes back through ``ConsumerSession.call_threadsafe`` so heartbeats keep flowing.
The dead-letter queue's box is in ``adapters/rabbitmq_deadletters.py``, on the helpers here.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pika
import pika.channel
import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from adapters import rabbitmq_policy as policy
from adapters.rabbitmq_policy import Nodes
from schemas.errors import BrokerConfigError, BrokerUnavailable, PublishNotConfirmed
from schemas.message import ReportMessage
from schemas.settings import Settings, redact_url
from schemas.topology import QueueSpec, Topology

if TYPE_CHECKING:
    from adapters.rabbitmq_deadletters import DeadLetterBox

log = logging.getLogger(__name__)

#: what pika raises when the broker or the network fails; ``AMQPConnectorException``: a node that
#: takes the TCP connection but never completes the AMQP handshake (``AMQPConnectorStackTimeout``)
_BROKER_ERRORS = (pika.exceptions.AMQPError, AMQPConnectorException, OSError)


def parameters(amqp_url: str, *, timeout_s: float = 5.0) -> pika.URLParameters:
    """The connection parameters of one address, built here only: one try per call (retries are
    ours), and ``timeout_s`` for the socket (twice that for the whole handshake, a hung node's
    cost) unless the address sets ``socket_timeout`` or ``stack_timeout`` in its query."""
    params = pika.URLParameters(amqp_url)  # addresses checked by ``Nodes.of``
    query = parse_qs(urlsplit(amqp_url).query)
    params.connection_attempts = 1
    params.retry_delay = 0
    if "socket_timeout" not in query:
        params.socket_timeout = timeout_s
    if "stack_timeout" not in query:
        params.stack_timeout = timeout_s * 2
    params.blocked_connection_timeout = 30
    return params


def refusal(exc: BaseException) -> str | None:
    """Why connecting failed when it was our configuration (the login, the vhost, TLS); ``None``
    when a node or the network failed and another node or a later try may work."""
    e = pika.exceptions
    if isinstance(exc, e.AuthenticationError | e.ProbableAuthenticationError):
        return policy.refused("the login", str(exc), certain=isinstance(exc, e.AuthenticationError))
    if isinstance(exc, e.ProbableAccessDeniedError):
        return policy.refused("the virtual host", str(exc))
    return policy.refused_tls(exc)


def _connect(
    nodes: Nodes, *, attempts: int = 1, backoff_s: float = 0.5, timeout_s: float = 5.0
) -> tuple[BlockingConnection, str]:
    """A connection to the first address, in turn, that takes it, and that address (see
    ``connect_in_turn``): ``BrokerUnavailable`` when none does, ``BrokerConfigError`` when the
    broker refused the login, the vhost or TLS."""
    return policy.connect_in_turn(
        nodes,
        lambda url: BlockingConnection(parameters(url, timeout_s=timeout_s)),
        refusal=refusal,
        errors=_BROKER_ERRORS,
        attempts=attempts,
        backoff_s=backoff_s,
    )


def connect(amqp_url: str | Nodes, **options: Any) -> BlockingConnection:
    """``_connect`` to the addresses in ``amqp_url`` (see ``Nodes.of``); just the connection."""
    return _connect(Nodes.of(amqp_url), **options)[0]


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """pika's and the socket's errors leave as ``BrokerUnavailable`` saying ``what`` failed."""
    try:
        yield
    except _BROKER_ERRORS as exc:
        raise BrokerUnavailable(f"RabbitMQ {what}: {exc!r}") from exc


def _nothing() -> None:
    """A timer callback that only ends a wait (see ``Publisher._on_confirm``)."""


def _close_quietly(conn: BlockingConnection | None) -> None:
    if conn is not None and conn.is_open:
        with contextlib.suppress(*_BROKER_ERRORS):
            conn.close()


def declare_topology(channel: BlockingChannel, topology: Topology) -> None:
    """Declare exchanges and queues; idempotent, every process does it at start-up. Refusals and
    migrations: ``declare_queues``. ``channel`` stays open unless an error is raised."""
    channel.exchange_declare(topology.dlx, exchange_type="direct", durable=True)
    policy.declare_queues(_Queues(channel.connection), topology)
    channel.queue_bind(topology.dead_queue, topology.dlx, routing_key=topology.dead_queue)


@dataclass
class _Queues:
    """``QueueOps`` on channels of ``conn``, a fresh one per call (a refusal closes it)."""

    conn: BlockingConnection

    def declare(self, spec: QueueSpec) -> int:
        ch = self.conn.channel()
        try:
            ok = ch.queue_declare(spec.name, durable=True, arguments=spec.arguments)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 406:
                raise policy.Inequivalent(f"{exc.reply_code} {exc.reply_text}") from exc
            raise
        ch.close()
        return int(ok.method.message_count)

    def delete_if_empty(self, name: str) -> None:
        ch = self.conn.channel()
        with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):  # 404: gone already
            ch.queue_delete(name, if_empty=True)
            ch.close()


class Publisher:
    """Publishes ``ReportMessage``s with confirms. One instance per thread (pika is not
    thread-safe); opens its connection lazily and drops it after a failure. A message the broker
    nacks or returns is published again after ``backoff`` (see ``Outbox``)."""

    def __init__(
        self,
        amqp_url: str | Nodes,
        topology: Topology,
        *,
        confirm_window: int = 4000,
        timeout_s: float = 30.0,
        reconnect_attempts: int = 12,
        backoff: policy.Backoff | None = None,
    ) -> None:
        self.nodes = Nodes.of(amqp_url)
        self.topology = topology
        self.confirm_window = confirm_window
        self.timeout_s = timeout_s
        self.reconnect_attempts = reconnect_attempts
        self.backoff = backoff or policy.Backoff()
        self._conn: BlockingConnection | None = None
        self._url: str | None = None
        self._impl: pika.channel.Channel | None = None
        self._confirms = policy.Confirms()
        self._waiting_below: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Publisher:
        kwargs.setdefault("backoff", policy.Backoff(budget_s=settings.republish_budget_s))
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
        except (BrokerConfigError, *_BROKER_ERRORS) as exc:
            _close_quietly(conn)
            if isinstance(exc, BrokerConfigError):
                raise
            self.nodes.lost(url)
            raise BrokerUnavailable(f"RabbitMQ refused the topology: {exc!r}") from exc
        self._conn, self._url, self._impl = conn, url, impl
        self._confirms.new_channel()
        log.info("publishing to RabbitMQ at %s", redact_url(url))

    def _drop(self, *, failed: bool = False) -> None:
        """Close the connection; ``failed``: it broke, so the next one starts at another node."""
        conn, self._conn, self._impl = self._conn, None, None
        if failed:
            self.nodes.lost(self._url)
        _close_quietly(conn)

    @property
    def connected_to(self) -> str | None:
        """The address of the node this publisher is connected to now, if any."""
        return self._url if self._conn is not None else None

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
        m = frame.method
        nacked = isinstance(m, pika.spec.Basic.Nack)
        self._confirms.settled(m.delivery_tag, multiple=m.multiple, nacked=nacked)
        below = self._waiting_below
        if below is not None and len(self._confirms.pending) <= below and self._conn is not None:
            # Confirms arrive on the asynchronous channel, which does not end the blocking
            # connection's wait; a timer due now does, as soon as this read is processed.
            self._waiting_below = None
            self._conn.call_later(0, _nothing)

    def _on_return(self, _ch: Any, _method: Any, props: pika.BasicProperties, _body: bytes) -> None:
        if props.message_id:
            self._confirms.returned(str(props.message_id))

    def _send(self, msg: ReportMessage, headers: Mapping[str, Any] | None = None) -> None:
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
                headers={**(headers or {}), "schema_version": msg.schema_version},
            ),
            mandatory=True,
        )
        self._confirms.sent(msg)

    def _pump(self, deadline: float, *, until_below: int) -> None:
        """Wait until at most ``until_below`` messages are unconfirmed: returns as soon as the
        confirm that gets there arrives; ``PublishNotConfirmed`` at ``deadline``."""
        assert self._conn is not None
        pending = self._confirms.pending
        self._waiting_below = until_below
        try:
            while len(pending) > until_below:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PublishNotConfirmed(
                        f"{len(pending)} message(s) not confirmed within {self.timeout_s:.0f} s"
                    )
                self._conn.process_data_events(time_limit=remaining)
        finally:
            self._waiting_below = None

    def _refusals(self, outbox: policy.Outbox) -> None:
        """Put the messages the broker nacked or returned back in ``outbox``, after a backoff."""
        failed = self._confirms.take_failures()
        if not failed:
            return
        now = time.monotonic()
        due_at = max(outbox.refused(msg, reason, now) for msg, reason in failed)
        log.warning(
            "%d report(s) %s (first %s); publishing again in %.2f s",
            len(failed),
            failed[0][1],
            failed[0][0].report_id[:12],
            due_at - now,
        )

    # -- public -----------------------------------------------------------------------------
    def publish(self, message: ReportMessage) -> None:
        """Publish one message and wait for its confirm."""
        self.publish_many([message])

    def publish_many(self, messages: Iterable[ReportMessage], **headers: Any) -> int:
        """Publish all ``messages`` (with ``headers``); return how many the broker confirmed (all),
        or raise ``PublishNotConfirmed`` / ``BrokerUnavailable`` naming what was not confirmed."""
        start = self._confirms.acked
        outbox = policy.Outbox(messages, self.backoff)
        while True:
            try:
                if self._conn is None or not self._conn.is_open:
                    self._open(attempts=self.reconnect_attempts)
                self._publish_round(outbox, headers)
                if outbox.done:
                    return self._confirms.acked - start
            except _BROKER_ERRORS as exc:
                lost = self._confirms.new_channel()
                log.warning(
                    "broker connection lost with %d unconfirmed message(s); reconnecting: %r",
                    len(lost),
                    exc,
                )
                self._drop(failed=True)
                given_up = outbox.lost_with_connection(lost, limit=self.reconnect_attempts)
                if given_up is not None:
                    raise BrokerUnavailable(
                        f"report {given_up.report_id[:12]} still unconfirmed after "
                        f"{self.reconnect_attempts} reconnects"
                    ) from exc
            except (BrokerUnavailable, BrokerConfigError, PublishNotConfirmed):
                self._confirms.new_channel()
                self._drop()
                raise

    def _publish_round(self, outbox: policy.Outbox, headers: Mapping[str, Any]) -> None:
        """Publish what ``outbox`` has now (with ``headers``), keeping at most ``confirm_window``
        unconfirmed; wait for every confirm; then, if refused messages wait, until the first may
        go again."""
        confirms = self._confirms
        deadline = time.monotonic() + self.timeout_s
        while (msg := outbox.next(time.monotonic())) is not None:
            self._send(msg, headers)
            if len(confirms.pending) >= self.confirm_window:
                self._pump(deadline, until_below=self.confirm_window // 2)
                deadline = time.monotonic() + self.timeout_s
            elif confirms.next_tag % 64 == 0:
                assert self._conn is not None
                self._conn.process_data_events(time_limit=0)
            self._refusals(outbox)
        self._pump(time.monotonic() + self.timeout_s, until_below=0)
        self._refusals(outbox)
        due_at = outbox.next_due_at()
        delay_s = 0.0 if due_at is None else due_at - time.monotonic()
        if delay_s > 0:
            assert self._conn is not None
            self._conn.sleep(delay_s)  # a backoff, not a wait on the broker; frames keep flowing

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
        except (BrokerUnavailable, BrokerConfigError) as exc:
            _close_quietly(conn)
            if isinstance(exc, BrokerUnavailable):
                self.nodes.lost(url)
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


# -- one entry point -------------------------------------------------------------------------------
class Broker:
    """Everything finpipe does with RabbitMQ, for one work queue and its topology. Builds the
    objects above; opens nothing until one of them is used."""

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
        from adapters.rabbitmq_deadletters import DeadLetterBox  # it builds on this module

        return DeadLetterBox(self.nodes, self.topology)

    def queue_depths(self, *, timeout_s: float = 3.0) -> tuple[QueueDepth, QueueDepth]:
        """The work queue and the dead-letter queue; ``BrokerUnavailable`` when unreachable."""
        work, dead = read_queues(
            self.nodes, (self.topology.queue, self.topology.dead_queue), timeout_s=timeout_s
        )
        return work, dead

    def work_queue_depth(self) -> QueueDepth:
        return self.queue_depths()[0]
