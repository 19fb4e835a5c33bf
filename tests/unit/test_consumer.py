"""The worker's consume loop, run for real on the in-memory stub broker: no RabbitMQ needed."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest

from adapters.rabbitmq import Incoming
from adapters.stub_session import StubBroker
from schemas.errors import Interrupted, ModelConfigError, ModelUnavailable
from schemas.message import Provenance, ReportMessage, SubmitReport
from schemas.settings import Settings
from schemas.topology import (
    HEADER_ATTEMPT,
    HEADER_DEAD_AT,
    HEADER_DELIVERY_COUNT,
    HEADER_ERROR_KIND,
    HEADER_REASON,
    Topology,
)
from worker.consumer import Consumer
from worker.extract import Extractor, ReportExtraction, RulesExtractor
from worker.pipeline import Pipeline

TEXT = "Company XYZ reported a net income of $5.3 million for Q1 2024."


class RecordingStore:
    def __init__(self) -> None:
        self.facts: dict[str, list[Any]] = {}

    def save_results(
        self, facts_by_report: Mapping[str, Any], report_fields: Mapping[str, Any], now: datetime
    ) -> int:
        self.facts.update(facts_by_report)
        return sum(len(v) for v in facts_by_report.values())


class FailingExtractor:
    """Raises ``error`` on every call."""

    name = "failing"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def extract(
        self, reports: Sequence[ReportMessage], *, prefilled: Collection[str] = frozenset()
    ) -> dict[str, ReportExtraction]:
        self.calls += 1
        raise self.error


class WaitingExtractor:
    """Waits (as for a rate limit) until the worker interrupts it, then says so."""

    name = "waiting"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.interrupted = threading.Event()

    def interrupt(self) -> None:
        self.interrupted.set()

    def extract(
        self, reports: Sequence[ReportMessage], *, prefilled: Collection[str] = frozenset()
    ) -> dict[str, ReportExtraction]:
        self.entered.set()
        assert self.interrupted.wait(10)
        raise Interrupted("the worker is stopping")


class GatedExtractor(RulesExtractor):
    """The rules extractor, whose first call waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.calls = 0

    def extract(
        self, reports: Sequence[ReportMessage], *, prefilled: Collection[str] = frozenset()
    ) -> dict[str, ReportExtraction]:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.gate.wait(10)
        return super().extract(reports, prefilled=prefilled)


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "queue": "reports",
        "batch_wait_ms": 0,
        "llm_concurrency": 1,
        "retry_delays_s": (2, 10, 60),
    }
    return Settings.from_env({}, **(values | overrides))


def _report(text: str = TEXT) -> ReportMessage:
    return ReportMessage.build(SubmitReport(raw_text=text), Provenance(channel="api"))


class Worker:
    """A consumer over a stub broker, with what its hooks were told."""

    def __init__(self, extractor: Extractor, **settings: Any) -> None:
        self.settings = _settings(**settings)
        self.broker = StubBroker(Topology.for_settings(self.settings))
        self.store = RecordingStore()
        self.retried: list[tuple[str, str, int]] = []
        self.dead: list[tuple[str, str]] = []
        self.consumer = Consumer(
            self.settings,
            Pipeline(extractor, self.store),
            self.broker,
            on_dead=lambda rid, reason: self.dead.append((rid, reason)),
            on_retry=lambda rid, reason, attempt: self.retried.append((rid, reason, attempt)),
        )
        self.exit_code: int | None = None

    @contextmanager
    def running(self) -> Iterator[StubBroker]:
        """Run the consumer's loop on a thread; stop it and wait for it on the way out."""

        def run() -> None:
            self.exit_code = self.consumer.run()

        thread = threading.Thread(target=run, name="consumer")
        thread.start()
        try:
            yield self.broker
        finally:
            self.consumer.stop()
            thread.join(10)
        assert not thread.is_alive()

    def queue(self, suffix: str = "") -> list[Incoming]:
        return self.broker.messages(self.broker.topology.queue + suffix)


def test_a_stored_report_has_its_message_acked_and_nothing_published() -> None:
    worker = Worker(RulesExtractor())
    report = _report()
    with worker.running() as broker:
        broker.put(report.to_body())
        assert broker.wait_for(lambda: len(broker.acked) == 1)

    assert len(worker.store.facts[report.report_id]) == 1
    assert broker.published == []
    assert worker.queue() == []
    assert worker.consumer.stats == {
        "acked": 1,
        "retried": 0,
        "dead": 0,
        "facts": 1,
        "handed_back": 0,
    }
    assert worker.exit_code == 0


@pytest.mark.parametrize(("attempt", "queue"), [(None, ".retry.2s"), (1, ".retry.10s")])
def test_a_transient_failure_goes_to_the_next_delay_queue_with_its_attempt(
    attempt: int | None, queue: str
) -> None:
    worker = Worker(FailingExtractor(ModelUnavailable("model API down")))
    report = _report()
    headers = {"keep": "me"} if attempt is None else {"keep": "me", HEADER_ATTEMPT: attempt}
    next_attempt = (attempt or 0) + 1
    with worker.running() as broker:
        message = broker.put(report.to_body(), headers, message_id=report.report_id)
        assert broker.wait_for(lambda: len(broker.acked) == 1)

    [retried] = worker.queue(queue)
    assert retried.body == message.body
    assert retried.message_id == report.report_id
    assert retried.headers == {
        "keep": "me",
        HEADER_ATTEMPT: next_attempt,
        HEADER_REASON: "model API down",
    }
    assert worker.queue() == worker.queue(".dead") == []
    assert worker.retried == [(report.report_id, "model API down", next_attempt)]
    assert worker.consumer.stats["retried"] == 1


def test_the_last_attempt_is_dead_lettered_with_its_reason() -> None:
    worker = Worker(FailingExtractor(ModelUnavailable("model API down")))
    report = _report()
    with worker.running() as broker:
        broker.put(report.to_body(), {HEADER_ATTEMPT: 3})
        assert broker.wait_for(lambda: len(broker.acked) == 1)

    [dead] = worker.queue(".dead")
    reason = "gave up after 3 delayed retries: model API down"
    assert dead.headers[HEADER_REASON] == reason
    assert dead.headers[HEADER_ERROR_KIND] == "retries_exhausted"
    assert dead.headers[HEADER_ATTEMPT] == 3
    assert datetime.fromisoformat(dead.headers[HEADER_DEAD_AT]).tzinfo is not None
    assert [p.exchange for p in broker.published] == [broker.topology.dlx]
    assert worker.dead == [(report.report_id, reason)]
    assert worker.retried == []


@pytest.mark.parametrize(
    ("body", "headers", "kind"),
    [
        (b"not json at all", {}, "invalid_message"),
        (_report().to_body(), {HEADER_ATTEMPT: "abc"}, "invalid_message"),
        (_report().to_body().replace(b"5.3", b"9.9"), {}, "invalid_message"),  # forged id
    ],
)
def test_a_poison_message_is_dead_lettered_at_once(
    body: bytes, headers: dict[str, Any], kind: str
) -> None:
    extractor = FailingExtractor(AssertionError("a poison message reached the pipeline"))
    worker = Worker(extractor)
    with worker.running() as broker:
        broker.put(body, headers)
        assert broker.wait_for(lambda: len(broker.acked) == 1)

    [dead] = worker.queue(".dead")
    assert dead.body == body
    assert dead.headers[HEADER_ERROR_KIND] == kind
    assert extractor.calls == 0
    assert worker.consumer.stats["dead"] == 1
    assert worker.queue() == worker.queue(".retry.2s") == []


def test_a_stop_hands_held_messages_back_with_their_attempt_count_unchanged() -> None:
    extractor = WaitingExtractor()
    worker = Worker(extractor)
    first, second = _report(), _report("Company XYZ reported revenue of $7.1 million in 2023.")
    with worker.running() as broker:
        held = broker.put(first.to_body(), {HEADER_ATTEMPT: 2, HEADER_DELIVERY_COUNT: 1})
        assert extractor.entered.wait(5)
        waiting = broker.put(second.to_body())  # buffered behind the lot in hand
        assert broker.wait_for(lambda: worker.consumer._buffered() == 1)
    # leaving the block stopped the worker

    assert sorted(broker.acked) == [m.tag for m in broker.delivered]
    back = {m.body: m.headers for m in worker.queue()}
    assert back == {held.body: {HEADER_ATTEMPT: 2}, waiting.body: {}}
    assert worker.queue(".dead") == worker.queue(".retry.2s") == []
    assert worker.consumer.stats["handed_back"] == 2
    assert worker.retried == worker.dead == []
    assert worker.exit_code == 0


def test_a_refused_model_configuration_stops_the_worker_and_hands_its_message_back() -> None:
    worker = Worker(FailingExtractor(ModelConfigError("the model does not exist")))
    report = _report()
    with worker.running() as broker:
        message = broker.put(report.to_body(), {HEADER_ATTEMPT: 1})
        assert broker.wait_for(lambda: len(broker.acked) == 1)
        assert broker.wait_for(lambda: worker.exit_code is not None)

    assert worker.exit_code == 3
    [back] = worker.queue()
    assert back.body == message.body
    assert back.headers == {HEADER_ATTEMPT: 1}
    assert worker.consumer.stats["handed_back"] == 1


def test_a_lost_connection_drops_the_lot_in_hand_and_the_redelivered_message_is_stored() -> None:
    extractor = GatedExtractor()
    worker = Worker(extractor, llm_concurrency=2)
    report = _report()
    with worker.running() as broker:
        broker.put(report.to_body())
        assert extractor.entered.wait(5)
        broker.drop_connections()  # the lot is in flight: its tag dies with the connection
        assert broker.wait_for(lambda: len(broker.sessions) == 2 and len(broker.delivered) == 2)
        extractor.gate.set()  # the first lot's result comes back too late to settle anything
        assert broker.wait_for(lambda: len(broker.acked) == 1)

    first, again = broker.delivered
    assert broker.acked == [again.tag]
    assert again.body == first.body
    assert extractor.calls == 2
    assert report.report_id in worker.store.facts
    assert worker.consumer.stats["acked"] == 1
    assert broker.published == []
    assert worker.queue() == []
