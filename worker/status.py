"""The operator's view: services reachable, queue depth and consumers, dead letters, reports by
status, facts stored, last sweep and last export. Also ``wait_for_drain`` for the scheduler.

The pika part is ``queue_depth`` (a passive ``queue_declare`` on a channel it is given);
``format_status`` is pure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions

from schemas.settings import Settings, redact_url
from schemas.topology import Topology
from worker import export_source
from worker.export import iso_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueDepth:
    """A queue as the broker reports it: ``messages`` are ready (not yet delivered) messages."""

    name: str
    exists: bool
    messages: int = 0
    consumers: int = 0


def queue_depth(channel: Any, name: str) -> QueueDepth:
    """Passive ``queue_declare``: reads the depth without creating the queue. A missing queue
    closes the channel (404), so use a fresh channel per call."""
    try:
        ok = channel.queue_declare(queue=name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return QueueDepth(name, exists=False)
        raise
    return QueueDepth(name, True, int(ok.method.message_count), int(ok.method.consumer_count))


def _parameters(settings: Settings, timeout_s: float) -> pika.URLParameters:
    params = pika.URLParameters(settings.amqp_url)
    params.connection_attempts = 1
    params.retry_delay = 0
    params.socket_timeout = timeout_s
    params.stack_timeout = timeout_s * 2
    params.blocked_connection_timeout = timeout_s
    return params


def read_queues(settings: Settings, *, timeout_s: float = 3.0) -> list[QueueDepth]:
    """The work queue and its dead-letter queue; raises pika's errors when the broker is down."""
    topo = Topology(settings.queue)
    conn = pika.BlockingConnection(_parameters(settings, timeout_s))
    try:
        out = []
        for name in (topo.queue, topo.dead_queue):
            ch = conn.channel()
            out.append(queue_depth(ch, name))
            if ch.is_open:
                ch.close()
        return out
    finally:
        if conn.is_open:
            conn.close()


def wait_for_drain(
    settings: Settings,
    timeout_s: float,
    *,
    poll_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll the work queue until it holds no ready message (True) or ``timeout_s`` passes (False).
    A queue that does not exist holds nothing. Broker errors are logged and polling goes on.
    Messages a worker holds unacknowledged are not counted by the broker's passive declare."""
    deadline = clock() + timeout_s
    while True:
        try:
            work = read_queues(settings)[0]
        except pika.exceptions.AMQPError as exc:
            log.warning(
                "drain check: broker unreachable at %s (%r)", redact_url(settings.amqp_url), exc
            )
        else:
            if work.messages == 0:
                log.info("drain check: queue %s is empty", work.name)
                return True
            log.info("drain check: queue %s holds %d message(s)", work.name, work.messages)
        remaining = deadline - clock()
        if remaining <= 0:
            log.warning("drain check: queue %s not drained after %.0f s", settings.queue, timeout_s)
            return False
        sleep(min(poll_s, remaining))


def _when(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {k: (iso_utc(v) if isinstance(v, datetime) else v) for k, v in doc.items()}


def gather_status(settings: Settings, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything ``finpipe status`` shows, as JSON-ready data. Never raises for an unreachable
    service: it is reported as such."""
    now = now or datetime.now(UTC)
    status: dict[str, Any] = {
        "checked_at": iso_utc(now),
        "services": {},
        "queue": None,
        "dead_letters": None,
        "reports": None,
        "facts_stored": None,
        "model": None,
        "last_sweep": None,
        "last_export": None,
    }
    try:
        work, dead = read_queues(settings)
    except pika.exceptions.AMQPError as exc:
        status["services"]["rabbitmq"] = {
            "reachable": False,
            "url": redact_url(settings.amqp_url),
            "error": repr(exc),
        }
    else:
        status["services"]["rabbitmq"] = {
            "reachable": True,
            "url": redact_url(settings.amqp_url),
            "error": None,
        }
        status["queue"] = asdict(work)
        status["dead_letters"] = asdict(dead)

    client = export_source.connect(settings, timeout_ms=3000)
    try:
        db = export_source.database(client, settings)
        db.command("ping")
        status["reports"] = export_source.report_counts(db)
        status["facts_stored"] = export_source.facts_stored(db)
        status["model"] = export_source.usage_totals(db)
        status["last_sweep"] = _when(export_source.last_run(db, "last_sweep"))
        status["last_export"] = _when(export_source.last_run(db, "last_export"))
    except Exception as exc:  # any failure here means the database is not usable
        status["services"]["mongodb"] = {
            "reachable": False,
            "url": redact_url(settings.mongo_uri),
            "database": settings.mongo_db,
            "error": str(exc).splitlines()[0] if str(exc) else repr(exc),
        }
    else:
        status["services"]["mongodb"] = {
            "reachable": True,
            "url": redact_url(settings.mongo_uri),
            "database": settings.mongo_db,
            "error": None,
        }
    finally:
        client.close()
    return status


def healthy(status: dict[str, Any]) -> bool:
    return all(s.get("reachable") for s in status["services"].values())


def format_status(status: dict[str, Any]) -> str:
    """A short report for a person at a terminal."""
    lines = [f"finpipe status at {status['checked_at']}"]
    for name, svc in status["services"].items():
        state = "reachable" if svc["reachable"] else f"UNREACHABLE ({svc['error']})"
        lines.append(f"  {name:<13} {svc['url']}  {state}")
    q, d = status["queue"], status["dead_letters"]
    if q is not None:
        if q["exists"]:
            waiting = f"{q['messages']} waiting, {q['consumers']} consumer(s)"
            lines.append(f"  queue         {q['name']}: {waiting}")
        else:
            lines.append(f"  queue         {q['name']}: not declared yet")
    if d is not None:
        shown = f"{d['messages']} message(s)" if d["exists"] else "not declared yet"
        lines.append(f"  dead letters  {d['name']}: {shown}")
    r = status["reports"]
    if r is not None:
        by = ", ".join(f"{k} {v}" for k, v in r.items() if k != "received")
        lines.append(f"  reports       {r['received']} received: {by}")
    if status["facts_stored"] is not None:
        lines.append(f"  facts stored  {status['facts_stored']}")
    m = status.get("model")
    if m is not None:
        cost = m["estimated_cost_usd"]
        if m["model_calls"] == 0:
            shown_cost = "$0"
        else:
            shown_cost = "unknown" if cost is None else f"${cost:.4f}"
        lines.append(
            f"  model calls   {m['model_calls']} ({m['prompt_tokens']} prompt + "
            f"{m['completion_tokens']} completion tokens, {m['cached_tokens']} cached), "
            f"{m['cache_hits']} cache hit(s), estimated cost {shown_cost}"
        )
    for key, label in (("last_sweep", "last sweep"), ("last_export", "last export")):
        run = status[key]
        if run is None:
            shown = "never" if status["reports"] is not None else "unknown"
        else:
            extra = run.get("path") or run.get("files") or ""
            shown = f"{run.get('at', '?')} {extra}".rstrip()
        lines.append(f"  {label:<13} {shown}")
    return "\n".join(lines) + "\n"
