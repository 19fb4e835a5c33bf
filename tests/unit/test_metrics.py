"""The metrics each process exposes: counted where the event happens, with bounded labels."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from adapters import metrics
from fakes.openai_server import FakeOpenAI
from fakes.script import Status
from finpipe.logs import JsonFormatter
from ingest import scheduler
from ingest.app import create_app
from schemas.errors import ConfigError
from schemas.message import Provenance, ReportMessage, SubmitReport
from schemas.settings import Settings
from tests.unit.test_pipeline import RecordingStore
from worker.extract import RulesExtractor
from worker.llm import OpenAIExtractor, SnippetRequest
from worker.model.failures import ApiFailure, outcome_of
from worker.pipeline import Pipeline

SEED = "Company XYZ reported a net income of $5.3 million for Q1 2024."


def value(metric: str, /, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def test_an_unknown_reason_class_is_counted_as_other_never_as_its_text() -> None:
    before = value("finpipe_reports_total", outcome="dead_lettered", reason="other")
    metrics.report_settled("dead_lettered", "report abc123 could not be parsed")
    after = value("finpipe_reports_total", outcome="dead_lettered", reason="other")
    assert after == before + 1
    exposed = metrics.exposition()[0].decode()
    assert "abc123" not in exposed


def test_stored_reports_count_their_facts_by_extractor_and_their_latency() -> None:
    ingested = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    report = ReportMessage.build(
        SubmitReport(raw_text=SEED + " The board met on Tuesday."),
        Provenance(channel="api", ingested_at=ingested),
    )
    facts = value("finpipe_facts_stored_total", extractor="rules")
    empty = value("finpipe_snippets_without_amount_total")
    latencies = value("finpipe_report_latency_seconds_count")
    slow = value("finpipe_report_latency_seconds_bucket", le="60.0")
    pipeline = Pipeline(
        RulesExtractor(), RecordingStore(), clock=lambda: ingested + timedelta(seconds=90)
    )
    out = pipeline.process([report])
    assert out[report.report_id].facts == 1
    assert value("finpipe_facts_stored_total", extractor="rules") == facts + 1
    assert value("finpipe_snippets_without_amount_total") == empty + 1
    assert value("finpipe_report_latency_seconds_count") == latencies + 1
    # 90 s from ingestion to storage: not within the 60 s bucket
    assert value("finpipe_report_latency_seconds_bucket", le="60.0") == slow


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        (ApiFailure("status", "slow down", status=429), "rate_limited"),
        (ApiFailure("status", "oops", status=503), "server_error"),
        (ApiFailure("status", "bad", status=400), "refused"),
        (ApiFailure("timeout", "took too long"), "timeout"),
        (ApiFailure("connection", "refused"), "connection"),
        (ApiFailure("unreadable", "html"), "unreadable"),
    ],
)
def test_a_failed_model_call_is_counted_by_its_class(failure: ApiFailure, outcome: str) -> None:
    assert outcome_of(failure) == outcome


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as srv:
        yield srv


def test_model_calls_count_each_attempt_by_outcome_with_tokens_and_duration(
    server: FakeOpenAI,
) -> None:
    settings = Settings(
        openai_api_key="test-key",
        openai_base_url=server.base_url,
        provider="openai",
        model="metrics-test-model",
        llm_max_retries=2,
    )
    server.script(
        Status(
            429,
            message="Rate limit reached for requests. Please try again in 0.3s.",
            error_code="rate_limit_exceeded",
        )
    )
    labels = {"model": "metrics-test-model", "format": "json_schema"}
    engine = OpenAIExtractor(settings, sleep=lambda _s: None, rand=lambda: 0.0)
    try:
        engine.extract_batch([SnippetRequest("r0", SEED)])
    finally:
        engine.close()
    assert value("finpipe_model_calls_total", **labels, outcome="rate_limited") == 1
    assert value("finpipe_model_calls_total", **labels, outcome="ok") == 1
    assert value("finpipe_model_call_duration_seconds_count", model="metrics-test-model") == 1
    # the pause the 429 asked for, waited out before the call went again, is time lost to the
    # rate limit
    assert value("finpipe_rate_limit_wait_seconds_total", model="metrics-test-model") >= 0.25
    prompt = value("finpipe_model_tokens_total", model="metrics-test-model", kind="prompt")
    assert prompt > 0


def test_rate_limit_waits_add_up_in_seconds_and_start_at_zero() -> None:
    metrics.model_configured("pacer-model", None)
    assert (
        REGISTRY.get_sample_value("finpipe_rate_limit_wait_seconds_total", {"model": "pacer-model"})
        == 0.0
    )
    metrics.rate_limit_waited("pacer-model", 1.5)
    metrics.rate_limit_waited("pacer-model", 0.0)
    assert value("finpipe_rate_limit_wait_seconds_total", model="pacer-model") == 1.5


def test_http_requests_are_counted_by_route_rule_not_by_path_and_metrics_need_no_token() -> None:
    settings = Settings(api_token="s3cret")
    app = create_app(settings, publisher_factory=lambda: None, store_factory=lambda: None)  # type: ignore[arg-type,return-value]
    client = app.test_client()
    before = value("finpipe_http_requests_total", route="/reports/<report_id>", status="401")
    assert client.get("/reports/abc").status_code == 401
    assert client.get("/no/such/path").status_code == 401
    answer = client.get("/metrics")
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert "finpipe_http_requests_total" in body
    assert value("finpipe_http_requests_total", route="/reports/<report_id>", status="401") == (
        before + 1
    )
    assert value("finpipe_http_requests_total", route="unmatched", status="401") >= 1
    assert 'route="/no/such/path"' not in body


def test_a_scheduled_job_records_its_outcome_and_last_success() -> None:
    def fails() -> None:
        raise RuntimeError("boom")

    failed = value("finpipe_job_runs_total", name="metrics-test-job", outcome="failed")
    scheduler._logged(scheduler.Job("metrics-test-job", "0 2 * * *", fails))()
    assert value("finpipe_job_runs_total", name="metrics-test-job", outcome="failed") == failed + 1
    assert value("finpipe_job_last_success_timestamp_seconds", name="metrics-test-job") == 0
    scheduler._logged(scheduler.Job("metrics-test-job", "0 2 * * *", lambda: "done"))()
    last = value("finpipe_job_last_success_timestamp_seconds", name="metrics-test-job")
    assert last == pytest.approx(datetime.now(UTC).timestamp(), abs=5)


def test_queue_depths_are_read_when_scraped_and_a_broker_that_is_down_shows_nothing() -> None:
    readings: list[Any] = [[("work", 7, 0), ("dead", 2, 0)], RuntimeError("down")]

    def read() -> metrics.QueueReading:
        got = readings.pop(0)
        if isinstance(got, Exception):
            raise got
        return list(got)

    metrics.watch_queues(read, min_interval_s=0.0)
    assert value("finpipe_queue_messages", queue="work") == 7
    assert value("finpipe_queue_consumers", queue="work") == 0
    assert REGISTRY.get_sample_value("finpipe_queue_messages", {"queue": "dead"}) is None


def test_a_metrics_port_that_is_taken_names_the_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="FINPIPE_METRICS_PORT"):
            metrics.serve_metrics(port)


def test_json_log_lines_carry_the_report_id_and_the_traceback() -> None:
    record = logging.LogRecord(
        "worker.consumer", logging.WARNING, __file__, 1, "report %s: %s", ("ab12", "bad"), None
    )
    record.report_id = "ab12" * 16
    doc = json.loads(JsonFormatter().format(record))
    assert doc["level"] == "WARNING"
    assert doc["logger"] == "worker.consumer"
    assert doc["message"] == "report ab12: bad"
    assert doc["report_id"] == "ab12" * 16
    assert datetime.fromisoformat(doc["time"]).tzinfo is not None
    try:
        raise ValueError("boom\nsecond line")
    except ValueError as exc:
        failed = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), (type(exc), exc, exc.__traceback__)
        )
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_settings_read_the_metrics_port_and_the_log_format() -> None:
    s = Settings.from_env({"FINPIPE_METRICS_PORT": "9101", "FINPIPE_LOG_FORMAT": "json"})
    assert (s.metrics_port, s.log_format) == (9101, "json")
    assert Settings.from_env({}).metrics_port is None
    with pytest.raises(ConfigError, match="FINPIPE_LOG_FORMAT"):
        Settings.from_env({"FINPIPE_LOG_FORMAT": "xml"})
