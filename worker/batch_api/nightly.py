"""Batch mode's run: fill the extraction cache for reports about to be processed, through the
Batch API, so that the workers then extract them with cache hits and no synchronous call.

:func:`prefill_cache` takes the reports, and

1. plans their calls as the synchronous path does (:meth:`~worker.model.engine.OpenAIExtractor.
   plan`: the snippets the cache does not have, once per text, packed), one request line per
   call with the body the engine would send first for it
   (:meth:`~worker.model.engine.OpenAIExtractor.first_body`);
2. runs the :class:`~worker.batch_api.runner.BatchRunner`: resumes the open jobs, submits the
   requests that no open job holds, polls every ``poll_s``, cancels what still runs at
   ``cancel_at`` and stops waiting at ``give_up_at``;
3. hands each collected part to the sink, which reads and grounds its answers as the engine does
   and writes them to the cache (idempotent: a part handed over again after a crash writes the
   same entries), with their usage at the batch rate;
4. asks synchronously what did not come back (per-request errors, the unanswered requests of an
   expired, failed or cancelled job, requests too large for an input file, requests of a job
   collected by an earlier run that stopped before asking them), through the engine and its cache;
5. goes on from each answer that did not settle all of its snippets as the engine goes on from its
   own first answer: the snippets that failed validation are asked again once (with the batch
   answer and the errors), a truncated answer is split; not asked again from scratch.

Requests of jobs still running when the wait stops are left to the workers, which ask about
cache misses synchronously: no report waits for a batch job. Nothing here publishes or moves a
report: the caller does that afterwards, whatever happened here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Unpack

from schemas.errors import FinpipeError, ModelConfigError
from worker.batch_api.delivery import PartResult, ResultSink, RunReport, WaitOptions
from worker.batch_api.jobs import BatchJob
from worker.batch_api.jobstore import JobStore, MemoryJobStore
from worker.batch_api.requests import BatchRequest, Planned, build_requests
from worker.batch_api.runner import BatchRunner
from worker.model.client import BATCH_TRANSIENT
from worker.model.engine import OpenAIExtractor
from worker.model.grounding import SnippetRequest
from worker.model.prompt import request_snippets
from worker.model.reports import requests_of

log = logging.getLogger(__name__)

#: a job created this long before now whose requests come again is looked at before submitting
#: (its requests are not batched a second time): the completion window and a day of slack
RECENT_S = 48 * 3600.0

RunnerFactory = Callable[[ResultSink], BatchRunner]
#: a request whose batch answer did not settle every snippet: its group, body and answer
Unsettled = tuple[Sequence[SnippetRequest], Mapping[str, Any], dict[str, Any]]


@dataclass
class PrefillReport:
    """What one :func:`prefill_cache` did, for the log line and the tests."""

    snippets: int = 0
    cached_before: int = 0
    requests: int = 0
    jobs: list[str] = field(default_factory=list)
    answered: int = 0
    entries: int = 0
    sync_requests: int = 0
    sync_failed: int = 0
    left_running: list[str] = field(default_factory=list)
    #: answered requests whose answer did not settle every snippet: (group, body, answer)
    unsettled: list[Unsettled] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"batch mode: {self.snippets} snippet(s), {self.cached_before} cached, "
            f"{self.requests} request(s) in {len(self.jobs)} job(s), {self.answered} answered, "
            f"{self.entries} cache entries, {self.sync_requests} asked synchronously"
            + (f" ({self.sync_failed} failed)" if self.sync_failed else "")
            + (f", {len(self.unsettled)} answer(s) re-asked in part" if self.unsettled else "")
            + (f", still running: {', '.join(self.left_running)}" if self.left_running else "")
        )


def runner_for(
    engine: OpenAIExtractor, store: JobStore, sink: ResultSink, *, now: Callable[[], float]
) -> BatchRunner:
    """A Batch API runner over ``engine``'s client, keeping its jobs in ``store``."""
    return BatchRunner(engine.client.batch_api(), store, sink, now=now, transient=BATCH_TRANSIENT)


def plan_requests(
    engine: OpenAIExtractor, items: Sequence[tuple[str, str, str | None]]
) -> tuple[Planned[SnippetRequest], int, int]:
    """One request line per call the engine plans for the snippets of ``items`` (those the
    cache does not have, once per text, packed); with the number of snippets and of those
    cached."""
    _, requests, _ = requests_of(items)
    plan = engine.plan(requests)
    return build_requests(plan.calls, engine.first_body), plan.snippets, plan.cached


def cache_sink(
    engine: OpenAIExtractor, planned: Planned[SnippetRequest], report: PrefillReport
) -> ResultSink:
    """The sink that writes a collected part's answers into the engine's cache. Handed the same
    part again (a crash between the hand-over and the save), it writes the same entries; the
    usage of that part is then logged twice."""

    def sink(result: PartResult) -> None:
        entries: dict[str, dict[str, Any]] = {}
        for custom_id, completion in result.answers.items():
            body = result.requests[custom_id].body
            groups = planned.groups.get(custom_id) or [group_of(body)]
            for group in groups:
                settled = engine.batch_entries(group, body, completion)
                entries.update(settled)
                if len(settled) < len(group):
                    report.unsettled.append((group, body, completion))
            engine.record_batch_usage(body, completion, len(groups[0]))
        engine.cache.put_many(entries)
        report.answered += len(result.answers)
        report.entries += len(entries)
        log.info(
            "batch job %s part %d: %d answer(s) into %d cache entries",
            result.job_id,
            result.part,
            len(result.answers),
            len(entries),
        )

    return sink


def group_of(body: dict[str, Any] | Any) -> list[SnippetRequest]:
    """The snippets a request body asks about (for a job resumed after its reports were
    processed: no company hint, no context; the engine grounds again when it applies them)."""
    return [SnippetRequest(s["id"], s["text"]) for s in request_snippets(body["messages"])]


def prefill_cache(
    engine: OpenAIExtractor,
    items: Sequence[tuple[str, str, str | None]],
    make_runner: RunnerFactory,
    *,
    poll_s: float,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
    **options: Unpack[WaitOptions],
) -> PrefillReport:
    """Fill ``engine``'s cache for ``items`` (``(id, text, company_hint)``) through batch jobs,
    then ask synchronously what did not come back (see the module's docstring)."""
    report = PrefillReport()
    planned, report.snippets, report.cached_before = plan_requests(engine, items)
    runner = make_runner(cache_sink(engine, planned, report))
    recent = recently_batched(runner, now() - RECENT_S)
    fresh = [r for r in planned.requests if r.custom_id not in recent]
    again = [r for r in planned.requests if r.custom_id in recent]
    if again:
        log.info(
            "%d request(s) were in a batch job collected before; asked synchronously", len(again)
        )
    report.requests = len(fresh)
    run = runner.run(fresh, sleep=sleep, poll_s=poll_s, **options)
    report.jobs = [j.job_id for j in run.jobs]
    report.left_running = run.open_jobs
    if report.left_running:
        log.warning(
            "batch job(s) %s still running at the deadline; the workers ask about their "
            "snippets synchronously",
            ", ".join(report.left_running),
        )
    ask_synchronously(engine, planned, todo_of(run, again), report)
    go_on_synchronously(engine, report)
    log.info("%s", report.line())
    return report


def prefill_in_memory(
    engine: OpenAIExtractor,
    items: Sequence[tuple[str, str, str | None]],
    *,
    poll_s: float,
    progress: Callable[[list[BatchJob]], None] | None = None,
) -> PrefillReport:
    """:func:`prefill_cache` with its jobs kept in memory, waiting as long as the job takes
    (``finpipe extract`` in batch mode: one user, one file)."""
    store = MemoryJobStore()
    return prefill_cache(
        engine,
        items,
        lambda sink: runner_for(engine, store, sink, now=time.time),
        poll_s=poll_s,
        progress=progress,
    )


def todo_of(run: RunReport, again: Sequence[BatchRequest]) -> list[BatchRequest]:
    done = run.answers
    out = {r.custom_id: r for r in run.todo}
    out.update((r.custom_id, r) for r in again if r.custom_id not in done)
    return list(out.values())


def ask_synchronously(
    engine: OpenAIExtractor,
    planned: Planned[SnippetRequest],
    todo: Sequence[BatchRequest],
    report: PrefillReport,
) -> None:
    """The engine's synchronous path (cache, call, re-ask, split, fallback) for each request
    without a batch answer, ``llm_concurrency`` at a time; a group that fails is left to the
    workers (logged). A configuration error (key, model, quota) stops here and propagates."""
    groups = [
        group
        for request in todo
        for group in planned.groups.get(request.custom_id) or [group_of(request.body)]
    ]
    report.sync_requests += len(groups)
    asks = [(len(group), partial(engine.extract_batch, group)) for group in groups]
    report.sync_failed += in_parallel(engine, asks)


def go_on_synchronously(engine: OpenAIExtractor, report: PrefillReport) -> None:
    """Step 5 of the module's docstring for each answer the sink set aside; one that fails is
    left to the workers (logged)."""
    asks = [(len(u[0]), partial(engine.settle_batch_answer, *u)) for u in report.unsettled]
    report.sync_failed += in_parallel(engine, asks)


def in_parallel(engine: OpenAIExtractor, asks: Sequence[tuple[int, Callable[[], Any]]]) -> int:
    """Run ``asks`` (snippets, call) ``llm_concurrency`` at a time; the number that failed. A
    configuration error (key, model, quota) stops here and propagates."""

    def ask(item: tuple[int, Callable[[], Any]]) -> bool:
        n, call = item
        try:
            call()
        except ModelConfigError:
            raise
        except FinpipeError as exc:
            log.warning(
                "synchronous call for %d snippet(s) failed (%s); the workers ask again", n, exc
            )
            return False
        return True

    if not asks:
        return 0
    workers = max(1, min(engine.settings.llm_concurrency, len(asks)))
    with ThreadPoolExecutor(workers, thread_name_prefix="batch-todo") as pool:
        return sum(1 for ok in pool.map(ask, asks) if not ok)


def recently_batched(runner: BatchRunner, since_s: float) -> set[str]:
    """The request ids of jobs created since ``since_s`` and collected already: asking them in a
    new job would pay for them twice (an earlier run collected them and stopped before it asked
    the unanswered ones synchronously)."""
    out: set[str] = set()
    for job in runner.jobs(limit=200):
        if job.open or job.created_at < since_s:
            continue
        for part in job.parts:
            out.update(cid for cid, _ in runner.store.load_requests(job.job_id, part.index))
    return out
