"""Inbox commands: ``finpipe watch``, ``finpipe ingest`` and ``finpipe schedule``."""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from finpipe.context import Context, pass_ctx
from schemas.errors import ConfigError, TransientError

if TYPE_CHECKING:
    from ingest.inbox import Progress, Summary

# ingest, the scheduler and the nightly jobs are imported by the commands that run them, so that
# every other ``finpipe`` command starts without them (tests/unit/test_startup.py).

log = logging.getLogger(__name__)

SETTLE_HELP = "Seconds a file's size and time must stay unchanged before it is read (default 2)."


def register(cli: click.Group) -> None:
    cli.add_command(watch)
    cli.add_command(ingest)
    cli.add_command(schedule)


@click.command()
@click.argument("inbox", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--settle", "settle_s", type=click.FloatRange(min=0), default=2.0, help=SETTLE_HELP)
@pass_ctx
def watch(ctx: Context, inbox: Path | None, settle_s: float) -> None:
    """Watch the inbox and publish every file dropped or moved into it.

    INBOX defaults to FINPIPE_INBOX (./inbox). Files already there are swept first. A file is
    read once it is complete (its size and time stopped changing); hidden, *.part, *.tmp,
    *.crdownload and ~ files are ignored. After the broker confirmed every report of a file, the
    file moves to processed/YYYY-MM-DD/; unreadable files move to failed/ with a
    <name>.error.json saying why, and bad rows of good files are listed in
    failed/<name>.rejects.jsonl. A file dropped again is recognised and not published twice.
    Stop with Ctrl-C.
    """
    from ingest.inbox import Inbox
    from ingest.watcher import InboxWatcher

    settings = ctx.settings
    if inbox is not None:
        settings = settings.model_copy(update={"inbox": inbox})
    box = Inbox.from_settings(settings, settle_s=settle_s)
    stop = threading.Event()
    with _stop_on_signals(stop), ctx.broker().publisher() as publisher:
        summary = InboxWatcher(box, publisher).run(stop)
    click.echo(summary.line())


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--text-column",
    metavar="NAME",
    help="CSV column holding the report text (default: raw_text, text, content or body).",
)
@click.option("--settle", "settle_s", type=click.FloatRange(min=0), default=2.0, help=SETTLE_HELP)
@pass_ctx
def ingest(ctx: Context, paths: tuple[Path, ...], text_column: str | None, settle_s: float) -> None:
    """Publish the reports in files and folders once, then print a summary.

    Reads .csv (one report per row), .jsonl/.ndjson (one per line), .json (an object or an
    array), .txt (the whole file) and .pdf (the whole document, pages kept). Files inside the
    inbox (FINPIPE_INBOX) are handled like the watcher does: moved to processed/ or failed/.
    Files anywhere else, such as samples/, are published and left where they are.

    Shows a progress bar on a terminal and plain log lines otherwise. Exits with status 1 when
    the broker did not take everything (those files stay for the next run), else 0; unreadable
    files and rejected rows are counted in the summary.
    """
    from ingest.inbox import Inbox, expand_paths, ingest_paths

    settings = ctx.settings
    box = Inbox.from_settings(settings, text_column=text_column, settle_s=settle_s)
    files = expand_paths(paths, box)
    total_bytes = sum(p.stat().st_size for p in files if p.is_file())
    try:
        with (
            ctx.broker().publisher() as publisher,
            _progress(total_bytes, len(files)) as progress,
        ):
            summary = ingest_paths(files, box, publisher, progress=progress)
    except TransientError as exc:
        click.echo(f"finpipe: {exc}", err=True)
        sys.exit(1)
    _print_failures(summary)
    click.echo(summary.line())
    if summary.left:
        sys.exit(1)


@click.command()
@click.option(
    "--run-now",
    is_flag=True,
    help="Run the jobs once right away, in order (the sweep, then the export), then on schedule.",
)
@click.option(
    "--once", is_flag=True, help="Run every job once, in order, then exit (for an outside cron)."
)
@pass_ctx
def schedule(ctx: Context, run_now: bool, once: bool) -> None:
    """Run the nightly jobs: sweep the inbox like `finpipe ingest` does, then export.

    The sweep runs on FINPIPE_SWEEP_CRON (default "0 2 * * *", 02:00 every night) in
    FINPIPE_TIMEZONE (default UTC). The export runs on FINPIPE_EXPORT_CRON (default
    "30 2 * * *") once the night's work is done (every report the sweep published stored or
    dead-lettered, no work or retry queue holding a message) or FINPIPE_EXPORT_WAIT_S has passed;
    FINPIPE_COMPANY_ALIASES is read once, at start (restart to pick up an edited file).
    Runs missed while the machine slept are coalesced into one; a night missed while the
    scheduler was not running (known from the runs the database records) is run once at start,
    logged as a catch-up. --run-now runs the sweep, then the export, at once. The jobs never run
    at the same time. Stop with Ctrl-C.

    With FINPIPE_LLM_MODE=batch the sweep first fills the extraction cache for the waiting
    reports through the Batch API (see `finpipe batch --help`).
    """
    from ingest import scheduler
    from ops import nightly

    settings = ctx.settings
    stop = threading.Event()
    try:
        jobs = nightly.nightly_jobs(ctx, ctx.company_aliases("schedule"), stop)
        nightly.observe(ctx)
        if once:
            if nightly.run_once(jobs):
                sys.exit(1)
            return
        now = datetime.now(ZoneInfo(settings.timezone))
        catch_up = [] if run_now else nightly.missed(ctx, jobs, now)
        sched = scheduler.build_scheduler(
            jobs, settings.timezone, run_now=run_now, catch_up=catch_up, now=now
        )
    except ConfigError as exc:
        click.echo(f"finpipe: configuration error: {exc}", err=True)
        sys.exit(2)
    nightly.announce(jobs, settings.timezone, now, run_now=run_now)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        sched.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("stopping the scheduler")
    finally:
        stop.set()  # a batch job being waited for stays stored; the next run resumes it
        if sched.running:
            sched.shutdown(wait=True)


@contextmanager
def _progress(total_bytes: int, files: int) -> Iterator[Progress | None]:
    """A tqdm bar (bytes, with reports as a counter) on a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    reports = 0
    with tqdm(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"{files} files",
        file=sys.stderr,
        ncols=min(shutil.get_terminal_size().columns, 120),
    ) as bar:

        def update(reports_done: int, bytes_done: int) -> None:
            nonlocal reports
            reports += reports_done
            if reports_done:
                bar.set_postfix(reports=reports, refresh=False)
            bar.update(bytes_done)

        yield update


def _print_failures(summary: Summary) -> None:
    from ingest.inbox import quote_name

    for outcome in summary.outcomes:
        if outcome.status == "failed":
            click.echo(f"failed: {quote_name(outcome.path)}: {outcome.reason}", err=True)


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
