"""``finpipe batch list|show|cancel``: the Batch API jobs of ``FINPIPE_LLM_MODE=batch``, for
operators. The nightly step that submits them and fills the extraction cache is
``ops/nightly.py``; the jobs themselves are ``worker/batch_api/``.
"""

from __future__ import annotations

import logging
import time

import click

from finpipe.context import Context, pass_ctx
from schemas.errors import FinpipeError

log = logging.getLogger(__name__)


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


def register(cli: click.Group) -> None:
    cli.add_command(batch)
