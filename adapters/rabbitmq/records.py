"""What the RabbitMQ adapter hands out (a message taken from a queue, a queue's depth) and the
properties of what it publishes, as the keyword arguments of pika's ``BasicProperties``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.message import ReportMessage

#: AMQP's delivery mode of a message written to disk
PERSISTENT = 2


@dataclass(frozen=True)
class Incoming:
    """A message taken from a queue, as the code deciding its fate sees it."""

    tag: int
    body: bytes
    headers: dict[str, Any]
    message_id: str | None = None
    content_type: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class QueueDepth:
    """A queue as the broker reports it: ``messages`` are ready (not yet delivered) messages."""

    name: str
    exists: bool
    messages: int = 0
    consumers: int = 0


def incoming(tag: int, props: Any, body: bytes) -> Incoming:
    """The ``Incoming`` of a message received with ``props`` (pika's ``BasicProperties``)."""
    return Incoming(
        tag,
        body,
        dict(props.headers or {}),
        None if props.message_id is None else str(props.message_id),
        props.content_type,
        props.type,
    )


def report_properties(msg: ReportMessage, headers: Mapping[str, Any]) -> dict[str, Any]:
    """A report published by finpipe: persistent, JSON, its id, with ``headers``."""
    return {
        "delivery_mode": PERSISTENT,
        "content_type": "application/json",
        "message_id": msg.report_id,
        "type": "report",
        "headers": {**headers, "schema_version": msg.schema_version},
    }


def republished(like: Incoming, headers: dict[str, Any]) -> dict[str, Any]:
    """A message published again (retry, dead letter, replay): persistent, with new ``headers``."""
    return {
        "delivery_mode": PERSISTENT,
        "content_type": like.content_type,
        "message_id": like.message_id,
        "type": like.type,
        "headers": headers,
    }
