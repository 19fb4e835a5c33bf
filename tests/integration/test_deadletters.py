"""The dead-letter queue through ``ops.deadletters`` against the real RabbitMQ."""

from __future__ import annotations

import json

import pika
import pytest
from click.testing import CliRunner

from adapters.rabbitmq import Broker, declare_topology
from finpipe.cli import cli
from ops.deadletters import DeadLetterQueue
from schemas.settings import Settings
from schemas.topology import HEADER_ERROR_KIND, HEADER_REASON

pytestmark = pytest.mark.integration


def dead_letter(settings: Settings, message_id: str, reason: str) -> None:
    dead_letters(settings, [message_id], reason)


def dead_letters(settings: Settings, message_ids: list[str], reason: str) -> None:
    broker = Broker.from_settings(settings)
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        ch = conn.channel()
        declare_topology(ch, broker.topology)
        ch.confirm_delivery()
        for message_id in message_ids:
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


def test_dlq_list_says_the_true_total_and_pages_through_every_letter_and_show_finds_any(
    settings: Settings,
) -> None:
    ids = [f"report-{n:05d}" for n in range(1_203)]
    dead_letters(settings, ids, "bad amount")
    env = {
        "FINPIPE_AMQP_URL": settings.amqp_url,
        "FINPIPE_MONGO_URI": settings.mongo_uri,
        "FINPIPE_MONGO_DB": settings.mongo_db,
        "FINPIPE_QUEUE": settings.queue,
    }
    listed: list[str] = []
    for offset in (0, 1000):
        page = CliRunner().invoke(cli, ["dlq", "list", "--offset", str(offset)], env=env)
        assert page.exit_code == 0, page.output
        listed += [line.split()[0] for line in page.stdout.splitlines()]
        assert f"of 1203 dead letter(s) in {settings.queue}.dead" in page.stderr
    assert listed == [i[:16] for i in ids]
    assert "showing 1-1000 of 1203" in CliRunner().invoke(cli, ["dlq", "list"], env=env).stderr

    shown = CliRunner().invoke(cli, ["dlq", "show", "report-01202"], env=env)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == "report-01202"
    assert DeadLetterQueue(settings).count() == 1_203
