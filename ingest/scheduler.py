"""``finpipe schedule``: APScheduler 3 running cron jobs, the inbox sweep first among them.

A job is a name, a cron expression and a function of no arguments; the composition root
(``finpipe schedule``) decides the list, so adding a job never touches this module. Every job
coalesces missed runs into one and never runs twice at once. The inbox sweep records its run as
``runs/last_sweep``, which ``finpipe status`` shows.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from adapters import metrics
from adapters.mongo import LAST_SWEEP, MongoStore
from adapters.rabbitmq import Broker
from ingest.inbox import Inbox, ReportPublisher, Summary
from schemas.errors import ConfigError, FinpipeError, Interrupted, TransientError
from schemas.message import ReportMessage
from schemas.settings import Settings
from schemas.topology import HEADER_PREFILLED

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One scheduled job; ``env_var`` names the variable its cron expression came from, ``record``
    the ``runs`` record its run leaves (what tells a missed run; none: never caught up)."""

    name: str
    cron: str
    func: Callable[[], Any]
    env_var: str = ""
    record: str = ""


class RunRecorder(Protocol):
    """Where a job records that it ran (``adapters.mongo.MongoStore``)."""

    def record_run(self, name: str, now: datetime, **fields: Any) -> None: ...

    def close(self) -> None: ...


class ClosingPublisher(ReportPublisher, Protocol):
    """A publisher that owns its connection (``adapters.rabbitmq.Publisher``)."""

    def publish_many(self, messages: Iterable[ReportMessage], **headers: Any) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Prepared:
    """What the step before the sweep did: a line for the log, and the reports whose model
    answers it put in the extraction cache (published with ``HEADER_PREFILLED``)."""

    line: str
    prefilled: frozenset[str] = frozenset()


#: a step run on the reports the sweep is about to publish (batch mode fills the extraction
#: cache for them)
Prepare = Callable[[list[ReportMessage]], Prepared | None]


class MarkingPublisher:
    """Publishes the reports in ``prefilled`` with ``HEADER_PREFILLED``, the others as they are:
    a worker started before the batch step looks their answers up instead of asking again."""

    def __init__(self, inner: ClosingPublisher, prefilled: frozenset[str]) -> None:
        self.inner = inner
        self.prefilled = prefilled

    def publish_many(self, messages: Iterable[ReportMessage]) -> int:
        batch = list(messages)
        marked = [m for m in batch if m.report_id in self.prefilled]
        plain = [m for m in batch if m.report_id not in self.prefilled]
        n = self.inner.publish_many(plain) if plain else 0
        if marked:
            n += self.inner.publish_many(marked, **{HEADER_PREFILLED: 1})
        return n


def inbox_sweep_job(
    settings: Settings,
    *,
    publisher: Callable[[], ClosingPublisher] | None = None,
    runs: Callable[[], RunRecorder] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    prepare: Prepare | None = None,
) -> Job:
    """The nightly sweep of the inbox, as ``finpipe ingest INBOX`` would do it, recorded as
    ``runs/last_sweep``. ``publisher`` and ``runs`` make a fresh adapter per run (default: from
    ``settings``). ``prepare`` first sees the reports waiting in the inbox; the files stay there
    until the sweep publishes them, so a run stopped at any point leaves them for the next one,
    and a ``prepare`` that fails is logged and the sweep goes on."""
    make_publisher = publisher or (lambda: Broker.from_settings(settings).publisher())
    make_runs = runs or (lambda: MongoStore.from_settings(settings))

    def sweep() -> str:
        started = clock()
        prefilled = frozenset[str]()
        if prepare is not None:
            prefilled = run_prepare(prepare, Inbox.from_settings(settings))
        pub = make_publisher()
        recording = _Recording(MarkingPublisher(pub, prefilled))
        try:
            summary = Inbox.from_settings(settings).sweep(recording)
        finally:
            pub.close()
        metrics.reports_queued("inbox", summary.reports_published)
        record_sweep(make_runs(), summary, started, recording.report_ids)
        return summary.line()

    return Job("inbox-sweep", settings.sweep_cron, sweep, "FINPIPE_SWEEP_CRON", LAST_SWEEP)


class _Recording:
    """A publisher that remembers the ids of the reports the broker confirmed."""

    def __init__(self, publisher: ReportPublisher) -> None:
        self.publisher = publisher
        self.report_ids: list[str] = []

    def publish_many(self, messages: Iterable[ReportMessage]) -> int:
        batch = list(messages)
        n = self.publisher.publish_many(batch)  # all confirmed, or it raises
        self.report_ids.extend(m.report_id for m in batch)
        return n


def run_prepare(prepare: Prepare, inbox: Inbox) -> frozenset[str]:
    """Run ``prepare`` on the reports waiting in the inbox; the reports it prefilled."""
    reports = inbox.pending_reports()
    if not reports:
        return frozenset()
    log.info("preparing %d report(s) waiting in the inbox", len(reports))
    try:
        done = prepare(reports)
    except Interrupted:
        raise  # stopping: the files stay in the inbox for the next run
    except Exception:
        log.exception("preparing the sweep failed; the reports are published as they are")
        return frozenset()
    if done is None:
        return frozenset()
    log.info("%s", done.line)
    return done.prefilled


def record_sweep(
    runs: RunRecorder, summary: Summary, started: datetime, report_ids: Sequence[str] = ()
) -> None:
    """Remember the sweep as ``runs/last_sweep`` with the ids of the reports it published (what
    the export waits for); a database that cannot take it is logged, the sweep itself is done."""
    try:
        runs.record_run(
            LAST_SWEEP,
            started,
            files=summary.files,
            reports=summary.reports_published,
            failed=summary.files_failed,
            left=summary.left,
            report_ids=list(report_ids),
        )
    except FinpipeError as exc:
        log.warning("inbox sweep done but not recorded: %s", exc)
    finally:
        runs.close()


def cron_trigger(expr: str, timezone: str, env_var: str = "") -> CronTrigger:
    """A trigger from a five-field crontab expression; a bad one is a ``ConfigError``."""
    try:
        return CronTrigger.from_crontab(expr, timezone=ZoneInfo(timezone))
    except ValueError as exc:
        where = f"{env_var}={expr!r}" if env_var else repr(expr)
        raise ConfigError(f"{where} is not a valid cron expression: {exc}") from None


def missed_fire(
    cron: str, timezone: str, last_run: datetime | None, now: datetime, env_var: str = ""
) -> datetime | None:
    """The run of ``cron`` that was due after ``last_run`` and did not happen by ``now`` (its
    fire time), else ``None``. Nothing is known to be missed before a first run. Pure."""
    if last_run is None:
        return None
    trigger = cron_trigger(cron, timezone, env_var)
    # a run records the time it started, a moment after its fire time; a second later is past it
    due: datetime | None = trigger.get_next_fire_time(None, last_run + timedelta(seconds=1))
    return due if due is not None and due <= now else None


def missed_jobs(
    jobs: Sequence[Job], last_runs: Mapping[str, datetime | None], timezone: str, now: datetime
) -> list[tuple[Job, datetime]]:
    """The jobs whose last run (``last_runs`` by record name) is older than a fire time already
    past at ``now``, in their order, each with the fire time it missed. Pure."""
    missed = []
    for job in jobs:
        if not job.record:
            continue
        due = missed_fire(job.cron, timezone, last_runs.get(job.record), now, job.env_var)
        if due is not None:
            missed.append((job, due))
    return missed


def build_scheduler(
    jobs: list[Job],
    timezone: str,
    *,
    blocking: bool = True,
    run_now: bool = False,
    catch_up: Sequence[Job] = (),
    now: datetime | None = None,
) -> BaseScheduler:
    """A scheduler holding ``jobs`` (not started). ``run_now`` runs every job once right away,
    one after the other in the order given, then on its schedule; otherwise the ``catch_up``
    jobs (missed runs, see ``missed_jobs``) are run so, once. Missed runs are coalesced; the
    jobs never run at the same time (one waits for the other)."""
    # imported here: ``finpipe status`` reads the cron schedule (``missed_fire``) without them
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.date import DateTrigger

    tz = ZoneInfo(timezone)
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=tz) if blocking else BackgroundScheduler(timezone=tz)
    )
    one_at_a_time = threading.Lock()
    for job in jobs:
        scheduler.add_job(
            _logged(job, one_at_a_time),
            trigger=cron_trigger(job.cron, timezone, job.env_var),
            id=job.name,
            name=job.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )
    first, label = (list(jobs), "run-now") if run_now else (list(catch_up), "catch-up")
    if first:
        scheduler.add_job(
            _in_order([_logged(j, one_at_a_time, label) for j in first]),
            trigger=DateTrigger(now or datetime.now(tz)),
            id=label,
            name=label,
            misfire_grace_time=None,
        )
    return scheduler


def _in_order(runs: list[Callable[[], None]]) -> Callable[[], None]:
    def run() -> None:
        for one in runs:
            one()

    return run


def _logged(job: Job, lock: threading.Lock | None = None, label: str = "") -> Callable[[], None]:
    """``job`` run with its start and outcome logged, under ``lock`` (if given); ``label`` says
    why it runs outside its schedule (``catch-up``, ``run-now``)."""
    name = f"{job.name} ({label})" if label else job.name

    def run() -> None:
        with lock or contextlib.nullcontext():
            _run_logged(job, name)

    return run


def _run_logged(job: Job, name: str) -> None:
    where = {"job": job.name}
    log.info("job %s starting", name, extra=where)
    try:
        result = job.func()
    except Interrupted as exc:
        log.info("job %s stopped: %s", name, exc, extra=where)
        metrics.job_ended(job.name, "stopped")
        return
    except (ConfigError, TransientError) as exc:
        # expected failures an operator acts on: one line, no traceback
        log.error("job %s failed: %s", name, exc, extra=where)
        metrics.job_ended(job.name, "failed")
        return
    except Exception:
        log.exception("job %s failed", name, extra=where)
        metrics.job_ended(job.name, "failed")
        return
    metrics.job_ended(job.name, "ok")
    log.info("job %s done%s", name, f": {result}" if result is not None else "", extra=where)


def next_fire_time(job: Job, timezone: str, now: datetime) -> datetime | None:
    """When ``job`` fires next after ``now`` (for the start-up log and tests). Pure."""
    trigger = cron_trigger(job.cron, timezone, job.env_var)
    fire: datetime | None = trigger.get_next_fire_time(None, now)
    return fire
