"""Prometheus metrics: the only module that imports ``prometheus_client``.

Every metric finpipe exposes is defined here, with a one-line function per event for the code
that observes it (the worker, ``finpipe serve``, the scheduler). Names follow Prometheus
conventions (``_total`` counters, base units in the name, ``_seconds``, ``_usd``); label values
come from short fixed lists (outcomes, reason classes, routes, the configured model), never from a
report id, a company or an error message. What each one means: ``docs/operating.md``.

A metric nobody observes costs one dictionary lookup per event, so the functions are safe to call
whether or not the process serves ``/metrics``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.errors import ConfigError

if TYPE_CHECKING:
    from adapters.rabbitmq import Broker
    from schemas.settings import Settings

log = logging.getLogger(__name__)

# -- the worker -----------------------------------------------------------------------------------
REPORTS = Counter(
    "finpipe_reports",
    "Reports settled by the worker, by outcome (stored, retried, dead_lettered) and reason class",
    ["outcome", "reason"],
)
FACTS_STORED = Counter(
    "finpipe_facts_stored", "Facts written (or confirmed) in MongoDB, by extractor", ["extractor"]
)
SNIPPETS_WITHOUT_AMOUNT = Counter(
    "finpipe_snippets_without_amount",
    "Snippets of stored reports that hold no amount (never sent to a model)",
)
MODEL_CALLS = Counter(
    "finpipe_model_calls",
    "Chat completion requests sent to the model API, by model, output format and outcome",
    ["model", "format", "outcome"],
)
MODEL_TOKENS = Counter(
    "finpipe_model_tokens",
    "Tokens billed by the model API, by model and kind (prompt, cached, completion)",
    ["model", "kind"],
)
MODEL_COST = Counter(
    "finpipe_model_cost_usd",
    "Estimated model cost in US dollars, by model and price tier (standard, flex, batch)",
    ["model", "tier"],
)
MODEL_BUDGET = Gauge(
    "finpipe_model_cost_budget_usd",
    "FINPIPE_MAX_COST_USD of this worker (a worker stops calling the model past it)",
)
MODEL_CALL_SECONDS = Histogram(
    "finpipe_model_call_duration_seconds",
    "Time of one answered model call, from request to parsed answer",
    ["model"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 60, 120, 300),
)
REPORT_LATENCY = Histogram(
    "finpipe_report_latency_seconds",
    "Time from a report's ingestion (inbox or POST /submit) to its facts being stored",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600),
)
RATE_LIMIT_WAIT = Counter(
    "finpipe_rate_limit_wait_seconds",
    "Seconds model calls lost to the model API's rate limits (429 backoff, pacing before a call)",
    ["model"],
)
BATCHES_IN_FLIGHT = Gauge(
    "finpipe_batches_in_flight", "Batches of reports being extracted and stored right now"
)

# -- finpipe serve --------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "finpipe_http_requests", "HTTP requests answered, by route and status", ["route", "status"]
)
HTTP_SECONDS = Histogram(
    "finpipe_http_request_duration_seconds",
    "Time to answer an HTTP request, by route",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REPORTS_QUEUED = Counter(
    "finpipe_reports_queued",
    "Reports published to the work queue, by channel (api: POST /submit, inbox: a sweep)",
    ["channel"],
)

# -- the scheduler --------------------------------------------------------------------------------
JOB_RUNS = Counter(
    "finpipe_job_runs",
    "Scheduled job runs, by job name and outcome (ok, failed, stopped)",
    ["name", "outcome"],
)
JOB_LAST_RUN = Gauge(
    "finpipe_job_last_run_timestamp_seconds",
    "When a scheduled job last ended (any outcome), by job name",
    ["name"],
)
JOB_LAST_SUCCESS = Gauge(
    "finpipe_job_last_success_timestamp_seconds",
    "When a scheduled job last ended successfully, by job name (seeded from MongoDB at start)",
    ["name"],
)
FACTS_EXPORTED = Counter("finpipe_facts_exported", "Facts written by exports")
EXPORT_FACTS = Gauge("finpipe_export_facts", "Facts in the last export")

#: reason classes of a settled report; anything else is counted as "other"
REASONS = frozenset(
    {"none", "transient", "permanent", "retries_exhausted", "invalid_message", "too_large"}
)
# the usual outcomes start at 0, so that a rate or an increase has a first sample
REPORTS.labels("stored", "none")
REPORTS.labels("retried", "transient")
for _reason in [*sorted(REASONS - {"none", "transient"}), "other"]:
    REPORTS.labels("dead_lettered", _reason)


@functools.lru_cache(maxsize=1024)
def _child(metric: Any, *values: str) -> Any:
    """The child of ``metric`` for these label values, looked up once (label values are bounded:
    the cache stays small, and an event costs a dictionary lookup instead of a locked one)."""
    return metric.labels(*values)


# -- the worker's events --------------------------------------------------------------------------
def report_settled(outcome: str, reason: str = "none") -> None:
    """One report acked as ``stored``, sent to a delayed ``retried``, or ``dead_lettered``;
    ``reason`` is the class of failure (an error kind, never its message)."""
    _child(REPORTS, outcome, reason if reason in REASONS else "other").inc()


def facts_stored(extractor: str, n: int) -> None:
    if n:
        _child(FACTS_STORED, extractor).inc(n)


def snippets_without_amount(n: int) -> None:
    if n:
        SNIPPETS_WITHOUT_AMOUNT.inc(n)


def report_stored_after(seconds: float) -> None:
    REPORT_LATENCY.observe(max(0.0, seconds))


def model_call(model: str, response_format: str, outcome: str, seconds: float) -> None:
    """One request to the model API that took ``seconds``; ``outcome`` is ``ok`` or a failure
    class (``rate_limited``, ``server_error``, ``timeout``, ``connection``, ``refused``,
    ``unreadable``). The duration histogram holds answered calls only."""
    _child(MODEL_CALLS, model, response_format, outcome).inc()
    if outcome == "ok":
        _child(MODEL_CALL_SECONDS, model).observe(seconds)


def model_usage(
    model: str,
    tier: str,
    *,
    prompt: int,
    cached: int,
    completion: int,
    cost_usd: float | None,
) -> None:
    """The billed usage of one answered call (a Batch API answer included)."""
    _child(MODEL_TOKENS, model, "prompt").inc(prompt)
    _child(MODEL_TOKENS, model, "cached").inc(cached)
    _child(MODEL_TOKENS, model, "completion").inc(completion)
    if cost_usd is not None:
        _child(MODEL_COST, model, tier).inc(cost_usd)


def model_configured(model: str, budget_usd: float | None) -> None:
    """A worker that calls ``model``: its series start at 0 (a rate needs a first sample), and
    its FINPIPE_MAX_COST_USD, if set, is shown beside the cost."""
    _child(RATE_LIMIT_WAIT, model)
    for kind in ("prompt", "cached", "completion"):
        _child(MODEL_TOKENS, model, kind)
    if budget_usd is not None:
        MODEL_BUDGET.set(budget_usd)


def rate_limit_waited(model: str, seconds: float) -> None:
    """A model call held back ``seconds`` because of the rate limits: the backoff a 429 asked
    for, or a pacer's wait before sending."""
    if seconds > 0:
        _child(RATE_LIMIT_WAIT, model).inc(seconds)


def batches_in_flight(n: int) -> None:
    BATCHES_IN_FLIGHT.set(n)


# -- finpipe serve's events -----------------------------------------------------------------------
def http_request(route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, str(status)).inc()
    _child(HTTP_SECONDS, route).observe(seconds)


def reports_queued(channel: str, n: int) -> None:
    if n:
        _child(REPORTS_QUEUED, channel).inc(n)


# -- the scheduler's events -----------------------------------------------------------------------
def job_ended(job: str, outcome: str, at: float | None = None) -> None:
    """A scheduled job ended: ``ok``, ``failed`` or ``stopped``."""
    at = time.time() if at is None else at
    _child(JOB_RUNS, job, outcome).inc()
    _child(JOB_LAST_RUN, job).set(at)
    if outcome == "ok":
        _child(JOB_LAST_SUCCESS, job).set(at)


def job_succeeded_before(job: str, at: float) -> None:
    """Seed the last success of ``job`` from what MongoDB remembers (at start)."""
    _child(JOB_LAST_SUCCESS, job).set(at)


def facts_exported(n: int) -> None:
    FACTS_EXPORTED.inc(n)
    EXPORT_FACTS.set(n)


# -- read at scrape time --------------------------------------------------------------------------
class _Sampled(Collector):
    """Gauges read from a function when Prometheus scrapes, at most once per ``min_interval_s``
    (the last reading is served in between); a reading that fails yields nothing."""

    def __init__(
        self,
        name: str,
        doc: str,
        labels: list[str],
        read: Callable[[], list[tuple[list[str], float]]],
        min_interval_s: float,
    ) -> None:
        self.name, self.doc, self.labels, self.read = name, doc, labels, read
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._last: list[tuple[list[str], float]] = []

    def describe(self) -> Iterator[Any]:
        yield GaugeMetricFamily(self.name, self.doc, labels=self.labels)

    def collect(self) -> Iterator[Any]:
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self.min_interval_s:
                self._at = now
                try:
                    self._last = self.read()
                except Exception as exc:  # a scrape must not fail because a service is down
                    log.debug("metric %s not read: %s", self.name, exc)
                    self._last = []
            samples = self._last
        family = GaugeMetricFamily(self.name, self.doc, labels=self.labels)
        for values, value in samples:
            family.add_metric(values, value)
        yield family


#: (queue role, messages ready, consumers) per queue
QueueReading = list[tuple[str, int, int]]


def queue_reading(broker: Broker) -> Callable[[], QueueReading]:
    """What ``/metrics`` shows of the work and dead-letter queues (read when scraped)."""

    def read() -> QueueReading:
        work, dead = broker.queue_depths(timeout_s=2.0)
        return [(role, q.messages, q.consumers) for role, q in (("work", work), ("dead", dead))]

    return read


def watch_queues(read: Callable[[], QueueReading], min_interval_s: float = 5.0) -> None:
    """Serve the depth and consumers of the work and dead-letter queues, read by ``read`` when
    scraped (``finpipe serve`` and the scheduler do: a worker that is down cannot say it)."""

    def messages() -> list[tuple[list[str], float]]:
        return [([role], float(n)) for role, n, _ in cached()]

    def consumers() -> list[tuple[list[str], float]]:
        return [([role], float(c)) for role, _, c in cached()]

    box: dict[str, Any] = {"at": float("-inf"), "value": []}
    lock = threading.Lock()

    def cached() -> QueueReading:
        with lock:
            if time.monotonic() - box["at"] >= min_interval_s:
                box["at"] = time.monotonic()
                box["value"] = []
                box["value"] = read()
            return list(box["value"])

    _register(
        _Sampled(
            "finpipe_queue_messages",
            "Messages ready in a queue (work, dead), read from RabbitMQ when scraped",
            ["queue"],
            messages,
            0.0,
        )
    )
    _register(
        _Sampled(
            "finpipe_queue_consumers",
            "Consumers (workers) on a queue (work, dead), read from RabbitMQ when scraped",
            ["queue"],
            consumers,
            0.0,
        )
    )


def watch_batch_jobs(read: Callable[[], dict[str, int]], min_interval_s: float = 30.0) -> None:
    """Serve Batch API jobs by state, counted by ``read`` when scraped."""
    _register(
        _Sampled(
            "finpipe_batch_jobs",
            "Batch API jobs kept in MongoDB, by state",
            ["state"],
            lambda: [([state], float(n)) for state, n in sorted(read().items())],
            min_interval_s,
        )
    )


_registered: dict[str, Collector] = {}


def _register(collector: _Sampled) -> None:
    """Register once per process; a second call replaces the reader (tests build several apps)."""
    old = _registered.pop(collector.name, None)
    if old is not None:
        REGISTRY.unregister(old)
    REGISTRY.register(collector)
    _registered[collector.name] = collector


# -- serving --------------------------------------------------------------------------------------
def exposition() -> tuple[bytes, str]:
    """The body and content type of a ``/metrics`` answer (``finpipe serve`` serves it itself)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``port`` from a daemon thread (FINPIPE_METRICS_PORT). A port that is
    taken is a ``ConfigError`` naming the variable: several workers on one machine need one
    port each. ``host`` is FINPIPE_METRICS_HOST (``0.0.0.0`` to be scraped from elsewhere)."""
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise ConfigError(
            f"FINPIPE_METRICS_PORT={port}: cannot serve metrics on {host}:{port}: {exc} "
            "(each process on a machine needs a port of its own)"
        ) from exc
    log.info("metrics on http://%s:%d/metrics", host, port)


def serve_configured(settings: Settings) -> None:
    """Serve ``/metrics`` on FINPIPE_METRICS_PORT (the worker and the scheduler), if it is set."""
    if settings.metrics_port is not None:
        serve_metrics(settings.metrics_port, settings.metrics_host)
