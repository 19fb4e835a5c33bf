"""The night of ``finpipe schedule``: its jobs (the inbox sweep, then the export), the Batch API
step the sweep runs first in batch mode, the catch-up of a night the scheduler missed, one run of
every job for an outside cron, and what ``/metrics`` shows of them.

The composition root hands in the settings and how to build the adapters (:class:`Adapters`, as
``finpipe/context.py``'s ``Context`` does); each job run builds its own and closes them. The
schedule itself (cron triggers, coalescing, one job at a time) is ``ingest.scheduler``.

Batch mode (``FINPIPE_LLM_MODE=batch`` with the OpenAI provider): the step reads the reports
waiting in the inbox, fills the extraction cache for them through Batch API jobs kept in MongoDB
(``batch_jobs``, ``batch_requests``), and asks synchronously what did not come back; then the
sweep publishes the reports as always and the workers find their answers in the cache. A job
still running a margin before the next export (``FINPIPE_BATCH_CANCEL_MARGIN_S``) is cancelled;
what it answered is kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Protocol

from adapters import metrics
from adapters.mongo import LAST_EXPORT, LAST_SWEEP, MongoStore
from adapters.rabbitmq import Broker
from ingest import scheduler
from schemas.errors import FinpipeError, Interrupted
from schemas.message import ReportMessage
from schemas.settings import Settings

log = logging.getLogger(__name__)


class Adapters(Protocol):
    """The settings, and the adapters built from them on demand (``finpipe.context.Context``).
    Building one connects nothing; the caller of ``store()`` closes the store."""

    settings: Settings

    def broker(self) -> Broker: ...

    def store(self) -> MongoStore: ...


def nightly_jobs(
    adapters: Adapters, aliases: dict[str, str], stop: threading.Event | None = None
) -> list[scheduler.Job]:
    """What ``finpipe schedule`` runs, in order: the inbox sweep, then the export. ``aliases``
    are the company aliases read once when the scheduler started: a bad file stops it at start
    instead of failing a night's export. In batch mode the sweep first fills the extraction cache
    for the reports it is about to publish (:func:`batch_prepare`)."""
    settings = adapters.settings

    def export() -> str:
        from adapters.rabbitmq import read_queues
        from export.night import night_check
        from export.run import export_after_drain

        broker, store = adapters.broker(), adapters.store()
        queues = broker.topology.backlog_queues()
        check = night_check(lambda: read_queues(broker.nodes, queues), store, LAST_SWEEP)
        try:
            return export_after_drain(settings, store, check, aliases=aliases)
        finally:
            store.close()

    prepare = None
    if settings.llm_mode == "batch" and settings.effective_provider == "openai":
        prepare = batch_prepare(adapters, stop)
    return [
        scheduler.inbox_sweep_job(
            settings,
            publisher=lambda: adapters.broker().publisher(),
            runs=adapters.store,
            prepare=prepare,
        ),
        scheduler.Job("export", settings.export_cron, export, "FINPIPE_EXPORT_CRON", LAST_EXPORT),
    ]


def export_deadlines(settings: Settings, now: datetime) -> tuple[float, float]:
    """``(cancel_at, give_up_at)`` in epoch seconds: jobs still running the margin before the
    next export are cancelled, and the wait stops at half the margin (the other half is for the
    synchronous leftovers and the workers). Pure."""
    export = scheduler.Job("export", settings.export_cron, lambda: None, "FINPIPE_EXPORT_CRON")
    fire = scheduler.next_fire_time(export, settings.timezone, now)
    deadline = fire.timestamp() if fire is not None else now.timestamp() + 86400
    margin = settings.batch_cancel_margin_s
    return deadline - margin, deadline - margin / 2


def batch_prepare(adapters: Adapters, stop: threading.Event | None = None) -> scheduler.Prepare:
    """The sweep's first step in batch mode (see the module's docstring). Once ``stop`` is set
    the wait ends with :class:`Interrupted`: the job stays stored, the files stay in the inbox,
    and the next run resumes both."""
    from worker.batch_api.nightly import prefill_cache, runner_for
    from worker.llm import OpenAIExtractor

    settings = adapters.settings
    stopping = stop or threading.Event()

    def sleep(seconds: float) -> None:
        if stopping.wait(seconds):
            raise Interrupted("stopping while a batch job runs; the next run resumes it")

    def prepare(reports: list[ReportMessage]) -> scheduler.Prepared:
        cancel_at, give_up_at = export_deadlines(settings, datetime.now(UTC))
        store = adapters.store()
        try:
            store.ensure_indexes()
            with OpenAIExtractor(settings, cache=store) as engine:
                items = [(r.report_id, r.raw_text, r.company_hint) for r in reports]
                report = prefill_cache(
                    engine,
                    items,
                    lambda sink: runner_for(engine, store, sink, now=time.time),
                    poll_s=settings.batch_poll_s,
                    cancel_at=cancel_at,
                    give_up_at=give_up_at,
                    sleep=sleep,
                )
            # the workers look these reports' answers up, whenever they started
            return scheduler.Prepared(report.line(), frozenset(r.report_id for r in reports))
        finally:
            store.close()

    return prepare


def missed(adapters: Adapters, jobs: list[scheduler.Job], now: datetime) -> list[scheduler.Job]:
    """The jobs whose last night's run did not happen (``runs`` records older than their last
    fire time), each logged; they run once at start as a catch-up. A database that cannot be
    read is logged and nothing is caught up."""
    store = adapters.store()
    try:
        last = {j.record: (store.last_run(j.record) or {}).get("at") for j in jobs if j.record}
    except FinpipeError as exc:
        log.warning("cannot tell whether a night was missed (%s); no catch-up", exc)
        return []
    finally:
        store.close()
    found = scheduler.missed_jobs(jobs, last, adapters.settings.timezone, now)
    for job, due in found:
        log.warning(
            "job %s missed its run due at %s (last run %s): running it now as a catch-up",
            job.name,
            due.isoformat(),
            last.get(job.record),
        )
    return [job for job, _ in found]


def run_once(jobs: list[scheduler.Job]) -> list[str]:
    """Each job once, in order (``finpipe schedule --once``); the names of those that failed
    (the others still ran)."""
    failed = []
    for job in jobs:
        log.info("job %s starting", job.name)
        try:
            result = job.func()
        except Exception:
            log.exception("job %s failed", job.name)
            failed.append(job.name)
            metrics.job_ended(job.name, "failed")
            continue
        metrics.job_ended(job.name, "ok")
        log.info("job %s done%s", job.name, f": {result}" if result is not None else "")
    return failed


def observe(adapters: Adapters) -> None:
    """With FINPIPE_METRICS_PORT: serve ``/metrics`` with the jobs' last successes as MongoDB
    remembers them (a restarted scheduler does not look as if no sweep ever ran), the queues
    and the Batch API jobs by state. The store stays open for the scrapes."""
    settings = adapters.settings
    if settings.metrics_port is None:
        return
    metrics.serve_configured(settings)
    store = adapters.store()
    try:
        for job, run in (("inbox-sweep", LAST_SWEEP), ("export", LAST_EXPORT)):
            at = (store.last_run(run) or {}).get("at")
            if isinstance(at, datetime):
                metrics.job_succeeded_before(job, at.replace(tzinfo=at.tzinfo or UTC).timestamp())
    except FinpipeError as exc:
        log.warning("last runs not read for the metrics: %s", exc)
    metrics.watch_queues(metrics.queue_reading(adapters.broker()))
    metrics.watch_batch_jobs(lambda: jobs_by_state(store.find_jobs(limit=1000)))


def jobs_by_state(jobs: list[dict[str, Any]]) -> dict[str, int]:
    """Batch API jobs by state, every state shown (0 when none is in it)."""
    from worker.batch_api.jobs import PartState

    counts = Counter(str(j.get("state")) for j in jobs)
    return {**{s.value: 0 for s in PartState}, **counts}


def announce(jobs: list[scheduler.Job], timezone: str, now: datetime, *, run_now: bool) -> None:
    """One log line per job with its cron and next run; with ``--run-now``, the order."""
    for job in jobs:
        when = scheduler.next_fire_time(job, timezone, now)
        log.info("job %s on %r (%s), next run %s", job.name, job.cron, timezone, when)
    if run_now:
        log.info(
            "--run-now: running %s now, one after the other", ", then ".join(j.name for j in jobs)
        )
