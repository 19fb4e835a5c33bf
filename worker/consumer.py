"""The worker's consume loop: deliveries gathered into lots (the reports handed to the pipeline at
once), each lot extracted in a thread pool, each message settled: ack, delayed retry, dead letter
or hand back. What to do with a message is decided in ``worker.settling`` (pure); the broker calls
go through a session (``worker.session.Session``: ``adapters.rabbitmq`` in production,
``adapters.stub_session`` in tests).

The connection lives on the main thread, which only receives deliveries, decides lots, and
settles them. Extraction and storage run in a thread pool; their results come back through the
session's ``call_threadsafe`` so heartbeats keep flowing while a model call takes its time. A
message is acknowledged only after its facts were written.
"""

from __future__ import annotations

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

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from adapters import metrics
from adapters.rabbitmq import Incoming
from schemas.errors import BrokerUnavailable, ModelConfigError
from schemas.message import ReportMessage
from schemas.settings import Settings
from schemas.topology import HEADER_PREFILLED
from worker.admission import Refused, admit
from worker.packing import BatchBuffer
from worker.pipeline import Outcome, Pipeline
from worker.session import Session, Sessions
from worker.settling import (
    Ack,
    DeadLetter,
    HandBack,
    Retry,
    dead_headers,
    handback_headers,
    retry_headers,
    settle,
)
from worker.snippets import has_amount, split_snippets

log = logging.getLogger(__name__)

#: the longest the consume loop waits on the broker when nothing is due
IDLE_WAIT_S = 0.25


def _nothing() -> None:
    """A callback that only ends the consume loop's wait."""


@dataclass
class Delivery:
    message: Incoming
    report: ReportMessage
    snippets: int
    attempt: int = 0
    #: the nightly batch step put this report's answers in the extraction cache
    prefilled: bool = False


def lot_budget(batch_snippets: int, attempt: int) -> int:
    """Snippets per lot for messages on their ``attempt``-th delayed retry: halved each time,
    so a report that always fails ends up alone and cannot hold back the others."""
    return max(1, batch_snippets >> attempt)


@dataclass
class _Lot:
    """Deliveries handed to the pipeline at once, taken on session number ``generation``."""

    deliveries: list[Delivery]
    generation: int


class Consumer:
    """Consume reports until stopped. ``run()`` returns the process exit code."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        broker: Sessions,
        *,
        on_dead: Callable[[str, str], None] | None = None,
        on_retry: Callable[[str, str, int], None] | None = None,
        burst: bool = False,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.broker = broker
        self.topology = broker.topology
        self.on_dead = on_dead
        self.on_retry = on_retry
        self.burst = burst
        self._pool = ThreadPoolExecutor(settings.llm_concurrency, thread_name_prefix="extract")
        # report-status hooks get a thread of their own: while the database is down each one
        # waits out its timeout, and extraction must not wait behind them
        self._hooks = ThreadPoolExecutor(1, thread_name_prefix="status")
        self._session: Session | None = None
        self._generation = 0
        # one buffer per retry attempt (0: fresh messages), each with its own lot budget
        self._buffers: dict[int, BatchBuffer[Delivery]] = {}
        self._in_flight: dict[int, _Lot] = {}
        self._stopping = threading.Event()
        self._signals = 0
        self._fatal: BaseException | None = None
        self.stats = {"acked": 0, "retried": 0, "dead": 0, "facts": 0, "handed_back": 0}

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
        self._stopping.set()  # no wake-up from a signal handler: the loop sees it within 0.25 s
        # calls waiting for the rate limit stop waiting now (an Event of their own, not pika's)
        self.pipeline.interrupt()

    def stop(self) -> None:
        self._stopping.set()
        self.pipeline.interrupt()
        session = self._session
        if session is not None:  # end the loop's wait on the broker now
            session.call_threadsafe(_nothing)

    def _shutdown(self) -> None:
        self._pool.shutdown(wait=True)
        self._hooks.shutdown(wait=True)

    def run(self) -> int:
        """Consume until stopped; after a lost connection, connect again. Exit code 3 when the
        model API refused our configuration, else 0."""
        while True:
            try:
                self._reconnecting()(self._connect)
            except BrokerUnavailable:  # stopped while the broker was unreachable
                self._shutdown()
                return 0
            try:
                self._loop()
                self._close()
            except BrokerUnavailable as exc:
                self._lost(exc)
                if self._stopping.is_set():
                    self._shutdown()
                    return 0
                continue
            self._shutdown()
            log.info(
                "worker stopped: %d acked, %d retried, %d dead-lettered, %d handed back, "
                "%d facts stored",
                self.stats["acked"],
                self.stats["retried"],
                self.stats["dead"],
                self.stats["handed_back"],
                self.stats["facts"],
            )
            return 3 if self._fatal is not None else 0

    def _reconnecting(self) -> Retrying:
        """Connect attempts 0.5 s apart, doubling up to 5 s, until connected or stopped."""
        return Retrying(
            retry=retry_if_exception_type(BrokerUnavailable),
            wait=wait_exponential(multiplier=0.5, max=5.0),
            stop=lambda _state: self._stopping.is_set(),
            sleep=self._pause,
            before_sleep=_log_reconnect,
            reraise=True,
        )

    def _pause(self, seconds: float) -> None:
        """Sleep between connect attempts; a stop request ends it at once."""
        self._stopping.wait(seconds)

    def _connect(self) -> None:
        session = self.broker.consumer(prefetch=self.settings.prefetch, on_message=self._on_message)
        session.open()
        self._session = session
        self._generation += 1
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
            "RabbitMQ connection lost (%s); %d buffered and %d in-flight message(s) will be "
            "redelivered by the broker",
            exc,
            self._buffered(),
            sum(len(lot.deliveries) for lot in self._in_flight.values()),
        )
        # Their delivery tags die with the channel; results that come back later are dropped,
        # and the broker redelivers the messages (storage is idempotent).
        self._buffers.clear()
        self._in_flight.clear()
        metrics.batches_in_flight(0)
        session, self._session = self._session, None
        if session is not None:
            session.abandon()

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        session = self._session
        assert session is not None
        cancelled = False
        idle_since = time.monotonic()
        while True:
            session.poll(self._wait_s(time.monotonic()))
            now = time.monotonic()
            if self._stopping.is_set() and not cancelled:
                session.cancel()
                cancelled = True
            if self._fatal is not None:
                for buf in self._buffers.values():  # not processed: back to the queue
                    for lot in buf.take(now, force=True):
                        for d in lot:
                            self._hand_back(d)
            else:
                for buf in self._buffers.values():
                    free = self.settings.llm_concurrency - len(self._in_flight)
                    if cancelled:
                        lots = buf.take(now, force=True)
                    elif free > 0:
                        lots = buf.take(now, max_batches=free)
                    else:
                        break
                    for lot in lots:
                        self._dispatch(lot)
            if self._buffered() or self._in_flight:
                idle_since = now
            if cancelled and not self._buffered() and not self._in_flight:
                return
            if self.burst and now - idle_since > max(1.0, self.settings.batch_wait_ms / 500):
                self.stop()

    def _wait_s(self, now: float) -> float:
        """How long the loop may wait on the broker: until the first lot must leave, if a slot
        is free for it. A delivery, a lot done (``call_threadsafe``) or ``stop`` ends the wait
        sooner; ``IDLE_WAIT_S`` at most (a burst worker's idle check, a signal)."""
        if len(self._in_flight) >= self.settings.llm_concurrency:
            return IDLE_WAIT_S
        deadlines = [d for b in self._buffers.values() if (d := b.deadline_s()) is not None]
        return min(IDLE_WAIT_S, max(0.0, min(deadlines, default=now + IDLE_WAIT_S) - now))

    def _on_message(self, message: Incoming) -> None:
        verdict = admit(
            message.body, message.headers, max_report_bytes=self.settings.max_report_bytes
        )
        if isinstance(verdict, Refused):
            self._dead(message, DeadLetter(verdict.reason, verdict.kind), verdict.report_id)
            return
        report, attempt = verdict.report, verdict.attempt
        n = sum(1 for s in split_snippets(report.raw_text) if has_amount(s))
        buf = self._buffers.get(attempt)
        if buf is None:
            budget = lot_budget(self.settings.batch_snippets, attempt)
            buf = BatchBuffer(
                max_items=budget,
                max_chars=budget,
                wait_ms=self.settings.batch_wait_ms,
                size=lambda d: max(d.snippets, 1),
            )
            self._buffers[attempt] = buf
        prefilled = bool(message.headers.get(HEADER_PREFILLED))
        buf.add(Delivery(message, report, n, attempt, prefilled), time.monotonic())

    def _buffered(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def _dispatch(self, taken: list[Delivery]) -> None:
        lot = _Lot(taken, self._generation)
        key = id(lot)
        self._in_flight[key] = lot
        metrics.batches_in_flight(len(self._in_flight))
        prefilled = frozenset(d.report.report_id for d in taken if d.prefilled)
        future = self._pool.submit(
            self.pipeline.process, [d.report for d in taken], prefilled=prefilled
        )
        session = self._session
        assert session is not None
        future.add_done_callback(
            lambda f: session.call_threadsafe(partial(self._settle, key, lot, f))
        )

    def _settle(self, key: int, lot: _Lot, future: Future[dict[str, Outcome]]) -> None:
        if lot.generation != self._generation or key not in self._in_flight:
            return  # the channel these tags belong to is gone; the broker redelivers them
        del self._in_flight[key]
        metrics.batches_in_flight(len(self._in_flight))
        try:
            outcomes = future.result()
        except ModelConfigError as exc:
            log.error("stopping the worker: %s", exc)
            self._fatal = exc
            self.stop()
            for d in lot.deliveries:
                self._hand_back(d)
            return
        except Exception as exc:
            log.error(
                "batch of %d report(s) failed unexpectedly; retrying later",
                len(lot.deliveries),
                exc_info=exc,
            )
            outcomes = {
                d.report.report_id: Outcome("retry", reason=repr(exc)) for d in lot.deliveries
            }
        for d in lot.deliveries:
            verdict = settle(outcomes.get(d.report.report_id), d.attempt, self.topology)
            if isinstance(verdict, Ack):
                self._ack(d, verdict)
            elif isinstance(verdict, Retry):
                self._retry(d, verdict)
            elif isinstance(verdict, HandBack):
                self._hand_back(d)
            else:
                self._dead(d.message, verdict, d.report.report_id)

    # -- carrying the verdicts out --------------------------------------------------------------
    def _ack(self, d: Delivery, verdict: Ack) -> None:
        assert self._session is not None
        self._session.ack(d.message.tag)
        self.stats["acked"] += 1
        self.stats["facts"] += verdict.facts
        metrics.report_settled("stored")

    def _hand_back(self, d: Delivery) -> None:
        """Back to the work queue as it came, without spending a delivery attempt: published
        again (confirmed) and then acked. A nack would count against the quorum queue's
        delivery limit (``x-delivery-count``), and a worker restarted on a configuration problem
        would walk every report it took to the dead-letter queue."""
        assert self._session is not None
        # no more deliveries first: the message published again must not come straight back to
        # this consumer and be in transit when it cancels (the client rejects those, counted)
        self._session.cancel()
        self._session.republish(
            "", self.topology.queue, d.message, handback_headers(d.message.headers)
        )
        self._session.ack(d.message.tag)
        self.stats["handed_back"] += 1

    def _retry(self, d: Delivery, verdict: Retry) -> None:
        assert self._session is not None
        # Confirmed before the original is acked: at-least-once into the retry queue.
        self._session.republish(
            "", verdict.queue, d.message, retry_headers(d.message.headers, verdict)
        )
        self._session.ack(d.message.tag)
        self.stats["retried"] += 1
        metrics.report_settled("retried", "transient")
        if self.on_retry is not None:  # off this thread: the database may be what is down
            self._hooks.submit(self.on_retry, d.report.report_id, verdict.reason, verdict.attempt)
        log.warning(
            "report %s: attempt %d failed (%s); retrying in %d s",
            d.report.report_id[:12],
            verdict.attempt,
            verdict.reason,
            verdict.delay_s,
            extra={"report_id": d.report.report_id},
        )

    def _dead(self, message: Incoming, verdict: DeadLetter, report_id: str | None = None) -> None:
        headers = dead_headers(message.headers, verdict, datetime.now(UTC))
        assert self._session is not None
        # Confirmed before the original is acked: at-least-once into the dead-letter queue.
        self._session.republish(self.topology.dlx, self.topology.dead_queue, message, headers)
        self._session.ack(message.tag)
        self.stats["dead"] += 1
        metrics.report_settled("dead_lettered", verdict.kind)
        log.warning(
            "message %s dead-lettered: %s",
            (report_id or message.message_id or "?")[:12],
            verdict.reason,
            extra={"report_id": report_id},
        )
        if report_id and self.on_dead is not None:  # off this thread, like on_retry
            self._hooks.submit(self.on_dead, report_id, verdict.reason)


def _log_reconnect(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    pause = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("%s; reconnecting to RabbitMQ in %.1f s", exc, pause)
