"""What RabbitMQ refuses, against the real default broker: a wrong password, a queue that exists
with other arguments, and the classic delayed-retry queues an earlier finpipe declared. Each ends
the process at once with one line saying what to do; none is retried for ever."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pika
import pytest

from adapters.rabbitmq import declare_topology
from schemas.errors import BrokerConfigError
from schemas.settings import Settings
from schemas.topology import Topology
from tests.integration.conftest import WorkerProcess, finpipe_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def channel(settings: Settings) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    yield conn.channel()
    conn.close()


def exits_within(worker: WorkerProcess, timeout_s: float) -> int:
    """The exit status; a worker still running after ``timeout_s`` (retrying) fails the test."""
    try:
        return worker.proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker was still running after {timeout_s:.0f} s:\n{worker.log()}")


def error_lines(log: str) -> list[str]:
    """The lines that are not the worker's start-up announcements (the extractor, the running
    counts of a new store)."""
    return [line for line in log.splitlines() if "EXTRACTOR" not in line and " INFO " not in line]


def test_a_worker_with_a_wrong_password_exits_at_once_with_one_line(
    settings: Settings, start_worker: Callable[..., WorkerProcess]
) -> None:
    wrong = settings.amqp_url.replace("guest:guest@", "guest:not-the-password@")
    worker = start_worker("--burst", FINPIPE_AMQP_URL=wrong)
    assert exits_within(worker, 15) == 2
    [line] = error_lines(worker.log())
    assert line.startswith("finpipe: configuration error: RabbitMQ refused the login (403")
    assert "FINPIPE_AMQP_URL" in line
    assert "not-the-password" not in worker.log()


def test_a_work_queue_declared_with_other_arguments_is_a_406_in_one_line(
    settings: Settings, channel: pika.adapters.blocking_connection.BlockingChannel
) -> None:
    other = Topology(settings.queue, delivery_limit=settings.delivery_limit + 1)
    channel.queue_declare(settings.queue, durable=True, arguments=other.work_spec().arguments)
    done = finpipe_cli(settings, "worker", "--burst")
    assert done.returncode == 2
    [line] = error_lines(done.stderr)
    assert "406 PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit'" in line
    assert f"rabbitmqctl delete_queue {settings.queue}" in line


def test_classic_retry_queues_of_an_earlier_finpipe_become_quorum_queues_once_empty(
    settings: Settings, channel: pika.adapters.blocking_connection.BlockingChannel
) -> None:
    topology = Topology.for_settings(settings)
    for old in topology.classic_retry_specs():
        channel.queue_declare(old.name, durable=True, arguments=old.arguments)
    waiting = topology.retry_queue(1)
    channel.basic_publish("", waiting, b"a report waiting for its retry")

    done = finpipe_cli(settings, "worker", "--burst")
    assert done.returncode == 2
    migrated, line = error_lines(done.stderr)
    assert f"{topology.retry_queue(0)} was a classic queue; now a quorum queue" in migrated
    assert f"delayed-retry queue '{waiting}' is a classic queue" in line
    assert f"still holds 1 message(s): they return to '{settings.queue}' within 10 s" in line

    channel.queue_purge(waiting)
    declare_topology(channel, topology)
    for spec in topology.retry_specs():  # equivalent arguments now: quorum queues
        channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:  # no longer classic
        channel.queue_declare(waiting, durable=True, arguments={})
    assert err.value.reply_code == 406


def test_declaring_twice_changes_nothing(
    settings: Settings, channel: pika.adapters.blocking_connection.BlockingChannel
) -> None:
    topology = Topology.for_settings(settings)
    declare_topology(channel, topology)
    channel.confirm_delivery()
    channel.basic_publish("", topology.queue, b"{}", pika.BasicProperties(delivery_mode=2))
    declare_topology(channel, topology)
    held = channel.queue_declare(topology.queue, passive=True).method.message_count
    assert held == 1  # the second declare neither purged nor replaced the work queue
    with pytest.raises(BrokerConfigError, match="406"):
        declare_topology(channel, Topology(settings.queue, delivery_limit=99))
