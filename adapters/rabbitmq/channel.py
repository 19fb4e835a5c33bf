"""Opening a channel, the one way: a connection to one of several nodes in turn, the topology
declared, errors translated, a lost node reported so that the next connection starts at another.
The only pika import: every pika call and type the other modules of the package need is here,
behind a name that says what finpipe does with it (``Link``).

pika's errors leave as ``BrokerUnavailable``, or ``BrokerConfigError`` when retrying cannot help
(the login, the vhost, TLS, a queue declared with other arguments).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pika
import pika.channel
import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.adapters.select_connection import IOLoop, SelectConnection
from pika.adapters.utils.connection_workflow import (
    AMQPConnectionWorkflowFailed,
    AMQPConnectorException,
    AMQPConnectorPhaseErrorBase,
    AMQPConnectorSocketConnectError,
)

from adapters.rabbitmq import policy
from adapters.rabbitmq.policy import Nodes
from schemas.errors import BrokerUnavailable
from schemas.message import ReportMessage
from schemas.settings import redact_url
from schemas.topology import QueueSpec, Topology

#: what pika raises when the broker or the network fails; ``AMQPConnectorException``: a node that
#: takes the TCP connection but never completes the AMQP handshake (``AMQPConnectorStackTimeout``)
BROKER_ERRORS = (pika.exceptions.AMQPError, AMQPConnectorException, OSError)


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


def connect_to(
    nodes: Nodes, *, attempts: int = 1, backoff_s: float = 0.5, timeout_s: float = 5.0
) -> tuple[BlockingConnection, str]:
    """A connection to the first address, in turn, that takes it, and that address (see
    ``connect_in_turn``): ``BrokerUnavailable`` when none does, ``BrokerConfigError`` when the
    broker refused the login, the vhost or TLS."""
    return policy.connect_in_turn(
        nodes,
        lambda url: BlockingConnection(parameters(url, timeout_s=timeout_s)),
        refusal=refusal,
        errors=BROKER_ERRORS,
        attempts=attempts,
        backoff_s=backoff_s,
    )


def connect(amqp_url: str | Nodes, **options: Any) -> BlockingConnection:
    """``connect_to`` the addresses in ``amqp_url`` (see ``Nodes.of``); just the connection."""
    return connect_to(Nodes.of(amqp_url), **options)[0]


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """pika's and the socket's errors leave as ``BrokerUnavailable`` saying ``what`` failed."""
    try:
        yield
    except BROKER_ERRORS as exc:
        raise BrokerUnavailable(f"RabbitMQ {what}: {exc!r}") from exc


def _close_quietly(conn: BlockingConnection) -> None:
    if conn.is_open:
        with contextlib.suppress(*BROKER_ERRORS):
            conn.close()


# -- topology --------------------------------------------------------------------------------------
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


# -- messages --------------------------------------------------------------------------------------
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


def _properties_like(like: Incoming, headers: dict[str, Any]) -> pika.BasicProperties:
    """Persistent properties of a message published again, with new ``headers``."""
    return pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent,
        content_type=like.content_type,
        message_id=like.message_id,
        type=like.type,
        headers=headers,
    )


def _report_properties(msg: ReportMessage, headers: Mapping[str, Any]) -> pika.BasicProperties:
    return pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent,
        content_type="application/json",
        message_id=msg.report_id,
        type="report",
        headers={**headers, "schema_version": msg.schema_version},
    )


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


# -- the one way to open a channel -----------------------------------------------------------------
@dataclass
class Link:
    """A connection to the node at ``url`` and the ``channel`` opened on it, with the topology
    declared. Use it from the thread that opened it, except ``call_threadsafe``. After a broker
    error, ``abandon`` it: the next ``open_channel`` on the same ``nodes`` starts elsewhere."""

    nodes: Nodes
    url: str
    conn: BlockingConnection
    channel: BlockingChannel
    _republishing: BlockingChannel | None = field(default=None, init=False)
    _consumer_tag: str | None = field(default=None, init=False)

    @property
    def is_open(self) -> bool:
        return bool(self.conn.is_open)

    # -- waiting ----------------------------------------------------------------------------------
    def poll(self, time_limit_s: float | None) -> None:
        """Process what the broker sent, waiting up to ``time_limit_s`` for something to arrive."""
        self.conn.process_data_events(time_limit=time_limit_s)

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the connection's thread; nothing when the connection is gone."""
        with contextlib.suppress(*BROKER_ERRORS, RuntimeError):
            self.conn.add_callback_threadsafe(fn)

    # -- publishing again ---------------------------------------------------------------------
    def open_republishing(self) -> None:
        """Open a second channel, in confirm mode, that ``republish`` publishes on."""
        self._republishing = self.conn.channel()
        self._republishing.confirm_delivery()

    def republish(
        self, exchange: str, routing_key: str, message: Incoming, headers: dict[str, Any]
    ) -> None:
        """Publish ``message`` again with ``headers`` (persistent, mandatory); returns once the
        broker confirmed it."""
        assert self._republishing is not None, "open_republishing first"
        props = _properties_like(message, headers)
        self._republishing.basic_publish(exchange, routing_key, message.body, props, mandatory=True)

    # -- consuming --------------------------------------------------------------------------------
    def consume(self, queue: str, *, prefetch: int, on_message: Callable[[Incoming], None]) -> None:
        """Deliver messages of ``queue`` to ``on_message`` while ``poll`` runs, ``prefetch``
        unacknowledged at most."""

        def deliver(
            _ch: Any, method: pika.spec.Basic.Deliver, props: pika.BasicProperties, body: bytes
        ) -> None:
            on_message(_incoming(method.delivery_tag, props, body))

        self.channel.basic_qos(prefetch_count=prefetch)
        self._consumer_tag = self.channel.basic_consume(queue, deliver, auto_ack=False)

    def ack(self, tag: int) -> None:
        self.channel.basic_ack(tag)

    def nack(self, tag: int, *, requeue: bool = True) -> None:
        self.channel.basic_nack(tag, requeue=requeue)

    def cancel(self) -> None:
        """Stop new deliveries; the ones in hand can still be settled."""
        if self._consumer_tag is not None:
            self.channel.basic_cancel(self._consumer_tag)
            self._consumer_tag = None

    def take(self, queue: str, limit: int) -> Iterator[Incoming]:
        """Up to ``limit`` messages of ``queue``, unacknowledged: closing returns them."""
        for _ in range(limit):
            method, props, body = self.channel.basic_get(queue, auto_ack=False)
            if method is None:
                return
            yield _incoming(method.delivery_tag, props, body)

    # -- queues -----------------------------------------------------------------------------------
    def depth(self, name: str) -> QueueDepth:
        """``queue_depth`` of ``name`` on a fresh channel (a missing queue closes it)."""
        ch = self.conn.channel()
        depth = queue_depth(ch, name)
        if ch.is_open:
            ch.close()
        return depth

    def purge(self, name: str) -> int:
        """Remove every ready message of queue ``name``; how many there were."""
        return int(self.channel.queue_purge(name).method.message_count)

    # -- closing ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection; errors leave as ``BrokerUnavailable``."""
        if self.conn.is_open:
            with translated("close failed"):
                self.conn.close()

    def close_quietly(self) -> None:
        """Close the connection, ignoring errors (it may be broken already)."""
        _close_quietly(self.conn)

    def abandon(self) -> None:
        """Report the node lost, so the next connection starts at another one, and close the
        connection, ignoring errors."""
        self.nodes.lost(self.url)
        _close_quietly(self.conn)


@contextlib.contextmanager
def _setting_up(nodes: Nodes, url: str, purpose: str, close: Callable[[], None]) -> Iterator[None]:
    """While a new connection to ``url`` is set up: a broker error is reported as the node lost
    and leaves as ``BrokerUnavailable`` saying ``purpose``; a ``BrokerConfigError`` (a refused
    login or queue) leaves as it is, the node not reported (another would refuse it too); on any
    error the connection is closed."""
    try:
        with translated(f"failed at {redact_url(url)} ({purpose})"):
            yield
    except BaseException as exc:
        if isinstance(exc, BrokerUnavailable):
            nodes.lost(url)
        close()
        raise


def open_channel(
    nodes: Nodes,
    topology: Topology | None,
    *,
    purpose: str,
    prepare: Callable[[Link], None] | None = None,
    attempts: int = 1,
    timeout_s: float = 5.0,
) -> Link:
    """A ``Link`` to the first node, in turn, that takes the connection (``attempts`` rounds):
    a channel opened on it, ``topology`` declared (unless ``None``), then ``prepare`` run on it,
    failures handled by ``_setting_up``."""
    conn, url = connect_to(nodes, attempts=attempts, timeout_s=timeout_s)
    with _setting_up(nodes, url, purpose, lambda: _close_quietly(conn)):
        link = Link(nodes, url, conn, conn.channel())
        if topology is not None:
            declare_topology(link.channel, topology)
        if prepare is not None:
            prepare(link)
    return link


@contextlib.contextmanager
def session(
    nodes: Nodes,
    topology: Topology | None,
    *,
    purpose: str,
    attempts: int = 1,
    timeout_s: float = 5.0,
) -> Iterator[Link]:
    """``open_channel`` for the length of a ``with`` block, closed after it: a broker error in the
    block reports the node lost and leaves as ``BrokerUnavailable`` saying ``purpose``;
    unacknowledged messages go back to their queue."""
    link = open_channel(nodes, topology, purpose=purpose, attempts=attempts, timeout_s=timeout_s)
    try:
        with translated(f"failed at {redact_url(link.url)} ({purpose})"):
            yield link
    except BrokerUnavailable:
        nodes.lost(link.url)
        raise
    finally:
        _close_quietly(link.conn)


# -- a channel that publishes without waiting for each confirm -------------------------------------
#: what a publisher hears about a message: its delivery tag, ``multiple``, nacked
OnConfirm = Callable[[int, bool, bool], None]


def _turn(ioloop: IOLoop, done: Callable[[], bool], time_limit_s: float) -> None:
    """Turn ``ioloop`` until ``done()`` holds or ``time_limit_s`` has passed (one turn at least)."""
    expired: list[bool] = []
    timer = ioloop.call_later(max(time_limit_s, 0.0), lambda: expired.append(True))
    try:
        while True:
            ioloop.poll()
            ioloop.process_timeouts()
            if done() or expired:
                return
    finally:
        ioloop.remove_timeout(timer)


def _asynchronous_connection(url: str, timeout_s: float) -> SelectConnection:
    """A connection to ``url`` on an I/O loop of its own, which this thread turns; raises what
    ``BlockingConnection`` raises for the same failure (``refusal`` reads it)."""
    ioloop = IOLoop()
    ioloop.activate_poller()
    outcome: list[Any] = []
    try:
        SelectConnection.create_connection(
            [parameters(url, timeout_s=timeout_s)], on_done=outcome.append, custom_ioloop=ioloop
        )
        _turn(ioloop, lambda: bool(outcome), timeout_s * 3)  # the handshake ends by 2 x timeout_s
        result = outcome[0] if outcome else AMQPConnectorException("connecting timed out")
        if isinstance(result, AMQPConnectionWorkflowFailed):  # as BlockingConnection reports it
            result = result.exceptions[-1]
            if isinstance(result, AMQPConnectorSocketConnectError):
                result = pika.exceptions.AMQPConnectionError(result)
            elif isinstance(result, AMQPConnectorPhaseErrorBase):
                result = result.exception
        if isinstance(result, BaseException):
            raise result
    except BaseException:
        ioloop.close()
        raise
    assert isinstance(result, SelectConnection)
    return result


class ConfirmingLink:
    """A connection to the node at ``url`` on an I/O loop this thread turns, and a channel in
    confirm mode on it: ``send`` does not wait for the confirm; the broker's acks and nacks, and
    the messages it returns, reach the callbacks while ``poll`` runs. (A ``BlockingChannel``
    in confirm mode waits for each confirm in turn, one round trip per message.)"""

    def __init__(self, nodes: Nodes, url: str, conn: SelectConnection) -> None:
        self.nodes, self.url, self.conn = nodes, url, conn
        self._channel: pika.channel.Channel | None = None
        self._failure: BaseException | None = None
        self._woken = False
        conn.add_on_close_callback(self._closed)

    def _closed(self, _what: Any, reason: BaseException) -> None:
        if self._failure is None:
            self._failure = reason

    def _run(self, done: Callable[[], bool], time_limit_s: float) -> None:
        """Turn the loop until ``done()``, for ``time_limit_s`` at most; raise what broke the
        connection or the channel."""
        if self._failure is None:
            _turn(self.conn.ioloop, lambda: done() or self._failure is not None, time_limit_s)
        if self._failure is not None:
            raise self._failure

    def start_confirming(
        self, on_confirm: OnConfirm, on_return: Callable[[str], None], timeout_s: float
    ) -> None:
        def confirmed(frame: Any) -> None:
            m = frame.method
            on_confirm(m.delivery_tag, m.multiple, isinstance(m, pika.spec.Basic.Nack))

        def returned(_ch: Any, _m: Any, props: pika.BasicProperties, _body: bytes) -> None:
            if props.message_id:
                on_return(str(props.message_id))

        opened: list[pika.channel.Channel] = []
        self.conn.channel(on_open_callback=opened.append)
        self._run(lambda: bool(opened), timeout_s)
        if not opened:
            raise pika.exceptions.AMQPChannelError("the channel did not open in time")
        channel, selected = opened[0], list[Any]()
        channel.add_on_close_callback(self._closed)
        channel.add_on_return_callback(returned)
        channel.confirm_delivery(ack_nack_callback=confirmed, callback=selected.append)
        self._run(lambda: bool(selected), timeout_s)
        if not selected:
            raise pika.exceptions.AMQPChannelError("confirm mode was not acknowledged in time")
        self._channel = channel

    @property
    def is_open(self) -> bool:
        return self._failure is None and bool(self.conn.is_open)

    def send(self, queue: str, msg: ReportMessage, headers: Mapping[str, Any]) -> None:
        """Publish ``msg`` to ``queue`` (persistent, mandatory) without waiting for its confirm."""
        assert self._channel is not None, "start_confirming first"
        if self._failure is not None:
            raise self._failure
        self._channel.basic_publish(
            "", queue, msg.to_body(), _report_properties(msg, headers), mandatory=True
        )

    def poll(self, time_limit_s: float) -> None:
        """Send what waits, take what the broker sent, for ``time_limit_s`` at most or until
        ``wake``."""
        self._woken = False
        self._run(lambda: self._woken, time_limit_s)

    def wake(self) -> None:
        """End the current ``poll`` after the frames being processed (called from a callback)."""
        self._woken = True

    def sleep(self, duration_s: float) -> None:
        """Wait ``duration_s`` while frames keep flowing (heartbeats, confirms)."""
        self._run(lambda: False, duration_s)

    def close_quietly(self) -> None:
        """Close the connection, ignoring errors (it may be broken already), and its loop."""
        with contextlib.suppress(*BROKER_ERRORS):
            if self.conn.is_open:
                self.conn.close()
                _turn(self.conn.ioloop, lambda: bool(self.conn.is_closed), 5.0)
        self.conn.ioloop.close()

    def abandon(self) -> None:
        """Report the node lost, so the next connection starts at another one, and close."""
        self.nodes.lost(self.url)
        self.close_quietly()


def open_confirming(
    nodes: Nodes,
    topology: Topology,
    *,
    on_confirm: OnConfirm,
    on_return: Callable[[str], None],
    attempts: int = 1,
    timeout_s: float = 5.0,
) -> ConfirmingLink:
    """A ``ConfirmingLink`` to the first node, in turn, that takes the connection, once a
    ``session`` has declared ``topology``; failures handled by ``_setting_up``."""
    purpose = "publishing"
    with session(nodes, topology, purpose=purpose, attempts=attempts, timeout_s=timeout_s):
        pass
    conn, url = policy.connect_in_turn(
        nodes,
        lambda url: _asynchronous_connection(url, timeout_s),
        refusal=refusal,
        errors=BROKER_ERRORS,
        attempts=attempts,
        backoff_s=0.5,
    )
    link = ConfirmingLink(nodes, url, conn)
    with _setting_up(nodes, url, purpose, link.close_quietly):
        link.start_confirming(on_confirm, on_return, timeout_s)
    return link
