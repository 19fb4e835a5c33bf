"""Inspecting and replaying the dead-letter queue.

Browsing takes messages with ``basic_get`` and never acknowledges the ones it only looks at:
closing the channel returns them to the dead-letter queue. Replay publishes a message back to the
work queue with confirms, and only then removes it from the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from ingest.publisher import connect, declare_topology
from schemas.errors import BrokerUnavailable
from schemas.settings import Settings
from schemas.topology import HEADER_ATTEMPT, HEADER_ERROR_KIND, HEADER_REASON, Topology

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    id: str
    reason: str
    kind: str
    dead_at: str | None
    attempts: int
    preview: str
    headers: dict[str, Any]
    body: bytes

    def as_dict(self, *, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "reason": self.reason,
            "kind": self.kind,
            "dead_at": self.dead_at,
            "attempts": self.attempts,
            "preview": self.preview,
        }
        if full:
            out["headers"] = {k: _plain(v) for k, v in self.headers.items()}
            try:
                out["body"] = json.loads(self.body)
            except ValueError:
                out["body"] = self.body.decode("utf-8", errors="replace")
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _describe(method: Any, props: pika.BasicProperties, body: bytes) -> DeadLetter:
    headers = dict(props.headers or {})
    reason = headers.get(HEADER_REASON)
    if reason is None and "x-death" in headers:  # dead-lettered by the broker (delivery limit)
        death = headers["x-death"][0]
        reason = f"{_plain(death.get('reason'))} by the broker from {_plain(death.get('queue'))}"
        if death.get("reason") == "delivery_limit" or "x-delivery-count" in headers:
            reason += " (delivery limit reached)"
    try:
        text = json.loads(body).get("raw_text", "")
    except (ValueError, AttributeError):
        text = body[:200].decode("utf-8", errors="replace")
    return DeadLetter(
        id=str(props.message_id or f"tag-{method.delivery_tag}"),
        reason=str(_plain(reason) or "unknown"),
        kind=str(_plain(headers.get(HEADER_ERROR_KIND, "broker"))),
        dead_at=_plain(headers.get("x-finpipe-dead-at")),
        attempts=int(headers.get(HEADER_ATTEMPT, 0) or 0),
        preview=" ".join(str(text).split())[:100],
        headers=headers,
        body=body,
    )


class DeadLetterQueue:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topology = Topology.for_settings(settings)

    def _channel(self) -> tuple[Any, BlockingChannel]:
        conn = connect(self.settings.amqp_url)
        ch = conn.channel()
        declare_topology(ch, self.topology)
        return conn, ch

    def _browse(self, ch: BlockingChannel, limit: int) -> list[tuple[int, DeadLetter, Any]]:
        taken: list[tuple[int, DeadLetter, Any]] = []
        while len(taken) < limit:
            method, props, body = ch.basic_get(self.topology.dead_queue, auto_ack=False)
            if method is None:
                break
            taken.append((method.delivery_tag, _describe(method, props, body), props))
        return taken

    def count(self) -> int:
        conn, ch = self._channel()
        try:
            ok = ch.queue_declare(self.topology.dead_queue, passive=True)
            return int(ok.method.message_count)
        finally:
            conn.close()

    def letters(self, limit: int = 1000) -> list[DeadLetter]:
        conn, ch = self._channel()
        try:
            return [d for _, d, _ in self._browse(ch, limit)]
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(f"cannot read the dead-letter queue: {exc!r}") from exc
        finally:
            conn.close()  # unacknowledged: every message goes back

    def replay(self, ids: Iterable[str] | None) -> list[str]:
        """Re-queue the dead letters with these ids (all when ``ids`` is None); return the ids."""
        wanted = None if ids is None else set(ids)
        conn, ch = self._channel()
        pub = conn.channel()
        pub.confirm_delivery()
        replayed: list[str] = []
        try:
            for tag, dead, props in self._browse(ch, 1_000_000):
                if wanted is not None and dead.id not in wanted:
                    continue
                headers = {
                    k: v
                    for k, v in dead.headers.items()
                    if not k.startswith(("x-finpipe-", "x-death", "x-first-death", "x-last-death"))
                    and k != "x-delivery-count"
                }
                headers["x-finpipe-replayed"] = True
                pub.basic_publish(
                    "",
                    self.topology.queue,
                    dead.body,
                    pika.BasicProperties(
                        delivery_mode=pika.DeliveryMode.Persistent,
                        content_type=props.content_type,
                        message_id=props.message_id,
                        type=props.type,
                        headers=headers,
                    ),
                    mandatory=True,
                )
                ch.basic_ack(tag)
                replayed.append(dead.id)
                log.info("dead letter %s replayed into %s", dead.id[:12], self.topology.queue)
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(f"replay interrupted: {exc!r}") from exc
        finally:
            conn.close()
        return replayed

    def purge(self) -> int:
        conn, ch = self._channel()
        try:
            ok = ch.queue_purge(self.topology.dead_queue)
            return int(ok.method.message_count)
        finally:
            conn.close()
