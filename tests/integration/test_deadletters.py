"""The dead-letter queue through ``ops.deadletters`` against the real RabbitMQ."""

from __future__ import annotations

import json

import pika
import pytest

from adapters.rabbitmq import Broker, declare_topology
from ops.deadletters import DeadLetterQueue
from schemas.settings import Settings
from schemas.topology import HEADER_ERROR_KIND, HEADER_REASON

pytestmark = pytest.mark.integration


def dead_letter(settings: Settings, message_id: str, reason: str) -> None:
    broker = Broker.from_settings(settings)
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        ch = conn.channel()
        declare_topology(ch, broker.topology)
        ch.confirm_delivery()
        ch.basic_publish(
            "",
            broker.topology.dead_queue,
            json.dumps({"raw_text": f"text of {message_id}"}).encode(),
            pika.BasicProperties(
                delivery_mode=2,
                message_id=message_id,
                headers={HEADER_REASON: reason, HEADER_ERROR_KIND: "permanent", "keep": "me"},
            ),
        )
    finally:
        conn.close()


def take_work_message(settings: Settings) -> tuple[str, dict[str, object]]:
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        method, props, _body = conn.channel().basic_get(settings.queue, auto_ack=True)
        assert method is not None, "nothing in the work queue"
        return str(props.message_id), dict(props.headers or {})
    finally:
        conn.close()


def test_browsing_keeps_dead_letters_and_replay_moves_only_the_named_one(
    settings: Settings,
) -> None:
    dead_letter(settings, "report-a", "bad amount")
    dead_letter(settings, "report-b", "too large")
    dlq = DeadLetterQueue(settings, Broker.from_settings(settings).dead_letters())

    letters = {d.id: d for d in dlq.letters()}
    assert {k: (d.reason, d.kind, d.preview) for k, d in letters.items()} == {
        "report-a": ("bad amount", "permanent", "text of report-a"),
        "report-b": ("too large", "permanent", "text of report-b"),
    }
    assert dlq.count() == 2  # looking took nothing away
    assert [d.id for d in dlq.find("report-b")] == ["report-b"]

    assert dlq.replay(["report-a"]) == ["report-a"]
    assert dlq.count() == 1
    message_id, headers = take_work_message(settings)
    assert message_id == "report-a"
    headers.pop("x-delivery-count", None)  # the quorum queue's own count of this delivery
    assert headers == {"keep": "me", "x-finpipe-replayed": True}

    assert dlq.purge() == 1
    assert dlq.count() == 0
