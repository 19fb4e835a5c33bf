"""Inspecting and replaying the dead-letter queue: what a dead letter says, and which ones go back.

The queue itself is the adapter's (``adapters.rabbitmq.DeadLetterBox``): browsing
never removes a message, and a replayed message leaves the dead-letter queue only once the work
queue confirmed it.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from adapters.rabbitmq import Broker, DeadLetterBox, Incoming
from schemas.settings import Settings
from schemas.topology import (
    HEADER_DEAD_AT,
    HEADER_DELIVERY_COUNT,
    HEADER_ERROR_KIND,
    HEADER_PREFIX,
    HEADER_REASON,
    HEADER_REPLAYED,
    attempt_of,
)

log = logging.getLogger(__name__)

#: headers a replayed message sheds: our verdict and the broker's death records
_VERDICT_HEADERS = (HEADER_PREFIX, "x-death", "x-first-death", "x-last-death")


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
            except (ValueError, RecursionError):
                out["body"] = self.body.decode("utf-8", errors="replace")
        return out


def _plain(value: Any) -> Any:
    """A header value as JSON can hold it: headers come from the broker, so any AMQP type
    (bytes, timestamps, decimals, nested tables) may stand anywhere."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(_plain(value))


def _broker_reason(headers: dict[str, Any]) -> str | None:
    """The reason in the broker's own death record (``x-death``), if there is a readable one."""
    deaths = headers.get("x-death")
    death = deaths[0] if isinstance(deaths, list) and deaths else None
    if not isinstance(death, dict):
        return None
    reason = f"{_text(death.get('reason'))} by the broker from {_text(death.get('queue'))}"
    if death.get("reason") == "delivery_limit" or HEADER_DELIVERY_COUNT in headers:
        reason += " (delivery limit reached)"
    return reason


def _preview(body: bytes) -> str:
    try:
        text = json.loads(body).get("raw_text", "")
    except (ValueError, AttributeError, RecursionError):
        text = body[:200].decode("utf-8", errors="replace")
    return " ".join(str(text)[:1000].split())[:100]


def describe(message: Incoming) -> DeadLetter:
    """What a dead letter says: our reason header, or the broker's death record. Nothing read
    from the message is trusted: a malformed header is shown as it is, never raised on."""
    headers = message.headers
    reason = _text(headers.get(HEADER_REASON)) or _broker_reason(headers)
    attempts = attempt_of(headers)
    if isinstance(attempts, str):  # say so, unless the reason already does
        if attempts not in (reason or ""):
            reason = f"{reason or 'unknown'} ({attempts})"
        attempts = 0
    return DeadLetter(
        id=message.message_id or f"tag-{message.tag}",
        reason=reason or "unknown",
        kind=_text(headers.get(HEADER_ERROR_KIND)) or "broker",
        dead_at=_text(headers.get(HEADER_DEAD_AT)),
        attempts=attempts,
        preview=_preview(message.body),
        headers=headers,
        body=message.body,
    )


def replay_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """A replayed message's headers: the original ones without the verdict, marked replayed."""
    kept = {
        k: v
        for k, v in headers.items()
        if not k.startswith(_VERDICT_HEADERS) and k != HEADER_DELIVERY_COUNT
    }
    kept[HEADER_REPLAYED] = True
    return kept


class DeadLetterQueue:
    """The dead letters of the work queue that ``settings`` name (through ``box`` if given)."""

    def __init__(self, settings: Settings, box: DeadLetterBox | None = None) -> None:
        self.settings = settings
        self.box = box or Broker.from_settings(settings).dead_letters()

    def count(self) -> int:
        return self.box.count()

    def letters(self, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        """Up to ``limit`` dead letters (all by default) after the first ``offset``, oldest
        first: one page of ``finpipe dlq list``."""
        end = None if limit is None else offset + limit
        return [describe(m) for m in itertools.islice(self.box.browse(end), offset, end)]

    def find(self, prefix: str) -> list[DeadLetter]:
        """The dead letters whose id starts with ``prefix``, wherever they are in the queue (the
        queue is read through; only the matching ones are kept)."""
        return [d for d in map(describe, self.box.browse()) if d.id.startswith(prefix)]

    def replay(self, ids: Iterable[str] | None) -> list[str]:
        """Re-queue the dead letters with these ids (all when ``ids`` is None); return the ids."""
        wanted = None if ids is None else set(ids)

        def headers_for(message: Incoming) -> dict[str, Any] | None:
            dead = describe(message)
            if wanted is not None and dead.id not in wanted:
                return None
            return replay_headers(message.headers)

        replayed = [describe(m).id for m in self.box.replay(headers_for)]
        for rid in replayed:
            log.info("dead letter %s replayed into %s", rid[:12], self.box.topology.queue)
        return replayed

    def purge(self) -> int:
        return self.box.purge()
