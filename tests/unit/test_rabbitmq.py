"""The RabbitMQ adapter's boundary: what leaves it when the broker cannot be reached or refuses
what we are configured with, and which node it connects to."""

from __future__ import annotations

import random
import socket
import ssl
from typing import Any
from unittest import mock

import pika.exceptions
import pytest

from adapters.rabbitmq import Broker, Nodes, channel, connect, refusal
from schemas.errors import BrokerConfigError, BrokerUnavailable, TransientError
from schemas.topology import Topology


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_broker_is_a_transient_error_with_the_password_hidden() -> None:
    url = f"amqp://user:hunter2@127.0.0.1:{closed_port()}/%2F"
    with pytest.raises(BrokerUnavailable) as err:
        connect(url, attempts=2, backoff_s=0.01)
    assert isinstance(err.value, TransientError)
    assert "hunter2" not in str(err.value)
    assert "user:***@127.0.0.1" in str(err.value)


def test_queue_depths_of_an_unreachable_broker_raise_broker_unavailable() -> None:
    broker = Broker(f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F", Topology("q"))
    with pytest.raises(BrokerUnavailable):
        broker.queue_depths(timeout_s=1.0)


# -- several addresses: order, failover, refusals ---------------------------------------------
URLS = tuple(f"amqp://u:pw@127.0.0.1:{port}/%2F" for port in (5681, 5682, 5683))


def test_each_process_tries_the_addresses_in_an_order_of_its_own() -> None:
    orders = {Nodes(URLS, rng=random.Random(seed)).urls for seed in range(20)}
    assert len(orders) > 1
    assert all(sorted(order) == sorted(URLS) for order in orders)
    assert Nodes(URLS, rng=random.Random(7)).urls == Nodes(URLS, rng=random.Random(7)).urls


def test_after_a_lost_connection_the_next_connect_starts_with_the_next_address() -> None:
    nodes = Nodes(URLS, rng=NoShuffle())
    assert nodes.in_turn() == list(URLS)
    nodes.connected(URLS[1])
    assert nodes.in_turn()[0] == URLS[1]
    nodes.lost(URLS[1])
    assert nodes.in_turn() == [URLS[2], URLS[0], URLS[1]]
    nodes.lost(URLS[1])  # reported again by another connection: no second step
    assert nodes.in_turn()[0] == URLS[2]


def test_connect_moves_on_to_the_next_node_when_one_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried = fake_broker(monkeypatch, down={5681, 5682})
    conn = connect(Nodes(URLS, rng=NoShuffle()))
    assert conn.port == 5683  # type: ignore[attr-defined]
    assert tried == [5681, 5682, 5683]


def test_a_worker_reconnects_to_another_node_not_only_to_the_one_that_went_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried = fake_broker(monkeypatch, down=set())
    broker = Broker(",".join(URLS), Topology("q"), rng=NoShuffle())
    session = broker.consumer(prefetch=1, on_message=lambda _m: None)
    monkeypatch.setattr(channel, "declare_topology", lambda *_a: None)
    session.open()
    session.abandon()  # its node went away
    session.open()
    assert tried == [5681, 5682]


def test_when_no_node_answers_the_error_names_each_with_the_password_hidden() -> None:
    urls = [f"amqp://user:hunter2@127.0.0.1:{closed_port()}/%2F" for _ in range(2)]
    with pytest.raises(BrokerUnavailable) as err:
        connect(",".join(urls), attempts=1)
    assert "hunter2" not in str(err.value)
    assert str(err.value).count("user:***@127.0.0.1") == 2


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (
            pika.exceptions.ProbableAuthenticationError(
                "ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused using "
                "authentication mechanism PLAIN. For details see the broker logfile.'"
            ),
            "refused the login (403 ACCESS_REFUSED - Login was refused",
        ),
        (pika.exceptions.AuthenticationError("PLAIN"), "refused the login"),
        (
            pika.exceptions.ProbableAccessDeniedError(
                "ConnectionClosedByBroker: (530) 'NOT_ALLOWED - vhost nope not found'"
            ),
            "refused the virtual host (530 NOT_ALLOWED - vhost nope not found)",
        ),
        (
            ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"),
            "amqps:// needs the broker's TLS port",
        ),
    ],
)
def test_a_refused_login_vhost_or_tls_is_a_configuration_error(exc: Exception, says: str) -> None:
    if isinstance(exc, ssl.SSLError):
        exc.reason = "WRONG_VERSION_NUMBER"  # set by the ssl module when OpenSSL raises it
    why = refusal(exc)
    assert why is not None
    assert says in why
    assert "\n" not in why


@pytest.mark.parametrize(
    "exc",
    [
        pika.exceptions.AMQPConnectionError("ConnectionRefusedError(111, 'Connection refused')"),
        # a node shutting down during the handshake: no word from the broker about the login
        pika.exceptions.ProbableAuthenticationError("StreamLostError: ('EOF',)"),
        pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED - shutdown"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
)
def test_a_node_or_network_failure_is_not_a_configuration_error(exc: Exception) -> None:
    assert refusal(exc) is None


def test_a_refused_login_stops_connecting_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[int] = []

    def refuse(params: pika.URLParameters) -> None:
        tried.append(params.port)
        raise pika.exceptions.ProbableAuthenticationError(
            "ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused'"
        )

    monkeypatch.setattr(channel, "BlockingConnection", refuse)
    with pytest.raises(BrokerConfigError) as err:
        connect(Nodes(URLS, rng=NoShuffle()), attempts=5, backoff_s=0.01)
    assert tried == [5681]
    assert ":pw@" not in str(err.value)
    assert "FINPIPE_AMQP_URL" in str(err.value)


def test_a_port_that_is_not_a_number_is_a_configuration_error() -> None:
    with pytest.raises(BrokerConfigError) as err:
        connect("amqp://u:pw@127.0.0.1:abc/%2F")
    assert "FINPIPE_AMQP_URL" in str(err.value)
    assert ":pw@" not in str(err.value)


class NoShuffle(random.Random):
    """Keeps the addresses in the order given."""

    def shuffle(self, x: Any) -> None:
        return None


def fake_broker(monkeypatch: pytest.MonkeyPatch, down: set[int]) -> list[int]:
    """``BlockingConnection`` replaced: refused on the ``down`` ports, else an object that has
    channels; returns the ports tried, in order."""
    tried: list[int] = []

    def open_(params: pika.URLParameters) -> Any:
        tried.append(params.port)
        if params.port in down:
            raise pika.exceptions.AMQPConnectionError("ConnectionRefusedError(111)")
        conn = mock.MagicMock()
        conn.port = params.port
        conn.is_open = True
        return conn

    monkeypatch.setattr(channel, "BlockingConnection", open_)
    return tried


def failing_channels(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``BlockingConnection`` replaced: every node takes the connection, and its first channel
    fails as a node going away does; returns the ports tried, in order."""
    tried: list[int] = []

    def open_(params: pika.URLParameters) -> Any:
        tried.append(params.port)
        conn = mock.MagicMock()
        conn.is_open = True
        conn.channel.side_effect = pika.exceptions.StreamLostError("EOF")
        return conn

    monkeypatch.setattr(channel, "BlockingConnection", open_)
    return tried


@pytest.mark.parametrize(
    "use",
    [
        lambda broker: broker.dead_letters().count(),
        lambda broker: list(broker.dead_letters().browse()),
        lambda broker: broker.dead_letters().purge(),
        lambda broker: broker.queue_depths(),
    ],
    ids=["dead-letter count", "dead-letter browse", "dead-letter purge", "queue depths"],
)
def test_the_dead_letter_tools_and_queue_reads_report_a_lost_node_as_the_publisher_does(
    monkeypatch: pytest.MonkeyPatch, use: Any
) -> None:
    tried = failing_channels(monkeypatch)
    broker = Broker(",".join(URLS), Topology("q"), rng=NoShuffle())
    for _ in range(2):
        with pytest.raises(BrokerUnavailable) as err:
            use(broker)
        assert ":pw@" not in str(err.value)
    assert tried == [5681, 5682]  # the second try starts at the next node


def test_a_publisher_whose_channel_fails_on_opening_reports_the_node_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried = failing_channels(monkeypatch)
    publisher = Broker(",".join(URLS), Topology("q"), rng=NoShuffle()).publisher()
    for _ in range(2):
        with pytest.raises(BrokerUnavailable):
            publisher.check()
    assert tried == [5681, 5682]
