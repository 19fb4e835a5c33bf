"""A broker node that takes the TCP connection but never completes the AMQP handshake (a hung
node: an overloaded or half-started broker, a proxy with nothing behind it) among the addresses of
``FINPIPE_AMQP_URL`` is a broker failure like a node that is down: the handshake times out and
the next node is tried. The hung node is a real listening socket that accepts and says nothing."""

from __future__ import annotations

import random
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.rabbitmq import Nodes, Publisher, read_queues
from schemas.message import Provenance, ReportMessage, SubmitReport
from schemas.settings import Settings
from schemas.topology import Topology
from tests.integration.conftest import finpipe_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class KeepOrder(random.Random):
    """No shuffle: the addresses in the order given."""

    def shuffle(self, x: Any) -> None:
        return None


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port whose listener accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    over = threading.Event()

    def accept() -> None:
        while not over.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    over.set()
    thread.join(5)
    listener.close()
    for conn in accepted:
        conn.close()


def hung_url(settings: Settings, port: int) -> str:
    """An address of ``port`` with the login of ``settings``, giving up the handshake after 1 s."""
    user_and_host, _, _ = settings.amqp_url.rpartition(":")
    return f"{user_and_host}:{port}/%2F?stack_timeout=1"


def test_a_publisher_moves_on_from_a_node_that_never_completes_the_handshake(
    settings: Settings, hung_port: int
) -> None:
    hung = hung_url(settings, hung_port)
    nodes = Nodes([hung, settings.amqp_url], rng=KeepOrder())
    text = f"Hung{uuid.uuid4().hex[:6]} Corp reported revenue of $3 million for Q1 2024."
    msg = ReportMessage.build(SubmitReport(raw_text=text), Provenance(channel="api"))
    with Publisher(nodes, Topology.for_settings(settings)) as pub:
        assert pub.publish_many([msg]) == 1
        assert pub.connected_to == settings.amqp_url
    [work] = read_queues(settings.amqp_url, [settings.queue])
    assert work.messages == 1


def test_finpipe_ingest_publishes_to_the_real_node_past_a_hung_one(
    settings: Settings, hung_port: int, tmp_path: Path
) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    for i in range(3):
        text = (
            f"Hung{uuid.uuid4().hex[:6]} Corp {i} reported revenue of ${i + 1} million in Q1 2024."
        )
        (folder / f"r{i}.txt").write_text(text)
    both = f"{hung_url(settings, hung_port)},{settings.amqp_url}"
    done = finpipe_cli(settings.model_copy(update={"amqp_url": both}), "ingest", str(folder))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    [work] = read_queues(settings.amqp_url, [settings.queue])
    assert work.messages == 3
