"""The worker's RabbitMQ loop: the only pika import on the worker side.

The connection lives on the main thread, which only receives deliveries, decides batches, and
settles them: ack, delayed retry, or dead letter. Extraction and storage run in a thread pool; their
results come back through ``add_callback_threadsafe`` so heartbeats keep flowing while a model call
takes its time. A message is acknowledged only after its facts were written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import FrameType
from typing import Any

import pika
import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pydantic import ValidationError

from ingest.publisher import connect, declare_topology
from schemas.errors import BrokerUnavailable, ModelConfigError
from schemas.message import ReportMessage
from schemas.settings import Settings
from schemas.topology import HEADER_ATTEMPT, HEADER_ERROR_KIND, HEADER_REASON, Topology
from worker.batching import BatchBuffer
from worker.pipeline import Outcome, Pipeline
from worker.snippets import has_amount, split_snippets

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    tag: int
    report: ReportMessage
    properties: pika.spec.BasicProperties
    body: bytes
    snippets: int


def batch_budget(batch_snippets: int, attempt: int) -> int:
    """Snippets per batch for messages on their ``attempt``-th delayed retry: halved each time,
    so a report that always fails ends up alone and cannot hold back the others."""
    return max(1, batch_snippets >> attempt)


@dataclass
class _Batch:
    deliveries: list[Delivery]
    generation: int


class Consumer:
    """Consume reports until stopped. ``run()`` returns the process exit code."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        *,
        on_dead: Callable[[str, str], None] | None = None,
        on_retry: Callable[[str, str, int], None] | None = None,
        burst: bool = False,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.topology = Topology.for_settings(settings)
        self.on_dead = on_dead
        self.on_retry = on_retry
        self.burst = burst
        self._pool = ThreadPoolExecutor(settings.llm_concurrency, thread_name_prefix="extract")
        self._conn: BlockingConnection | None = None
        self._ch: BlockingChannel | None = None
        self._pub: BlockingChannel | None = None
        self._tag: str | None = None
        self._generation = 0
        # one buffer per retry attempt (0: fresh messages), each with its own batch budget
        self._buffers: dict[int, BatchBuffer[Delivery]] = {}
        self._in_flight: dict[int, _Batch] = {}
        self._stopping = threading.Event()
        self._signals = 0
        self._fatal: BaseException | None = None
        self.stats = {"acked": 0, "retried": 0, "dead": 0, "facts": 0}

    # -- lifecycle ------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting now; unacknowledged messages return to the queue")
            os._exit(130)
        log.info("signal %d: finishing the batch in hand, then exiting (again to force)", signum)
        self.stop()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> int:
        backoff = 0.5
        while True:
            try:
                self._connect()
                backoff = 0.5
                self._loop()
                self._close()
                self._pool.shutdown(wait=True)
                log.info(
                    "worker stopped: %d acked, %d retried, %d dead-lettered, %d facts stored",
                    self.stats["acked"],
                    self.stats["retried"],
                    self.stats["dead"],
                    self.stats["facts"],
                )
                return 3 if self._fatal is not None else 0
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._lost(exc)
            except BrokerUnavailable as exc:
                log.warning("%s", exc)
            if self._stopping.is_set():
                self._pool.shutdown(wait=True)
                return 0
            log.info("reconnecting to RabbitMQ in %.1f s", backoff)
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def _connect(self) -> None:
        self._conn = connect(self.settings.amqp_url)
        ch = self._conn.channel()
        declare_topology(ch, self.topology)
        ch.basic_qos(prefetch_count=self.settings.prefetch)
        pub = self._conn.channel()
        pub.confirm_delivery()
        self._ch, self._pub = ch, pub
        self._generation += 1
        self._tag = ch.basic_consume(self.topology.queue, self._on_message, auto_ack=False)
        log.info(
            "consuming %s (prefetch %d, batch %d snippets or %d ms, %d extraction thread(s))",
            self.topology.queue,
            self.settings.prefetch,
            self.settings.batch_snippets,
            self.settings.batch_wait_ms,
            self.settings.llm_concurrency,
        )

    def _lost(self, exc: BaseException) -> None:
        log.warning(
            "RabbitMQ connection lost (%r); %d buffered and %d in-flight message(s) will be "
            "redelivered by the broker",
            exc,
            self._buffered(),
            sum(len(b.deliveries) for b in self._in_flight.values()),
        )
        # Their delivery tags die with the channel; results that come back later are dropped,
        # and the broker redelivers the messages (storage is idempotent).
        self._buffers.clear()
        self._in_flight.clear()
        conn, self._conn, self._ch, self._pub = self._conn, None, None, None
        if conn is not None and conn.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                conn.close()

    def _close(self) -> None:
        if self._conn is not None and self._conn.is_open:
            self._conn.close()
        self._conn = self._ch = self._pub = None

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        assert self._conn is not None and self._ch is not None
        cancelled = False
        idle_since = time.monotonic()
        while True:
            self._conn.process_data_events(time_limit=0.02)
            now = time.monotonic()
            if self._stopping.is_set() and not cancelled:
                if self._tag is not None:
                    self._ch.basic_cancel(self._tag)
                cancelled = True
            if self._fatal is not None:
                for buf in self._buffers.values():  # not processed: back to the queue
                    for batch in buf.take(now, force=True):
                        for d in batch:
                            self._ch.basic_nack(d.tag, requeue=True)
            else:
                for buf in self._buffers.values():
                    free = self.settings.llm_concurrency - len(self._in_flight)
                    if cancelled:
                        batches = buf.take(now, force=True)
                    elif free > 0:
                        batches = buf.take(now, max_batches=free)
                    else:
                        break
                    for batch in batches:
                        self._dispatch(batch)
            if self._buffered() or self._in_flight:
                idle_since = now
            if cancelled and not self._buffered() and not self._in_flight:
                return
            if self.burst and now - idle_since > max(1.0, self.settings.batch_wait_ms / 500):
                self.stop()

    def _on_message(
        self,
        ch: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        tag = method.delivery_tag
        if len(body) > self.settings.max_report_bytes + 64_000:
            self._dead(
                tag,
                properties,
                body,
                f"message of {len(body)} bytes is over the limit "
                f"(FINPIPE_MAX_REPORT_BYTES={self.settings.max_report_bytes})",
                "too_large",
            )
            return
        try:
            report = ReportMessage.from_body(body)
        except (ValidationError, ValueError) as exc:
            reason = _short_validation(exc)
            self._dead(tag, properties, body, f"undecodable message: {reason}", "invalid_message")
            return
        if len(report.raw_text.encode("utf-8")) > self.settings.max_report_bytes:
            self._dead(
                tag,
                properties,
                body,
                "report text is over the limit "
                f"(FINPIPE_MAX_REPORT_BYTES={self.settings.max_report_bytes})",
                "too_large",
                report.report_id,
            )
            return
        n = sum(1 for s in split_snippets(report.raw_text) if has_amount(s))
        attempt = int((properties.headers or {}).get(HEADER_ATTEMPT, 0) or 0)
        buf = self._buffers.get(attempt)
        if buf is None:
            budget = batch_budget(self.settings.batch_snippets, attempt)
            buf = BatchBuffer(
                max_items=budget,
                max_chars=budget,
                wait_ms=self.settings.batch_wait_ms,
                size=lambda d: max(d.snippets, 1),
            )
            self._buffers[attempt] = buf
        buf.add(Delivery(tag, report, properties, body, n), time.monotonic())

    def _buffered(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def _dispatch(self, taken: list[Delivery]) -> None:
        batch = _Batch(taken, self._generation)
        key = id(batch)
        self._in_flight[key] = batch
        future = self._pool.submit(self.pipeline.process, [d.report for d in taken])
        conn = self._conn
        assert conn is not None
        future.add_done_callback(lambda f: _threadsafe(conn, partial(self._settle, key, batch, f)))

    def _settle(self, key: int, batch: _Batch, future: Future[dict[str, Outcome]]) -> None:
        if batch.generation != self._generation or key not in self._in_flight:
            return  # the channel these tags belong to is gone; the broker redelivers them
        del self._in_flight[key]
        try:
            outcomes = future.result()
        except ModelConfigError as exc:
            log.error("stopping the worker: %s", exc)
            self._fatal = exc
            self.stop()
            assert self._ch is not None
            for d in batch.deliveries:
                self._ch.basic_nack(d.tag, requeue=True)
            return
        except Exception as exc:
            log.error(
                "batch of %d report(s) failed unexpectedly; retrying later",
                len(batch.deliveries),
                exc_info=exc,
            )
            outcomes = {
                d.report.report_id: Outcome("retry", reason=repr(exc)) for d in batch.deliveries
            }
        assert self._ch is not None
        for d in batch.deliveries:
            out = outcomes.get(d.report.report_id) or Outcome("retry", reason="no outcome")
            if out.action == "ack":
                self._ch.basic_ack(d.tag)
                self.stats["acked"] += 1
                self.stats["facts"] += out.facts
            elif out.action == "retry":
                self._retry(d, out.reason or "transient failure", out.retry_after_s)
            else:
                self._dead(
                    d.tag,
                    d.properties,
                    d.body,
                    out.reason or "rejected",
                    "permanent",
                    d.report.report_id,
                )

    # -- retry and dead letters -----------------------------------------------------------------
    def _retry(self, d: Delivery, reason: str, retry_after_s: float | None = None) -> None:
        headers = dict(d.properties.headers or {})
        attempt = int(headers.get(HEADER_ATTEMPT, 0)) + 1
        step = self.topology.retry_step(attempt, at_least_s=retry_after_s)
        if step is None:
            self._dead(
                d.tag,
                d.properties,
                d.body,
                f"gave up after {attempt - 1} delayed retries: {reason}",
                "retries_exhausted",
                d.report.report_id,
            )
            return
        headers.update({HEADER_ATTEMPT: attempt, HEADER_REASON: reason[:500]})
        self._republish("", self.topology.retry_queue(step), d.properties, d.body, headers)
        assert self._ch is not None
        self._ch.basic_ack(d.tag)
        self.stats["retried"] += 1
        if self.on_retry is not None:  # off this thread: the database may be what is down
            self._pool.submit(self.on_retry, d.report.report_id, reason, attempt)
        log.warning(
            "report %s: attempt %d failed (%s); retrying in %d s",
            d.report.report_id[:12],
            attempt,
            reason,
            self.topology.retry_delays_s[step],
        )

    def _dead(
        self,
        tag: int,
        properties: pika.spec.BasicProperties,
        body: bytes,
        reason: str,
        kind: str,
        report_id: str | None = None,
    ) -> None:
        headers = dict(properties.headers or {})
        headers.update(
            {
                HEADER_REASON: reason[:1000],
                HEADER_ERROR_KIND: kind,
                "x-finpipe-dead-at": datetime.now(UTC).isoformat(),
            }
        )
        self._republish(self.topology.dlx, self.topology.dead_queue, properties, body, headers)
        assert self._ch is not None
        self._ch.basic_ack(tag)
        self.stats["dead"] += 1
        log.warning(
            "message %s dead-lettered: %s",
            (report_id or str(properties.message_id or "?"))[:12],
            reason,
        )
        if report_id and self.on_dead is not None:  # off this thread, like on_retry
            self._pool.submit(self.on_dead, report_id, reason)

    def _republish(
        self,
        exchange: str,
        routing_key: str,
        properties: pika.spec.BasicProperties,
        body: bytes,
        headers: dict[str, Any],
    ) -> None:
        assert self._pub is not None
        props = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type=properties.content_type,
            message_id=properties.message_id,
            type=properties.type,
            headers=headers,
        )
        # Confirmed before the original is acked: at-least-once into the retry or dead queue.
        self._pub.basic_publish(exchange, routing_key, body, props, mandatory=True)


def _threadsafe(conn: BlockingConnection, fn: Callable[[], None]) -> None:
    # If the connection is already gone the messages are redelivered by the broker.
    with contextlib.suppress(pika.exceptions.AMQPError, OSError, RuntimeError):
        conn.add_callback_threadsafe(fn)


def _short_validation(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors()[:3]:
            loc = ".".join(str(x) for x in e["loc"]) or "body"
            parts.append(f"{loc}: {e['msg']}")
        return "; ".join(parts)
    return str(exc)[:300]
