"""``finpipe schedule``: APScheduler 3 running cron jobs, the inbox sweep first among them.

A job is a name, a cron expression and a function of no arguments; the composition root
(``finpipe schedule``) decides the list, so adding a job never touches this module. Every job
coalesces missed runs into one and never runs twice at once. The inbox sweep records its run as
``runs/last_sweep``, which ``finpipe status`` shows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from adapters.mongo import LAST_SWEEP, MongoStore
from adapters.rabbitmq import Broker
from ingest.inbox import Inbox, ReportPublisher, Summary
from schemas.errors import ConfigError, FinpipeError, Interrupted, TransientError
from schemas.message import ReportMessage
from schemas.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One scheduled job; ``env_var`` names the variable its cron expression came from."""

    name: str
    cron: str
    func: Callable[[], Any]
    env_var: str = ""


class RunRecorder(Protocol):
    """Where a job records that it ran (``adapters.mongo.MongoStore``)."""

    def record_run(self, name: str, now: datetime, **fields: Any) -> None: ...

    def close(self) -> None: ...


class ClosingPublisher(ReportPublisher, Protocol):
    """A publisher that owns its connection (``adapters.rabbitmq.Publisher``)."""

    def close(self) -> None: ...


#: a step run on the reports the sweep is about to publish (batch mode fills the extraction
#: cache for them); returns a line for the log
Prepare = Callable[[list[ReportMessage]], str | None]


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
        if prepare is not None:
            run_prepare(prepare, Inbox.from_settings(settings))
        pub = make_publisher()
        recording = _Recording(pub)
        try:
            summary = Inbox.from_settings(settings).sweep(recording)
        finally:
            pub.close()
        record_sweep(make_runs(), summary, started, recording.report_ids)
        return summary.line()

    return Job("inbox-sweep", settings.sweep_cron, sweep, "FINPIPE_SWEEP_CRON")


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


def run_prepare(prepare: Prepare, inbox: Inbox) -> None:
    reports = inbox.pending_reports()
    if not reports:
        return
    log.info("preparing %d report(s) waiting in the inbox", len(reports))
    try:
        line = prepare(reports)
    except Interrupted:
        raise  # stopping: the files stay in the inbox for the next run
    except Exception:
        log.exception("preparing the sweep failed; the reports are published as they are")
        return
    if line:
        log.info("%s", line)


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


def build_scheduler(
    jobs: list[Job],
    timezone: str,
    *,
    blocking: bool = True,
    run_now: bool = False,
    now: datetime | None = None,
) -> BaseScheduler:
    """A scheduler holding ``jobs`` (not started). ``run_now`` fires each job once right away,
    then on its schedule. Missed runs are coalesced; a job never overlaps itself."""
    tz = ZoneInfo(timezone)
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=tz) if blocking else BackgroundScheduler(timezone=tz)
    )
    for job in jobs:
        options: dict[str, Any] = {}
        if run_now:
            options["next_run_time"] = now or datetime.now(tz)
        scheduler.add_job(
            _logged(job),
            trigger=cron_trigger(job.cron, timezone, job.env_var),
            id=job.name,
            name=job.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
            **options,
        )
    return scheduler


def _logged(job: Job) -> Callable[[], None]:
    def run() -> None:
        log.info("job %s starting", job.name)
        try:
            result = job.func()
        except Interrupted as exc:
            log.info("job %s stopped: %s", job.name, exc)
            return
        except (ConfigError, TransientError) as exc:
            # expected failures an operator acts on: one line, no traceback
            log.error("job %s failed: %s", job.name, exc)
            return
        except Exception:
            log.exception("job %s failed", job.name)
            return
        log.info("job %s done%s", job.name, f": {result}" if result is not None else "")

    return run


def next_fire_time(job: Job, timezone: str, now: datetime) -> datetime | None:
    """When ``job`` fires next after ``now`` (for the start-up log and tests). Pure."""
    trigger = cron_trigger(job.cron, timezone, job.env_var)
    fire: datetime | None = trigger.get_next_fire_time(None, now)
    return fire
