"""Batch mode (``FINPIPE_LLM_MODE=batch``): the step the nightly sweep runs first, and
``finpipe batch list|show|cancel`` for operators.

The step reads the reports waiting in the inbox, fills the extraction cache for them through
Batch API jobs kept in MongoDB (``batch_jobs``, ``batch_requests``), and asks synchronously what
did not come back; then the sweep publishes the reports as always and the workers find their
answers in the cache. A job still running a margin before the next export
(``FINPIPE_BATCH_CANCEL_MARGIN_S``) is cancelled; what it answered is kept.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from datetime import UTC, datetime

import click

from finpipe.context import Context, pass_ctx
from ingest import scheduler
from schemas.errors import FinpipeError, Interrupted
from schemas.message import ReportMessage
from schemas.settings import Settings

log = logging.getLogger(__name__)


def export_deadlines(settings: Settings, now: datetime) -> tuple[float, float]:
    """``(cancel_at, give_up_at)`` in epoch seconds: jobs still running the margin before the
    next export are cancelled, and the wait stops at half the margin (the other half is for the
    synchronous leftovers and the workers). Pure."""
    export = scheduler.Job("export", settings.export_cron, lambda: None, "FINPIPE_EXPORT_CRON")
    fire = scheduler.next_fire_time(export, settings.timezone, now)
    deadline = fire.timestamp() if fire is not None else now.timestamp() + 86400
    margin = settings.batch_cancel_margin_s
    return deadline - margin, deadline - margin / 2


def batch_prepare(ctx: Context, stop: threading.Event | None = None) -> scheduler.Prepare:
    """The sweep's first step in batch mode (see the module's docstring). Once ``stop`` is set
    the wait ends with :class:`Interrupted`: the job stays stored, the files stay in the inbox,
    and the next run resumes both."""
    from worker.batch_api.nightly import prefill_cache, runner_for
    from worker.llm import OpenAIExtractor

    settings = ctx.settings
    stopping = stop or threading.Event()

    def sleep(seconds: float) -> None:
        if stopping.wait(seconds):
            raise Interrupted("stopping while a batch job runs; the next run resumes it")

    def prepare(reports: list[ReportMessage]) -> scheduler.Prepared:
        cancel_at, give_up_at = export_deadlines(settings, datetime.now(UTC))
        store = ctx.store()
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


@click.group()
def batch() -> None:
    """Batch API jobs of FINPIPE_LLM_MODE=batch: list, show, cancel.

    The nightly sweep submits them, waits, and fills the extraction cache with their answers;
    these commands only look at them or stop them.
    """


@batch.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only the jobs still running.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@pass_ctx
def list_jobs(ctx: Context, open_only: bool, limit: int) -> None:
    """One line per job, newest first: its state and each part's remote status and counts."""
    from worker.batch_api.jobs import BatchJob, describe

    store = ctx.store()
    try:
        docs = store.find_jobs(open_only=open_only, limit=limit)
    except FinpipeError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    if not docs:
        click.echo("no open batch jobs" if open_only else "no batch jobs")
    for doc in docs:
        click.echo(describe(BatchJob.from_doc(doc)))


@batch.command("show")
@click.argument("job_id")
@pass_ctx
def show_job(ctx: Context, job_id: str) -> None:
    """The job and each part: state, batch id, remote counts, answered and still to do."""
    from worker.batch_api.jobs import BatchJob, show

    store = ctx.store()
    try:
        doc = store.load_job(job_id)
    except FinpipeError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    if doc is None:
        raise click.ClickException(f"no batch job {job_id}")
    for line in show(BatchJob.from_doc(doc)):
        click.echo(line)


@batch.command("cancel")
@click.argument("job_id")
@pass_ctx
def cancel_job(ctx: Context, job_id: str) -> None:
    """Ask the server to cancel the job's running batches. What they answered before they stop
    is collected by the next nightly run; everything else is asked synchronously."""
    from worker.batch_api.jobs import describe
    from worker.batch_api.nightly import runner_for
    from worker.llm import OpenAIExtractor

    store = ctx.store()
    try:
        with OpenAIExtractor(ctx.settings, cache=store) as engine:
            # nothing is answered by a cancel itself; parts not yet submitted close at once and
            # their snippets are asked synchronously by the workers
            runner = runner_for(engine, store, lambda _result: None, now=time.time)
            job = runner.cancel(job_id)
    except KeyError:
        raise click.ClickException(f"no batch job {job_id}") from None
    except FinpipeError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    click.echo(describe(job))


def progress_line(jobs: list[object]) -> None:
    """``finpipe extract``'s progress while it waits for its batch job: one line on stderr."""
    from worker.batch_api.jobs import BatchJob

    done = total = 0
    states = []
    for job in jobs:
        if not isinstance(job, BatchJob):
            continue
        for part in job.parts:
            total += part.requests
            done += part.counts.get("completed", part.answered)
            states.append(str(part.outcome or part.remote_status or part.state))
    end = "\r" if sys.stderr.isatty() else "\n"
    sys.stderr.write(f"batch: {', '.join(states) or 'submitting'} {done}/{total} answered{end}")
    sys.stderr.flush()


def register(cli: click.Group) -> None:
    cli.add_command(batch)
