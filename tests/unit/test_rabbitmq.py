"""The RabbitMQ adapter's boundary: what leaves it when the broker cannot be reached."""

from __future__ import annotations

import socket

import pytest

from adapters.rabbitmq import Broker, connect
from schemas.errors import BrokerUnavailable, TransientError
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
