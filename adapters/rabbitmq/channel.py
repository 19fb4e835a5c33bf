"""Opening a channel, the one way: a connection to one of several nodes in turn, the topology
declared, errors translated (``BrokerUnavailable``; ``BrokerConfigError`` when retrying cannot
help), a lost node reported so that the next connection starts at another. The only pika import:
every pika call is here, behind a name that says what finpipe does with it (``Link``,
``ConfirmingLink``)."""

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
from adapters.rabbitmq.records import (
    Incoming,
    QueueDepth,
    incoming,
    report_properties,
    republished,
)
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
    """A connection to the first address, in turn, that takes it, and that address: see
    ``connect_in_turn`` (``BrokerUnavailable``, or ``BrokerConfigError`` for a refusal)."""
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


def queue_depth(channel: Any, name: str) -> QueueDepth:
    """The depth of queue ``name``, not created if missing (that closes ``channel``: 404)."""
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
    """A connection to the node at ``url`` and a ``channel`` on it, for the thread that opened it
    (but ``call_threadsafe``); after a broker error, ``abandon`` it."""

    nodes: Nodes
    url: str
    conn: BlockingConnection
    channel: BlockingChannel
    _republishing: BlockingChannel | None = field(default=None, init=False)
    _consumer_tag: str | None = field(default=None, init=False)

    def poll(self, time_limit_s: float | None) -> None:
        """Process what the broker sent, waiting up to ``time_limit_s`` for something to arrive."""
        self.conn.process_data_events(time_limit=time_limit_s)

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the connection's thread; nothing when the connection is gone."""
        with contextlib.suppress(*BROKER_ERRORS, RuntimeError):
            self.conn.add_callback_threadsafe(fn)

    def open_republishing(self) -> None:
        """Open a second channel, in confirm mode, that ``republish`` publishes on."""
        self._republishing = self.conn.channel()
        self._republishing.confirm_delivery()

    def republish(
        self, exchange: str, routing_key: str, message: Incoming, headers: dict[str, Any]
    ) -> None:
        """Publish ``message`` again with ``headers``; returns once the broker confirmed it."""
        assert self._republishing is not None, "open_republishing first"
        props = pika.BasicProperties(**republished(message, headers))
        self._republishing.basic_publish(exchange, routing_key, message.body, props, mandatory=True)

    def consume(self, queue: str, *, prefetch: int, on_message: Callable[[Incoming], None]) -> None:
        """Deliver ``queue``'s messages to ``on_message`` in ``poll``; ``prefetch`` unacked."""

        def deliver(_ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
            on_message(incoming(method.delivery_tag, props, body))

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
            yield incoming(method.delivery_tag, props, body)

    def depth(self, name: str) -> QueueDepth:
        ch = self.conn.channel()  # a missing queue closes it
        depth = queue_depth(ch, name)
        if ch.is_open:
            ch.close()
        return depth

    def purge(self, name: str) -> int:
        """Remove every ready message of queue ``name``; how many there were."""
        return int(self.channel.queue_purge(name).method.message_count)

    def close(self) -> None:
        if self.conn.is_open:
            with translated("close failed"):
                self.conn.close()

    def close_quietly(self) -> None:
        _close_quietly(self.conn)

    def abandon(self) -> None:
        """Report the node lost (the next connection starts at another) and close quietly."""
        self.nodes.lost(self.url)
        _close_quietly(self.conn)


@contextlib.contextmanager
def _setting_up(nodes: Nodes, url: str, purpose: str, close: Callable[[], None]) -> Iterator[None]:
    """While a connection to ``url`` is set up: a broker error reports the node lost and leaves as
    ``BrokerUnavailable`` saying ``purpose``; any error ``close``s the connection."""
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
    """A ``Link`` to the first node, in turn, that takes the connection (``attempts`` rounds), its
    ``topology`` declared (unless ``None``) and ``prepare`` run, failures as ``_setting_up``."""
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
    nodes: Nodes, topology: Topology | None, *, purpose: str, **options: Any
) -> Iterator[Link]:
    """``open_channel`` (with ``options``) for a ``with`` block, closed after it: a broker error
    in the block reports the node lost and leaves as ``BrokerUnavailable`` saying ``purpose``;
    unacknowledged messages go back to their queue."""
    link = open_channel(nodes, topology, purpose=purpose, **options)
    try:
        with translated(f"failed at {redact_url(link.url)} ({purpose})"):
            yield link
    except BrokerUnavailable:
        nodes.lost(link.url)
        raise
    finally:
        _close_quietly(link.conn)


# -- a channel that publishes without waiting for each confirm -------------------------------------
OnConfirm = Callable[[int, bool, bool], None]  # a message's delivery tag, ``multiple``, nacked


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
    """A connection to ``url`` on its own I/O loop, failing as ``BlockingConnection`` would."""
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
    """A connection to ``url`` on an I/O loop this thread turns, and a channel in confirm mode
    that ``send``s without waiting for each confirm (as a ``BlockingChannel`` does): acks, nacks
    and returned messages reach the callbacks while ``poll`` runs."""

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
        """``_turn`` the loop; raise what broke the connection or the channel."""
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
        self._await(opened, "the channel to open", timeout_s)
        channel, selected = opened[0], list[Any]()
        channel.add_on_close_callback(self._closed)
        channel.add_on_return_callback(returned)
        channel.confirm_delivery(ack_nack_callback=confirmed, callback=selected.append)
        self._await(selected, "confirm mode", timeout_s)
        self._channel = channel

    def _await(self, outcome: list[Any], what: str, timeout_s: float) -> None:
        self._run(lambda: bool(outcome), timeout_s)
        if not outcome:
            raise pika.exceptions.AMQPChannelError(f"waited {timeout_s:g} s for {what}")

    @property
    def is_open(self) -> bool:
        return self._failure is None and bool(self.conn.is_open)

    def send(self, queue: str, msg: ReportMessage, headers: Mapping[str, Any]) -> None:
        """Publish ``msg`` to ``queue`` (persistent, mandatory) without waiting for its confirm."""
        assert self._channel is not None, "start_confirming first"
        if self._failure is not None:
            raise self._failure
        props = pika.BasicProperties(**report_properties(msg, headers))
        self._channel.basic_publish("", queue, msg.to_body(), props, mandatory=True)

    def poll(self, time_limit_s: float) -> None:
        """Send and receive for ``time_limit_s`` at most, or until ``wake``."""
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
        """Report the node lost (the next connection starts at another) and close quietly."""
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
    with session(nodes, topology, purpose="publishing", attempts=attempts, timeout_s=timeout_s):
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
    with _setting_up(nodes, url, "publishing", link.close_quietly):
        link.start_confirming(on_confirm, on_return, timeout_s)
    return link
