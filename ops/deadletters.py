"""Inspecting and replaying the dead-letter queue: what a dead letter says, and which ones go back.

The queue itself is the adapter's (``adapters.rabbitmq.DeadLetterBox``): browsing never removes a
message, and a replayed message leaves the dead-letter queue only once the work queue confirmed it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapters.rabbitmq import Broker, DeadLetterBox, Incoming
from schemas.settings import Settings
from schemas.topology import HEADER_ATTEMPT, HEADER_ERROR_KIND, HEADER_REASON

log = logging.getLogger(__name__)

#: headers a replayed message sheds: our verdict and the broker's death records
_VERDICT_HEADERS = ("x-finpipe-", "x-death", "x-first-death", "x-last-death")


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


def describe(message: Incoming) -> DeadLetter:
    """What a dead letter says: our reason header, or the broker's death record."""
    headers = message.headers
    reason = headers.get(HEADER_REASON)
    if reason is None and "x-death" in headers:  # dead-lettered by the broker (delivery limit)
        death = headers["x-death"][0]
        reason = f"{_plain(death.get('reason'))} by the broker from {_plain(death.get('queue'))}"
        if death.get("reason") == "delivery_limit" or "x-delivery-count" in headers:
            reason += " (delivery limit reached)"
    try:
        text = json.loads(message.body).get("raw_text", "")
    except (ValueError, AttributeError):
        text = message.body[:200].decode("utf-8", errors="replace")
    return DeadLetter(
        id=message.message_id or f"tag-{message.tag}",
        reason=str(_plain(reason) or "unknown"),
        kind=str(_plain(headers.get(HEADER_ERROR_KIND, "broker"))),
        dead_at=_plain(headers.get("x-finpipe-dead-at")),
        attempts=int(headers.get(HEADER_ATTEMPT, 0) or 0),
        preview=" ".join(str(text).split())[:100],
        headers=headers,
        body=message.body,
    )


def replay_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """A replayed message's headers: the original ones without the verdict, marked replayed."""
    kept = {
        k: v
        for k, v in headers.items()
        if not k.startswith(_VERDICT_HEADERS) and k != "x-delivery-count"
    }
    kept["x-finpipe-replayed"] = True
    return kept


class DeadLetterQueue:
    """The dead letters of the work queue that ``settings`` name (through ``box`` if given)."""

    def __init__(self, settings: Settings, box: DeadLetterBox | None = None) -> None:
        self.settings = settings
        self.box = box or Broker.from_settings(settings).dead_letters()

    def count(self) -> int:
        return self.box.count()

    def letters(self, limit: int = 1000) -> list[DeadLetter]:
        return [describe(m) for m in self.box.browse(limit)]

    def find(self, prefix: str) -> list[DeadLetter]:
        """The dead letters whose id starts with ``prefix``."""
        return [d for d in self.letters() if d.id.startswith(prefix)]

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
